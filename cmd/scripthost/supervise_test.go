package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
)

func TestBackoff(t *testing.T) {
	var b backoff
	steps := []struct {
		lived time.Duration
		want  time.Duration
	}{
		{time.Hour, 100 * time.Millisecond},    // first death
		{time.Second, 200 * time.Millisecond},  // died soon again
		{0, 400 * time.Millisecond},            // and again
		{0, 800 * time.Millisecond},            //
		{0, 1600 * time.Millisecond},           //
		{0, 3200 * time.Millisecond},           //
		{0, 5 * time.Second},                   // capped
		{0, 5 * time.Second},                   //
		{backoffReset, 100 * time.Millisecond}, // lived a while: back to the start
		{time.Millisecond, 200 * time.Millisecond},
	}
	for i, s := range steps {
		if got := b.delay(s.lived); got != s.want {
			t.Errorf("step %d: delay(%v) = %v, want %v", i, s.lived, got, s.want)
		}
	}
}

func TestJournalCaches(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		supervisor string
		dir        string
		in         []api.CacheConfig
		want       []string // Store of each config
	}{
		{"not supervised", "", dir, []api.CacheConfig{{Name: "a"}}, []string{""}},
		{"no directory", "1", "", []api.CacheConfig{{Name: "a"}}, []string{""}},
		{"default cache", "1", dir, nil, []string{filepath.Join(dir, "cache-64656661756c74.journal")}},
		{"store= kept", "1", dir, []api.CacheConfig{{Name: "a", Store: "/x"}, {Name: "b/c"}},
			[]string{"/x", filepath.Join(dir, "cache-622f63.journal")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(supervisorVar, tc.supervisor)
			t.Setenv(cacheDirVar, tc.dir)
			var got []string
			for _, c := range journalCaches(tc.in) {
				got = append(got, c.Store)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("stores %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSupervisedEnv(t *testing.T) {
	tests := []struct {
		supervisor, restarts string
		wantPID              int
		wantRestarts         int64
	}{
		{"", "", 0, 0},
		{"1234", "3", 1234, 3},
		{"x", "-2", 0, 0},
	}
	for _, tc := range tests {
		t.Setenv(supervisorVar, tc.supervisor)
		t.Setenv(restartsVar, tc.restarts)
		if got := supervisedBy(); got != tc.wantPID {
			t.Errorf("%s=%q: supervisedBy() = %d, want %d", supervisorVar, tc.supervisor, got, tc.wantPID)
		}
		if got := supervisedRestarts(); got != tc.wantRestarts {
			t.Errorf("%s=%q: supervisedRestarts() = %d, want %d", restartsVar, tc.restarts, got, tc.wantRestarts)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "LISTEN_FDS=9", "C"}, map[string]string{"LISTEN_FDS": "2", "D": "4"})
	slices.Sort(got)
	if want := []string{"A=1", "B=2", "C", "D=4", "LISTEN_FDS=2"}; !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
}

// The supervisor opens exactly the listeners serve opens, every kind.
func TestListenAllMatchesServe(t *testing.T) {
	dir := t.TempDir()
	fs, cfg := serveFlags(io.Discard)
	err := fs.Parse([]string{
		"--socket", "127.0.0.1:0", "--socket", filepath.Join(dir, "u.sock"),
		"--ops-socket", filepath.Join(dir, "ops.sock"),
		"--eval-socket", filepath.Join(dir, "eval.sock"),
		"--http", "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ls, err := listenAll(cfg, &inherited{byAddr: map[string]net.Listener{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	kinds := func(addrs []net.Addr) []string {
		var out []string
		for _, a := range addrs {
			s := a.Network()
			if a.Network() == "unix" {
				s += " " + filepath.Base(a.String())
			}
			out = append(out, s)
		}
		return out
	}
	var sup []net.Addr
	for _, l := range ls {
		sup = append(sup, l.Addr())
	}

	// serve itself, on other addresses of the same kinds.
	dir2 := t.TempDir()
	fs2, cfg2 := serveFlags(io.Discard)
	fs2.Parse([]string{
		"--socket", "127.0.0.1:0", "--socket", filepath.Join(dir2, "u.sock"),
		"--ops-socket", filepath.Join(dir2, "ops.sock"),
		"--eval-socket", filepath.Join(dir2, "eval.sock"),
		"--http", "127.0.0.1:0",
	})
	h, err := scripthost.New(scripthost.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	served, err := openListeners(cfg2, h, log)
	if err != nil {
		t.Fatal(err)
	}
	var want []net.Addr
	for _, l := range served.listeners() {
		want = append(want, l.Addr())
		l.Close()
	}
	if got, w := kinds(sup), kinds(want); !slices.Equal(got, w) {
		t.Errorf("supervisor listens on %q, serve on %q", got, w)
	}
	// The unix sockets get serve's modes.
	for _, l := range ls {
		if a := l.Addr(); a.Network() == "unix" && strings.Contains(a.String(), "ops") {
			checkMode(t, a.String(), 0o600)
		}
	}
}

// A supervised serving process leaves graceful restarts to its
// supervisor: it asks it with SIGUSR2 and keeps serving.
func TestRestartSupervisedAsksSupervisor(t *testing.T) {
	t.Setenv(supervisorVar, "999999999") // no such process
	err := restart(context.Background(), nil, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "supervisor (pid 999999999)") {
		t.Fatalf("restart under a supervisor = %v, want the supervisor asked", err)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// A supervised serving process counts the restarts its supervisor handed
// over and journals its caches in the supervisor's directory.
func TestServeStateSupervised(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(supervisorVar, "1")
	t.Setenv(restartsVar, "2")
	t.Setenv(cacheDirVar, dir)
	fs, cfg := serveFlags(io.Discard)
	if err := fs.Parse([]string{"--cache", "name=sessions,items=10"}); err != nil {
		t.Fatal(err)
	}
	h, _, err := newHost(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	state := h.State()
	if got := state.Counters.Restarts.Load(); got != 2 {
		t.Errorf("Counters.Restarts = %d, want 2", got)
	}
	if got := state.Caches.Default().Config().Store; filepath.Dir(got) != dir {
		t.Errorf("cache store %q, want one in %s", got, dir)
	}
}
