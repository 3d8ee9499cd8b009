package gointerp

import (
	"context"
	"slices"
	"sync"
)

// pool holds the interpreters of one file. It grows on demand up to max:
// a call finding none idle builds one if there is room (get says so),
// else waits, as long as its context allows. A call may also want one
// particular interpreter (to run a function made in it during an earlier
// call). Idle interpreters are reused most recently used first; waiters
// are served first come, first served, a waiter for a particular
// interpreter before the others.
type pool struct {
	mu      sync.Mutex
	idle    []*vm
	n       int // interpreters alive or being built
	max     int
	waiters []*waiter
	closed  bool
}

// waiter is a call waiting for an interpreter. It receives one, or nil:
// for a waiter for any, "room was made, try again"; for a waiter for a
// particular one, "it is gone" (or the pool closed).
type waiter struct {
	want *vm
	ch   chan *vm
}

// get borrows an interpreter: want, or any (want nil). build reports
// that the caller may build a new one (and must call failed if it
// cannot).
func (pl *pool) get(ctx context.Context, want *vm) (v *vm, build bool, err error) {
	for {
		pl.mu.Lock()
		if pl.closed {
			pl.mu.Unlock()
			return nil, false, ErrClosed
		}
		if want != nil {
			if want.gone.Load() {
				pl.mu.Unlock()
				return nil, false, ErrVMGone
			}
			if i := slices.Index(pl.idle, want); i >= 0 {
				pl.idle = slices.Delete(pl.idle, i, i+1)
				pl.mu.Unlock()
				return want, false, nil
			}
		} else {
			if n := len(pl.idle); n > 0 {
				v := pl.idle[n-1]
				pl.idle = pl.idle[:n-1]
				pl.mu.Unlock()
				return v, false, nil
			}
			if pl.n < pl.max {
				pl.n++
				pl.mu.Unlock()
				return nil, true, nil
			}
		}
		w := &waiter{want: want, ch: make(chan *vm, 1)}
		pl.waiters = append(pl.waiters, w)
		pl.mu.Unlock()

		select {
		case v := <-w.ch:
			if v != nil {
				return v, false, nil
			}
			if want != nil {
				return nil, false, pl.goneErr()
			}
			// Room was made: try again.
		case <-ctx.Done():
			pl.mu.Lock()
			if i := slices.Index(pl.waiters, w); i >= 0 {
				pl.waiters = slices.Delete(pl.waiters, i, i+1)
				pl.mu.Unlock()
				return nil, false, context.Cause(ctx)
			}
			pl.mu.Unlock()
			if v := <-w.ch; v != nil { // handed over meanwhile: give it back
				pl.put(v)
			} else if want == nil {
				pl.wakeAny() // pass the room on
			}
			return nil, false, context.Cause(ctx)
		}
	}
}

func (pl *pool) goneErr() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return ErrClosed
	}
	return ErrVMGone
}

// put returns a healthy interpreter: to a waiter for it, else to the
// first waiter for any, else to the idle ones. After close it closes it.
func (pl *pool) put(v *vm) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		v.close()
		return
	}
	i := slices.IndexFunc(pl.waiters, func(w *waiter) bool { return w.want == v })
	if i < 0 {
		i = slices.IndexFunc(pl.waiters, func(w *waiter) bool { return w.want == nil })
	}
	if i < 0 {
		pl.idle = append(pl.idle, v)
		pl.mu.Unlock()
		return
	}
	w := pl.waiters[i]
	pl.waiters = slices.Delete(pl.waiters, i, i+1)
	pl.mu.Unlock()
	w.ch <- v
}

// add puts a new interpreter built outside get (the first, at load).
func (pl *pool) add(v *vm) {
	pl.mu.Lock()
	pl.n++
	pl.mu.Unlock()
	pl.put(v)
}

// discard closes a borrowed interpreter that must not serve again: the
// calls waiting for it learn it is gone, and a waiter for any may build
// a replacement.
func (pl *pool) discard(v *vm) {
	v.close()
	pl.mu.Lock()
	pl.n--
	pl.waiters = slices.DeleteFunc(pl.waiters, func(w *waiter) bool {
		if w.want == v {
			w.ch <- nil
			return true
		}
		return false
	})
	pl.mu.Unlock()
	pl.wakeAny()
}

// failed gives back the room of a build that failed.
func (pl *pool) failed() {
	pl.mu.Lock()
	pl.n--
	pl.mu.Unlock()
	pl.wakeAny()
}

// wakeAny tells the first waiter for any interpreter to try again.
func (pl *pool) wakeAny() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if i := slices.IndexFunc(pl.waiters, func(w *waiter) bool { return w.want == nil }); i >= 0 {
		w := pl.waiters[i]
		pl.waiters = slices.Delete(pl.waiters, i, i+1)
		w.ch <- nil
	}
}

// close closes the idle interpreters and fails the waiting calls; the
// borrowed ones are closed when they come back.
func (pl *pool) close() {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	pl.closed = true
	idle, waiters := pl.idle, pl.waiters
	pl.idle, pl.waiters = nil, nil
	pl.mu.Unlock()
	for _, w := range waiters {
		w.ch <- nil
	}
	for _, v := range idle {
		v.close()
	}
}

// idleCount returns the number of idle interpreters.
func (pl *pool) idleCount() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.idle)
}

// size returns the number of interpreters alive or being built.
func (pl *pool) size() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.n
}
