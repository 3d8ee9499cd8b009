package tests

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// mixedScripts are a Lua and a JavaScript file that call each other's RPC
// functions and serve an app each.
var mixedScripts = map[string][]byte{
	"app.lua": []byte(`
uwsgi.register_rpc("lua_double", function(s) return s .. s end)
uwsgi.register_rpc("lua_via_js", function(s) return "lua(" .. uwsgi.call("js_upper", s) .. ")" end)
return function(env)
  return 200, {["Content-Type"] = "text/plain"}, "lua app " .. env.PATH_INFO
end
`),
	"app.js": []byte(`
uwsgi.register_rpc('js_upper', (s) => s.toUpperCase());
uwsgi.register_rpc('js_via_lua', (s) => 'js(' + uwsgi.call('lua_double', s) + ')');
uwsgi.register_rpc('js_spin', () => { for (;;) {} });
uwsgi.register_rpc('js_recurse', () => { const f = (n) => f(n + 1) + 1; return f(0); });
uwsgi.register_rpc('js_huge', () => 'x'.repeat(2 ** 30));
uwsgi.register_rpc('js_async', async (s) => { await new Promise((r) => setTimeout(r, 5)); return 'later ' + s; });
const text = { 'Content-Type': 'text/plain' };
module.exports = (req) => {
  if (req.pathInfo === '/spin') { for (;;) {} }
  if (req.pathInfo === '/sync') return { status: 200, headers: text, body: ['sync ', 'array'] };
  if (req.pathInfo === '/stream') {
    return { status: 200, headers: text, body: (function* () {
      yield 'chunk 1, ';
      yield new Promise((r) => setTimeout(() => r('chunk 2, '), 5));
      yield 'chunk 3';
    })() };
  }
  return (async () => {
    await null;
    return { status: 200, headers: text,
      body: { forEach(write) { write('js app '); write(req.pathInfo); } } };
  })();
};
`),
}

// TestCrossLanguage calls JavaScript from Lua and Lua from JavaScript, and
// both from the Go client.
func TestCrossLanguage(t *testing.T) {
	s := startScripthost(t, mixedScripts, false, "--call-timeout", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := uwsgi.NewClient(s.Addr)
	defer c.Close()
	calls := []struct{ fn, arg, want string }{
		{"js_upper", "abc", "ABC"},
		{"lua_double", "ab", "abab"},
		{"lua_via_js", "x", "lua(X)"},
		{"js_via_lua", "y", "js(yy)"},
		{"js_async", "z", "later z"},
	}
	for _, call := range calls {
		if got, err := c.CallString(ctx, call.fn, call.arg); err != nil || got != call.want {
			t.Errorf("Call(%s, %s) = %q, %v; want %q", call.fn, call.arg, got, err, call.want)
		}
	}
	// Runaway JavaScript is stopped; the host keeps serving.
	for _, fn := range []string{"js_spin", "js_recurse", "js_huge"} {
		_, err := c.Call(ctx, fn)
		var re *uwsgi.RemoteError
		if !errors.As(err, &re) {
			t.Errorf("Call(%s) error = %v, want an error frame", fn, err)
		}
		if got, err := c.CallString(ctx, "js_upper", "ok"); err != nil || got != "OK" {
			t.Fatalf("after %s: js_upper = %q, %v", fn, got, err)
		}
	}
}

// TestSideBySideApps serves a Lua and a JavaScript app from one directory,
// chosen by modifier1, UWSGI_APPID and mount points.
func TestSideBySideApps(t *testing.T) {
	s := startScripthost(t, mixedScripts, false, "--mount", "/lua=app", "--call-timeout", "1s")
	cases := []struct {
		mod   uwsgi.Modifier
		path  string
		appid string
		want  string
	}{
		{uwsgi.ModLua, "/a", "", "lua app /a"},
		{uwsgi.ModV8, "/b", "", "js app /b"},
		{uwsgi.ModV8, "/c", "app", "js app /c"}, // same name in both languages: the modifier's language wins
		{uwsgi.ModLua, "/lua/d", "", "lua app /d"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", "http://localhost"+tc.path, nil)
		var extra uwsgi.Vars
		if tc.appid != "" {
			extra = extra.Add("UWSGI_APPID", tc.appid)
		}
		packet, err := uwsgi.BuildRequest(tc.mod, 0, req, extra, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := string(halfCloseExchange(t, s.Addr, packet))
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\n"+tc.want) {
			t.Errorf("modifier1 %v %s: got %q, want body %q", tc.mod, tc.path, got, tc.want)
		}
	}
	// A runaway JSGI request gets a 500; the next one is served.
	req, _ := http.NewRequest("GET", "http://localhost/spin", nil)
	packet, _ := uwsgi.BuildRequest(uwsgi.ModV8, 0, req, nil, nil)
	if got := string(halfCloseExchange(t, s.Addr, packet)); !strings.HasPrefix(got, "HTTP/1.1 500") {
		t.Errorf("runaway JSGI request: got %q, want a 500", got)
	}
}

// TestJSThroughNginx serves the JSGI app through nginx with
// uwsgi_modifier1 24 (sync, async and streaming bodies), and a JS RPC to
// a real uWSGI node's uwsgi.rpc.
func TestJSThroughNginx(t *testing.T) {
	s := startScripthost(t, mixedScripts, false)
	n := startNginx(t, `
        location / {
            include uwsgi_params;
            uwsgi_pass `+s.Addr+`;
            uwsgi_modifier1 24;
        }`)
	for _, tc := range []struct{ path, want string }{
		{"/through/nginx", "js app /through/nginx"}, // async, forEach body
		{"/sync", "sync array"},                     // sync, array body
		{"/stream", "chunk 1, chunk 2, chunk 3"},    // a generator yielding a promise
	} {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(n.URL(tc.path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != tc.want {
			t.Errorf("GET %s through nginx = %d %q, want 200 %q", tc.path, resp.StatusCode, body, tc.want)
		}
	}

	u := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"python3"},
		Master:  true,
		Files:   map[string][]byte{"client.py": []byte(rpcClientPy)},
		Args:    []string{"--wsgi-file", "client.py"},
	})
	c := uwsgi.NewClient(u.Addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct{ query, want string }{
		{s.Addr + "&js_upper&from-uwsgi", "FROM-UWSGI"},
		{s.Addr + "&lua_via_js&q", "lua(Q)"},
	} {
		req, _ := http.NewRequest("GET", "http://localhost/rpc?"+tc.query, nil)
		resp, err := c.Do(ctx, uwsgi.ModWSGI, 0, req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want {
			t.Errorf("uwsgi.rpc from uWSGI (%s) = %q, want %q", tc.query, b, tc.want)
		}
	}
}
