package gointerp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

func TestRPC(t *testing.T) {
	f := newFixture(t)
	f.mustLoad(Options{}, files("rpc.go", readTestdata(t, "rpc.go"))...)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"hello", nil, "Hello World"},
		{"echo", []string{"a", "b", "c"}, "a b c"},
		{"echo", nil, ""},
		{"add", []string{"40", "2"}, "42"},
		{"add", []string{"-1", " 3 "}, "2"},
		{"big", []string{"1000000"}, strings.Repeat("x", 1000000)},
	}
	for _, tt := range tests {
		got, err := f.rpc(t.Context(), tt.name, tt.args...)
		if err != nil || got != tt.want {
			t.Errorf("%s(%q) = %.40q (%d bytes), %v; want %.40q", tt.name, tt.args, got, len(got), err, tt.want)
		}
	}
	// An argument that does not convert fails the call, not the host.
	if _, err := f.rpc(t.Context(), "add", "one", "2"); err == nil || !errors.Is(err, ErrConvert) {
		t.Errorf("add(one, 2) = %v, want an ErrConvert", err)
	}
}

func TestCallbackSignatures(t *testing.T) {
	f := newFixture(t)
	f.mustLoad(Options{}, files("sig.go", `package main

import (
	"errors"
	"fmt"
	"time"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterRpc("none", func() {})
	uwsgi.RegisterRpc("err", func() error { return errors.New("bad thing") })
	uwsgi.RegisterRpc("valerr", func(ok bool) (int, error) {
		if !ok {
			return 0, errors.New("not ok")
		}
		return 7, nil
	})
	uwsgi.RegisterRpc("float", func(x float64) float64 { return x * 2 })
	uwsgi.RegisterRpc("bytes", func(b []byte) []byte { return append(b, '!') })
	uwsgi.RegisterRpc("variadic", func(n int, rest ...int) string { return fmt.Sprint(n, rest) })
	uwsgi.RegisterRpc("anys", func(args ...any) string { return fmt.Sprintf("%T%v", args[0], args) })
	uwsgi.RegisterRpc("dur", func(d time.Duration) string { return d.String() })
	uwsgi.RegisterRpc("extra", func(a string) string { return a })
	uwsgi.RegisterRpc("missing", func(a, b string) string { return "[" + a + "][" + b + "]" })
	uwsgi.RegisterRpc("bool", func() bool { return true })
	uwsgi.RegisterRpc("uint", func(u uint8) uint8 { return u })
	uwsgi.RegisterRpc("struct", func() any { return struct{ A int }{1} })
}
`)...)
	tests := []struct {
		name string
		args []string
		want string
		err  string
	}{
		{"none", nil, "", api.ErrNoResult.Error()},
		{"err", nil, "", "bad thing"},
		{"valerr", []string{"x"}, "", "cannot convert"},
		{"float", []string{"1.25"}, "2.5", ""},
		{"bytes", []string{"a\x00b"}, "a\x00b!", ""},
		{"variadic", []string{"1", "2", "3"}, "1 [2 3]", ""},
		{"anys", []string{"x", "y"}, "string[x y]", ""},
		{"dur", []string{"1.5"}, "1.5s", ""},
		{"extra", []string{"a", "b", "c"}, "a", ""},
		{"missing", []string{"a"}, "[a][]", ""},
		{"bool", nil, "true", ""},
		{"uint", []string{"300"}, "", "overflows"},
		{"struct", nil, "", "a struct"},
	}
	for _, tt := range tests {
		got, err := f.rpc(t.Context(), tt.name, tt.args...)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%s(%q) = %q, %v; want %q", tt.name, tt.args, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s(%q) = %q, %v; want an error containing %q", tt.name, tt.args, got, err, tt.err)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{PoolSize: 4}, files("c.go", `package main

import (
	"strconv"
	"time"

	"scripthost/uwsgi"
)

var calls int // per interpreter

func init() {
	uwsgi.RegisterRpc("work", func(n int) string {
		calls++
		time.Sleep(5 * time.Millisecond)
		return strconv.Itoa(n * n)
	})
}
`)...)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			got, err := f.rpc(t.Context(), "work", fmt.Sprint(i))
			if want := fmt.Sprint(i * i); err != nil || got != want {
				errs <- fmt.Errorf("work(%d) = %q, %v; want %q", i, got, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sc := p.(*program).scripts[0]
	if n := sc.pool.Size(); n < 2 || n > 4 {
		t.Errorf("the pool has %d interpreters after 64 concurrent calls, want 2..4", n)
	}
}

func TestReentrantCalls(t *testing.T) {
	// With one interpreter per file, a call into its own file runs in the
	// interpreter it holds; calls across files borrow the other file's.
	f := newFixture(t)
	f.mustLoad(Options{PoolSize: 1},
		files("a.go", `package main

import "scripthost/uwsgi"

func init() {
	uwsgi.RegisterRpc("a.leaf", func() string { return "a" })
	uwsgi.RegisterRpc("a.self", func() string { v, _ := uwsgi.Call("a.leaf"); return "self:" + v.(string) })
	uwsgi.RegisterRpc("a.cross", func() string { v, _ := uwsgi.Call("b.back"); return "cross:" + v.(string) })
}
`, "b.go", `package main

import "scripthost/uwsgi"

func init() {
	uwsgi.RegisterRpc("b.back", func() string { v, _ := uwsgi.Call("a.leaf"); return "back:" + v.(string) })
}
`)...)
	for name, want := range map[string]string{"a.self": "self:a", "a.cross": "cross:back:a"} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		got, err := f.rpc(ctx, name)
		cancel()
		if err != nil || got != want {
			t.Errorf("%s() = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestFunctionMadeDuringCall(t *testing.T) {
	// A function registered during a call lives in that interpreter: it
	// works while it lives and fails with ErrVMGone once it was discarded.
	f := newFixture(t)
	f.mustLoad(Options{PoolSize: 1}, files("late.go", `package main

import "scripthost/uwsgi"

var n int

func init() {
	uwsgi.RegisterRpc("register", func() {
		uwsgi.RegisterRpc("late", func() int { n++; return n })
	})
	uwsgi.RegisterRpc("crash", func() { panic("down") })
}
`)...)
	if _, err := f.rpc(t.Context(), "register"); !errors.Is(err, api.ErrNoResult) {
		t.Fatalf("register() = %v", err)
	}
	for range 2 { // n is back to 0 after every call
		if got, err := f.rpc(t.Context(), "late"); got != "1" || err != nil {
			t.Errorf("late() = %q, %v; want 1", got, err)
		}
	}
	if _, err := f.rpc(t.Context(), "crash"); !errors.Is(err, ErrPanic) {
		t.Fatalf("crash() = %v, want ErrPanic", err)
	}
	// Its registration ends with the interpreter (asynchronously): gone,
	// or the name no longer registered.
	if _, err := f.rpc(t.Context(), "late"); !errors.Is(err, ErrVMGone) && !errors.Is(err, api.ErrNoSuchFunction) {
		t.Errorf("late() after its interpreter was discarded = %v, want ErrVMGone or ErrNoSuchFunction", err)
	}
}

func TestSignalHandler(t *testing.T) {
	f := newFixture(t)
	f.mustLoad(Options{}, files("sig.go", `package main

import (
	"fmt"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterSignal(7, "", func(n uint8) { uwsgi.CacheUpdate("got", fmt.Sprint(n)) })
}
`)...)
	if err := f.state.Signals.RaiseSync(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	if it, err := f.state.Caches.Default().Get(t.Context(), []byte("got")); err != nil || string(it.Value) != "7" {
		t.Errorf("the handler stored %q, %v", it.Value, err)
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{}, files("rpc.go", readTestdata(t, "rpc.go"), "app.go", readTestdata(t, "app.go"))...)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rpc(t.Context(), "hello"); !errors.Is(err, ErrClosed) {
		t.Errorf("hello() after Close = %v, want ErrClosed", err)
	}
	err := p.Apps()["app"].ServeRequest(t.Context(), &recorder{}, request("", "REQUEST_URI=/hello"))
	if !errors.Is(err, ErrClosed) {
		t.Errorf("ServeRequest after Close = %v, want ErrClosed", err)
	}
}
