package js

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

func TestEngineIdentity(t *testing.T) {
	e := New(Options{})
	if got := e.Name(); got != "js" {
		t.Errorf("Name() = %q, want js", got)
	}
	if got := e.Extensions(); !slices.Equal(got, []string{".js"}) {
		t.Errorf("Extensions() = %q, want [.js]", got)
	}
	if got := e.Modifier(); got != uwsgi.ModV8 {
		t.Errorf("Modifier() = %d, want 24", got)
	}
	if e.opts.PoolSize <= 0 || e.opts.MaxCallStackSize != DefaultMaxCallStackSize || e.opts.MaxStringSize != DefaultMaxStringSize {
		t.Errorf("defaults not applied: %+v", e.opts)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		file      string
		line, col int
		msg       string // a substring of the message
		cause     error  // errors.Is, when set
	}{
		{name: "syntax error", files: map[string]string{"a.js": "let a = 1;\nlet b = 2;\nlet c = ;\n"},
			file: "a.js", line: 3, col: 9, msg: "SyntaxError: Unexpected token ;"},
		{name: "syntax error on line 1", files: map[string]string{"a.js": "let x = = 1;"},
			file: "a.js", line: 1, col: 9, msg: "SyntaxError"},
		{name: "syntax error at the end", files: map[string]string{"a.js": "function f() {\n  return 1;\n"},
			file: "a.js", line: 4, msg: "SyntaxError"},
		{name: "redeclaration", files: map[string]string{"a.js": "let x = 1;\nlet x = 2;"},
			file: "a.js", line: 2, col: 5, msg: "Identifier 'x' has already been declared"},
		{name: "strict mode forbids with", files: map[string]string{"a.js": "\nwith (Math) { max(1, 2) }"},
			file: "a.js", line: 2, msg: "SyntaxError"},
		{name: "exception at load", files: map[string]string{"a.js": "// first\n\nthrow new Error('boom');"},
			file: "a.js", line: 3, col: 7, msg: "Error: boom"},
		{name: "exception on line 1", files: map[string]string{"a.js": "null.x;"},
			file: "a.js", line: 1, col: 6, msg: "TypeError"}, // goja points at the property
		{name: "undeclared assignment at load", files: map[string]string{"a.js": "x = 1;"},
			file: "a.js", line: 1, msg: "ReferenceError: x is not defined"},
		{name: "second file broken", files: map[string]string{"a.js": "exports.ok = 1;", "b.js": "\n\n  nope(;"},
			file: "b.js", line: 3, msg: "SyntaxError"},
		{name: "missing module", files: map[string]string{"a.js": "require('./nosuch');"},
			file: "a.js", line: 1, msg: "Cannot find module './nosuch'", cause: ErrModule},
		{name: "broken module", files: map[string]string{"a.js": "\nrequire('./lib/m');", "lib/m.js": "\n\nfunction ("},
			file: "a.js", line: 2, msg: "lib/m.js:3"},
		{name: "API error at load", files: map[string]string{"a.js": "\nuwsgi.register_rpc('', () => 1);"},
			file: "a.js", line: 2, msg: "uwsgi.register_rpc: ", cause: api.ErrRPCName},
		{name: "bad argument at load", files: map[string]string{"a.js": "uwsgi.cache_get();"},
			file: "a.js", line: 1, msg: "TypeError: bad argument #1 to uwsgi.cache_get", cause: api.ErrArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.files)
			_, err := w.tryLoad(Options{PoolSize: 2})
			var se *api.ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("Load error %v (%T), want a *api.ScriptError", err, err)
			}
			if se.File != tt.file || se.Line != tt.line || (tt.col != 0 && se.Column != tt.col) {
				t.Errorf("error at %s:%d:%d, want %s:%d:%d (%v)", se.File, se.Line, se.Column, tt.file, tt.line, tt.col, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "js: "+tt.file+":") {
				t.Errorf("error %q does not start with js: %s:", err, tt.file)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not match %v", err, tt.cause)
			}
		})
	}
}

func TestApps(t *testing.T) {
	w := newWorld(t, map[string]string{
		"fn.js":        "module.exports = function (req) { return {status: 200, body: ['fn']}; };",
		"obj.js":       "exports.app = function (req) { return {status: 200, body: [this.name]}; };\nexports.name = 'obj';",
		"arrow.js":     "module.exports = (req) => ({status: 201, body: 'arrow'});",
		"lib.js":       "module.exports = {x: 1};",
		"rpc.js":       "uwsgi.register_rpc('r', () => 'r');",
		"nothing.js":   "",
		"sub/inner.js": "module.exports = function () {};", // a module, not a loaded file
	})
	p := w.load(Options{PoolSize: 2})
	got := slices.Sorted(maps.Keys(p.Apps()))
	if want := []string{"arrow", "fn", "obj"}; !slices.Equal(got, want) {
		t.Fatalf("apps %v, want %v", got, want)
	}
	for name, want := range map[string]string{"fn": "fn", "obj": "obj", "arrow": "arrow"} {
		rec, err := w.serve(context.Background(), p, name, nginxVars(), "")
		if err != nil || rec.body.String() != want {
			t.Errorf("app %s: body %q, error %v; want %q", name, rec.body.String(), err, want)
		}
	}
}

func TestReplicas(t *testing.T) {
	w := newWorld(t, map[string]string{
		"a.js": `
uwsgi.cache_inc("loads");
uwsgi.log("loading");
uwsgi.register_rpc("hello", () => "Hello World");
uwsgi.register_signal(30, "", () => { uwsgi.cache_inc("signals"); });
uwsgi.add_timer(31, 3600);
// A failing registration fails the same way in every runtime.
let refused = "";
try { uwsgi.add_timer(31, 0); } catch (e) { refused = e.message; }
uwsgi.register_rpc("refused", () => refused);
`,
	})
	w.load(Options{PoolSize: 3})
	if got := w.cacheNum("loads"); got != "3" {
		t.Errorf("module-level code ran %q times, want once per runtime: 3", got)
	}
	if got := strings.Count(w.log.String(), "msg=loading"); got != 3 {
		t.Errorf("module-level uwsgi.log logged %d times, want 3", got)
	}
	if got := w.env.RPCNames(); !slices.Equal(got, []string{"hello", "refused"}) {
		t.Errorf("RPC names %v", got)
	}
	if got := w.env.TimerCount(); got != 1 {
		t.Errorf("%d timers, want 1 (registered once)", got)
	}
	if err := w.state.Signals.RaiseSync(context.Background(), 30); err != nil {
		t.Errorf("signal handler: %v", err)
	}
	// Every runtime answers the same.
	for range 6 {
		got, err := w.call(context.Background(), "refused")
		if err != nil || !strings.Contains(got, "timer interval must be positive") {
			t.Errorf("refused() = %q, %v", got, err)
		}
	}
}

func TestNondeterministicLoad(t *testing.T) {
	w := newWorld(t, map[string]string{
		"a.js": `if (uwsgi.cache_inc("n") === 1) { uwsgi.register_rpc("first", () => 1); }`,
	})
	_, err := w.tryLoad(Options{PoolSize: 2})
	if !errors.Is(err, ErrNondeterministicLoad) {
		t.Fatalf("Load error %v, want ErrNondeterministicLoad", err)
	}
}

// A file whose top level does not end fails the load, in the first
// runtime and in a replica built later.
func TestLoadTimeout(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		file  string
	}{
		{"endless", map[string]string{"a.js": "exports.ok = 1;", "b.js": "\nwhile (true) {}"}, "b.js"},
		{"endless require", map[string]string{"a.js": "require('./lib/spin');", "lib/spin.js": "for (;;) {}"}, "lib/spin.js"},
		{"endless in replica", map[string]string{"a.js": "if (uwsgi.cache_inc('n') > 1) { for (;;) {} }"}, "a.js"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.files)
			w.env.LoadTimeout = 50 * time.Millisecond
			start := time.Now()
			_, err := w.tryLoad(Options{PoolSize: 2})
			var se *api.ScriptError
			if !errors.As(err, &se) || !errors.Is(err, api.ErrLoadTimeout) || se.File != tt.file {
				t.Fatalf("Load: %v, want a ScriptError in %s wrapping ErrLoadTimeout", err, tt.file)
			}
			if !strings.Contains(err.Error(), "did not finish loading within 50ms") {
				t.Errorf("error %q does not say why", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Load took %v", d)
			}
			if got := w.state.Counters.LoadTimeouts.Load(); got != 0 {
				t.Errorf("LoadTimeouts = %d, want 0 (the host counts a failed load)", got)
			}
		})
	}
	// Each file has its own deadline.
	w := newWorld(t, map[string]string{
		"a.js": "const end = Date.now() + 30; while (Date.now() < end) {}",
		"b.js": "const end = Date.now() + 30; while (Date.now() < end) {}",
	})
	w.env.LoadTimeout = 200 * time.Millisecond
	if _, err := w.tryLoad(Options{PoolSize: 1}); err != nil {
		t.Errorf("two files each within the deadline: %v", err)
	}
}
