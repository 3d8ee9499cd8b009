package gointerp

import (
	"bytes"
	"context"
	"errors"
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

// fixture is a state and an env for loading scripts given as sources.
type fixture struct {
	t     testing.TB
	state *api.State
	env   *api.Registrations
	logs  *logBuffer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	logs := &logBuffer{}
	state, err := api.NewState(api.StateConfig{Hostname: "testhost", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { state.Close() })
	env := api.NewRegistrations(state, t.TempDir())
	t.Cleanup(func() { env.Close(context.Background()) })
	return &fixture{t: t, state: state, env: env, logs: logs}
}

// files turns name, source pairs into api.Files.
func files(pairs ...string) []api.File {
	var fs []api.File
	for i := 0; i+1 < len(pairs); i += 2 {
		fs = append(fs, api.File{Name: pairs[i], Path: "/scripts/" + pairs[i], Source: []byte(pairs[i+1])})
	}
	return fs
}

// load loads the files with opts and commits their registrations as the
// host does; the program is closed at the end of the test.
func (f *fixture) load(opts Options, fs ...api.File) (*Engine, api.Program, error) {
	f.t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	}
	e := New(opts)
	p, err := e.Load(context.Background(), f.env, fs)
	if err != nil {
		return e, nil, err
	}
	f.t.Cleanup(func() { p.Close() })
	if err := f.env.Commit(nil); err != nil {
		f.t.Fatalf("Commit: %v", err)
	}
	return e, p, nil
}

func (f *fixture) mustLoad(opts Options, fs ...api.File) (*Engine, api.Program) {
	f.t.Helper()
	e, p, err := f.load(opts, fs...)
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

// logBuffer collects log output safely.
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

// recorder is an api.ResponseWriter that records what an app wrote.
type recorder struct {
	mu      sync.Mutex
	status  string
	headers []api.Header
	sent    bool
	body    bytes.Buffer
	flushes int
}

func (r *recorder) WriteHeader(status string, headers []api.Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent {
		return errors.New("header already sent")
	}
	r.status, r.headers = status, slices.Clone(headers)
	return nil
}

func (r *recorder) send() {
	if !r.sent {
		r.sent = true
		if r.status == "" {
			r.status = "200"
		}
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.send()
	return r.body.Write(p)
}

func (r *recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.send()
	r.flushes++
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

// request builds a request from "KEY=value" vars and a body.
func request(body string, vars ...string) *api.Request {
	var vs uwsgi.Vars
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		vs = vs.Add(k, v)
	}
	return &api.Request{Modifier1: uwsgi.ModGo, Vars: vs, Body: strings.NewReader(body)}
}

// discardWriter is a ResponseWriter that throws everything away.
type discardWriter struct{ sent bool }

func (d *discardWriter) WriteHeader(string, []api.Header) error { return nil }
func (d *discardWriter) Write(p []byte) (int, error)            { d.sent = true; return len(p), nil }
func (d *discardWriter) Flush() error                           { d.sent = true; return nil }
func (d *discardWriter) HeaderSent() bool                       { return d.sent }

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
