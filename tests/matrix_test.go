package tests

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Echo apps for the matrix, one per language, mounted beside the examples:
// they answer what they were given, and the response shapes the examples
// lack (10 MB, streamed, a custom reason, a repeated header).
var matrixEchoApps = map[string][]byte{
	"luaecho.lua": []byte(`
return function(env)
  local path = env.PATH_INFO
  if path == "/big" then
    local b = string.rep("0123456789", 1048576)
    return 200, {["Content-Type"] = "text/plain", ["Content-Length"] = tostring(#b)}, b
  elseif path == "/stream" then
    return 200, {["Content-Type"] = "text/plain"}, coroutine.wrap(function()
      for i = 1, 5 do coroutine.yield(string.rep(tostring(i), 1000) .. "\n") end
    end)
  elseif path == "/reason" then
    return "299 Custom Reason", {["Content-Type"] = "text/plain"}, "reason\n"
  elseif path == "/headers" then
    return 200, {["Content-Type"] = "text/plain", ["X-B"] = {"1", "2"}}, "headers\n"
  end
  local body = env.input:read("*a") or ""
  return 200, {["Content-Type"] = "text/plain"}, string.format(
    "%s %s q=%s cl=%s len=%d head=%s tail=%s xa=%s cookie=%s\n", env.REQUEST_METHOD, path,
    env.QUERY_STRING or "", env.CONTENT_LENGTH or "", #body, body:sub(1, 8), body:sub(-8),
    env.HTTP_X_A or "", env.HTTP_COOKIE or "")
end
`),
	"jsecho.js": []byte(`
const text = { 'Content-Type': 'text/plain' };
module.exports = (req) => {
  switch (req.pathInfo) {
    case '/big': {
      const b = '0123456789'.repeat(1048576);
      return { status: 200, headers: { 'Content-Type': 'text/plain', 'Content-Length': String(b.length) }, body: [b] };
    }
    case '/stream':
      return { status: 200, headers: text, body: { forEach(write) {
        for (let i = 1; i <= 5; i++) write(String(i).repeat(1000) + '\n');
      } } };
    case '/reason':
      return { status: '299 Custom Reason', headers: text, body: ['reason\n'] };
    case '/headers':
      return { status: 200, headers: { 'Content-Type': 'text/plain', 'X-B': ['1', '2'] }, body: ['headers\n'] };
  }
  const body = req.input.read() || '';
  const h = req.headers;
  return { status: 200, headers: text, body: [req.method + ' ' + req.pathInfo + ' q=' + req.queryString +
    ' cl=' + (req.env.CONTENT_LENGTH || '') + ' len=' + body.length + ' head=' + body.slice(0, 8) +
    ' tail=' + body.slice(-8) + ' xa=' + (h['x-a'] || '') + ' cookie=' + (h['cookie'] || '') + '\n'] };
};
`),
	"goecho.go": []byte(`package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

func main() {}

func Handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	switch r.URL.Path {
	case "/big":
		b := strings.Repeat("0123456789", 1048576)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		io.WriteString(w, b)
		return
	case "/stream":
		for i := 1; i <= 5; i++ {
			io.WriteString(w, strings.Repeat(fmt.Sprint(i), 1000)+"\n")
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		return
	case "/reason":
		w.WriteHeader(299)
		io.WriteString(w, "reason\n")
		return
	case "/headers":
		w.Header().Add("X-B", "1")
		w.Header().Add("X-B", "2")
		io.WriteString(w, "headers\n")
		return
	}
	body, _ := io.ReadAll(r.Body)
	head, tail := body, body
	if len(head) > 8 {
		head, tail = body[:8], body[len(body)-8:]
	}
	fmt.Fprintf(w, "%s %s q=%s cl=%d len=%d head=%s tail=%s xa=%s cookie=%s\n", r.Method, r.URL.Path,
		r.URL.RawQuery, r.ContentLength, len(body), head, tail,
		strings.Join(r.Header.Values("X-A"), "|"), strings.Join(r.Header.Values("Cookie"), "|"))
}
`),
}

// matrixRequest is one request of the matrix.
type matrixRequest struct {
	name    string
	method  string
	path    string // sent as it is, not cleaned
	header  [][2]string
	body    []byte
	chunked bool
}

// matrixRequests builds the requests for the example app at prefix ex
// ("" for the Lua app, "/js", "/go") and the echo app at prefix echo.
func matrixRequests(ex, echo string) []matrixRequest {
	form := [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}
	big := bytes.Repeat([]byte("abcdefghij"), 1<<20)
	chunk := bytes.Repeat([]byte("klmnopqrst"), 10<<10)
	return []matrixRequest{
		{name: "hello UTF-8 query", method: "GET", path: ex + "/hello?name=Zo%C3%AB"},
		{name: "note missing", method: "GET", path: ex + "/notes?id=99"},
		{name: "note form", method: "POST", path: ex + "/notes", header: form, body: []byte("text=h%C3%A9llo+world")},
		{name: "note read", method: "GET", path: ex + "/notes?id=1"},
		{name: "form empty", method: "POST", path: ex + "/notes", header: form, body: []byte("x=1")},
		{name: "stream", method: "GET", path: ex + "/stream"},
		{name: "404", method: "GET", path: ex + "/nope"},
		{name: "HEAD", method: "HEAD", path: ex + "/hello?name=head"},
		{name: "echo GET", method: "GET", path: echo + "/a?b=%C3%A9&c"},
		{name: "non-ASCII path", method: "GET", path: echo + "/%C3%A9t%C3%A9/x%20y"},
		{name: "dot-dot path", method: "GET", path: echo + "/a/b/../c"},
		{name: "double slash path", method: "GET", path: echo + "//a//b"},
		{name: "repeated headers", method: "GET", path: echo + "/h",
			header: [][2]string{{"X-A", "1"}, {"X-A", "2"}, {"Cookie", "a=1"}, {"Cookie", "b=2"}}},
		{name: "10 MB body", method: "POST", path: echo + "/body", body: big},
		{name: "chunked body", method: "POST", path: echo + "/chunked", body: chunk, chunked: true},
		{name: "10 MB response", method: "GET", path: echo + "/big"},
		{name: "HEAD 10 MB", method: "HEAD", path: echo + "/big"},
		{name: "streamed response", method: "GET", path: echo + "/stream"},
		{name: "custom reason", method: "GET", path: echo + "/reason"},
		{name: "repeated response header", method: "GET", path: echo + "/headers"},
	}
}

// matrixApps are the apps of the matrix: the example's prefix and the
// echo app's.
var matrixApps = []struct{ name, ex, echo string }{
	{"lua", "", "/lua-echo"},
	{"js", "/js", "/js-echo"},
	{"go", "/go", "/go-echo"},
}

// matrixDiffs are the answers that differ from nginx's because of the
// front itself: front|app|request -> why.
var matrixDiffs = func() map[string]string {
	const (
		nginxSplits = "nginx 1.22 passes each line of a repeated header as a var of its own (the Lua app " +
			"keeps the last, the Go app sees each); this front joins them"
		commaCookies = "nginx 1.22 passes each line of a repeated header as a var of its own; this front " +
			"joins them with \", \", cookies too (the --http front joins cookies with \"; \")"
	)
	diffs := map[string]string{
		"http|lua|repeated headers": nginxSplits,
		"http|go|repeated headers":  nginxSplits,
	}
	for _, app := range []string{"lua", "js", "go"} {
		diffs["uwsgi-router|"+app+"|repeated headers"] = commaCookies
		diffs["apache|"+app+"|repeated headers"] = commaCookies
		diffs["uwsgi-router|"+app+"|chunked body"] = "uWSGI's router passes no chunked body on (the app reads none)"
		diffs["uwsgi-router|"+app+"|double slash path"] = "uWSGI's router does not merge slashes in PATH_INFO"
		diffs["apache|"+app+"|chunked body"] = "Apache's mod_proxy_uwsgi answers 411 Length Required to a chunked body"
	}
	return diffs
}()

// answer is what the matrix compares: the status line, the repeated
// response header and the body (its length and digest when long).
func answer(resp *http.Response, body []byte) string {
	s := fmt.Sprintf("%s x-b=%q ", resp.Status, resp.Header.Values("X-B"))
	if len(body) <= 300 {
		return s + fmt.Sprintf("body=%q", body)
	}
	return s + fmt.Sprintf("body=%d bytes sha256 %x", len(body), sha256.Sum256(body))
}

func doMatrix(t *testing.T, client *http.Client, base string, r matrixRequest) string {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
	}
	req, err := http.NewRequest(r.method, base, body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = r.path // sent as it is
	for _, h := range r.header {
		req.Header.Add(h[0], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "error reading the body: " + err.Error()
	}
	return answer(resp, b)
}

// TestMatrix sends the same requests through Apache's mod_proxy_uwsgi,
// nginx, uWSGI's HTTP router and the --http front to the Lua, JavaScript
// and Go apps, each front with a scripthost of its own, and checks that
// the answers agree with nginx's, but for the differences matrixDiffs
// lists.
func TestMatrix(t *testing.T) {
	for _, bin := range []string{"nginx", "uwsgi", "apache2"} {
		requireBinary(t, bin)
	}
	scripts := copyDir(t, "../examples/scripts")
	for name, src := range matrixEchoApps {
		scripts[name] = src
	}
	args := []string{"--mount", "/js=web", "--mount", "/go=goapp", "--mount", "/lua-echo=luaecho",
		"--mount", "/js-echo=jsecho", "--mount", "/go-echo=goecho", "--max-body", "32m"}
	fronts := []struct {
		name  string
		start func(t *testing.T, s *scripthostProc) string // base URL
	}{
		{"nginx", func(t *testing.T, s *scripthostProc) string {
			return startNginx(t, "location / { include uwsgi_params; uwsgi_pass "+s.Addr+
				"; client_max_body_size 32m; }").URL("")
		}},
		{"http", func(t *testing.T, s *scripthostProc) string { return "http://" + s.HTTPAddr }},
		{"uwsgi-router", func(t *testing.T, s *scripthostProc) string {
			return "http://" + startUWSGIRouter(t, s.Addr)
		}},
		{"apache", func(t *testing.T, s *scripthostProc) string { return startApache(t, s.Addr).URL("") }},
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	answers := map[string]map[string]string{} // front -> app|request -> answer
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			s := startScripthost(t, scripts, f.name == "http", args...)
			base := f.start(t, s)
			got := map[string]string{}
			for _, app := range matrixApps {
				for _, r := range matrixRequests(app.ex, app.echo) {
					got[app.name+"|"+r.name] = doMatrix(t, client, base, r)
				}
			}
			answers[f.name] = got
			// A client leaving (HEAD through a front) is no app failure.
			log, _ := os.ReadFile(s.Console)
			for _, line := range strings.Split(string(log), "\n") {
				if strings.Contains(line, "ERROR") {
					t.Errorf("scripthost logged %s", line)
				}
			}
		})
	}
	ref := answers["nginx"]
	if ref == nil {
		t.Fatal("no answers from nginx")
	}
	for _, f := range fronts[1:] {
		got := answers[f.name]
		if got == nil {
			continue
		}
		for _, app := range matrixApps {
			for _, r := range matrixRequests(app.ex, app.echo) {
				key := app.name + "|" + r.name
				if why, ok := matrixDiffs[f.name+"|"+key]; ok {
					t.Logf("%s %s: differs from nginx (%s): %s", f.name, key, why, got[key])
					continue
				}
				if got[key] != ref[key] {
					t.Errorf("%s %s:\n got %s\nnginx %s", f.name, key, got[key], ref[key])
				}
			}
		}
	}
}
