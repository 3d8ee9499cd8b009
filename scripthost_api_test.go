package scripthost_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/host"
	"github.com/scripthost/scripthost/lua"
)

// uwsgi.opt holds the host's options under serve's flag names, and the
// caller's additions.
func TestScriptOptions(t *testing.T) {
	dir := scriptsDir(t, map[string]string{"opt.lua": `
uwsgi.register_rpc("opt", function(name) return tostring(uwsgi.opt[name]) end)`})
	h := newHost(t, scripthost.Config{
		Scripts:     dir,
		Engines:     scripthost.Engines{Lua: &lua.Options{PoolSize: 2}},
		Limits:      host.Limits{CallTimeout: 7 * time.Second},
		Containment: scripthost.Containment{MemoryLimit: -1},
		Options:     map[string]string{"socket": "127.0.0.1:3031"},
	})
	for name, want := range map[string]string{
		"scripts": dir, "watch": "true", "call-timeout": "7s", "lua-pool": "2", "memory-limit": "0",
		"socket": "127.0.0.1:3031", "max-vars": "nil", "js-pool": "nil",
	} {
		got, err := h.Call(context.Background(), "opt", []byte(name))
		if string(got) != want || err != nil {
			t.Errorf("uwsgi.opt[%q] = %q, %v; want %q", name, got, err, want)
		}
	}
}

// A Go app's small response reaches an HTTP client whole, with its
// length, not chunked; HEAD gets the length and no body.
func TestGoAppContentLength(t *testing.T) {
	dir := scriptsDir(t, map[string]string{"app.go": `package main

import (
	"net/http"
	"strings"
)

func Handler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/big" {
		w.Write([]byte(strings.Repeat("x", 5000)))
		return
	}
	w.Write([]byte("a response of exactly thirty-six b.\n"))
}
`})
	h := newHost(t, scripthost.Config{Scripts: dir, Engines: scripthost.Engines{Go: &gointerp.Options{}}})
	addr, _ := serve(t, h.ServePlainHTTP)
	for _, tc := range []struct {
		method, path string
		length       int64
		chunked      bool
		body         int
	}{
		{"GET", "/", 36, false, 36},
		{"HEAD", "/", 36, false, 0},
		{"GET", "/big", -1, true, 5000},
	} {
		req, _ := http.NewRequestWithContext(ctxTimeout(t), tc.method, "http://"+addr+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		chunked := slices.Contains(resp.TransferEncoding, "chunked")
		if resp.ContentLength != tc.length || chunked != tc.chunked || len(body) != tc.body {
			t.Errorf("%s %s: Content-Length %d, chunked %v, %d body bytes; want %d, %v, %d",
				tc.method, tc.path, resp.ContentLength, chunked, len(body), tc.length, tc.chunked, tc.body)
		}
	}
}
