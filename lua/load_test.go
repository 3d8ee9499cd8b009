package lua

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

func TestEngineIdentity(t *testing.T) {
	e := New(Options{})
	if e.Name() != "lua" || !slices.Equal(e.Extensions(), []string{".lua"}) || e.Modifier() != uwsgi.ModLua || e.Modifier() != 6 {
		t.Errorf("engine %q %v %v", e.Name(), e.Extensions(), e.Modifier())
	}
	if e.opts.PoolSize <= 0 || e.opts.CallStackSize != DefaultCallStackSize || e.opts.MaxStringSize != DefaultMaxStringSize {
		t.Errorf("defaults %+v", e.opts)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		file  string
		line  int
		msg   string // part of the message
		cause error
	}{
		{"syntax", map[string]string{"ok.lua": "return 1", "bad.lua": "local a = 1\n\nlocal x = = 2\n"},
			"bad.lua", 3, "near '='", nil},
		// gopher-lua reports the line after the newline that ended it.
		{"unterminated string", map[string]string{"bad.lua": "local a = 1\nlocal s = \"abc\n"},
			"bad.lua", 3, "unterminated string", nil},
		{"syntax at EOF", map[string]string{"bad.lua": "local function f()\n  return 1\n"},
			"bad.lua", 3, "", nil},
		{"runtime error", map[string]string{"a.lua": "return 1", "boom.lua": "local x = 1\nerror('nope')\n"},
			"boom.lua", 2, "nope", nil},
		{"runtime error in function", map[string]string{"boom.lua": "local function f(t)\n  return t.x.y\nend\nf({})\n"},
			"boom.lua", 2, "", nil},
		{"api error", map[string]string{"reg.lua": "\nuwsgi.register_rpc('', function() end)\n"},
			"reg.lua", 2, "uwsgi.register_rpc", api.ErrRPCName},
		{"api argument error", map[string]string{"reg.lua": "uwsgi.register_rpc('x', 42)\n"},
			"reg.lua", 1, "bad argument #2 to uwsgi.register_rpc", api.ErrArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.files)
			_, _, err := f.load(Options{PoolSize: 2})
			var se *api.ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *api.ScriptError", err, err)
			}
			if se.File != tt.file || se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got %s:%d %q, want %s:%d containing %q", se.File, se.Line, se.Msg, tt.file, tt.line, tt.msg)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not wrap %v", err, tt.cause)
			}
			if want := tt.file + ":"; !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, want it to name %q", err.Error(), want)
			}
		})
	}
}

func TestAppDetection(t *testing.T) {
	f := newFixture(t, map[string]string{
		"fn.lua":     "return function(env) return 200, {}, 'fn' end",
		"tab.lua":    "return { run = function(env) return 200, {}, 'tab' end }",
		"norun.lua":  "return { other = function() end }",
		"none.lua":   "local x = 1",
		"number.lua": "return 42",
		"lib.lua":    "return { run = 'not a function' }",
	})
	_, p := f.mustLoad(Options{PoolSize: 2})
	apps := p.Apps()
	if got := slices.Sorted(maps.Keys(apps)); !slices.Equal(got, []string{"fn", "tab"}) {
		t.Fatalf("apps %v, want [fn tab]", got)
	}
	for name, want := range map[string]string{"fn": "fn", "tab": "tab"} {
		var w recorder
		if err := apps[name].ServeRequest(context.Background(), &w, request("")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w.status != "200 OK" || w.body.String() != want {
			t.Errorf("%s: %q %q", name, w.status, w.body.String())
		}
	}
}

// Registrations happen once; every other API call runs in every state.
func TestReplicas(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
uwsgi.cache_inc("loads")
uwsgi.register_rpc("who", function() return "who" end)
uwsgi.register_signal(17, "", function(n) uwsgi.cache_update("sig", n) end)
uwsgi.add_timer(18, 3600)
uwsgi.add_rb_timer(19, 3600, 2)
uwsgi.add_cron(20, -1, -1, -1, -1, -1)
local at_load = uwsgi.call("who") -- runs in the loading state, also in replicas
uwsgi.register_rpc("at_load", function() return at_load end)
local ok, err = pcall(uwsgi.register_rpc, "", function() end) -- checked in replicas too
local id = uwsgi.cache_inc("ids")
uwsgi.register_rpc("probe", function()
  uwsgi.async_sleep(0.05)
  return id .. " " .. tostring(ok) .. " " .. tostring(err):match("invalid rpc function name")
end)
`})
	_, _ = f.mustLoad(Options{PoolSize: 3})
	ctx := context.Background()
	for range 6 {
		if got, err := f.rpc(ctx, "at_load"); got != "who" || err != nil {
			t.Errorf("at_load: %q, %v", got, err)
		}
	}
	c := f.state.Caches.Default()
	probes := make(chan string, 3)
	for range 3 {
		go func() {
			got, err := f.rpc(ctx, "probe")
			if err != nil {
				got = err.Error()
			}
			probes <- got
		}()
	}
	var got []string
	for range 3 {
		got = append(got, <-probes)
	}
	slices.Sort(got)
	if want := []string{"1 false invalid rpc function name", "2 false invalid rpc function name", "3 false invalid rpc function name"}; !slices.Equal(got, want) {
		t.Errorf("probes %q, want %q", got, want)
	}
	if n, err := c.Num(ctx, []byte("loads")); err != nil || n != 3 {
		t.Errorf("module code ran %d times (%v), want 3", n, err)
	}
	if got := f.state.Timers.Len(); got != 3 {
		t.Errorf("%d timers, want 3", got)
	}
	if got := f.env.RPCNames(); !slices.Equal(got, []string{"at_load", "probe", "who"}) {
		t.Errorf("rpc names %v", got)
	}
	if got := f.env.SignalNums(); !slices.Equal(got, []uint8{17}) {
		t.Errorf("signals %v", got)
	}
	if err := f.state.Signals.RaiseSync(ctx, 17); err != nil {
		t.Fatalf("RaiseSync: %v", err)
	}
	if it, err := c.Get(ctx, []byte("sig")); err != nil || string(it.Value) != "17" {
		t.Errorf("signal handler stored %q (%v), want 17", it.Value, err)
	}
	f.env.Close(context.Background())
}

func TestNondeterministicLoad(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
if uwsgi.cache_inc("n") == 1 then uwsgi.register_rpc("x", function() end) end
`})
	_, _, err := f.load(Options{PoolSize: 2})
	if !errors.Is(err, ErrNondeterministicLoad) {
		t.Errorf("error %v, want ErrNondeterministicLoad", err)
	}
}

// Every name of api.Funcs() is in the uwsgi table, with the right kind,
// and nothing else is.
func TestUwsgiTable(t *testing.T) {
	f := newFixture(t, nil)
	e := New(Options{Logger: quietLogger()})
	got, _, _, err := e.Eval(context.Background(), f.env, `
local t = {}
for k, v in pairs(uwsgi) do t[k] = type(v) end
return t`, 0)
	if err != nil {
		t.Fatal(err)
	}
	types := got.(map[string]api.Value)
	funcs := api.Funcs()
	if len(types) != len(funcs) {
		t.Errorf("uwsgi has %d names, api.Funcs() %d", len(types), len(funcs))
	}
	for _, fn := range funcs {
		typ, ok := types[fn.Name]
		switch {
		case !ok:
			t.Errorf("uwsgi.%s missing", fn.Name)
		case fn.Call != nil && typ != "function":
			t.Errorf("uwsgi.%s is a %v, want a function", fn.Name, typ)
		case fn.Value != nil && typ == "function":
			t.Errorf("uwsgi.%s is a function, want a value", fn.Name)
		}
	}
	val, _, _, err := e.Eval(context.Background(), f.env, "{uwsgi.version, uwsgi.hostname, type(uwsgi.opt), uwsgi.worker_id()}", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Value{api.Version, "testhost", "table", int64(1)}
	if !slices.Equal(val.([]api.Value), want) {
		t.Errorf("got %v, want %v", val, want)
	}
}

func TestRequire(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.lua"), []byte("return 'secret'"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, map[string]string{
		"lib/util.lua":      "local M = {n = 0}\nuwsgi.cache_inc('util loads')\nreturn M",
		"lib/pkg/init.lua":  "return 'pkg'",
		"lib/broken.lua":    "error('broken module')",
		"lib/loop1.lua":     "return require('lib.loop2')",
		"lib/loop2.lua":     "return require('lib.loop1')",
		"a.lua":             "local u = require('lib.util')\nu.n = u.n + 1\nshared_util = u\nreturn {value = 'a'}",
		"b.lua":             "local u = require('lib.util')\nassert(u == shared_util)\nu.n = u.n + 1\nassert(require('a').value == 'a')\nuwsgi.register_rpc('n', function() return u.n end)",
		"c.lua":             "uwsgi.register_rpc('req', function(name) local ok, err = pcall(require, name) if ok then return tostring(err) end return 'error: ' .. err end)",
		"d.lua":             "assert(require('lib.pkg') == 'pkg')",
		"lib/runtime.lua":   "return 'runtime ' .. (uwsgi.cache_inc('runtime loads'))",
		"lib/evil_link.lua": "", // replaced by a symlink below
	})
	link := filepath.Join(f.dir, "lib", "evil_link.lua")
	os.Remove(link)
	if err := os.Symlink(filepath.Join(outside, "secret.lua"), link); err != nil {
		t.Fatal(err)
	}
	_, _ = f.mustLoad(Options{PoolSize: 2})
	ctx := context.Background()
	if got, err := f.rpc(ctx, "n"); got != "2" || err != nil {
		t.Errorf("n = %q, %v; want 2 (the module is shared by the files of a state)", got, err)
	}
	if n, err := f.state.Caches.Default().Num(ctx, []byte("util loads")); n != 2 {
		t.Errorf("module ran %d times (%v), want once per state (2)", n, err)
	}
	tests := []struct{ name, want string }{
		{"lib.util", "table: "},
		{"lib.pkg", "pkg"},
		{"a", "table: "},
		{"lib.runtime", "runtime "},
		{"../x", "error: "},
		{"/etc/passwd", "error: "},
		{"lib..util", "error: "},
		{"lib/util", "error: "},
		{"lib.evil_link", "error: "},
		{"nope", "error: "},
		{"lib.broken", "error: "},
		{"lib.loop1", "error: "},
	}
	for _, tt := range tests {
		got, err := f.rpc(ctx, "req", tt.name)
		if err != nil || !strings.HasPrefix(got, tt.want) {
			t.Errorf("require %q: %q, %v; want prefix %q", tt.name, got, err, tt.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("require %q read a file outside the scripts directory: %q", tt.name, got)
		}
	}
	if got, _ := f.rpc(ctx, "req", "lib.loop1"); !strings.Contains(got, "loop") {
		t.Errorf("require loop: %q", got)
	}
	if got, _ := f.rpc(ctx, "req", "nope"); !strings.Contains(got, "not found") {
		t.Errorf("require nope: %q", got)
	}
	// A failed module may be retried (and fails again the same way).
	if got, _ := f.rpc(ctx, "req", "lib.broken"); !strings.Contains(got, "broken module") {
		t.Errorf("require lib.broken again: %q", got)
	}
}
