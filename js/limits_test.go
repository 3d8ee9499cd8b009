package js

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dlclark/regexp2/v2"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

// A backtracking regular expression does not see the call's deadline:
// regexp2's own timeout, which New sets, bounds it.
func TestRegexpMatchTimeout(t *testing.T) {
	New(Options{})
	if got := regexp2.DefaultMatchTimeout; got != DefaultRegexpMatchTimeout {
		t.Errorf("regexp2.DefaultMatchTimeout = %v after New, want %v", got, DefaultRegexpMatchTimeout)
	}
}

func TestRunaway(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("ok", () => "fine");
uwsgi.register_rpc("loop", () => { while (true) {} });
uwsgi.register_rpc("recursion", () => { function f(n) { return f(n + 1) + 1; } return f(0); });
uwsgi.register_rpc("mutual", () => { const o = {get a() { return this.b; }, get b() { return this.a; }}; return o.a; });
uwsgi.register_rpc("repeat", () => "x".repeat(2 ** 30));
uwsgi.register_rpc("repeat_caught", () => { try { "x".repeat(2 ** 30); } catch (e) { return e.name; } });
uwsgi.register_rpc("pad", () => "x".padEnd(2 ** 31));
uwsgi.register_rpc("join", () => new Array(2 ** 31).join("ab"));
uwsgi.register_rpc("join_empty", () => new Array(2 ** 32 - 1).join(""));
uwsgi.register_rpc("microtasks", async () => { for (;;) { await null; } });
uwsgi.register_rpc("interval", () => new Promise(() => { setInterval(() => {}, 0); }));
uwsgi.register_rpc("sleep", () => { uwsgi.async_sleep(10); return "woke"; });
uwsgi.register_rpc("caught_harakiri", () => {
  try { uwsgi.async_sleep(10); } catch (e) { /* keep going */ }
  for (;;) {}
});
`})
	p := w.load(Options{PoolSize: 1})
	tests := []struct {
		name     string
		err      error
		msg      string
		replaced bool
	}{
		{name: "loop", err: context.DeadlineExceeded, msg: "a.js:3:", replaced: true},
		{name: "recursion", err: ErrStackOverflow, msg: "maximum call stack size (1000) exceeded", replaced: true},
		{name: "mutual", err: ErrStackOverflow, replaced: true},
		{name: "repeat", err: ErrStringTooLarge, msg: "RangeError: Invalid string length"},
		{name: "pad", err: ErrStringTooLarge},
		{name: "join", err: ErrStringTooLarge},
		{name: "join_empty", err: ErrStringTooLarge},
		{name: "microtasks", err: context.DeadlineExceeded, replaced: true},
		{name: "interval", err: context.DeadlineExceeded, replaced: true},
		{name: "sleep", err: context.DeadlineExceeded, replaced: true},
		{name: "caught_harakiri", err: context.DeadlineExceeded, replaced: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.runtimeID(t)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			got, err := w.call(ctx, tt.name)
			if time.Since(start) > 3*time.Second {
				t.Errorf("%s took %v", tt.name, time.Since(start))
			}
			var se *api.ScriptError
			if !errors.As(err, &se) || !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s() = %q, %v; want a ScriptError matching %v with %q", tt.name, got, err, tt.err, tt.msg)
			}
			if replaced := p.runtimeID(t) != before; replaced != tt.replaced {
				t.Errorf("runtime replaced: %v, want %v", replaced, tt.replaced)
			}
			if got, err := w.call(context.Background(), "ok"); err != nil || got != "fine" {
				t.Errorf("the next call: %q, %v", got, err)
			}
		})
	}
	if got, err := w.call(context.Background(), "repeat_caught"); err != nil || got != "RangeError" {
		t.Errorf("repeat_caught() = %q, %v; want the RangeError caught", got, err)
	}
}

// runtimeID identifies the idle runtime of a pool of one.
func (p *program) runtimeID(t *testing.T) *vm {
	t.Helper()
	idle := p.pool.Idle()
	if len(idle) != 1 {
		t.Fatalf("%d idle runtimes, want 1", len(idle))
	}
	return idle[0]
}

func TestHarakiri(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `uwsgi.register_rpc("spin", () => { for (;;) {} });`})
	w.load(Options{PoolSize: 1})
	ctx, _, done := api.NewScope(context.Background(), nil, 100*time.Millisecond)
	defer done()
	_, err := w.call(ctx, "spin")
	if !errors.Is(err, api.ErrHarakiri) {
		t.Errorf("spin() under harakiri: %v, want ErrHarakiri", err)
	}
}

func TestPoolWait(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("hold", () => { uwsgi.async_sleep(0.3); return "held"; });
uwsgi.register_rpc("quick", () => "quick");`})
	w.load(Options{PoolSize: 1})
	res := make(chan error, 1)
	go func() {
		_, err := w.call(context.Background(), "hold")
		res <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := w.call(ctx, "quick"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("quick() while the only runtime is busy: %v, want the deadline", err)
	}
	if got, err := w.call(context.Background(), "quick"); err != nil || got != "quick" {
		t.Errorf("quick() after waiting: %q, %v", got, err)
	}
	if err := <-res; err != nil {
		t.Errorf("hold(): %v", err)
	}
}

// Options.PoolWait bounds the wait for a runtime: then the call fails,
// saying the pool is busy, and is counted and logged.
func TestPoolBusy(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("hold", () => { uwsgi.async_sleep(0.5); return "held"; });
uwsgi.register_rpc("quick", () => "quick");`})
	w.load(Options{PoolSize: 1, PoolWait: 50 * time.Millisecond})
	res := make(chan error, 1)
	go func() {
		_, err := w.call(context.Background(), "hold")
		res <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	_, err := w.call(context.Background(), "quick")
	if !errors.Is(err, ErrPoolBusy) || !errors.Is(err, vmpool.ErrBusy) {
		t.Errorf("quick() while the only runtime is busy: %v, want ErrPoolBusy", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v, want about 50ms", d)
	}
	if got := w.state.Counters.PoolTimeouts.Load(); got != 1 {
		t.Errorf("PoolTimeouts = %d, want 1", got)
	}
	if got := strings.Count(w.log.String(), "no runtime came free in time"); got != 1 {
		t.Errorf("%d warnings logged, want 1:\n%s", got, w.log)
	}
	if err := <-res; err != nil {
		t.Errorf("hold(): %v", err)
	}
	if got, err := w.call(context.Background(), "quick"); err != nil || got != "quick" {
		t.Errorf("quick() once the runtime is free: %q, %v", got, err)
	}
	if e := New(Options{}); e.opts.PoolWait != DefaultPoolWait || e.opts.PoolSize != max(4, 2*runtime.NumCPU()) {
		t.Errorf("defaults: %+v", e.opts)
	}
}

func TestEventLoop(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
uwsgi.register_rpc("order", async () => {
  const out = [];
  setTimeout(() => out.push("t20"), 20);
  setTimeout((a, b) => out.push("t0" + a + b), 0, "x", "y");
  const cancelled = setTimeout(() => out.push("cancelled"), 1);
  clearTimeout(cancelled);
  queueMicrotask(() => out.push("micro"));
  Promise.resolve().then(() => out.push("then"));
  out.push("sync");
  await sleep(40);
  return out.join(",");
});
uwsgi.register_rpc("interval", () => new Promise((resolve) => {
  let n = 0;
  const id = setInterval(() => { if (++n === 3) { clearInterval(id); resolve("ticks " + n); } }, 2);
}));
uwsgi.register_rpc("never", () => new Promise(() => {}));
uwsgi.register_rpc("timer_throws", () => new Promise(() => { setTimeout(() => { throw new Error("in timer"); }, 1); }));
uwsgi.register_rpc("fire_and_forget", () => {
  setTimeout(() => uwsgi.cache_update("late", "ran"), 1);
  return "returned";
});
uwsgi.register_rpc("unhandled", () => { Promise.reject(new Error("nobody listens")); return "ok"; });
uwsgi.register_rpc("bad_timer", () => { setTimeout("code", 1); });
`})
	w.load(Options{PoolSize: 1})
	ctx := context.Background()
	for _, tt := range []struct{ name, want, msg string }{
		{name: "order", want: "sync,micro,then,t0xy,t20"},
		{name: "interval", want: "ticks 3"},
		{name: "never", msg: ErrUnsettled.Error()},
		{name: "timer_throws", msg: "a.js:20:87: Error: in timer"},
		{name: "fire_and_forget", want: "returned"},
		{name: "unhandled", want: "ok"},
		{name: "bad_timer", msg: "TypeError: setTimeout: the callback must be a function, got string"},
	} {
		got, err := w.call(ctx, tt.name)
		switch {
		case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
			t.Errorf("%s() = %q, %v; want an error containing %q", tt.name, got, err, tt.msg)
		case tt.msg == "" && (err != nil || got != tt.want):
			t.Errorf("%s() = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	// Timers die with their call.
	time.Sleep(20 * time.Millisecond)
	w.call(ctx, "order")
	if got := w.cacheValue("late"); got != "" {
		t.Errorf("a timer of a finished call ran")
	}
	if !strings.Contains(w.log.String(), `msg="js: unhandled promise rejection" reason="Error: nobody listens"`) {
		t.Errorf("the unhandled rejection was not logged:\n%s", w.log)
	}
}

type panicker struct{}

func (panicker) Call(context.Context, []api.Value) (api.Value, error) { panic("go code broke") }

// A Go panic under JavaScript becomes an error and costs the runtime.
func TestPanic(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("call_it", (f) => f());
uwsgi.register_rpc("ok", () => "fine");`})
	p := w.load(Options{PoolSize: 1})
	before := p.runtimeID(t)
	f := &progFunc{p: p, key: 0}
	_, err := f.Call(context.Background(), []api.Value{panicker{}})
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "go code broke") {
		t.Errorf("Call with a panicking callback: %v, want ErrPanic", err)
	}
	if p.runtimeID(t) == before {
		t.Errorf("the runtime was not replaced after a panic")
	}
	if got, err := w.call(context.Background(), "ok"); err != nil || got != "fine" {
		t.Errorf("the next call: %q, %v", got, err)
	}
}
