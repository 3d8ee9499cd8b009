package host_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/host"
)

// startFront serves app (as app.fake) on a uwsgi listener and on an HTTP
// front; it returns both servers and the front's address.
func startFront(t *testing.T, app fakeApp, logger *slog.Logger) (*testServer, string) {
	t.Helper()
	var srv *host.Server
	ts := startAppServer(t, host.Limits{}, app, func(s *host.Server) {
		srv = s
		if logger != nil {
			s.Logger = logger
		}
	})
	l := listen(t, "tcp")
	hs := srv.NewHTTPServer(&host.HTTPFront{Server: srv})
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return ts, l.Addr().String()
}

// rawHTTP sends a raw HTTP request and returns the response's status and
// body.
func rawHTTP(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	return resp.StatusCode, string(b)
}

// TestHTTPFrontVars checks the request vars the front gives apps: paths
// normalised, repeated headers joined, and a chunked body's length, as
// nginx passes them.
func TestHTTPFrontVars(t *testing.T) {
	echo := func(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, k := range []string{"PATH_INFO", "REQUEST_URI", "CONTENT_LENGTH", "HTTP_X_A", "HTTP_COOKIE"} {
			fmt.Fprintf(&b, "%s=%s|", k, r.Vars.Get(k))
		}
		fmt.Fprintf(&b, "body=%s", body)
		if err := w.WriteHeader("200 OK", nil); err != nil {
			return err
		}
		_, err = io.WriteString(w, b.String())
		return err
	}
	_, addr := startFront(t, echo, nil)
	const head = "Host: x\r\nConnection: close\r\n"
	cases := []struct {
		name, req string
		code      int
		want      string
	}{
		{"plain", "GET /a/b?q=1 HTTP/1.1\r\n" + head + "\r\n", 200,
			"PATH_INFO=/a/b|REQUEST_URI=/a/b?q=1|CONTENT_LENGTH=|HTTP_X_A=|HTTP_COOKIE=|body="},
		{"dot segments", "GET /a/./b/../c HTTP/1.1\r\n" + head + "\r\n", 200,
			"PATH_INFO=/a/c|REQUEST_URI=/a/./b/../c|CONTENT_LENGTH=|HTTP_X_A=|HTTP_COOKIE=|body="},
		{"double slashes", "GET //a///b/ HTTP/1.1\r\n" + head + "\r\n", 200,
			"PATH_INFO=/a/b/|REQUEST_URI=//a///b/|CONTENT_LENGTH=|HTTP_X_A=|HTTP_COOKIE=|body="},
		{"last dot-dot", "GET /a/b/.. HTTP/1.1\r\n" + head + "\r\n", 200,
			"PATH_INFO=/a/|REQUEST_URI=/a/b/..|CONTENT_LENGTH=|HTTP_X_A=|HTTP_COOKIE=|body="},
		{"encoded dot-dot", "GET /a/%2e%2e/b%20c HTTP/1.1\r\n" + head + "\r\n", 200,
			"PATH_INFO=/b c|REQUEST_URI=/a/%2e%2e/b%20c|CONTENT_LENGTH=|HTTP_X_A=|HTTP_COOKIE=|body="},
		{"above the root", "GET /a/../../etc HTTP/1.1\r\n" + head + "\r\n", 400, ""},
		{"repeated headers", "GET / HTTP/1.1\r\n" + head + "X-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", 200,
			"PATH_INFO=/|REQUEST_URI=/|CONTENT_LENGTH=|HTTP_X_A=1, 2|HTTP_COOKIE=a=1; b=2|body="},
		{"chunked body", "POST / HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 200,
			"PATH_INFO=/|REQUEST_URI=/|CONTENT_LENGTH=5|HTTP_X_A=|HTTP_COOKIE=|body=abcde"},
	}
	for _, tc := range cases {
		code, got := rawHTTP(t, addr, tc.req)
		if code != tc.code || (tc.code == 200 && got != tc.want) {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, code, got, tc.code, tc.want)
		}
	}
}

// logRecords keeps the records logged through it.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

func (l *logRecords) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

// TestClientLeftIsNoAppFailure: a client that goes away while its answer
// is written, or once it has it, is logged as leaving, not as an app that
// failed.
func TestClientLeftIsNoAppFailure(t *testing.T) {
	const leftMsg = "INFO client left before the response was complete"
	cases := []struct {
		name  string
		front string // "uwsgi" or "http"
		// reset: the client resets the connection before the app writes
		// its body; else it reads the whole answer and closes while the
		// app is still running.
		reset bool
	}{
		{"uwsgi, reset", "uwsgi", true},
		{"http, reset", "http", true},
		{"http, complete then closed", "http", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logRecords{}
			closed := make(chan struct{})
			app := func(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
				if tc.reset {
					if err := w.WriteHeader("200 OK", nil); err != nil {
						return err
					}
					if err := w.Flush(); err != nil {
						return err
					}
					select {
					case <-closed:
					case <-time.After(ioTimeout):
						return nil
					}
					chunk := make([]byte, 64<<10)
					for range 1 << 10 {
						if _, err := w.Write(chunk); err != nil {
							return err
						}
						if err := w.Flush(); err != nil {
							return err
						}
					}
					return nil
				}
				if err := w.WriteHeader("200 OK", []api.Header{{Name: "Content-Length", Value: "4"}}); err != nil {
					return err
				}
				if _, err := io.WriteString(w, "done"); err != nil {
					return err
				}
				if err := w.Flush(); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(ioTimeout):
					return nil
				}
			}
			ts, httpAddr := startFront(t, app, slog.New(logs))
			addr, req := httpAddr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if tc.front == "uwsgi" {
				addr, req = ts.addr, appRequest(t, 0)
			}
			c, err := net.DialTimeout("tcp", addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(ioTimeout))
			mustWrite(t, c, req)
			br := bufio.NewReader(c)
			if tc.reset {
				if _, err := br.ReadString('\n'); err != nil {
					t.Fatalf("reading the status line: %v", err)
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				close(closed)
			} else {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "done" {
					t.Fatalf("response body %q, %v", b, err)
				}
				c.Close()
			}
			waitFor(t, "the request's end to be logged", func() bool {
				msgs := logs.messages()
				return slices.Contains(msgs, leftMsg) || slices.ContainsFunc(msgs, func(m string) bool {
					return strings.HasPrefix(m, "ERROR")
				})
			})
			for _, m := range logs.messages() {
				if strings.HasPrefix(m, "ERROR") {
					t.Errorf("logged %q, want %q", m, leftMsg)
				}
			}
		})
	}
}

// TestHTTPFrontReason: the front sends the app's reason phrase, as nginx
// passes it on, for GET and HEAD.
func TestHTTPFrontReason(t *testing.T) {
	app := func(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
		status, _ := url.QueryUnescape(r.Vars.Get("QUERY_STRING"))
		if err := w.WriteHeader(status, []api.Header{{Name: "X-B", Value: "1"}, {Name: "X-B", Value: "2"}}); err != nil {
			return err
		}
		_, err := io.WriteString(w, "body")
		return err
	}
	_, addr := startFront(t, app, nil)
	cases := []struct {
		method, status string
		wantLine       string
	}{
		{"GET", "200", "HTTP/1.1 200 OK"},
		{"GET", "404 Not Found", "HTTP/1.1 404 Not Found"},
		{"GET", "299 Custom Reason", "HTTP/1.1 299 Custom Reason"},
		{"GET", "404 Gone Fishing", "HTTP/1.1 404 Gone Fishing"},
		{"GET", "299", "HTTP/1.1 299 Unknown"},
		{"HEAD", "299 Custom Reason", "HTTP/1.1 299 Custom Reason"},
	}
	for _, tc := range cases {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		fmt.Fprintf(c, "%s /?%s HTTP/1.1\r\nHost: x\r\n\r\n", tc.method, url.QueryEscape(tc.status))
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s %q: %v", tc.method, tc.status, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)),
			&http.Request{Method: tc.method})
		if err != nil {
			t.Fatalf("%s %q: %v", tc.method, tc.status, err)
		}
		body, err := io.ReadAll(resp.Body)
		c.Close()
		wantBody := "body"
		if tc.method == "HEAD" {
			wantBody = ""
		}
		if got := strings.TrimRight(line, "\r\n"); got != tc.wantLine || string(body) != wantBody || err != nil ||
			strings.Join(resp.Header.Values("X-B"), ",") != "1,2" {
			t.Errorf("%s %q: %q %v %q %v, want %q %q with X-B 1,2", tc.method, tc.status, got,
				resp.Header.Values("X-B"), body, err, tc.wantLine, wantBody)
		}
	}
}
