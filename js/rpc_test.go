package js

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

const rpcScript = `
uwsgi.register_rpc("hello", () => "Hello World");
uwsgi.registerRpc("echo", (...args) => args.join(" "));
uwsgi.register_rpc("add", (a, b) => Number(a) + Number(b));
uwsgi.register_rpc("big", (n) => "x".repeat(Number(n)));
uwsgi.register_rpc("len", (s) => s.length);
uwsgi.register_rpc("utf8", () => "h\u00e9llo \u{1F600}");
uwsgi.register_rpc("bytes", () => new Uint8Array([0, 255, 1]));
uwsgi.register_rpc("buffer", () => new Uint8Array([104, 105]).buffer);
uwsgi.register_rpc("bool", () => true);
uwsgi.register_rpc("bigint", () => 2n ** 64n);
uwsgi.register_rpc("null", () => null);
uwsgi.register_rpc("undefined", () => {});
uwsgi.register_rpc("object", () => ({a: 1}));
uwsgi.register_rpc("array", () => [1, 2]);
uwsgi.register_rpc("throws", () => {
  throw new Error("kaput");
});
uwsgi.register_rpc("throws_string", () => { throw "plain"; });
uwsgi.register_rpc("async", async (a) => {
  await new Promise((resolve) => setTimeout(resolve, 5));
  return "async " + a;
});
uwsgi.register_rpc("rejects", async () => {
  await null;
  throw new TypeError("nope");
});
uwsgi.register_rpc("api_error", () => uwsgi.lock(1000));
`

func TestRPC(t *testing.T) {
	w := newWorld(t, map[string]string{"rpc.js": rpcScript})
	w.load(Options{PoolSize: 2})
	tests := []struct {
		name string
		args []string
		want string
		err  error  // errors.Is
		msg  string // a substring of the error
	}{
		{name: "hello", want: "Hello World"},
		{name: "echo", args: []string{"a", "b", "c"}, want: "a b c"},
		{name: "add", args: []string{"1", "2"}, want: "3"},
		{name: "add", args: []string{"0.1", "0.2"}, want: "0.30000000000000004"},
		{name: "add", args: []string{"1e21", "0"}, want: "1e+21"},
		{name: "add", args: []string{"x", "1"}, want: "NaN"},
		{name: "big", args: []string{"1048576"}, want: strings.Repeat("x", 1<<20)},
		{name: "len", args: []string{"h\u00e9"}, want: "2"},
		{name: "utf8", want: "h\u00e9llo \U0001F600"},
		{name: "bytes", want: "\x00\xff\x01"},
		{name: "buffer", want: "hi"},
		{name: "bool", want: "true"},
		{name: "bigint", want: "18446744073709551616"},
		{name: "null", err: api.ErrNoResult},
		{name: "undefined", err: api.ErrNoResult},
		{name: "object", err: api.ErrNoResult},
		{name: "array", err: api.ErrNoResult},
		{name: "throws", msg: "js: rpc.js:17:9: Error: kaput"},
		{name: "throws_string", msg: "js: rpc.js:19:45: plain"},
		{name: "async", args: []string{"x"}, want: "async x"},
		{name: "rejects", msg: "TypeError: nope"},
		{name: "api_error", msg: "uwsgi.lock: ", err: api.ErrNoSuchLock},
		{name: "nosuch", err: api.ErrNoSuchFunction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.call(context.Background(), tt.name, tt.args...)
			if tt.err == nil && tt.msg == "" {
				if err != nil || got != tt.want {
					t.Errorf("%s(%q) = %.60q, %v; want %.60q", tt.name, tt.args, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s(%q) = %q, want an error", tt.name, tt.args, got)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("%s(%q) error %v, want one matching %v", tt.name, tt.args, err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s(%q) error %q, want it to contain %q", tt.name, tt.args, err, tt.msg)
			}
		})
	}
}

func TestRPCConcurrent(t *testing.T) {
	w := newWorld(t, map[string]string{"rpc.js": `
let calls = 0; // per runtime
uwsgi.register_rpc("work", (i) => {
  calls++;
  let sum = 0;
  for (let k = 0; k < 1000; k++) sum += k;
  return i + ":" + sum;
});
uwsgi.register_rpc("sleepy", async (i) => {
  await new Promise((r) => setTimeout(r, 1));
  return i;
});`})
	w.load(Options{PoolSize: 4})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			arg := fmt.Sprint(i)
			got, err := w.call(context.Background(), "work", arg)
			if want := arg + ":499500"; err != nil || got != want {
				t.Errorf("work(%s) = %q, %v; want %q", arg, got, err, want)
			}
			got, err = w.call(context.Background(), "sleepy", arg)
			if err != nil || got != arg {
				t.Errorf("sleepy(%s) = %q, %v", arg, got, err)
			}
		})
	}
	wg.Wait()
}

func TestReentrantCall(t *testing.T) {
	w := newWorld(t, map[string]string{"rpc.js": `
uwsgi.register_rpc("inner", (x) => "in(" + x + ")");
uwsgi.register_rpc("outer", () => "out:" + uwsgi.call("inner", "a"));
uwsgi.register_rpc("deep", (n) => Number(n) === 0 ? "0" : n + "," + uwsgi.call("deep", Number(n) - 1));
uwsgi.register_rpc("fails", () => { throw new Error("inner failure"); });
uwsgi.register_rpc("catches", () => {
  try { uwsgi.call("fails"); } catch (e) { return "caught: " + e.message; }
  return "not caught";
});
uwsgi.register_rpc("slow_inner", async () => { await new Promise((r) => setTimeout(r, 1)); return "x"; });
uwsgi.register_rpc("awaits_nested", () => uwsgi.call("slow_inner"));
`})
	w.load(Options{PoolSize: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range []struct{ name, want, msg string }{
		{name: "outer", want: "out:in(a)"},
		{name: "deep", want: "5,4,3,2,1,0"},
		{name: "catches", msg: "", want: "caught: uwsgi.call: js: rpc.js:5:43: Error: inner failure"},
		{name: "awaits_nested", msg: "a nested call cannot wait for a pending promise"},
	} {
		args := []string{}
		if tt.name == "deep" {
			args = []string{"5"}
		}
		got, err := w.call(ctx, tt.name, args...)
		if tt.msg != "" {
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s() = %q, %v; want an error containing %q", tt.name, got, err, tt.msg)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s() = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// Functions registered during a call are pinned to their runtime.
func TestPinnedFunctions(t *testing.T) {
	w := newWorld(t, map[string]string{"rpc.js": `
let count = 0;
uwsgi.register_rpc("make", (tag) => {
  uwsgi.register_rpc("dyn", () => tag + ":" + (++count));
  return "made";
});
uwsgi.register_rpc("spin", () => { for (;;) {} });
`})
	w.load(Options{PoolSize: 2})
	ctx := context.Background()
	if got, err := w.call(ctx, "make", "t"); err != nil || got != "made" {
		t.Fatalf("make() = %q, %v", got, err)
	}
	// The closure keeps its state: every call runs in the runtime that made it.
	for i := 1; i <= 4; i++ {
		got, err := w.call(ctx, "dyn")
		if want := fmt.Sprintf("t:%d", i); err != nil || got != want {
			t.Fatalf("dyn() = %q, %v; want %q", got, err, want)
		}
	}
	// Break every runtime: the pinned function's is replaced too.
	for range 2 {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				w.call(ctx, "spin")
			})
		}
		wg.Wait()
	}
	// Its registration ends with that runtime: until the end is noticed
	// a call fails with ErrRuntimeGone, then the name is unknown.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := w.call(ctx, "dyn")
		if errors.Is(err, api.ErrNoSuchFunction) {
			break
		}
		if !errors.Is(err, ErrRuntimeGone) || time.Now().After(deadline) {
			t.Fatalf("dyn() after its runtime was replaced: %v, want ErrRuntimeGone, then api.ErrNoSuchFunction", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Signal handlers are Callables called with api values.
func TestSignalHandler(t *testing.T) {
	w := newWorld(t, map[string]string{"sig.js": `
uwsgi.register_signal(17, "", (sig) => { uwsgi.cache_update("sig", typeof sig + " " + sig); });
uwsgi.register_signal(18, "workers", async (sig) => {
  await new Promise((r) => setTimeout(r, 1));
  throw new Error("handler failed " + sig);
});`})
	w.load(Options{PoolSize: 2})
	ctx := context.Background()
	if err := w.state.Signals.RaiseSync(ctx, 17); err != nil {
		t.Fatal(err)
	}
	if got := w.cacheValue("sig"); got != "number 17" {
		t.Errorf("handler saw %q, want \"number 17\"", got)
	}
	err := w.state.Signals.RaiseSync(ctx, 18)
	var se *api.ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "handler failed 18") || se.File != "sig.js" || se.Line != 5 {
		t.Errorf("RaiseSync(18) = %v, want a ScriptError at sig.js:5", err)
	}
}
