package api

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLocksRange(t *testing.T) {
	ctx := context.Background()
	l := NewLocks(0)
	if got := l.Len(); got != DefaultLocks {
		t.Errorf("NewLocks(0).Len() = %d, want %d", got, DefaultLocks)
	}
	for _, num := range []int{-1, DefaultLocks, 1 << 20} {
		if err := l.Lock(ctx, num); !errors.Is(err, ErrNoSuchLock) {
			t.Errorf("Lock(%d) = %v, want %v", num, err, ErrNoSuchLock)
		}
		if _, err := l.TryLock(num); !errors.Is(err, ErrNoSuchLock) {
			t.Errorf("TryLock(%d) = %v, want %v", num, err, ErrNoSuchLock)
		}
		if err := l.Unlock(num); !errors.Is(err, ErrNoSuchLock) {
			t.Errorf("Unlock(%d) = %v, want %v", num, err, ErrNoSuchLock)
		}
	}
}

func TestLocksTryLockUnlock(t *testing.T) {
	l := NewLocks(2)
	steps := []struct {
		op      string
		num     int
		wantOK  bool
		wantErr error
	}{
		{"unlock", 0, false, ErrNotLocked},
		{"try", 0, true, nil},
		{"try", 0, false, nil},
		{"try", 1, true, nil}, // locks are independent
		{"unlock", 0, false, nil},
		{"unlock", 0, false, ErrNotLocked},
		{"try", 0, true, nil},
	}
	for i, s := range steps {
		var ok bool
		var err error
		if s.op == "try" {
			ok, err = l.TryLock(s.num)
		} else {
			err = l.Unlock(s.num)
		}
		if ok != s.wantOK || !errors.Is(err, s.wantErr) {
			t.Errorf("step %d: %s(%d) = %v, %v, want %v, %v", i, s.op, s.num, ok, err, s.wantOK, s.wantErr)
		}
	}
}

func TestLocksContext(t *testing.T) {
	l := NewLocks(1)
	if err := l.Lock(context.Background(), 0); err != nil {
		t.Fatalf("Lock(0) = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.Lock(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock(0) while held = %v, want %v", err, context.DeadlineExceeded)
	}
	// A free lock is taken even when ctx is already done.
	l.Unlock(0)
	if err := l.Lock(ctx, 0); err != nil {
		t.Errorf("Lock(0) when free with expired ctx = %v, want nil", err)
	}
}

func TestLocksWaiterAcquires(t *testing.T) {
	ctx := context.Background()
	l := NewLocks(1)
	l.Lock(ctx, 0)
	acquired := make(chan error)
	go func() { acquired <- l.Lock(ctx, 0) }()
	// Unlock from a different goroutine than the locker, as uWSGI allows.
	if err := l.Unlock(0); err != nil {
		t.Fatalf("Unlock(0) = %v", err)
	}
	if err := <-acquired; err != nil {
		t.Errorf("waiting Lock(0) = %v, want nil", err)
	}
}

func TestLocksMutualExclusion(t *testing.T) {
	ctx := context.Background()
	l := NewLocks(1)
	counter := 0 // guarded by lock 0; -race reports a broken lock
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if err := l.Lock(ctx, 0); err != nil {
					t.Errorf("Lock(0) = %v", err)
					return
				}
				counter++
				l.Unlock(0)
			}
		})
	}
	wg.Wait()
	if counter != 800 {
		t.Errorf("counter = %d, want 800", counter)
	}
}
