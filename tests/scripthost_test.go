package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// scripthostProc is a `scripthost serve` started by a test.
type scripthostProc struct {
	Addr     string // uwsgi listener
	HTTPAddr string // HTTP front, when asked for
	Dir      string // scripts directory
	Console  string
	child    *childProcess
}

// startScripthost runs the scripthost binary with `serve --socket ADDR
// --scripts DIR` (plus --http when withHTTP) and extra args, writes files
// into the scripts directory first, waits until the listeners accept and
// stops it by PID when the test ends.
func startScripthost(t *testing.T, files map[string][]byte, withHTTP bool, extra ...string) *scripthostProc {
	t.Helper()
	bin := buildScripthost(t)
	p := &scripthostProc{Addr: freeAddr(t), Dir: t.TempDir()}
	for name, src := range files {
		path := filepath.Join(p.Dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"serve", "--socket", p.Addr, "--scripts", p.Dir}
	if withHTTP {
		p.HTTPAddr = freeAddr(t)
		args = append(args, "--http", p.HTTPAddr)
	}
	args = append(args, extra...)
	p.Console = filepath.Join(t.TempDir(), "scripthost.log")
	child, err := startChild("scripthost", exec.Command(bin, args...), p.Console)
	if err != nil {
		t.Fatal(err)
	}
	p.child = child
	t.Cleanup(func() {
		child.stop(t, []stopStep{{sig: syscall.SIGTERM, grace: 10 * time.Second}}, false)
		if t.Failed() {
			t.Logf("scripthost log:\n%s", tailFile(p.Console, 40))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range []string{p.Addr, p.HTTPAddr} {
		for addr != "" && !canDial("tcp", addr) {
			if child.exited() || time.Now().After(deadline) {
				t.Fatalf("scripthost did not come up on %s: %v\n%s", addr, child.exitErr(), tailFile(p.Console, 40))
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	return p
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
