package host

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// HTTPFront serves the scripts' apps over plain HTTP/1.1 with net/http,
// so the host can be tried without nginx. Each request takes the same
// path as a uwsgi request of Modifier1 (default 0: the default app, or
// the app mounted at its path).
type HTTPFront struct {
	Server    *Server
	Modifier1 uwsgi.Modifier
}

// ServeHTTP turns r into request vars, routes it and runs the app.
func (f *HTTPFront) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	s := f.Server
	s.init()
	var body requestBody
	defer body.release()
	if !f.readBody(rw, r, &body) {
		return
	}
	vars := uwsgi.RequestVars(r, body.size)
	rt := s.acquireRouter()
	var app *AppInfo
	if rt != nil {
		defer rt.gen.Env.Release()
		app, vars = rt.route(f.Modifier1, vars)
	}
	if app == nil {
		http.Error(rw, "no application found for this request", http.StatusInternalServerError)
		return
	}
	resp := &httpResponse{rw: rw}
	ctx, _, done := api.NewScope(r.Context(), &httpConn{rw: rw, resp: resp, body: &body}, s.lim.CallTimeout)
	defer done()
	req := &api.Request{Modifier1: f.Modifier1, Vars: vars, Body: &body}
	if err := app.App.ServeRequest(ctx, resp, req); err != nil {
		s.log.Error("app failed", "app", app.Name, "engine", app.Engine, "path", r.URL.Path, "err", err)
		if !resp.sent {
			http.Error(rw, "Internal Server Error", http.StatusInternalServerError)
		}
	}
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
type httpResponse struct {
	rw   http.ResponseWriter
	sent bool
}

func (h *httpResponse) WriteHeader(status string, headers []api.Header) error {
	if h.sent {
		return ErrHeaderSent
	}
	code, _, err := ParseStatus(status)
	if err != nil {
		return err
	}
	hdr := h.rw.Header()
	for _, kv := range headers {
		if !validHeader(kv.Name, kv.Value) {
			return errors.New("host: invalid header " + kv.Name)
		}
		hdr.Add(kv.Name, kv.Value)
	}
	h.sent = true
	h.rw.WriteHeader(code)
	return nil
}

func (h *httpResponse) Write(p []byte) (int, error) {
	h.sent = true
	return h.rw.Write(p)
}

func (h *httpResponse) Flush() error {
	return http.NewResponseController(h.rw).Flush()
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
