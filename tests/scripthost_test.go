package tests

import (
	"io"
	"net"
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
	// A supervisor's sockets accept before its serving process has loaded
	// the scripts: the host is up once a ping is answered.
	for !answersPing(p.Addr) {
		if child.exited() {
			t.Fatalf("scripthost exited before it served: %v\n%s", child.exitErr(), tailFile(p.Console, 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("scripthost did not answer a ping on %s\n%s", p.Addr, tailFile(p.Console, 40))
		}
		time.Sleep(30 * time.Millisecond)
	}
	return p
}

// answersPing reports whether a ping to the uwsgi listener addr is
// answered within a second.
func answersPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{100, 0, 0, 0}); err != nil {
		return false
	}
	var reply [4]byte
	_, err = io.ReadFull(c, reply[:])
	return err == nil && reply[0] == 100
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
