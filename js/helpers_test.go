package js

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// logBuffer records log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// world is a state and an env over a temporary scripts directory.
type world struct {
	t     testing.TB
	state *api.State
	env   *api.Registrations
	dir   string
	log   *logBuffer
}

func newWorld(t testing.TB, files map[string]string) *world {
	t.Helper()
	logs := &logBuffer{}
	state, err := api.NewState(api.StateConfig{
		Hostname: "testhost",
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { state.Close() })
	dir := t.TempDir()
	w := &world{t: t, state: state, env: api.NewRegistrations(state, dir), dir: dir, log: logs}
	t.Cleanup(func() { w.env.Close(context.Background()) })
	for name, src := range files {
		w.write(name, src)
	}
	return w
}

func (w *world) write(name, src string) {
	w.t.Helper()
	path := filepath.Join(w.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// files returns the top-level .js files of the directory, as a host
// gives them to Load.
func (w *world) files() []api.File {
	w.t.Helper()
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	var fs []api.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		path := filepath.Join(w.dir, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			w.t.Fatal(err)
		}
		fs = append(fs, api.File{Name: e.Name(), Path: path, Source: src})
	}
	return fs
}

// load loads the directory with an engine of opts; the program is closed
// when the test ends.
func (w *world) load(opts Options) *program {
	w.t.Helper()
	p, err := w.tryLoad(opts)
	if err != nil {
		w.t.Fatalf("Load: %v", err)
	}
	return p
}

func (w *world) tryLoad(opts Options) (*program, error) {
	prog, err := New(opts).Load(context.Background(), w.env, w.files())
	if err != nil {
		return nil, err
	}
	p := prog.(*program)
	w.t.Cleanup(func() { p.Close() })
	// Registrations go live as the host makes them go live.
	if err := w.env.Commit(nil); err != nil {
		return nil, err
	}
	return p, nil
}

// call calls RPC function name with string arguments.
func (w *world) call(ctx context.Context, name string, args ...string) (string, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	res, err := w.state.RPC.Call(ctx, name, bs...)
	return string(res), err
}

// recorder is an api.ResponseWriter that records what an app wrote.
type recorder struct {
	mu      sync.Mutex
	status  string
	headers []api.Header
	body    bytes.Buffer
	chunks  []string // what each Flush sent
	pending bytes.Buffer
	sent    bool
	failAt  int // a Write fails once the body holds this many bytes (0: never)
}

var errWriteFailed = errors.New("test: write failed")

func (r *recorder) WriteHeader(status string, headers []api.Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent {
		return errors.New("test: header already sent")
	}
	r.status, r.headers = status, headers
	return nil
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = true
	if r.failAt > 0 && r.body.Len()+len(p) >= r.failAt {
		return 0, errWriteFailed
	}
	r.body.Write(p)
	r.pending.Write(p)
	return len(p), nil
}

func (r *recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = true
	if r.pending.Len() > 0 {
		r.chunks = append(r.chunks, r.pending.String())
		r.pending.Reset()
	}
	return nil
}

func (r *recorder) HeaderSent() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

// nginxVars are the vars nginx's uwsgi_params send for a POST, plus
// request headers.
func nginxVars(extra ...string) uwsgi.Vars {
	var vs uwsgi.Vars
	kv := []string{
		"QUERY_STRING", "a=1&b=2",
		"REQUEST_METHOD", "POST",
		"CONTENT_TYPE", "text/plain",
		"CONTENT_LENGTH", "11",
		"REQUEST_URI", "/app/x/y?a=1&b=2",
		"PATH_INFO", "/x/y",
		"DOCUMENT_ROOT", "/usr/share/nginx/html",
		"SERVER_PROTOCOL", "HTTP/1.1",
		"REQUEST_SCHEME", "http",
		"REMOTE_ADDR", "10.0.0.7",
		"REMOTE_PORT", "53211",
		"SERVER_PORT", "8080",
		"SERVER_NAME", "example.org",
		"SCRIPT_NAME", "/app",
		"HTTP_HOST", "example.org:8080",
		"HTTP_USER_AGENT", "curl/8.5.0",
		"HTTP_ACCEPT", "*/*",
		"HTTP_X_FORWARDED_FOR", "1.2.3.4",
		"HTTP_X_FORWARDED_FOR", "5.6.7.8",
		"HTTP_COOKIE", "a=1",
		"HTTP_COOKIE", "b=2",
	}
	kv = append(kv, extra...)
	for i := 0; i+1 < len(kv); i += 2 {
		vs = vs.Add(kv[i], kv[i+1])
	}
	return vs
}

// serve serves one request to app name.
func (w *world) serve(ctx context.Context, p *program, name string, vars uwsgi.Vars, body string) (*recorder, error) {
	w.t.Helper()
	a := p.Apps()[name]
	if a == nil {
		w.t.Fatalf("no app %q (apps: %v)", name, slices.Sorted(maps.Keys(p.Apps())))
	}
	rec := &recorder{}
	var br io.Reader = strings.NewReader(body)
	err := a.ServeRequest(ctx, rec, &api.Request{Modifier1: uwsgi.ModV8, Vars: vars, Body: br})
	return rec, err
}

// cacheValue returns an item of the default cache ("" when missing).
func (w *world) cacheValue(key string) string {
	w.t.Helper()
	c, err := w.state.Caches.Cache("")
	if err != nil {
		w.t.Fatal(err)
	}
	it, err := c.Get(context.Background(), []byte(key))
	if err != nil {
		return ""
	}
	return string(it.Value)
}

// cacheNum returns a counter of the default cache in decimal ("" when
// missing or not a counter): counters are uWSGI's 8-byte integers.
func (w *world) cacheNum(key string) string {
	w.t.Helper()
	c, err := w.state.Caches.Cache("")
	if err != nil {
		w.t.Fatal(err)
	}
	n, err := c.Num(context.Background(), []byte(key))
	if err != nil {
		return ""
	}
	return strconv.FormatInt(n, 10)
}
