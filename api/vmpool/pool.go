// Package vmpool is the pool of interpreters each engine keeps per
// program (or per file): calls borrow any interpreter, or one in
// particular (to run a function made in it during an earlier call),
// waiting as long as their context allows.
//
// Idle interpreters are reused most recently used first, so a lightly
// loaded program keeps running in warm ones; waiters are served first
// come, first served, a waiter for a particular interpreter before the
// others. A pool is either filled by its owner (Put, Max 0) or grows on
// demand up to Max: Get then tells a caller to build one.
//
// A call that will hold its interpreter for long (a WebSocket) detaches
// it (Detach, or api.DetachCall through the context Lend made): the
// interpreter leaves the pool's count, so that the pool makes another for
// the other calls, and when it comes back it takes a free place or is
// closed.
package vmpool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/scripthost/scripthost/api"
)

// ErrBusy is what Get returns when no interpreter came free within
// MaxWait.
var ErrBusy = errors.New("vmpool: every interpreter is busy")

// Pool holds idle interpreters of type V and the calls waiting for one.
type Pool[V comparable] struct {
	// MaxWait bounds how long Get waits for an interpreter (0: as long as
	// its context allows). Set it before the pool is used.
	MaxWait time.Duration
	// Counters, when set, counts in PoolTimeouts every Get that failed
	// with ErrBusy. Set it before the pool is used.
	Counters *api.Counters

	max       int
	gone      func(V) bool
	closeVM   func(V)
	errClosed error
	errGone   error

	mu      sync.Mutex
	idle    []V
	n       int // interpreters alive or being built (growing pools)
	owed    int // places of detached interpreters not yet refilled (filled pools)
	waiters []*waiter[V]
	closed  bool
	// detached are the borrowed interpreters that left the count.
	detached map[V]struct{}
}

// waiter is a call waiting for an interpreter.
type waiter[V comparable] struct {
	want V // the zero V: any
	ch   chan grant[V]
}

// grant is what a waiter receives: an interpreter; or, for a waiter for
// any in a growing pool, room to build one (counted for it already, so no
// later call can take it first); or neither: the interpreter it waits for
// is gone, or the pool closed.
type grant[V comparable] struct {
	v     V
	build bool
}

// New returns a pool. max > 0 makes it grow on demand up to max; gone
// reports a discarded interpreter; closeVM closes one; errClosed and
// errGone are what Get returns after Close and for a gone interpreter.
func New[V comparable](max int, gone func(V) bool, closeVM func(V), errClosed, errGone error) *Pool[V] {
	return &Pool[V]{max: max, gone: gone, closeVM: closeVM, errClosed: errClosed, errGone: errGone}
}

// Get borrows an interpreter: want, or any (want the zero V). build
// reports that the caller may build a new one instead (and must call
// Failed if it cannot, Add is not needed: it is counted).
func (pl *Pool[V]) Get(ctx context.Context, want V) (v V, build bool, err error) {
	var zero V
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return zero, false, pl.errClosed
	}
	if want != zero {
		if pl.gone(want) {
			pl.mu.Unlock()
			return zero, false, pl.errGone
		}
		if i := slices.Index(pl.idle, want); i >= 0 {
			pl.idle = slices.Delete(pl.idle, i, i+1)
			pl.mu.Unlock()
			return want, false, nil
		}
	} else {
		if n := len(pl.idle); n > 0 {
			v := pl.idle[n-1]
			pl.idle[n-1] = zero
			pl.idle = pl.idle[:n-1]
			pl.mu.Unlock()
			return v, false, nil
		}
		if pl.takeRoomLocked() {
			pl.mu.Unlock()
			return zero, true, nil
		}
	}
	w := &waiter[V]{want: want, ch: make(chan grant[V], 1)}
	pl.waiters = append(pl.waiters, w)
	pl.mu.Unlock()

	if pl.MaxWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, pl.MaxWait,
			fmt.Errorf("%w: none came free within %v", ErrBusy, pl.MaxWait))
		defer cancel()
	}
	select {
	case g := <-w.ch:
		if g.v != zero || g.build {
			return g.v, g.build, nil
		}
		return zero, false, pl.goneErr()
	case <-ctx.Done():
		pl.mu.Lock()
		if i := slices.Index(pl.waiters, w); i >= 0 {
			pl.waiters = slices.Delete(pl.waiters, i, i+1)
			pl.mu.Unlock()
			return zero, false, pl.gaveUp(ctx)
		}
		pl.mu.Unlock()
		// Served meanwhile: pass on what it was given.
		switch g := <-w.ch; {
		case g.v != zero:
			pl.Put(g.v)
		case g.build:
			pl.Failed()
		}
		return zero, false, pl.gaveUp(ctx)
	}
}

// gaveUp returns why a waiting Get ended, counting ErrBusy.
func (pl *Pool[V]) gaveUp(ctx context.Context) error {
	err := context.Cause(ctx)
	if pl.Counters != nil && errors.Is(err, ErrBusy) {
		pl.Counters.PoolTimeouts.Add(1)
	}
	return err
}

func (pl *Pool[V]) goneErr() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return pl.errClosed
	}
	return pl.errGone
}

// Put returns a healthy interpreter: to a waiter for it, else to the
// first waiter for any, else to the idle ones. After Close it closes it.
// A detached interpreter comes back only into a free place; without one
// it is closed, and the calls waiting for it learn it is gone.
func (pl *Pool[V]) Put(v V) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		pl.closeVM(v)
		return
	}
	if _, ok := pl.detached[v]; ok {
		delete(pl.detached, v)
		if !pl.takeRoomLocked() {
			pl.mu.Unlock()
			pl.closeVM(v) // gone from now on: no new waiter for it
			pl.mu.Lock()
			pl.dropWaitersForLocked(v)
			pl.mu.Unlock()
			return
		}
	}
	i := slices.IndexFunc(pl.waiters, func(w *waiter[V]) bool { return w.want == v })
	if i < 0 {
		var zero V
		i = slices.IndexFunc(pl.waiters, func(w *waiter[V]) bool { return w.want == zero })
	}
	if i < 0 {
		pl.idle = append(pl.idle, v)
		pl.mu.Unlock()
		return
	}
	w := pl.waiters[i]
	pl.waiters = slices.Delete(pl.waiters, i, i+1)
	pl.mu.Unlock()
	w.ch <- grant[V]{v: v}
}

// Add puts an interpreter built outside Get into a growing pool (the
// first, at load).
func (pl *Pool[V]) Add(v V) {
	pl.mu.Lock()
	pl.n++
	pl.mu.Unlock()
	pl.Put(v)
}

// Discard takes out a borrowed interpreter that must not serve again and
// that gone already reports: the calls waiting for it learn it is gone,
// and in a growing pool its room goes to the first waiter for any, who
// builds a replacement. The result tells the owner of a filled pool
// whether to Put a replacement: not for a detached interpreter whose
// place was refilled already.
func (pl *Pool[V]) Discard(v V) (replace bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.dropWaitersForLocked(v)
	if _, ok := pl.detached[v]; ok {
		// Its place left the count when it was detached.
		delete(pl.detached, v)
		if pl.max == 0 && pl.owed > 0 {
			pl.owed--
			return true
		}
		return false
	}
	if pl.max > 0 {
		pl.freeRoomLocked()
		return false
	}
	return true
}

// dropWaitersForLocked tells the calls waiting for v that it is gone;
// pl.mu is held.
func (pl *Pool[V]) dropWaitersForLocked(v V) {
	pl.waiters = slices.DeleteFunc(pl.waiters, func(w *waiter[V]) bool {
		if w.want == v {
			w.ch <- grant[V]{}
			return true
		}
		return false
	})
}

// Failed gives back the room of a build that failed.
func (pl *Pool[V]) Failed() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.freeRoomLocked()
}

// Detach takes borrowed interpreter v out of the pool's count while its
// call goes on: its place goes to the first waiter for any, who builds an
// interpreter, or is kept free for the next Get to build one (a filled
// pool then tells callers to build, as a growing one does). Detaching an
// interpreter twice, or after Close, does nothing.
func (pl *Pool[V]) Detach(v V) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return
	}
	if _, ok := pl.detached[v]; ok || slices.Contains(pl.idle, v) {
		return // detached already, or no longer borrowed
	}
	if pl.detached == nil {
		pl.detached = make(map[V]struct{})
	}
	pl.detached[v] = struct{}{}
	pl.freeRoomLocked()
}

// Detached returns how many borrowed interpreters are detached.
func (pl *Pool[V]) Detached() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.detached)
}

// takeRoomLocked takes a free place for an interpreter, if there is one:
// below Max in a growing pool, a detached one's in a filled pool; pl.mu
// is held.
func (pl *Pool[V]) takeRoomLocked() bool {
	if pl.max > 0 && pl.n < pl.max {
		pl.n++
		return true
	}
	if pl.max == 0 && pl.owed > 0 {
		pl.owed--
		return true
	}
	return false
}

// freeRoomLocked passes the room of an interpreter that is no more to the
// first waiter for any, or counts it free; pl.mu is held.
func (pl *Pool[V]) freeRoomLocked() {
	var zero V
	if i := slices.IndexFunc(pl.waiters, func(w *waiter[V]) bool { return w.want == zero }); i >= 0 {
		w := pl.waiters[i]
		pl.waiters = slices.Delete(pl.waiters, i, i+1)
		w.ch <- grant[V]{build: true}
		return
	}
	if pl.max > 0 {
		pl.n--
	} else {
		pl.owed++
	}
}

// Close closes the idle interpreters and fails the waiting calls; the
// borrowed ones are closed when they come back.
func (pl *Pool[V]) Close() {
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
		w.ch <- grant[V]{}
	}
	for _, v := range idle {
		pl.closeVM(v)
	}
}

// Idle returns the idle interpreters, most recently used last.
func (pl *Pool[V]) Idle() []V {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return slices.Clone(pl.idle)
}

// Size returns how many interpreters a growing pool has alive or being
// built.
func (pl *Pool[V]) Size() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.n
}

// Lend returns ctx marking v, borrowed from pl, as held by the call of
// ctx: api.DetachCall then detaches it (see Detach).
func (pl *Pool[V]) Lend(ctx context.Context, v V) context.Context {
	return api.WithDetach(ctx, func() { pl.Detach(v) })
}
