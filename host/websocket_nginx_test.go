package host_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxFront starts a real nginx in front of the uwsgi listener addr
// (uwsgi_pass, modifier1 6) when SCRIPTHOST_PEERS is set, as `make test`
// does after installing the peers; it returns ok false otherwise. nginx
// runs in the foreground as this test's child and is stopped by its PID.
func nginxFront(t *testing.T, addr string) (wsFront, bool) {
	t.Helper()
	if os.Getenv("SCRIPTHOST_PEERS") == "" {
		return wsFront{}, false
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("nginx not found: run tests/install-peers.sh")
		}
	}
	prefix, err := os.MkdirTemp("", "scripthost-ws-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	os.Chmod(prefix, 0o755) // the workers may run as nobody
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s;
        location / {
            uwsgi_param REQUEST_METHOD $request_method;
            uwsgi_param REQUEST_URI $request_uri;
            uwsgi_param PATH_INFO $document_uri;
            uwsgi_param SERVER_PROTOCOL $server_protocol;
            uwsgi_param REMOTE_ADDR $remote_addr;
            uwsgi_pass %[3]s;
            uwsgi_modifier1 6;
        }
    }
}
`, prefix, listen, addr)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix+"/", "-e", filepath.Join(prefix, "error.log"), "-c", confPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx does not listen on %s:\n%s", listen, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return wsFront{name: "nginx", addr: listen, proxied: true}, true
}

// checkProxiedHead checks the 101 as nginx passes it on: its own Server,
// Date and Connection lines among uWSGI's.
func checkProxiedHead(t testing.TB, head string) {
	t.Helper()
	for _, want := range []string{"HTTP/1.1 101 Web Socket Protocol Handshake\r\n", "\r\nUpgrade: WebSocket\r\n",
		"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"} {
		if !strings.Contains(head, want) {
			t.Fatalf("handshake answer through nginx = %q, want %q in it", head, want)
		}
	}
}
