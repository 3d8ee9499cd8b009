package host

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
)

// ErrHeaderSent is returned by WriteHeader after the status line went out.
var ErrHeaderSent = errors.New("host: response header already sent")

// rawResponse is the api.ResponseWriter of uwsgi requests: a raw HTTP
// response written straight to the connection, as uWSGI writes it (no
// Content-Length or chunking of its own; the body ends at the close).
type rawResponse struct {
	w     *PacketWriter
	proto string
	sent  bool
	// hijacked: the connection became a WebSocket; nothing more is
	// written as a response.
	hijacked bool
	written  int64
	err      error // the first write or flush error: the client is gone
}

func newRawResponse(w *PacketWriter, proto string) *rawResponse {
	if proto == "" {
		proto = "HTTP/1.0"
	}
	return &rawResponse{w: w, proto: proto}
}

// ParseStatus turns an app's status ("404", "404 Not Found", "200") into a
// code and the reason to send: a bare code gets its standard reason, or
// "Unknown" as in uWSGI.
func ParseStatus(status string) (code int, line string, err error) {
	status = strings.TrimSpace(status)
	num, reason, _ := strings.Cut(status, " ")
	code, err = strconv.Atoi(num)
	if err != nil || code < 100 || code > 999 || len(num) != 3 {
		return 0, "", errors.New("host: invalid status " + strconv.Quote(status))
	}
	if reason == "" {
		line = strings.TrimSuffix(StatusLine("", code)[len("HTTP/1.0 "):], "\r\n")
		return code, line, nil
	}
	if strings.ContainsAny(reason, "\r\n") {
		return 0, "", errors.New("host: line break in status " + strconv.Quote(status))
	}
	return code, num + " " + reason, nil
}

func (r *rawResponse) WriteHeader(status string, headers []api.Header) error {
	if r.sent {
		return ErrHeaderSent
	}
	_, line, err := ParseStatus(status)
	if err != nil {
		return err
	}
	for _, h := range headers {
		if !validHeader(h.Name, h.Value) {
			return errors.New("host: invalid header " + strconv.Quote(h.Name))
		}
	}
	r.sent = true
	w := r.w
	w.WriteString(r.proto)
	w.WriteString(" ")
	w.WriteString(line)
	w.WriteString("\r\n")
	for _, h := range headers {
		w.WriteString(h.Name)
		w.WriteString(": ")
		w.WriteString(h.Value)
		w.WriteString("\r\n")
	}
	// The connection's buffer keeps its first write error: the last
	// write reports any of them.
	_, err = w.WriteString("\r\n")
	r.err = err
	return err
}

// validHeader refuses names and values that would break the response
// framing (CR, LF, and colons or spaces in names).
func validHeader(name, value string) bool {
	if name == "" || strings.ContainsAny(name, ": \r\n\t") {
		return false
	}
	return !strings.ContainsAny(value, "\r\n")
}

func (r *rawResponse) Write(p []byte) (int, error) {
	if r.hijacked {
		return 0, ErrHijacked
	}
	if !r.sent {
		if err := r.WriteHeader("200", nil); err != nil {
			return 0, err
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.w.Write(p)
	r.written += int64(n)
	r.err = err
	return n, err
}

func (r *rawResponse) Flush() error {
	if r.hijacked {
		return nil
	}
	if r.err != nil {
		return r.err
	}
	r.err = r.w.Flush()
	return r.err
}

func (r *rawResponse) HeaderSent() bool { return r.sent }

// clientConn is the api.Conn of a uwsgi request: raw access to the
// client connection for send/recv, WebSockets and disconnect.
type clientConn struct{ c *conn }

// Read reads the raw stream after the request packet, not limited to the
// body (WebSocket frames follow a request without one): the body the
// host read ahead first, then the connection.
func (cc *clientConn) Read(p []byte) (int, error) {
	if cc.c.upgraded.Load() {
		return 0, ErrHijacked
	}
	if cc.c.body.remaining() > 0 {
		return cc.c.body.Read(p)
	}
	cc.c.body.settle()
	return bodyReader{cc.c}.Read(p)
}

// After a WebSocket upgrade the connection's bytes are frames: raw reads
// and writes would tear them (and race with the socket's goroutines).

func (cc *clientConn) Write(p []byte) (int, error) {
	if cc.c.upgraded.Load() {
		return 0, ErrHijacked
	}
	return cc.c.bw.Write(p)
}

func (cc *clientConn) Flush() error {
	if cc.c.upgraded.Load() {
		return ErrHijacked
	}
	return cc.c.bw.Flush()
}

func (cc *clientConn) Close() error {
	if !cc.c.upgraded.Load() {
		cc.c.bw.Flush()
	}
	return cc.c.nc.Close()
}

func (cc *clientConn) Peek(n int) ([]byte, error) {
	if cc.c.upgraded.Load() {
		return nil, ErrHijacked
	}
	if cc.c.body.remaining() > 0 {
		return cc.c.body.peek(n)
	}
	cc.c.body.settle()
	cc.c.nc.SetReadDeadline(time.Now().Add(cc.c.srv.lim.BodyTimeout))
	return cc.c.br.Peek(n)
}

func (cc *clientConn) SetReadDeadline(t time.Time) error { return cc.c.nc.SetReadDeadline(t) }
