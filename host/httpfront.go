package host

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// HTTPFront serves the scripts' apps over plain HTTP/1.1 with net/http,
// so the host can be tried without nginx. Each request takes the same
// path as a uwsgi request of Modifier1 (default 0: the default app, or
// the app mounted at its path).
type HTTPFront struct {
	Server    *Server        // routes the requests and runs the apps, with its State and Limits
	Modifier1 uwsgi.Modifier // the modifier1 every request is routed as
}

// ServeHTTP turns r into request vars, routes it and runs the app.
func (f *HTTPFront) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	s := f.Server
	s.init()
	s.startBackground() // consumers, signals and timers serve the front's scripts too
	var body requestBody
	defer body.release()
	if !f.readBody(rw, r, &body) {
		return
	}
	vr, ok := frontRequest(r)
	if !ok {
		http.Error(rw, "Bad Request", http.StatusBadRequest)
		return
	}
	vars := uwsgi.RequestVars(vr, body.size)
	rt := s.acquireRouter()
	var app *AppInfo
	if rt != nil {
		defer rt.gen.Registrations.Release()
		app, vars = rt.route(f.Modifier1, vars)
	}
	if app == nil {
		http.Error(rw, "no application found for this request", http.StatusInternalServerError)
		return
	}
	resp := &httpResponse{rw: rw, proto: r.Proto, head: r.Method == http.MethodHead}
	defer resp.finish()
	ctx, _, done := api.NewScope(r.Context(), &httpConn{rw: rw, resp: resp, body: &body}, s.lim.CallTimeout)
	defer done()
	var up *upgrader
	if isUpgrade(vars) {
		up = s.frontUpgrader(rw, r, rt.gen, resp)
		ctx = api.WithUpgrader(ctx, up)
	}
	req := &api.Request{Modifier1: f.Modifier1, Vars: vars, Body: &body}
	err := s.runApp(ctx, rt.gen, app, resp, req, up, nil)
	if up != nil && up.Socket() != nil {
		failed := socketFailed(err)
		if failed {
			s.log.Error("app failed", "app", app.Name, "engine", app.Engine, "path", vr.URL.Path, "err", err)
		}
		up.finish(failed)
		return
	}
	if err != nil {
		if s.clientLeft(err, resp.err, r.Context()) {
			s.log.Info("client left before the response was complete", "app", app.Name,
				"path", vr.URL.Path, "remote", r.RemoteAddr, "err", err)
			return
		}
		if errors.Is(err, api.ErrTooManyWebSockets) && !resp.sent {
			s.log.Warn("websocket refused: too many open", "app", app.Name, "max", s.State.LongCalls.Max(), "remote", r.RemoteAddr)
			http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		s.log.Error("app failed", "app", app.Name, "engine", app.Engine, "path", vr.URL.Path, "err", err)
		if !resp.sent {
			http.Error(rw, "Internal Server Error", http.StatusInternalServerError)
		}
	}
}

// frontRequest is r as nginx passes it on: the path with "." and ".."
// resolved and slashes merged (REQUEST_URI keeps what the client sent),
// and the values of a repeated header joined into one, with "; " for
// cookies and ", " for the others. It reports false for a path that
// climbs above the root, which nginx answers 400.
func frontRequest(r *http.Request) (*http.Request, bool) {
	path, ok := normalizePath(r.URL.Path)
	if !ok {
		return nil, false
	}
	joined := false
	for _, vs := range r.Header {
		joined = joined || len(vs) > 1
	}
	if path == r.URL.Path && !joined {
		return r, true
	}
	vr := *r
	u := *r.URL
	u.Path, u.RawPath = path, ""
	vr.URL = &u
	if joined {
		vr.Header = make(http.Header, len(r.Header))
		for name, vs := range r.Header {
			sep := ", "
			if name == "Cookie" {
				sep = "; "
			}
			vr.Header[name] = []string{strings.Join(vs, sep)}
		}
	}
	return &vr, true
}

// normalizePath resolves "." and ".." segments and merges repeated
// slashes as nginx does, keeping a trailing slash (and adding one after
// a last "." or ".."). It reports false when ".." climbs above the root.
func normalizePath(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return p, true // "*" or an empty path: nothing to resolve
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p, true
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case "", ".":
			trailing = trailing || last
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
			trailing = trailing || last
		default:
			out = append(out, seg)
		}
	}
	clean := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		clean += "/"
	}
	return clean, true
}

// readBody reads the request body in full into body before any app runs
// (see Server.readBody). It reports false when the request ends: a body
// too large is answered 413, a client too slow or gone is disconnected.
func (f *HTTPFront) readBody(rw http.ResponseWriter, r *http.Request, body *requestBody) bool {
	s := f.Server
	if s.lim.MaxBody > 0 && r.ContentLength > s.lim.MaxBody {
		s.log.Warn("request body too large: refused", "content_length", r.ContentLength, "max", s.lim.MaxBody, "remote", r.RemoteAddr)
		http.Error(rw, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return false
	}
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return true
	}
	rc := http.NewResponseController(rw)
	src := bodySource{r: r.Body, setDeadline: rc.SetReadDeadline, perRead: s.lim.BodyTimeout,
		until: time.Now().Add(s.lim.BodyDeadline)}
	err := body.fill(src, r.ContentLength, s.lim.BodyMemory, s.lim.MaxBody, s.BodyDir, nil)
	if err != nil {
		// An expired deadline: net/http must not wait for the rest of the
		// body when it closes the request.
		rc.SetReadDeadline(time.Now())
	} else {
		rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, ErrBodyTooLarge) {
		s.log.Warn("request body too large: refused", "max", s.lim.MaxBody, "remote", r.RemoteAddr)
		http.Error(rw, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return false
	}
	if err != nil {
		s.logBodyError(err, r.ContentLength, remoteString(r.RemoteAddr))
		panic(http.ErrAbortHandler) // net/http closes the connection without a response
	}
	return true
}

// remoteString is a client address as net/http gives it.
type remoteString string

func (a remoteString) Network() string { return "tcp" }
func (a remoteString) String() string  { return string(a) }

// httpResponse adapts http.ResponseWriter to api.ResponseWriter.
//
// net/http sends only standard reason phrases, so a status whose reason
// is another ("299 Custom Reason", or "299 Unknown" for a code without
// one) is written as the app gave it, as nginx passes it on: on the
// connection taken over from net/http, the body ending at its close.
type httpResponse struct {
	rw    http.ResponseWriter
	proto string
	head  bool // a HEAD request: no body goes out
	sent  bool
	err   error // the first write or flush error: the client is gone
	// hijacked: the connection became a WebSocket.
	hijacked bool

	// Set once the connection was taken over for a raw response.
	conn net.Conn
	raw  *bufio.ReadWriter
}

func (h *httpResponse) WriteHeader(status string, headers []api.Header) error {
	if h.sent {
		return ErrHeaderSent
	}
	code, line, err := ParseStatus(status)
	if err != nil {
		return err
	}
	for _, kv := range headers {
		if !validHeader(kv.Name, kv.Value) {
			return errors.New("host: invalid header " + kv.Name)
		}
	}
	h.sent = true
	if line[len("NNN "):] != http.StatusText(code) {
		return h.writeRawHeader(line, headers)
	}
	hdr := h.rw.Header()
	for _, kv := range headers {
		hdr.Add(kv.Name, kv.Value)
	}
	h.rw.WriteHeader(code)
	return nil
}

// writeRawHeader takes the connection over from net/http and writes the
// status line and headers itself; the connection closes after the body.
func (h *httpResponse) writeRawHeader(line string, headers []api.Header) error {
	conn, raw, err := http.NewResponseController(h.rw).Hijack()
	if err != nil {
		h.err = err
		return err
	}
	h.conn, h.raw = conn, raw
	proto := h.proto
	if proto != "HTTP/1.0" {
		proto = "HTTP/1.1"
	}
	raw.WriteString(proto + " " + line + "\r\n")
	for _, kv := range headers {
		if strings.EqualFold(kv.Name, "Connection") {
			continue
		}
		raw.WriteString(kv.Name + ": " + kv.Value + "\r\n")
	}
	_, err = raw.WriteString("Connection: close\r\n\r\n")
	h.err = err
	return err
}

func (h *httpResponse) Write(p []byte) (int, error) {
	if h.hijacked {
		return 0, ErrHijacked
	}
	if h.raw != nil {
		if h.head {
			return len(p), nil
		}
		n, err := h.raw.Write(p)
		if err != nil && h.err == nil {
			h.err = err
		}
		return n, err
	}
	h.sent = true
	n, err := h.rw.Write(p)
	if err != nil && h.err == nil {
		h.err = err
	}
	return n, err
}

func (h *httpResponse) Flush() error {
	if h.hijacked {
		return nil
	}
	var err error
	if h.raw != nil {
		err = h.raw.Flush()
	} else {
		err = http.NewResponseController(h.rw).Flush()
	}
	if err != nil && h.err == nil && !errors.Is(err, http.ErrNotSupported) {
		h.err = err
	}
	return err
}

// finish ends a raw response: what is buffered goes out and the
// connection closes.
func (h *httpResponse) finish() {
	if h.conn == nil {
		return
	}
	h.raw.Flush()
	h.conn.Close()
}

func (h *httpResponse) HeaderSent() bool { return h.sent }

// httpConn is the api.Conn of the HTTP front: sends are body bytes (the
// status and headers go out first), receives read the request body, and
// disconnect ends the response.
type httpConn struct {
	rw   http.ResponseWriter
	resp *httpResponse
	body interface{ Read([]byte) (int, error) }
	br   *bufio.Reader
}

func (c *httpConn) reader() *bufio.Reader {
	if c.br == nil {
		c.br = bufio.NewReader(c.body)
	}
	return c.br
}

func (c *httpConn) Read(p []byte) (int, error)  { return c.reader().Read(p) }
func (c *httpConn) Peek(n int) ([]byte, error)  { return c.reader().Peek(n) }
func (c *httpConn) Write(p []byte) (int, error) { return c.resp.Write(p) }
func (c *httpConn) Flush() error                { return c.resp.Flush() }
func (c *httpConn) SetReadDeadline(t time.Time) error {
	return http.NewResponseController(c.rw).SetReadDeadline(t)
}

func (c *httpConn) Close() error {
	if c.resp.conn != nil {
		c.resp.raw.Flush()
		return c.resp.conn.Close()
	}
	conn, _, err := http.NewResponseController(c.rw).Hijack()
	if err != nil {
		return err
	}
	return conn.Close()
}

// NewHTTPServer returns an http.Server for the front with timeouts drawn
// from the server's limits.
func (s *Server) NewHTTPServer(front *HTTPFront) *http.Server {
	s.init()
	return &http.Server{
		Handler:           front,
		ReadHeaderTimeout: s.lim.HeaderTimeout,
		IdleTimeout:       s.lim.IdleTimeout,
		MaxHeaderBytes:    s.lim.MaxPacket,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          nil,
	}
}
