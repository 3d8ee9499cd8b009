package tests

// Containment in the host, black box: a script file that never finishes
// loading, clients that trickle their bodies, signal storms and looping
// handlers, RPC into the same host, and the status counters. Each test is
// bounded in time and count and asserts counts, never durations.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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

const hangLua = "while true do end\n"

const verLua = `uwsgi.register_rpc("ver", function() return "1" end)
return function(env)
  local n = tonumber(env.CONTENT_LENGTH) or 0
  local body = ""
  if n > 0 then body = env.input:read(n) or "" end
  return 200, {["Content-Type"] = "text/plain"}, "read " .. #body
end
`

// waitExit sends sig and waits until the process exits.
func waitExit(t *testing.T, p *scripthostProc, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.child.pid(), sig); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "scripthost to exit", func() (bool, string) { return p.child.exited(), "running" })
	if err := p.child.waitErr; err != nil {
		t.Errorf("exit: %v, want status 0", err)
	}
	log, _ := os.ReadFile(p.Console)
	if strings.Contains(string(log), "restarting: new process started") {
		t.Errorf("a new process was started on the way out:\n%s", tailFile(p.Console, 20))
	}
}

// TestContainSignalsDuringHungReload: while a reload is stuck in a file
// with an endless top level (its load timeout far away), the server
// serves, further HUPs and SIGUSR2 are taken, and SIGTERM stops the
// process instead of restarting it.
func TestContainSignalsDuringHungReload(t *testing.T) {
	p, _ := startWithOps(t, map[string]string{"app.lua": verLua},
		"--watch=false", "--load-timeout", "60s", "--shutdown-timeout", "2s")
	writeFile(t, p.Dir, "hang.lua", hangLua)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGHUP, syscall.SIGHUP} {
		if err := syscall.Kill(p.child.pid(), sig); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // not a timing assertion: lets the reload start
		if got := mustCall(t, p.Addr, "ver"); got != "1" {
			t.Errorf("ver during a hung reload = %q, want 1", got)
		}
	}
	pollUntil(t, "the third HUP to be merged into the scheduled reload", func() (bool, string) {
		log, _ := os.ReadFile(p.Console)
		return strings.Contains(string(log), "reload already scheduled"), "not logged"
	})
	// SIGUSR2 queued together with SIGTERM: stopping wins.
	syscall.Kill(p.child.pid(), syscall.SIGUSR2)
	waitExit(t, p, syscall.SIGTERM)
}

// TestContainLoadTimeout: a file with an endless top level dropped in and
// a HUP: the reload fails naming the file at the load timeout, the old
// scripts keep serving, the status counts it, and SIGTERM stops the
// process. (Needs engines that run files under api.Registrations.FileContext.)
func TestContainLoadTimeout(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{"app.lua": verLua},
		"--watch=false", "--load-timeout", "1s", "--shutdown-timeout", "2s")
	writeFile(t, p.Dir, "hang.lua", hangLua)
	if err := syscall.Kill(p.child.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the reload to fail at the load timeout", func() (bool, string) {
		st := opsStatus(t, ops)
		return st["load_timeouts"] == "1" && strings.Contains(st["last_error"], "hang.lua"),
			fmt.Sprintf("load_timeouts %s, last_error %q", st["load_timeouts"], st["last_error"])
	})
	if got := mustCall(t, p.Addr, "ver"); got != "1" {
		t.Errorf("ver after the failed reload = %q, want 1", got)
	}
	waitExit(t, p, syscall.SIGTERM)
}

// slowBody sends a request announcing a body of n bytes, then one byte
// every gap until stop is closed or the server closes the connection;
// it reports whether any response byte came.
func slowBody(addr string, n int, gap time.Duration, stop <-chan struct{}) (answered bool) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	var vs uwsgi.Vars
	vs = vs.Add("REQUEST_METHOD", "POST").Add("PATH_INFO", "/").Add("SERVER_PROTOCOL", "HTTP/1.1").
		Add("CONTENT_LENGTH", strconv.Itoa(n))
	block, _ := vs.Append(nil)
	pkt, _ := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
	if _, err := c.Write(pkt); err != nil {
		return false
	}
	got := make(chan bool, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		k, _ := c.Read(make([]byte, 1))
		got <- k > 0
	}()
	for {
		select {
		case answered = <-got:
			return answered
		case <-stop:
			c.Close()
			return <-got
		case <-time.After(gap):
			c.Write([]byte("x"))
		}
	}
}

// TestContainSlowBodies: clients trickling their bodies to a Lua app that
// reads its input hold no Lua state: with a pool of 2 and 4 such clients,
// Lua requests and RPCs are all served meanwhile, and the slow clients
// are disconnected at the body deadline without an answer.
func TestContainSlowBodies(t *testing.T) {
	p := startScripthost(t, map[string][]byte{"app.lua": []byte(verLua)}, false,
		"--lua-pool", "2", "--body-deadline", "2s", "--call-timeout", "5s")
	stop := make(chan struct{})
	var answered atomic.Int32
	var slow sync.WaitGroup
	for range 4 {
		slow.Go(func() {
			if slowBody(p.Addr, 1000, 100*time.Millisecond, stop) {
				answered.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // not a timing assertion: the slow bodies are under way
	for i := range 10 {
		if got := mustCall(t, p.Addr, "ver"); got != "1" {
			t.Errorf("RPC %d while bodies trickle = %q, want 1", i, got)
		}
		if code, body := getApp(t, p.Addr, "/"); code != 200 || body != "read 0" {
			t.Errorf("request %d while bodies trickle = %d %q", i, code, body)
		}
	}
	done := make(chan struct{})
	go func() { slow.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(pollTimeout):
		close(stop)
		<-done
		t.Error("slow clients were not disconnected at the body deadline")
	}
	if n := answered.Load(); n != 0 {
		t.Errorf("%d slow clients got an answer, want none (disconnected)", n)
	}
	log, _ := os.ReadFile(p.Console)
	if !strings.Contains(string(log), "request body not received in time") {
		t.Errorf("no log line for the slow clients:\n%s", tailFile(p.Console, 20))
	}
}

// countCalls calls fn on one kept connection for d and returns how many
// calls succeeded and the first error.
func countCalls(addr, fn string, d time.Duration) (int, error) {
	c := uwsgi.NewClient(addr)
	defer c.Close()
	end := time.Now().Add(d)
	n := 0
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.CallString(ctx, fn)
		cancel()
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// TestContainSignalStorm: a handler that raises its own signal twice
// every run is coalesced and spaced: Lua RPC throughput during the storm
// keeps a fair share of what it was before, and the merges are counted.
func TestContainSignalStorm(t *testing.T) {
	p, ops := startWithOps(t, map[string]string{"storm.lua": `
uwsgi.register_rpc("ver", function() return "1" end)
uwsgi.register_signal(7, "", function(sig)
  uwsgi.signal(7)
  uwsgi.signal(7)
end)
`}, "--watch=false")
	before, err := countCalls(p.Addr, "ver", time.Second)
	if err != nil {
		t.Fatalf("RPC before the storm: %v", err)
	}
	c := uwsgi.NewClient(p.Addr)
	defer c.Close()
	ctx, cancel := callCtx()
	defer cancel()
	if err := c.Signal(ctx, 7); err != nil {
		t.Fatalf("raising signal 7: %v", err)
	}
	during, err := countCalls(p.Addr, "ver", time.Second)
	if err != nil {
		t.Fatalf("RPC during the storm: %v", err)
	}
	t.Logf("RPC calls in 1 s: %d before the storm, %d during it", before, during)
	if during < before/5 {
		t.Errorf("RPC calls during the storm %d, less than a fifth of the %d before", during, before)
	}
	st := opsStatus(t, ops)
	if n, _ := strconv.Atoi(st["signals_coalesced"]); n == 0 {
		t.Errorf("signals_coalesced = %q during a storm, want > 0", st["signals_coalesced"])
	}
}

// TestContainLoopingSignalHandler: a handler that never returns, armed by
// a 1 s timer, is interrupted at --signal-timeout and runs once at a
// time, so Lua requests keep being served.
func TestContainLoopingSignalHandler(t *testing.T) {
	p := startScripthost(t, map[string][]byte{"loop.lua": []byte(`
uwsgi.register_rpc("ver", function() return "1" end)
uwsgi.register_signal(5, "", function(sig) while true do end end)
uwsgi.add_timer(5, 1)
`)}, false, "--lua-pool", "3", "--signal-timeout", "1s", "--call-timeout", "5s")
	n, err := countCalls(p.Addr, "ver", 3*time.Second)
	if err != nil {
		t.Errorf("RPC failed after %d calls while a looping handler runs: %v", n, err)
	}
	pollUntil(t, "the looping handler to be interrupted", func() (bool, string) {
		log, _ := os.ReadFile(p.Console)
		return strings.Contains(string(log), "signal handler failed"), "no such log line"
	})
}

// TestContainSelfRPC: an RPC that calls itself through uwsgi.rpc on the
// host's own listener, deeper than the Lua pool, answers instead of
// waiting for a state its callers hold.
func TestContainSelfRPC(t *testing.T) {
	p := startScripthost(t, map[string][]byte{"self.lua": []byte(`
uwsgi.register_rpc("down", function(node, n)
  n = tonumber(n)
  if n == 0 then return "bottom" end
  return uwsgi.rpc(node, "down", node, tostring(n - 1))
end)
`)}, false, "--lua-pool", "2", "--call-timeout", "5s")
	if got := mustCall(t, p.Addr, "down", p.Addr, "6"); got != "bottom" {
		t.Errorf("down 6 deep through the host's own listener = %q, want bottom", got)
	}
	_, port, _ := net.SplitHostPort(p.Addr)
	if got := mustCall(t, p.Addr, "down", "localhost:"+port, "4"); got != "bottom" {
		t.Errorf("down through localhost = %q, want bottom", got)
	}
}

// TestContainStatus: `scripthost status` prints the memory budget and the
// containment counters.
func TestContainStatus(t *testing.T) {
	_, ops := startWithOps(t, map[string]string{"app.lua": verLua}, "--memory-limit", "512M")
	out, stderr, code := runScripthostCLI(t, "status", ops)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"memory_limit:", "536870912", "heap_in_use:", "memory_kills:", "pool_timeouts:",
		"load_timeouts:", "signals_coalesced:", "restarts:"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

// TestContainHTTPSlowBody: the same body bound on the HTTP front.
func TestContainHTTPSlowBody(t *testing.T) {
	p := startScripthost(t, map[string][]byte{"app.lua": []byte(verLua)}, true, "--body-deadline", "1s")
	c, err := net.DialTimeout("tcp", p.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(pollTimeout))
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")
	got, _ := io.ReadAll(c)
	if len(got) != 0 {
		t.Errorf("slow HTTP client got %q, want the connection closed", got)
	}
	resp, err := http.Post("http://"+p.HTTPAddr+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "read 5" {
		t.Errorf("POST over HTTP = %q, want read 5", b)
	}
}
