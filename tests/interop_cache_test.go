package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// counterPy is a WSGI app that drives uWSGI's cache counters: PATH_INFO
// is the operation, the query gives key, n, expires and cache (absent:
// uWSGI's own default cache; name@host:port: a remote node's).
const counterPy = `
import struct
import uwsgi
from urllib.parse import parse_qsl

def application(env, start_response):
    q = dict(parse_qsl(env.get('QUERY_STRING', '')))
    op = env.get('PATH_INFO', '').strip('/')
    key = q.get('key', 'k')
    n = int(q.get('n', '1'))
    expires = int(q.get('expires', '0'))
    cache = (q['cache'],) if 'cache' in q else ()
    if op in ('inc', 'dec', 'mul', 'div'):
        res = getattr(uwsgi, 'cache_' + op)(key, n, expires, *cache)
    elif op == 'num':
        res = uwsgi.cache_num(key, *cache)
    elif op == 'unpack':
        v = uwsgi.cache_get(key, *cache)
        res = struct.unpack('<q', v)[0] if v is not None and len(v) == 8 else v
    elif op == 'set8':
        res = uwsgi.cache_update(key, struct.pack('<q', n), expires, *cache)
    else:
        res = 'unknown operation ' + op
    body = str(res).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`

// counterLua adds RPC functions to the example scripts that use a remote
// node's counters: op(op, key, n, node, expires) and num(key, node).
const counterLua = `
uwsgi.register_rpc("remote_op", function(op, key, n, node, expires)
  return tostring(uwsgi["cache_" .. op](key, tonumber(n), tonumber(expires), node))
end)
uwsgi.register_rpc("remote_num", function(key, node) return tostring(uwsgi.cache_num(key, node)) end)
`

// TestInteropCacheCounters shares counters between a real uWSGI (Python
// plugin) and scripthost serving the example apps, in both directions:
// each reads the other's counters in its own format, uWSGI's remote
// cache_inc leaves a counter the example app goes on counting with, and
// scripthost's remote counter operations on uWSGI's cache are what uWSGI
// computes locally.
func TestInteropCacheCounters(t *testing.T) {
	u := startUWSGI(t, uwsgiOptions{
		Plugins:   []string{"python3", "cache", "ping"},
		Master:    true,
		Processes: 2, // a worker can call its own node
		Files:     map[string][]byte{"counter.py": []byte(counterPy)},
		Args:      []string{"--wsgi-file", "counter.py", "--cache2", "name=default,items=100"},
	})
	files := copyDir(t, "../examples/scripts")
	files["counters.lua"] = []byte(counterLua)
	ours := startScripthost(t, files, true, "--mount", "/js=web")
	uNode, oursNode := "default@"+u.Addr, "default@"+ours.Addr

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uc, oc := uwsgi.NewClient(u.Addr), uwsgi.NewClient(ours.Addr)
	defer uc.Close()
	defer oc.Close()
	py := func(op string, kv ...string) string {
		t.Helper()
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		req, _ := http.NewRequest("GET", "http://localhost/"+op+"?"+q.Encode(), nil)
		resp, err := uc.Do(ctx, uwsgi.ModWSGI, 0, req)
		if err != nil {
			t.Fatalf("uWSGI %s %v: %v\n%s", op, kv, err, u.LogTail(20))
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("uWSGI %s %v: %d %q, %v\n%s", op, kv, resp.StatusCode, body, err, u.LogTail(20))
		}
		return string(body)
	}
	web := &http.Client{Timeout: 30 * time.Second}
	do := func(method, path, form string) (int, string) {
		t.Helper()
		var body io.Reader
		if form != "" {
			body = strings.NewReader(form)
		}
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+ours.HTTPAddr+path, body)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := web.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rpc := func(fn string, args ...string) string {
		t.Helper()
		got, err := oc.CallString(ctx, fn, args...)
		if err != nil {
			t.Fatalf("scripthost %s%q: %v", fn, args, err)
		}
		return got
	}
	expect := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}

	// uWSGI reads the example app's counter in its own format.
	for range 3 {
		if code, body := do("GET", "/hello?name=x", ""); code != 200 {
			t.Fatalf("GET /hello = %d %q", code, body)
		}
	}
	expect("uWSGI cache_num of scripthost's requests", py("num", "key", "requests", "cache", oursNode), "3")
	expect("uWSGI unpacking scripthost's requests", py("unpack", "key", "requests", "cache", oursNode), "3")

	// uWSGI's remote cache_inc is an update whose value is the 8-byte
	// delta: scripthost stores it as sent, and so does a uWSGI server. The
	// counter restarts from the delta, and the app goes on counting.
	expect("uWSGI remote cache_inc on scripthost", py("inc", "key", "requests", "n", "5", "cache", oursNode), "True")
	expect("scripthost's requests after uWSGI's remote inc", py("num", "key", "requests", "cache", oursNode), "5")
	if code, body := do("GET", "/stats", ""); code != 200 || !strings.HasPrefix(body, "requests=6 notes=0 ticks=") {
		t.Errorf("GET /stats after uWSGI's remote inc = %d %q, want 200 requests=6 notes=0", code, body)
	}
	expect("uWSGI set8 in its own cache", py("set8", "key", "x", "n", "10"), "True")
	expect("uWSGI remote cache_inc on uWSGI", py("inc", "key", "x", "n", "5", "cache", uNode), "True")
	expect("uWSGI's counter after its own remote inc", py("num", "key", "x"), "5")

	// A counter written by uWSGI is the next note id of both example apps.
	expect("uWSGI writes scripthost's notes", py("set8", "key", "notes", "n", "40", "cache", oursNode), "True")
	if code, body := do("POST", "/notes", "text=from+lua"); code != 201 || body != "41\n" {
		t.Errorf("POST /notes = %d %q, want 201 41", code, body)
	}
	if code, body := do("POST", "/js/notes", "text=from+js"); code != 201 || body != "42\n" {
		t.Errorf("POST /js/notes = %d %q, want 201 42", code, body)
	}
	if code, body := do("GET", "/notes?id=42", ""); code != 200 || body != "from js\n" {
		t.Errorf("GET /notes?id=42 = %d %q", code, body)
	}
	expect("uWSGI reads scripthost's notes", py("num", "key", "notes", "cache", oursNode), "42")

	// scripthost's counter operations on uWSGI's cache: what uWSGI itself
	// computes, read back by uWSGI.
	expect("uWSGI local inc", py("inc", "key", "hits", "n", "5"), "True")
	expect("scripthost remote inc", rpc("remote_op", "inc", "hits", "2", uNode, "0"), "7")
	expect("uWSGI reads hits", py("num", "key", "hits"), "7")
	expect("uWSGI local inc again", py("inc", "key", "hits"), "True")
	expect("scripthost remote num", rpc("remote_num", "hits", uNode), "8")
	expect("scripthost remote mul", rpc("remote_op", "mul", "hits", "3", uNode, "0"), "24")
	expect("scripthost remote div", rpc("remote_op", "div", "hits", "5", uNode, "0"), "4")
	expect("scripthost remote dec", rpc("remote_op", "dec", "hits", "10", uNode, "0"), "-6")
	expect("uWSGI reads hits at the end", py("num", "key", "hits"), "-6")
	expect("uWSGI local div by 0", py("div", "key", "hits", "n", "0"), "True")
	expect("uWSGI's div by 0", rpc("remote_num", "hits", uNode), "0")

	// Expiry: a counter scripthost creates gets the expires given; one that
	// exists keeps its own, as uWSGI's local math does.
	expect("scripthost remote inc of a new key", rpc("remote_op", "inc", "fresh", "3", uNode, "100"), "3")
	if v, exp, err := uc.CacheGetItem(ctx, "fresh"); err != nil || exp.IsZero() || time.Until(exp) > 101*time.Second ||
		!bytes.Equal(v, uwsgi.AppendCounter(nil, 3)) {
		t.Errorf("uWSGI's fresh = %q expiring at %v, %v; want 3 expiring in 100 s", v, exp, err)
	}
	expect("uWSGI local inc with expires", py("inc", "key", "e", "n", "1", "expires", "100"), "True")
	_, before, _ := uc.CacheGetItem(ctx, "e")
	expect("scripthost remote inc of an expiring key", rpc("remote_op", "inc", "e", "1", uNode, "0"), "2")
	if _, exp, err := uc.CacheGetItem(ctx, "e"); err != nil || before.IsZero() || exp.Sub(before).Abs() > 2*time.Second {
		t.Errorf("uWSGI's e expires at %v after scripthost's inc (%v), want %v kept", exp, err, before)
	}
	expect("uWSGI local inc without expires", py("inc", "key", "p"), "True")
	expect("scripthost remote inc with expires", rpc("remote_op", "inc", "p", "1", uNode, "100"), "2")
	if _, exp, err := uc.CacheGetItem(ctx, "p"); err != nil || !exp.IsZero() {
		t.Errorf("uWSGI's p expires at %v (%v) after scripthost's inc, want no expiry", exp, err)
	}

	// The command line on uWSGI's counters.
	out, err := exec.CommandContext(ctx, buildScripthost(t), "cache", u.Addr, "inc", "hits", "7").CombinedOutput()
	expect("scripthost cache inc on uWSGI", string(out), "7\n")
	if err != nil {
		t.Errorf("scripthost cache inc: %v", err)
	}
	expect("uWSGI reads the command's inc", py("num", "key", "hits"), "7")
}

// TestInteropCacheExamplesCheckResults: the example apps answer an error
// for a note the cache cannot hold, and keep serving when a counter holds
// something else.
func TestInteropCacheExamplesCheckResults(t *testing.T) {
	ours := startScripthost(t, copyDir(t, "../examples/scripts"), true, "--mount", "/js=web", "--mount", "/go=goapp")
	web := &http.Client{Timeout: 30 * time.Second}
	do := func(method, path, form string) (int, string) {
		t.Helper()
		var body io.Reader
		if form != "" {
			body = strings.NewReader(form)
		}
		req, _ := http.NewRequest(method, "http://"+ours.HTTPAddr+path, body)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := web.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	big := "text=" + strings.Repeat("x", 1<<20) // the cache holds 64 KiB items
	for _, prefix := range []string{"", "/js"} {
		if code, body := do("POST", prefix+"/notes", big); code != 413 || body != "note too large for the cache\n" {
			t.Errorf("POST %s/notes of 1 MiB = %d %q, want 413", prefix, code, body)
		}
	}
	if code, body := do("GET", "/notes?id=1", ""); code != 404 {
		t.Errorf("GET /notes?id=1 after the refused notes = %d %q, want 404", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := uwsgi.NewClient(ours.Addr)
	defer c.Close()
	if err := c.CacheUpdate(ctx, "requests", []byte("not a counter")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/hello?name=x", "/js/hello?name=x", "/go/hello?name=x"} {
		if code, body := do("GET", path, ""); code != 200 || !strings.HasPrefix(body, "Hello, x!") {
			t.Errorf("GET %s with a broken requests counter = %d %q, want 200", path, code, body)
		}
	}
	for _, path := range []string{"/stats", "/js/stats", "/go/stats"} {
		if code, body := do("GET", path, ""); code != 200 || !strings.Contains(body, "requests=0") {
			t.Errorf("GET %s with a broken requests counter = %d %q, want 200 requests=0", path, code, body)
		}
	}
	if v, err := c.CacheGet(ctx, "requests"); err != nil || string(v) != "not a counter" {
		t.Errorf("requests = %q, %v; want it left as it was", v, err)
	}
}
