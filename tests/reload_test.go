package tests

// Hot reload and process reload of the scripthost binary, black box:
// the scripts directory watched and reloaded without a restart, broken
// scripts refused while the old generation keeps serving, SIGHUP, the
// operations listener's reload and status packets (and their refusal on a
// public listener), timers of replaced generations, the graceful restart
// on SIGUSR2 (listeners passed to a new process under load) and the
// draining shutdown on SIGTERM. Durations are measured and logged, never
// asserted; every wait is a bounded poll.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// pollTimeout bounds every wait for a reload, a restart or an exit.
const pollTimeout = 20 * time.Second

// opsSocketPath returns a unix socket path short enough for sun_path
// (t.TempDir() carries the test name and can be too long).
func opsSocketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shops-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ops.sock")
}

// startWithOps starts scripthost with an operations listener on a unix
// socket and waits until that socket accepts too.
func startWithOps(t *testing.T, files map[string]string, extra ...string) (*scripthostProc, string) {
	t.Helper()
	ops := opsSocketPath(t)
	bfiles := map[string][]byte{}
	for name, src := range files {
		bfiles[name] = []byte(src)
	}
	p := startScripthost(t, bfiles, false, append([]string{"--ops-socket", ops}, extra...)...)
	pollUntil(t, "the operations socket accepts", func() (bool, string) {
		c, err := net.DialTimeout("unix", ops, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return p, ops
}

// waitFor polls cond every 25 ms until it holds, failing the test after
// pollTimeout with cond's last description of what it saw.
func pollUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not the case after %v (last seen: %s)", what, pollTimeout, saw)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// callCtx is the context of one call made by a test.
func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// call calls fn on a fresh connection and returns its result or error.
func callFresh(addr, fn string, args ...string) (string, error) {
	c := uwsgi.NewClient(addr)
	defer c.Close()
	ctx, cancel := callCtx()
	defer cancel()
	return c.CallString(ctx, fn, args...)
}

// mustCall calls fn and fails the test on an error.
func mustCall(t *testing.T, addr, fn string, args ...string) string {
	t.Helper()
	got, err := callFresh(addr, fn, args...)
	if err != nil {
		t.Fatalf("RPC %s%q: %v", fn, args, err)
	}
	return got
}

// waitRPC polls fn until it answers want.
func waitRPC(t *testing.T, addr, fn, want string) {
	t.Helper()
	pollUntil(t, fmt.Sprintf("RPC %s to answer %q", fn, want), func() (bool, string) {
		got, err := callFresh(addr, fn)
		return err == nil && got == want, fmt.Sprintf("%q, %v", got, err)
	})
}

// opsStatus asks the operations listener for its status.
func opsStatus(t *testing.T, ops string) map[string]string {
	t.Helper()
	c := uwsgi.NewClient(ops)
	defer c.Close()
	ctx, cancel := callCtx()
	defer cancel()
	vars, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status on %s: %v", ops, err)
	}
	out := map[string]string{}
	for _, v := range vars {
		out[string(v.Key)] = string(v.Value)
	}
	return out
}

func mustAtoi(t *testing.T, what, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: %q is not a number", what, s)
	}
	return n
}

// opsReload asks the operations listener for a reload.
func opsReload(t *testing.T, ops string, brutal bool) error {
	t.Helper()
	c := uwsgi.NewClient(ops)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Reload(ctx, brutal)
}

// runScripthostCLI runs a scripthost client command and returns its output and exit
// status.
func runScripthostCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildScripthost(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("scripthost %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// cacheInt reads a decimal counter from the default cache (0 when absent).
func cacheInt(t *testing.T, addr, key string) int {
	t.Helper()
	c := uwsgi.NewClient(addr)
	defer c.Close()
	ctx, cancel := callCtx()
	defer cancel()
	n, err := c.CacheNum(ctx, key) // counters are uWSGI's 8-byte integers
	if errors.Is(err, uwsgi.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("cache num %s: %v", key, err)
	}
	return int(n)
}

// watchedApp is a version of a file serving an app and RPC functions.
func watchedApp(version, rpcName string, withGone bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "local V = %q\n", version)
	b.WriteString(`uwsgi.register_rpc("ver", function() return V end)` + "\n")
	fmt.Fprintf(&b, "uwsgi.register_rpc(%q, function() return %q .. \" \" .. V end)\n", rpcName, rpcName)
	if withGone {
		b.WriteString(`uwsgi.register_rpc("gone", function() return "still here" end)` + "\n")
	}
	// What a script sees of a function: nil once it is gone.
	b.WriteString(`uwsgi.register_rpc("probe", function(name) return tostring(uwsgi.call(name)) end)` + "\n")
	b.WriteString(`return function(env) return 200, {["Content-Type"] = "text/plain"}, "app v" .. V end` + "\n")
	return b.String()
}

// getApp sends GET path as a Lua WSAPI request (modifier1 6).
func getApp(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := uwsgi.NewClient(addr)
	defer c.Close()
	ctx, cancel := callCtx()
	defer cancel()
	req, _ := http.NewRequest("GET", "http://localhost"+path, nil)
	resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
	if err != nil {
		t.Fatalf("GET %s (modifier1 6): %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s (modifier1 6): reading the body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// TestReloadWatch: with --watch, a changed directory is served without a
// restart: new app answers and RPC results, removed functions gone,
// renamed ones moved, caches kept, a higher generation in the status.
func TestReloadWatch(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{"app.lua": watchedApp("1", "old_name", true)},
		"--watch-debounce", "50ms", "--watch-rescan", "500ms")
	if got := mustCall(t, p.Addr, "ver"); got != "1" {
		t.Fatalf("ver = %q, want 1", got)
	}
	if code, body := getApp(t, p.Addr, "/"); code != 200 || body != "app v1" {
		t.Fatalf("GET / = %d %q, want 200 app v1", code, body)
	}
	if got := mustCall(t, p.Addr, "old_name"); got != "old_name 1" {
		t.Fatalf("old_name = %q", got)
	}
	st1 := opsStatus(t, ops)
	gen1 := mustAtoi(t, "generation", st1["generation"])
	t.Logf("status before: generation %s, rpc %q, reloads %s", st1["generation"], st1["rpc"], st1["reloads"])
	c := uwsgi.NewClient(p.Addr)
	defer c.Close()
	ctx, cancel := callCtx()
	if err := c.CacheUpdate(ctx, "kept", []byte("set before the reload")); err != nil {
		t.Fatal(err)
	}
	cancel()

	start := time.Now()
	writeFile(t, p.Dir, "app.lua", watchedApp("2", "new_name", false))
	waitRPC(t, p.Addr, "ver", "2")
	t.Logf("the watcher served the new version %v after the write", time.Since(start).Round(time.Millisecond))

	if code, body := getApp(t, p.Addr, "/"); code != 200 || body != "app v2" {
		t.Errorf("GET / after the change = %d %q, want 200 app v2", code, body)
	}
	if got, err := callFresh(p.Addr, "new_name"); err != nil || got != "new_name 2" {
		t.Errorf("renamed function new_name = %q, %v", got, err)
	}
	for _, fn := range []string{"old_name", "gone"} {
		if got, err := callFresh(p.Addr, fn); !errors.Is(err, uwsgi.ErrNoResult) {
			t.Errorf("removed function %s = %q, %v; want no result", fn, got, err)
		}
		if got := mustCall(t, p.Addr, "probe", fn); got != "nil" {
			t.Errorf("uwsgi.call(%q) in the new scripts = %q, want nil", fn, got)
		}
	}
	ctx, cancel = callCtx()
	defer cancel()
	if got, err := c.CacheGet(ctx, "kept"); err != nil || string(got) != "set before the reload" {
		t.Errorf("cache item set before the reload = %q, %v", got, err)
	}
	st2 := opsStatus(t, ops)
	if gen2 := mustAtoi(t, "generation", st2["generation"]); gen2 <= gen1 {
		t.Errorf("generation after the reload = %d, want more than %d", gen2, gen1)
	}
	if rpc := " " + st2["rpc"] + " "; !strings.Contains(rpc, " new_name ") || strings.Contains(rpc, " old_name ") ||
		strings.Contains(rpc, " gone ") {
		t.Errorf("status rpc = %q, want new_name and neither old_name nor gone", st2["rpc"])
	}
	if st2["last_error"] != "" {
		t.Errorf("status last_error = %q after a good reload", st2["last_error"])
	}
	t.Logf("status after: generation %s, rpc %q, reloads %s, latency %s", st2["generation"], st2["rpc"],
		st2["reloads"], st2["latency"])

	// A file added to the directory, then removed.
	writeFile(t, p.Dir, "more.lua", `uwsgi.register_rpc("more", function() return "more" end)`+"\n")
	waitRPC(t, p.Addr, "more", "more")
	if err := os.Remove(filepath.Join(p.Dir, "more.lua")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "RPC more to disappear with its file", func() (bool, string) {
		got, err := callFresh(p.Addr, "more")
		return errors.Is(err, uwsgi.ErrNoResult), fmt.Sprintf("%q, %v", got, err)
	})
	if got := mustCall(t, p.Addr, "ver"); got != "2" {
		t.Errorf("ver after removing another file = %q, want 2", got)
	}
}

// TestReloadBrokenScript: a syntax error leaves the old generation
// serving, the status names file and line, fixing the file reloads.
func TestReloadBrokenScript(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{"app.lua": watchedApp("1", "f", false)},
		"--watch-debounce", "50ms", "--watch-rescan", "500ms")
	gen1 := opsStatus(t, ops)["generation"]

	writeFile(t, p.Dir, "app.lua", "local V = \"2\"\n\nuwsgi.register_rpc(\"ver\", function( return V end)\n")
	pollUntil(t, "the watcher's reload of the broken file to fail", func() (bool, string) {
		st := opsStatus(t, ops)
		return st["failures"] == "1", fmt.Sprintf("failures %s, last_error %q", st["failures"], st["last_error"])
	})
	st := opsStatus(t, ops)
	if st["generation"] != gen1 {
		t.Errorf("generation after a failed reload = %s, want %s (unchanged)", st["generation"], gen1)
	}
	if !strings.Contains(st["last_error"], "app.lua:3") {
		t.Errorf("status last_error = %q, want it to name app.lua:3", st["last_error"])
	}
	if got := mustCall(t, p.Addr, "ver"); got != "1" {
		t.Errorf("ver with a broken file in the directory = %q, want 1 (the old generation)", got)
	}
	if code, body := getApp(t, p.Addr, "/"); code != 200 || body != "app v1" {
		t.Errorf("GET / with a broken file in the directory = %d %q, want the old app", code, body)
	}

	// The command line says it too.
	out, errOut, code := runScripthostCLI(t, "status", ops)
	if code != 0 || !strings.Contains(out, "last_error:") || !strings.Contains(out, "app.lua:3") {
		t.Errorf("scripthost status: exit %d, output:\n%s%s", code, out, errOut)
	}
	out, errOut, code = runScripthostCLI(t, "reload", ops)
	if code != 1 || !strings.Contains(errOut, "app.lua:3") {
		t.Errorf("scripthost reload with a broken file: exit %d, want 1 naming app.lua:3\n%s%s", code, out, errOut)
	}
	t.Logf("scripthost reload with a broken file: %s", strings.TrimSpace(errOut))

	writeFile(t, p.Dir, "app.lua", watchedApp("3", "f", false))
	waitRPC(t, p.Addr, "ver", "3")
	st = opsStatus(t, ops)
	if st["last_error"] != "" || st["generation"] == gen1 {
		t.Errorf("after the fix: generation %s (was %s), last_error %q", st["generation"], gen1, st["last_error"])
	}
	if code, body := getApp(t, p.Addr, "/"); code != 200 || body != "app v3" {
		t.Errorf("GET / after the fix = %d %q", code, body)
	}
}

// TestReloadSIGHUP: without --watch only SIGHUP reloads.
func TestReloadSIGHUP(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{"app.lua": watchedApp("1", "f", false)}, "--watch=false")
	st := opsStatus(t, ops)
	writeFile(t, p.Dir, "app.lua", watchedApp("2", "f", false))
	// Nothing watches: the old version stays until the signal. (A check,
	// not a timing assertion: the status must not change by itself.)
	time.Sleep(300 * time.Millisecond)
	if got := mustCall(t, p.Addr, "ver"); got != "1" {
		t.Errorf("ver without --watch, before SIGHUP = %q, want 1", got)
	}
	if now := opsStatus(t, ops); now["generation"] != st["generation"] {
		t.Errorf("generation changed without a signal: %s -> %s", st["generation"], now["generation"])
	}
	if err := syscall.Kill(p.child.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRPC(t, p.Addr, "ver", "2")
	now := opsStatus(t, ops)
	if mustAtoi(t, "reloads", now["reloads"]) != mustAtoi(t, "reloads", st["reloads"])+1 {
		t.Errorf("reloads %s -> %s after one SIGHUP", st["reloads"], now["reloads"])
	}
	if code, body := getApp(t, p.Addr, "/"); code != 200 || body != "app v2" {
		t.Errorf("GET / after SIGHUP = %d %q", code, body)
	}
	if p.child.exited() {
		t.Fatalf("scripthost exited on SIGHUP: %v", p.child.exitErr())
	}
}

// slowFiles hold an RPC that takes a second and marks in the cache that
// it started.
var slowFiles = map[string]string{
	"slow.lua": `uwsgi.register_rpc("slow", function(tag)
  uwsgi.cache_update("started:" .. tag, "1")
  uwsgi.async_sleep(1)
  return "slept " .. tag
end)
`,
}

// startSlow starts the slow RPC on its own connection and waits until it
// runs; the result arrives on the returned channel.
func startSlow(t *testing.T, addr, tag string) <-chan string {
	t.Helper()
	res := make(chan string, 1)
	go func() {
		got, err := callFresh(addr, "slow", tag)
		res <- fmt.Sprintf("%q, %v", got, err)
	}()
	pollUntil(t, "the slow call "+tag+" to start", func() (bool, string) {
		n := cacheInt(t, addr, "started:"+tag)
		return n == 1, fmt.Sprint(n)
	})
	return res
}

// TestReloadPackets: reload requests on the operations listener confirm
// (gracefully draining a running call, or brutally); on the public
// listener they are refused and the server goes on.
func TestReloadPackets(t *testing.T) {
	files := map[string]string{"app.lua": watchedApp("1", "f", false)}
	for k, v := range slowFiles {
		files[k] = v
	}
	p, ops := startWithOps(t, files, "--watch=false")
	gen0 := mustAtoi(t, "generation", opsStatus(t, ops)["generation"])

	writeFile(t, p.Dir, "app.lua", watchedApp("2", "f", false))
	out, errOut, code := runScripthostCLI(t, "reload", ops)
	if code != 0 || strings.TrimSpace(out) != "reloaded" {
		t.Fatalf("scripthost reload %s: exit %d\n%s%s", ops, code, out, errOut)
	}
	// The reply confirms the new scripts serve: no polling needed.
	if got := mustCall(t, p.Addr, "ver"); got != "2" {
		t.Errorf("ver right after a confirmed reload = %q, want 2", got)
	}
	gen1 := mustAtoi(t, "generation", opsStatus(t, ops)["generation"])
	if gen1 <= gen0 {
		t.Errorf("generation %d -> %d after a confirmed reload", gen0, gen1)
	}

	// Refused on the public listener, which keeps serving.
	for _, args := range [][]string{{"reload", p.Addr}, {"reload", "--brutal", p.Addr}, {"status", p.Addr}} {
		out, errOut, code := runScripthostCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "operations listener") {
			t.Errorf("scripthost %s on the public listener: exit %d, want 1 saying operations listener\n%s%s",
				strings.Join(args, " "), code, out, errOut)
		} else {
			t.Logf("scripthost %s on the public listener: %s", strings.Join(args, " "), strings.TrimSpace(errOut))
		}
		if got := mustCall(t, p.Addr, "ver"); got != "2" {
			t.Errorf("ver after a refused %s = %q", args[0], got)
		}
	}
	if g := mustAtoi(t, "generation", opsStatus(t, ops)["generation"]); g != gen1 {
		t.Errorf("generation changed by refused requests: %d -> %d", gen1, g)
	}
	if err := opsReload(t, p.Addr, false); !errors.Is(err, uwsgi.ErrRefused) {
		t.Errorf("Client.Reload on the public listener: %v, want ErrRefused", err)
	}

	// A graceful reload lets a running call of the old scripts finish.
	slow := startSlow(t, p.Addr, "graceful")
	writeFile(t, p.Dir, "app.lua", watchedApp("3", "f", false))
	if err := opsReload(t, ops, false); err != nil {
		t.Fatalf("graceful reload with a call running: %v", err)
	}
	if got := mustCall(t, p.Addr, "ver"); got != "3" {
		t.Errorf("ver after the graceful reload = %q", got)
	}
	if got := <-slow; got != `"slept graceful", <nil>` {
		t.Errorf("call running across a graceful reload = %s, want it to finish", got)
	}

	// --brutal does not wait for the running call; whatever that call
	// gets, the server serves the new scripts and goes on.
	slow = startSlow(t, p.Addr, "brutal")
	writeFile(t, p.Dir, "app.lua", watchedApp("4", "f", false))
	start := time.Now()
	out, errOut, code = runScripthostCLI(t, "reload", "--brutal", ops)
	if code != 0 || strings.TrimSpace(out) != "reloaded" {
		t.Fatalf("scripthost reload --brutal: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("brutal reload with a call running confirmed after %v", time.Since(start).Round(time.Millisecond))
	if got := mustCall(t, p.Addr, "ver"); got != "4" {
		t.Errorf("ver after the brutal reload = %q", got)
	}
	t.Logf("call running across the brutal reload: %s", <-slow)
	if got := mustCall(t, p.Addr, "ver"); got != "4" {
		t.Errorf("ver after the brutally replaced call ended = %q", got)
	}
	st := opsStatus(t, ops)
	if st["failures"] != "0" || st["last_error"] != "" {
		t.Errorf("status after good reloads: failures %s, last_error %q", st["failures"], st["last_error"])
	}
	if p.child.exited() {
		t.Fatalf("scripthost exited: %v", p.child.exitErr())
	}
}

// tickLua is a file with one timer (every 0.1 s) that counts its ticks in
// the cache; rev makes every version differ.
func tickLua(rev int, timer bool) string {
	s := fmt.Sprintf("-- revision %d\nuwsgi.register_rpc(\"rev\", function() return %q end)\n", rev, strconv.Itoa(rev))
	if timer {
		s += "uwsgi.register_signal(17, \"\", function() uwsgi.cache_inc(\"ticks\") end)\nuwsgi.add_timer(17, 0.1)\n"
	}
	return s
}

// TestReloadTimers: after N reloads of a file with one timer there is one
// timer (the tick count over a window is that of one timer), and a reload
// that removes the timer stops it.
func TestReloadTimers(t *testing.T) {
	const reloads = 6
	const interval = 100 * time.Millisecond
	p, ops := startWithOps(t, map[string]string{"tick.lua": tickLua(0, true)}, "--watch=false")
	pollUntil(t, "the timer to tick", func() (bool, string) {
		n := cacheInt(t, p.Addr, "ticks")
		return n >= 2, fmt.Sprint(n)
	})
	for i := 1; i <= reloads; i++ {
		writeFile(t, p.Dir, "tick.lua", tickLua(i, true))
		if err := opsReload(t, ops, false); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if got := mustCall(t, p.Addr, "rev"); got != strconv.Itoa(i) {
			t.Fatalf("rev after reload %d = %q", i, got)
		}
	}
	if st := opsStatus(t, ops); st["timers"] != "1" {
		t.Errorf("status timers after %d reloads = %s, want 1", reloads, st["timers"])
	}
	// Count ticks over a window: one timer gives window/interval of them,
	// duplicates a multiple. The bounds are on counts, not on time.
	before, start := cacheInt(t, p.Addr, "ticks"), time.Now()
	time.Sleep(2 * time.Second)
	after, window := cacheInt(t, p.Addr, "ticks"), time.Since(start)
	ticks := after - before
	want := float64(window) / float64(interval)
	t.Logf("after %d reloads: %d ticks in %v (one timer: %.1f)", reloads, ticks, window.Round(time.Millisecond), want)
	if float64(ticks) < 0.5*want || float64(ticks) > 1.5*want {
		t.Errorf("%d ticks in %v, want about %.0f (one timer every %v): timers of replaced generations still run?",
			ticks, window.Round(time.Millisecond), want, interval)
	}

	// Remove the timer: the counter stops, give or take a tick in flight.
	writeFile(t, p.Dir, "tick.lua", tickLua(reloads+1, false))
	if err := opsReload(t, ops, false); err != nil {
		t.Fatal(err)
	}
	stopped := cacheInt(t, p.Addr, "ticks")
	last, stable := stopped, 0
	for i := 0; i < 40 && stable < 3; i++ {
		time.Sleep(2 * interval)
		n := cacheInt(t, p.Addr, "ticks")
		if n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
	}
	if stable < 3 || last-stopped > 1 {
		t.Errorf("ticks went on after the timer was removed: %d at the reload, %d later (stable: %v)",
			stopped, last, stable >= 3)
	}
	if st := opsStatus(t, ops); st["timers"] != "0" {
		t.Errorf("status timers after removing the timer = %s, want 0", st["timers"])
	}
	if stopped < before {
		t.Errorf("the cache counter went back across reloads: %d then %d", before, stopped)
	}
}

// pidFiles register an RPC answering the serving process's pid.
var pidFiles = map[string]string{
	"pid.lua": `uwsgi.register_rpc("pid", function() return tostring(uwsgi.masterpid()) end)` + "\n",
}

// restartLoad calls the pid RPC in a loop until stopped and counts the
// answers per pid and the failures.
type restartLoad struct {
	stop     atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	perPID   map[string]int
	failures []string
	calls    atomic.Int64
}

func (l *restartLoad) record(kind, got string, err error) {
	l.calls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || got == "" {
		l.failures = append(l.failures, fmt.Sprintf("%s: %q, %v", kind, got, err))
		return
	}
	l.perPID[kind+" "+got]++
}

func (l *restartLoad) count(kind, pid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perPID[kind+" "+pid]
}

// run starts a fresh-connection caller and a pooled one.
func (l *restartLoad) run(addr string) {
	l.perPID = map[string]int{}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		for !l.stop.Load() {
			got, err := callFresh(addr, "pid")
			l.record("fresh", got, err)
		}
	}()
	go func() {
		defer l.wg.Done()
		c := uwsgi.NewClient(addr)
		defer c.Close()
		for !l.stop.Load() {
			ctx, cancel := callCtx()
			got, err := c.CallString(ctx, "pid")
			cancel()
			l.record("pooled", got, err)
		}
	}()
}

// stopProc ends a process this test does not own as a child by PID:
// SIGTERM, a bounded wait, SIGKILL; it reaps it when it is an orphan
// adopted by this test binary (the harness makes it a subreaper).
func stopProc(t *testing.T, p procInfo) {
	for _, step := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if !p.alive() {
			break
		}
		p.signal(step)
		deadline := time.Now().Add(15 * time.Second)
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if step == syscall.SIGKILL || !p.alive() {
			break
		}
		t.Logf("PID %d still running 15 s after SIGTERM: sending SIGKILL", p.pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.isZombie() && time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil); err != nil || pid == p.pid {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.alive() {
		t.Errorf("PID %d still running", p.pid)
	}
}

// waitGone waits (bounded) until a process that is not the harness's
// child is gone, and reaps it when it is an orphan adopted by this test
// binary; it returns its exit status (-1 when it was not ours to reap).
func waitGone(t *testing.T, p procInfo) int {
	t.Helper()
	pollUntil(t, fmt.Sprintf("PID %d to exit", p.pid), func() (bool, string) { return !p.alive(), "running" })
	for p.isZombie() {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
		if err != nil {
			break
		}
		if pid == p.pid {
			return ws.ExitStatus()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// settleBeforeRestart makes sure the connections made so far to the
// listeners (the start-up checks included) have been accepted, so that no
// accept runs while the restart passes the listeners on: see
// TestGracefulRestartConnectionAtSignal for what such an accept does.
func settleBeforeRestart(t *testing.T, ops string) {
	t.Helper()
	opsStatus(t, ops)
	time.Sleep(200 * time.Millisecond)
}

// spawnWatch records the processes started by the serving scripthost, so
// that every one of them is stopped by PID when the test ends.
type spawnWatch struct {
	mu      sync.Mutex
	spawned map[int]procInfo
}

func newSpawnWatch(t *testing.T) *spawnWatch {
	w := &spawnWatch{spawned: map[int]procInfo{}}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, d := range w.spawned {
			stopProc(t, d)
		}
	})
	return w
}

func (w *spawnWatch) collect(parent int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range descendants(parent) {
		if _, ok := w.spawned[d.pid]; !ok {
			w.spawned[d.pid] = d
		}
	}
}

func (w *spawnWatch) get(pid int) (procInfo, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.spawned[pid]
	return p, ok
}

func (w *spawnWatch) add(p procInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spawned[p.pid] = p
}

// TestGracefulRestart: SIGUSR2 starts a new process on the same listeners
// and the old one drains and exits with status 0, while callers on fresh
// and on pooled connections see no failure at all; twice in a row (the
// second restart is of a process that inherited its listeners).
func TestGracefulRestart(t *testing.T) {
	// The serving process's own handoff: without a supervisor, which
	// would stay (TestSupervisedSignals covers USR2 through it).
	p, ops := startWithOps(t, pidFiles, "--supervise=false", "--watch=false", "--shutdown-timeout", "10s")
	servingPID := strconv.Itoa(p.child.pid())
	if got := mustCall(t, p.Addr, "pid"); got != servingPID {
		t.Fatalf("pid RPC = %q, want the child's PID %s", got, servingPID)
	}
	spawn := newSpawnWatch(t)
	load := &restartLoad{}
	load.run(p.Addr)
	defer func() {
		load.stop.Store(true)
		load.wg.Wait()
	}()
	pollUntil(t, "both callers to get answers from the first process", func() (bool, string) {
		f, pl := load.count("fresh", servingPID), load.count("pooled", servingPID)
		return f >= 20 && pl >= 20, fmt.Sprintf("fresh %d, pooled %d", f, pl)
	})

	// The load keeps the uwsgi listener busy, not the operations one.
	settleBeforeRestart(t, ops)
	var serving procInfo // the process serving now, when not the harness's child
	for restart := 1; restart <= 2; restart++ {
		oldPID := servingPID
		old, _ := strconv.Atoi(oldPID)
		start := time.Now()
		if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		pollUntil(t, "another process to answer", func() (bool, string) {
			spawn.collect(old)
			got, err := callFresh(p.Addr, "pid")
			if err == nil && got != oldPID {
				servingPID = got
				return true, ""
			}
			return false, fmt.Sprintf("%q, %v", got, err)
		})
		served := time.Since(start)
		// The pid comes from the process itself (uwsgi.masterpid); it is
		// the old process's child, or this binary's once the old one
		// exited (the harness makes the test binary a subreaper).
		n, _ := strconv.Atoi(servingPID)
		_, ppid, startTime, ok := readStat(n)
		next := procInfo{pid: n, start: startTime}
		if ok {
			spawn.add(next) // it serves this test's port: stop it at the end in any case
		}
		if !ok || (ppid != old && ppid != os.Getpid()) {
			t.Fatalf("restart %d: the new process (PID %s, parent %d) is not one the old process %s started",
				restart, servingPID, ppid, oldPID)
		}
		if restart == 1 {
			pollUntil(t, "the old process to exit", func() (bool, string) { return p.child.exited(), "running" })
			if err := p.child.waitErr; err != nil {
				t.Errorf("restart %d: old process exit: %v, want status 0", restart, err)
			}
		} else if status := waitGone(t, serving); status != 0 {
			t.Errorf("restart %d: old process %s exit status %d, want 0", restart, oldPID, status)
		}
		exited := time.Since(start)
		serving = next
		pollUntil(t, "both callers to get answers from the new process", func() (bool, string) {
			f, pl := load.count("fresh", servingPID), load.count("pooled", servingPID)
			return f >= 50 && pl >= 50, fmt.Sprintf("fresh %d, pooled %d", f, pl)
		})
		t.Logf("restart %d: new process %s served after %v, old %s gone after %v",
			restart, servingPID, served.Round(time.Millisecond), oldPID, exited.Round(time.Millisecond))
	}
	load.stop.Store(true)
	load.wg.Wait()

	st := opsStatus(t, ops)
	if mustAtoi(t, "generation", st["generation"]) < 1 || !strings.Contains(st["rpc"], "pid") {
		t.Errorf("status of the new process: %v", st)
	}
	if got := mustCall(t, p.Addr, "pid"); got != servingPID {
		t.Errorf("pid after the restarts = %q, want %s", got, servingPID)
	}
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("calls %d: %v", load.calls.Load(), load.perPID)
	if len(load.failures) > 0 {
		t.Errorf("%d of %d calls failed across the restarts, first: %q", len(load.failures), load.calls.Load(),
			load.failures[:min(len(load.failures), 10)])
	}
}

// TestGracefulRestartBrokenScripts: when the new process cannot load the
// scripts, the restart fails and the old process keeps serving, without a
// failed call.
func TestGracefulRestartBrokenScripts(t *testing.T) {
	files := map[string]string{}
	for k, v := range pidFiles {
		files[k] = v
	}
	p, ops := startWithOps(t, files, "--supervise=false", "--watch=false", "--shutdown-timeout", "10s")
	pid := strconv.Itoa(p.child.pid())
	spawn := newSpawnWatch(t)
	load := &restartLoad{}
	load.run(p.Addr)
	defer func() {
		load.stop.Store(true)
		load.wg.Wait()
	}()
	writeFile(t, p.Dir, "broken.lua", "local x = = 1\n")
	settleBeforeRestart(t, ops)
	if err := syscall.Kill(p.child.pid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the restart to fail", func() (bool, string) {
		spawn.collect(p.child.pid())
		return strings.Contains(tailFile(p.Console, 0), "restart failed"), tailFile(p.Console, 3)
	})
	pollUntil(t, "more answers after the failed restart", func() (bool, string) {
		n := load.count("pooled", pid)
		return n >= 50, fmt.Sprint(n)
	})
	load.stop.Store(true)
	load.wg.Wait()
	if p.child.exited() {
		t.Fatalf("the old process exited after a failed restart: %v", p.child.exitErr())
	}
	if got := mustCall(t, p.Addr, "pid"); got != pid {
		t.Errorf("pid after the failed restart = %q, want %s", got, pid)
	}
	if st := opsStatus(t, ops); !strings.Contains(st["rpc"], "pid") {
		t.Errorf("status after the failed restart: %v", st)
	}
	if !strings.Contains(tailFile(p.Console, 0), "broken.lua:1") {
		t.Errorf("the new process's error does not name broken.lua:1:\n%s", tailFile(p.Console, 10))
	}
	load.mu.Lock()
	defer load.mu.Unlock()
	t.Logf("calls %d: %v", load.calls.Load(), load.perPID)
	if len(load.failures) > 0 {
		t.Errorf("%d of %d calls failed across the failed restart, first: %q", len(load.failures), load.calls.Load(),
			load.failures[:min(len(load.failures), 10)])
	}
	// And it still stops on SIGTERM, with status 0.
	start := time.Now()
	if err := syscall.Kill(p.child.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "scripthost to exit on SIGTERM after a failed restart", func() (bool, string) {
		return p.child.exited(), tailFile(p.Console, 3)
	})
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if err := p.child.waitErr; err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, tailFile(p.Console, 20))
	}
}

// TestGracefulRestartQuietAfterStartup: calls that arrive while the new
// process loads its scripts, then silence. The old process must still
// drain and exit on its own (no further connection needed), and the next
// call must be answered. Passing listeners to a child through
// exec.Cmd.ExtraFiles puts them in blocking mode (File.Fd), a flag shared
// with the old process's own listeners; until the new process took them
// over, an accept of the old one blocked in the kernel, and closing the
// listener at shutdown waited for the next connection (past
// --shutdown-timeout), which was then accepted after the shutdown began
// and dropped. restart now restores non-blocking mode right after Start.
func TestGracefulRestartQuietAfterStartup(t *testing.T) {
	// Loading takes a while in each Lua state: a window to call into.
	files := map[string]string{
		"pid.lua": "local t = os.clock() while os.clock() - t < 0.1 do end\n" + pidFiles["pid.lua"],
	}
	p, ops := startWithOps(t, files, "--supervise=false", "--watch=false", "--shutdown-timeout", "10s")
	oldPID := strconv.Itoa(p.child.pid())
	if got := mustCall(t, p.Addr, "pid"); got != oldPID {
		t.Fatalf("pid = %q, want %s", got, oldPID)
	}
	settleBeforeRestart(t, ops)
	if err := syscall.Kill(p.child.pid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	spawn := newSpawnWatch(t)
	pollUntil(t, "the new process to start", func() (bool, string) {
		return strings.Contains(tailFile(p.Console, 0), "restarting: new process started"), tailFile(p.Console, 2)
	})
	spawn.collect(p.child.pid()) // it loads its scripts for a while: still the old one's child
	for i := 0; i < 3; i++ {
		got, err := callFresh(p.Addr, "pid")
		if err != nil || got != oldPID {
			t.Logf("call %d while the new process loads: %q, %v (wanted the old process)", i, got, err)
		}
	}
	// Silence: the old process hands over and exits by itself.
	start := time.Now()
	pollUntil(t, "the old process to exit with no more connections coming", func() (bool, string) {
		return p.child.exited(), tailFile(p.Console, 2)
	})
	t.Logf("old process exited %v after the last call", time.Since(start).Round(time.Millisecond))
	if err := p.child.waitErr; err != nil {
		t.Errorf("old process exit: %v, want status 0", err)
	}
	got, err := callFresh(p.Addr, "pid")
	if err != nil || got == oldPID {
		t.Fatalf("call after the restart = %q, %v; want the new process's pid", got, err)
	}
	n, _ := strconv.Atoi(got)
	if _, ok := spawn.get(n); !ok {
		t.Errorf("the new process (PID %s) is not the one the old process started", got)
	}
}

// TestGracefulRestartConnectionAtSignal: a connection to the operations
// listener right before SIGUSR2 (as `scripthost status` then `kill -USR2`
// does), then silence there: the old process must still exit on its own.
// (Passing the listeners must not switch them to blocking mode, a flag the
// old process's listeners share: a blocking accept would hold its shutdown
// until another connection came, and drop that one.) The test tries
// several restarts, with busy goroutines competing for the CPU.
func TestGracefulRestartConnectionAtSignal(t *testing.T) {
	p, ops := startWithOps(t, pidFiles, "--supervise=false", "--watch=false", "--shutdown-timeout", "2s")
	spawn := newSpawnWatch(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	serving := procInfo{pid: p.child.pid()}
	for attempt := 1; attempt <= 8; attempt++ {
		if c, err := net.Dial("unix", ops); err == nil {
			c.Close()
		}
		if err := syscall.Kill(serving.pid, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		var next string
		pollUntil(t, "another process to answer", func() (bool, string) {
			spawn.collect(serving.pid)
			got, err := callFresh(p.Addr, "pid")
			next = got
			return err == nil && got != strconv.Itoa(serving.pid), fmt.Sprintf("%q, %v", got, err)
		})
		n, _ := strconv.Atoi(next)
		_, _, st, _ := readStat(n)
		newProc := procInfo{pid: n, start: st}
		spawn.add(newProc)
		gone := func() bool {
			if attempt == 1 {
				return p.child.exited()
			}
			return !serving.alive()
		}
		deadline := time.Now().Add(10 * time.Second) // --shutdown-timeout is 2 s
		for !gone() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !gone() {
			t.Fatalf("attempt %d: the old process %d still runs 10 s after the new one %d served (shutdown timeout 2 s)",
				attempt, serving.pid, n)
		}
		if attempt > 1 {
			waitGone(t, serving)
		}
		serving = newProc
	}
}

// TestReloadWatchSymlinkedDir: --scripts may be a symlink (a release
// directory switched by deployments): edits in its target are reloaded,
// and so is a switch of the link to another directory.
func TestReloadWatchSymlinkedDir(t *testing.T) {
	base := t.TempDir()
	rel1, rel2 := filepath.Join(base, "release1"), filepath.Join(base, "release2")
	for _, d := range []string{rel1, rel2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, rel1, "app.lua", watchedApp("1", "f", false))
	link := filepath.Join(base, "scripts")
	if err := os.Symlink(rel1, link); err != nil {
		t.Fatal(err)
	}
	p, _ := startWithOps(t, nil, "--scripts", link, "--watch-debounce", "50ms", "--watch-rescan", "300ms")
	if got := mustCall(t, p.Addr, "ver"); got != "1" {
		t.Fatalf("ver = %q, want 1", got)
	}
	writeFile(t, rel1, "app.lua", watchedApp("2", "f", false))
	waitRPC(t, p.Addr, "ver", "2")

	// Switch the link atomically, as deployment tools do.
	writeFile(t, rel2, "app.lua", watchedApp("3", "f", false))
	tmp := filepath.Join(base, "scripts.new")
	if err := os.Symlink(rel2, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	waitRPC(t, p.Addr, "ver", "3")
	writeFile(t, rel2, "app.lua", watchedApp("4", "f", false))
	waitRPC(t, p.Addr, "ver", "4")
}

// TestReloadMountedAppRemoved: a reload that would leave a --mount
// without its app fails and the old generation keeps serving it.
func TestReloadMountedAppRemoved(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{
		"app.lua":   watchedApp("1", "f", false),
		"admin.lua": `return function(env) return 200, {}, "admin " .. env.PATH_INFO end` + "\n",
	}, "--watch=false", "--mount", "/admin=admin")
	if code, body := getApp(t, p.Addr, "/admin/x"); code != 200 || body != "admin /x" {
		t.Fatalf("GET /admin/x = %d %q", code, body)
	}
	if err := os.Remove(filepath.Join(p.Dir, "admin.lua")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.Dir, "app.lua", watchedApp("2", "f", false))
	err := opsReload(t, ops, false)
	if err == nil || !strings.Contains(err.Error(), "/admin=admin") {
		t.Errorf("reload without the mounted app: %v, want an error naming --mount /admin=admin", err)
	}
	if code, body := getApp(t, p.Addr, "/admin/x"); code != 200 || body != "admin /x" {
		t.Errorf("GET /admin/x after the failed reload = %d %q, want the old app", code, body)
	}
	if got := mustCall(t, p.Addr, "ver"); got != "1" {
		t.Errorf("ver after the failed reload = %q, want 1", got)
	}
	st := opsStatus(t, ops)
	if !strings.Contains(st["last_error"], "admin") || st["failures"] != "1" {
		t.Errorf("status after the failed reload: failures %s, last_error %q", st["failures"], st["last_error"])
	}
}

// TestReloadRawPacket: a client without the scripthost extension (a raw
// [98, 0, 0, 0] packet, as uWSGI tools send) gets [98, 0, 0, 1] from the
// operations listener once the new scripts serve.
func TestReloadRawPacket(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{"app.lua": watchedApp("1", "f", false)}, "--watch=false")
	writeFile(t, p.Dir, "app.lua", watchedApp("2", "f", false))
	c, err := net.DialTimeout("unix", ops, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte{98, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, []byte{98, 0, 0, 1}) {
		t.Errorf("raw reload packet: got % x, %v; want 62 00 00 01", got, err)
	}
	if got := mustCall(t, p.Addr, "ver"); got != "2" {
		t.Errorf("ver after the confirmed raw reload = %q, want 2", got)
	}
}

// TestSIGTERMDrain: on SIGTERM a running request completes and the
// process exits with status 0.
func TestSIGTERMDrain(t *testing.T) {
	p, _ := startWithOps(t, slowFiles, "--shutdown-timeout", "15s")
	slow := startSlow(t, p.Addr, "term")
	start := time.Now()
	if err := syscall.Kill(p.child.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-slow; got != `"slept term", <nil>` {
		t.Errorf("call running at SIGTERM = %s, want it to complete", got)
	}
	pollUntil(t, "scripthost to exit after SIGTERM", func() (bool, string) { return p.child.exited(), "running" })
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if err := p.child.waitErr; err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, tailFile(p.Console, 20))
	}
}
