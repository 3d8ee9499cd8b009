package js

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

func TestEval(t *testing.T) {
	w := newWorld(t, map[string]string{"lib/m.js": "module.exports = {answer: 42};"})
	tests := []struct {
		code string
		want api.Value
		out  string
		msg  string // a substring of the error
		err  error
	}{
		{code: "1 + 1", want: int64(2)},
		{code: "0.1 + 0.2", want: 0.30000000000000004},
		{code: "'a' + 'b'", want: "ab"},
		{code: "var x = [1, 'two', null, {k: true}]; x", want: []api.Value{int64(1), "two", nil, map[string]api.Value{"k": true}}},
		{code: "console.log('hi', 42, {a: [1]}); console.error(new Error('e').message); undefined", want: nil,
			out: "hi 42 {\"a\":[1]}\ne\n"},
		{code: "(async () => { await new Promise((r) => setTimeout(r, 5)); return 'later'; })()", want: "later"},
		{code: "uwsgi.cache_update('k', 'v'); uwsgi.cache_get('k')", want: "v"},
		{code: "require('./lib/m').answer", want: int64(42)},
		{code: "leaked = 1", want: int64(1)}, // a script, not a module: sloppy mode
		{code: "console.log('before'); throw new Error('boom')", out: "before\n", msg: "js: <eval>:1:30: Error: boom"},
		{code: "1 +", msg: "js: <eval>:1:4: SyntaxError"},
		{code: "Promise.reject(new TypeError('rejected'))", msg: "TypeError: rejected"},
		{code: "uwsgi.register_rpc('e', () => 1)", err: ErrRuntimeGone, msg: "cannot be registered"},
		{code: "Symbol('s')", msg: "cannot convert a symbol"},
	}
	e := New(Options{})
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			got, out, _, err := e.Eval(context.Background(), w.env, tt.code, 0)
			if out != tt.out {
				t.Errorf("output %q, want %q", out, tt.out)
			}
			if tt.msg != "" || tt.err != nil {
				if err == nil || !strings.Contains(err.Error(), tt.msg) || (tt.err != nil && !errors.Is(err, tt.err)) {
					t.Errorf("Eval = %v, %v; want an error containing %q", got, err, tt.msg)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
	if _, err := w.state.RPC.Call(context.Background(), "e"); !errors.Is(err, api.ErrNoSuchFunction) {
		t.Errorf("an eval registered an RPC function: %v", err)
	}
}

func TestEvalLimits(t *testing.T) {
	w := newWorld(t, nil)
	e := New(Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, _, err := e.Eval(ctx, w.env, "while (true) {}", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("endless eval: %v, want the deadline", err)
	}
	_, out, truncated, err := e.Eval(context.Background(), w.env, "for (let i = 0; i < 20000; i++) console.log('x'.repeat(99)); 'done'", 0)
	if err != nil || len(out) != api.DefaultEvalOutput || !truncated {
		t.Errorf("output of %d bytes, truncated %v, %v; want it truncated at %d", len(out), truncated, err, api.DefaultEvalOutput)
	}
	v, out, truncated, err := e.Eval(context.Background(), w.env, "console.log('0123456789'); console.log('abc'); 7", 12)
	if v != int64(7) || out != "0123456789\na" || !truncated || err != nil {
		t.Errorf("Eval = %v, %q, %v, %v; want 7, 12 bytes, truncated", v, out, truncated, err)
	}
	// Evals do not share state.
	e.Eval(context.Background(), w.env, "globalThis.shared = 1", 0)
	if got, _, _, _ := e.Eval(context.Background(), w.env, "typeof shared", 0); got != "undefined" {
		t.Errorf("a global of one eval is seen by the next: %v", got)
	}
}

func TestClose(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("hold", () => { uwsgi.async_sleep(0.2); return "held"; });
uwsgi.register_rpc("quick", () => "quick");
uwsgi.register_rpc("make", () => { uwsgi.register_rpc("dyn", () => "dyn"); return "made"; });
module.exports = () => ({status: 200, body: "app"});
`})
	p := w.load(Options{PoolSize: 2})
	ctx := context.Background()
	if _, err := w.call(ctx, "make"); err != nil {
		t.Fatal(err)
	}
	res := make(chan string, 1)
	go func() {
		got, err := w.call(ctx, "hold")
		if err != nil {
			got = err.Error()
		}
		res <- got
	}()
	time.Sleep(50 * time.Millisecond) // hold has its runtime
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	idle := len(p.pool.Idle())
	if idle != 0 {
		t.Errorf("%d idle runtimes after Close, want 0", idle)
	}
	for _, name := range []string{"quick", "dyn"} {
		if _, err := w.call(ctx, name); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrRuntimeGone) {
			t.Errorf("%s() after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := w.serve(ctx, p, "a", nginxVars(), ""); !errors.Is(err, ErrClosed) {
		t.Errorf("request after Close: %v, want ErrClosed", err)
	}
	if got := <-res; got != "held" {
		t.Errorf("the call in flight during Close: %q, want it to finish", got)
	}
	idle = len(p.pool.Idle())
	if idle != 0 {
		t.Errorf("the runtime returned after Close was kept")
	}
}
