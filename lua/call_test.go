package lua

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

func (f *fixture) cacheValue(key string) string {
	f.t.Helper()
	it, err := f.state.Caches.Default().Get(context.Background(), []byte(key))
	if err != nil {
		return ""
	}
	return string(it.Value)
}

// cacheNum returns a counter of the default cache in decimal ("" when
// missing or not a counter): counters are uWSGI's 8-byte integers.
func (f *fixture) cacheNum(key string) string {
	f.t.Helper()
	n, err := f.state.Caches.Default().Num(context.Background(), []byte(key))
	if err != nil {
		return ""
	}
	return fmt.Sprint(n)
}

// Concurrent RPC calls spread over the states of the pool.
func TestConcurrentRPC(t *testing.T) {
	f := newFixture(t, map[string]string{"rpc.lua": readTestdata(t, "rpc.lua")})
	_, _ = f.mustLoad(Options{PoolSize: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			a, b := fmt.Sprint(i), fmt.Sprint(i%7)
			var got, want string
			var err error
			switch i % 3 {
			case 0:
				got, err = f.rpc(context.Background(), "add", a, "0.5")
				want = fmt.Sprintf("%d.5", i)
			case 1:
				got, err = f.rpc(context.Background(), "echo", a, b)
				want = a + " " + b
			default:
				got, err = f.rpc(context.Background(), "hello")
				want = "Hello World"
			}
			if err != nil || got != want {
				errs <- fmt.Errorf("call %d: %q, %v; want %q", i, got, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// uwsgi.call from Lua into a Lua RPC of the same program runs in the state
// the call holds: a pool of one does not deadlock.
func TestReentrantCall(t *testing.T) {
	f := newFixture(t, map[string]string{
		"a.lua": `
uwsgi.register_rpc("inner", function(a) return "inner " .. a end)
uwsgi.register_rpc("outer", function(a) return "outer(" .. uwsgi.call("inner", a) .. ")" end)
uwsgi.register_rpc("deep", function(n)
  n = tonumber(n)
  if n == 0 then return "bottom" end
  return n .. ">" .. uwsgi.call("deep", n - 1)
end)
uwsgi.register_rpc("in_coroutine", function()
  return coroutine.wrap(function() return uwsgi.call("inner", "co") end)()
end)
return function(env)
  return 200, {}, uwsgi.call("outer", env.PATH_INFO)
end`,
	})
	_, p := f.mustLoad(Options{PoolSize: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range []struct{ name, arg, want string }{
		{"outer", "x", "outer(inner x)"},
		{"deep", "3", "3>2>1>bottom"},
		{"in_coroutine", "", "inner co"},
	} {
		got, err := f.rpc(ctx, tt.name, tt.arg)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	var w recorder
	if err := p.Apps()["a"].ServeRequest(ctx, &w, request("", "PATH_INFO=/p")); err != nil {
		t.Fatal(err)
	}
	if got := w.body.String(); got != "outer(inner /p)" {
		t.Errorf("app body %q", got)
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
uwsgi.cache_inc("loads")
uwsgi.register_rpc("ok", function() return "ok" end)
uwsgi.register_rpc("spin", function() while true do end end)
uwsgi.register_rpc("sleep", function() uwsgi.async_sleep(10) return "woke" end)
uwsgi.register_rpc("recurse", function() local function r(n) return 1 + r(n + 1) end return r(1) end)
uwsgi.register_rpc("recurse_pcall", function() local function r() return pcall(r) end r() return "survived" end)
uwsgi.register_rpc("corecurse", function() local function r() return coroutine.wrap(r)() end return r() end)
uwsgi.register_rpc("rep", function() return string.rep("x", 2^40) end)
uwsgi.register_rpc("double", function() local s = "x" while true do s = s .. s end end)
uwsgi.register_rpc("format", function() local s = string.rep("x", 600000) return string.format("%s%s", s, s) end)
uwsgi.register_rpc("tconcat", function() local t = {} for i = 1, 20 do t[i] = string.rep("y", 100000) end return table.concat(t) end)
uwsgi.register_rpc("caught", function() local ok = pcall(string.rep, "x", 2^40) return tostring(ok) end)
uwsgi.register_rpc("err", function() error("plain error") end)
uwsgi.register_rpc("errtable", function() error({code = 1}) end)
uwsgi.register_rpc("apierr", function() return uwsgi.cache_keys("no such cache") end)
return function(env) return 200, {}, "served" end
`})
	_, p := f.mustLoad(Options{PoolSize: 1, MaxStringSize: 1 << 20})
	app := p.Apps()["a"]
	harakiri := func() (context.Context, func()) {
		ctx, _, done := api.NewScope(context.Background(), nil, 100*time.Millisecond)
		return ctx, done
	}
	tests := []struct {
		name     string
		ctx      func() (context.Context, func())
		cause    error
		msg      string
		replaced bool
	}{
		{"spin/deadline", func() (context.Context, func()) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded, "interrupted", true},
		{"spin", harakiri, api.ErrHarakiri, "interrupted", true},
		{"sleep", harakiri, api.ErrHarakiri, "interrupted", true},
		{"recurse", nil, ErrStackOverflow, "overflow", true},
		{"corecurse", nil, ErrStackOverflow, "nested", true},
		{"rep", nil, ErrStringTooLarge, "string.rep", true},
		{"double", nil, ErrStringTooLarge, "limit", true},
		{"format", nil, ErrStringTooLarge, "string.format", true},
		{"tconcat", nil, ErrStringTooLarge, "table.concat", true},
		{"err", nil, nil, "a.lua:14: plain error", false},
		{"errtable", nil, nil, "table: ", false},
		{"apierr", nil, api.ErrUnknownCache, "uwsgi.cache_keys", false},
	}
	loads := 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, done := context.Background(), func() {}
			if tt.ctx != nil {
				ctx, done = tt.ctx()
			}
			defer done()
			start := time.Now()
			_, err := f.rpc(ctx, strings.Split(tt.name, "/")[0])
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
			var se *api.ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *api.ScriptError", err, err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %v does not wrap %v", err, tt.cause)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if se.File != "a.lua" && tt.name != "errtable" {
				t.Errorf("error at %q:%d, want a.lua", se.File, se.Line)
			}
			if tt.replaced {
				loads++
			}
			if got := f.cacheNum("loads"); got != fmt.Sprint(loads) {
				t.Errorf("states built: %s, want %d", got, loads)
			}
			// The pool still serves, RPCs and apps alike (uWSGI's defect
			// (a): an RPC error broke later WSAPI requests).
			if got, err := f.rpc(context.Background(), "ok"); got != "ok" || err != nil {
				t.Errorf("next call: %q, %v", got, err)
			}
			var w recorder
			if err := app.ServeRequest(context.Background(), &w, request("")); err != nil || w.body.String() != "served" {
				t.Errorf("next request: %q, %v", w.body.String(), err)
			}
		})
	}
	// A limit error caught by pcall still retires the state afterwards.
	if got, err := f.rpc(context.Background(), "caught"); got != "false" || err != nil {
		t.Errorf("caught: %q, %v", got, err)
	}
	if got := f.cacheNum("loads"); got != fmt.Sprint(loads+1) {
		t.Errorf("states built: %s, want %d", got, loads+1)
	}
	// Deep pcall recursion ends with a stack overflow inside the call.
	if got, err := f.rpc(context.Background(), "recurse_pcall"); got != "survived" || err != nil {
		t.Errorf("recurse_pcall: %q, %v", got, err)
	}
	if got, err := f.rpc(context.Background(), "ok"); got != "ok" || err != nil {
		t.Errorf("after recurse_pcall: %q, %v", got, err)
	}
}

// A cancelled caller waiting for a state gives up; one that waits gets it.
func TestPoolWait(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
uwsgi.register_rpc("hold", function(s) uwsgi.async_sleep(tonumber(s)) return "held" end)
`})
	_, _ = f.mustLoad(Options{PoolSize: 1})
	holding := make(chan error, 1)
	go func() {
		_, err := f.rpc(context.Background(), "hold", "0.3")
		holding <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.rpc(ctx, "hold", "0"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting caller: %v, want DeadlineExceeded", err)
	}
	if got, err := f.rpc(context.Background(), "hold", "0"); got != "held" || err != nil {
		t.Errorf("patient caller: %q, %v", got, err)
	}
	if err := <-holding; err != nil {
		t.Error(err)
	}
}

// Functions captured at load are callbacks in every state; functions made
// during a call are not.
func TestCallbacks(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
local function g(x) return "g" .. (x or "") end
uwsgi.register_rpc("g", g)
uwsgi.register_rpc("reregister", function() return tostring(uwsgi.register_rpc("g2", g)) end)
uwsgi.register_rpc("dynamic", function()
  return tostring(uwsgi.register_rpc("dyn", function() return "dyn" end))
end)
uwsgi.register_rpc("structs", function(a) return a end)
uwsgi.register_rpc("none", function() return nil end)
uwsgi.register_rpc("bool", function() return true end)
uwsgi.register_rpc("table", function() return {} end)
uwsgi.register_rpc("number", function() return 2^53 end)
uwsgi.register_rpc("many", function(...) return select("#", ...) end)
`})
	_, p := f.mustLoad(Options{PoolSize: 3})
	ctx := context.Background()
	if got, err := f.rpc(ctx, "reregister"); got != "true" || err != nil {
		t.Fatalf("reregister: %q, %v", got, err)
	}
	if got, err := f.rpc(ctx, "g2", "!"); got != "g!" || err != nil {
		t.Errorf("g2: %q, %v", got, err)
	}
	// A function made during a call runs in its own state, borrowed
	// whichever state the caller would get.
	if got, err := f.rpc(ctx, "dynamic"); got != "true" || err != nil {
		t.Fatalf("dynamic registration: %q, %v", got, err)
	}
	for range 10 {
		if got, err := f.rpc(ctx, "dyn"); got != "dyn" || err != nil {
			t.Errorf("dyn: %q, %v", got, err)
		}
	}
	for name, want := range map[string]error{"none": api.ErrNoResult, "bool": api.ErrNoResult, "table": api.ErrNoResult} {
		if _, err := f.rpc(ctx, name); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if got, _ := f.rpc(ctx, "number"); got != "9.007199254741e+15" {
		t.Errorf("number: %q", got)
	}
	args := make([]string, api.MaxRPCArgs)
	if got, err := f.rpc(ctx, "many", args...); got != "254" || err != nil {
		t.Errorf("many: %q, %v", got, err)
	}
	// Callable.Call converts values both ways.
	prog := p.(*program)
	structs := &progFunc{p: prog, key: 3}
	in := map[string]api.Value{"list": []api.Value{int64(1), "two", 3.5, true}, "n": int64(-4)}
	got, err := structs.Call(ctx, []api.Value{in})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(in) {
		t.Errorf("round trip: %v, want %v", got, in)
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
uwsgi.register_rpc("hold", function() uwsgi.async_sleep(0.2) return "held" end)
uwsgi.register_rpc("ok", function() return "ok" end)
`})
	_, p := f.mustLoad(Options{PoolSize: 1})
	prog := p.(*program)
	holding := make(chan string, 1)
	go func() {
		got, err := f.rpc(context.Background(), "hold")
		holding <- fmt.Sprintf("%s %v", got, err)
	}()
	time.Sleep(50 * time.Millisecond)
	waiting := make(chan error, 1)
	go func() {
		_, err := f.rpc(context.Background(), "ok")
		waiting <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting call: %v, want ErrClosed", err)
	}
	if got := <-holding; got != "held <nil>" {
		t.Errorf("running call: %s, want it to finish", got)
	}
	if _, err := f.rpc(context.Background(), "ok"); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if n := len(prog.pool.Idle()); n != 0 {
		t.Errorf("%d states left in the pool after Close", n)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A function made during a call runs in its own state: callers wait for
// that state, and get ErrStateGone once it was replaced.
func TestStateFunctions(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
local state_id = uwsgi.cache_inc("ids")
uwsgi.register_rpc("mk", function(tag)
  uwsgi.register_rpc("bound_" .. tag, function() return "bound " .. tag .. " in " .. state_id end)
  return state_id
end)
uwsgi.register_rpc("sleep", function(s) uwsgi.async_sleep(tonumber(s)) return state_id end)
uwsgi.register_rpc("spin", function() while true do end end)
`})
	_, _ = f.mustLoad(Options{PoolSize: 3})
	ctx := context.Background()
	id, err := f.rpc(ctx, "mk", "a")
	if err != nil {
		t.Fatal(err)
	}
	want := "bound a in " + id
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if got, err := f.rpc(ctx, "bound_a"); got != want || err != nil {
				t.Errorf("bound_a: %q, %v; want %q", got, err, want)
			}
		})
	}
	wg.Wait()

	// The state is busy: the call waits for it.
	sleeping := make(chan string, 1)
	go func() {
		got, _ := f.rpc(ctx, "sleep", "0.2") // the state on top of the pool: the one that made bound_a
		sleeping <- got
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if got, err := f.rpc(ctx, "bound_a"); got != want || err != nil {
		t.Errorf("bound_a while its state sleeps: %q, %v", got, err)
	}
	if slept := <-sleeping; slept != id {
		t.Fatalf("sleep ran in state %s, want %s", slept, id)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("bound_a answered after %v, while its state was busy", waited)
	}

	// The state is replaced: a waiting call and later calls fail.
	spinning := make(chan error, 1)
	go func() {
		sctx, _, done := api.NewScope(ctx, nil, 200*time.Millisecond)
		defer done()
		_, err := f.rpc(sctx, "spin")
		spinning <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := f.rpc(ctx, "bound_a"); !errors.Is(err, ErrStateGone) {
		t.Errorf("bound_a waiting for a state that was replaced: %v, want ErrStateGone", err)
	}
	if err := <-spinning; !errors.Is(err, api.ErrHarakiri) {
		t.Errorf("spin: %v", err)
	}
	// Its registration ends with the state (asynchronously): gone, or
	// the name no longer registered.
	if _, err := f.rpc(ctx, "bound_a"); !errors.Is(err, ErrStateGone) && !errors.Is(err, api.ErrNoSuchFunction) {
		t.Errorf("bound_a after its state was replaced: %v, want ErrStateGone or ErrNoSuchFunction", err)
	}
}

// A call holding one state that borrows another (for a function bound to
// it) may call back into the first: no deadlock.
func TestStateFunctionsCrossing(t *testing.T) {
	f := newFixture(t, map[string]string{"a.lua": `
local id = uwsgi.cache_inc("ids")
uwsgi.register_rpc("mk", function(tag)
  uwsgi.async_sleep(0.1) -- both states busy at once: one per tag
  uwsgi.register_rpc("bound_" .. tag, function(path)
    local nxt, rest = path:sub(1, 1), path:sub(2)
    local me = tag .. id
    if nxt == "" then return me end
    return me .. ">" .. uwsgi.call("bound_" .. nxt, rest)
  end)
  return id
end)
`})
	_, _ = f.mustLoad(Options{PoolSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids := make(chan string, 2)
	for _, tag := range []string{"a", "b"} {
		go func() {
			id, err := f.rpc(ctx, "mk", tag)
			if err != nil {
				t.Error(err)
			}
			ids <- tag + id
		}()
	}
	byTag := map[byte]string{}
	for range 2 {
		s := <-ids
		byTag[s[0]] = s
	}
	if byTag['a'][1:] == byTag['b'][1:] {
		t.Fatalf("both functions made in the same state: %v", byTag)
	}
	want := byTag['a'] + ">" + byTag['b'] + ">" + byTag['a'] + ">" + byTag['b']
	if got, err := f.rpc(ctx, "bound_a", "bab"); got != want || err != nil {
		t.Errorf("bound_a(bab) = %q, %v; want %q", got, err, want)
	}
}
