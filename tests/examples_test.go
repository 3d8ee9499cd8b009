package tests

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// copyDir copies the files of dir (one level of subdirectories) into a
// map for startScripthost.
func copyDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestExamples serves examples/scripts as the README's run command does
// (uwsgi and HTTP front) and walks through the README's session.
func TestExamples(t *testing.T) {
	s := startScripthost(t, copyDir(t, "../examples/scripts"), true, "--mount", "/js=web", "--mount", "/go=goapp")
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, form string) (int, string) {
		t.Helper()
		var body io.Reader
		if form != "" {
			body = strings.NewReader(form)
		}
		req, _ := http.NewRequest(method, "http://"+s.HTTPAddr+path, body)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		method, path, form string
		code               int
		body               string
	}{
		{"GET", "/hello?name=you", "", 200, "Hello, you!\n"},
		{"GET", "/notes?id=1", "", 404, "no such note\n"},
		{"POST", "/notes", "text=" + url.QueryEscape("remember this"), 201, "1\n"},
		{"GET", "/notes?id=1", "", 200, "remember this\n"},
		{"POST", "/notes", "", 400, "missing text\n"},
		{"GET", "/stream", "", 200, "chunk 1\nchunk 2\nchunk 3\n"},
		{"GET", "/nope", "", 404, "not found\n"},
		// The JavaScript twin, mounted at /js, shares the cache and calls Lua.
		{"GET", "/js/hello?name=js", "", 200, "Hello, js! (Lua says: Hello, js!)\n"},
		{"GET", "/js/notes?id=1", "", 200, "remember this\n"},
		{"POST", "/js/notes", "text=second", 201, "2\n"},
		{"GET", "/notes?id=2", "", 200, "second\n"},
		{"GET", "/js/stream", "", 200, "chunk 1\nchunk 2\nchunk 3\n"},
		// The Go twin, mounted at /go.
		{"GET", "/go/hello?name=go", "", 200, "Hello, go! (Lua says: Hello, go!)\n"},
		{"GET", "/go/notes?id=2", "", 200, "second\n"},
	}
	for _, st := range steps {
		if code, body := do(st.method, st.path, st.form); code != st.code || body != st.body {
			t.Errorf("%s %s = %d %q, want %d %q", st.method, st.path, code, body, st.code, st.body)
		}
	}
	if code, body := do("GET", "/stats", ""); code != 200 || !strings.Contains(body, "notes=2") {
		t.Errorf("GET /stats = %d %q, want notes=2", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := uwsgi.NewClient(s.Addr)
	defer c.Close()
	if got, err := c.CallString(ctx, "hello", "Gopher"); err != nil || got != "Hello, Gopher!" {
		t.Errorf("RPC hello(Gopher) = %q, %v", got, err)
	}
	for _, fn := range []string{"js_hello", "go_hello"} {
		if got, err := c.CallString(ctx, fn, "Gopher"); err != nil || got != "Hello, Gopher!" {
			t.Errorf("RPC %s(Gopher) = %q, %v", fn, got, err)
		}
	}
	if got, err := c.CacheGet(ctx, "note:1"); err != nil || string(got) != "remember this" {
		t.Errorf("cache note:1 = %q, %v", got, err)
	}
	// The same app over the uwsgi protocol (modifier1 6).
	req, _ := http.NewRequest("GET", "http://localhost/hello?name=uwsgi", nil)
	resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "Hello, uwsgi!\n" {
		t.Errorf("modifier1 6 GET /hello = %q", b)
	}

	// The Go app over the uwsgi protocol (modifier1 11, uWSGI's Go number).
	req, _ = http.NewRequest("GET", "http://localhost/hello?name=m11", nil)
	resp, err = c.Do(ctx, uwsgi.ModGo, 0, req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "Hello, m11! (Lua says: Hello, m11!)\n" {
		t.Errorf("modifier1 11 GET /hello = %q", b)
	}

	// The example Go client program.
	out, err := exec.CommandContext(ctx, "go", "run", "../examples/client", "--addr", s.Addr, "Gopher").CombinedOutput()
	if err != nil || string(out) != "Hello, Gopher!\nnote 1: remember this\n" {
		t.Errorf("examples/client = %q, %v", out, err)
	}
}

// routingFiles define the default app and a second one.
var routingFiles = map[string][]byte{
	"app.lua":   []byte(`return function(env) return 200, {}, "app " .. (env.SCRIPT_NAME or "") .. " " .. env.PATH_INFO end`),
	"admin.lua": []byte(`return function(env) return 200, {}, "admin " .. (env.SCRIPT_NAME or "") .. " " .. env.PATH_INFO end`),
}

// TestRouting picks apps by modifier1 mapping, UWSGI_APPID, mounts and the
// default app.
func TestRouting(t *testing.T) {
	s := startScripthost(t, routingFiles, false, "--mount", "/admin=admin", "--map", "5=admin")
	cases := []struct {
		mod   uwsgi.Modifier
		path  string
		appid string
		want  string
		code  int
	}{
		{uwsgi.ModLua, "/x", "", "app  /x", 200},
		{uwsgi.ModWSGI, "/x", "", "app  /x", 200},                      // nginx's default modifier: the default app
		{uwsgi.ModPSGI, "/x", "", "admin  /x", 200},                    // --map 5=admin
		{uwsgi.ModLua, "/admin/users", "", "admin /admin /users", 200}, // --mount
		{uwsgi.ModLua, "/y", "admin", "admin  /y", 200},                // UWSGI_APPID
		{uwsgi.ModRack, "/x", "", "", -1},                              // unmapped language modifier: dropped like uWSGI
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
		got := halfCloseExchange(t, s.Addr, packet)
		if tc.code == -1 {
			if len(got) != 0 {
				t.Errorf("modifier1 %v %s: got %q, want the connection closed without a byte", tc.mod, tc.path, got)
			}
			continue
		}
		if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(got), "\r\n\r\n"+tc.want) {
			t.Errorf("modifier1 %v %s appid %q: got %q, want body %q", tc.mod, tc.path, tc.appid, got, tc.want)
		}
	}
}
