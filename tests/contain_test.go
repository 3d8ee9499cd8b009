package tests

// Containment through the binary: scripts and evals that try to take the
// memory of the process, and scripts that try to leave state behind for
// later requests. The host must survive, stay within its memory budget,
// keep serving the other languages, and answer every later call as if the
// hostile one never ran.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

const (
	// containLimitMB is the --memory-limit of these tests; the serving
	// process's peak RSS may pass it by containMarginMB at most (the
	// runtime's own memory, stacks and pages not yet returned).
	containLimitMB  = 512
	containMarginMB = 256
	// containLatency is how long a hello call in another language may
	// take while a hostile call runs.
	containLatency = 2 * time.Second
)

var hogScripts = map[string][]byte{
	"hog.lua": []byte(`
uwsgi.register_rpc("lua_hello", function() return "lua ok" end)
uwsgi.register_rpc("lua_hog", function()
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 60 * 1024 * 1024) .. i end
end)
uwsgi.register_rpc("lua_tables", function()
  local t = {}
  for i = 1, 1e10 do t[i] = {i, tostring(i)} end
end)
uwsgi.register_rpc("lua_setg", function()
  leaked = "yes"
  local ok = pcall(function() string.upper = function() return "patched" end end)
  return "set"
end)
uwsgi.register_rpc("lua_getg", function()
  return tostring(leaked) .. " " .. string.upper("a")
end)
`),
	"hog.js": []byte(`
uwsgi.register_rpc('js_hello', () => 'js ok');
uwsgi.register_rpc('js_buffer', () => { const b = new ArrayBuffer(2 ** 40); return String(b.byteLength); });
uwsgi.register_rpc('js_typed', () => { const b = new Float64Array(2 ** 32); return String(b.length); });
uwsgi.register_rpc('js_strings', () => {
  const a = [];
  for (;;) a.push('x'.repeat(1 << 20) + a.length);
});
uwsgi.register_rpc('js_promises', async () => {
  const a = [];
  for (;;) { await null; a.push('y'.repeat(1 << 20) + a.length); }
});
uwsgi.register_rpc('js_setg', () => {
  try { globalThis.leaked = 'yes'; } catch (e) {}
  try { Object.prototype.polluted = 'yes'; } catch (e) {}
  try { String.prototype.toUpperCase = function () { return 'patched'; }; } catch (e) {}
  return 'set';
});
uwsgi.register_rpc('js_getg', () => String(globalThis.leaked) + ' ' + String(({}).polluted) + ' ' + 'a'.toUpperCase());
`),
	"hog.go": []byte(`package main

import (
	"strconv"
	"strings"

	"scripthost/uwsgi"
)

var counter int
var loaded = "at load"

func main() {
	loaded = "set in main"
	uwsgi.RegisterRpc("go_hello", func() string { return "go ok" })
	uwsgi.RegisterRpc("go_make", func() string { b := make([]byte, 1<<40); return strconv.Itoa(len(b)) })
	uwsgi.RegisterRpc("go_repeat", func() string { return strconv.Itoa(len(strings.Repeat("x", 1<<33))) })
	uwsgi.RegisterRpc("go_append", func() string {
		var s []string
		for {
			s = append(s, strings.Repeat("x", 1<<20)+strconv.Itoa(len(s)))
		}
	})
	uwsgi.RegisterRpc("go_setg", func() string { counter++; loaded = "changed"; return "set" })
	uwsgi.RegisterRpc("go_getg", func() string { return strconv.Itoa(counter) + " " + loaded })
}
`),
}

// startContainHost serves hogScripts under a small memory budget, in one
// process (no supervisor) so that its memory is the serving process's,
// with a signed eval listener (evalKey).
func startContainHost(t *testing.T, extra ...string) (p *scripthostProc, evalAddr string) {
	t.Helper()
	evalAddr = freeAddr(t)
	keyFile := filepath.Join(t.TempDir(), "eval.key")
	if err := os.WriteFile(keyFile, []byte(evalKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"--eval-key", keyFile,
		"--supervise=false",
		"--memory-limit", strconv.Itoa(containLimitMB) + "M",
		"--call-timeout", "30s",
		"--eval-socket", evalAddr,
		"--eval-timeout", "30s",
	}, extra...)
	p = startScripthost(t, hogScripts, false, args...)
	deadline := time.Now().Add(15 * time.Second)
	for !canDial("tcp", evalAddr) {
		if p.child.exited() || time.Now().After(deadline) {
			t.Fatalf("eval listener did not come up: %v\n%s", p.child.exitErr(), tailFile(p.Console, 40))
		}
		time.Sleep(30 * time.Millisecond)
	}
	return p, evalAddr
}

// peakRSSMB reads the process's peak resident set (VmHWM) in MiB.
func peakRSSMB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatalf("reading the peak RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb >> 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// watchHellos calls the hello RPC of every language every 50 ms until
// stop is closed and reports calls that failed or were slow.
func watchHellos(ctx context.Context, t *testing.T, addr string, stop <-chan struct{}) func() (calls int, bad []string) {
	var mu sync.Mutex
	var calls int
	var bad []string
	var wg sync.WaitGroup
	for fn, want := range map[string]string{"lua_hello": "lua ok", "js_hello": "js ok", "go_hello": "go ok"} {
		wg.Go(func() {
			c := uwsgi.NewClient(addr)
			defer c.Close()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				cctx, cancel := context.WithTimeout(ctx, containLatency)
				start := time.Now()
				got, err := c.CallString(cctx, fn)
				took := time.Since(start)
				cancel()
				mu.Lock()
				calls++
				if err != nil || got != want {
					bad = append(bad, fmt.Sprintf("%s = %q, %v after %v", fn, got, err, took.Round(time.Millisecond)))
				}
				mu.Unlock()
			}
		})
	}
	return func() (int, []string) {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return calls, bad
	}
}

// isMemoryError reports whether err is a script error about memory.
func isMemoryError(err error) bool {
	var re *uwsgi.RemoteError
	if !errors.As(err, &re) {
		return false
	}
	msg := strings.ToLower(re.Error())
	return strings.Contains(msg, "memory limit") || strings.Contains(msg, "allocation") ||
		strings.Contains(msg, "too large") || strings.Contains(msg, "over the")
}

func TestContainMemory(t *testing.T) {
	p, evalAddr := startContainHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Hostile calls run until memory stops them, which takes seconds
	// under the race detector: longer than the client's default timeout.
	rpc, eval := uwsgi.NewClient(p.Addr), uwsgi.NewClient(evalAddr)
	rpc.Timeout, eval.Timeout = time.Minute, time.Minute
	defer rpc.Close()
	defer eval.Close()
	key := []byte(evalKey) // every eval is signed, as an operator's would be

	hostile := []struct {
		name string
		run  func(context.Context) error
	}{
		{"lua string hog", func(ctx context.Context) error { _, err := rpc.Call(ctx, "lua_hog"); return err }},
		{"lua table hog", func(ctx context.Context) error { _, err := rpc.Call(ctx, "lua_tables"); return err }},
		{"js ArrayBuffer 2**40", func(ctx context.Context) error { _, err := rpc.Call(ctx, "js_buffer"); return err }},
		{"js Float64Array 2**32", func(ctx context.Context) error { _, err := rpc.Call(ctx, "js_typed"); return err }},
		{"js array of 1 MB strings", func(ctx context.Context) error { _, err := rpc.Call(ctx, "js_strings"); return err }},
		{"js promise chain", func(ctx context.Context) error { _, err := rpc.Call(ctx, "js_promises"); return err }},
		{"go make 1<<40", func(ctx context.Context) error { _, err := rpc.Call(ctx, "go_make"); return err }},
		{"go strings.Repeat 1<<33", func(ctx context.Context) error { _, err := rpc.Call(ctx, "go_repeat"); return err }},
		{"go append loop", func(ctx context.Context) error { _, err := rpc.Call(ctx, "go_append"); return err }},
		{"eval lua string hog", func(ctx context.Context) error {
			_, _, err := eval.Eval(ctx, uwsgi.ModLua, `local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 60 * 1024 * 1024) .. i end`, key)
			return err
		}},
		{"eval js ArrayBuffer 2**40", func(ctx context.Context) error {
			_, _, err := eval.Eval(ctx, uwsgi.ModV8, `new ArrayBuffer(2 ** 40).byteLength`, key)
			return err
		}},
		{"eval js array of strings", func(ctx context.Context) error {
			_, _, err := eval.Eval(ctx, uwsgi.ModV8, `const a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length);`, key)
			return err
		}},
		{"eval go make 1<<40", func(ctx context.Context) error {
			_, _, err := eval.Eval(ctx, uwsgi.ModGo, `len(make([]byte, 1<<40))`, key)
			return err
		}},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			stop := make(chan struct{})
			wait := watchHellos(ctx, t, p.Addr, stop)
			start := time.Now()
			err := h.run(ctx)
			took := time.Since(start)
			close(stop)
			calls, bad := wait()
			if !isMemoryError(err) {
				t.Errorf("hostile call: %v after %v, want a script error about memory", err, took.Round(time.Millisecond))
			} else {
				t.Logf("hostile call stopped after %v: %v", took.Round(time.Millisecond), err)
			}
			if p.child.exited() {
				t.Fatalf("the host died: %v\n%s", p.child.exitErr(), tailFile(p.Console, 40))
			}
			if len(bad) > 0 {
				t.Errorf("%d of %d hello calls in other languages failed or took over %v while it ran: %v",
					len(bad), calls, containLatency, bad)
			}
			if rss := peakRSSMB(t, p.child.pid()); rss > containLimitMB+containMarginMB {
				t.Errorf("peak RSS %d MiB, over the %d MiB limit plus %d MiB", rss, containLimitMB, containMarginMB)
			}
			for _, fn := range []string{"lua_hello", "js_hello", "go_hello"} {
				if _, err := rpc.CallString(ctx, fn); err != nil {
					t.Errorf("%s after the hostile call: %v", fn, err)
				}
			}
		})
	}
	if rss := peakRSSMB(t, p.child.pid()); true {
		t.Logf("peak RSS over the whole test: %d MiB (limit %d MiB)", rss, containLimitMB)
	}
}

// TestContainState: writes to globals and built-ins by one call are not
// seen by later calls, on any pooled VM, in any language.
func TestContainState(t *testing.T) {
	p, _ := startContainHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := uwsgi.NewClient(p.Addr)
	defer c.Close()
	for _, tc := range []struct {
		lang, want string
	}{
		{"lua", "nil A"},
		{"js", "undefined undefined A"},
		{"go", "0 set in main"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			// Sequential calls reuse the most recently used VM; concurrent
			// ones spread over the pool.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 10 {
						if _, err := c.Call(ctx, tc.lang+"_setg"); err != nil {
							var re *uwsgi.RemoteError
							if !errors.As(err, &re) {
								t.Errorf("%s_setg: %v", tc.lang, err)
							}
						}
					}
				})
			}
			wg.Wait()
			for i := range 40 {
				got, err := c.CallString(ctx, tc.lang+"_getg")
				if err != nil || got != tc.want {
					t.Fatalf("call %d: %s_getg = %q, %v; want %q (state leaked from an earlier call)", i, tc.lang, got, err, tc.want)
				}
			}
		})
	}
}
