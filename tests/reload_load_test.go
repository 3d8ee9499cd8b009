package tests

// Hot reload under load, in process (so goroutines and memory can be
// measured): a host.Server and a host.Reloader over a scripts directory
// that is rewritten over and over (new versions, broken versions, files
// added and removed, the app's answer changing) while clients call RPC
// functions and the app without pause. Every answer carries the version
// of the generation that produced it, so a failed, wrong, mixed or stale
// answer is caught.
//
// SCRIPTHOST_RELOADS sets the number of reloads of TestReloadUnderLoad
// (default 120).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
	"github.com/scripthost/scripthost/lua"
)

// brokenBase numbers the versions written into broken scripts: they must
// never be served.
const brokenBase = 1_000_000

// greetings are the app's answers; the version picks one, so a change of
// the app's response is checked too.
var greetings = []string{"hello", "howdy", "hi"}

func greetingOf(v int64) string { return greetings[v%int64(len(greetings))] }

var appAnswer = regexp.MustCompile(`^(\w+) v=(\d+) rpc=(\d+)$`)

// reloadLogBuffer collects the server's warnings for a failure message.
type reloadLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *reloadLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 { // keep the tail only: the heap is measured
		tail := append([]byte(nil), l.b.Bytes()[l.b.Len()-16<<10:]...)
		l.b = bytes.Buffer{}
		l.b.Write(tail)
	}
	return l.b.Write(p)
}

func (l *reloadLogBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// reloadRig is a server, its reloader, the scripts directory and the load.
type reloadRig struct {
	tb    testing.TB
	dir   string
	state *api.State
	srv   *host.Server
	rl    *host.Reloader
	addr  string
	logs  *reloadLogBuffer
	done  chan error // Serve's result

	// What was written: the valid versions, the ones with extra.lua.
	mu       sync.Mutex
	valid    map[int64]bool
	extraIn  map[int64]bool
	version  int64 // last valid version written
	combined bool  // app and ver in one file (for the watcher)
	// A request sent after committed was stored must be answered by that
	// version or a later one; attempted is the highest version that may
	// be live (written and handed to a reload).
	committed atomic.Int64
	attempted atomic.Int64

	// The load.
	stop     atomic.Bool
	wg       sync.WaitGroup
	clients  []*uwsgi.Client
	rpcOK    atomic.Int64
	appOK    atomic.Int64
	extraOK  atomic.Int64
	extraNo  atomic.Int64
	failures atomic.Int64
	failMu   sync.Mutex
	failMsgs []string
	seenMu   sync.Mutex
	seen     map[int64]bool
}

func newReloadRig(tb testing.TB) *reloadRig {
	tb.Helper()
	r := &reloadRig{tb: tb, dir: tb.TempDir(), logs: &reloadLogBuffer{}, done: make(chan error, 1),
		valid: map[int64]bool{}, extraIn: map[int64]bool{}, seen: map[int64]bool{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	state, err := api.NewState(api.StateConfig{Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	r.state = state
	r.srv = host.NewServer(state)
	r.srv.Logger = log
	r.rl = &host.Reloader{Server: r.srv, Dir: r.dir, Logger: log,
		Engines: []api.Engine{lua.New(lua.Options{})}, DrainTimeout: 20 * time.Second}
	r.writeVersion(1, false)
	if err := r.reload(1); err != nil {
		tb.Fatalf("first load: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r.addr = l.Addr().String()
	go func() { r.done <- r.srv.Serve(l) }()
	tb.Cleanup(func() {
		r.stopLoad()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			tb.Errorf("server shutdown: %v", err)
			r.srv.Close()
		}
		if err := <-r.done; !errors.Is(err, host.ErrServerClosed) {
			tb.Errorf("Serve returned %v", err)
		}
		if err := r.rl.Close(ctx); err != nil {
			tb.Errorf("Reloader.Close: %v", err)
		}
		r.state.Close()
		if tb.Failed() {
			tb.Logf("server log tail:\n%s", r.logs.tail(30))
		}
	})
	return r
}

// writeAtomic writes a file under a hidden temporary name (scripts
// starting with a dot are not loaded) and renames it into place, so a
// watcher never sees half a file.
func (r *reloadRig) writeAtomic(name, content string) {
	r.tb.Helper()
	tmp := filepath.Join(r.dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, name)); err != nil {
		r.tb.Fatal(err)
	}
}

func (r *reloadRig) remove(name string) {
	r.tb.Helper()
	if err := os.Remove(filepath.Join(r.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.tb.Fatal(err)
	}
}

// rpcSource registers ver (and a timer counting in the cache).
func rpcSource(v int64) string {
	return fmt.Sprintf(`-- version %d
local V = "%d"
uwsgi.register_rpc("ver", function() return V end)
uwsgi.register_signal(21, "", function() uwsgi.cache_inc("load_ticks") end)
uwsgi.add_timer(21, 0.05)
`, v, v)
}

// appSource is the app: its own version and ver's answer, which must be
// the same in any one generation. With withVer the file registers ver
// itself (one file per version, for the watcher).
func appSource(v int64, withVer bool) string {
	head := fmt.Sprintf("local V = \"%d\"\n", v)
	if withVer {
		head = rpcSource(v)
	}
	return head + fmt.Sprintf(`local G = %q
return function(env)
  return 200, {["Content-Type"] = "text/plain"}, G .. " v=" .. V .. " rpc=" .. tostring(uwsgi.call("ver"))
end
`, greetingOf(v))
}

// writeVersion writes valid version v: app.lua, rpc.lua (or app.lua
// alone when combined), extra.lua when withExtra; it removes what broken
// versions left. extra.lua is changed before app.lua, so a watcher that
// loads between the two writes sees extra.lua of version v.
func (r *reloadRig) writeVersion(v int64, withExtra bool) {
	r.mu.Lock()
	r.valid[v] = true
	r.extraIn[v] = withExtra
	r.version = v
	combined := r.combined
	r.mu.Unlock()
	if r.attempted.Load() < v {
		r.attempted.Store(v)
	}
	r.remove("zz_broken.lua")
	if withExtra {
		r.writeAtomic("extra.lua", fmt.Sprintf("local V = \"%d\"\nuwsgi.register_rpc(\"extra\", function() return \"extra \" .. V end)\n", v))
	} else {
		r.remove("extra.lua")
	}
	if combined {
		r.remove("rpc.lua")
		r.writeAtomic("app.lua", appSource(v, true))
		return
	}
	r.writeAtomic("rpc.lua", rpcSource(v))
	r.writeAtomic("app.lua", appSource(v, false))
}

// writeBroken breaks the directory one of three ways; it returns the file
// and line the error must name.
func (r *reloadRig) writeBroken(i int) string {
	b := brokenBase + int64(i)
	r.mu.Lock()
	combined := r.combined
	r.mu.Unlock()
	switch {
	case combined || i%3 == 0: // a syntax error
		name := "rpc.lua"
		if combined {
			name = "app.lua"
		}
		r.writeAtomic(name, fmt.Sprintf("local V = \"%d\"\nuwsgi.register_rpc(\"ver\", function( return V end)\n", b))
		return name + ":2"
	case i%3 == 1: // an error raised while the file runs
		r.writeAtomic("app.lua", fmt.Sprintf("local V = \"%d\"\n\nerror(\"broken on purpose \" .. V)\n", b))
		return "app.lua:3"
	default: // a new broken file beside good ones
		r.writeAtomic("zz_broken.lua", "uwsgi.register_rpc(\"zz\", function() return 'zz' end)\nlocal = 1\n")
		return "zz_broken.lua:2"
	}
}

// reload reloads the directory holding version v and, when it worked,
// marks v committed: requests sent from now on must see v or later.
func (r *reloadRig) reload(v int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.rl.Reload(ctx, false)
	if err == nil {
		r.committed.Store(v)
	}
	return err
}

func (r *reloadRig) fail(format string, args ...any) {
	r.failures.Add(1)
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if len(r.failMsgs) < 20 {
		r.failMsgs = append(r.failMsgs, fmt.Sprintf(format, args...))
	}
}

// checkVersion checks a version v seen in an answer to a request sent
// when c0 was committed, after the same goroutine last saw *last.
func (r *reloadRig) checkVersion(what string, v, c0 int64, last *int64) {
	r.mu.Lock()
	valid := r.valid[v]
	r.mu.Unlock()
	switch {
	case v >= brokenBase:
		r.fail("%s: served version %d of a broken script", what, v)
	case !valid:
		r.fail("%s: version %d was never written", what, v)
	case v > r.attempted.Load():
		r.fail("%s: version %d was not handed to a reload yet", what, v)
	case v < c0:
		r.fail("%s: version %d answered a request sent when %d was committed", what, v, c0)
	case v < *last:
		r.fail("%s: version %d after version %d on the same goroutine", what, v, *last)
	}
	*last = max(*last, v)
	r.seenMu.Lock()
	r.seen[v] = true
	r.seenMu.Unlock()
}

func (r *reloadRig) rpcWorker(c *uwsgi.Client) {
	defer r.wg.Done()
	var last int64
	for !r.stop.Load() {
		c0 := r.committed.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		got, err := c.CallString(ctx, "ver")
		cancel()
		if err != nil {
			r.fail("RPC ver: %v", err)
			continue
		}
		v, err := strconv.ParseInt(got, 10, 64)
		if err != nil {
			r.fail("RPC ver answered %q", got)
			continue
		}
		r.checkVersion("RPC ver", v, c0, &last)
		r.rpcOK.Add(1)
	}
}

func (r *reloadRig) appWorker(c *uwsgi.Client) {
	defer r.wg.Done()
	var last int64
	for !r.stop.Load() {
		c0 := r.committed.Load()
		body, code, err := r.getApp(c)
		if err != nil || code != 200 {
			r.fail("app: %d %q, %v", code, body, err)
			continue
		}
		m := appAnswer.FindStringSubmatch(body)
		if m == nil {
			r.fail("app answered %q", body)
			continue
		}
		v, _ := strconv.ParseInt(m[2], 10, 64)
		if m[2] != m[3] {
			r.fail("app answer %q mixes generations", body)
			continue
		}
		if m[1] != greetingOf(v) {
			r.fail("app answer %q: greeting of another version", body)
			continue
		}
		r.checkVersion("app", v, c0, &last)
		r.appOK.Add(1)
	}
}

func (r *reloadRig) getApp(c *uwsgi.Client) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequest("GET", "http://localhost/ver", nil)
	resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// extraWorker calls the function that comes and goes with extra.lua.
func (r *reloadRig) extraWorker(c *uwsgi.Client) {
	defer r.wg.Done()
	var last int64
	for !r.stop.Load() {
		c0 := r.committed.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		got, err := c.CallString(ctx, "extra")
		cancel()
		top := r.attempted.Load()
		if errors.Is(err, uwsgi.ErrNotFound) {
			// Fine if some version that may have served it had no extra.lua.
			r.mu.Lock()
			ok := false
			for v := c0; v <= top && !ok; v++ {
				ok = r.valid[v] && !r.extraIn[v]
			}
			r.mu.Unlock()
			if !ok {
				r.fail("RPC extra not found, but every version from %d to %d has it", c0, top)
			}
			r.extraNo.Add(1)
			continue
		}
		if err != nil {
			r.fail("RPC extra: %v", err)
			continue
		}
		n, ok := strings.CutPrefix(got, "extra ")
		v, perr := strconv.ParseInt(n, 10, 64)
		if !ok || perr != nil {
			r.fail("RPC extra answered %q", got)
			continue
		}
		r.mu.Lock()
		had := r.extraIn[v]
		r.mu.Unlock()
		if !had && v < brokenBase {
			r.fail("RPC extra answered %q, but version %d has no extra.lua", got, v)
		}
		r.checkVersion("RPC extra", v, c0, &last)
		r.extraOK.Add(1)
	}
}

// startLoad starts the callers, with new clients: three RPC callers on a
// pooled client, two app callers, one caller of the changing function.
func (r *reloadRig) startLoad() {
	r.stop.Store(false)
	rpc, app := uwsgi.NewClient(r.addr), uwsgi.NewClient(r.addr)
	r.clients = []*uwsgi.Client{rpc, app}
	r.wg.Add(6)
	for range 3 {
		go r.rpcWorker(rpc)
	}
	for range 2 {
		go r.appWorker(app)
	}
	go r.extraWorker(rpc)
}

// stopLoad stops the callers and closes their clients (and so the
// server's connections to them).
func (r *reloadRig) stopLoad() {
	r.stop.Store(true)
	r.wg.Wait()
	for _, c := range r.clients {
		c.Close()
	}
	r.clients = nil
}

// requests is the number of good answers so far.
func (r *reloadRig) requests() int64 {
	return r.rpcOK.Load() + r.appOK.Load() + r.extraOK.Load() + r.extraNo.Load()
}

// awaitRequests waits (bounded) until n more answers arrived, so that
// every generation serves some of the load.
func (r *reloadRig) awaitRequests(n int64) {
	target := r.requests() + n
	deadline := time.Now().Add(10 * time.Second)
	for r.requests() < target && time.Now().Before(deadline) && r.failures.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
}

// settleGoroutines waits until replaced generations are drained and the server's
// connection goroutines are gone: the goroutine count stops falling (or
// reaches floor). It returns the count.
func settleGoroutines(floor int) int {
	n, stable := runtime.NumGoroutine(), 0
	deadline := time.Now().Add(15 * time.Second)
	for stable < 10 && n > floor && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			stable++
		} else {
			stable = 0
		}
		n = m
	}
	return n
}

func heapInuseAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// step makes reload number i: every seventh a broken one, the others a
// new valid version (extra.lua present in two of every four). It checks
// the outcome and returns the latency of a successful reload.
func (r *reloadRig) step(t *testing.T, i int) (time.Duration, bool) {
	t.Helper()
	genBefore := r.rl.Status().Generation
	if i%7 == 3 {
		where := r.writeBroken(i)
		if !r.rl.Changed() {
			t.Errorf("reload %d: Changed() = false after breaking the directory", i)
		}
		err := r.reload(-1)
		st := r.rl.Status()
		if !errors.Is(err, host.ErrReloadFailed) {
			t.Errorf("reload %d of a broken directory (%s): %v, want ErrReloadFailed", i, where, err)
		}
		if !strings.Contains(st.LastError, where) {
			t.Errorf("reload %d: LastError %q does not name %s", i, st.LastError, where)
		}
		if st.Generation != genBefore {
			t.Errorf("reload %d: a failed reload changed the generation %d -> %d", i, genBefore, st.Generation)
		}
		return 0, false
	}
	r.mu.Lock()
	v := r.version + 1
	r.mu.Unlock()
	r.writeVersion(v, i%4 < 2)
	err := r.reload(v)
	st := r.rl.Status()
	if err != nil {
		t.Errorf("reload %d of valid version %d: %v", i, v, err)
		return 0, false
	}
	if st.Generation <= genBefore || st.LastError != "" {
		t.Errorf("reload %d: generation %d -> %d, LastError %q", i, genBefore, st.Generation, st.LastError)
	}
	if r.rl.Changed() {
		t.Errorf("reload %d: Changed() = true right after a reload", i)
	}
	return st.Latency, true
}

// TestReloadUnderLoad rewrites and reloads the scripts directory 120 times
// (SCRIPTHOST_RELOADS) under sustained load and checks that no request
// fails or gets a wrong, mixed or stale answer, that replaced generations
// leave no goroutines behind and that memory stays bounded.
func TestReloadUnderLoad(t *testing.T) {
	reloads := 120
	if s := os.Getenv("SCRIPTHOST_RELOADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 30 {
			t.Fatalf("SCRIPTHOST_RELOADS=%q: want a number of at least 30", s)
		}
		reloads = n
	}
	const goroutineBase, heapBase = 5, 20
	r := newReloadRig(t)
	r.startLoad()
	start := time.Now()
	var latencies []time.Duration
	var g0, gMid int
	var h0 uint64
	failed := 0
	for i := 1; i <= reloads; i++ {
		lat, ok := r.step(t, i)
		if ok {
			latencies = append(latencies, lat)
		} else {
			failed++
		}
		r.awaitRequests(6)
		if r.failures.Load() > 0 || t.Failed() {
			break
		}
		switch i {
		case goroutineBase, heapBase:
			// Measure with the load stopped and its connections closed.
			r.stopLoad()
			if i == goroutineBase {
				g0 = settleGoroutines(0)
			} else {
				gMid = settleGoroutines(g0)
				h0 = heapInuseAfterGC()
			}
			r.startLoad()
		}
	}
	elapsed := time.Since(start)
	r.stopLoad()
	gEnd := settleGoroutines(g0)
	hEnd := heapInuseAfterGC()
	if st := r.rl.Status(); st.Timers != 1 || r.state.Timers.Len() != 1 {
		t.Errorf("timers after %d reloads: status %d, scheduled %d; want 1", reloads, st.Timers, r.state.Timers.Len())
	}

	r.failMu.Lock()
	msgs := slices.Clone(r.failMsgs)
	r.failMu.Unlock()
	if n := r.failures.Load(); n > 0 {
		t.Errorf("%d failed or wrong answers under reloads, first:\n  %s", n, strings.Join(msgs, "\n  "))
	}
	r.seenMu.Lock()
	seen := len(r.seen)
	r.seenMu.Unlock()
	valid := len(latencies) + 1
	maxLat := slices.Max(append(latencies, 0))
	t.Logf("%d reloads in %v (%d valid, %d broken), %d versions seen in answers of %d served",
		reloads, elapsed.Round(time.Millisecond), len(latencies), failed, seen, valid)
	t.Logf("answers: RPC ver %d, app %d, RPC extra %d found / %d not found (%.0f requests/s while reloading)",
		r.rpcOK.Load(), r.appOK.Load(), r.extraOK.Load(), r.extraNo.Load(), float64(r.requests())/elapsed.Seconds())
	t.Logf("reload latency: median %v, max %v", medianDuration(latencies).Round(time.Microsecond), maxLat.Round(time.Microsecond))
	t.Logf("goroutines (load stopped, drained): %d after reload %d, %d after reload %d, %d at the end",
		g0, goroutineBase, gMid, heapBase, gEnd)
	t.Logf("heap in use after GC: %.1f MiB after reload %d, %.1f MiB after reload %d (x%.2f)",
		float64(h0)/(1<<20), heapBase, float64(hEnd)/(1<<20), reloads, float64(hEnd)/float64(max(h0, 1)))
	if t.Failed() {
		return
	}
	if seen < valid/2 {
		t.Errorf("answers showed only %d of %d versions: the load did not follow the reloads", seen, valid)
	}
	if gEnd > g0+5 {
		t.Errorf("goroutines grew across reloads: %d after reload %d, %d at the end", g0, goroutineBase, gEnd)
	}
	if hEnd > 3*h0 {
		t.Errorf("heap in use grew from %d to %d bytes across %d reloads", h0, hEnd, reloads-heapBase)
	}

	t.Run("Watch", func(t *testing.T) { testReloadWatchUnderLoad(t, r) })
}

// testReloadWatchUnderLoad drives the same rig through Reloader.Watch:
// one file holds the app and ver (so every state of the directory is a
// consistent version), changes are written atomically, each waited for
// before the next.
func testReloadWatchUnderLoad(t *testing.T, r *reloadRig) {
	// Switch to one file per version with a direct reload first.
	r.mu.Lock()
	r.combined = true
	v := r.version + 1
	r.mu.Unlock()
	r.writeVersion(v, true)
	if err := r.reload(v); err != nil {
		t.Fatalf("reload of the combined layout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- r.rl.Watch(ctx, 30*time.Millisecond, 300*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-watchDone; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	r.startLoad()
	defer r.stopLoad()

	// serving calls ver in the generation the router serves (whose
	// registrations are committed too): polling it tells when a version
	// serves every kind of request.
	serving := func() string {
		gen := r.srv.Generation()
		if gen == nil {
			return ""
		}
		fn, ok := gen.Registrations.LookupRPC("ver")
		if !ok {
			return ""
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		out, err := fn(cctx, nil)
		if err != nil {
			return err.Error()
		}
		return string(out)
	}
	const steps = 16
	start := time.Now()
	for i := 1; i <= steps && r.failures.Load() == 0; i++ {
		if i%5 == 0 {
			failures := r.rl.Status().Failures
			where := r.writeBroken(i)
			pollUntil(t, "the watcher to refuse the broken file", func() (bool, string) {
				st := r.rl.Status()
				return st.Failures > failures, fmt.Sprintf("failures %d, last error %q", st.Failures, st.LastError)
			})
			if st := r.rl.Status(); !strings.Contains(st.LastError, where) {
				t.Errorf("watch step %d: LastError %q does not name %s", i, st.LastError, where)
			}
			r.awaitRequests(6)
			continue
		}
		r.mu.Lock()
		v := r.version + 1
		r.mu.Unlock()
		r.writeVersion(v, i%4 < 2)
		want := strconv.FormatInt(v, 10)
		pollUntil(t, fmt.Sprintf("the watcher to serve version %d", v), func() (bool, string) {
			got := serving()
			return got == want, got
		})
		r.committed.Store(v)
		r.awaitRequests(6)
	}
	t.Logf("%d changes through the watcher in %v; status: %d reloads, %d failures",
		steps, time.Since(start).Round(time.Millisecond), r.rl.Status().Reloads, r.rl.Status().Failures)
	r.stopLoad()
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if n := r.failures.Load(); n > 0 {
		t.Errorf("%d failed or wrong answers under watched reloads, first:\n  %s", n, strings.Join(r.failMsgs, "\n  "))
	}
}

// BenchmarkReloadUnderLoad reloads a new version of the scripts per
// iteration while the load runs; it reports reloads/s and the requests/s
// served meanwhile.
func BenchmarkReloadUnderLoad(b *testing.B) {
	r := newReloadRig(b)
	r.startLoad()
	r.awaitRequests(100)
	before := r.requests()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r.mu.Lock()
		v := r.version + 1
		r.mu.Unlock()
		r.writeVersion(v, i%4 < 2)
		if err := r.reload(v); err != nil {
			b.Fatalf("reload %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	served := r.requests() - before
	r.stopLoad()
	if n := r.failures.Load(); n > 0 {
		b.Errorf("%d failed or wrong answers, first: %q", n, r.failMsgs)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reloads/s")
	b.ReportMetric(float64(served)/elapsed.Seconds(), "requests/s")
}

// TestReloadSignalsNotLost raises a signal continuously while the file
// that handles it is reloaded: every signal queued is handled once, also
// those whose delivery found the handler of a generation being replaced.
func TestReloadSignalsNotLost(t *testing.T) {
	const reloads = 500
	dir := t.TempDir()
	src := func(v int) []byte {
		return fmt.Appendf(nil, "-- %d\nuwsgi.register_signal(30, \"\", function() uwsgi.cache_inc(\"handled\") end)\n", v)
	}
	if err := os.WriteFile(filepath.Join(dir, "sig.lua"), src(0), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &reloadLogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	state, err := api.NewState(api.StateConfig{SignalQueue: 1 << 16, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := host.NewServer(state)
	srv.Logger = log
	rl := &host.Reloader{Server: srv, Dir: dir, Logger: log,
		Engines: []api.Engine{lua.New(lua.Options{PoolSize: 1})}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rl.Reload(ctx, false); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }() // runs signal delivery
	defer func() {
		srv.Shutdown(ctx)
		<-served
		rl.Close(ctx)
		state.Close()
	}()

	var stop atomic.Bool
	var raised atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if err := state.Signals.Raise(30); err == nil {
					raised.Add(1)
				}
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	for i := 1; i <= reloads; i++ {
		if err := os.WriteFile(filepath.Join(dir, "sig.lua"), src(i), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := rl.Reload(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	handled := func() int64 {
		n, _ := state.Caches.Default().Num(ctx, []byte("handled"))
		return n
	}
	// A raise of a signal already pending is merged into it (counted).
	want := raised.Load() - state.Counters.SignalsCoalesced.Load()
	deadline := time.Now().Add(pollTimeout)
	for handled() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d signals raised across %d reloads, %d handled", want, reloads, handled())
	if got := handled(); got != want {
		t.Errorf("%d signals raised across %d reloads, %d handled: deliveries lost (or doubled) at the swaps\n%s",
			want, reloads, got, logs.tail(10))
	}
}

// TestReloadWatchBusyDirectory: a file of the directory that changes all
// the time (every 30 ms, with a 100 ms debounce) must not hold back the
// reload of a changed script for ever: Reloader.Watch waits for quiet at
// most one rescan interval after the first change.
func TestReloadWatchBusyDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Error(err)
		}
	}
	write("a.lua", `uwsgi.register_rpc("v", function() return "1" end)`)
	state, err := api.NewState(api.StateConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	srv := host.NewServer(state)
	rl := &host.Reloader{Server: srv, Dir: dir, Logger: slog.New(slog.DiscardHandler),
		Engines: []api.Engine{lua.New(lua.Options{PoolSize: 1})}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := rl.Reload(ctx, false); err != nil {
		t.Fatal(err)
	}
	defer rl.Close(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { rl.Watch(ctx, 100*time.Millisecond, 300*time.Millisecond) })
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			write("data.txt", strconv.Itoa(i))
			time.Sleep(30 * time.Millisecond)
		}
	})
	gen := rl.Status().Generation
	write("a.lua", `uwsgi.register_rpc("v", function() return "2" end)`)
	deadline := time.Now().Add(10 * time.Second)
	for rl.Status().Generation == gen && time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
	}
	if st := rl.Status(); st.Generation == gen {
		t.Errorf("a.lua changed 10 s ago, still not reloaded while another file keeps changing (reloads %d)", st.Reloads)
	}
}
