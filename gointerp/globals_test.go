package gointerp

import (
	"fmt"
	"sync"
	"testing"
)

func TestGlobalsRestored(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{PoolSize: 4}, files("g.go", `package main

import (
	"fmt"
	"net/http"
	"time"

	"scripthost/uwsgi"
)

type point struct{ x, y int }

type shape interface{ area() int }

func (p point) area() int { return p.x * p.y }

var (
	n        int
	s        = "load"
	p        = point{1, 2}
	pp       *point
	list     []int
	m        map[string]int
	sh       shape
	fn       func() string
	counter  = 10
	any1     any
	setInit  string
	loaded   = map[string]int{"k": 1}
)

func init() { setInit = "init" }

func state() string {
	f := "nil"
	if fn != nil {
		f = fn()
	}
	return fmt.Sprintln(n, s, p, pp, list, m, sh, f, counter, any1, setInit, loaded["k"])
}

func write() {
	n++
	s = "changed"
	p = point{3, 4}
	pp = &p
	list = append(list, 1)
	m = map[string]int{"a": 1}
	sh = p
	fn = func() string { return "fn" }
	counter += 5
	any1 = 3.5
	setInit = "call"
}

func init() {
	uwsgi.RegisterRpc("write", func() string {
		write()
		time.Sleep(50 * time.Millisecond) // the other calls need other interpreters
		return state()
	})
	uwsgi.RegisterRpc("read", state)
}

func Handler(w http.ResponseWriter, r *http.Request) {
	write()
	w.Write([]byte(state()))
}
`)...)
	const pristine = "0 load {1 2} <nil> [] map[] <nil> nil 10 <nil> init 1\n"
	const written = "1 changed {3 4} &{3 4} [1] map[a:1] {3 4} fn 15 3.5 call 1\n"
	// Fill the pool: concurrent calls build every interpreter.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := f.rpc(t.Context(), "write"); got != written || err != nil {
				errs <- fmt.Errorf("write() = %q, %v; want %q", got, err, written)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var rec recorder
	if err := p.Apps()["g"].ServeRequest(t.Context(), &rec, request("", "REQUEST_URI=/")); err != nil || rec.body.String() != written {
		t.Errorf("ServeRequest = %q, %v", rec.body.String(), err)
	}
	sc := p.(*program).scripts[0]
	if sc.pool.Size() < 2 {
		t.Errorf("pool size %d: the test wants several interpreters", sc.pool.Size())
	}
	for i := range 50 {
		if got, err := f.rpc(t.Context(), "read"); got != pristine || err != nil {
			t.Fatalf("read() #%d = %q, %v; want the loaded values %q", i, got, err, pristine)
		}
	}
}
