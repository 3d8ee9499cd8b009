package js

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

func TestSandbox(t *testing.T) {
	w := newWorld(t, nil)
	e := New(Options{})
	for _, tt := range []struct{ code, want string }{
		{"typeof process", "undefined"},
		{"typeof Buffer", "undefined"},
		{"typeof fetch + typeof Response + typeof Headers", "functionfunctionfunction"}, // over uwsgi.http_request
		{"typeof XMLHttpRequest", "undefined"},
		{"typeof global", "undefined"},
		{"typeof module", "undefined"}, // Eval is a script, not a module
		{"typeof require + typeof console.log + typeof setTimeout + typeof queueMicrotask", "functionfunctionfunctionfunction"},
		{"String(Object.isFrozen(uwsgi) && Object.isFrozen(uwsgi.opt) && Object.isFrozen(uwsgi.cache_get))", "true"},
		{"uwsgi.version = 'x'; uwsgi.version", api.Version},
		{"String(require('uwsgi') === uwsgi)", "true"},
		{"try { require('fs'); 'loaded' } catch (e) { e.code + ' ' + e.message }", "MODULE_NOT_FOUND Cannot find module 'fs'"},
		{"try { require('child_process'); 'loaded' } catch (e) { e.code }", "MODULE_NOT_FOUND"},
	} {
		v, _, _, err := e.Eval(context.Background(), w.env, tt.code, 0)
		if s, _ := v.(string); err != nil || !strings.HasPrefix(s, tt.want) {
			t.Errorf("%s = %v, %v; want %q", tt.code, v, err, tt.want)
		}
	}
}

// goja reads the file a sourceMappingURL comment names unless told not
// to; a runtime must not read files.
func TestNoSourceMaps(t *testing.T) {
	w := newWorld(t, nil)
	smap := filepath.Join(t.TempDir(), "x.map")
	if err := os.WriteFile(smap, []byte(`{"version":3,"sources":["secret.js"],"names":[],"mappings":"AAAA;AAAA"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code := "throw new Error('x');\n//# sourceMappingURL=" + smap + "\n"
	_, _, _, err := New(Options{}).Eval(context.Background(), w.env, code, 0)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Eval error %v: the source map was read", err)
	}
	_, _, _, err = New(Options{}).Eval(context.Background(), w.env, "eval("+jsQuote(code)+")", 0)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("eval() error %v: the source map was read", err)
	}
	w.write("a.js", code)
	_, err = w.tryLoad(Options{PoolSize: 1})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Load error %v: the source map was read", err)
	}
}

func jsQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func TestRequire(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.js")
	if err := os.WriteFile(outside, []byte("module.exports = 'outside';"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, map[string]string{
		"a.js": `
const util = require("./lib/util");
const again = require("lib/util.js");
const pkg = require("./pkg");
function tryRequire(id) {
  try { require(id); return "loaded"; } catch (e) { return e.code === "MODULE_NOT_FOUND" ? "refused" : "other: " + e; }
}
uwsgi.register_rpc("same", () => String(util === again && util === require("./b").util));
uwsgi.register_rpc("count", () => String(util.count()));
uwsgi.register_rpc("pkg", () => pkg.name + " " + pkg.helper);
uwsgi.register_rpc("names", () => util.filename + " " + util.dirname + " " + __filename + " " + __dirname);
uwsgi.register_rpc("cycle", () => require("./lib/cycle_a").seen);
uwsgi.register_rpc("try", (id) => tryRequire(id));
`,
		"b.js": `exports.util = require("./lib/util");`,
		"lib/util.js": `
uwsgi.cache_inc("util_loads");
let n = 0;
module.exports = {count: () => ++n, filename: __filename, dirname: __dirname};`,
		"pkg/index.js":    `module.exports = {name: "pkg", helper: require("./helper")};`,
		"pkg/helper.js":   `module.exports = "helped";`,
		"lib/cycle_a.js":  `exports.early = "a-early"; const b = require("./cycle_b"); exports.seen = b.seen;`,
		"lib/cycle_b.js":  `exports.seen = "b saw " + require("./cycle_a").early;`,
		"lib/data.json":   `{}`,
		"lib/not_js.txt":  `x`,
		"lib/sub/deep.js": `module.exports = require("../../b").util === require("../util");`,
	})
	if err := os.Symlink(outside, filepath.Join(w.dir, "link.js")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(w.dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	// Load only a.js and b.js; link.js would be refused as a file too.
	prog, err := New(Options{PoolSize: 2}).Load(context.Background(), w.env, w.filesNamed("a.js", "b.js"))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := w.env.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if got := w.cacheNum("util_loads"); got != "2" {
		t.Errorf("lib/util.js ran %q times, want once per runtime: 2", got)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"same", nil, "true"},
		{"pkg", nil, "pkg helped"},
		{"names", nil, "lib/util.js lib a.js ."},
		{"cycle", nil, "b saw a-early"},
		{"try", []string{"./lib/sub/deep"}, "loaded"},
		{"try", []string{"../outside"}, "refused"},
		{"try", []string{"./lib/../../outside"}, "refused"},
		{"try", []string{".."}, "refused"},
		{"try", []string{"/etc/passwd"}, "refused"},
		{"try", []string{outside}, "refused"},
		{"try", []string{"./link"}, "refused"},
		{"try", []string{"./linkdir/outside"}, "refused"},
		{"try", []string{"fs"}, "refused"},
		{"try", []string{"./lib/data.json"}, "refused"},
		{"try", []string{"./lib/not_js.txt"}, "refused"},
		{"try", []string{"./lib"}, "refused"},
		{"try", []string{"lib\\util"}, "refused"},
	} {
		got, err := w.call(ctx, tt.name, tt.args...)
		if err != nil || got != tt.want {
			t.Errorf("%s(%q) = %q, %v; want %q", tt.name, tt.args, got, err, tt.want)
		}
	}
	// Module state is per runtime, the module cache shared by the files.
	counts := map[string]bool{}
	for range 4 {
		got, _ := w.call(ctx, "count")
		counts[got] = true
	}
	if !counts["1"] {
		t.Errorf("counts %v", counts)
	}
}

// filesNamed returns the named top-level files.
func (w *world) filesNamed(names ...string) []api.File {
	var out []api.File
	for _, f := range w.files() {
		for _, n := range names {
			if f.Name == n {
				out = append(out, f)
			}
		}
	}
	return out
}

func TestStateBetweenCalls(t *testing.T) {
	w := newWorld(t, map[string]string{"a.js": `
let counter = 0; // module state: deliberate, per runtime
uwsgi.register_rpc("leak", () => { leaked = 1; return "assigned"; });
uwsgi.register_rpc("count", () => String(++counter));
uwsgi.register_rpc("this", function () { return String(this); });
`})
	w.load(Options{PoolSize: 1})
	ctx := context.Background()
	_, err := w.call(ctx, "leak")
	var se *api.ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "ReferenceError: leaked is not defined") {
		t.Errorf("assigning an undeclared variable: %v, want a ReferenceError (strict mode)", err)
	}
	for i, want := range []string{"1", "2"} {
		if got, err := w.call(ctx, "count"); err != nil || got != want {
			t.Errorf("count #%d = %q, %v; want %q", i, got, err, want)
		}
	}
	if got, err := w.call(ctx, "this"); err != nil || got != "undefined" {
		t.Errorf("this = %q, %v; want undefined (strict mode)", got, err)
	}
}

// A call cannot change globals or built-ins for later calls: after the
// load they are frozen, and every write throws a TypeError.
func TestFrozenIntrinsics(t *testing.T) {
	writes := []string{
		"globalThis.kept = 1",
		"Object.prototype.polluted = 2",
		"Array.prototype.push = null",
		"delete Array.prototype.map",
		"Math.random = () => 4",
		"JSON.parse = null",
		"String.prototype.trim = null",
		"Object.defineProperty(Object.prototype, 'defined', {value: 1})",
		"Object.setPrototypeOf(Array.prototype, null)",
		"console.log = null",
		"setTimeout = null",
		"Uint8Array.prototype.set = null",
		"Object.prototype.toString = () => 'patched'",
		"Error.prototype.name = 'patched'",
		"Object.getPrototypeOf(function* () {}).prototype.next = null",
		"Object.getPrototypeOf([][Symbol.iterator]()).next = null",
		"Object.getOwnPropertyDescriptor(Map.prototype, 'size').get.leak = 1",
		"Promise.prototype.then = null",
		"uwsgi.cache_get = null",
	}
	var b strings.Builder
	b.WriteString("const writes = [\n")
	for _, wr := range writes {
		b.WriteString("  () => { " + wr + "; },\n")
	}
	b.WriteString(`];
uwsgi.register_rpc("patch", () => writes.map((f) => { try { f(); return "written"; } catch (e) { return e.name; } }).join(" "));
uwsgi.register_rpc("check", () => [
  typeof kept, ({}).polluted, typeof [].push, typeof [].map, Math.random() < 1, typeof JSON.parse,
  " x ".trim(), ({}).defined, Object.getPrototypeOf(Array.prototype) === Object.prototype,
  typeof console.log, typeof setTimeout, String({}), new Error("e").name, typeof Promise.prototype.then,
].join(","));
// The override mistake: assigning inherited properties of frozen built-ins.
uwsgi.register_rpc("override", () => {
  const o = {}; o.toString = () => "mine"; o.valueOf = () => 41;
  function F() {} F.prototype = Object.create(Object.prototype); F.prototype.constructor = F;
  class E extends Error { constructor(m) { super(m); this.name = "E"; } }
  const e = new Error(); e.message = "m"; e.name = "N";
  const f = Object.create(Error.prototype); f.message = "inherited";
  return [String(o), o + 1, new F().constructor === F, String(new E("x")), String(e), f.message, Object.prototype.toString.call([])].join("|");
});
`)
	w := newWorld(t, map[string]string{"a.js": b.String()})
	w.load(Options{PoolSize: 3})
	ctx := context.Background()
	want := strings.TrimSpace(strings.Repeat("TypeError ", len(writes)))
	for range 3 {
		if got, err := w.call(ctx, "patch"); err != nil || got != want {
			t.Errorf("patch() = %q, %v; want every write refused:\n%q", got, err, want)
		}
	}
	pristine := "undefined,,function,function,true,function,x,,true,function,function,[object Object],Error,function"
	for range 12 { // every runtime of the pool, several times
		if got, err := w.call(ctx, "check"); err != nil || got != pristine {
			t.Errorf("check() = %q, %v; want %q", got, err, pristine)
		}
	}
	if got, err := w.call(ctx, "override"); err != nil || got != "mine|42|true|E: x|N: m|inherited|[object Array]" {
		t.Errorf("override() = %q, %v", got, err)
	}
}

func TestUwsgiObject(t *testing.T) {
	w := newWorld(t, nil)
	var b strings.Builder
	b.WriteString("const out = [];\n")
	for _, f := range api.Funcs() {
		b.WriteString("out.push(" + jsQuote(f.Name) + " + ':' + (typeof uwsgi." + f.Name + " === 'function' ? 'function' : 'value'));\n")
		if alias := camelName(f.Name); alias != "" {
			b.WriteString("if (uwsgi." + alias + " !== uwsgi." + f.Name + ") out.push('bad alias " + alias + "');\n")
		}
	}
	b.WriteString("out.join(' ')")
	v, _, _, err := New(Options{}).Eval(context.Background(), w.env, b.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(v.(string))
	var want []string
	for _, f := range api.Funcs() {
		kind := "function"
		if f.Value != nil {
			kind = "value"
		}
		want = append(want, f.Name+":"+kind)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("uwsgi object:\n got  %v\n want %v", got, want)
	}
	for name, want := range map[string]string{
		"register_rpc": "registerRpc", "cache_get": "cacheGet", "async_sleep": "asyncSleep",
		"add_rb_timer": "addRbTimer", "set_user_harakiri": "setUserHarakiri", "log": "",
	} {
		if got := camelName(name); got != want {
			t.Errorf("camelName(%q) = %q, want %q", name, got, want)
		}
	}
}
