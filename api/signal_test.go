package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordHandler is a slog.Handler that passes records to a channel, so
// tests can wait for a log line instead of sleeping.
type recordHandler struct{ ch chan slog.Record }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r.Clone()
	return nil
}

func newRecordLogger() (*slog.Logger, <-chan slog.Record) {
	ch := make(chan slog.Record, 64)
	return slog.New(&recordHandler{ch: ch}), ch
}

func recordAttr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// serve runs s.Serve until the test ends or the returned stop is called;
// stop waits for Serve and returns its error.
func serve(t *testing.T, s *Signals) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// sendTo returns a handler that reports each delivery on ch.
func sendTo(ch chan<- uint8) SignalHandler {
	return func(_ context.Context, num uint8) error {
		ch <- num
		return nil
	}
}

func TestSignalsRegisterTargets(t *testing.T) {
	s := NewSignals(0)
	h := func(context.Context, uint8) error { return nil }
	for _, target := range []string{"", "worker", "workers", "active-workers", "worker1", "worker0", "worker65535",
		"mule", "mules", "mule3", "spooler", "spoolers"} {
		if err := s.Register(1, target, h); err != nil {
			t.Errorf("Register(1, %q) = %v, want nil", target, err)
		}
	}
	for _, target := range []string{"master", "Worker", "worker-1", "worker+1", "workerx", "worker65536", "mule ", "spooler1", "farm"} {
		if err := s.Register(1, target, h); !errors.Is(err, ErrSignalTarget) {
			t.Errorf("Register(1, %q) = %v, want %v", target, err, ErrSignalTarget)
		}
	}
	if err := s.Register(1, "", nil); !errors.Is(err, ErrNilFunc) {
		t.Errorf("Register(1, nil) = %v, want %v", err, ErrNilFunc)
	}
}

func TestSignalsRegistered(t *testing.T) {
	ctx := context.Background()
	s := NewSignals(0)
	if s.Registered(255) {
		t.Errorf("Registered(255) before Register = true")
	}
	got := make(chan uint8, 2)
	s.Register(255, "workers", func(context.Context, uint8) error { return errors.New("old") })
	s.Register(255, "", sendTo(got))
	if err := s.RaiseSync(ctx, 255); err != nil {
		t.Errorf("RaiseSync(255) = %v, want the replacement handler's nil", err)
	}
	if !s.Registered(255) || !s.Unregister(255) || s.Registered(255) || s.Unregister(255) {
		t.Errorf("Registered/Unregister(255) sequence wrong")
	}
}

func TestSignalsRaiseSync(t *testing.T) {
	s := NewSignals(0)
	errHandler := errors.New("handler failed")
	type key struct{}
	s.Register(1, "", func(ctx context.Context, num uint8) error {
		if ctx.Value(key{}) != "v" || num != 1 {
			return errors.New("wrong ctx or num")
		}
		return nil
	})
	s.Register(2, "", func(context.Context, uint8) error { return errHandler })
	s.Register(3, "", func(context.Context, uint8) error { panic("boom") })

	ctx := context.WithValue(context.Background(), key{}, "v")
	for _, tt := range []struct {
		num     uint8
		wantErr error
	}{{1, nil}, {2, errHandler}, {3, ErrSignalPanic}, {4, ErrNoSignalHandler}} {
		if err := s.RaiseSync(ctx, tt.num); !errors.Is(err, tt.wantErr) {
			t.Errorf("RaiseSync(%d) = %v, want %v", tt.num, err, tt.wantErr)
		}
	}
}

func TestSignalsDelivery(t *testing.T) {
	s := NewSignals(0)
	got := make(chan uint8, 4)
	for _, num := range []uint8{0, 17, 255} {
		s.Register(num, "workers", sendTo(got))
	}
	// Raised before Serve: queued and delivered once Serve runs.
	if err := s.Raise(0); err != nil {
		t.Fatalf("Raise(0) before Serve = %v", err)
	}
	serve(t, s)
	for _, num := range []uint8{17, 255} {
		if err := s.Raise(num); err != nil {
			t.Fatalf("Raise(%d) = %v", num, err)
		}
	}
	seen := map[uint8]bool{}
	for range 3 {
		seen[<-got] = true
	}
	if !seen[0] || !seen[17] || !seen[255] {
		t.Errorf("delivered %v, want 0, 17 and 255", seen)
	}
}

func TestSignalsQueueFull(t *testing.T) {
	s := NewSignals(1)
	if err := s.Raise(1); err != nil {
		t.Fatalf("Raise(1) = %v", err)
	}
	if err := s.Raise(2); !errors.Is(err, ErrSignalQueueFull) {
		t.Errorf("Raise(2) on full queue = %v, want %v", err, ErrSignalQueueFull)
	}
}

func TestSignalsLogged(t *testing.T) {
	logger, records := newRecordLogger()
	s := NewSignals(0)
	s.Logger = logger
	got := make(chan uint8, 1)
	s.Register(1, "", sendTo(got))
	s.Register(2, "", func(context.Context, uint8) error { panic("boom") })
	s.Register(3, "", func(context.Context, uint8) error { return errors.New("bad news") })
	serve(t, s)

	tests := []struct {
		num        uint8
		wantMsg    string
		wantAttr   string
		wantInAttr string
	}{
		{99, "no handler", "signal", "99"}, // accepted like uWSGI, reported at delivery
		{2, "panicked", "panic", "boom"},
		{3, "failed", "err", "bad news"},
	}
	for _, tt := range tests {
		if err := s.Raise(tt.num); err != nil {
			t.Fatalf("Raise(%d) = %v", tt.num, err)
		}
		r := <-records
		if r.Level != slog.LevelError || !strings.Contains(r.Message, tt.wantMsg) {
			t.Errorf("signal %d logged %v %q, want ERROR containing %q", tt.num, r.Level, r.Message, tt.wantMsg)
		}
		if v := recordAttr(r, tt.wantAttr).String(); !strings.Contains(v, tt.wantInAttr) {
			t.Errorf("signal %d log attr %s = %q, want it to contain %q", tt.num, tt.wantAttr, v, tt.wantInAttr)
		}
		if tt.wantAttr == "panic" && !strings.Contains(recordAttr(r, "stack").String(), "goroutine") {
			t.Errorf("signal %d panic log has no stack", tt.num)
		}
	}
	// Delivery goes on after a handler panicked.
	if err := s.Raise(1); err != nil {
		t.Fatalf("Raise(1) = %v", err)
	}
	if num := <-got; num != 1 {
		t.Errorf("delivered %d after a panic, want 1", num)
	}
}

func TestSignalsHandlerTimeout(t *testing.T) {
	s := NewSignals(0)
	s.HandlerTimeout = time.Millisecond
	errs := make(chan error, 1)
	s.Register(5, "", func(ctx context.Context, _ uint8) error {
		<-ctx.Done()
		errs <- ctx.Err()
		return ctx.Err()
	})
	s.Logger, _ = newRecordLogger()
	serve(t, s)
	s.Raise(5)
	if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("handler ctx.Err() = %v, want %v", err, context.DeadlineExceeded)
	}
}

func TestSignalsStop(t *testing.T) {
	s := NewSignals(0)
	started := make(chan struct{})
	errs := make(chan error, 1)
	s.Register(7, "", func(ctx context.Context, _ uint8) error {
		close(started)
		<-ctx.Done()
		errs <- ctx.Err()
		return nil
	})
	stop := serve(t, s)
	s.Raise(7)
	<-started

	if err := stop(); err != nil {
		t.Errorf("Serve() after cancel = %v, want nil", err)
	}
	// Serve waited for the handler, whose ctx was cancelled.
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("in-flight handler ctx.Err() = %v, want %v", err, context.Canceled)
		}
	default:
		t.Errorf("Serve returned before the in-flight handler finished")
	}
	if err := s.Raise(7); !errors.Is(err, ErrSignalsStopped) {
		t.Errorf("Raise(7) after Serve returned = %v, want %v", err, ErrSignalsStopped)
	}
	if err := s.Serve(context.Background()); !errors.Is(err, ErrSignalsStopped) {
		t.Errorf("Serve() again after stop = %v, want %v", err, ErrSignalsStopped)
	}
	// Synchronous delivery does not need the loop.
	s.Register(8, "", func(context.Context, uint8) error { return nil })
	if err := s.RaiseSync(context.Background(), 8); err != nil {
		t.Errorf("RaiseSync(8) after stop = %v, want nil", err)
	}
}

func TestSignalsServeTwice(t *testing.T) {
	s := NewSignals(0)
	got := make(chan uint8, 1)
	s.Register(1, "", sendTo(got))
	serve(t, s)
	s.Raise(1)
	<-got // Serve is running now
	if err := s.Serve(context.Background()); !errors.Is(err, ErrSignalsServing) {
		t.Errorf("second Serve() = %v, want %v", err, ErrSignalsServing)
	}
}

// TestSignalsDroppedAtStop checks that every raised signal is either
// delivered or reported as dropped when Serve stops.
func TestSignalsDroppedAtStop(t *testing.T) {
	logger, records := newRecordLogger()
	s := NewSignals(0)
	s.Logger = logger
	var delivered atomic.Int64
	const raised = 5
	for num := range uint8(raised) {
		s.Register(num, "", func(context.Context, uint8) error {
			delivered.Add(1)
			return nil
		})
		if err := s.Raise(num); err != nil {
			t.Fatalf("Raise(%d) = %v", num, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Fatalf("Serve(cancelled ctx) = %v, want nil", err)
	}
	dropped := int64(0)
	select {
	case r := <-records:
		dropped = recordAttr(r, "count").Int64()
	default:
	}
	if got := delivered.Load() + dropped; got != raised {
		t.Errorf("delivered %d + dropped %d = %d, want %d", delivered.Load(), dropped, got, raised)
	}
}

func TestSignalsConcurrencyBound(t *testing.T) {
	const limit, raised = 2, 6
	s := NewSignals(0)
	s.MaxConcurrent = limit
	var running, peak atomic.Int32
	started := make(chan struct{}, raised)
	release := make(chan struct{})
	handler := func(context.Context, uint8) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		started <- struct{}{}
		<-release
		running.Add(-1)
		return nil
	}
	for num := range uint8(raised) {
		s.Register(num, "", handler)
	}
	serve(t, s)
	for num := range uint8(raised) {
		s.Raise(num)
	}
	// Fill every slot, then free one slot per further start, so the
	// peak reaches the limit and could only exceed it by a bug.
	for range limit {
		<-started
	}
	for range raised - limit {
		release <- struct{}{}
		<-started
	}
	for range limit {
		release <- struct{}{}
	}
	if got := peak.Load(); got != limit {
		t.Errorf("peak concurrent handlers = %d, want %d", got, limit)
	}
}

// TestSignalsCoalesce: while a signal is pending, further raises merge
// into it; while its handler runs, raises make one more run after it, and
// the handler never overlaps with itself.
func TestSignalsCoalesce(t *testing.T) {
	s := NewSignals(0)
	s.Counters = &Counters{}
	s.MinInterval = time.Millisecond
	var runs, running, overlaps atomic.Int32
	started := make(chan struct{}, 8)
	release := make(chan struct{})
	s.Register(9, "", func(context.Context, uint8) error {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		runs.Add(1)
		started <- struct{}{}
		<-release
		running.Add(-1)
		return nil
	})
	// Before Serve: one pending delivery, four merged raises.
	for range 5 {
		if err := s.Raise(9); err != nil {
			t.Fatalf("Raise(9) = %v", err)
		}
	}
	if got := s.Counters.SignalsCoalesced.Load(); got != 4 {
		t.Errorf("coalesced after 5 raises of a pending signal = %d, want 4", got)
	}
	serve(t, s)
	<-started
	// Running: the first raise makes it pending again, the others merge.
	for range 3 {
		s.Raise(9)
	}
	release <- struct{}{}
	<-started // the one run owed
	release <- struct{}{}
	waitForCount(t, "the handler to finish", func() bool { return running.Load() == 0 })
	time.Sleep(20 * time.Millisecond) // room for a run that must not come
	if got := runs.Load(); got != 2 {
		t.Errorf("handler ran %d times, want 2 (one per pending delivery)", got)
	}
	if got := s.Counters.SignalsCoalesced.Load(); got != 6 {
		t.Errorf("coalesced = %d, want 6", got)
	}
	if overlaps.Load() != 0 {
		t.Error("the handler of one signal ran twice at once")
	}
}

// TestSignalsSelfRaise: a handler that raises its own signal runs again
// no sooner than MinInterval after each run, so a storm is bounded: in
// 300 ms with a 50 ms interval it runs at most 300/50+1 times.
func TestSignalsSelfRaise(t *testing.T) {
	s := NewSignals(0)
	s.Counters = &Counters{}
	s.MinInterval = 50 * time.Millisecond
	var runs atomic.Int32
	s.Register(4, "", func(context.Context, uint8) error {
		runs.Add(1)
		s.Raise(4)
		s.Raise(4) // merged into the first
		return nil
	})
	stop := serve(t, s)
	s.Raise(4)
	time.Sleep(300 * time.Millisecond)
	stop()
	got := runs.Load()
	if got < 1 || got > 7 {
		t.Errorf("self-raising handler ran %d times in 300 ms with a 50 ms interval, want 1..7", got)
	}
	if s.Counters.SignalsCoalesced.Load() < int64(got)-1 {
		t.Errorf("coalesced %d with %d runs raising twice each", s.Counters.SignalsCoalesced.Load(), got)
	}
}

func waitForCount(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// boundFunc is a BoundCallable whose interpreter ends when gone closes.
type boundFunc struct {
	gone  chan struct{}
	calls atomic.Int32
}

func (f *boundFunc) Call(context.Context, []Value) (Value, error) {
	f.calls.Add(1)
	return nil, nil
}
func (f *boundFunc) Gone() <-chan struct{} { return f.gone }

// callableFunc is a Callable any interpreter can run.
type callableFunc func()

func (f callableFunc) Call(context.Context, []Value) (Value, error) { f(); return nil, nil }

func registerSignal(t *testing.T, env *Registrations, num uint8, fn Callable) error {
	t.Helper()
	for _, f := range Funcs() {
		if f.Name == "register_signal" {
			_, err := f.Invoke(context.Background(), env, []Value{int64(num), "", fn})
			return err
		}
	}
	t.Fatal("no register_signal")
	return nil
}

// boundWorld is a committed generation over a State of its own, and ended,
// which counts the log records msg (naming attr want) logged since the
// last count.
func boundWorld(t *testing.T, msg, attr, want string) (st *State, env *Registrations, ended func() int) {
	t.Helper()
	logger, records := newRecordLogger()
	st, err := NewState(StateConfig{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env = NewRegistrations(st, t.TempDir())
	if err := env.Commit(nil); err != nil {
		t.Fatal(err)
	}
	ended = func() int {
		n := 0
		for {
			select {
			case r := <-records:
				if r.Message == msg {
					if got := recordAttr(r, attr).String(); got != want {
						t.Errorf("%q logged for %s %s, want %s", msg, attr, got, want)
					}
					n++
				}
			case <-time.After(50 * time.Millisecond):
				return n
			}
		}
	}
	return st, env, ended
}

func TestBoundSignalHandler(t *testing.T) {
	st, env, ended := boundWorld(t, SignalEndedMsg, "signal", "5")

	// The registration ends with the interpreter, reported once.
	f := &boundFunc{gone: make(chan struct{})}
	if err := registerSignal(t, env, 5, f); err != nil {
		t.Fatal(err)
	}
	if err := st.Signals.RaiseSync(context.Background(), 5); err != nil || f.calls.Load() != 1 {
		t.Fatalf("RaiseSync = %v with %d calls, want the bound handler run", err, f.calls.Load())
	}
	close(f.gone)
	waitForCount(t, "signal 5 unregistered", func() bool { return !env.SignalRegistered(5) && !st.Signals.Registered(5) })
	if n := ended(); n != 1 {
		t.Errorf("%d lines %q, want 1", n, SignalEndedMsg)
	}
	if got := env.SignalNums(); len(got) != 0 {
		t.Errorf("the generation still lists signals %v", got)
	}

	// Replaced before its interpreter ended: the replacement stays.
	f = &boundFunc{gone: make(chan struct{})}
	if err := registerSignal(t, env, 5, f); err != nil {
		t.Fatal(err)
	}
	if err := registerSignal(t, env, 5, callableFunc(func() {})); err != nil {
		t.Fatal(err)
	}
	close(f.gone)
	if n := ended(); n != 0 || !env.SignalRegistered(5) || !st.Signals.Registered(5) {
		t.Errorf("a replaced bound handler's end: %d lines, registered %v/%v; want 0 lines and the replacement registered",
			n, env.SignalRegistered(5), st.Signals.Registered(5))
	}

	// Bound to an interpreter already gone: refused.
	if err := registerSignal(t, env, 6, f); !errors.Is(err, ErrFuncGone) {
		t.Errorf("registering a function whose interpreter is gone: %v, want ErrFuncGone", err)
	}

	// The next generation replaced it: its end changes nothing.
	f = &boundFunc{gone: make(chan struct{})}
	if err := registerSignal(t, env, 7, f); err != nil {
		t.Fatal(err)
	}
	next := NewRegistrations(st, env.Dir)
	var ran atomic.Bool
	if err := next.RegisterSignal(7, "", func(context.Context, uint8) error { ran.Store(true); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := next.Commit(env); err != nil {
		t.Fatal(err)
	}
	env.Close(context.Background())
	close(f.gone)
	if n := ended(); n != 0 || !next.SignalRegistered(7) {
		t.Errorf("the end of a replaced generation's bound handler: %d lines, registered %v; want 0 lines, registered",
			n, next.SignalRegistered(7))
	}
	if err := st.Signals.RaiseSync(context.Background(), 7); err != nil || !ran.Load() {
		t.Errorf("RaiseSync(7) = %v, ran %v; want the next generation's handler", err, ran.Load())
	}
}

// TestBoundRPC: an RPC function bound to an interpreter ends as a bound
// signal handler does, by the same mechanism.
func TestBoundRPC(t *testing.T) {
	st, env, ended := boundWorld(t, RPCEndedMsg, "rpc", "dyn")
	registered := func(e *Registrations) bool {
		_, mine := e.LookupRPC("dyn")
		_, shared := st.RPC.Lookup("dyn")
		return mine && shared
	}

	// The registration ends with the interpreter, reported once.
	gone := make(chan struct{})
	if err := env.RegisterBoundRPC("dyn", constFunc("a"), gone); err != nil {
		t.Fatal(err)
	}
	if got, err := st.RPC.Call(context.Background(), "dyn"); string(got) != "a" || err != nil {
		t.Fatalf("Call(dyn) = %q, %v; want a", got, err)
	}
	close(gone)
	waitForCount(t, "dyn unregistered", func() bool {
		_, mine := env.LookupRPC("dyn")
		_, shared := st.RPC.Lookup("dyn")
		return !mine && !shared
	})
	if n := ended(); n != 1 {
		t.Errorf("%d lines %q, want 1", n, RPCEndedMsg)
	}
	if got := env.RPCNames(); len(got) != 0 {
		t.Errorf("the generation still lists RPC functions %v", got)
	}

	// Replaced before its interpreter ended: the replacement stays.
	gone = make(chan struct{})
	if err := env.RegisterBoundRPC("dyn", constFunc("b"), gone); err != nil {
		t.Fatal(err)
	}
	if err := env.RegisterRPC("dyn", constFunc("c")); err != nil {
		t.Fatal(err)
	}
	close(gone)
	if n := ended(); n != 0 || !registered(env) {
		t.Errorf("a replaced bound function's end: %d lines, registered %v; want 0 lines and the replacement registered", n, registered(env))
	}

	// Bound to an interpreter already gone: refused.
	if err := env.RegisterBoundRPC("other", constFunc("x"), gone); !errors.Is(err, ErrFuncGone) {
		t.Errorf("registering a function whose interpreter is gone: %v, want ErrFuncGone", err)
	}

	// The next generation took the name over while this one drains: the
	// end of this one's function leaves the next one's alone.
	gone = make(chan struct{})
	if err := env.RegisterBoundRPC("dyn", constFunc("d"), gone); err != nil {
		t.Fatal(err)
	}
	next := NewRegistrations(st, env.Dir)
	if err := next.RegisterRPC("dyn", constFunc("next")); err != nil {
		t.Fatal(err)
	}
	if err := next.Commit(env); err != nil {
		t.Fatal(err)
	}
	close(gone)
	if n := ended(); n != 0 || !registered(next) {
		t.Errorf("the end of a replaced generation's bound function: %d lines, registered %v; want 0 lines, registered", n, registered(next))
	}
	if got, err := st.RPC.Call(context.Background(), "dyn"); string(got) != "next" || err != nil {
		t.Errorf("Call(dyn) = %q, %v; want the next generation's", got, err)
	}
}
