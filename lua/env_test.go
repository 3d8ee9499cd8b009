package lua

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

// The env table is filled when first needed (env.go): every way a script
// can look at it must see the same as with a table filled at once.
func TestEnvTable(t *testing.T) {
	vars := []string{"REQUEST_METHOD=GET", "PATH_INFO=/p", "X=1", "X=2", "QUERY_STRING="}
	tests := []struct {
		name string
		app  string
		want string
	}{
		{"reads", `return env.REQUEST_METHOD .. env.PATH_INFO .. env.X .. "[" .. env.QUERY_STRING .. "]" ..
			"[" .. env.CONTENT_TYPE .. "]" .. tostring(env.MISSING) .. type(env.input) .. tostring(env[1]) ..
			tostring(env[true])`,
			"GET/p2[][]niltablenilnil"},
		{"reading twice gives the same values", `return tostring(env.input == env.input) .. tostring(env.X == env.X)`,
			"truetrue"},
		{"pairs sees every var, input and CONTENT_TYPE", `
			local ks = {}
			for k, v in pairs(env) do ks[#ks + 1] = k .. "=" .. (type(v) == "string" and v or type(v)) end
			table.sort(ks)
			return table.concat(ks, " ")`,
			"CONTENT_TYPE= PATH_INFO=/p QUERY_STRING= REQUEST_METHOD=GET X=2 input=table"},
		{"next", `
			local n = 0
			local k = next(env)
			while k do n = n + 1; k = next(env, k) end
			return tostring(n)`,
			"6"},
		{"next as an iterator", `
			local n = 0
			for k in next, env do n = n + 1 end
			return tostring(n)`,
			"6"},
		{"rawget", `return rawget(env, "PATH_INFO") .. tostring(rawget(env, "MISSING"))`, "/pnil"},
		{"no metatable to see", `return tostring(getmetatable(env))`, "nil"},
		{"a var set to nil is gone", `env.PATH_INFO = nil; return tostring(env.PATH_INFO)`, "nil"},
		{"a var read then set to nil is gone", `local p = env.PATH_INFO; env.PATH_INFO = nil; return p .. tostring(env.PATH_INFO)`,
			"/pnil"},
		{"rawset to nil", `local p = env.PATH_INFO; rawset(env, "PATH_INFO", nil); return p .. tostring(env.PATH_INFO)`,
			"/pnil"},
		{"writes", `env.PATH_INFO = "/q"; env.NEW = "n"; env[1] = "one"; return env.PATH_INFO .. env.NEW .. env[1] .. #env`,
			"/qnone1"},
		{"a nil key is an error", `local ok, err = pcall(function() env[nil] = 1 end); return tostring(ok)`, "false"},
		{"the script's own metatable", `
			setmetatable(env, {__index = function(t, k) return "default" end})
			return env.PATH_INFO .. env.NOPE`,
			"/pdefault"},
		{"as a function environment", `
			local f = setfenv(function() return PATH_INFO end, env)
			return f()`,
			"/p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{
				"app.lua": "return function(env)\nlocal function run()\n" + strings.TrimLeft(tt.app, "\n") +
					"\nend\nreturn 200, {}, run()\nend",
			})
			_, p := f.mustLoad(Options{PoolSize: 1})
			var w recorder
			if err := p.Apps()["app"].ServeRequest(context.Background(), &w, request("", vars...)); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(w.chunks, ""); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// An env table kept after its request still holds that request's vars,
// though the request's buffers are reused, and its input reads nothing.
func TestEnvTableKept(t *testing.T) {
	f := newFixture(t, map[string]string{"app.lua": `
local kept
return function(env)
  if not kept then
    kept = env
    return 200, {}, "kept"
  end
  return 200, {}, kept.PATH_INFO .. " " .. env.PATH_INFO .. " " .. tostring(kept.input:read()) .. " " .. kept.CONTENT_LENGTH
end`})
	_, p := f.mustLoad(Options{PoolSize: 1})
	app := p.Apps()["app"]
	first := request("body", "PATH_INFO=/first", "CONTENT_LENGTH=4")
	var w recorder
	if err := app.ServeRequest(context.Background(), &w, first); err != nil {
		t.Fatal(err)
	}
	for _, kv := range first.Vars { // the buffer is reused for the next request
		for i := range kv.Value {
			kv.Value[i] = 'x'
		}
	}
	w = recorder{}
	if err := app.ServeRequest(context.Background(), &w, request("", "PATH_INFO=/second")); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(w.chunks, ""), "/first /second nil 4"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Converted to a Go value (a script passing env to a uwsgi function), an
// env table holds every var.
func TestEnvTableToGo(t *testing.T) {
	f := newFixture(t, nil)
	e := New(Options{Logger: quietLogger()})
	v, err := newState(e, f.env, nil, newModules(e.comp, f.dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	env := v.newEnv(request("", "PATH_INFO=/p", "X=1", "X=2"), &bodyReader{r: strings.NewReader("")})
	val, err := v.fromLua(env, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := val.(map[string]api.Value)
	if !ok {
		t.Fatalf("got %T, want a map", val)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if got, want := strings.Join(keys, ","), "CONTENT_TYPE,PATH_INFO,X,input"; got != want || m["X"] != "2" || m["PATH_INFO"] != "/p" {
		t.Errorf("keys %s (X %v, PATH_INFO %v), want %s, X 2, PATH_INFO /p", got, m["X"], m["PATH_INFO"], want)
	}
}
