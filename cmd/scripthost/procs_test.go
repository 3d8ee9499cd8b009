package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestProcsTunerSteps(t *testing.T) {
	type step struct {
		busy float64
		want int
	}
	tests := []struct {
		name  string
		max   int
		start int
		steps []step
	}{
		{"an idle server goes down to one after five quiet windows", 2, 2,
			[]step{{0.1, 2}, {0.1, 2}, {0.1, 2}, {0.1, 2}, {0.1, 1}, {0.1, 1}}},
		{"a busy window interrupts the count", 2, 2,
			[]step{{0.1, 2}, {0.1, 2}, {0.1, 2}, {0.9, 2}, {0.1, 2}, {0.1, 2}, {0.1, 2}, {0.1, 2}, {0.1, 1}}},
		{"one busy window brings every processor back", 4, 1,
			[]step{{0.5, 1}, {0.85, 4}, {3.5, 4}}},
		{"between the thresholds nothing changes", 2, 1,
			[]step{{0.75, 1}, {0.75, 1}, {0.75, 1}, {0.75, 1}, {0.75, 1}, {0.75, 1}}},
		{"with two the same use keeps two", 2, 2,
			[]step{{0.75, 2}, {0.75, 2}, {0.75, 2}, {0.75, 2}, {0.75, 2}, {0.75, 2}}},
		{"going down stops at what the use needs", 8, 8,
			[]step{{2.0, 8}, {2.0, 8}, {2.0, 8}, {2.0, 8}, {2.0, 3}, {2.0, 3}, {2.0, 3}, {2.0, 3}, {2.0, 3}, {2.0, 3}}},
		{"a saturated single processor gets every core", 8, 1,
			[]step{{0.99, 8}}},
		{"no use still keeps one", 2, 2,
			[]step{{0, 2}, {0, 2}, {0, 2}, {0, 2}, {0, 1}, {0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tu := &procsTuner{max: tt.max, n: tt.start}
			for i, s := range tt.steps {
				if got := tu.step(s.busy); got != s.want {
					t.Fatalf("step %d (busy %.2f): %d processors, want %d", i, s.busy, got, s.want)
				}
			}
		})
	}
}

func TestParseProcs(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"auto", 0, false},
		{"1", 1, false},
		{"16", 16, false},
		{"0", 0, true},
		{"-2", 0, true},
		{"two", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parseProcs(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseProcs(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--procs") {
			t.Errorf("parseProcs(%q): error %q does not name the flag", tt.in, err)
		}
	}
}

// TestProcsTunerRuns runs the tuner's loop on a CPU clock the test
// drives: idle, it goes down to one processor; busy, it takes every one
// back at once.
func TestProcsTunerRuns(t *testing.T) {
	var load atomic.Int64 // cores kept busy, in thousandths
	var mu sync.Mutex
	var cpu time.Duration
	last := time.Now()
	sets := make(chan int, 100)
	tu := &procsTuner{max: 4, n: 4, window: 2 * time.Millisecond,
		cpu: func() (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			cpu += now.Sub(last) * time.Duration(load.Load()) / 1000
			last = now
			return cpu, true
		},
		lower:   func(n int) { sets <- n },
		restore: func() int { sets <- 4; return 4 },
		current: func() int { return 4 }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tu.run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-done }()

	expect := func(want int) {
		t.Helper()
		select {
		case n := <-sets:
			if n != want {
				t.Fatalf("set %d processors, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change to %d processors", want)
		}
	}
	load.Store(100)
	expect(1)
	load.Store(3000)
	expect(4)
}

// The tuner's most is the runtime's default, which follows a container's
// CPU quota: it is restored to raise, followed while in force, and
// learnt again every procsResync windows while lowered.
func TestProcsTunerFollowsTheDefault(t *testing.T) {
	type window struct {
		busy     float64
		quota    int // the runtime's default from this window on
		want     int
		restores int // calls of restore so far
	}
	repeat := func(n int, w window) []window {
		ws := make([]window, n)
		for i := range ws {
			ws[i] = w
		}
		return ws
	}
	join := func(parts ...[]window) []window {
		var ws []window
		for _, p := range parts {
			ws = append(ws, p...)
		}
		return ws
	}
	tests := []struct {
		name    string
		windows []window
	}{
		{"at the default it follows the runtime's updates",
			[]window{{3.9, 4, 4, 0}, {1.9, 2, 2, 0}, {2.9, 3, 3, 0}}},
		{"raising restores the default, never more",
			join(repeat(4, window{0.1, 4, 4, 0}), []window{{0.1, 4, 1, 0}, {0.9, 2, 2, 1}})},
		{"lowered, it learns a smaller quota within procsResync windows",
			join(repeat(4, window{1.0, 4, 4, 0}), repeat(procsResync, window{1.0, 4, 2, 0}),
				[]window{{1.0, 1, 1, 1}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quota, restores := 4, 0
			tu := &procsTuner{max: 4, n: 4,
				lower:   func(int) {},
				restore: func() int { restores++; return quota },
				current: func() int { return quota },
			}
			for i, w := range tt.windows {
				quota = w.quota
				prev := tu.n
				tu.step(w.busy)
				tu.apply(prev)
				if tu.n != w.want || restores != w.restores {
					t.Fatalf("window %d (busy %.1f, quota %d): %d processors, %d restores; want %d, %d",
						i, w.busy, w.quota, tu.n, restores, w.want, w.restores)
				}
			}
		})
	}
}

func TestServeRejectsBadProcs(t *testing.T) {
	var stderr strings.Builder
	code := run(context.Background(), []string{"serve", "--procs", "zero"}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `bad --procs "zero"`) {
		t.Fatalf("exit %d, stderr %q; want 2 and the bad flag named", code, stderr.String())
	}
}

// serve --procs N runs Go code on N processors.
func TestServeProcsFlag(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stderr strings.Builder
	args := []string{"serve", "--supervise=false", "--procs", "3", "--socket", "127.0.0.1:0", "--scripts", t.TempDir(), "--watch=false"}
	if code := run(ctx, args, io.Discard, &stderr); code != 0 {
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	}
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Errorf("GOMAXPROCS %d, want 3", n)
	}
}
