package lua

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

func TestWSAPI(t *testing.T) {
	tests := []struct {
		name    string
		app     string
		body    string
		vars    []string
		status  string
		headers []api.Header
		chunks  []string
		err     string // part of the error; "" for none
		sent    bool   // with err: whether the header went out
	}{
		{name: "number status", app: `return 200, {["Content-Type"] = "text/plain"}, "hi"`,
			status: "200 OK", headers: []api.Header{{Name: "Content-Type", Value: "text/plain"}}, chunks: []string{"hi"}},
		{name: "teapot", app: `return 418, {}, ""`, status: "418 I'm a teapot"},
		{name: "unknown code", app: `return 599, {}, "x"`, status: "599 Unknown", chunks: []string{"x"}},
		{name: "string status", app: `return "404 Not Found", {}, "gone"`, status: "404 Not Found", chunks: []string{"gone"}},
		{name: "code string", app: `return "201", {}, "made"`, status: "201", chunks: []string{"made"}},
		{name: "header order and arrays", app: `
			local h = {}
			h["X-First"] = "1"
			h["X-Lua"] = {"a", "b"}
			h["X-Num"] = 2.5
			return 200, h, "x"`,
			status: "200 OK", chunks: []string{"x"},
			headers: []api.Header{{Name: "X-First", Value: "1"}, {Name: "X-Lua", Value: "a"}, {Name: "X-Lua", Value: "b"}, {Name: "X-Num", Value: "2.5"}}},
		{name: "table body", app: `return 200, {}, {"a", "b", 3}`, status: "200 OK", chunks: []string{"a", "b", "3"}},
		{name: "nil body", app: `return 204, {}, nil`, status: "204 No Content"},
		{name: "coroutine body", app: `
			return 200, {}, coroutine.wrap(function()
				coroutine.yield("one ")
				coroutine.yield("two ")
				coroutine.yield(0.1 + 0.2)
				return "last"
			end)`,
			status: "200 OK", chunks: []string{"one ", "two ", "0.3", "last"}},
		{name: "iterator body", app: `
			local i = 0
			return 200, {}, function() i = i + 1 if i <= 3 then return "c" .. i end end`,
			status: "200 OK", chunks: []string{"c1", "c2", "c3"}},
		{name: "env", vars: []string{"REQUEST_METHOD=GET", "X=1", "X=2"}, app: `
			return 200, {}, env.REQUEST_METHOD .. " " .. env.X .. " [" .. env.CONTENT_TYPE .. "] " .. type(env.input)`,
			status: "200 OK", chunks: []string{"GET 2 [] table"}},
		{name: "read n", body: "0123456789", vars: []string{"CONTENT_LENGTH=10"}, app: `
			local a = env.input:read(4)
			local b = env.input:read(100)
			local c = env.input:read(1)
			return 200, {}, a .. "|" .. b .. "|" .. tostring(c)`,
			status: "200 OK", chunks: []string{"0123|456789|nil"}},
		{name: "read all and lines", body: "l1\nl2\nrest", app: `
			local l1 = env.input:read("*l")
			local l2 = env.input.read(env.input, "*l")
			local rest = env.input:read()
			local after = env.input:read()
			local all = env.input:read("*a")
			return 200, {}, l1 .. "," .. l2 .. "," .. rest .. "," .. tostring(after) .. ",[" .. all .. "]"`,
			status: "200 OK", chunks: []string{"l1,l2,rest,nil,[]"}},
		{name: "error before headers", app: `
			local x = nil
			return 200, {}, x.field`,
			err: "app.lua:3:"},
		{name: "error in status", app: `return {}, {}, ""`, err: "status must be"},
		{name: "bad status number", app: `return 42, {}, ""`, err: "invalid status 42"},
		{name: "error in headers", app: `return 200, {[1] = "x"}, ""`, err: "header name"},
		{name: "error mid body", app: `
			return 200, {}, coroutine.wrap(function()
				coroutine.yield("first")
				error("mid body")
			end)`,
			status: "200 OK", chunks: []string{"first"}, err: "mid body", sent: true},
		{name: "nil status", app: `return nil`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{
				"app.lua": "return function(env)\n" + strings.TrimLeft(tt.app, "\n") + "\nend",
			})
			_, p := f.mustLoad(Options{PoolSize: 1})
			app := p.Apps()["app"]
			var w recorder
			err := app.ServeRequest(context.Background(), &w, request(tt.body, tt.vars...))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				var se *api.ScriptError
				if !errors.As(err, &se) || se.File != "app.lua" {
					t.Errorf("error %v: want a *api.ScriptError in app.lua", err)
				}
				if w.HeaderSent() != tt.sent {
					t.Errorf("header sent: %v, want %v", w.HeaderSent(), tt.sent)
				}
			} else if err != nil {
				t.Fatalf("ServeRequest: %v", err)
			}
			if w.status != tt.status {
				t.Errorf("status %q, want %q", w.status, tt.status)
			}
			if tt.headers != nil && !slices.Equal(w.headers, tt.headers) {
				t.Errorf("headers %v, want %v", w.headers, tt.headers)
			}
			if !slices.Equal(w.chunks, tt.chunks) {
				t.Errorf("chunks %q, want %q", w.chunks, tt.chunks)
			}
			// The state serves the next request whatever happened.
			var w2 recorder
			_ = app.ServeRequest(context.Background(), &w2, request(tt.body, tt.vars...))
			if w2.status != tt.status {
				t.Errorf("second request: status %q, want %q", w2.status, tt.status)
			}
		})
	}
}

// A client that goes away ends the body with the write error.
func TestWSAPIWriteError(t *testing.T) {
	f := newFixture(t, map[string]string{"app.lua": `
return function(env)
  return 200, {}, coroutine.wrap(function()
    for i = 1, 1e9 do coroutine.yield("chunk") end
  end)
end`})
	_, p := f.mustLoad(Options{PoolSize: 1})
	w := recorder{failAt: 3}
	err := p.Apps()["app"].ServeRequest(context.Background(), &w, request(""))
	if !errors.Is(err, errClientGone) {
		t.Errorf("error %v, want the write error", err)
	}
	if len(w.chunks) != 3 {
		t.Errorf("%d chunks written, want 3", len(w.chunks))
	}
}

// A coroutine made in one request and resumed in a later one runs under
// the later request's context.
func TestCoroutineAcrossCalls(t *testing.T) {
	f := newFixture(t, map[string]string{"app.lua": `
local gen = coroutine.wrap(function() local i = 0 while true do i = i + 1 coroutine.yield(i) end end)
local co = coroutine.create(function() while true do coroutine.yield("co") end end)
return function(env)
  local ok, v = coroutine.resume(co)
  return 200, {}, tostring(gen()) .. " " .. tostring(ok) .. " " .. tostring(v)
end`})
	_, p := f.mustLoad(Options{PoolSize: 1})
	for i, want := range []string{"1 true co", "2 true co", "3 true co"} {
		ctx, _, done := api.NewScope(context.Background(), nil, 0)
		var w recorder
		err := p.Apps()["app"].ServeRequest(ctx, &w, request(""))
		done()
		if err != nil || w.body.String() != want {
			t.Errorf("request %d: %q, %v; want %q", i, w.body.String(), err, want)
		}
	}
}
