package lua

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// fixture is a scripts directory with a state and an env over it.
type fixture struct {
	t     testing.TB
	dir   string
	state *api.State
	env   *api.Registrations
}

func newFixture(t testing.TB, files map[string]string) *fixture {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state, err := api.NewState(api.StateConfig{Hostname: "testhost", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, dir: dir, state: state, env: api.NewRegistrations(state, dir)}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// topFiles returns the top-level .lua files of the directory, as the host
// gives them to Load.
func (f *fixture) topFiles() []api.File {
	f.t.Helper()
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var files []api.File
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".lua" {
			continue
		}
		path := filepath.Join(f.dir, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			f.t.Fatal(err)
		}
		files = append(files, api.File{Name: e.Name(), Path: path, Source: src})
	}
	return files
}

// load loads the directory's files with opts; the program is closed at
// the end of the test.
func (f *fixture) load(opts Options) (*Engine, api.Program, error) {
	f.t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	e := New(opts)
	p, err := e.Load(context.Background(), f.env, f.topFiles())
	if err == nil {
		f.t.Cleanup(func() { p.Close() })
		// Registrations go live as the host makes them go live.
		err = f.env.Commit(nil)
	}
	return e, p, err
}

func (f *fixture) mustLoad(opts Options) (*Engine, api.Program) {
	f.t.Helper()
	e, p, err := f.load(opts)
	if err != nil {
		f.t.Fatalf("Load: %v", err)
	}
	return e, p
}

func (f *fixture) rpc(ctx context.Context, name string, args ...string) (string, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	res, err := f.state.RPC.Call(ctx, name, bs...)
	return string(res), err
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "tests", "testdata", "uwsgi", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recorder is an api.ResponseWriter that records what an app wrote, with
// a mark where each Flush happened.
type recorder struct {
	mu      sync.Mutex
	status  string
	headers []api.Header
	sent    bool
	body    bytes.Buffer
	chunks  []string // body bytes between flushes
	pending bytes.Buffer
	failAt  int // fail writes after this many chunks (0: never)
}

var errClientGone = errors.New("client gone")

func (r *recorder) WriteHeader(status string, headers []api.Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent {
		return errors.New("header already sent")
	}
	r.status, r.headers, r.sent = status, slices.Clone(headers), true
	return nil
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAt > 0 && len(r.chunks) >= r.failAt {
		return 0, errClientGone
	}
	if !r.sent {
		r.status, r.sent = "200 OK", true
	}
	r.body.Write(p)
	r.pending.Write(p)
	return len(p), nil
}

func (r *recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
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

func (r *recorder) header(name string) []string {
	var vals []string
	for _, h := range r.headers {
		if h.Name == name {
			vals = append(vals, h.Value)
		}
	}
	return vals
}

// request builds a WSAPI request from "KEY=value" vars and a body.
func request(body string, vars ...string) *api.Request {
	var vs uwsgi.Vars
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		vs = vs.Add(k, v)
	}
	return &api.Request{Modifier1: uwsgi.ModLua, Vars: vs, Body: strings.NewReader(body)}
}

// discardWriter is a ResponseWriter that throws everything away.
type discardWriter struct{ sent bool }

func (d *discardWriter) WriteHeader(string, []api.Header) error { d.sent = true; return nil }
func (d *discardWriter) Write(p []byte) (int, error)            { d.sent = true; return len(p), nil }
func (d *discardWriter) Flush() error                           { return nil }
func (d *discardWriter) HeaderSent() bool                       { return d.sent }
