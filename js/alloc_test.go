package js

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

// allocCases are expressions that ask for an allocation no process can
// make; each must fail with err, as a script error.
var allocCases = []struct {
	name, expr string
	err        error
	replaced   bool // the runtime is discarded after the call
}{
	{"arraybuffer", "new ArrayBuffer(2 ** 40)", api.ErrAllocTooLarge, true},
	{"arraybuffer_valueof", "new ArrayBuffer({valueOf() { return 2 ** 40; }})", api.ErrAllocTooLarge, true},
	{"uint8array", "new Uint8Array(2 ** 40)", api.ErrAllocTooLarge, true},
	{"float64array", "new Float64Array(2 ** 28)", api.ErrAllocTooLarge, true},
	{"bigint64array", "new BigInt64Array(2 ** 28)", api.ErrAllocTooLarge, true},
	{"typed_from_arraylike", "new Int32Array({length: 2 ** 40})", api.ErrAllocTooLarge, true},
	{"typed_from_sparse_array", "new Uint8Array(new Array(2 ** 32 - 1))", api.ErrAllocTooLarge, true},
	{"typed_static_from", "Uint16Array.from({length: 2 ** 40})", api.ErrAllocTooLarge, true},
	{"typed_subclass", "class Big extends Uint8Array {}; new Big(2 ** 40)", api.ErrAllocTooLarge, true},
	{"array_from", "Array.from({length: 2 ** 32 - 1})", api.ErrAllocTooLarge, true},
	{"array_from_subclass", "class A extends Array {}; A.from({length: 2 ** 32 - 1})", api.ErrAllocTooLarge, true},
	{"spread", "[...new Array(2 ** 32 - 1)]", api.ErrAllocTooLarge, true},
	{"spread_keys", "[...new Array(2 ** 32 - 1).keys()]", api.ErrAllocTooLarge, true},
	{"fill", "new Array(2 ** 32 - 1).fill(0)", api.ErrAllocTooLarge, true},
	{"fill_arraylike", "Array.prototype.fill.call({length: 2 ** 40}, 0)", api.ErrAllocTooLarge, true},
	{"map", "new Array(2 ** 32 - 1).map((x) => x)", api.ErrAllocTooLarge, true},
	{"sort_arraylike", "Array.prototype.sort.call({length: 2 ** 40})", api.ErrAllocTooLarge, true},
	{"apply", "Math.max.apply(null, {length: 2 ** 32 - 1})", api.ErrAllocTooLarge, true},
	{"reflect_apply", "Reflect.apply(Math.max, null, new Array(2 ** 32 - 1))", api.ErrAllocTooLarge, true},
	{"repeat", "'x'.repeat(2 ** 30)", ErrStringTooLarge, false},
	{"pad", "'x'.padEnd(2 ** 31)", ErrStringTooLarge, false},
	{"concat", "const s = 'x'.repeat(2 ** 25); s.concat(s, s)", ErrStringTooLarge, false},
	{"join_elements", "new Array(8).fill('x'.repeat(2 ** 24)).join('')", ErrStringTooLarge, false},
	{"typed_join", "new Uint8Array(2 ** 24).join(',')", ErrStringTooLarge, false},
	{"stringify", "let a = ['x'.repeat(2 ** 20)]; for (let i = 0; i < 10; i++) a = [a, a]; JSON.stringify(a)", ErrStringTooLarge, false},
}

func TestAllocationBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString(`uwsgi.register_rpc("ok", () => "fine");` + "\n")
	for _, c := range allocCases {
		fmt.Fprintf(&b, "uwsgi.register_rpc(%q, () => { %s; return 'allocated'; });\n", c.name, c.expr)
		fmt.Fprintf(&b, "uwsgi.register_rpc(%q, () => { try { %s; } catch (e) { return e.name; } });\n", c.name+"_caught", c.expr)
	}
	w := newWorld(t, map[string]string{"a.js": b.String()})
	opts := Options{PoolSize: 1, MaxStringSize: 16 << 20}
	p := w.load(opts)
	e := New(opts)
	for _, c := range allocCases {
		t.Run(c.name, func(t *testing.T) {
			before := p.runtimeID(t)
			got, err := w.call(context.Background(), c.name)
			var se *api.ScriptError
			if !errors.As(err, &se) || !errors.Is(err, c.err) || !strings.Contains(se.Msg, "RangeError") {
				t.Errorf("%s = %q, %v; want a RangeError wrapping %v", c.expr, got, err, c.err)
			}
			if replaced := p.runtimeID(t) != before; replaced != c.replaced {
				t.Errorf("runtime replaced: %v, want %v", replaced, c.replaced)
			}
			if got, err := w.call(context.Background(), c.name+"_caught"); err != nil || got != "RangeError" {
				t.Errorf("caught: %q, %v; want the RangeError caught", got, err)
			}
			if got, err := w.call(context.Background(), "ok"); err != nil || got != "fine" {
				t.Errorf("the next call: %q, %v", got, err)
			}
			_, _, _, err = e.Eval(context.Background(), w.env, c.expr, 0)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), "RangeError") {
				t.Errorf("Eval(%s): %v; want a RangeError wrapping %v", c.expr, err, c.err)
			}
		})
	}
}

// A budget lowers the largest allocation to a quarter of it.
func TestAllocationBudget(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("buf", (n) => String(new ArrayBuffer(Number(n)).byteLength));`})
	w.load(Options{PoolSize: 1})
	mem := api.NewMemory(64 << 20)
	ctx, _, done := api.NewScope(api.WithMemory(context.Background(), mem), nil, 0)
	defer done()
	if got, err := w.call(ctx, "buf", "1048576"); err != nil || got != "1048576" {
		t.Errorf("buf(1 MiB) = %q, %v", got, err)
	}
	if _, err := w.call(ctx, "buf", "33554432"); !errors.Is(err, api.ErrAllocTooLarge) {
		t.Errorf("buf(32 MiB) under a 64 MiB budget: %v, want ErrAllocTooLarge", err)
	}
	if got := api.ScopeOf(ctx).Charged(); got < 1<<20 {
		t.Errorf("charged %d bytes, want at least the 1 MiB buffer", got)
	}
}

// The guarded built-ins still behave as the originals.
func TestGuardedBuiltins(t *testing.T) {
	w := newWorld(t, nil)
	e := New(Options{})
	for _, tt := range []struct{ code, want string }{
		{"String(new ArrayBuffer(8) instanceof ArrayBuffer && new Uint8Array(2) instanceof Uint8Array)", "true"},
		{"ArrayBuffer.name + ArrayBuffer.length + Uint8Array.name + Uint8Array.length + Uint8Array.BYTES_PER_ELEMENT", "ArrayBuffer1Uint8Array31"},
		{"String(new Uint8Array(2).constructor === Uint8Array && new ArrayBuffer(1).constructor === ArrayBuffer)", "true"},
		{"String(Object.getPrototypeOf(Uint8Array) === Object.getPrototypeOf(Int8Array))", "true"},
		{"String(new ArrayBuffer(8).slice(2) instanceof ArrayBuffer)", "true"},
		{"class U extends Uint8Array {}; const u = new U(3); String(u instanceof U && u instanceof Uint8Array && u.length === 3)", "true"},
		{"try { ArrayBuffer(1) } catch (e) { e.name }", "TypeError"},
		{"new Uint8Array({length: 2, 0: 5, 1: 6}).join()", "5,6"},
		{"new Uint8Array([1, 2, 3]).join('-')", "1-2-3"},
		{"new Float64Array(new Uint8Array([1, 2])).join()", "1,2"},
		{"Uint8Array.from({length: 2}, (_, i) => i + 1).join()", "1,2"},
		{"new Uint8Array(new Uint8Array([7, 8]).buffer, 1).join()", "8"},
		{"let c = 0; new Uint8Array({get length() { return c++ ? 2 ** 40 : 1; }}).length + ''", "1"},
		{"''.repeat.name + ''.repeat.length + ''.padStart.length + [].join.length + JSON.stringify.length + Array.from.length", "repeat11131"},
		{"String(Array.prototype[Symbol.iterator] === Array.prototype.values)", "true"},
		{"'ab'.repeat(3) + 'ab'.padStart(4, '-') + 'ab'.padEnd(3) + '|' + 'a'.concat(1, null)", "ababab--abab |a1null"},
		{"[1, [2, [3]], null, undefined, 'x'].join()", "1,2,3,,,x"},
		{"const a = [1]; a.push(a); a.join() + '|' + String(a)", "1,|1,"},
		{"Array.prototype.join.call({length: 2, 0: 'a', 1: 'b'}, '+')", "a+b"},
		{"Array.from({length: 3}, (_, i) => i * 2).join()", "0,2,4"},
		{"[...'abc', ...new Set([1, 2])].join()", "a,b,c,1,2"},
		{"[3, 1, 2].sort().join() + [3, 1, 2].toSorted((a, b) => b - a).join()", "1,2,33,2,1"},
		{"new Array(3).fill(7).join() + [1, 2, 3, 4].fill(0, 1, -1).join()", "7,7,71,0,0,4"},
		{"[1, 2].map((x) => x * 2).join()", "2,4"},
		{"String(Math.max.apply(null, [1, 5, 2]) + Math.max.apply(null, {length: 2, 0: 3, 1: 4}))", "9"},
		{"String(Reflect.construct(Date, [0]).getTime()) + Reflect.apply(Math.min, null, [4, 2])", "02"},
		{"JSON.stringify({b: 1, a: [1, 'x', {c: null}], f() {}, u: undefined})", `{"b":1,"a":[1,"x",{"c":null}]}`},
		{"JSON.stringify({a: [1, {b: 2}]}, null, 2)", "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ]\n}"},
		{"JSON.stringify({b: 1, a: 2, c: {a: 3, z: 4}}, ['c', 'a'])", `{"c":{"a":3},"a":2}`},
		{"JSON.stringify({a: 1, b: 'x'}, (k, v) => typeof v === 'number' ? v + 1 : v)", `{"a":2,"b":"x"}`},
		{"JSON.stringify([new Date(0), new Number(3), new String('s')], ['x'])", `["1970-01-01T00:00:00.000Z",3,"s"]`},
		{"JSON.stringify({toJSON() { return [1]; }})", "[1]"},
		{"JSON.parse('{\"a\": [1, {\"b\": \"[[[\"}]}').a[1].b", "[[["},
		{"let d = []; for (let i = 0; i < 20000; i++) d = [d]; try { JSON.stringify(d) } catch (e) { e.name }", "RangeError"},
		{"try { JSON.parse('['.repeat(20000)) } catch (e) { e.name + ': ' + e.message }", "RangeError: JSON.parse: nesting deeper than 10000"},
	} {
		v, _, _, err := e.Eval(context.Background(), w.env, tt.code, 0)
		if s, _ := v.(string); err != nil || s != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.code, v, err, tt.want)
		}
	}
}

// The call the memory watchdog picks is interrupted: its context is
// cancelled with a cause wrapping api.ErrMemoryLimit.
func TestMemoryInterrupt(t *testing.T) {
	const loop = `let a = []; for (;;) a.push("x".repeat(1 << 10) + a.length);`
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("hog", () => { ` + loop + ` });
uwsgi.register_rpc("ok", () => "fine");`})
	p := w.load(Options{PoolSize: 1})
	killed := fmt.Errorf("%w: 900 of 1000 bytes in use; this call allocated 800", api.ErrMemoryLimit)
	run := func(call func(ctx context.Context) error) error {
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(50*time.Millisecond, func() { cancel(killed) })
		return call(ctx)
	}
	before := p.runtimeID(t)
	err := run(func(ctx context.Context) error { _, err := w.call(ctx, "hog"); return err })
	if !errors.Is(err, api.ErrMemoryLimit) || !strings.Contains(err.Error(), "memory limit exceeded") {
		t.Errorf("hog(): %v, want the memory limit", err)
	}
	if p.runtimeID(t) == before {
		t.Errorf("the interrupted runtime was kept")
	}
	if got, err := w.call(context.Background(), "ok"); err != nil || got != "fine" {
		t.Errorf("the next call: %q, %v", got, err)
	}
	err = run(func(ctx context.Context) error { _, _, _, err := New(Options{}).Eval(ctx, w.env, loop, 0); return err })
	if !errors.Is(err, api.ErrMemoryLimit) {
		t.Errorf("Eval of the loop: %v, want the memory limit", err)
	}
}

// With a budget and the watchdog running, the loop that keeps what it
// allocates is stopped: by a refused charge or by the watchdog.
func TestMemoryBudgetStopsLoop(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
uwsgi.register_rpc("hog", () => { let a = []; for (;;) a.push("x".repeat(1 << 20) + a.length); });`})
	w.load(Options{PoolSize: 1})
	mem := api.NewMemory(256 << 20)
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { mem.Serve(serveCtx); close(served) }()
	defer func() { stop(); <-served }()
	ctx, _, done := api.NewScope(api.WithMemory(context.Background(), mem), nil, time.Minute)
	defer done()
	_, err := w.call(ctx, "hog")
	if !errors.Is(err, api.ErrMemoryLimit) {
		t.Errorf("hog() under a 256 MiB budget: %v, want ErrMemoryLimit", err)
	}
}
