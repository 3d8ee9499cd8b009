package api

import (
	"context"
	"errors"
	"fmt"
)

// DefaultLocks is the number of user locks NewLocks creates when given 0.
const DefaultLocks = 64

// Lock errors, wrapped with the lock number.
var (
	ErrNoSuchLock = errors.New("api: no such lock")
	ErrNotLocked  = errors.New("api: lock not locked")
)

// Locks is a fixed set of numbered mutexes shared by all scripts, like
// uWSGI's user locks (uwsgi.lock(n) / uwsgi.unlock(n)). Unlike sync.Mutex,
// waiting honours a context, so a script blocked on a lock still obeys its
// deadline; each lock is therefore a channel with one slot, full while
// held. As in uWSGI, a lock is not owned: any goroutine may unlock it.
type Locks struct {
	locks []chan struct{}
}

// NewLocks returns n unlocked locks numbered 0..n-1; n <= 0 means
// DefaultLocks.
func NewLocks(n int) *Locks {
	if n <= 0 {
		n = DefaultLocks
	}
	l := &Locks{locks: make([]chan struct{}, n)}
	for i := range l.locks {
		l.locks[i] = make(chan struct{}, 1)
	}
	return l
}

// Len returns the number of locks.
func (l *Locks) Len() int { return len(l.locks) }

func (l *Locks) lock(num int) (chan struct{}, error) {
	if num < 0 || num >= len(l.locks) {
		return nil, fmt.Errorf("%w: %d (have 0..%d)", ErrNoSuchLock, num, len(l.locks)-1)
	}
	return l.locks[num], nil
}

// Lock acquires lock num, waiting until it is free or ctx is done; in the
// latter case the error wraps ctx.Err(). A free lock is taken even if ctx
// is already done, so the outcome does not depend on select's random choice.
func (l *Locks) Lock(ctx context.Context, num int) error {
	ch, err := l.lock(num)
	if err != nil {
		return err
	}
	select {
	case ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("api: lock %d: %w", num, context.Cause(ctx))
	}
}

// TryLock acquires lock num if it is free and reports whether it did.
func (l *Locks) TryLock(num int) (bool, error) {
	ch, err := l.lock(num)
	if err != nil {
		return false, err
	}
	select {
	case ch <- struct{}{}:
		return true, nil
	default:
		return false, nil
	}
}

// Unlock releases lock num; a lock that is not held gives ErrNotLocked.
func (l *Locks) Unlock(num int) error {
	ch, err := l.lock(num)
	if err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	default:
		return fmt.Errorf("%w: %d", ErrNotLocked, num)
	}
}
