package gointerp

import (
	"bytes"
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
			status: "200", headers: []api.Header{{Name: "Content-Type", Value: "text/plain"}}, body: "Hello World", flushes: 1},
		{name: "echo", req: request("hi there", "REQUEST_METHOD=POST", "REQUEST_URI=/echo?q=1&r=2", "PATH_INFO=/echo",
			"QUERY_STRING=q=1&r=2", "HTTP_HOST=example.com", "HTTP_X_TEST=yes", "CONTENT_LENGTH=8", "CONTENT_TYPE=text/plain",
			"REMOTE_ADDR=10.0.0.1", "REMOTE_PORT=4242", "HTTPS=on", "SERVER_PROTOCOL=HTTP/1.0"),
			status: "201", headers: []api.Header{{Name: "X-Method", Value: "POST"}, {Name: "X-Multi", Value: "1"}, {Name: "X-Multi", Value: "2"}},
			body: "POST /echo?q=1&r=2 q=1 host=example.com test=yes len=8 remote=10.0.0.1:4242 tls=true body=hi there", flushes: 1},
		// A mount point: the handler routes on PATH_INFO, without SCRIPT_NAME.
		{name: "mounted", req: request("", "REQUEST_URI=/go/echo?q=m", "SCRIPT_NAME=/go", "PATH_INFO=/echo",
			"QUERY_STRING=q=m", "SERVER_NAME=srv"),
			status: "201", headers: []api.Header{{Name: "X-Method", Value: "GET"}, {Name: "X-Multi", Value: "1"}, {Name: "X-Multi", Value: "2"}},
			body: "GET /echo?q=m q=m host=srv test= len=0 remote= tls=false body=", flushes: 1},
		{name: "no request uri", req: request("", "PATH_INFO=/echo", "QUERY_STRING=q=z", "SERVER_NAME=srv"),
			status: "201", headers: []api.Header{{Name: "X-Method", Value: "GET"}, {Name: "X-Multi", Value: "1"}, {Name: "X-Multi", Value: "2"}},
			body: "GET /echo?q=z q=z host=srv test= len=0 remote= tls=false body=", flushes: 1},
		{name: "stream", req: request("", "REQUEST_URI=/stream"), status: "200", body: "chunk0;chunk1;chunk2;", flushes: 4},
		{name: "empty", req: request("", "REQUEST_URI=/empty"), status: "200", flushes: 1},
		{name: "not found", req: request("", "REQUEST_URI=/nope"), status: "404",
			headers: []api.Header{{Name: "Content-Type", Value: "text/plain; charset=utf-8"}, {Name: "X-Content-Type-Options", Value: "nosniff"}},
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
