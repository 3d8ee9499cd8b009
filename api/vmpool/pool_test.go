package vmpool

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

var (
	errClosed    = errors.New("pool closed")
	errGone      = errors.New("interpreter gone")
	errCancelled = errors.New("call cancelled")
)

// fakeVM stands for an interpreter: gone once closed, as in the engines.
type fakeVM struct {
	id     int
	closes atomic.Int32
	busy   atomic.Bool // borrowed, for the concurrency test
}

func (v *fakeVM) close()     { v.closes.Add(1) }
func (v *fakeVM) gone() bool { return v.closes.Load() > 0 }

func newTestPool(max int) *Pool[*fakeVM] {
	return New(max, (*fakeVM).gone, (*fakeVM).close, errClosed, errGone)
}

// queued returns how many calls wait in pl, for tests to know a call has
// reached its wait rather than sleeping and hoping it has.
func queued(pl *Pool[*fakeVM]) int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.waiters)
}

// waitFor polls cond, failing the test if it does not hold within a few
// seconds (it holds within microseconds unless the pool is broken).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

type result struct {
	v     *fakeVM
	build bool
	err   error
}

// call is a Get running in its own goroutine.
type call struct {
	cancel context.CancelCauseFunc
	res    chan result
}

func startGet(t *testing.T, pl *Pool[*fakeVM], want *fakeVM) *call {
	ctx, cancel := context.WithCancelCause(t.Context())
	c := &call{cancel: cancel, res: make(chan result, 1)}
	go func() {
		v, build, err := pl.Get(ctx, want)
		c.res <- result{v, build, err}
	}()
	return c
}

// step is one operation of a scenario and the pool's state after it.
type step struct {
	do    string // get, wait, got, cancel, put, add, discard, failed, close
	who   string // the call a wait, got or cancel step is about
	want  int    // get, wait: the interpreter wanted, 0 for any
	vm    int    // put, add, discard: the interpreter; get, got: the one lent, 0 for none
	build bool   // get, got: whether the caller is told to build one
	err   error  // get, got: the error

	idle   []int // Idle(), least recently used first
	size   int   // Size()
	queued int   // calls waiting
	closed []int // interpreters closed so far
}

// scenario runs steps against a fresh pool, checking the state after
// each one once every running call has either queued or returned.
type scenario struct {
	t     *testing.T
	pl    *Pool[*fakeVM]
	vms   map[int]*fakeVM
	calls map[string]*call
}

func (s *scenario) vm(id int) *fakeVM {
	if id == 0 {
		return nil
	}
	if s.vms[id] == nil {
		s.vms[id] = &fakeVM{id: id}
	}
	return s.vms[id]
}

func idOf(v *fakeVM) int {
	if v == nil {
		return 0
	}
	return v.id
}

// settle waits until no call is between a wake-up and its next wait:
// a call for any that was told "room was made" queues again or returns.
func (s *scenario) settle() {
	s.t.Helper()
	waitFor(s.t, "the calls to queue or return", func() bool {
		returned := 0
		for _, c := range s.calls {
			returned += len(c.res)
		}
		return queued(s.pl)+returned == len(s.calls)
	})
}

func (s *scenario) check(r result, st step) {
	s.t.Helper()
	if idOf(r.v) != st.vm || r.build != st.build || !errors.Is(r.err, st.err) {
		s.t.Fatalf("Get = vm %d, build %v, err %v; want vm %d, build %v, err %v",
			idOf(r.v), r.build, r.err, st.vm, st.build, st.err)
	}
}

func (s *scenario) run(st step) {
	s.t.Helper()
	switch st.do {
	case "get": // a call that must not wait
		c := startGet(s.t, s.pl, s.vm(st.want))
		s.calls[""] = c
		s.settle()
		delete(s.calls, "")
		select {
		case r := <-c.res:
			s.check(r, st)
		default:
			c.cancel(nil)
			s.t.Fatalf("Get(vm %d) waits", st.want)
		}
	case "wait":
		if s.calls[st.who] != nil {
			s.t.Fatalf("call %s already runs", st.who)
		}
		s.calls[st.who] = startGet(s.t, s.pl, s.vm(st.want))
	case "got":
		c := s.calls[st.who]
		delete(s.calls, st.who)
		select {
		case r := <-c.res:
			s.check(r, st)
		default:
			s.t.Fatalf("call %s still waits", st.who)
		}
	case "cancel":
		// The call is still queued until it sees its context end.
		c := s.calls[st.who]
		c.cancel(errCancelled)
		waitFor(s.t, "the cancelled call to return", func() bool { return len(c.res) > 0 })
	case "put":
		s.pl.Put(s.vm(st.vm))
	case "add":
		s.pl.Add(s.vm(st.vm))
	case "discard": // as the engines do: close, then discard
		s.vm(st.vm).close()
		s.pl.Discard(s.vm(st.vm))
	case "failed":
		s.pl.Failed()
	case "close":
		s.pl.Close()
	default:
		s.t.Fatalf("unknown step %q", st.do)
	}
	s.settle()

	var idle []int
	for _, v := range s.pl.Idle() {
		idle = append(idle, v.id)
	}
	if !slices.Equal(idle, st.idle) {
		s.t.Errorf("Idle() = %v, want %v", idle, st.idle)
	}
	if got := s.pl.Size(); got != st.size {
		s.t.Errorf("Size() = %d, want %d", got, st.size)
	}
	if got := queued(s.pl); got != st.queued {
		s.t.Errorf("%d calls wait, want %d", got, st.queued)
	}
	var closed []int
	for id, v := range s.vms {
		switch v.closes.Load() {
		case 0:
		case 1:
			closed = append(closed, id)
		default:
			s.t.Errorf("vm %d closed %d times", id, v.closes.Load())
		}
	}
	slices.Sort(closed)
	if !slices.Equal(closed, st.closed) {
		s.t.Errorf("closed vms %v, want %v", closed, st.closed)
	}
}

func TestPoolScenarios(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{
			name: "idle interpreters are lent most recently used first",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "put", vm: 2, idle: []int{1, 2}},
				{do: "put", vm: 3, idle: []int{1, 2, 3}},
				{do: "get", vm: 3, idle: []int{1, 2}},
				{do: "get", vm: 2, idle: []int{1}},
				{do: "put", vm: 3, idle: []int{1, 3}},
				{do: "get", vm: 3, idle: []int{1}},
				{do: "put", vm: 2, idle: []int{1, 2}},
			},
		},
		{
			name: "a particular idle interpreter is lent even if others were used more recently",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "put", vm: 2, idle: []int{1, 2}},
				{do: "put", vm: 3, idle: []int{1, 2, 3}},
				{do: "get", want: 2, vm: 2, idle: []int{1, 3}},
				{do: "get", want: 1, vm: 1, idle: []int{3}},
				{do: "get", vm: 3},
			},
		},
		{
			name: "a filled pool never tells callers to build",
			steps: []step{
				{do: "wait", who: "A", queued: 1},
				{do: "put", vm: 1},
				{do: "got", who: "A", vm: 1},
			},
		},
		{
			name: "a growing pool tells callers to build up to max, then lends what comes back",
			max:  2,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "get", build: true, size: 2},
				{do: "wait", who: "A", size: 2, queued: 1},
				{do: "put", vm: 1, size: 2},
				{do: "got", who: "A", vm: 1, size: 2},
				{do: "put", vm: 2, idle: []int{2}, size: 2},
				{do: "put", vm: 1, idle: []int{2, 1}, size: 2},
				{do: "get", vm: 1, idle: []int{2}, size: 2},
			},
		},
		{
			name: "a growing pool lends an idle interpreter before building",
			max:  2,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "put", vm: 1, idle: []int{1}, size: 1},
				{do: "get", vm: 1, size: 1},
			},
		},
		{
			name: "Add counts an interpreter built outside Get",
			max:  2,
			steps: []step{
				{do: "add", vm: 1, idle: []int{1}, size: 1},
				{do: "get", vm: 1, size: 1},
				{do: "get", build: true, size: 2},
				{do: "wait", who: "A", size: 2, queued: 1},
				{do: "put", vm: 1, size: 2},
				{do: "got", who: "A", vm: 1, size: 2},
			},
		},
		{
			name: "calls for any interpreter are served first come, first served",
			steps: []step{
				{do: "wait", who: "A", queued: 1},
				{do: "wait", who: "B", queued: 2},
				{do: "wait", who: "C", queued: 3},
				{do: "put", vm: 1, queued: 2},
				{do: "got", who: "A", vm: 1, queued: 2},
				{do: "put", vm: 2, queued: 1},
				{do: "got", who: "B", vm: 2, queued: 1},
				{do: "put", vm: 1},
				{do: "got", who: "C", vm: 1},
			},
		},
		{
			name: "a call for a particular interpreter is served before earlier calls for any",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "get", vm: 1},
				{do: "wait", who: "A", queued: 1},
				{do: "wait", who: "B", want: 1, queued: 2},
				{do: "put", vm: 1, queued: 1},
				{do: "got", who: "B", vm: 1, queued: 1},
				{do: "put", vm: 1},
				{do: "got", who: "A", vm: 1},
			},
		},
		{
			name: "a call for a particular interpreter is not lent another",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "get", want: 1, vm: 1},
				{do: "wait", who: "A", want: 1, queued: 1},
				{do: "put", vm: 2, idle: []int{2}, queued: 1},
				{do: "wait", who: "B", want: 3, idle: []int{2}, queued: 2},
				{do: "put", vm: 3, idle: []int{2}, queued: 1},
				{do: "got", who: "B", vm: 3, idle: []int{2}, queued: 1},
				{do: "put", vm: 1, idle: []int{2}},
				{do: "got", who: "A", vm: 1, idle: []int{2}},
			},
		},
		{
			name: "calls for the same interpreter are served in turn",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "get", want: 1, vm: 1},
				{do: "wait", who: "A", want: 1, queued: 1},
				{do: "wait", who: "B", want: 1, queued: 2},
				{do: "put", vm: 1, queued: 1},
				{do: "got", who: "A", vm: 1, queued: 1},
				{do: "put", vm: 1},
				{do: "got", who: "B", vm: 1},
			},
		},
		{
			name: "discarding an interpreter tells the calls waiting for it that it is gone",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "put", vm: 2, idle: []int{1, 2}},
				{do: "get", vm: 2, idle: []int{1}},
				{do: "get", vm: 1},
				{do: "wait", who: "A", want: 1, queued: 1},
				{do: "wait", who: "B", queued: 2},
				{do: "wait", who: "C", want: 1, queued: 3},
				{do: "discard", vm: 1, queued: 1, closed: []int{1}},
				{do: "got", who: "A", err: errGone, queued: 1, closed: []int{1}},
				{do: "got", who: "C", err: errGone, queued: 1, closed: []int{1}},
				// Its caller replaces it in a filled pool.
				{do: "put", vm: 3, closed: []int{1}},
				{do: "got", who: "B", vm: 3, closed: []int{1}},
			},
		},
		{
			name: "a gone interpreter is not waited for",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "get", vm: 1},
				{do: "discard", vm: 1, closed: []int{1}},
				{do: "get", want: 1, err: errGone, closed: []int{1}},
			},
		},
		{
			name: "discarding in a growing pool makes room for a call for any",
			max:  1,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "wait", who: "A", want: 1, size: 1, queued: 1},
				{do: "wait", who: "B", size: 1, queued: 2},
				{do: "discard", vm: 1, size: 1, closed: []int{1}},
				{do: "got", who: "A", err: errGone, size: 1, closed: []int{1}},
				{do: "got", who: "B", build: true, size: 1, closed: []int{1}},
				{do: "put", vm: 2, idle: []int{2}, size: 1, closed: []int{1}},
			},
		},
		{
			name: "discarding in a growing pool with no one waiting lowers its size",
			max:  2,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "get", build: true, size: 2},
				{do: "discard", vm: 1, size: 1, closed: []int{1}},
				{do: "get", build: true, size: 2, closed: []int{1}},
			},
		},
		{
			name: "a failed build makes room for the first call for any",
			max:  1,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "wait", who: "A", size: 1, queued: 1},
				{do: "wait", who: "B", size: 1, queued: 2},
				{do: "failed", size: 1, queued: 1},
				{do: "got", who: "A", build: true, size: 1, queued: 1},
				{do: "failed", size: 1},
				{do: "got", who: "B", build: true, size: 1},
				{do: "put", vm: 1, idle: []int{1}, size: 1},
			},
		},
		{
			name: "a failed build does not wake a call for a particular interpreter",
			max:  2,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "get", build: true, size: 2},
				{do: "wait", who: "A", want: 1, size: 2, queued: 1},
				{do: "failed", size: 1, queued: 1},
				{do: "put", vm: 1, size: 1},
				{do: "got", who: "A", vm: 1, size: 1},
			},
		},
		{
			name: "a failed build with no one waiting lowers the size",
			max:  2,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "get", build: true, size: 2},
				{do: "failed", size: 1},
				{do: "get", build: true, size: 2},
			},
		},
		{
			name: "a cancelled call for any returns the cause and takes nothing with it",
			max:  1,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "wait", who: "A", size: 1, queued: 1},
				{do: "cancel", who: "A", size: 1},
				{do: "got", who: "A", err: errCancelled, size: 1},
				{do: "put", vm: 1, idle: []int{1}, size: 1},
				{do: "get", vm: 1, size: 1},
			},
		},
		{
			name: "a cancelled call for a particular interpreter returns the cause",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "get", vm: 1},
				{do: "wait", who: "A", want: 1, queued: 1},
				{do: "cancel", who: "A"},
				{do: "got", who: "A", err: errCancelled},
				{do: "put", vm: 1, idle: []int{1}},
			},
		},
		{
			name: "a cancelled call leaves the others in order",
			steps: []step{
				{do: "wait", who: "A", queued: 1},
				{do: "wait", who: "B", queued: 2},
				{do: "wait", who: "C", queued: 3},
				{do: "cancel", who: "B", queued: 2},
				{do: "got", who: "B", err: errCancelled, queued: 2},
				{do: "put", vm: 1, queued: 1},
				{do: "got", who: "A", vm: 1, queued: 1},
				{do: "put", vm: 2},
				{do: "got", who: "C", vm: 2},
			},
		},
		{
			name: "a cancelled call does not keep a failed build's room",
			max:  1,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "wait", who: "A", size: 1, queued: 1},
				{do: "cancel", who: "A", size: 1},
				{do: "got", who: "A", err: errCancelled, size: 1},
				{do: "failed"},
				{do: "get", build: true, size: 1},
			},
		},
		{
			name: "Close fails the waiting calls and closes the idle interpreters",
			steps: []step{
				{do: "put", vm: 1, idle: []int{1}},
				{do: "put", vm: 2, idle: []int{1, 2}},
				{do: "get", vm: 2, idle: []int{1}},
				{do: "wait", who: "A", want: 2, idle: []int{1}, queued: 1},
				{do: "wait", who: "B", want: 3, idle: []int{1}, queued: 2},
				{do: "close", closed: []int{1}},
				{do: "got", who: "A", err: errClosed, closed: []int{1}},
				{do: "got", who: "B", err: errClosed, closed: []int{1}},
				// The borrowed one is closed when it comes back.
				{do: "put", vm: 2, closed: []int{1, 2}},
			},
		},
		{
			name: "Close fails the calls waiting for room in a growing pool",
			max:  1,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "wait", who: "A", size: 1, queued: 1},
				{do: "wait", who: "B", size: 1, queued: 2},
				{do: "close", size: 1},
				{do: "got", who: "A", err: errClosed, size: 1},
				{do: "got", who: "B", err: errClosed, size: 1},
				{do: "put", vm: 1, size: 1, closed: []int{1}},
			},
		},
		{
			name: "after Close every Get fails and what comes in is closed",
			max:  2,
			steps: []step{
				{do: "add", vm: 1, idle: []int{1}, size: 1},
				{do: "close", size: 1, closed: []int{1}},
				{do: "get", err: errClosed, size: 1, closed: []int{1}},
				{do: "get", want: 1, err: errClosed, size: 1, closed: []int{1}},
				{do: "get", want: 2, err: errClosed, size: 1, closed: []int{1}},
				{do: "add", vm: 2, size: 2, closed: []int{1, 2}},
				{do: "put", vm: 3, size: 2, closed: []int{1, 2, 3}},
				{do: "close", size: 2, closed: []int{1, 2, 3}}, // a second Close does nothing
			},
		},
		{
			name: "Failed and Discard after Close are harmless",
			max:  2,
			steps: []step{
				{do: "get", build: true, size: 1},
				{do: "get", build: true, size: 2},
				{do: "close", size: 2},
				{do: "failed", size: 1},
				{do: "discard", vm: 2, closed: []int{2}},
				{do: "get", err: errClosed, closed: []int{2}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scenario{t: t, pl: newTestPool(tt.max), vms: map[int]*fakeVM{}, calls: map[string]*call{}}
			for i, st := range tt.steps {
				t.Logf("step %d: %+v", i, st)
				s.run(st)
			}
			for who := range s.calls {
				t.Errorf("the outcome of call %s is not checked", who)
			}
		})
	}
}

func TestGetReturnsTheContextErrorWhenItCannotWait(t *testing.T) {
	expired := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	cancelled := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(errCancelled)
		return ctx
	}
	tests := []struct {
		name string
		ctx  func(*testing.T) context.Context
		want int // 0: any
		err  error
	}{
		{"deadline passes while waiting for any", expired, 0, context.DeadlineExceeded},
		{"deadline passes while waiting for a particular one", expired, 1, context.DeadlineExceeded},
		{"already cancelled, waiting for any", cancelled, 0, errCancelled},
		{"already cancelled, waiting for a particular one", cancelled, 1, errCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := newTestPool(1)
			if _, build, err := pl.Get(t.Context(), nil); !build || err != nil {
				t.Fatalf("first Get = build %v, err %v; want build", build, err)
			}
			var want *fakeVM
			if tt.want != 0 {
				want = &fakeVM{id: tt.want}
			}
			v, build, err := pl.Get(tt.ctx(t), want)
			if v != nil || build || !errors.Is(err, tt.err) {
				t.Errorf("Get = vm %v, build %v, err %v; want err %v", v, build, err, tt.err)
			}
			if n := queued(pl); n != 0 {
				t.Errorf("%d calls still queued", n)
			}
			if n := pl.Size(); n != 1 {
				t.Errorf("Size() = %d, want 1", n)
			}
		})
	}
}

// Engines check the context before Get: Get itself lends what it can
// without waiting even when the context is done.
func TestGetWithDoneContextLendsWithoutWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	pl := newTestPool(1)
	if _, build, err := pl.Get(ctx, nil); !build || err != nil {
		t.Errorf("Get with room = build %v, err %v; want build", build, err)
	}
	v := &fakeVM{id: 1}
	pl.Put(v)
	if got, _, err := pl.Get(ctx, v); got != v || err != nil {
		t.Errorf("Get(idle vm) = %v, %v; want it", got, err)
	}
}

func TestIdleReturnsACopy(t *testing.T) {
	pl := newTestPool(0)
	a, b := &fakeVM{id: 1}, &fakeVM{id: 2}
	pl.Put(a)
	pl.Put(b)
	idle := pl.Idle()
	idle[0], idle[1] = nil, nil
	if got := pl.Idle(); !slices.Equal(got, []*fakeVM{a, b}) {
		t.Errorf("Idle() after changing its last result = %v, want [a b]", got)
	}
}

// cancelSoon cancels a waiting call now or from another goroutine, by
// turns: cancelled now, the call usually has not yet looked at the pool
// when the caller goes on to hand it something, the race the rounds of
// the tests below are after.
func cancelSoon(round int, cancel context.CancelCauseFunc) {
	if round%2 == 0 {
		cancel(errCancelled)
	} else {
		go cancel(errCancelled)
	}
}

// A call whose context ends just as an interpreter is handed to it either
// takes it or gives it back: it is never lost.
func TestCancelRacingPutLosesNoInterpreter(t *testing.T) {
	for i := range 200 {
		pl := newTestPool(0)
		v := &fakeVM{id: 1}
		c := startGet(t, pl, nil)
		waitFor(t, "the call to queue", func() bool { return queued(pl) == 1 })
		cancelSoon(i, c.cancel)
		pl.Put(v)
		r := <-c.res
		switch {
		case r.v == v && r.err == nil:
			if idle := pl.Idle(); len(idle) != 0 {
				t.Fatalf("round %d: lent vm 1 and Idle() = %v", i, idle)
			}
		case r.v == nil && errors.Is(r.err, errCancelled):
			if idle := pl.Idle(); !slices.Equal(idle, []*fakeVM{v}) {
				t.Fatalf("round %d: cancelled and Idle() = %v, want [vm 1]", i, idle)
			}
		default:
			t.Fatalf("round %d: Get = %v, %v", i, r.v, r.err)
		}
		if n := queued(pl); n != 0 {
			t.Fatalf("round %d: %d calls still queued", i, n)
		}
	}
}

// A call whose context ends just as it is told room was made passes the
// room on to the next call for any.
func TestCancelRacingFailedPassesTheRoomOn(t *testing.T) {
	for i := range 200 {
		pl := newTestPool(1)
		if _, build, _ := pl.Get(t.Context(), nil); !build {
			t.Fatalf("round %d: first Get did not build", i)
		}
		a := startGet(t, pl, nil)
		waitFor(t, "call A to queue", func() bool { return queued(pl) == 1 })
		b := startGet(t, pl, nil)
		waitFor(t, "call B to queue", func() bool { return queued(pl) == 2 })
		cancelSoon(i, a.cancel)
		pl.Failed()
		ra := <-a.res
		switch {
		case ra.build && ra.err == nil:
			pl.Failed() // A's build fails too: B's turn
		case !errors.Is(ra.err, errCancelled):
			t.Fatalf("round %d: Get A = build %v, err %v", i, ra.build, ra.err)
		}
		select {
		case rb := <-b.res:
			if !rb.build || rb.err != nil {
				t.Fatalf("round %d: Get B = build %v, err %v; want build", i, rb.build, rb.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the room never reached call B", i)
		}
		if n := pl.Size(); n != 1 {
			t.Fatalf("round %d: Size() = %d, want 1", i, n)
		}
	}
}

// A call waiting for an interpreter whose context ends just as the
// interpreter is discarded returns either error and leaves nothing queued.
func TestCancelRacingDiscard(t *testing.T) {
	for i := range 200 {
		pl := newTestPool(0)
		v := &fakeVM{id: 1}
		c := startGet(t, pl, v)
		waitFor(t, "the call to queue", func() bool { return queued(pl) == 1 })
		cancelSoon(i, c.cancel)
		v.close()
		pl.Discard(v)
		r := <-c.res
		if r.v != nil || !errors.Is(r.err, errCancelled) && !errors.Is(r.err, errGone) {
			t.Fatalf("round %d: Get = %v, %v; want %v or %v", i, r.v, r.err, errCancelled, errGone)
		}
		if n := queued(pl); n != 0 {
			t.Fatalf("round %d: %d calls still queued", i, n)
		}
	}
}

// Many calls borrowing, building, failing and discarding at once: no
// interpreter is lent twice, no more than max are out, each is closed
// once, and every call gets through.
func TestConcurrentUseKeepsTheBounds(t *testing.T) {
	const max, workers, rounds = 3, 8, 200
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pl := newTestPool(max)

	var (
		mu    sync.Mutex
		built []*fakeVM
		out   atomic.Int32 // lent or being built
	)
	borrow := func(want *fakeVM) (*fakeVM, bool, error) {
		v, build, err := pl.Get(ctx, want)
		if err != nil {
			return nil, false, err
		}
		if n := out.Add(1); n > max {
			t.Errorf("%d interpreters out, max %d", n, max)
		}
		if build {
			return nil, true, nil
		}
		if !v.busy.CompareAndSwap(false, true) {
			t.Errorf("vm %d lent twice", v.id)
		}
		return v, false, nil
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var last *fakeVM
			for i := range rounds {
				want := (*fakeVM)(nil)
				if last != nil && i%3 == 0 {
					want = last
				}
				v, build, err := borrow(want)
				if errors.Is(err, errGone) && want != nil {
					last = nil
					continue
				}
				if err != nil {
					t.Errorf("worker %d round %d: Get = %v", w, i, err)
					return
				}
				if build {
					if i%7 == 0 {
						out.Add(-1)
						pl.Failed()
						continue
					}
					mu.Lock()
					v = &fakeVM{id: len(built) + 1}
					built = append(built, v)
					mu.Unlock()
					v.busy.Store(true)
				}
				runtime.Gosched()
				v.busy.Store(false)
				out.Add(-1)
				if i%5 == 0 {
					v.close()
					pl.Discard(v)
					last = nil
					continue
				}
				last = v
				pl.Put(v)
			}
		})
	}
	wg.Wait()
	if n := queued(pl); n != 0 {
		t.Errorf("%d calls still queued", n)
	}
	if n := pl.Size(); n > max || n != len(pl.Idle()) {
		t.Errorf("Size() = %d with %d idle, want them equal and at most %d", n, len(pl.Idle()), max)
	}
	pl.Close()
	for _, v := range built {
		if n := v.closes.Load(); n != 1 {
			t.Errorf("vm %d closed %d times, want once", v.id, n)
		}
	}
}

// Package doc: "waiters are served first come, first served". Room made
// by Failed (or Discard in a growing pool) goes to the first waiter while
// the lock is held, so a call arriving meanwhile cannot take it.
func TestFreedRoomGoesToTheFirstWaiter(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the waiter runs only when this goroutine lets it
	pl := newTestPool(1)
	if _, build, _ := pl.Get(t.Context(), nil); !build {
		t.Fatal("first Get did not build")
	}
	a := startGet(t, pl, nil)
	waitFor(t, "call A to queue", func() bool { return queued(pl) == 1 })
	b := startGet(t, pl, nil)
	waitFor(t, "call B to queue", func() bool { return queued(pl) == 2 })

	pl.Failed()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, build, _ := pl.Get(ctx, nil); build {
		t.Error("a newcomer was told to build while A waited for room")
		// Its build fails in turn: the room should reach A, A being first.
		pl.Failed()
	}
	select {
	case r := <-a.res:
		if !r.build {
			t.Errorf("Get A = %+v, want build", r)
		}
	case r := <-b.res:
		t.Errorf("call B, queued after A, got the room first: %+v", r)
		pl.Failed()
		<-a.res
	case <-time.After(5 * time.Second):
		t.Fatal("no call got the room")
	}
}

// A Get that waited MaxWait in vain fails with ErrBusy and is counted; one
// its own context ended is not.
func TestPoolBusyCounted(t *testing.T) {
	pl := newTestPool(0)
	pl.MaxWait = 10 * time.Millisecond
	pl.Counters = &api.Counters{}
	v := &fakeVM{id: 1}
	pl.Put(v)
	if got, _, err := pl.Get(context.Background(), nil); got != v || err != nil {
		t.Fatalf("Get = %v, %v; want the idle interpreter", got, err)
	}
	if _, _, err := pl.Get(context.Background(), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("Get with every interpreter busy = %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errCancelled)
	if _, _, err := pl.Get(ctx, nil); !errors.Is(err, errCancelled) {
		t.Errorf("Get with its context ended = %v, want its cause", err)
	}
	if n := pl.Counters.PoolTimeouts.Load(); n != 1 {
		t.Errorf("PoolTimeouts = %d, want 1", n)
	}
}
