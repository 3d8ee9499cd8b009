package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

func newTestSpooler(t *testing.T, dirs ...string) *Spooler {
	t.Helper()
	if len(dirs) == 0 {
		dirs = []string{t.TempDir()}
	}
	sp, err := NewSpooler(SpoolerConfig{Dirs: dirs, Frequency: 40 * time.Millisecond, Backoff: 10 * time.Millisecond,
		MaxAttempts: 3, Hostname: "node1", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close(context.Background()) })
	return sp
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func enqueue(t *testing.T, sp *Spooler, body string, kv ...string) string {
	t.Helper()
	var vars uwsgi.Vars
	for i := 0; i < len(kv); i += 2 {
		vars = vars.Add(kv[i], kv[i+1])
	}
	block, err := vars.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	path, err := sp.Enqueue(block, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder is a spooler function that records the jobs it ran and answers
// with answer(job).
type recorder struct {
	mu     sync.Mutex
	jobs   []map[string]Value
	answer func(job map[string]Value) (int, error)
}

func (r *recorder) fn(_ context.Context, job map[string]Value) (int, error) {
	r.mu.Lock()
	r.jobs = append(r.jobs, job)
	r.mu.Unlock()
	if r.answer == nil {
		return SpoolOK, nil
	}
	return r.answer(job)
}

func (r *recorder) tasks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, j := range r.jobs {
		out = append(out, j["task"].(string))
	}
	return out
}

func TestSpoolerFileIsUWSGIs(t *testing.T) {
	sp := newTestSpooler(t)
	// The capture spooler_enqueue's packet, stored as uWSGI stores it.
	req, err := os.ReadFile(filepath.Join("uwsgi", "testdata", "vectors", "spooler_enqueue.req.bin"))
	if err != nil {
		t.Fatal(err)
	}
	path, err := sp.Enqueue(req[4:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(path), "uwsgi_spoolfile_on_node1_") {
		t.Errorf("job file %s: want uWSGI's name", path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, req) {
		t.Errorf("job file %q, want the packet %q", got, req)
	}
}

func TestSpoolerRunsJobs(t *testing.T) {
	sp := newTestSpooler(t)
	rec := &recorder{}
	sp.SetFuncs([]SpoolFunc{rec.fn})
	path := enqueue(t, sp, "the body", "task", "one", "arg", "42")
	waitFor(t, "the job done", func() bool { return sp.Stats().Done == 1 })
	job := rec.jobs[0]
	want := map[string]Value{"task": "one", "arg": "42", "body": "the body", "spooler_task_name": path}
	for k, v := range want {
		if job[k] != v {
			t.Errorf("job[%q] = %v, want %v", k, job[k], v)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("done job's file: %v, want it removed", err)
	}
}

func TestSpoolerAnswers(t *testing.T) {
	cases := []struct {
		name     string
		answers  []func(job map[string]Value) (int, error)
		wantRuns int
		stats    SpoolerStats
		failed   bool
	}{
		{name: "ok", answers: []func(map[string]Value) (int, error){
			func(map[string]Value) (int, error) { return SpoolOK, nil }},
			wantRuns: 1, stats: SpoolerStats{Spooled: 1, Done: 1}},
		{name: "ignore then ok", answers: []func(map[string]Value) (int, error){
			func(map[string]Value) (int, error) { return SpoolIgnore, nil },
			func(map[string]Value) (int, error) { return SpoolOK, nil }},
			wantRuns: 2, stats: SpoolerStats{Spooled: 1, Done: 1}},
		{name: "errors until failed", answers: []func(map[string]Value) (int, error){
			func(map[string]Value) (int, error) { return 0, errors.New("boom") }},
			wantRuns: 3, stats: SpoolerStats{Spooled: 1, Errors: 3, Failed: 1}, failed: true},
		{name: "a bad answer is a failure", answers: []func(map[string]Value) (int, error){
			func(map[string]Value) (int, error) { return 7, nil }},
			wantRuns: 3, stats: SpoolerStats{Spooled: 1, Errors: 3, Failed: 1}, failed: true},
		{name: "a panic is a failure", answers: []func(map[string]Value) (int, error){
			func(map[string]Value) (int, error) { panic("oops") }},
			wantRuns: 3, stats: SpoolerStats{Spooled: 1, Errors: 3, Failed: 1}, failed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			sp := newTestSpooler(t, dir)
			var runs atomic.Int64
			var fns []SpoolFunc
			for _, a := range c.answers {
				fns = append(fns, func(ctx context.Context, job map[string]Value) (int, error) {
					runs.Add(1)
					return a(job)
				})
			}
			sp.SetFuncs(fns)
			path := enqueue(t, sp, "", "task", "x")
			waitFor(t, "the job settled", func() bool {
				st := sp.Stats()
				return st.Done+st.Failed == 1 && st.Running == 0
			})
			if got := sp.Stats(); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
			if int(runs.Load()) != c.wantRuns {
				t.Errorf("%d runs, want %d", runs.Load(), c.wantRuns)
			}
			failed := filepath.Join(dir, "failed", filepath.Base(path))
			_, err := os.Stat(failed)
			if c.failed != (err == nil) {
				t.Errorf("failed/ holds the job: %v, want %v", err == nil, c.failed)
			}
			if c.failed {
				note, _ := os.ReadFile(failed + ".error")
				if !strings.Contains(string(note), "attempts: 3") {
					t.Errorf("the error note %q says no attempts", note)
				}
			}
		})
	}
}

func TestSpoolerRetryWaits(t *testing.T) {
	sp := newTestSpooler(t)
	var runs []time.Time
	var mu sync.Mutex
	sp.SetFuncs([]SpoolFunc{func(context.Context, map[string]Value) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, time.Now())
		if len(runs) == 1 {
			return SpoolRetry, nil
		}
		return SpoolOK, nil
	}})
	enqueue(t, sp, "", "task", "x")
	waitFor(t, "the retried job done", func() bool { return sp.Stats().Done == 1 })
	if gap := runs[1].Sub(runs[0]); gap < 30*time.Millisecond {
		t.Errorf("retried after %v, want about the frequency (40ms)", gap)
	}
	if st := sp.Stats(); st.Retried != 1 {
		t.Errorf("stats %+v, want one retry", st)
	}
}

func TestSpoolerAtAndPriority(t *testing.T) {
	// One worker, so that the jobs run in the order they are handed out.
	sp, err := NewSpooler(SpoolerConfig{Dirs: []string{t.TempDir()}, Workers: 1, Frequency: 40 * time.Millisecond,
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(context.Background())
	rec := &recorder{}
	// Due together, a second from now, so that one scan hands them out.
	at := strconv.FormatInt(time.Now().Unix()+1, 10)
	sp.SetFuncs([]SpoolFunc{rec.fn})
	enqueue(t, sp, "", "task", "later", "at", "9999999999.5")
	enqueue(t, sp, "", "task", "plain", "at", at)
	enqueue(t, sp, "", "task", "p2", "priority", "2", "at", at)
	enqueue(t, sp, "", "task", "p1", "priority", "1", "at", at)
	jobs, err := sp.Jobs("")
	if err != nil || len(jobs) != 4 {
		t.Fatalf("Jobs = %v, %v", jobs, err)
	}
	waitFor(t, "three jobs done", func() bool { return sp.Stats().Done == 3 })
	got := rec.tasks()
	if !slices.Contains(got, "p1") || slices.Contains(got, "later") {
		t.Errorf("ran %v: want every job but the one due in the future", got)
	}
	if !slices.Equal(got, []string{"p1", "p2", "plain"}) {
		t.Errorf("ran %v: priority jobs come first", got)
	}
	if _, err := sp.Enqueue(mustVars(t, "priority", "../x"), nil); !errors.Is(err, ErrBadSpoolPayload) {
		t.Errorf("priority ../x: %v, want ErrBadSpoolPayload", err)
	}
	if _, err := sp.Enqueue(mustVars(t, "at", "soon"), nil); !errors.Is(err, ErrBadSpoolJob) {
		t.Errorf("at soon: %v, want ErrBadSpoolJob", err)
	}
	if _, err := sp.Enqueue(mustVars(t, "spooler", "nosuch"), nil); !errors.Is(err, ErrUnknownSpooler) {
		t.Errorf("spooler nosuch: %v, want ErrUnknownSpooler", err)
	}
}

func mustVars(t *testing.T, kv ...string) []byte {
	var vars uwsgi.Vars
	for i := 0; i < len(kv); i += 2 {
		vars = vars.Add(kv[i], kv[i+1])
	}
	b, err := vars.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpoolerPicksDirectory(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	sp := newTestSpooler(t, a, b)
	p := enqueue(t, sp, "", "task", "x", "spooler", filepath.Base(b))
	if filepath.Dir(p) != b {
		t.Errorf("job in %s, want %s", p, b)
	}
	p = enqueue(t, sp, "", "task", "y")
	if filepath.Dir(p) != a {
		t.Errorf("job in %s, want the first directory %s", p, a)
	}
}

// A job acknowledged before a crash runs at the next start; a file half
// written (never acknowledged) is dropped.
func TestSpoolerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sp := newTestSpooler(t, dir)
	path := enqueue(t, sp, "", "task", "kept")
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, spoolIncoming, spoolTempPre+"uwsgi_spoolfile_on_x")
	if err := os.WriteFile(half, []byte{17, 9}, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, spoolPrefix+"garbage")
	if err := os.WriteFile(garbage, []byte("not a packet"), 0o600); err != nil {
		t.Fatal(err)
	}
	sp2 := newTestSpooler(t, dir)
	rec := &recorder{}
	sp2.SetFuncs([]SpoolFunc{rec.fn})
	waitFor(t, "the kept job done and the garbage failed", func() bool {
		st := sp2.Stats()
		return st.Done == 1 && st.Failed == 1
	})
	if got := rec.tasks(); !slices.Equal(got, []string{"kept"}) || rec.jobs[0]["spooler_task_name"] != path {
		t.Errorf("ran %v", rec.jobs)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a half-written job is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "failed", filepath.Base(garbage))); err != nil {
		t.Errorf("the unreadable job is not in failed/: %v", err)
	}
}

func TestSpoolerLimits(t *testing.T) {
	sp := newTestSpooler(t)
	big := make([]byte, MaxSpoolVars+1)
	if _, err := sp.Enqueue(big, nil); !errors.Is(err, ErrSpoolJobTooBig) {
		t.Errorf("vars over 64 KiB: %v, want ErrSpoolJobTooBig", err)
	}
	if _, err := sp.Enqueue(nil, make([]byte, DefaultSpoolMaxBody+1)); !errors.Is(err, ErrSpoolJobTooBig) {
		t.Errorf("body over the limit: %v, want ErrSpoolJobTooBig", err)
	}
	if _, err := sp.Enqueue([]byte{5, 0, 'a'}, nil); !errors.Is(err, ErrBadSpoolJob) {
		t.Errorf("truncated vars: %v, want ErrBadSpoolJob", err)
	}
	sp.Close(context.Background())
	if _, err := sp.Enqueue(nil, nil); !errors.Is(err, ErrSpoolerClosed) {
		t.Errorf("after Close: %v, want ErrSpoolerClosed", err)
	}
}

// Jobs run on at most Workers goroutines at once.
func TestSpoolerWorkersBound(t *testing.T) {
	dir := t.TempDir()
	sp, err := NewSpooler(SpoolerConfig{Dirs: []string{dir}, Workers: 2, Frequency: time.Second, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(context.Background())
	var running, peak atomic.Int64
	sp.SetFuncs([]SpoolFunc{func(context.Context, map[string]Value) (int, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		running.Add(-1)
		return SpoolOK, nil
	}})
	for range 10 {
		enqueue(t, sp, "", "task", "x")
	}
	waitFor(t, "ten jobs done", func() bool { return sp.Stats().Done == 10 })
	if p := peak.Load(); p != 2 {
		t.Errorf("%d jobs ran at once, want 2", p)
	}
}

// A job that reaches the functions of a generation closed meanwhile runs
// with the next generation's.
func TestSpoolerFollowsGenerations(t *testing.T) {
	st, err := NewState(StateConfig{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Spooler = newTestSpooler(t)
	old := NewRegistrations(st, t.TempDir())
	if err := old.RegisterSpooler("a.lua", func(context.Context, map[string]Value) (int, error) {
		return SpoolRetry, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := old.Commit(nil); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())
	rec := &recorder{}
	next := NewRegistrations(st, t.TempDir())
	next.RegisterSpooler("a.lua", rec.fn)
	enqueue(t, st.Spooler, "", "task", "x")
	if err := next.Commit(old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job done by the new generation", func() bool { return st.Spooler.Stats().Done == 1 })
	if st.Spooler.Stats().Retried != 0 {
		t.Errorf("the closed generation's function ran: %+v", st.Spooler.Stats())
	}
}

// BenchmarkSpoolerEnqueue stores jobs from 32 goroutines, with a spooler
// function that answers SpoolOK at once.
func BenchmarkSpoolerEnqueue(b *testing.B) {
	sp, err := NewSpooler(SpoolerConfig{Dirs: []string{b.TempDir()}, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close(context.Background())
	sp.SetFuncs([]SpoolFunc{func(context.Context, map[string]Value) (int, error) { return SpoolOK, nil }})
	vars, _ := uwsgi.Vars{}.Add("task", "bench").Append(nil)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sp.Enqueue(vars, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
