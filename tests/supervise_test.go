package tests

// End-to-end tests of the supervisor: `scripthost serve` is a parent that
// holds the sockets and a serving child it replaces when it dies.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// refusalLoad calls the pid RPC on fresh connections from several
// goroutines, a bounded number of times, counting refused connections
// apart from other failures (a call in flight in a killed process fails;
// a connection must never be refused).
type refusalLoad struct {
	stop     atomic.Bool
	wg       sync.WaitGroup
	calls    atomic.Int64
	refused  atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	firstErr []string
	finished sync.Once
}

func startRefusalLoad(addr string, workers, maxCalls int) *refusalLoad {
	l := &refusalLoad{}
	for range workers {
		l.wg.Go(func() {
			for i := 0; i < maxCalls && !l.stop.Load(); i++ {
				_, err := callFresh(addr, "pid")
				l.calls.Add(1)
				switch {
				case err == nil:
				case errors.Is(err, syscall.ECONNREFUSED):
					l.refused.Add(1)
				default:
					l.failed.Add(1)
				}
				if err != nil {
					l.mu.Lock()
					if len(l.firstErr) < 5 {
						l.firstErr = append(l.firstErr, err.Error())
					}
					l.mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond) // a steady load, not a flood on a shared machine
			}
		})
	}
	return l
}

// finish stops the load (once) and checks that nothing was refused.
func (l *refusalLoad) finish(t *testing.T) {
	t.Helper()
	l.finished.Do(func() { l.check(t) })
}

func (l *refusalLoad) check(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	t.Logf("calls %d, refused %d, failed otherwise %d %q", l.calls.Load(), l.refused.Load(), l.failed.Load(), l.firstErr)
	if n := l.refused.Load(); n != 0 {
		t.Errorf("%d connections refused, want 0", n)
	}
}

// servingChild returns the serving process's pid (the pid RPC answers
// os.Getpid of the process that runs the script) and checks that the
// supervisor is its parent.
func servingChild(t *testing.T, p *scripthostProc) int {
	t.Helper()
	pid, err := strconv.Atoi(mustCall(t, p.Addr, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	if pid == p.child.pid() {
		t.Fatalf("the process started by the test (%d) serves itself, want a supervised child", pid)
	}
	if _, ppid, _, ok := readStat(pid); !ok || ppid != p.child.pid() {
		t.Fatalf("serving process %d has parent %d, want the supervisor %d", pid, ppid, p.child.pid())
	}
	return pid
}

func procOf(pid int) procInfo {
	_, _, start, _ := readStat(pid)
	return procInfo{pid: pid, start: start}
}

// TestSupervisedCrash: SIGKILL of the serving process under load loses no
// connection, no cache item and not the supervisor; SIGTERM to the
// supervisor then stops the whole tree.
func TestSupervisedCrash(t *testing.T) {
	p := startScripthost(t, map[string][]byte{"pid.lua": []byte(pidFiles["pid.lua"])}, false, "--watch=false")
	supervisor := p.child.pid()
	first := servingChild(t, p)

	c := uwsgi.NewClient(p.Addr)
	defer c.Close()
	ctx, cancel := callCtx()
	defer cancel()
	items := map[string]string{}
	for i := range 50 {
		k, v := fmt.Sprint("key", i), fmt.Sprint("value ", i)
		items[k] = v
		if err := c.CacheSet(ctx, k, []byte(v)); err != nil {
			t.Fatalf("cache set %s: %v", k, err)
		}
	}
	if err := c.CacheSet(ctx, "ttl", []byte("t"), uwsgi.Expires(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	load := startRefusalLoad(p.Addr, 4, 3000)
	defer load.finish(t)
	pollUntil(t, "the load to get answers", func() (bool, string) {
		return load.calls.Load() >= 40, fmt.Sprint(load.calls.Load())
	})

	killed := time.Now()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var next string
	pollUntil(t, "a new serving process to answer", func() (bool, string) {
		got, err := callFresh(p.Addr, "pid")
		next = got
		return err == nil && got != strconv.Itoa(first), fmt.Sprintf("%q, %v", got, err)
	})
	served := time.Since(killed)
	t.Logf("a new serving process %s answered %v after SIGKILL of %d", next, served.Round(time.Millisecond), first)
	if served > time.Second {
		t.Errorf("the new serving process answered %v after the crash, want within 1 s", served)
	}
	if p.child.exited() {
		t.Fatalf("the supervisor exited: %v", p.child.exitErr())
	}
	second := servingChild(t, p)
	if p.child.pid() != supervisor {
		t.Errorf("supervisor pid changed")
	}
	pollUntil(t, "the load to get answers from the new process", func() (bool, string) {
		n := load.calls.Load()
		return n >= 200, fmt.Sprint(n)
	})
	load.finish(t)

	c = uwsgi.NewClient(p.Addr)
	defer c.Close()
	for k, want := range items {
		if got, err := c.CacheGet(ctx, k); err != nil || string(got) != want {
			t.Errorf("cache get %s after the crash = %q, %v; want %q", k, got, err, want)
		}
	}
	if _, exp, err := c.CacheGetItem(ctx, "ttl"); err != nil || exp.IsZero() {
		t.Errorf("cache item with a TTL after the crash: expires %v, %v; want it kept with its expiry", exp, err)
	}
	c.Close()
	log := tailFile(p.Console, 0)
	if !strings.Contains(log, "serving process died; starting another") || !strings.Contains(log, "restarts=1") {
		t.Errorf("no log line for the restart:\n%s", tailFile(p.Console, 20))
	}

	child := procOf(second)
	if err := syscall.Kill(supervisor, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the supervisor to exit on SIGTERM", func() (bool, string) { return p.child.exited(), tailFile(p.Console, 3) })
	if err := p.child.waitErr; err != nil {
		t.Errorf("supervisor exit: %v, want status 0", err)
	}
	if child.alive() {
		t.Errorf("the serving process %d outlived its supervisor", second)
	}
}

// TestSupervisedSignals: HUP through the supervisor reloads the serving
// process, USR2 replaces it with a new one, with no refused connection
// and no failed call.
func TestSupervisedSignals(t *testing.T) {
	files := map[string]string{"pid.lua": pidFiles["pid.lua"], "app.lua": watchedApp("1", "f", false)}
	p, ops := startWithOps(t, files, "--watch=false", "--shutdown-timeout", "10s")
	supervisor := p.child.pid()
	first := servingChild(t, p)
	settleBeforeRestart(t, ops)
	load := startRefusalLoad(p.Addr, 3, 5000)
	defer load.finish(t)

	writeFile(t, p.Dir, "app.lua", watchedApp("2", "f", false))
	if err := syscall.Kill(supervisor, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRPC(t, p.Addr, "ver", "2")
	if got := servingChild(t, p); got != first {
		t.Errorf("SIGHUP replaced the serving process %d with %d, want a reload in place", first, got)
	}

	old := procOf(first)
	if err := syscall.Kill(supervisor, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "a new serving process to answer", func() (bool, string) {
		got, err := callFresh(p.Addr, "pid")
		return err == nil && got != strconv.Itoa(first), fmt.Sprintf("%q, %v", got, err)
	})
	pollUntil(t, "the old serving process to exit", func() (bool, string) { return !old.alive(), "running" })
	servingChild(t, p) // the supervisor's child
	if got := mustCall(t, p.Addr, "ver"); got != "2" {
		t.Errorf("ver after the upgrade = %q, want 2", got)
	}
	if p.child.exited() {
		t.Fatalf("the supervisor exited: %v", p.child.exitErr())
	}
	load.finish(t)
	if n := load.failed.Load(); n != 0 {
		t.Errorf("%d calls failed across the reload and the upgrade, want 0", n)
	}
	if strings.Contains(tailFile(p.Console, 0), "died") {
		t.Errorf("a serving process died:\n%s", tailFile(p.Console, 20))
	}
}

// TestUnsupervised: --supervise=false serves from the process itself.
func TestUnsupervised(t *testing.T) {
	p := startScripthost(t, map[string][]byte{"pid.lua": []byte(pidFiles["pid.lua"])}, false, "--watch=false", "--supervise=false")
	if got := mustCall(t, p.Addr, "pid"); got != strconv.Itoa(p.child.pid()) {
		t.Errorf("pid RPC = %s, want the process the test started, %d", got, p.child.pid())
	}
	if d := descendants(p.child.pid()); len(d) != 0 {
		t.Errorf("--supervise=false started processes: %v", d)
	}
	if strings.Contains(tailFile(p.Console, 0), "supervisor") {
		t.Errorf("log mentions a supervisor:\n%s", tailFile(p.Console, 10))
	}
}

// TestSupervisedStore: a cache with store= keeps its items across a full
// stop and start of the server.
func TestSupervisedStore(t *testing.T) {
	store := t.TempDir() + "/default.journal"
	files := map[string][]byte{"pid.lua": []byte(pidFiles["pid.lua"])}
	p := startScripthost(t, files, false, "--watch=false", "--cache", "name=default,items=100,store="+store)
	c := uwsgi.NewClient(p.Addr)
	ctx, cancel := callCtx()
	defer cancel()
	if err := c.CacheSet(ctx, "kept", []byte("across restarts")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.child.stop(t, []stopStep{{sig: syscall.SIGTERM, grace: 10 * time.Second}}, false)

	again := startScripthost(t, files, false, "--watch=false", "--cache", "name=default,items=100,store="+store)
	c = uwsgi.NewClient(again.Addr)
	defer c.Close()
	if got, err := c.CacheGet(ctx, "kept"); err != nil || string(got) != "across restarts" {
		t.Errorf("cache get after a full restart = %q, %v", got, err)
	}
	if _, err := os.Stat(store); err != nil {
		t.Errorf("store file: %v", err)
	}
}
