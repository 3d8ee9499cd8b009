package api

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestLongCallsBound(t *testing.T) {
	l := NewLongCalls(2)
	for range 2 {
		if err := l.Take(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Take(); !errors.Is(err, ErrTooManyWebSockets) {
		t.Fatalf("third Take: %v, want ErrTooManyWebSockets", err)
	}
	if n := l.Open(); n != 2 {
		t.Errorf("Open() = %d, want 2", n)
	}
	l.Give()
	if err := l.Take(); err != nil {
		t.Errorf("Take after Give: %v", err)
	}
	if got := NewLongCalls(0).Max(); got != DefaultMaxLongCalls {
		t.Errorf("NewLongCalls(0).Max() = %d, want %d", got, DefaultMaxLongCalls)
	}
	unbounded := NewLongCalls(-1)
	for range 1000 {
		if err := unbounded.Take(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDetachCallDetachesEveryHeldInterpreter(t *testing.T) {
	var got []string
	ctx := WithDetach(context.Background(), func() { got = append(got, "outer") })
	ctx = WithDetach(ctx, func() { got = append(got, "inner") })
	DetachCall(ctx)
	DetachCall(ctx)
	if want := []string{"inner", "outer"}; !slices.Equal(got, want) {
		t.Errorf("detached %v, want %v", got, want)
	}
}

func TestLongCallLimitPausesWhileWaiting(t *testing.T) {
	ctx, s, done := NewScope(context.Background(), nil, 100*time.Millisecond)
	defer done()
	if !s.startLong(func() {}) || s.startLong(func() {}) {
		t.Fatal("startLong: want true once, then false")
	}
	resume := s.pauseLimit()
	time.Sleep(200 * time.Millisecond) // twice the limit, waiting
	if ctx.Err() != nil {
		t.Fatalf("interrupted while paused: %v", context.Cause(ctx))
	}
	resume(true)
	if left := time.Until(s.Deadline()); left < 50*time.Millisecond {
		t.Errorf("after a message the call has %v left, want its full limit", left)
	}
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), ErrHarakiri) {
		t.Errorf("cause %v, want ErrHarakiri", context.Cause(ctx))
	}
}

func TestShortCallLimitKeepsRunning(t *testing.T) {
	ctx, s, done := NewScope(context.Background(), nil, 50*time.Millisecond)
	defer done()
	resume := s.pauseLimit()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a call that made no handshake was not interrupted while it waited")
	}
	resume(true)
}

func TestLongCallEndRunsWhenTheCallEnds(t *testing.T) {
	_, s, done := NewScope(context.Background(), nil, 0)
	ended := 0
	s.startLong(func() { ended++ })
	done()
	if ended != 1 {
		t.Errorf("end ran %d times, want 1", ended)
	}
}

func TestLifetimeBoundsALongCall(t *testing.T) {
	ctx, s, done := NewScope(context.Background(), nil, time.Hour)
	defer done()
	s.startLong(func() {})
	s.SetLifetime(50 * time.Millisecond)
	resume := s.pauseLimit() // waiting does not stop the lifetime
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call outlived its lifetime")
	}
	resume(true)
	if cause := context.Cause(ctx); !errors.Is(cause, ErrLifetime) || !errors.Is(cause, ErrHarakiri) {
		t.Errorf("cause %v, want ErrLifetime wrapping ErrHarakiri", cause)
	}
}
