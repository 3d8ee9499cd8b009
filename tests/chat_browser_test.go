package tests

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChatInBrowser loads examples/chat in headless Chromium: the page
// connects to the WebSocket, sends the text of ?say= and shows what the
// room broadcast back.
func TestChatInBrowser(t *testing.T) {
	browser := requireBinary(t, "chromium")
	bin := buildScripthost(t)
	addr, httpAddr := freeAddr(t), freeAddr(t)
	console := t.TempDir() + "/chat.log"
	child, err := startChild("scripthost", exec.Command(bin, "serve", "--supervise=false", "--socket", addr,
		"--http", httpAddr, "--scripts", "../examples/chat"), console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.stop(t, []stopStep{{sig: syscall.SIGTERM, grace: 10 * time.Second}}, false) })
	deadline := time.Now().Add(15 * time.Second)
	for !canDial("tcp", httpAddr) {
		if time.Now().After(deadline) || child.exited() {
			t.Fatalf("scripthost did not come up: %s", tailFile(console, 20))
		}
		time.Sleep(30 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom",
		"http://"+httpAddr+"/?say=hello%20from%20the%20browser")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<li>hello from the browser</li>") {
		t.Errorf("the page did not show the broadcast message:\n%s\nhost log:\n%s", out, tailFile(console, 20))
	}
}
