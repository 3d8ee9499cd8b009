package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Spooler functions in the three languages, each taking the jobs whose
// lang names it and ignoring the others (SPOOL_IGNORE passes a job on).
var spoolerScripts = map[string][]byte{
	"a.lua": []byte(`
uwsgi.spooler = function(job)
  if job.lang ~= "lua" then return uwsgi.SPOOL_IGNORE end
  uwsgi.cache_update("lua:" .. job.task, job.task .. "/" .. (job.arg or "") .. "/" .. (job.body or ""))
  uwsgi.cache_inc("jobs")
  return uwsgi.SPOOL_OK
end
uwsgi.register_rpc("spool_from_lua", function(task)
  return uwsgi.spool({lang = "js", task = task, body = "from lua"})
end)`),
	"b.js": []byte(`
uwsgi.spooler = (job) => {
  if (job.lang !== "js") return uwsgi.SPOOL_IGNORE;
  uwsgi.cache_update("js:" + job.task, job.task + "/" + (job.body || ""));
  uwsgi.cache_inc("jobs");
  return uwsgi.SPOOL_OK;
};`),
	"c.go": []byte(`package main

import "scripthost/uwsgi"

func init() {
	uwsgi.RegisterSpooler(func(job map[string]string) int {
		if job["lang"] != "go" {
			return int(uwsgi.SPOOLIGNORE())
		}
		uwsgi.CacheUpdate("go:"+job["task"], job["task"])
		uwsgi.CacheInc("jobs")
		return int(uwsgi.SPOOLOK())
	})
}`),
	// Jobs of no language count, for the restart test.
	"d.lua": []byte(`
uwsgi.register_spooler(function(job)
  if job.lang ~= nil then return uwsgi.SPOOL_IGNORE end
  uwsgi.cache_inc("plain")
  return uwsgi.SPOOL_OK
end)`),
}

func cacheString(t *testing.T, c *uwsgi.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := c.CacheGet(ctx, key)
	if err != nil {
		return ""
	}
	return string(v)
}

func waitCache(t *testing.T, c *uwsgi.Client, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := cacheString(t, c, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache %q = %q, want %q", key, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitCounter(t *testing.T, c *uwsgi.Client, key string, want int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := c.CacheNum(ctx, key)
		cancel()
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter %q = %d (%v), want %d", key, n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Jobs from a uWSGI-style packet, from the CLI and from a script reach the
// spooler function of their language; the job files go once done.
func TestSpoolerEndToEnd(t *testing.T) {
	spool := t.TempDir()
	p := startScripthost(t, spoolerScripts, false, "--spooler", spool, "--spooler-frequency", "200ms")
	c := uwsgi.NewClient(p.Addr)
	defer c.Close()

	// The packet uWSGI's spooler_enqueue capture sends, plus a lang.
	req := uwsgiPacket(17, uwsgiVars("lang", "lua", "task", "demo", "arg", "42"), 0)
	got, err := rawExchange("tcp", p.Addr, req, 5*time.Second)
	if err != nil || !bytes.Equal(got, []byte{255, 0, 0, 1}) {
		t.Fatalf("spool packet: %v, %v; want [255 0 0 1]", got, err)
	}
	waitCache(t, c, "lua:demo", "demo/42/")

	bin := buildScripthost(t)
	if out, err := exec.Command(bin, "spool", p.Addr, "lang=go", "task=cli").CombinedOutput(); err != nil {
		t.Fatalf("scripthost spool: %v\n%s", err, out)
	}
	waitCache(t, c, "go:cli", "cli")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	path, err := c.CallString(ctx, "spool_from_lua", "scripted")
	if err != nil || !strings.HasPrefix(path, spool) {
		t.Fatalf("spool_from_lua = %q, %v; want a job file in %s", path, err, spool)
	}
	waitCache(t, c, "js:scripted", "scripted/from lua")
	waitCounter(t, c, "jobs", 3)

	deadline := time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(spool, "uwsgi_spoolfile_on_*"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job files left: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without --spooler, a spool packet gets uWSGI's refusal.
func TestSpoolerNone(t *testing.T) {
	p := startScripthost(t, nil, false)
	got, err := rawExchange("tcp", p.Addr, uwsgiPacket(17, uwsgiVars("task", "demo"), 0), 5*time.Second)
	if err != nil || !bytes.Equal(got, []byte{255, 0, 0, 0}) {
		t.Fatalf("spool packet: %v, %v; want [255 0 0 0]", got, err)
	}
	bin := buildScripthost(t)
	out, err := exec.Command(bin, "spool", p.Addr, "task=x").CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Errorf("scripthost spool without a spooler: exit %d (%s), want 1", code, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// Acknowledged jobs survive a SIGKILL of the host before they ran: the
// next process over the same spool directory runs every one.
func TestSpoolerSurvivesKill(t *testing.T) {
	spool := t.TempDir()
	bin := buildScripthost(t)
	scripts := t.TempDir()
	for name, src := range spoolerScripts {
		writeFile(t, scripts, name, string(src))
	}
	addr := freeAddr(t)
	console := filepath.Join(t.TempDir(), "first.log")
	first, err := startChild("scripthost", exec.Command(bin, "serve", "--supervise=false", "--socket", addr,
		"--scripts", scripts, "--spooler", spool), console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.stop(t, []stopStep{{sig: syscall.SIGKILL, grace: 5 * time.Second}}, false) })
	deadline := time.Now().Add(15 * time.Second)
	for !answersPing(addr) {
		if time.Now().After(deadline) || first.exited() {
			t.Fatalf("first host did not come up: %s", tailFile(console, 20))
		}
		time.Sleep(30 * time.Millisecond)
	}
	// Due in two seconds: acknowledged now, run only by the next process.
	at := strconv.FormatInt(time.Now().Add(2*time.Second).Unix()+1, 10)
	const jobs = 20
	for i := range jobs {
		got, err := rawExchange("tcp", addr, uwsgiPacket(17, uwsgiVars("task", fmt.Sprint(i), "at", at), 0), 5*time.Second)
		if err != nil || !bytes.Equal(got, []byte{255, 0, 0, 1}) {
			t.Fatalf("job %d: %v, %v", i, got, err)
		}
	}
	if err := syscall.Kill(first.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	files, _ := filepath.Glob(filepath.Join(spool, "uwsgi_spoolfile_on_*"))
	if len(files) != jobs {
		t.Fatalf("%d job files after SIGKILL, want %d", len(files), jobs)
	}

	p := startScripthost(t, spoolerScripts, false, "--spooler", spool, "--spooler-frequency", "200ms")
	c := uwsgi.NewClient(p.Addr)
	defer c.Close()
	waitCounter(t, c, "plain", jobs)
}

// A full disk refuses a job with [255, 0, 0] and a log line; the jobs
// acknowledged before it are kept and run.
func TestSpoolerFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (make test runs as root in CI)")
	}
	spool := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", spool).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", spool).Run() })
	p := startScripthost(t, nil, false, "--spooler", spool)
	value := strings.Repeat("x", 60000)
	acked, refused := 0, 0
	for i := 0; i < 20 && refused == 0; i++ {
		got, err := rawExchange("tcp", p.Addr, uwsgiPacket(17, uwsgiVars("task", fmt.Sprint(i), "data", value), 0), 5*time.Second)
		switch {
		case err != nil:
			t.Fatalf("job %d: %v", i, err)
		case bytes.Equal(got, []byte{255, 0, 0, 1}):
			acked++
		case bytes.Equal(got, []byte{255, 0, 0, 0}):
			refused++
		default:
			t.Fatalf("job %d: answer %v", i, got)
		}
	}
	if refused == 0 || acked == 0 {
		t.Fatalf("%d acknowledged, %d refused: want the disk to fill", acked, refused)
	}
	files, _ := filepath.Glob(filepath.Join(spool, "uwsgi_spoolfile_on_*"))
	if len(files) != acked {
		t.Errorf("%d job files for %d acknowledged jobs", len(files), acked)
	}
	temps, _ := filepath.Glob(filepath.Join(spool, ".incoming", ".tmp_*"))
	if len(temps) != 0 {
		t.Errorf("half-written jobs left: %v", temps)
	}
	if log := tailFile(p.Console, 100); !strings.Contains(log, "spool job not stored") {
		t.Errorf("no log line for the refused job:\n%s", log)
	}
}

// The same spool packet gets the same answer from uWSGI's spooler and from
// scripthost, and both store it in the same file format; a job sent with
// scripthost's CLI runs in uWSGI's Python spooler.
func TestSpoolerMatchesUWSGI(t *testing.T) {
	peer := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"python3", "spooler"},
		Master:  true,
		Files: map[string][]byte{"spool.py": []byte(`
import os, uwsgi
BASE = os.getcwd()  # the spooler runs its jobs inside the spool directory
def spooler(job):
    if job.get(b"keep") == b"1":
        return uwsgi.SPOOL_RETRY
    with open(os.path.join(BASE, "ran-" + job[b"task"].decode()), "w") as f:
        f.write(job[b"arg"].decode())
    return uwsgi.SPOOL_OK
uwsgi.spooler = spooler
def application(env, start_response):
    start_response("200 OK", [])
    return [b""]
`)},
		Args: []string{"--spooler", "spool", "--spooler-frequency", "1", "--wsgi-file", "spool.py"},
	})
	spool := t.TempDir()
	ours := startScripthost(t, nil, false, "--spooler", spool)
	req := uwsgiPacket(17, uwsgiVars("task", "kept", "arg", "42", "keep", "1"), 0)
	for _, target := range []struct{ name, addr, dir string }{
		{"uWSGI", peer.Addr, filepath.Join(peer.Dir, "spool")},
		{"scripthost", ours.Addr, spool},
	} {
		got, err := rawExchange("tcp", target.addr, req, 5*time.Second)
		if err != nil || !bytes.Equal(got, []byte{255, 0, 0, 1}) {
			t.Fatalf("%s: %v, %v; want [255 0 0 1]", target.name, got, err)
		}
		var files []string
		deadline := time.Now().Add(5 * time.Second)
		for len(files) == 0 && time.Now().Before(deadline) {
			files, _ = filepath.Glob(filepath.Join(target.dir, "uwsgi_spoolfile_on_*"))
			time.Sleep(20 * time.Millisecond)
		}
		if len(files) != 1 {
			t.Fatalf("%s: job files %v", target.name, files)
		}
		data, err := os.ReadFile(files[0])
		if err != nil || !bytes.Equal(data, req) {
			t.Errorf("%s stored %q (%v), want the packet %q", target.name, data, err, req)
		}
	}
	bin := buildScripthost(t)
	if out, err := exec.Command(bin, "spool", peer.Addr, "task=cli", "arg=7").CombinedOutput(); err != nil {
		t.Fatalf("scripthost spool to uWSGI: %v %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(peer.Dir, "ran-cli"))
		if err == nil && string(b) == "7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uWSGI's spooler did not run the job: %v\n%s", err, peer.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
