package apitest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// errHeaderSent is the ResponseWriter's refusal of a second header.
var errHeaderSent = errors.New("apitest: response header already sent")

// Conn is the server side of a client connection as a host gives it to a
// call: an api.Conn over a real socket, buffered both ways.
type Conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

var _ api.Conn = (*Conn)(nil)

// NewConn wraps the server side of a connection.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}
}

// Read reads from the connection through its buffer.
func (c *Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// Write buffers p for the connection.
func (c *Conn) Write(p []byte) (int, error) { return c.bw.Write(p) }

// Flush sends what is buffered.
func (c *Conn) Flush() error { return c.bw.Flush() }

// Peek returns the next n bytes without consuming them.
func (c *Conn) Peek(n int) ([]byte, error) { return c.br.Peek(n) }

// SetReadDeadline sets the connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Close sends what is buffered and closes the connection.
func (c *Conn) Close() error {
	c.bw.Flush()
	return c.nc.Close()
}

// ResponseWriter is an api.ResponseWriter writing raw HTTP to a Conn the
// way a host does: the status line (with the request's protocol) and the
// headers on the first Write or Flush, then the body.
type ResponseWriter struct {
	conn    *Conn
	proto   string
	status  string
	headers []api.Header
	sent    bool
}

var _ api.ResponseWriter = (*ResponseWriter)(nil)

// NewResponseWriter returns a writer of responses to conn.
func NewResponseWriter(conn *Conn, proto string) *ResponseWriter {
	return &ResponseWriter{conn: conn, proto: proto}
}

// WriteHeader implements api.ResponseWriter.
func (w *ResponseWriter) WriteHeader(status string, headers []api.Header) error {
	if w.sent {
		return errHeaderSent
	}
	w.status, w.headers = status, headers
	return nil
}

// Status normalizes a status as a host does: a bare code gets its
// standard reason phrase ("Unknown" for codes without one), an empty
// status is "200 OK".
func Status(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "200 OK"
	}
	if code, err := strconv.Atoi(s); err == nil {
		text := http.StatusText(code)
		if text == "" {
			text = "Unknown"
		}
		return fmt.Sprintf("%d %s", code, text)
	}
	return s
}

func (w *ResponseWriter) sendHeader() error {
	if w.sent {
		return nil
	}
	w.sent = true
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\r\n", w.proto, Status(w.status))
	for _, h := range w.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	b.WriteString("\r\n")
	_, err := w.conn.Write([]byte(b.String()))
	return err
}

// Write implements api.ResponseWriter.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if err := w.sendHeader(); err != nil {
		return 0, err
	}
	return w.conn.Write(p)
}

// Flush implements api.ResponseWriter.
func (w *ResponseWriter) Flush() error {
	if err := w.sendHeader(); err != nil {
		return err
	}
	return w.conn.Flush()
}

// HeaderSent implements api.ResponseWriter.
func (w *ResponseWriter) HeaderSent() bool { return w.sent }

// resp is what the client of a Request case receives for a 200 response
// without headers.
func resp(body string) string { return "HTTP/1.1 200 OK\r\n\r\n" + body }

// RequestVars are the vars of the request a Request case serves.
func RequestVars() uwsgi.Vars {
	var vs uwsgi.Vars
	for _, kv := range [][2]string{
		{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/case"}, {"PATH_INFO", "/case"},
		{"QUERY_STRING", ""}, {"SCRIPT_NAME", ""}, {"CONTENT_TYPE", ""}, {"CONTENT_LENGTH", "0"},
		{"SERVER_PROTOCOL", "HTTP/1.1"}, {"SERVER_NAME", "testhost"}, {"SERVER_PORT", "80"},
		{"REMOTE_ADDR", "127.0.0.1"}, {"REMOTE_PORT", "40000"}, {"HTTP_HOST", "testhost"},
	} {
		vs = vs.Add(kv[0], kv[1])
	}
	return vs
}

// Pipe returns both ends of a loopback TCP connection.
func Pipe() (server, client net.Conn, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		client.Close()
		return nil, nil, a.err
	}
	return a.c, client, nil
}

// serve serves one request of case c to app and returns everything the
// client received, and ServeRequest's error.
func (f *Fixture) serve(app api.App, c Case) (string, error) {
	t := f.T
	srv, cli, err := Pipe()
	if err != nil {
		t.Fatalf("loopback connection: %v", err)
	}
	defer cli.Close()
	defer srv.Close()
	cli.SetDeadline(time.Now().Add(callTimeout + waitTimeout))
	if _, err := io.WriteString(cli, c.Input); err != nil {
		t.Fatalf("client write: %v", err)
	}
	if c.CloseInput {
		cli.(*net.TCPConn).CloseWrite()
	}
	received := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(cli)
		received <- b
	}()

	conn := NewConn(srv)
	if len(c.Input) > 0 {
		// All the input is buffered before the call, so that what recv
		// returns does not depend on how TCP splits it.
		srv.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := conn.Peek(len(c.Input)); err != nil {
			t.Fatalf("waiting for the input: %v", err)
		}
		srv.SetReadDeadline(time.Time{})
	}
	w := NewResponseWriter(conn, "HTTP/1.1")
	req := &api.Request{Modifier1: f.Engine.Modifier(), Vars: RequestVars(), Body: strings.NewReader("")}
	ctx, _, done := api.NewScope(f.Ctx, conn, callTimeout)
	if c.WebSocket != nil {
		f.Upgrader = NewUpgrader(*c.WebSocket)
		ctx = api.WithUpgrader(ctx, f.Upgrader)
	}
	start := time.Now()
	err = app.ServeRequest(ctx, w, req)
	f.Returned = time.Now()
	f.Elapsed = f.Returned.Sub(start)
	done()
	if ferr := w.Flush(); err == nil && !c.Disconnects && c.WantErr == nil {
		err = ferr
	}
	srv.Close()
	return string(<-received), err
}
