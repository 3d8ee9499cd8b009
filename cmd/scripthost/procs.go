package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// The serve command chooses how many threads run Go code at once
// (GOMAXPROCS). With a new connection per request, most of a request is
// system calls and waking the goroutine that serves the next one; with
// more than one processor the runtime also wakes other threads to look for
// work that is usually not there, which cost about a sixth of the CPU per
// request on a 2-core machine. So while the server needs less than one
// core it runs on one, and as soon as it gets busy it gets every core.
//
// procsTuner decides from the process's CPU use over short windows: busy
// is the number of cores it kept busy. It uses every core (max) as soon as
// busy reaches procsRaise of the processors it has, and gives some back
// when, for procsLowerAfter windows in a row, fewer would each have been
// at most procsLower busy. The gap between the two, and the extra CPU that
// more processors cost, keep it from going back and forth.
//
// Every core means the runtime's own default (SetDefaultGOMAXPROCS): the
// CPUs the process may use, within a container's CPU quota, kept up to
// date by the runtime as the quota changes. Fewer is a GOMAXPROCS call,
// which stops those updates, so a lowered tuner goes back to the default
// every procsResync windows to learn the quota again, and never keeps
// more processors than it allows.
const (
	procsWindow     = 100 * time.Millisecond
	procsRaise      = 0.8
	procsLower      = 0.7
	procsLowerAfter = 5
	procsResync     = 100
)

type procsTuner struct {
	max     int // the most processors: the runtime's default
	n       int // the processors it has now
	low     int // windows in a row in which fewer would have done
	lowered int // windows since it last learnt the default while below it

	window  time.Duration
	cpu     func() (time.Duration, bool) // the CPU time used so far
	lower   func(n int)                  // makes n the processors
	restore func() int                   // back to the default, which it returns
	current func() int                   // the processors now
}

// step takes the cores kept busy over the last window and returns the
// processors to have for the next.
func (t *procsTuner) step(busy float64) int {
	if busy >= procsRaise*float64(t.n) {
		t.low = 0
		t.n = t.max
		return t.n
	}
	want := min(max(int(math.Ceil(busy/procsLower)), 1), t.max)
	if want >= t.n {
		t.low = 0
		return t.n
	}
	t.low++
	if t.low >= procsLowerAfter {
		t.low = 0
		t.n = want
	}
	return t.n
}

// parseProcs reads --procs: "auto" (0) or a number of processors.
func parseProcs(s string) (int, error) {
	if s == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("bad --procs %q (auto or a number of at least 1)", s)
	}
	return n, nil
}

// setProcs applies --procs (procs processors, 0 for auto). A GOMAXPROCS
// environment variable wins over auto, like over any default of the
// runtime's. With auto, it tunes GOMAXPROCS until ctx ends.
func setProcs(ctx context.Context, procs int, log *slog.Logger) {
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
		return
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := runtime.GOMAXPROCS(0)
	t := &procsTuner{max: n, n: n, window: procsWindow, cpu: processCPU,
		lower: func(n int) { runtime.GOMAXPROCS(n) },
		restore: func() int {
			runtime.SetDefaultGOMAXPROCS()
			return runtime.GOMAXPROCS(0)
		},
		current: func() int { return runtime.GOMAXPROCS(0) },
	}
	go t.run(ctx, log)
}

// apply makes the processors what step chose, and keeps max the
// runtime's default.
func (t *procsTuner) apply(prev int) {
	switch {
	case t.n == t.max && prev == t.max:
		// At the default, which the runtime keeps up to date.
		t.max = t.current()
		t.n = t.max
	case t.n == t.max:
		t.max = t.restore()
		t.n = t.max
		t.lowered = 0
	case t.n != prev:
		t.lower(t.n)
		t.lowered = 0
	default:
		t.lowered++
		if t.lowered < procsResync {
			return
		}
		t.lowered = 0
		t.max = t.restore()
		if t.n = min(t.n, t.max); t.n < t.max {
			t.lower(t.n)
		}
	}
}

// run samples the CPU time every window and sets the processors as step
// says.
func (t *procsTuner) run(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(t.window)
	defer tick.Stop()
	lastCPU, ok := t.cpu()
	if !ok {
		return
	}
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu, ok := t.cpu()
			wall := now.Sub(lastAt)
			if !ok || wall <= 0 {
				continue
			}
			busy := float64(cpu-lastCPU) / float64(wall)
			lastCPU, lastAt = cpu, now
			prev := t.n
			t.step(busy)
			t.apply(prev)
			if t.n != prev {
				log.Debug("processors", "from", prev, "to", t.n, "busy", math.Round(busy*100)/100)
			}
		}
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
