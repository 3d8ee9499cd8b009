package scripthost_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/host"
	"github.com/scripthost/scripthost/js"
	"github.com/scripthost/scripthost/lua"
)

var quiet = slog.New(slog.DiscardHandler)

// scriptsDir writes files (name -> source) into a new directory.
func scriptsDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newHost(t *testing.T, cfg scripthost.Config) *scripthost.Host {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	h, err := scripthost.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// serve serves h on a loopback listener with serveFunc and returns its
// address and the channel of serveFunc's result.
func serve(t *testing.T, serveFunc func(net.Listener) error) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveFunc(l) }()
	return l.Addr().String(), done
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var threeLanguages = map[string]string{
	"a.lua": `uwsgi.register_rpc("lua", function() return "from lua" end)`,
	"b.js":  `uwsgi.register_rpc('js', () => 'from js');`,
	"c.go": `package main

import "scripthost/uwsgi"

func main() { uwsgi.RegisterRpc("go", func(args ...string) string { return "from go" }) }
`,
}

func TestEngines(t *testing.T) {
	dir := scriptsDir(t, threeLanguages)
	tests := []struct {
		name    string
		engines scripthost.Engines
		want    []string // the RPC functions loaded
	}{
		{"default: all three", scripthost.Engines{}, []string{"go", "js", "lua"}},
		{"lua only", scripthost.Engines{Lua: &lua.Options{PoolSize: 1}}, []string{"lua"}},
		{"js and go", scripthost.Engines{JS: &js.Options{}, Go: &gointerp.Options{}}, []string{"go", "js"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, scripthost.Config{Scripts: dir, Engines: tc.engines, Watch: scripthost.Watch{Disabled: true}})
			if got := h.Status().RPC; !slices.Equal(got, tc.want) {
				t.Errorf("RPC functions %q, want %q", got, tc.want)
			}
			for _, name := range tc.want {
				got, err := h.Call(ctxTimeout(t), name)
				if want := "from " + name; string(got) != want || err != nil {
					t.Errorf("Call(%s) = %q, %v, want %q", name, got, err, want)
				}
			}
		})
	}
}

func TestNewFails(t *testing.T) {
	broken := scriptsDir(t, map[string]string{"broken.lua": "local x = = 1"})
	tests := []struct {
		name string
		cfg  scripthost.Config
		want string // in the error
	}{
		{"missing scripts directory", scripthost.Config{Scripts: filepath.Join(t.TempDir(), "none")}, "scripts directory"},
		{"broken script", scripthost.Config{Scripts: broken}, "broken.lua"},
		{"bad function name", scripthost.Config{Functions: map[string]api.RPCFunc{"": func(context.Context, [][]byte) ([]byte, error) { return nil, nil }}}, "rpc function name"},
		{"bad cache", scripthost.Config{Caches: []api.CacheConfig{{MaxItemSize: 10, MaxBytes: 1}}}, "cache"},
		{"short eval key", scripthost.Config{Eval: &host.EvalConfig{Key: []byte("short")}}, "key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			h, err := scripthost.New(tc.cfg)
			if err == nil {
				h.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// Every way of serving ends with ErrServerClosed at Shutdown, and nothing
// serves after it.
func TestShutdown(t *testing.T) {
	dir := scriptsDir(t, map[string]string{
		"app.lua": `return function(env) return 200, {["Content-Type"] = "text/plain"}, "hi from " .. env.PATH_INFO end`,
	})
	h := newHost(t, scripthost.Config{Scripts: dir, Eval: &host.EvalConfig{}})
	ctx := ctxTimeout(t)
	uwsgiAddr, uwsgiDone := serve(t, h.Serve)
	opsAddr, opsDone := serve(t, h.ServeOps)
	evalAddr, evalDone := serve(t, h.ServeEval)
	httpAddr, httpDone := serve(t, h.ServePlainHTTP)

	c := uwsgi.NewClient(uwsgiAddr)
	defer c.Close()
	if _, err := c.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	ops := uwsgi.NewClient(opsAddr)
	defer ops.Close()
	if _, err := ops.Ping(ctx); err != nil {
		t.Errorf("ping on the operations listener: %v", err)
	}
	ev := uwsgi.NewClient(evalAddr)
	defer ev.Close()
	if result, _, err := ev.Eval(ctx, uwsgi.ModLua, "return 6 * 7", nil); result != "42" || err != nil {
		t.Errorf("eval = %q, %v, want 42", result, err)
	}
	resp, err := http.Get("http://" + httpAddr + "/page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi from /page" {
		t.Errorf("HTTP body %q, want %q", body, "hi from /page")
	}

	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for name, done := range map[string]<-chan error{"Serve": uwsgiDone, "ServeOps": opsDone, "ServeEval": evalDone, "ServePlainHTTP": httpDone} {
		if err := <-done; !errors.Is(err, scripthost.ErrServerClosed) {
			t.Errorf("%s after Shutdown = %v, want ErrServerClosed", name, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ServePlainHTTP(l); !errors.Is(err, scripthost.ErrServerClosed) {
		t.Errorf("ServePlainHTTP after Shutdown = %v, want ErrServerClosed", err)
	}
	if err := h.Reload(ctx); !errors.Is(err, scripthost.ErrServerClosed) {
		t.Errorf("Reload after Shutdown = %v, want ErrServerClosed", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}

// A changed scripts directory is loaded again once the host serves,
// unless watching is off; Reload reloads either way.
func TestReload(t *testing.T) {
	tests := []struct {
		name      string
		watch     scripthost.Watch
		wantWatch bool
	}{
		{"watched", scripthost.Watch{Debounce: 10 * time.Millisecond, Rescan: 50 * time.Millisecond}, true},
		{"not watched", scripthost.Watch{Disabled: true, Rescan: 50 * time.Millisecond}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			version := func(v string) string { return `uwsgi.register_rpc("v", function() return "` + v + `" end)` }
			dir := scriptsDir(t, map[string]string{"v.lua": version("1")})
			h := newHost(t, scripthost.Config{Scripts: dir, Watch: tc.watch})
			serve(t, h.Serve)
			ctx := ctxTimeout(t)
			// A different size: the change shows even where modification
			// times are coarse.
			if err := os.WriteFile(filepath.Join(dir, "v.lua"), []byte(version("22")), 0o644); err != nil {
				t.Fatal(err)
			}
			call := func() string { got, _ := h.Call(ctx, "v"); return string(got) }
			deadline := time.Now().Add(5 * time.Second)
			if !tc.wantWatch {
				deadline = time.Now().Add(300 * time.Millisecond)
			}
			for call() != "22" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got, want := call() == "22", tc.wantWatch; got != want {
				t.Errorf("reloaded by the watch: %v, want %v", got, want)
			}
			if err := h.Reload(ctx); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if got := call(); got != "22" {
				t.Errorf("after Reload v() = %q, want 22", got)
			}
		})
	}
}

// Go functions, the scripts and clients share one registry and the caches.
func TestFunctionsAndCaches(t *testing.T) {
	dir := scriptsDir(t, map[string]string{
		"app.lua": `uwsgi.register_rpc("relay", function(k) return uwsgi.call("fromgo", uwsgi.cache_get(k, "sessions")) end)`,
	})
	h := newHost(t, scripthost.Config{
		Scripts: dir,
		Caches:  []api.CacheConfig{{Name: "default"}, {Name: "sessions"}},
		Functions: map[string]api.RPCFunc{
			"fromgo": func(_ context.Context, args [][]byte) ([]byte, error) {
				return append([]byte("go got "), args[0]...), nil
			},
		},
	})
	if err := h.Register("late", func(context.Context, [][]byte) ([]byte, error) { return []byte("registered later"), nil }); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t)
	sessions, err := h.Cache("sessions")
	if err != nil {
		t.Fatal(err)
	}
	if err := sessions.Set(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Cache("none"); err == nil {
		t.Error(`Cache("none") found a cache`)
	}
	addr, _ := serve(t, h.Serve)
	c := uwsgi.NewClient(addr)
	defer c.Close()
	for fn, want := range map[string]string{"relay": "go got v", "late": "registered later"} {
		if got, err := c.CallString(ctx, fn, "k"); got != want || err != nil {
			t.Errorf("%s = %q, %v, want %q", fn, got, err, want)
		}
	}
}

// Without a scripts directory the host serves Go functions alone.
func TestNoScripts(t *testing.T) {
	h := newHost(t, scripthost.Config{Functions: map[string]api.RPCFunc{
		"hello": func(context.Context, [][]byte) ([]byte, error) { return []byte("hi"), nil },
	}})
	ctx := ctxTimeout(t)
	if got, err := h.Call(ctx, "hello"); string(got) != "hi" || err != nil {
		t.Errorf("hello = %q, %v", got, err)
	}
	if err := h.Reload(ctx); err == nil {
		t.Error("Reload without a scripts directory succeeded")
	}
}
