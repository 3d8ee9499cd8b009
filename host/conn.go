package host

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Outcome tells the connection loop what to do after a handler returns.
type Outcome int

const (
	// Close ends the connection: after raw and HTTP responses (whose end
	// is the close), and after failures reported uWSGI's way.
	Close Outcome = iota
	// Keep serves the connection's next packet: after a complete framed
	// response. On a plain connection (one that did not negotiate the
	// extension) only packets already received are served, then the
	// connection closes, as uWSGI closes after every answer.
	Keep
)

// Handler serves the packets of one modifier1. It runs on the connection's
// goroutine; ctx carries the call deadline and is cancelled when the server
// is closed.
type Handler interface {
	ServeUWSGI(ctx context.Context, w *PacketWriter, r *Packet) Outcome
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, w *PacketWriter, r *Packet) Outcome

// ServeUWSGI calls f.
func (f HandlerFunc) ServeUWSGI(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	return f(ctx, w, r)
}

// Packet is one packet received on a connection. Payload is only valid
// until the handler returns.
type Packet struct {
	uwsgi.Packet
	// Extended is true on connections that negotiated the scripthost
	// extension: failures are answered with error frames.
	Extended bool
	// Listener is the address of the listener the connection came in on.
	Listener string
	// RemoteAddr is the client's address, asked of the connection only
	// when used.
	RemoteAddr net.Addr
	// Ops is true on operations listeners (Server.ServeOps), the only ones
	// where operator packets (eval, reload) are allowed.
	Ops bool

	c *conn
}

// Body returns the bytes that follow the packet on the connection (an
// HTTP request body, a cache value). Each read waits at most the body
// timeout. Readers must not read past what the packet announces.
func (r *Packet) Body() io.Reader { return bodyReader{r.c} }

// Conn returns the raw connection, for protocols that take it over after
// a response (WebSockets). Reads must go through Body, which holds the
// buffered bytes.
func (r *Packet) Conn() net.Conn { return r.c.nc }

// Vars parses the payload as a vars block within the server's limits.
func (r *Packet) Vars(dst uwsgi.Vars) (uwsgi.Vars, error) {
	return uwsgi.ParseVars(dst, r.Payload, r.c.srv.lim.MaxVars)
}

// Fail reports a failure: clients using the extension get an error frame
// and the connection stays usable; uWSGI clients see the connection
// closed without a byte, as uWSGI does.
func (r *Packet) Fail(w *PacketWriter, code uwsgi.Code, msg string) Outcome {
	if !r.Extended {
		return Close
	}
	w.buf = uwsgi.AppendError(w.buf[:0], code, msg)
	if _, err := w.Write(w.buf); err != nil {
		return Close
	}
	return Keep
}

// PacketWriter buffers what a handler writes to its connection; the
// buffer is flushed when the handler returns, or by Flush. Every write to
// the socket waits at most the write timeout.
type PacketWriter struct {
	c   *conn
	buf []byte // scratch space for handlers that build small replies
}

// Write writes p through the connection's buffer.
func (w *PacketWriter) Write(p []byte) (int, error) { return w.c.bw.Write(p) }

// WriteString writes s through the connection's buffer.
func (w *PacketWriter) WriteString(s string) (int, error) { return w.c.bw.WriteString(s) }

// Flush sends what is buffered.
func (w *PacketWriter) Flush() error { return w.c.bw.Flush() }

// Scratch returns a reusable byte slice of length 0 for building replies.
func (w *PacketWriter) Scratch() []byte { return w.buf[:0] }

type connState int

const (
	stateActive connState = iota // reading or serving a packet
	stateIdle                    // extended, waiting for the next packet
	stateClosed                  // closed by Shutdown
)

type conn struct {
	srv      *Server
	nc       net.Conn
	listener string
	ops      bool
	br       *bufio.Reader
	bw       *bufio.Writer
	extended bool
	// upgraded: the connection carries a WebSocket; only the socket
	// reads and writes it.
	upgraded atomic.Bool

	// Scratch space reused across the connection's packets, and across
	// the connections of an accept worker (see reset).
	items   [][]byte
	vars    uwsgi.Vars
	value   []byte
	payload []byte
	body    requestBody // the request body of an app request
	bodyBuf []byte      // scratch for small bodies
	w       PacketWriter
	req     Packet

	mu    sync.Mutex
	state connState
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// reset readies c, new or used for an earlier connection, for nc; its
// scratch buffers stay.
func (c *conn) reset(s *Server, nc net.Conn, listener string, ops bool) {
	c.srv, c.nc, c.listener, c.ops = s, nc, listener, ops
	c.br, c.bw, c.extended = nil, nil, false
	c.upgraded.Store(false)
	c.items, c.vars, c.value = c.items[:0], c.vars[:0], c.value[:0]
	c.state = stateActive
}

// serve serves the connection's packets until it ends.
func (c *conn) serve() {
	s := c.srv
	defer func() {
		c.nc.Close()
		s.untrack(c)
	}()
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.nc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(deadlineWriter{c})
	defer func() {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
	}()

	if cap(c.w.buf) == 0 {
		c.w.buf = make([]byte, 0, 256)
	}
	c.w = PacketWriter{c: c, buf: c.w.buf[:0]}
	c.req = Packet{Listener: c.listener, RemoteAddr: remoteAddr{c.nc}, Ops: c.ops, c: c}
	w, req := &c.w, &c.req
	payload := c.payload
	defer func() { c.payload = payload[:0] }()
	for first := true; ; first = false {
		if !first && !c.waitNext() {
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(s.lim.HeaderTimeout))
		h, err := uwsgi.ReadHeader(c.br)
		if err != nil {
			c.logReadError("header", err, first)
			return
		}
		if int(h.Size) > s.lim.MaxPacket {
			s.log.Warn("invalid request block size: packet dropped", "size", h.Size, "max", s.lim.MaxPacket,
				"modifier1", h.Modifier1, "remote", c.nc.RemoteAddr())
			return
		}
		if cap(payload) < int(h.Size) {
			payload = make([]byte, h.Size, max(int(h.Size), 512))
		}
		payload = payload[:h.Size]
		if _, err := io.ReadFull(c.br, payload); err != nil {
			c.logReadError("packet", err, false)
			return
		}
		handler := s.handlers[h.Modifier1]
		if handler == nil {
			s.log.Warn("unavailable modifier requested", "modifier1", h.Modifier1, "remote", c.nc.RemoteAddr())
			return
		}
		req.Packet = uwsgi.Packet{Header: h, Payload: payload}
		req.Extended = c.extended
		outcome := c.run(handler, w, req)
		// Replies to pipelined packets already received go out together.
		if outcome == Keep && c.br.Buffered() >= uwsgi.HeaderSize && c.bw.Available() > 512 {
			continue
		}
		if err := c.bw.Flush(); err != nil {
			return
		}
		if outcome != Keep {
			return
		}
	}
}

// run calls the handler, turning a panic into a logged, closed
// connection. The context ends when the server is closed; handlers that
// run scripts give their calls the call timeout (api.NewScope).
func (c *conn) run(h Handler, w *PacketWriter, r *Packet) (out Outcome) {
	ctx := c.srv.base
	defer func() {
		if p := recover(); p != nil {
			c.srv.log.Error("handler panic", "modifier1", r.Modifier1, "panic", p, "stack", string(debug.Stack()))
			out = Close
		}
	}()
	return h.ServeUWSGI(ctx, w, r)
}

// waitNext waits for the first byte of the next packet after a framed
// answer. It reports false when the connection should end: it is plain
// and no packet it pipelined is left in the read buffer (one-shot clients
// then read our close instead of having to close first), the client went
// away, the idle timeout passed (extended clients then get a close mark),
// or Shutdown closed it.
func (c *conn) waitNext() bool {
	if c.br.Buffered() > 0 {
		return true // a pipelined packet is here: not idle
	}
	if !c.extended {
		return false
	}
	if !c.setState(stateIdle) {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(c.srv.lim.IdleTimeout))
	_, err := c.br.Peek(1)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.closeIfIdle()
		}
		return false
	}
	return c.setState(stateActive)
}

func (c *conn) setState(st connState) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateClosed {
		return false
	}
	c.state = st
	return true
}

// closeIfIdle closes the connection if it waits for a next packet; an
// extended client is told with a close mark first.
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateIdle {
		return
	}
	c.state = stateClosed
	if c.extended {
		mark := uwsgi.CloseMark.Bytes()
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(mark[:])
	}
	c.nc.Close()
}

func (c *conn) logReadError(what string, err error, first bool) {
	if errors.Is(err, io.EOF) && first || errors.Is(err, net.ErrClosed) {
		return // the client connected and left, or we closed it
	}
	if errors.Is(err, io.EOF) {
		return // an extended client closing between packets
	}
	msg := "read failed"
	if errors.Is(err, os.ErrDeadlineExceeded) {
		msg = "client too slow: timed out"
	}
	c.srv.log.Info(msg, "reading", what, "remote", c.nc.RemoteAddr(), "err", err)
}

// deadlineWriter gives every socket write the write timeout.
type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.nc.SetWriteDeadline(time.Now().Add(d.c.srv.lim.WriteTimeout))
	return d.c.nc.Write(p)
}

// bodyReader gives every body read the body timeout.
type bodyReader struct{ c *conn }

func (b bodyReader) Read(p []byte) (int, error) {
	b.c.nc.SetReadDeadline(time.Now().Add(b.c.srv.lim.BodyTimeout))
	return b.c.br.Read(p)
}

// remoteAddr is a Packet's RemoteAddr: it asks the connection only when
// printed, which happens in log lines, not on the hot path.
type remoteAddr struct{ nc net.Conn }

func (a remoteAddr) Network() string { return a.nc.RemoteAddr().Network() }
func (a remoteAddr) String() string  { return a.nc.RemoteAddr().String() }
