package gointerp

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/scripthost/scripthost/api"
)

// app is a file's Handler served as an app named after the file. The
// request's vars become an *http.Request: method from REQUEST_METHOD,
// URL.Path from PATH_INFO (what the app routes on, as in WSGI: without the
// SCRIPT_NAME of a mount point) and the query from QUERY_STRING, RequestURI
// from REQUEST_URI (else SCRIPT_NAME+PATH_INFO and QUERY_STRING), Proto from SERVER_PROTOCOL, Host from HTTP_HOST (else
// SERVER_NAME), a header for every HTTP_* var plus Content-Type and
// Content-Length, RemoteAddr from REMOTE_ADDR and REMOTE_PORT, TLS set
// (empty) when HTTPS is on, and the body; its context is the call's
// (done at harakiri).
//
// The http.ResponseWriter writes through the host's: the status with a
// snapshot of the header taken at the first WriteHeader or Write (the
// header names in sorted order, no Content-Type sniffing, no Date), then
// the body; it implements http.Flusher. As net/http's, it holds back the
// first 2 KiB of the body until the Handler returns, writes more or
// flushes: a response complete by then gets a Content-Length (even 0;
// for HEAD, the length of what the Handler wrote, and no body), others
// stream without one. A Handler that returns without writing gets "200
// OK" with no body, as in net/http, unless it answered by itself through
// uwsgi.Send (with no fd, or the fd ConnectionFd gave), uwsgi.Disconnect
// or uwsgi.Close of the connection's fd: then nothing more is written.
// What the Handler wrote before such a call goes out first.
type app struct{ sc *script }

var _ api.App = (*app)(nil)

// ServeRequest runs the Handler for one request.
func (a *app) ServeRequest(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	body := &guardedBody{r: r.Body}
	hr, err := httpRequest(r, body)
	if err != nil {
		return err
	}
	rw := &responseWriter{w: w, head: hr.Method == http.MethodHead}
	defer func() { // a script that could not be stopped must not touch them later
		rw.kill()
		body.kill()
	}()
	return a.sc.with(ctx, nil, func(v *vm) error {
		if v.handler == nil {
			return fmt.Errorf("gointerp: %s defines no Handler", a.sc.name)
		}
		prev := v.req
		req := &reqState{rw: rw}
		v.req = req
		defer func() { v.req = prev }()
		rw.setContext(v.ctx)
		v.handler.ServeHTTP(rw, hr.WithContext(v.ctx))
		return rw.finish(req.raw)
	})
}

// reqState is what the engine tracks about a request being served.
type reqState struct {
	rw     *responseWriter
	raw    bool  // the script answered by itself
	connFD int64 // what ConnectionFd returned, 0 if not called
}

// writesConn reports whether API call name with args writes to (or
// closes) the client connection.
func (q *reqState) writesConn(name string, args []api.Value) bool {
	isConn := func(i int) bool {
		fd, ok := args[i].(int64)
		return ok && q.connFD != 0 && fd == q.connFD
	}
	switch name {
	case "send":
		return len(args) == 1 || (len(args) > 1 && isConn(0))
	case "close":
		return len(args) > 0 && isConn(0)
	case "disconnect":
		return true
	}
	return false
}

// beforeAPI sends the response written so far before the script writes
// to the client connection by itself, keeping the bytes in order.
func (q *reqState) beforeAPI(name string, args []api.Value) {
	if q.rw != nil && q.writesConn(name, args) {
		q.rw.pending()
	}
}

// noteAPI watches the API calls of a request for the script answering
// by itself.
func (q *reqState) noteAPI(name string, args []api.Value, res api.Value) {
	if name == "connection_fd" {
		if fd, ok := res.(int64); ok {
			q.connFD = fd
		}
	}
	q.raw = q.raw || q.writesConn(name, args)
}

// httpRequest builds the *http.Request of a request's vars.
func httpRequest(r *api.Request, body io.Reader) (*http.Request, error) {
	method := r.Var("REQUEST_METHOD")
	if method == "" {
		method = http.MethodGet
	}
	uri := r.Var("REQUEST_URI")
	if uri == "" {
		uri = r.Var("SCRIPT_NAME") + r.Var("PATH_INFO")
		if uri == "" {
			uri = "/"
		}
		if q := r.Var("QUERY_STRING"); q != "" {
			uri += "?" + q
		}
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		u = &url.URL{}
	}
	if path, ok := r.Vars.Lookup("PATH_INFO"); ok {
		u.Path, u.RawPath = string(path), ""
		u.RawQuery = r.Var("QUERY_STRING")
	}
	proto := r.Var("SERVER_PROTOCOL")
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		proto, major, minor = "HTTP/1.0", 1, 0
	}
	hr := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     http.Header{},
		Body:       http.NoBody,
		Host:       r.Var("HTTP_HOST"),
		RequestURI: uri,
		RemoteAddr: r.Var("REMOTE_ADDR"),
	}
	if hr.Host == "" {
		hr.Host = r.Var("SERVER_NAME")
	}
	if port := r.Var("REMOTE_PORT"); port != "" && hr.RemoteAddr != "" {
		hr.RemoteAddr = net.JoinHostPort(hr.RemoteAddr, port)
	}
	for _, kv := range r.Vars {
		k := string(kv.Key)
		name, ok := strings.CutPrefix(k, "HTTP_")
		switch {
		case k == "CONTENT_TYPE" || k == "CONTENT_LENGTH":
			name = k
		case !ok || name == "" || name == "CONTENT_TYPE" || name == "CONTENT_LENGTH":
			continue
		}
		if len(kv.Value) > 0 || k != "CONTENT_TYPE" {
			hr.Header.Add(strings.ReplaceAll(name, "_", "-"), string(kv.Value))
		}
	}
	if cl := r.Var("CONTENT_LENGTH"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("gointerp: bad CONTENT_LENGTH %q", cl)
		}
		hr.ContentLength = n
	}
	if hr.ContentLength > 0 && r.Body != nil {
		hr.Body = io.NopCloser(body)
	}
	if h := strings.ToLower(r.Var("HTTPS")); h == "on" || h == "1" || r.Var("UWSGI_SCHEME") == "https" {
		hr.TLS = &tls.ConnectionState{}
	}
	return hr, nil
}

// bufferSize is how much of a body is held back before the header goes
// out: a Handler that returns before writing more gets a Content-Length,
// as net/http's server gives one (its bufferBeforeChunkingSize).
const bufferSize = 2048

// responseWriter is the http.ResponseWriter of a Handler over the host's
// api.ResponseWriter. Like net/http's, it holds the status (a snapshot of
// the header taken with it) and the first bufferSize bytes of the body
// until the Handler returns, writes more or flushes: a response complete
// by then gets a Content-Length (unless the Handler set one, or a
// Transfer-Encoding, or its status has no body), so that small answers go
// to the client whole instead of chunked. The body of a HEAD request is
// counted for that and dropped.
type responseWriter struct {
	w      api.ResponseWriter
	head   bool // a HEAD request: the body is not sent
	mu     sync.Mutex
	ctx    context.Context // the call's: nothing is written once it is done
	header http.Header
	code   int         // the status, 0 until WriteHeader or the first Write
	snap   http.Header // the header as it was when the status was set
	buf    []byte      // the body held back
	held   int         // bytes of the body held back (HEAD: counted only)
	sent   bool        // the status went to w
	dead   bool        // the call is over
	err    error       // the first error of w
}

var _ http.Flusher = (*responseWriter)(nil)

func (rw *responseWriter) setContext(ctx context.Context) {
	rw.mu.Lock()
	rw.ctx = ctx
	rw.mu.Unlock()
}

// closed returns why nothing may be written any more, or nil.
func (rw *responseWriter) closed() error {
	if rw.dead {
		return ErrAbandoned
	}
	if rw.ctx != nil && rw.ctx.Err() != nil {
		return context.Cause(rw.ctx)
	}
	return nil
}

func (rw *responseWriter) Header() http.Header {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.header == nil {
		rw.header = http.Header{}
	}
	return rw.header
}

func (rw *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if code < 200 && code != http.StatusSwitchingProtocols {
		return // informational responses cannot be sent through the host
	}
	rw.setStatus(code)
	if code == http.StatusSwitchingProtocols {
		rw.send(false) // what follows is another protocol's
	}
}

// setStatus sets the status and snapshots the header, once.
func (rw *responseWriter) setStatus(code int) {
	if rw.code != 0 || rw.closed() != nil {
		return
	}
	rw.code = code
	rw.snap = rw.header.Clone()
}

// send hands the status, the header and the body held back to w, once;
// length adds the Content-Length of a body that is complete.
func (rw *responseWriter) send(length bool) {
	if rw.sent || rw.closed() != nil {
		return
	}
	rw.sent = true
	h := rw.snap
	if length && bodyAllowed(rw.code) && h.Get("Content-Length") == "" && h.Get("Transfer-Encoding") == "" &&
		(!rw.head || rw.held > 0) {
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Content-Length", strconv.Itoa(rw.held))
	}
	var hs []api.Header
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, val := range h[name] {
			hs = append(hs, api.Header{Name: name, Value: val})
		}
	}
	rw.fail(rw.w.WriteHeader(strconv.Itoa(rw.code), hs))
	if len(rw.buf) > 0 && rw.err == nil {
		_, err := rw.w.Write(rw.buf)
		rw.fail(err)
	}
	rw.buf = nil
}

// bodyAllowed reports whether a response of status code has a body. (The
// only status under 200 is 101, sent at once: what follows it is the
// other protocol's, written as it comes.)
func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified
}

func (rw *responseWriter) fail(err error) {
	if err != nil && rw.err == nil {
		rw.err = err
	}
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if err := rw.closed(); err != nil {
		return 0, err
	}
	rw.setStatus(http.StatusOK)
	if !bodyAllowed(rw.code) {
		return 0, http.ErrBodyNotAllowed
	}
	if !rw.sent {
		if rw.held+len(p) <= bufferSize {
			rw.held += len(p)
			if !rw.head {
				rw.buf = append(rw.buf, p...)
			}
			return len(p), nil
		}
		rw.send(false)
	}
	if rw.head {
		return len(p), rw.err
	}
	if rw.err != nil {
		return 0, rw.err
	}
	n, err := rw.w.Write(p)
	rw.fail(err)
	return n, err
}

// Flush sends the header (if not yet sent) and what is buffered.
func (rw *responseWriter) Flush() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.closed() != nil {
		return
	}
	rw.setStatus(http.StatusOK)
	rw.send(false)
	rw.fail(rw.w.Flush())
}

// pending sends what the Handler wrote so far, if anything: bytes it is
// about to write to the client connection by itself (uwsgi.Send) must
// follow them.
func (rw *responseWriter) pending() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.code != 0 && rw.closed() == nil {
		rw.send(false)
		rw.fail(rw.w.Flush())
	}
}

// finish completes the response when the Handler returns.
func (rw *responseWriter) finish(raw bool) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if err := rw.closed(); err != nil {
		return err
	}
	if !rw.sent && rw.code == 0 && raw {
		return nil
	}
	rw.setStatus(http.StatusOK)
	rw.send(true)
	rw.fail(rw.w.Flush())
	return rw.err
}

func (rw *responseWriter) kill() {
	rw.mu.Lock()
	rw.dead = true
	rw.mu.Unlock()
}

// guardedBody is the request body, unreadable once the call is over.
type guardedBody struct {
	r    io.Reader
	dead atomic.Bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.dead.Load() || b.r == nil {
		return 0, io.EOF
	}
	return b.r.Read(p)
}

func (b *guardedBody) kill() { b.dead.Store(true) }
