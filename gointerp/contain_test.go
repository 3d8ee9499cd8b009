package gointerp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

func TestPanicContained(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{PoolSize: 1}, files("p.go", `package main

import (
	"net/http"

	"scripthost/uwsgi"
)

var calls int

func init() {
	uwsgi.RegisterRpc("boom", func() string {
		panic("kaboom")
	})
	uwsgi.RegisterRpc("index", func() int {
		var a []int
		return a[5]
	})
	uwsgi.RegisterRpc("nested", func() any {
		v, err := uwsgi.Call("boom")
		if err != nil {
			return "caught: " + err.Error()
		}
		return v
	})
	uwsgi.RegisterRpc("calls", func() int { calls++; return calls })
}

func Handler(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte("partial"))
	panic("in handler")
}
`)...)
	sc := p.(*program).scripts[0]
	first := sc.pool.Idle()[0]
	for _, name := range []string{"boom", "index"} {
		_, err := f.rpc(t.Context(), name)
		var se *api.ScriptError
		if !errors.Is(err, ErrPanic) || !errors.As(err, &se) || se.File != "p.go" || se.Line == 0 {
			t.Errorf("%s() = %v, want a ScriptError at a line of p.go wrapping ErrPanic", name, err)
		}
	}
	if got, err := f.rpc(t.Context(), "calls"); got != "1" || err != nil {
		t.Errorf("calls() after the panics = %q, %v; want 1 (a fresh interpreter)", got, err)
	}
	if !first.gone.Load() {
		t.Error("the interpreter that panicked was not discarded")
	}
	// A panic in a re-entrant call is an error for the caller.
	got, err := f.rpc(t.Context(), "nested")
	if err != nil || !strings.HasPrefix(got, "caught: ") || !strings.Contains(got, "kaboom") {
		t.Errorf("nested() = %q, %v; want the panic as an error", got, err)
	}
	if got, _ := f.rpc(t.Context(), "calls"); got != "1" {
		t.Errorf("calls() = %q: the interpreter of the nested panic was reused", got)
	}
	var rec recorder
	err = p.Apps()["p"].ServeRequest(t.Context(), &rec, request("", "REQUEST_URI=/"))
	if !errors.Is(err, ErrPanic) {
		t.Errorf("ServeRequest = %v, want ErrPanic", err)
	}
	if got, err := f.rpc(t.Context(), "calls"); got != "1" || err != nil {
		t.Errorf("calls() after the handler's panic = %q, %v", got, err)
	}
}

func TestInterrupt(t *testing.T) {
	tests := []struct{ name, body string }{
		{"busy loop", "for {\n\t\tn++\n\t}"},
		{"empty loop", "for {\n\t}"},
		{"time.Sleep", "time.Sleep(time.Hour)"},
		{"sleep loop", "for {\n\t\ttime.Sleep(time.Millisecond)\n\t}"},
		{"channel receive", "<-make(chan int)"},
		{"channel send", "make(chan int) <- 1"},
		{"select", "select {}"},
		{"timer", "<-time.After(time.Hour)"},
		{"async_sleep ignored", "for {\n\t\tuwsgi.AsyncSleep(3600)\n\t}"},
		{"lock", "uwsgi.Lock(2)\n\tuwsgi.Lock(2)"},
		{"recursion", "var f func(int) int\n\tf = func(i int) int { return f(i+1) + 1 }\n\tf(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, p := f.mustLoad(Options{PoolSize: 1}, files("loop.go", `package main

import (
	"time"

	"scripthost/uwsgi"
)

var n int
var _ = time.Now

func init() {
	uwsgi.RegisterRpc("loop", func() string {
	`+tt.body+`
	return "done"
	})
	uwsgi.RegisterRpc("ok", func() string { return "ok" })
}
`)...)
			ctx, cancel := context.WithTimeoutCause(t.Context(), 100*time.Millisecond, api.ErrHarakiri)
			defer cancel()
			start := time.Now()
			_, err := f.rpc(ctx, "loop")
			if elapsed := time.Since(start); elapsed > stopGrace {
				t.Errorf("the call returned after %v", elapsed)
			}
			if !errors.Is(err, api.ErrHarakiri) {
				t.Errorf("loop() = %v, want api.ErrHarakiri", err)
			}
			if got, err := f.rpc(t.Context(), "ok"); got != "ok" || err != nil {
				t.Errorf("ok() after the interruption = %q, %v", got, err)
			}
			sc := p.(*program).scripts[0]
			if sc.pool.Size() != 1 {
				t.Errorf("pool size %d, want 1", sc.pool.Size())
			}
			f.state.Locks.Unlock(2)
		})
	}
}

func TestUninterruptible(t *testing.T) {
	// A script blocked in a library call nothing wakes cannot be stopped:
	// the call returns after stopGrace, the interpreter is abandoned.
	f := newFixture(t)
	_, p := f.mustLoad(Options{PoolSize: 1}, files("dead.go", `package main

import (
	"sync"

	"scripthost/uwsgi"
)

var mu sync.Mutex

func init() {
	uwsgi.RegisterRpc("deadlock", func() string {
		mu.Lock()
		mu.Lock()
		uwsgi.CacheUpdate("after", "yes")
		return "never"
	})
	uwsgi.RegisterRpc("ok", func() string { return "ok" })
}
`)...)
	sc := p.(*program).scripts[0]
	v := sc.pool.Idle()[0]
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := f.rpc(ctx, "deadlock"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadlock() = %v, want the context's error", err)
	}
	if elapsed := time.Since(start); elapsed < stopGrace || elapsed > 5*stopGrace {
		t.Errorf("the call returned after %v, want about 50ms + %v", elapsed, stopGrace)
	}
	if !v.abandoned.Load() {
		t.Error("the interpreter was not abandoned")
	}
	if got, err := f.rpc(t.Context(), "ok"); got != "ok" || err != nil {
		t.Errorf("ok() = %q, %v", got, err)
	}
	if !strings.Contains(f.logs.String(), "abandoned") {
		t.Error("no log of the abandoned interpreter")
	}
}

func TestLoadInterrupted(t *testing.T) {
	f := newFixture(t)
	e := New(Options{Logger: f.state.Logger})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := e.Load(ctx, f.env, files("slow.go", "package main\n\nfunc init() {\n\tfor {\n\t}\n}\n"))
	var se *api.ScriptError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) || se.File != "slow.go" {
		t.Errorf("Load = %v, want a ScriptError of slow.go wrapping the deadline", err)
	}
}

func TestHarakiriAfterIgnoredError(t *testing.T) {
	// The script carries on after AsyncSleep told it the call was over;
	// the call fails all the same, and nothing it writes reaches the
	// client.
	f := newFixture(t)
	_, p := f.mustLoad(Options{PoolSize: 1}, files("ign.go", `package main

import (
	"net/http"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.SetUserHarakiri(0.05)
		uwsgi.AsyncSleep(5)
		return "not interrupted"
	})
}

func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.SetUserHarakiri(0.05)
	_, err := uwsgi.AsyncSleep(5)
	w.Write([]byte("late: " + err.Error()))
}
`)...)
	cctx, _, done := api.NewScope(t.Context(), nil, 10*time.Second)
	defer done()
	if got, err := f.rpc(cctx, "t"); !errors.Is(err, api.ErrHarakiri) {
		t.Errorf("t() = %q, %v; want api.ErrHarakiri", got, err)
	}
	rctx, _, rdone := api.NewScope(t.Context(), nil, 10*time.Second)
	defer rdone()
	var rec recorder
	if err := p.Apps()["ign"].ServeRequest(rctx, &rec, request("", "REQUEST_URI=/")); !errors.Is(err, api.ErrHarakiri) {
		t.Errorf("ServeRequest = %v, want api.ErrHarakiri", err)
	}
	if rec.sent || rec.body.Len() > 0 {
		t.Errorf("the interrupted handler wrote %q", rec.body.String())
	}
}
