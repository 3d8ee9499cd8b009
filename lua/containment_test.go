package lua

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

// A call that finds no free state within PoolWait fails, is counted, and
// the pool serves again once the state is back.
func TestPoolBusy(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
uwsgi.register_rpc("hold", function(s) uwsgi.async_sleep(tonumber(s)) return "held" end)
`})
	_, _ = f.mustLoad(Options{PoolSize: 1, PoolWait: 100 * time.Millisecond})
	holding := make(chan error, 1)
	go func() {
		_, err := f.rpc(context.Background(), "hold", "1")
		holding <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	_, err := f.rpc(context.Background(), "hold", "0")
	if waited := time.Since(start); waited < 80*time.Millisecond || waited > 900*time.Millisecond {
		t.Errorf("waited %v, want about 100ms", waited)
	}
	if !errors.Is(err, ErrPoolBusy) || !errors.Is(err, vmpool.ErrBusy) || !strings.Contains(err.Error(), "busy") {
		t.Errorf("error %v, want ErrPoolBusy wrapping vmpool.ErrBusy", err)
	}
	if got := f.state.Counters.PoolTimeouts.Load(); got != 1 {
		t.Errorf("PoolTimeouts %d, want 1", got)
	}
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
	if got, err := f.rpc(context.Background(), "hold", "0"); got != "held" || err != nil {
		t.Errorf("after the wait: %q, %v", got, err)
	}

	// Without counters the timeout is still an error.
	f.state.Counters = nil
	go func() {
		_, err := f.rpc(context.Background(), "hold", "0.5")
		holding <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := f.rpc(context.Background(), "hold", "0"); !errors.Is(err, ErrPoolBusy) {
		t.Errorf("without counters: %v, want ErrPoolBusy", err)
	}
	if err := <-holding; err != nil {
		t.Fatal(err)
	}
}

func TestPoolDefaults(t *testing.T) {
	e := New(Options{})
	if e.opts.PoolSize != max(4, 2*runtime.NumCPU()) || e.opts.PoolWait != DefaultPoolWait {
		t.Errorf("PoolSize %d, PoolWait %v; want max(4, 2 per CPU) and %v", e.opts.PoolSize, e.opts.PoolWait, DefaultPoolWait)
	}
}

// Top-level code that never ends fails the load, in the first state and
// in replicas built later, naming the file.
func TestLoadTimeout(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"first state", map[string]string{"a.lua": "local x = 1", "b.lua": "while true do end"}},
		{"replica", map[string]string{"b.lua": `if uwsgi.cache_inc("n") > 1 then while true do end end`}},
		{"required module", map[string]string{"b.lua": `require("lib.spin")`, "lib/spin.lua": "while true do end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.files)
			f.env.LoadTimeout = 100 * time.Millisecond
			start := time.Now()
			_, _, err := f.load(Options{PoolSize: 2})
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("load took %v", elapsed)
			}
			var se *api.ScriptError
			if !errors.As(err, &se) || !errors.Is(err, api.ErrLoadTimeout) {
				t.Fatalf("error %v, want a *api.ScriptError wrapping api.ErrLoadTimeout", err)
			}
			if !strings.Contains(err.Error(), "b.lua") {
				t.Errorf("error %q does not name b.lua", err)
			}
		})
	}
}

// string.gsub and string.gmatch, rebuilt to find one match at a time,
// behave like Lua 5.1's.
func TestStringPatterns(t *testing.T) {
	f := newFixture(t, nil)
	e := New(Options{Logger: quietLogger()})
	gsub := `(function(...) local s, n = string.gsub(...) return s .. "|" .. n end)`
	gmatch := `(function(s, p) local out = {} for a, b in string.gmatch(s, p) do out[#out + 1] = a .. (b and "=" .. b or "") end return table.concat(out, ",") end)`
	tests := []struct{ code, want string }{
		{gsub + `("hello world", "o", "0")`, "hell0 w0rld|2"},
		{gsub + `("hello world", "(%w+)", "<%1>")`, "<hello> <world>|2"},
		{gsub + `("abc", "%w", "%0%0")`, "aabbcc|3"},
		{gsub + `("abc", "", "-")`, "-a-b-c-|4"},
		{gsub + `("abc", "%w*", "-")`, "--|2"},
		{gsub + `("hello", "^h", "H")`, "Hello|1"},
		{gsub + `("hello", "^x", "H")`, "hello|0"},
		{gsub + `("hello", "^", ">")`, ">hello|1"},
		{gsub + `("hello", "l", {l = "L"})`, "heLLo|2"},
		{gsub + `("hello", "l", {})`, "hello|2"},
		{gsub + `("a=1, b=2", "(%w+)=(%w+)", "%2=%1")`, "1=a, 2=b|2"},
		{gsub + `("abc", "%w", function(c) return c:upper() .. "." end)`, "A.B.C.|3"},
		{gsub + `("abc", "b", function() return false end)`, "abc|1"},
		{gsub + `("x", "x", function() return 0.1 + 0.2 end)`, "0.3|1"},
		{gsub + `("abc", ".", "%%")`, "%%%|3"},
		{gsub + `("abc", ".", "x", 2)`, "xxc|2"},
		{gsub + `("abc", "()b", "%1")`, "a2c|1"},
		{gsub + `("", "x*", "y")`, "y|1"},
		{gsub + `("abc", "z", "y")`, "abc|0"},
		{`select(2, pcall(string.gsub, "abc", "b", "%2"))`, "invalid capture index"},
		{`select(2, pcall(string.gsub, "abc", "b", function() return {} end))`, "invalid replacement value (a table)"},
		{`select(2, pcall(string.gsub, "abc", "(", "x"))`, "unfinished capture"},
		{gmatch + `("one two three", "%a+")`, "one,two,three"},
		{gmatch + `("a=1, b=2", "(%w+)=(%w+)")`, "a=1,b=2"},
		{gmatch + `("abc", "")`, ",,,"},
		{gmatch + `("hello", "^h")`, "h"},
		{gmatch + `("hello", "^e")`, ""},
		{`(function() local it = string.gmatch("ab", ".") return it() .. it() .. tostring(it() == nil) end)()`, "abtrue"},
		{`string.upper("abc") .. string.lower("DEF") .. string.reverse("ghi") .. string.char(106, 107)`, "ABCdefihgjk"},
	}
	for _, tt := range tests {
		got := evalString(t, e, f.env, tt.code)
		if strings.HasPrefix(tt.code, "select(2, pcall(") && strings.Contains(got, tt.want) {
			continue
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.code, got, tt.want)
		}
	}
}

// The strings a script builds are charged to its call before they are
// built.
func TestCharges(t *testing.T) {
	f := newFixture(t, map[string]string{"app.lua": `
return function(env)
  local a = env.input:read(100000)
  local b = env.input:read("*l")
  local c = env.input:read()
  return 200, {}, #a .. " " .. #b .. " " .. #c
end`})
	_, p := f.mustLoad(Options{PoolSize: 1})
	e := New(Options{Logger: quietLogger()})
	k := `"` + strings.Repeat("x", 1000) + `"` // a literal: charged by nothing
	tests := []struct {
		name string
		code string
		want int64
	}{
		{"rep", `string.rep("x", 100000)`, 100000},
		{"concat", `for i = 1, 100 do local s = ` + k + ` .. ` + k + ` end`, 200000},
		{"table.concat", `local t = {} for i = 1, 100 do t[i] = ` + k + ` end table.concat(t)`, 100000},
		{"format", `for i = 1, 100 do string.format("%s", ` + k + `) end`, 100000},
		{"format %q", `for i = 1, 100 do string.format("%q", ` + k + `) end`, 200000},
		{"gsub", `for i = 1, 100 do string.gsub(` + k + `, "x", "yy") end`, 200000},
		{"gsub captures", `for i = 1, 100 do string.gsub(` + k + `, ".*", "%0%0") end`, 200000},
		{"char", `local t = {} for i = 1, 1000 do t[i] = 65 end for i = 1, 100 do string.char(unpack(t)) end`, 100000},
		{"upper", `for i = 1, 100 do string.upper(` + k + `) end`, 100000},
		{"lower", `for i = 1, 100 do string.lower(` + k + `) end`, 100000},
		{"reverse", `for i = 1, 100 do string.reverse(` + k + `) end`, 100000},
		{"load", `local n = 0 load(function() n = n + 1 if n <= 100 then return "--" .. ` + k + ` .. "\n" end end)`, 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, scope, done := api.NewScope(context.Background(), nil, 0)
			defer done()
			if _, _, _, err := e.Eval(ctx, f.env, tt.code, 0); err != nil {
				t.Fatal(err)
			}
			if got := scope.Charged(); got < tt.want {
				t.Errorf("charged %d bytes, want at least %d", got, tt.want)
			}
		})
	}
	t.Run("input:read", func(t *testing.T) {
		ctx, scope, done := api.NewScope(context.Background(), nil, 0)
		defer done()
		body := strings.Repeat("b", 100000) + strings.Repeat("l", 100000) + "\n" + strings.Repeat("r", 100000)
		var w recorder
		if err := p.Apps()["app"].ServeRequest(ctx, &w, request(body)); err != nil {
			t.Fatal(err)
		}
		if got := w.body.String(); got != "100000 100000 100000" {
			t.Errorf("read %q", got)
		}
		if got := scope.Charged(); got < 300000 {
			t.Errorf("charged %d bytes, want at least 300000", got)
		}
	})
}

// budgetScript allocates what a memory budget must refuse.
const budgetScript = `
uwsgi.cache_inc("loads")
local function big() return string.rep("x", 10 * 2^20) end
uwsgi.register_rpc("ok", function() return "ok" end)
uwsgi.register_rpc("rep", function() return #string.rep("x", 20 * 2^20) end)
uwsgi.register_rpc("concat", function() local s = big() return #(s .. s) end)
uwsgi.register_rpc("tconcat", function() local s = big() return #table.concat({s, s}) end)
uwsgi.register_rpc("format", function() return #string.format("%q", big()) end)
uwsgi.register_rpc("gsub", function() local s = big() return #s:gsub("^", s) end)
uwsgi.register_rpc("caught", function() return tostring(pcall(string.rep, "x", 20 * 2^20)) end)
uwsgi.register_rpc("grow", function()
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 6 * 2^20) .. i end
end)
uwsgi.register_rpc("churn", function()
  local t, i = {}, 0
  while true do i = i + 1 t[i % 1000 + 1] = string.rep("x", 1000) .. i end
end)
`

// A memory budget refuses what one call allocates over it, as a script
// error carrying the api's error; the state is replaced and the next call
// is served.
func TestMemoryBudget(t *testing.T) {
	mem := api.NewMemory(64 << 20)
	mem.Logger = quietLogger()
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- mem.Serve(serveCtx) }()
	defer func() { stop(); <-served }()

	f := newFixture(t, map[string]string{"a.lua": budgetScript})
	e, _ := f.mustLoad(Options{PoolSize: 1})
	call := func(name string) (string, error) {
		ctx, _, done := api.NewScope(api.WithMemory(context.Background(), mem), nil, 10*time.Second)
		defer done()
		return f.rpc(ctx, name)
	}
	tests := []struct {
		name  string
		cause error
	}{
		{"rep", api.ErrAllocTooLarge},
		{"concat", api.ErrAllocTooLarge},
		{"tconcat", api.ErrAllocTooLarge},
		{"format", api.ErrAllocTooLarge},
		{"gsub", api.ErrAllocTooLarge},
		{"grow", api.ErrMemoryLimit},
	}
	loads := 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(tt.name)
			var se *api.ScriptError
			if !errors.As(err, &se) || !errors.Is(err, tt.cause) {
				t.Fatalf("error %v, want a *api.ScriptError wrapping %v", err, tt.cause)
			}
			if se.File != "a.lua" {
				t.Errorf("error at %q, want a.lua", se.File)
			}
			loads++
			if got := f.cacheNum("loads"); got != fmt.Sprint(loads) {
				t.Errorf("states built: %s, want %d (the state is replaced)", got, loads)
			}
			if got, err := call("ok"); got != "ok" || err != nil {
				t.Errorf("next call: %q, %v", got, err)
			}
		})
	}
	// Caught by pcall, the error still retires the state.
	if got, err := call("caught"); got != "false" || err != nil {
		t.Errorf("caught: %q, %v", got, err)
	}
	if got := f.cacheNum("loads"); got != fmt.Sprint(loads+1) {
		t.Errorf("states built: %s, want %d", got, loads+1)
	}

	// The eval path.
	for _, tt := range []struct {
		code  string
		cause error
	}{
		{`#string.rep("x", 20 * 2^20)`, api.ErrAllocTooLarge},
		{`local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 6 * 2^20) .. i end`, api.ErrMemoryLimit},
	} {
		ctx, _, done := api.NewScope(api.WithMemory(context.Background(), mem), nil, 10*time.Second)
		_, _, _, err := e.Eval(ctx, f.env, tt.code, 0)
		done()
		if !errors.Is(err, tt.cause) {
			t.Errorf("eval %s: %v, want %v", tt.code, err, tt.cause)
		}
	}
	if got := evalString(t, e, f.env, `"after"`); got != "after" {
		t.Errorf("next eval: %q", got)
	}
}

// A call interrupted the way the memory watchdog does it (its context
// cancelled with a cause wrapping api.ErrMemoryLimit) says so, and its
// state is replaced.
func TestMemoryInterrupt(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": budgetScript})
	e, _ := f.mustLoad(Options{PoolSize: 1})
	watchdog := func() context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(50*time.Millisecond, func() {
			cancel(fmt.Errorf("%w: this call allocated most", api.ErrMemoryLimit))
		})
		return ctx
	}
	check := func(what string, err error) {
		t.Helper()
		var se *api.ScriptError
		if !errors.As(err, &se) || !errors.Is(err, api.ErrMemoryLimit) || !strings.Contains(err.Error(), "memory limit") {
			t.Errorf("%s: error %v, want a *api.ScriptError saying the memory limit interrupted it", what, err)
		}
	}
	_, err := f.rpc(watchdog(), "churn")
	check("rpc", err)
	if got := f.cacheNum("loads"); got != "2" {
		t.Errorf("states built: %s, want 2", got)
	}
	if got, err := f.rpc(context.Background(), "ok"); got != "ok" || err != nil {
		t.Errorf("next call: %q, %v", got, err)
	}
	_, _, _, err = e.Eval(watchdog(), f.env, `local t, i = {}, 0 while true do i = i + 1 t[i % 1000 + 1] = string.rep("x", 1000) .. i end`, 0)
	check("eval", err)

	// A long substitution is interrupted within, not after it.
	start := time.Now()
	_, _, _, err = e.Eval(watchdog(), f.env, `string.rep("x", 2^24):gsub(".", "y")`, 0)
	check("gsub", err)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("gsub interrupted after %v", elapsed)
	}
}

// isolationScript changes globals and built-ins in "dirty" and reports
// what a call sees in "check".
const isolationScript = `
counter = 0
function string.trim(s) return (s:gsub("^%s+", "")) end -- at load: kept
function helper() return type(tostring) end
local tostr = tostring
local function sees()
  local globals, strings = 0, 0
  for k in pairs(_G) do globals = globals + 1 end
  for k in pairs(string) do strings = strings + 1 end
  return table.concat({tostr(leaked), counter, type(print), tostr(1), type(rawget(_G, "raw")), helper(),
    type(string.format), type(uwsgi.cache_get), tostr(math.pi > 3.14), tostr(table[1]), ("  x"):trim(),
    tostr(getmetatable("").__index == string), tostr(rawget(_G, "uwsgi") == uwsgi),
    tostr(globals > 20), tostr(strings > 10)}, ",")
end
uwsgi.register_rpc("dirty", function(hold)
  leaked = "yes"
  counter = counter + 1
  print = nil
  tostring = function() return "evil" end
  rawset(_G, "raw", 1)
  setfenv(helper, {type = function() return "patched" end})
  local refused = {}
  for _, f in ipairs({
    function() string.format = nil end,
    function() uwsgi.cache_get = nil end,
    function() rawset(math, "pi", 3) end,
    function() setmetatable(string, {}) end,
    function() getmetatable("").__index.upper = nil end,
    function() setmetatable(_G, {}) end,
  }) do
    refused[#refused + 1] = pcall(f) and "allowed" or "refused"
  end
  table.insert(table, "raw")
  local during = sees()
  uwsgi.async_sleep(tonumber(hold))
  return table.concat(refused, " ") .. "|" .. during
end)
uwsgi.register_rpc("check", function(hold)
  uwsgi.async_sleep(tonumber(hold))
  return sees()
end)
`

// A call's writes to globals and built-ins are not seen by later calls,
// on any state of the pool; what the files did at load is.
func TestIsolation(t *testing.T) {
	const states = 3
	f := newFixture(t, map[string]string{"a.lua": isolationScript})
	_, _ = f.mustLoad(Options{PoolSize: states})
	// Calls that hold their state a while run on every state at once.
	onEveryState := func(name string) []string {
		results := make(chan string, states)
		for range states {
			go func() {
				got, err := f.rpc(context.Background(), name, "0.1")
				if err != nil {
					got = err.Error()
				}
				results <- got
			}()
		}
		var all []string
		for range states {
			all = append(all, <-results)
		}
		return all
	}
	const pristine = "nil,0,function,1,nil,function,function,function,true,nil,x,true,true,true,true"
	for _, got := range onEveryState("dirty") {
		const want = "refused refused refused refused refused refused|yes,1,nil,1,number,patched,function,function,true,raw,x,true,true,true,true"
		if got != want {
			t.Errorf("during the call: %q, want %q", got, want)
		}
	}
	for range 3 {
		for _, got := range onEveryState("check") {
			if got != pristine {
				t.Errorf("a later call sees %q, want %q", got, pristine)
			}
		}
	}
}
