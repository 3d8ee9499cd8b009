package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
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

// TestProcsTunerRuns runs the tuner on the test process: idle, it goes
// down to one processor; made busy on every core, it takes them back.
func TestProcsTunerRuns(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs at least 2 CPUs")
	}
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	runtime.GOMAXPROCS(2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tu := &procsTuner{max: 2, n: 2}
	go func() {
		defer close(done)
		tu.run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-done }()

	waitProcs := func(want int, busy bool) {
		t.Helper()
		stop := make(chan struct{})
		if busy {
			for range 2 {
				go func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
					}
				}()
			}
		}
		defer close(stop)
		deadline := time.Now().Add(10 * time.Second)
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS stayed %d, want %d (busy %v)", runtime.GOMAXPROCS(0), want, busy)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitProcs(1, false)
	waitProcs(2, true)
}

func TestServeRejectsBadProcs(t *testing.T) {
	var stderr strings.Builder
	code := run(context.Background(), []string{"serve", "--procs", "zero"}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `bad --procs "zero"`) {
		t.Fatalf("exit %d, stderr %q; want 2 and the bad flag named", code, stderr.String())
	}
}
