package lua

import (
	"context"
	"slices"
	"sync"
)

// pool holds the idle states of a program. Calls borrow any state, or one
// particular state (to run a function made in it during an earlier
// call); waiting honours the caller's context. Idle states are reused
// most recently used first, so a lightly loaded program keeps running in
// warm states; waiters are served first come, first served, a waiter for a
// particular state before any other.
type pool struct {
	mu      sync.Mutex
	free    []*vm
	waiters []*waiter
	closed  bool
}

// waiter is a call waiting for a state.
type waiter struct {
	want *vm      // nil: any state
	ch   chan *vm // gets the state, or nil when it is gone or the pool closed
}

// get borrows a state: any (want nil) or want.
func (pl *pool) get(ctx context.Context, want *vm) (*vm, error) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil, ErrClosed
	}
	if want == nil {
		if n := len(pl.free); n > 0 {
			v := pl.free[n-1]
			pl.free = pl.free[:n-1]
			pl.mu.Unlock()
			return v, nil
		}
	} else {
		if want.gone.Load() {
			pl.mu.Unlock()
			return nil, ErrStateGone
		}
		if i := slices.Index(pl.free, want); i >= 0 {
			pl.free = slices.Delete(pl.free, i, i+1)
			pl.mu.Unlock()
			return want, nil
		}
	}
	w := &waiter{want: want, ch: make(chan *vm, 1)}
	pl.waiters = append(pl.waiters, w)
	pl.mu.Unlock()

	select {
	case v := <-w.ch:
		if v == nil {
			return nil, pl.whyNil()
		}
		return v, nil
	case <-ctx.Done():
		pl.mu.Lock()
		if i := slices.Index(pl.waiters, w); i >= 0 {
			pl.waiters = slices.Delete(pl.waiters, i, i+1)
			pl.mu.Unlock()
			return nil, context.Cause(ctx)
		}
		pl.mu.Unlock()
		if v := <-w.ch; v != nil { // handed over meanwhile: give it back
			pl.put(v)
		}
		return nil, context.Cause(ctx)
	}
}

func (pl *pool) whyNil() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return ErrClosed
	}
	return ErrStateGone
}

// put returns a state: to a waiter for it, else to the first waiter for
// any state, else to the idle states. After close it closes the state.
func (pl *pool) put(v *vm) {
	pl.mu.Lock()
	pl.putLocked(v)
}

// putLocked is put with pl.mu held; it unlocks.
func (pl *pool) putLocked(v *vm) {
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
		pl.free = append(pl.free, v)
		pl.mu.Unlock()
		return
	}
	w := pl.waiters[i]
	pl.waiters = slices.Delete(pl.waiters, i, i+1)
	pl.mu.Unlock()
	w.ch <- v
}

// replace returns nv in place of the discarded old: the calls waiting for
// old learn that it is gone.
func (pl *pool) replace(old, nv *vm) {
	pl.mu.Lock()
	pl.waiters = slices.DeleteFunc(pl.waiters, func(w *waiter) bool {
		if w.want == old {
			w.ch <- nil
			return true
		}
		return false
	})
	pl.putLocked(nv)
}

// close closes the idle states and fails the waiting calls; states still
// borrowed are closed when put back.
func (pl *pool) close() {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	pl.closed = true
	free, waiters := pl.free, pl.waiters
	pl.free, pl.waiters = nil, nil
	pl.mu.Unlock()
	for _, w := range waiters {
		w.ch <- nil
	}
	for _, v := range free {
		v.close()
	}
}

// idle returns the number of idle states.
func (pl *pool) idle() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.free)
}
