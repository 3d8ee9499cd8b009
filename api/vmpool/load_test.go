package vmpool

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/scripthost/scripthost/api"
)

var errNondeterministic = errors.New("replica differs")

func TestShapeCheck(t *testing.T) {
	first := Shape{Callbacks: 2, Apps: []string{"a", "b"}}
	for _, tt := range []struct {
		name string
		got  Shape
		ok   bool
	}{
		{"same", Shape{Callbacks: 2, Apps: []string{"a", "b"}}, true},
		{"more callbacks", Shape{Callbacks: 3, Apps: []string{"a", "b"}}, false},
		{"other apps", Shape{Callbacks: 2, Apps: []string{"a"}}, false},
	} {
		err := first.Check(tt.got, errNondeterministic)
		if got := err == nil; got != tt.ok || (err != nil && !errors.Is(err, errNondeterministic)) {
			t.Errorf("%s: Check = %v, want ok %v or an error wrapping the engine's", tt.name, err, tt.ok)
		}
	}
}

func TestFill(t *testing.T) {
	for _, tt := range []struct {
		name     string
		n        int
		failAt   int // the replica that cannot be built (0: none)
		wantIdle int
	}{
		{"full", 4, 0, 4},
		{"one", 1, 0, 1},
		{"replica fails", 4, 3, 0},
	} {
		pl := newTestPool(0)
		first := &fakeVM{id: 1}
		var made []*fakeVM
		err := pl.Fill(context.Background(), tt.n, first, func(context.Context) (*fakeVM, error) {
			if len(made)+2 == tt.failAt {
				return nil, errors.New("replica broke")
			}
			v := &fakeVM{id: len(made) + 2}
			made = append(made, v)
			return v, nil
		})
		if got := len(pl.Idle()); (err != nil) != (tt.failAt > 0) || got != tt.wantIdle {
			t.Errorf("%s: Fill = %v with %d idle, want %d idle", tt.name, err, got, tt.wantIdle)
		}
		if err != nil {
			for _, v := range append(made, first) {
				if !v.gone() {
					t.Errorf("%s: interpreter %d left open after Fill failed", tt.name, v.id)
				}
			}
			continue
		}
		if v, _, _ := pl.Get(context.Background(), nil); v != first {
			t.Errorf("%s: the first Get borrowed interpreter %d, want the first one", tt.name, v.id)
		}
	}
}

func TestRebuildCountsLoadTimeouts(t *testing.T) {
	var c api.Counters
	for _, err := range []error{nil, errors.New("syntax error"), fmt.Errorf("file: %w", api.ErrLoadTimeout)} {
		Rebuild(context.Background(), &c, func(ctx context.Context) (*fakeVM, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("Rebuild gave the replica no deadline")
			}
			return nil, err
		})
	}
	if got := c.LoadTimeouts.Load(); got != 1 {
		t.Errorf("LoadTimeouts = %d, want 1", got)
	}
}
