package gointerp

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

func TestPoolDefaults(t *testing.T) {
	e := New(Options{})
	if want := max(4, 2*runtime.NumCPU()); e.opts.PoolSize != want {
		t.Errorf("PoolSize = %d, want %d", e.opts.PoolSize, want)
	}
	if e.opts.PoolWait != DefaultPoolWait {
		t.Errorf("PoolWait = %v, want %v", e.opts.PoolWait, DefaultPoolWait)
	}
}

const blockingFile = `package main

import (
	"time"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterRpc("block", func() string { time.Sleep(time.Hour); return "woke" })
	uwsgi.RegisterRpc("ok", func() string { return "ok" })
	uwsgi.RegisterRpc("arm", func() bool { uwsgi.CacheUpdate("hang", "yes"); return true })
	if ok, _ := uwsgi.CacheExists("hang"); ok == true {
		for {
		}
	}
}
`

// block starts a call that holds an interpreter until the test ends, and
// waits until it does.
func block(t *testing.T, f *fixture, sc *script) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		f.rpc(ctx, "block")
	}()
	for deadline := time.Now().Add(5 * time.Second); len(sc.pool.Idle()) > 0 || sc.pool.Size() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the blocking call did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolWait(t *testing.T) {
	tests := []struct {
		name     string
		counters bool
	}{{"counted", true}, {"no counters", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if !tt.counters {
				f.state.Counters = nil
			}
			const wait = 50 * time.Millisecond
			_, p := f.mustLoad(Options{PoolSize: 1, PoolWait: wait}, files("busy.go", blockingFile)...)
			block(t, f, p.(*program).scripts[0])
			start := time.Now()
			_, err := f.rpc(t.Context(), "ok")
			if elapsed := time.Since(start); elapsed < wait || elapsed > 20*wait {
				t.Errorf("the call waited %v, want about %v", elapsed, wait)
			}
			if !errors.Is(err, ErrPoolBusy) || !errors.Is(err, vmpool.ErrBusy) || !strings.Contains(err.Error(), "busy.go") {
				t.Errorf("ok() = %v, want an error of busy.go wrapping ErrPoolBusy and vmpool.ErrBusy", err)
			}
			if tt.counters && f.state.Counters.PoolTimeouts.Load() != 1 {
				t.Errorf("PoolTimeouts = %d, want 1", f.state.Counters.PoolTimeouts.Load())
			}
			if n := strings.Count(f.logs.String(), "busy; call refused"); n != 1 {
				t.Errorf("%d warnings logged, want 1:\n%s", n, f.logs.String())
			}
		})
	}
}

func TestLoadTimeout(t *testing.T) {
	f := newFixture(t)
	f.env.LoadTimeout = 100 * time.Millisecond
	e := New(Options{Logger: f.state.Logger})
	start := time.Now()
	_, err := e.Load(t.Context(), f.env, files("a.go", "package main\n", "slow.go", "package main\n\nfunc init() {\n\tfor {\n\t}\n}\n"))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Load took %v", elapsed)
	}
	var se *api.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, api.ErrLoadTimeout) || se.File != "slow.go" || !strings.Contains(err.Error(), "slow.go") {
		t.Errorf("Load = %v, want a ScriptError of slow.go wrapping api.ErrLoadTimeout", err)
	}
	if n := f.state.Counters.LoadTimeouts.Load(); n != 0 {
		t.Errorf("LoadTimeouts = %d, want 0 (the host counts a failed load)", n)
	}
}

func TestReplicaLoadTimeout(t *testing.T) {
	// A replica runs the file's top level again, under the same deadline.
	f := newFixture(t)
	f.env.LoadTimeout = 100 * time.Millisecond
	_, p := f.mustLoad(Options{PoolSize: 2}, files("rep.go", blockingFile)...)
	if _, err := f.rpc(t.Context(), "arm"); err != nil {
		t.Fatal(err)
	}
	block(t, f, p.(*program).scripts[0])
	_, err := f.rpc(t.Context(), "ok")
	var se *api.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, api.ErrLoadTimeout) || se.File != "rep.go" {
		t.Errorf("ok() = %v, want a ScriptError of rep.go wrapping api.ErrLoadTimeout", err)
	}
}
