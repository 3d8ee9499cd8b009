package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestChargeBounds(t *testing.T) {
	m := newTestMemory(64<<20, &fakeHeap{inUse: 50 << 20, live: 50 << 20}) // cap 16 MiB
	m.heap.Store(50 << 20)
	ctx := WithMemory(context.Background(), m)
	tests := []struct {
		name string
		n    int64
		want error
	}{
		{"small", 1 << 10, nil},
		{"under the cap and the room", 8 << 20, nil},
		{"over the room", 15 << 20, ErrMemoryLimit},
		{"over the cap", 17 << 20, ErrAllocTooLarge},
		{"huge", 1 << 40, ErrAllocTooLarge},
		{"negative", -1, ErrAllocTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cctx, s, done := NewScope(ctx, nil, 0)
			defer done()
			err := Charge(cctx, tt.n)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Charge(%d) = %v, want %v", tt.n, err, tt.want)
			}
			wantCharged := int64(0)
			if tt.want == nil {
				wantCharged = tt.n
			}
			if got := s.Charged(); got != wantCharged {
				t.Errorf("Charged() = %d, want %d", got, wantCharged)
			}
		})
	}
}

// TestChargeCollectsBeforeRefusing: a reading that counts garbage does
// not refuse a charge that fits once the garbage is collected.
func TestChargeCollectsBeforeRefusing(t *testing.T) {
	h := &fakeHeap{inUse: 90 << 20, live: 10 << 20}
	m := newTestMemory(100<<20, h)
	m.heap.Store(h.inUse)
	if err := chargeTo(m, 20<<20); err != nil {
		t.Fatalf("charge with garbage to collect: %v", err)
	}
	if h.collections != 1 || m.Heap() != 10<<20 {
		t.Fatalf("%d collections, heap %d; want 1 and the live heap", h.collections, m.Heap())
	}
	h.inUse, h.live = 95<<20, 95<<20
	m.heap.Store(h.inUse)
	if err := chargeTo(m, 20<<20); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("charge with no room = %v, want ErrMemoryLimit", err)
	}
}

func TestChargeWithoutBudget(t *testing.T) {
	if err := Charge(context.Background(), 1<<20); err != nil {
		t.Fatalf("Charge without a budget: %v", err)
	}
	if err := Charge(context.Background(), DefaultMaxAlloc+1); !errors.Is(err, ErrAllocTooLarge) {
		t.Fatalf("Charge over the default cap = %v, want ErrAllocTooLarge", err)
	}
	var s *Scope
	if err := s.Charge(1 << 40); !errors.Is(err, ErrAllocTooLarge) {
		t.Fatalf("nil scope Charge = %v, want ErrAllocTooLarge", err)
	}
}

// fakeHeap gives Memory.step a heap that a collection shrinks to live.
type fakeHeap struct {
	inUse, live int64
	collections int
}

func newTestMemory(limit int64, h *fakeHeap) *Memory {
	m := NewMemory(limit)
	m.readHeap = func() int64 { return h.inUse }
	m.collect = func() { h.collections++; h.inUse = h.live }
	return m
}

func TestMemoryStepInterruptsTheCallThatAllocatedMost(t *testing.T) {
	h := &fakeHeap{}
	m := newTestMemory(100<<20, h)
	ctx := WithMemory(context.Background(), m)

	old, sOld, doneOld := NewScope(ctx, nil, 0)
	defer doneOld()
	sOld.started = time.Now().Add(-time.Second)
	big, sBig, doneBig := NewScope(ctx, nil, 0)
	defer doneBig()
	small, sSmall, doneSmall := NewScope(ctx, nil, 0)
	defer doneSmall()
	if err := sBig.Charge(10 << 20); err != nil {
		t.Fatal(err)
	}
	if err := sSmall.Charge(1 << 20); err != nil {
		t.Fatal(err)
	}

	// Under the soft limit: nothing happens, no collection.
	h.inUse, h.live = 50<<20, 50<<20
	if v := m.step(); v != nil || h.collections != 0 {
		t.Fatalf("step under the limit: victim %v, %d collections", v, h.collections)
	}
	// Over it, but garbage: a collection and nothing more.
	h.inUse, h.live = 95<<20, 30<<20
	if v := m.step(); v != nil || h.collections != 1 {
		t.Fatalf("step over the limit with garbage: victim %v, %d collections", v, h.collections)
	}
	// Live over it: the call charged most goes.
	h.inUse, h.live = 95<<20, 95<<20
	if v := m.step(); v != sBig {
		t.Fatalf("victim = %p, want the big call %p", v, sBig)
	}
	if err := context.Cause(big); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("victim's cause = %v, want ErrMemoryLimit", err)
	}
	if small.Err() != nil || old.Err() != nil {
		t.Fatal("other calls were interrupted too")
	}
	if m.Kills() != 1 {
		t.Fatalf("Kills() = %d, want 1", m.Kills())
	}
	doneBig()
	// Nothing charged more than another: the oldest goes, if it ran
	// long enough to be what filled the memory.
	doneSmall()
	sOld.started = time.Now()
	if v := m.step(); v != nil || old.Err() != nil {
		t.Fatalf("a call that just started and was charged nothing was interrupted")
	}
	sOld.started = time.Now().Add(-time.Second)
	if v := m.step(); v == nil || old.Err() == nil {
		t.Fatalf("with no charges the oldest call was not interrupted (victim %v)", v)
	}
}

func TestMemoryStepWithNoCalls(t *testing.T) {
	h := &fakeHeap{inUse: 99 << 20, live: 99 << 20}
	m := newTestMemory(100<<20, h)
	if v := m.step(); v != nil {
		t.Fatalf("victim %v with no calls", v)
	}
	if m.Heap() != 99<<20 {
		t.Fatalf("Heap() = %d", m.Heap())
	}
}

func TestMemoryScopesLeave(t *testing.T) {
	m := NewMemory(0)
	ctx := WithMemory(context.Background(), m)
	_, s, done := NewScope(ctx, nil, 0)
	inner, _, doneInner := NewScope(ScopeContext(ctx, s), nil, 0)
	_ = inner
	if m.Calls() != 2 {
		t.Fatalf("Calls() = %d, want 2", m.Calls())
	}
	doneInner()
	done()
	done() // twice is harmless
	if m.Calls() != 0 {
		t.Fatalf("Calls() after done = %d, want 0", m.Calls())
	}
}

// TestMemoryServeInterruptsARealHog runs the watchdog on the real heap:
// a call that keeps allocating is stopped near a budget just above what
// the test process uses now.
func TestMemoryServeInterruptsARealHog(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB")
	}
	base := heapInUse()
	m := NewMemory(base + 256<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx) }()

	cctx, s, done := NewScope(WithMemory(ctx, m), nil, 0)
	defer done()
	var hold [][]byte
	deadline := time.Now().Add(20 * time.Second)
	for cctx.Err() == nil && time.Now().Before(deadline) {
		if err := s.Charge(1 << 20); err != nil {
			break
		}
		hold = append(hold, make([]byte, 1<<20))
		for i := range hold[len(hold)-1] {
			hold[len(hold)-1][i] = 1
		}
	}
	got := int64(len(hold)) << 20
	hold = nil
	if cctx.Err() == nil && !errors.Is(s.Charge(1<<21), ErrMemoryLimit) {
		t.Fatalf("the hog allocated %d MB and was neither interrupted nor refused", got>>20)
	}
	if got > 400<<20 {
		t.Fatalf("the hog got %d MB under a 256 MB budget", got>>20)
	}
	cancel()
	<-served
}

// ScopeContext returns ctx carrying s, for tests of nested scopes.
func ScopeContext(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false},
		{"1024", 1024, false},
		{"512M", 512 << 20, false},
		{"512MiB", 512 << 20, false},
		{"2g", 2 << 30, false},
		{"1T", 1 << 40, false},
		{"3KB", 3 << 10, false},
		{"", 0, true},
		{"-1", 0, true},
		{"12X", 0, true},
		{"99999999999T", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, bad %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestDefaultMemoryLimit(t *testing.T) {
	if machineMemory() > 0 && DefaultMemoryLimit() <= 0 {
		t.Fatal("DefaultMemoryLimit is 0 on a machine whose memory can be read")
	}
	if d, m := DefaultMemoryLimit(), machineMemory(); m > 0 && d > m {
		t.Fatalf("DefaultMemoryLimit %d over the machine's %d", d, m)
	}
}
