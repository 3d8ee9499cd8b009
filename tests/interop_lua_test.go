package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// luaRequest is one request of the comparison between uWSGI's Lua plugin
// and scripthost, both serving the reference rpc.lua and app.lua.
type luaRequest struct {
	name   string
	packet []byte
}

func luaRequests(t *testing.T) []luaRequest {
	get := func(uri string) []byte {
		req, _ := http.NewRequest("GET", "http://localhost"+uri, nil)
		b, err := uwsgi.BuildRequest(uwsgi.ModLua, 0, req, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	post := func(uri, body string) []byte {
		req, _ := http.NewRequest("POST", "http://localhost"+uri, nil)
		req.Header.Set("Content-Type", "application/octet-stream")
		b, err := uwsgi.BuildRequest(uwsgi.ModLua, 0, req, nil, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rpc := func(fn string, args ...string) []byte {
		b, err := uwsgi.AppendRPCRequest(nil, uwsgi.RPCFramed, fn, args...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []luaRequest{
		{"rpc hello", rpc("hello")},
		{"rpc echo", rpc("echo", "a", "b", "c")},
		{"rpc add ints", rpc("add", "2", "3")},
		{"rpc add 1.5+2", rpc("add", "1.5", "2")},
		{"rpc add 0.1+0.2", rpc("add", "0.1", "0.2")},
		{"rpc add 1e15+1", rpc("add", "1e15", "1")},
		{"rpc add non-number", rpc("add", "x", "4")},
		{"rpc big 65535", rpc("big", "65535")},
		{"rpc big 65536", rpc("big", "65536")},
		{"rpc big 0 (no result)", rpc("big", "0")},
		{"rpc unknown", rpc("nope")},
		{"rpc unknown local cache", rpc("unknown_cache")},
		{"GET /", get("/")},
		{"GET /hello", get("/hello")},
		{"GET /cache set", get("/cache?key=k1&value=v%201")},
		{"GET /cache get", get("/cache?key=k1")},
		{"GET /cache miss", get("/cache?key=absent")},
		{"GET /cache no key", get("/cache")},
		{"POST /echo", post("/echo", "ping\x00pong")},
		{"GET /nope", get("/nope")},
	}
}

// normalizeHTTP makes a raw HTTP response comparable when header order
// may legitimately differ (a Lua table has no order): the status line,
// the sorted header lines and the body.
func normalizeHTTP(b []byte) string {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(b, []byte("HTTP/")) {
		return fmt.Sprintf("%q", b)
	}
	lines := strings.Split(string(head), "\r\n")
	hdrs := lines[1:]
	sort.Strings(hdrs)
	return fmt.Sprintf("%s\n%s\n\n%q", lines[0], strings.Join(hdrs, "\n"), body)
}

// unknownCacheLua answers what the cache functions give for a local cache
// the server does not have: uWSGI's Lua plugin returns nil from each.
// cache_clear is left out: uWSGI's Lua binding reads its cache name from
// the second argument and so clears the default cache instead.
const unknownCacheLua = `
local function show(v) if v == nil then return "nil" end return tostring(v) end
uwsgi.register_rpc("unknown_cache", function()
  return table.concat({show(uwsgi.cache_get("k", "nosuch")), show(uwsgi.cache_set("k", "v", 0, "nosuch")),
    show(uwsgi.cache_update("k", "v", 0, "nosuch")), show(uwsgi.cache_exists("k", "nosuch")),
    show(uwsgi.cache_del("k", "nosuch"))}, " ")
end)
`

// TestLuaFilesMatchUWSGI serves uWSGI's reference rpc.lua and app.lua,
// unmodified, and a file of this test's own from uWSGI's Lua plugin and
// from scripthost, sends both the same packets and compares the answers:
// RPC results byte for byte, HTTP responses up to the order of their
// headers.
func TestLuaFilesMatchUWSGI(t *testing.T) {
	files := map[string][]byte{
		"rpc.lua":           testdataFile(t, "uwsgi/rpc.lua"),
		"app.lua":           testdataFile(t, "uwsgi/app.lua"),
		"unknown_cache.lua": []byte(unknownCacheLua),
	}
	u := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"lua51", "rpc"},
		Master:  true,
		Files:   files,
		Args: []string{"--lua-load", "rpc.lua", "--lua-load", "unknown_cache.lua", "--lua", "app.lua",
			"--cache2", "name=default,items=100"},
	})
	s := startScripthost(t, files, false)
	for _, r := range luaRequests(t) {
		want := halfCloseExchange(t, u.Addr, r.packet)
		got := halfCloseExchange(t, s.Addr, r.packet)
		if r.packet[0] == byte(uwsgi.ModRPC) {
			if !bytes.Equal(got, want) {
				t.Errorf("%s: scripthost answered %.80q (%d bytes), uWSGI %.80q (%d bytes)", r.name, got, len(got), want, len(want))
			}
			continue
		}
		if normalizeHTTP(got) != normalizeHTTP(want) {
			t.Errorf("%s: scripthost answered\n%s\nuWSGI\n%s", r.name, normalizeHTTP(got), normalizeHTTP(want))
		}
	}
}

// TestLuaAppThroughNginx puts nginx (uwsgi_modifier1 6) in front of uWSGI
// and of scripthost serving the same app.lua and compares what HTTP
// clients get.
func TestLuaAppThroughNginx(t *testing.T) {
	files := map[string][]byte{"app.lua": testdataFile(t, "uwsgi/app.lua")}
	u := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"lua51"},
		Master:  true,
		Files:   files,
		Args:    []string{"--lua", "app.lua", "--cache2", "name=default,items=100"},
	})
	s := startScripthost(t, files, false)
	n := startNginx(t, `
        location /uwsgi/ {
            include uwsgi_params;
            uwsgi_param PATH_INFO $uri_tail;
            uwsgi_pass `+u.Addr+`;
            uwsgi_modifier1 6;
        }
        location /ours/ {
            include uwsgi_params;
            uwsgi_param PATH_INFO $uri_tail;
            uwsgi_pass `+s.Addr+`;
            uwsgi_modifier1 6;
        }
        set $uri_tail $uri;
        if ($uri ~ ^/(uwsgi|ours)(/.*)$) { set $uri_tail $2; }`)
	client := &http.Client{Timeout: 10 * time.Second}
	cases := []struct{ method, path, body string }{
		{"GET", "/hello", ""},
		{"GET", "/", ""},
		{"GET", "/cache?key=n1&value=nginx", ""},
		{"GET", "/cache?key=n1", ""},
		{"GET", "/cache?key=none", ""},
		{"POST", "/echo", "body\x00bytes"},
		{"GET", "/missing", ""},
	}
	fetch := func(prefix, method, path, body string) string {
		req, _ := http.NewRequest(method, n.URL(prefix+path), strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s%s: %v\n%s", method, prefix, path, err, n.LogTail(10))
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	for _, c := range cases {
		want := fetch("/uwsgi", c.method, c.path, c.body)
		got := fetch("/ours", c.method, c.path, c.body)
		if got != want {
			t.Errorf("%s %s through nginx: scripthost gives %s, uWSGI %s", c.method, c.path, got, want)
		}
	}
}

// runawayLua holds scripts that must be stopped without harming the host.
const runawayLua = `
uwsgi.register_rpc("spin", function() while true do end end)
uwsgi.register_rpc("recurse", function() local function f(n) return f(n + 1) + 1 end return f(1) end)
uwsgi.register_rpc("huge", function() return string.rep("x", 2^40) end)
uwsgi.register_rpc("boom", function() error("boom") end)
uwsgi.register_rpc("ok", function() return "still serving" end)
return function(env)
  if env.PATH_INFO == "/spin" then while true do end end
  if env.PATH_INFO == "/boom" then error("request boom") end
  return 200, {["Content-Type"] = "text/plain"}, "ok"
end
`

// TestLuaRunawayContained checks that endless loops, endless recursion,
// huge strings and errors give clean errors while the host keeps serving.
func TestLuaRunawayContained(t *testing.T) {
	s := startScripthost(t, map[string][]byte{"app.lua": []byte(runawayLua)}, false, "--call-timeout", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := uwsgi.NewClient(s.Addr)
	defer c.Close()
	for _, fn := range []string{"spin", "recurse", "huge", "boom"} {
		_, err := c.Call(ctx, fn)
		var re *uwsgi.RemoteError
		if !errors.As(err, &re) {
			t.Errorf("Call(%s) error = %v, want an error frame", fn, err)
		} else {
			t.Logf("Call(%s): %v", fn, re)
		}
		if got, err := c.CallString(ctx, "ok"); err != nil || got != "still serving" {
			t.Fatalf("after %s: Call(ok) = %q, %v", fn, got, err)
		}
	}
	if _, err := c.Call(ctx, "spin"); !errors.Is(err, uwsgi.ErrTimeout) {
		t.Errorf("Call(spin) error = %v, want a timeout", err)
	}
	for _, path := range []string{"/spin", "/boom"} {
		req, _ := http.NewRequest("GET", "http://localhost"+path, nil)
		resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 {
			t.Errorf("GET %s = %d, want 500", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", "http://localhost/fine", nil)
	resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /fine after runaway requests = %v, %v", resp, err)
	}
	resp.Body.Close()
}

// TestBrokenScriptRefusesToStart: a syntax error stops the host at start
// with the file and line.
func TestBrokenScriptRefusesToStart(t *testing.T) {
	bin := buildScripthost(t)
	dir := t.TempDir()
	writeFile(t, dir, "good.lua", "uwsgi.register_rpc('a', function() return 'a' end)\n")
	writeFile(t, dir, "broken.lua", "local x = 1\nlocal y = = 2\n")
	cmd := exec.Command(bin, "serve", "--socket", freeAddr(t), "--scripts", dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve with a broken script: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "broken.lua:2") {
		t.Errorf("serve output does not name broken.lua:2:\n%s", out)
	}
}

// halfCloseExchange sends one packet, closes its writing side (so a server
// keeping the connection open for more packets sees the end) and reads the
// answer until the server closes.
func halfCloseExchange(t *testing.T, addr string, packet []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(packet); err != nil {
		t.Fatalf("writing to %s: %v", addr, err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading from %s: %v", addr, err)
	}
	return b
}
