package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// fakeEngine loads every ".fake" file as an app of modifier1 6 served by
// serve; load, when set, runs for each file instead (a Reloader test's
// script that loads slowly).
type fakeEngine struct {
	serve func(ctx context.Context, w api.ResponseWriter, r *api.Request) error
	load  func(ctx context.Context, env *api.Registrations, f api.File) error
}

func (e *fakeEngine) Name() string             { return "fake" }
func (e *fakeEngine) Extensions() []string     { return []string{".fake"} }
func (e *fakeEngine) Modifier() uwsgi.Modifier { return uwsgi.ModLua }
func (e *fakeEngine) Load(ctx context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	apps := map[string]api.App{}
	for _, f := range files {
		if e.load != nil {
			if err := e.load(ctx, env, f); err != nil {
				return nil, err
			}
		}
		apps[strings.TrimSuffix(f.Name, ".fake")] = fakeApp(e.serve)
	}
	return fakeProgram(apps), nil
}

type fakeApp func(ctx context.Context, w api.ResponseWriter, r *api.Request) error

func (f fakeApp) ServeRequest(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	return f(ctx, w, r)
}

type fakeProgram map[string]api.App

func (p fakeProgram) Apps() map[string]api.App { return p }
func (p fakeProgram) Close() error             { return nil }

// startAppServer serves one fake app (the file app.fake) with limits lim.
func startAppServer(t testing.TB, lim host.Limits, app fakeApp, setup func(*host.Server)) *testServer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.fake"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var ts *testServer
	ts = startServer(t, "tcp", lim, func(srv *host.Server) {
		if setup != nil {
			setup(srv)
		}
		rl := &host.Reloader{Server: srv, Dir: dir, Engines: []api.Engine{&fakeEngine{serve: app}}, Logger: quietLogger}
		if err := rl.Reload(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	})
	return ts
}

// appRequest is a Lua WSAPI request packet announcing a body of n bytes.
func appRequest(t testing.TB, n int) []byte {
	t.Helper()
	var vs uwsgi.Vars
	vs = vs.Add("REQUEST_METHOD", "POST").Add("PATH_INFO", "/").Add("SERVER_PROTOCOL", "HTTP/1.1").
		Add("CONTENT_LENGTH", strconv.Itoa(n))
	block, err := vs.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// digestApp answers the length and SHA-256 of the body it reads.
func digestApp(calls *atomic.Int64) fakeApp {
	return func(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
		calls.Add(1)
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		return err
	}
}

func wantDigest(body []byte) string {
	return fmt.Sprintf("%d %x", len(body), sha256.Sum256(body))
}

// responseBody reads a raw HTTP response until the close and returns
// its body.
func responseBody(t *testing.T, c net.Conn) string {
	t.Helper()
	got, err := readUntilClose(c)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	_, body, ok := bytes.Cut(got, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("response without a header end: %q", got)
	}
	return string(body)
}

func TestAppBodyReadAhead(t *testing.T) {
	var calls atomic.Int64
	ts := startAppServer(t, host.Limits{BodyMemory: 64 << 10}, digestApp(&calls), nil)
	tests := []struct {
		name  string
		size  int
		split bool // the body follows the packet in a later write
	}{
		{"empty", 0, false},
		{"with the packet", 100, false},
		{"after the packet", 100, true},
		{"in memory, several reads", 60 << 10, true},
		{"spilled to a file", 1<<20 + 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("body-"), tc.size/5+1)[:tc.size]
			c := ts.dial(t)
			req := appRequest(t, tc.size)
			if tc.split {
				mustWrite(t, c, req)
				time.Sleep(10 * time.Millisecond) // not a timing assertion: makes the split likely
				mustWrite(t, c, body)
			} else {
				mustWrite(t, c, append(req, body...))
			}
			if got, want := responseBody(t, c), wantDigest(body); got != want {
				t.Errorf("app read %q, want %q", got, want)
			}
		})
	}
}

// TestAppBodySlowClient: a client that trickles its body never reaches
// the app and is disconnected at the body deadline, while other requests
// are served meanwhile.
func TestAppBodySlowClient(t *testing.T) {
	var calls atomic.Int64
	ts := startAppServer(t, host.Limits{BodyTimeout: 5 * time.Second, BodyDeadline: 500 * time.Millisecond},
		digestApp(&calls), nil)
	slow := ts.dial(t)
	mustWrite(t, slow, appRequest(t, 100))
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// Each byte comes well within the per-read timeout.
			if _, err := slow.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	fast := ts.dial(t)
	mustWrite(t, fast, append(appRequest(t, 2), "ok"...))
	if got, want := responseBody(t, fast), wantDigest([]byte("ok")); got != want {
		t.Errorf("fast request while a body trickles: %q, want %q", got, want)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("app ran %d times while the slow body came in, want 1 (the fast request only)", n)
	}
	got, err := readUntilClose(slow)
	close(stop)
	<-trickled
	if len(got) != 0 || (err != nil && !isReset(err)) {
		t.Errorf("slow client got %q, %v; want the connection closed without a response", got, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("app ran %d times, want 1: the slow body must never reach it", n)
	}
}

func TestAppBodyTooLarge(t *testing.T) {
	var calls atomic.Int64
	ts := startAppServer(t, host.Limits{MaxBody: 10}, digestApp(&calls), nil)
	c := ts.dial(t)
	mustWrite(t, c, appRequest(t, 11))
	got, err := readUntilClose(c)
	if err != nil || !bytes.HasPrefix(got, []byte("HTTP/1.1 413 ")) {
		t.Errorf("body over MaxBody: %q, %v; want a 413 response", got, err)
	}
	if calls.Load() != 0 {
		t.Error("the app ran for a body over MaxBody")
	}
}

// TestAppBodyRecv: what the app reads through the raw connection
// (uwsgi.recv) starts with the body read ahead, then the bytes after it.
func TestAppBodyRecv(t *testing.T) {
	app := func(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
		conn, err := api.ScopeOf(ctx).Conn()
		if err != nil {
			return err
		}
		head := make([]byte, 3)
		if _, err := io.ReadFull(r.Body, head); err != nil {
			return err
		}
		peeked, err := conn.Peek(1)
		if err != nil {
			return err
		}
		rest := make([]byte, 7) // 2 of the body, 5 after it
		if _, err := io.ReadFull(conn, rest); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s|%s|%s", head, peeked, rest)
		return err
	}
	ts := startAppServer(t, host.Limits{}, app, nil)
	c := ts.dial(t)
	mustWrite(t, c, append(appRequest(t, 5), "abcdeAFTER"...))
	if got, want := responseBody(t, c), "abc|d|deAFTER"; got != want {
		t.Errorf("read %q, want %q", got, want)
	}
}

func TestHTTPFrontBody(t *testing.T) {
	var calls atomic.Int64
	var srv *host.Server
	startAppServer(t, host.Limits{BodyMemory: 1 << 10, BodyDeadline: 500 * time.Millisecond, MaxBody: 1 << 20},
		digestApp(&calls), func(s *host.Server) { srv = s })
	l := listen(t, "tcp")
	hs := srv.NewHTTPServer(&host.HTTPFront{Server: srv})
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	url := "http://" + l.Addr().String() + "/"
	client := &http.Client{Timeout: ioTimeout}
	post := func(body io.Reader) (int, string) {
		t.Helper()
		resp, err := client.Post(url, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	big := bytes.Repeat([]byte("0123456789"), 10<<10)
	for _, tc := range []struct {
		name string
		body io.Reader // a plain io.Reader is sent chunked
		want string
	}{
		{"sized, spilled", bytes.NewReader(big), wantDigest(big)},
		{"chunked, spilled", io.MultiReader(bytes.NewReader(big)), wantDigest(big)},
		{"chunked, small", io.MultiReader(strings.NewReader("hi")), wantDigest([]byte("hi"))},
	} {
		if code, got := post(tc.body); code != 200 || got != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.name, code, got, tc.want)
		}
	}
	if code, _ := post(io.MultiReader(bytes.NewReader(make([]byte, 1<<20+1)))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over MaxBody: status %d, want 413", code)
	}

	// A client too slow is disconnected without reaching the app.
	before := calls.Load()
	c, err := net.DialTimeout("tcp", l.Addr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")
	got, err := readUntilClose(c)
	if len(got) != 0 || (err != nil && !isReset(err)) {
		t.Errorf("slow HTTP client got %q, %v; want the connection closed", got, err)
	}
	if calls.Load() != before {
		t.Error("the app ran for a body that never came")
	}
}

// One request with a body per connection, as nginx sends them: the body
// read ahead of the app must cost no allocation when it came with the
// packet.
func BenchmarkAppBody(b *testing.B) {
	for _, size := range []int{0, 100, 16 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "app.fake"), nil, 0o644); err != nil {
				b.Fatal(err)
			}
			app := fakeApp(func(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
				_, err := io.Copy(io.Discard, r.Body)
				return err
			})
			ts := startServer(b, "tcp", host.Limits{}, func(srv *host.Server) {
				rl := &host.Reloader{Server: srv, Dir: dir, Engines: []api.Engine{&fakeEngine{serve: app}}, Logger: quietLogger}
				if err := rl.Reload(context.Background(), false); err != nil {
					b.Fatal(err)
				}
			})
			req := append(appRequest(b, size), make([]byte, size)...)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for b.Loop() {
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
			}
		})
	}
}
