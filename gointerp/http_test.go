package gointerp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

func TestApp(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{}, files("app.go", readTestdata(t, "app.go"))...)
	app := p.Apps()["app"]
	tests := []struct {
		name    string
		req     *api.Request
		status  string
		headers []api.Header
		body    string
		flushes int
	}{
		{name: "hello", req: request("", "REQUEST_METHOD=GET", "REQUEST_URI=/hello", "SERVER_PROTOCOL=HTTP/1.1"),
			status: "200", headers: []api.Header{{Name: "Content-Length", Value: "11"}, {Name: "Content-Type", Value: "text/plain"}}, body: "Hello World", flushes: 1},
		{name: "echo", req: request("hi there", "REQUEST_METHOD=POST", "REQUEST_URI=/echo?q=1&r=2", "PATH_INFO=/echo",
			"QUERY_STRING=q=1&r=2", "HTTP_HOST=example.com", "HTTP_X_TEST=yes", "CONTENT_LENGTH=8", "CONTENT_TYPE=text/plain",
			"REMOTE_ADDR=10.0.0.1", "REMOTE_PORT=4242", "HTTPS=on", "SERVER_PROTOCOL=HTTP/1.0"),
			status: "201", headers: []api.Header{{Name: "Content-Length", Value: "98"}, {Name: "X-Method", Value: "POST"}, {Name: "X-Multi", Value: "1"}, {Name: "X-Multi", Value: "2"}},
			body: "POST /echo?q=1&r=2 q=1 host=example.com test=yes len=8 remote=10.0.0.1:4242 tls=true body=hi there", flushes: 1},
		// A mount point: the handler routes on PATH_INFO, without SCRIPT_NAME.
		{name: "mounted", req: request("", "REQUEST_URI=/go/echo?q=m", "SCRIPT_NAME=/go", "PATH_INFO=/echo",
			"QUERY_STRING=q=m", "SERVER_NAME=srv"),
			status: "201", headers: []api.Header{{Name: "Content-Length", Value: "62"}, {Name: "X-Method", Value: "GET"}, {Name: "X-Multi", Value: "1"}, {Name: "X-Multi", Value: "2"}},
			body: "GET /echo?q=m q=m host=srv test= len=0 remote= tls=false body=", flushes: 1},
		{name: "no request uri", req: request("", "PATH_INFO=/echo", "QUERY_STRING=q=z", "SERVER_NAME=srv"),
			status: "201", headers: []api.Header{{Name: "Content-Length", Value: "62"}, {Name: "X-Method", Value: "GET"}, {Name: "X-Multi", Value: "1"}, {Name: "X-Multi", Value: "2"}},
			body: "GET /echo?q=z q=z host=srv test= len=0 remote= tls=false body=", flushes: 1},
		{name: "stream", req: request("", "REQUEST_URI=/stream"), status: "200", body: "chunk0;chunk1;chunk2;", flushes: 4},
		{name: "empty", req: request("", "REQUEST_URI=/empty"), status: "200", headers: []api.Header{{Name: "Content-Length", Value: "0"}}, flushes: 1},
		// HEAD: the length of the body the handler wrote, and no body.
		{name: "head", req: request("", "REQUEST_METHOD=HEAD", "REQUEST_URI=/hello"),
			status: "200", headers: []api.Header{{Name: "Content-Length", Value: "11"}, {Name: "Content-Type", Value: "text/plain"}}, flushes: 1},
		// A HEAD answered with nothing may have been cut short on purpose:
		// no length, as in net/http.
		{name: "head empty", req: request("", "REQUEST_METHOD=HEAD", "REQUEST_URI=/empty"), status: "200", flushes: 1},
		{name: "not found", req: request("", "REQUEST_URI=/nope"), status: "404",
			headers: []api.Header{{Name: "Content-Length", Value: "19"}, {Name: "Content-Type", Value: "text/plain; charset=utf-8"}, {Name: "X-Content-Type-Options", Value: "nosniff"}},
			body:    "404 page not found\n", flushes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			if err := app.ServeRequest(t.Context(), &rec, tt.req); err != nil {
				t.Fatalf("ServeRequest: %v", err)
			}
			if rec.status != tt.status || !slices.Equal(rec.headers, tt.headers) || rec.body.String() != tt.body || rec.flushes != tt.flushes {
				t.Errorf("got %s %v %q (%d flushes)\nwant %s %v %q (%d flushes)", rec.status, rec.headers, rec.body.String(), rec.flushes,
					tt.status, tt.headers, tt.body, tt.flushes)
			}
		})
	}
}

// TestAppBuffering: the first 2 KiB of a body are held back, so that a
// response complete by then gets a Content-Length, as with net/http.
func TestAppBuffering(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{}, files("buf.go", `package main

import (
	"net/http"
	"strings"

	"scripthost/uwsgi"
)

func Handler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/big":
		w.Write([]byte(strings.Repeat("a", 2000)))
		w.Write([]byte(strings.Repeat("b", 100)))
	case "/exact":
		w.Write([]byte(strings.Repeat("a", 2048)))
	case "/own":
		w.Header().Set("Content-Length", "3")
		w.Write([]byte("abc"))
	case "/chunked":
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Write([]byte("3\r\nabc\r\n0\r\n\r\n"))
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
		if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
			panic(err)
		}
	case "/late":
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-Late", "1") // after the status: not sent
		w.Write([]byte("ok"))
	case "/raw":
		w.Write([]byte("HTTP/1.0 200 OK\r\n\r\nbody,"))
		uwsgi.Send("raw")
	}
}
`)...)
	app := p.Apps()["buf"]
	cl := func(n string) []api.Header { return []api.Header{{Name: "Content-Length", Value: n}} }
	for _, tt := range []struct {
		path, method string
		status       string
		headers      []api.Header
		body         string
	}{
		{path: "/big", status: "200", body: strings.Repeat("a", 2000) + strings.Repeat("b", 100)},
		{path: "/big", method: "HEAD", status: "200"},
		{path: "/exact", status: "200", headers: cl("2048"), body: strings.Repeat("a", 2048)},
		{path: "/exact", method: "HEAD", status: "200", headers: cl("2048")},
		{path: "/own", status: "200", headers: cl("3"), body: "abc"},
		{path: "/own", method: "HEAD", status: "200", headers: cl("3")},
		{path: "/chunked", status: "200", headers: []api.Header{{Name: "Transfer-Encoding", Value: "chunked"}}, body: "3\r\nabc\r\n0\r\n\r\n"},
		{path: "/nocontent", status: "204"},
		{path: "/late", status: "202", headers: cl("2"), body: "ok"},
	} {
		method := cmp.Or(tt.method, "GET")
		var rec recorder
		if err := app.ServeRequest(t.Context(), &rec, request("", "REQUEST_METHOD="+method, "REQUEST_URI="+tt.path)); err != nil {
			t.Fatalf("%s %s: %v", method, tt.path, err)
		}
		if rec.status != tt.status || !slices.Equal(rec.headers, tt.headers) || rec.body.String() != tt.body {
			t.Errorf("%s %s: got %s %v %q\nwant %s %v %q", method, tt.path, rec.status, rec.headers, rec.body.String(),
				tt.status, tt.headers, tt.body)
		}
	}

	// Bytes the handler sends by itself come after what it wrote before.
	conn := &fakeConn{}
	ctx, _, done := api.NewScope(t.Context(), conn, 0)
	defer done()
	w := &connWriter{c: conn}
	if err := app.ServeRequest(ctx, w, request("", "REQUEST_URI=/raw")); err != nil {
		t.Fatal(err)
	}
	if got, want := conn.out.String(), "status 200\nHTTP/1.0 200 OK\r\n\r\nbody,raw"; got != want {
		t.Errorf("the client received %q, want %q", got, want)
	}
}

// connWriter is a ResponseWriter writing to a fakeConn, so that the order
// of the response and of uwsgi.Send can be seen.
type connWriter struct {
	c    *fakeConn
	sent bool
}

func (w *connWriter) WriteHeader(status string, _ []api.Header) error {
	w.sent = true
	_, err := w.c.Write([]byte("status " + status + "\n"))
	return err
}
func (w *connWriter) Write(p []byte) (int, error) {
	if !w.sent {
		w.WriteHeader("200", nil)
	}
	return w.c.Write(p)
}
func (w *connWriter) Flush() error     { return nil }
func (w *connWriter) HeaderSent() bool { return w.sent }

func TestAppAnswersByItself(t *testing.T) {
	// A Handler that writes nothing through the ResponseWriter but sent
	// bytes itself gets no implicit response.
	f := newFixture(t)
	_, p := f.mustLoad(Options{}, files("raw.go", `package main

import (
	"net/http"

	"scripthost/uwsgi"
)

func Handler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/raw":
		uwsgi.Send("HTTP/1.0 204 No Content\r\n\r\n")
	case "/fd":
		fd, _ := uwsgi.ConnectionFd()
		uwsgi.Send(fd, "x")
	case "/dialed":
		uwsgi.Send(3, "x")
	}
}
`)...)
	for path, wantSent := range map[string]bool{"/raw": false, "/fd": false, "/dialed": true} {
		conn := &fakeConn{}
		ctx, _, done := api.NewScope(t.Context(), conn, 0)
		var rec recorder
		err := p.Apps()["raw"].ServeRequest(ctx, &rec, request("", "REQUEST_URI="+path))
		done()
		if rec.sent != wantSent {
			t.Errorf("%s: response sent %v (err %v), want %v", path, rec.sent, err, wantSent)
		}
	}
}

// fakeConn is a client connection that keeps what is written to it.
type fakeConn struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *fakeConn) Read([]byte) (int, error) { return 0, io.EOF }
func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *fakeConn) Flush() error                    { return nil }
func (c *fakeConn) Peek(int) ([]byte, error)        { return nil, io.EOF }
func (c *fakeConn) SetReadDeadline(time.Time) error { return nil }
func (c *fakeConn) Close() error                    { return nil }

func TestAppBodyAndErrors(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{}, files("b.go", `package main

import (
	"fmt"
	"io"
	"net/http"
)

func Handler(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%d %q %v", len(b), b, err)
	fmt.Fprintf(w, " ctx=%v", r.Context().Err())
}
`)...)
	app := p.Apps()["b"]
	var rec recorder
	// The body is CONTENT_LENGTH bytes, whatever the reader holds.
	if err := app.ServeRequest(t.Context(), &rec, &api.Request{Vars: request("", "CONTENT_LENGTH=3").Vars,
		Body: io.LimitReader(strings.NewReader("abcdef"), 3)}); err != nil {
		t.Fatal(err)
	}
	if got := rec.body.String(); got != `3 "abc" <nil> ctx=<nil>` {
		t.Errorf("body %q", got)
	}
	if err := app.ServeRequest(t.Context(), &recorder{}, request("", "CONTENT_LENGTH=x")); err == nil {
		t.Error("a bad CONTENT_LENGTH was accepted")
	}
	// A client that went away: the write error is the call's.
	err := app.ServeRequest(t.Context(), failingWriter{}, request(""))
	if !errors.Is(err, errGone) {
		t.Errorf("ServeRequest to a gone client = %v", err)
	}
	// A script without a Handler has no app.
	if _, ok := p.Apps()["nope"]; ok {
		t.Error("unexpected app")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := app.ServeRequest(ctx, &recorder{}, request("")); !errors.Is(err, context.Canceled) {
		t.Errorf("ServeRequest with a done context = %v", err)
	}
}

var errGone = errors.New("client gone")

type failingWriter struct{}

func (failingWriter) WriteHeader(string, []api.Header) error { return nil }
func (failingWriter) Write([]byte) (int, error)              { return 0, errGone }
func (failingWriter) Flush() error                           { return errGone }
func (failingWriter) HeaderSent() bool                       { return true }

func TestHTTPRequestVars(t *testing.T) {
	r := request("", "REQUEST_METHOD=PUT", "REQUEST_URI=/a%20b?x=1", "HTTP_ACCEPT_ENCODING=gzip", "HTTP_COOKIE=a=1",
		"CONTENT_TYPE=", "SERVER_PROTOCOL=bogus", "UWSGI_SCHEME=https")
	hr, err := httpRequest(r, r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if hr.Method != "PUT" || hr.URL.Path != "/a b" || hr.URL.RawQuery != "x=1" || hr.RequestURI != "/a%20b?x=1" ||
		hr.Header.Get("Accept-Encoding") != "gzip" || hr.Header.Get("Cookie") != "a=1" || hr.Proto != "HTTP/1.0" ||
		hr.TLS == nil || hr.Body != http.NoBody {
		t.Errorf("request %+v", hr)
	}
	if _, ok := hr.Header["Content-Type"]; ok {
		t.Error("an empty CONTENT_TYPE became a header")
	}
}
