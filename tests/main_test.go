// Package tests holds the end-to-end tests of scripthost and its interop
// tests against the real peers (uWSGI 2.0.21 and nginx from Debian 12).
// Run them all with `make test`, which installs the peers first and sets
// SCRIPTHOST_PEERS=1; under a plain `go test` without the peers, the
// interop tests skip.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// buildDir holds binaries built once per test binary; removed by TestMain.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if n := peerSkips.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "tests: %d interop tests skipped: %s\n", n, skipNeedsPeers)
	}
	os.Exit(code)
}

var (
	scripthostOnce sync.Once
	scripthostPath string
	scripthostErr  string
)

// buildScripthost builds ../cmd/scripthost once per test binary and returns
// the path of the binary; it fails the calling test with the build output
// when the build fails.
func buildScripthost(t testing.TB) string {
	t.Helper()
	scripthostOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scripthost-build-")
		if err != nil {
			scripthostErr = err.Error()
			return
		}
		buildDir = dir
		out := filepath.Join(dir, "scripthost")
		// `go test` puts its own GOROOT/bin first on the PATH of the test.
		cmd := exec.Command("go", "build", "-o", out, "../cmd/scripthost")
		if b, err := cmd.CombinedOutput(); err != nil {
			scripthostErr = err.Error() + "\n" + string(b)
			return
		}
		scripthostPath = out
	})
	if scripthostPath == "" {
		t.Fatalf("building ../cmd/scripthost failed: %s", scripthostErr)
	}
	return scripthostPath
}
