package host

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// WebSockets (RFC 6455). A request that asks for an upgrade gets an
// api.Upgrader in its context; when its script calls websocket_handshake
// the host answers 101 as uWSGI 2.0.21 does and the connection carries
// frames from then on. The framing (fragments, control frames, masking,
// close frames) is github.com/coder/websocket's: it works over any
// hijacked connection and its buffered reader, so it serves sockets
// whose request came as uwsgi vars as well as those of the HTTP front,
// and an idle socket costs no goroutine of its own inside it. The host
// adds what a shared process needs around it: a reader that keeps
// answering pings while the script does something else, UTF-8 checks
// of text messages, a bounded send queue that never blocks the script,
// server pings that drop dead peers, and the close on the script's
// return and on shutdown.

// ErrHijacked: the app wrote a response after its connection became a
// WebSocket.
var ErrHijacked = errors.New("host: the connection was upgraded to a websocket")

// wsFailed is the close code of a socket whose connection broke: no
// close frame could be exchanged.
const wsFailed = api.CloseAbnormal

// isUpgrade reports whether a request's vars ask for a WebSocket.
func isUpgrade(vars uwsgi.Vars) bool {
	return strings.EqualFold(vars.Get("HTTP_UPGRADE"), "websocket") &&
		hasToken(vars.Get("HTTP_CONNECTION"), "upgrade") &&
		vars.Get("HTTP_SEC_WEBSOCKET_KEY") != ""
}

// hasToken reports whether the comma-separated list v holds tok.
func hasToken(v, tok string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(part), tok) {
			return true
		}
	}
	return false
}

// varsRequest builds the handshake request from a uwsgi request's vars:
// the HTTP_ vars are its headers.
func varsRequest(vars uwsgi.Vars) *http.Request {
	r := &http.Request{Method: vars.Get("REQUEST_METHOD"), Header: http.Header{}, Host: vars.Get("HTTP_HOST")}
	r.Proto = vars.Get("SERVER_PROTOCOL")
	var ok bool
	if r.ProtoMajor, r.ProtoMinor, ok = http.ParseHTTPVersion(r.Proto); !ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	}
	for _, v := range vars {
		name, ok := strings.CutPrefix(string(v.Key), "HTTP_")
		if !ok {
			continue
		}
		r.Header.Set(strings.ReplaceAll(name, "_", "-"), string(v.Value))
	}
	return r
}

// upgrader is the api.Upgrader of one request.
type upgrader struct {
	srv *Server
	gen *Generation // held for the socket's life (Generation.Close waits)
	req *http.Request
	// hijack takes the connection over; markSent tells the request's
	// response that it must not write any more.
	hijack   func() (net.Conn, *bufio.ReadWriter, error)
	markSent func()
	packet   bool
	// restore, when set, gives the connection back what hijack took once
	// the socket is done with it.
	restore func()

	mu   sync.Mutex
	sock *socket
}

func (u *upgrader) Socket() api.WebSocket {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sock == nil {
		return nil // not a typed nil in an interface
	}
	return u.sock
}

// Upgrade answers the handshake. The call lives at most
// Limits.WebSocketTimeout from now (api.Scope.SetLifetime), and a socket
// lives as long as its call; a script's call keeps a time limit, which
// websocket_recv pauses (see api.LongCalls).
func (u *upgrader) Upgrade(ctx context.Context, key, origin, proto string) (api.WebSocket, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sock != nil {
		return u.sock, nil
	}
	r := u.req
	if key != "" || proto != "" {
		r = r.Clone(context.Background())
		if key != "" {
			r.Header.Set("Sec-WebSocket-Key", key)
		}
	}
	if origin == "" {
		origin = r.Header.Get("Origin")
	}
	if origin == "" {
		origin = "*"
	}
	if proto == "" {
		// uWSGI sends the offer back whole; a client offering several
		// accepts only one, so the first is chosen.
		proto, _, _ = strings.Cut(r.Header.Get("Sec-WebSocket-Protocol"), ",")
		proto = strings.TrimSpace(proto)
	}
	hw := &handshakeWriter{header: http.Header{}, proto: r.Proto, origin: origin, subproto: proto, hijack: u.hijack}
	// Counted from before the 101 goes out: Shutdown waits for the
	// socket even if it asks before the socket is tracked.
	u.srv.mu.Lock()
	u.srv.upgrading++
	u.srv.mu.Unlock()
	defer func() {
		u.srv.mu.Lock()
		u.srv.upgrading--
		u.srv.mu.Unlock()
	}()
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		if hw.conn != nil {
			hw.conn.Close()
			if u.restore != nil {
				u.restore()
			}
		}
		return nil, fmt.Errorf("host: websocket handshake: %w", err)
	}
	u.markSent()
	if s := api.ScopeOf(ctx); s != nil {
		// The socket lives at most so long; a Go app that upgrades has
		// no other limit, while websocket_handshake gives a script back
		// its time limit (see api.LongCalls).
		s.SetLifetime(u.srv.lim.WebSocketTimeout)
		s.SetHarakiri(u.srv.lim.WebSocketTimeout)
	}
	u.sock = u.srv.newSocket(c, hw.conn, u.gen, u.packet)
	u.req, u.hijack = nil, nil // not needed any more: an idle socket keeps less
	return u.sock, nil
}

// packetUpgrader is the upgrader of a uwsgi request on c.
func (srv *Server) packetUpgrader(c *conn, gen *Generation, vars uwsgi.Vars, resp *rawResponse) *upgrader {
	return &upgrader{srv: srv, gen: gen, req: varsRequest(vars), packet: true,
		hijack: func() (net.Conn, *bufio.ReadWriter, error) {
			if resp.sent {
				return nil, nil, ErrHeaderSent
			}
			if err := c.bw.Flush(); err != nil {
				return nil, nil, err
			}
			c.body.settle()
			c.upgraded.Store(true)
			// Reads and writes run at once from now on: through Go's
			// poller only.
			if err := toPoller(c.nc); err != nil {
				return nil, nil, err
			}
			// For the socket's life the connection's pooled 4 KiB buffers
			// go back to their pools: an idle socket keeps small ones (the
			// bytes already read move with it). restore undoes this.
			pending, _ := c.br.Peek(c.br.Buffered())
			br := bufio.NewReaderSize(bytes.NewReader(bytes.Clone(pending)), max(wsBufSize, len(pending)))
			br.Peek(len(pending))
			bw := bufio.NewWriterSize(deadlineWriter{c}, wsBufSize)
			c.br.Reset(nil)
			readerPool.Put(c.br)
			c.bw.Reset(nil)
			writerPool.Put(c.bw)
			c.br, c.bw = br, bw
			return c.nc, bufio.NewReadWriter(br, bw), nil
		},
		restore: func() {
			c.br = readerPool.Get().(*bufio.Reader)
			c.br.Reset(c.nc)
			c.bw = writerPool.Get().(*bufio.Writer)
			c.bw.Reset(deadlineWriter{c})
		},
		markSent: func() { resp.sent, resp.hijacked = true, true },
	}
}

// wsBufSize is the size of a socket's read and write buffers on a uwsgi
// connection: frame headers and small messages; larger payloads are read
// and written past them.
const wsBufSize = 1024

// frontUpgrader is the upgrader of a request of the HTTP front.
func (srv *Server) frontUpgrader(rw http.ResponseWriter, r *http.Request, gen *Generation, resp *httpResponse) *upgrader {
	return &upgrader{srv: srv, gen: gen, req: r,
		hijack: func() (net.Conn, *bufio.ReadWriter, error) {
			if resp.sent {
				return nil, nil, ErrHeaderSent
			}
			return http.NewResponseController(rw).Hijack()
		},
		markSent: func() { resp.sent, resp.hijacked = true, true },
	}
}

// finish ends the socket when the request's call returned: a close
// handshake with 1000, or 1011 when the script failed. It waits until
// nothing uses the connection any more.
func (u *upgrader) finish(failed bool) {
	u.mu.Lock()
	s := u.sock
	u.mu.Unlock()
	if s == nil {
		return
	}
	code := api.CloseNormal
	if failed {
		code = api.CloseInternalError
	}
	s.Close(code, "")
	s.wait()
	if u.restore != nil {
		u.restore()
	}
}

// socketFailed reports whether a call that upgraded failed: an error
// that only says how its socket ended (the peer closed or left) is none.
func socketFailed(err error) bool {
	var ce *api.WebSocketCloseError
	return err != nil && !errors.As(err, &ce) && !errors.Is(err, net.ErrClosed) &&
		!errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET)
}

// handshakeWriter is the http.ResponseWriter websocket.Accept answers
// through: a 101 is written as uWSGI writes it, on the connection taken
// over; any other answer (a refused handshake) is dropped, and the
// request's script may still answer the request itself.
type handshakeWriter struct {
	header   http.Header
	proto    string
	origin   string
	subproto string
	hijack   func() (net.Conn, *bufio.ReadWriter, error)

	conn net.Conn
	brw  *bufio.ReadWriter
	err  error
}

func (w *handshakeWriter) Header() http.Header         { return w.header }
func (w *handshakeWriter) Write(p []byte) (int, error) { return len(p), nil }

func (w *handshakeWriter) WriteHeader(code int) {
	if code != http.StatusSwitchingProtocols || w.conn != nil {
		return
	}
	conn, brw, err := w.hijack()
	if err != nil {
		w.err = err
		return
	}
	w.conn, w.brw = conn, brw
	proto := w.proto
	if proto != "HTTP/1.0" {
		proto = "HTTP/1.1"
	}
	bw := brw.Writer
	bw.WriteString(proto + " 101 Web Socket Protocol Handshake\r\n")
	bw.WriteString("Upgrade: WebSocket\r\nConnection: Upgrade\r\n")
	bw.WriteString("Sec-WebSocket-Origin: " + headerValue(w.origin) + "\r\n")
	if w.subproto != "" {
		bw.WriteString("Sec-WebSocket-Protocol: " + headerValue(w.subproto) + "\r\n")
	}
	bw.WriteString("Sec-WebSocket-Accept: " + w.header.Get("Sec-WebSocket-Accept") + "\r\n\r\n")
	w.err = bw.Flush()
}

// headerValue drops line breaks from a value a script gave.
func headerValue(v string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(v)
}

func (w *handshakeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.conn == nil && w.err == nil {
		w.err = errors.New("host: websocket: hijacked before the 101 answer")
	}
	if w.err != nil {
		return nil, nil, w.err
	}
	return w.conn, w.brw, nil
}

// message is one whole WebSocket message.
type message struct {
	data   []byte
	binary bool
}

// socket is the host's api.WebSocket.
type socket struct {
	srv *Server
	c   *websocket.Conn
	nc  net.Conn
	gen *Generation
	// packet is true for a socket on a uwsgi connection (one of
	// Server.conns), false for one of the HTTP front.
	packet bool

	recv     chan message  // messages read, waiting for Recv
	readDone chan struct{} // closed when the reader ended
	stalled  atomic.Bool   // the reader waits for Recv to take a message

	mu        sync.Mutex
	queue     []message // messages waiting to be written
	queued    int       // their bytes
	writing   bool      // a writer goroutine drains the queue
	idle      sync.Cond // signalled when the writer ends (L is &mu)
	closeCode int       // set once a close was decided
	closeWhy  string
	end       *api.WebSocketCloseError // how the socket ended, for Recv and Send
	closing   bool                     // the close handshake started
	done      chan struct{}            // closed when the connection is closed

	pingMu    sync.Mutex
	pinger    *time.Timer
	pings     sync.WaitGroup
	stopPings bool
}

var _ api.WebSocket = (*socket)(nil)

// newSocket starts serving a WebSocket made by Accept on nc.
func (srv *Server) newSocket(c *websocket.Conn, nc net.Conn, gen *Generation, packet bool) *socket {
	// A socket is not a slow request: no packet deadline applies to it.
	nc.SetReadDeadline(time.Time{})
	c.SetReadLimit(srv.lim.WebSocketMaxMessage)
	s := &socket{srv: srv, c: c, nc: nc, gen: gen, packet: packet,
		recv: make(chan message, 1), readDone: make(chan struct{}), done: make(chan struct{})}
	s.idle.L = &s.mu
	if gen != nil {
		gen.socketOpened()
	}
	srv.trackSocket(s)
	go s.readLoop()
	if d := srv.lim.WebSocketPing; d > 0 {
		s.pingMu.Lock()
		s.pinger = time.AfterFunc(d, s.ping)
		s.pingMu.Unlock()
	}
	return s
}

// readLoop reads whole messages and hands them to Recv one at a time;
// while it waits for Recv the peer's frames wait in the kernel.
func (s *socket) readLoop() {
	defer close(s.readDone)
	for {
		typ, data, err := s.c.Read(context.Background())
		if err != nil {
			s.readFailed(err)
			return
		}
		if typ == websocket.MessageText && !utf8.Valid(data) {
			s.fail(api.CloseInvalidData, "invalid UTF-8 in a text message")
			return
		}
		s.stalled.Store(true)
		select {
		case s.recv <- message{data: data, binary: typ == websocket.MessageBinary}:
		case <-s.done:
			s.stalled.Store(false)
			return
		}
		s.stalled.Store(false)
	}
}

// readFailed records why reading ended.
func (s *socket) readFailed(err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// The peer closed; the library answered and closed the connection.
		s.ended(int(ce.Code), ce.Reason)
		s.markDone()
	case errors.Is(err, websocket.ErrMessageTooBig):
		s.fail(api.CloseTooBig, "message too big")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The peer shut its side without a close frame: Recv ends, but
		// the script may still send until it returns (uWSGI's peers see
		// their answers after such a half close).
		s.mu.Lock()
		if s.end == nil {
			s.end = &api.WebSocketCloseError{Code: wsFailed}
		}
		s.mu.Unlock()
	case errors.Is(err, net.ErrClosed):
		s.ended(wsFailed, "")
		s.markDone()
	default:
		// A protocol violation: the library sent 1002 when it could.
		s.fail(api.CloseProtocolError, "protocol error")
	}
}

// ended records how the socket ended, once.
func (s *socket) ended(code int, reason string) {
	s.mu.Lock()
	if s.end == nil {
		s.end = &api.WebSocketCloseError{Code: code, Reason: reason}
	}
	if s.closeCode == 0 {
		s.closeCode = code
	}
	s.mu.Unlock()
}

// fail closes the socket at once with code, dropping what is queued.
func (s *socket) fail(code int, reason string) {
	s.mu.Lock()
	s.queue, s.queued = nil, 0
	s.mu.Unlock()
	s.Close(code, reason)
}

// markDone notes that the connection is closed.
func (s *socket) markDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (s *socket) Recv(ctx context.Context) ([]byte, bool, error) {
	select {
	case m := <-s.recv:
		return m.data, m.binary, nil
	default:
	}
	select {
	case m := <-s.recv:
		return m.data, m.binary, nil
	case <-s.readDone:
		return s.afterRead()
	case <-ctx.Done():
		return nil, false, context.Cause(ctx)
	}
}

func (s *socket) TryRecv() ([]byte, bool, bool, error) {
	select {
	case m := <-s.recv:
		return m.data, m.binary, true, nil
	case <-s.readDone:
		msg, bin, err := s.afterRead()
		return msg, bin, err == nil, err
	default:
		return nil, false, false, nil
	}
}

// afterRead returns a last message read before the reader ended, else
// how the socket ended.
func (s *socket) afterRead() ([]byte, bool, error) {
	select {
	case m := <-s.recv:
		return m.data, m.binary, nil
	default:
	}
	return nil, false, s.endErr()
}

func (s *socket) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end != nil {
		return s.end
	}
	return &api.WebSocketCloseError{Code: wsFailed}
}

// Send queues msg. A send over the queue's bound closes the socket with
// 1008: a peer that does not read must not make the host hold its
// messages. One message is always accepted when nothing is queued.
func (s *socket) Send(ctx context.Context, msg []byte, binary bool) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.mu.Lock()
	if s.closeCode != 0 {
		s.mu.Unlock()
		return s.endErr()
	}
	if len(s.queue) > 0 && s.queued+len(msg) > s.srv.lim.WebSocketSendQueue {
		s.mu.Unlock()
		s.srv.log.Warn("websocket peer does not read: send queue full, closing",
			"max", s.srv.lim.WebSocketSendQueue, "remote", s.nc.RemoteAddr())
		s.fail(api.ClosePolicy, "send queue full")
		return s.endErr()
	}
	s.queue = append(s.queue, message{data: append([]byte(nil), msg...), binary: binary})
	s.queued += len(msg)
	s.startWriter()
	s.mu.Unlock()
	return nil
}

// Close starts the close handshake after the queued messages.
func (s *socket) Close(code int, reason string) error {
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeCode != 0 {
		return nil
	}
	s.closeCode, s.closeWhy = code, reason
	if s.end == nil {
		s.end = &api.WebSocketCloseError{Code: code, Reason: reason}
	}
	s.startWriter()
	return nil
}

// startWriter starts the goroutine that writes the queue and then, once
// a close was decided, the close frame. It runs only while there is
// something to write. s.mu is held.
func (s *socket) startWriter() {
	if s.writing || s.closing {
		return
	}
	s.writing = true
	go s.writeLoop()
}

func (s *socket) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			if s.closeCode != 0 && !s.closing {
				s.closing = true
				code, why := s.closeCode, s.closeWhy
				s.mu.Unlock()
				s.closeHandshake(code, why)
				s.mu.Lock()
			}
			s.writing = false
			s.idle.Broadcast()
			s.mu.Unlock()
			return
		}
		m := s.queue[0]
		s.queue[0] = message{}
		s.queue = s.queue[1:]
		s.queued -= len(m.data)
		s.mu.Unlock()
		typ := websocket.MessageText
		if m.binary {
			typ = websocket.MessageBinary
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.lim.WriteTimeout)
		err := s.c.Write(ctx, typ, m.data)
		cancel()
		if err != nil {
			// The library closed the connection.
			s.mu.Lock()
			s.queue, s.queued = nil, 0
			s.mu.Unlock()
			s.ended(wsFailed, "")
		}
	}
}

// closeHandshake sends the close frame, waits a bounded time for the
// peer's, and closes the connection. After a protocol error the frames
// that follow may not even be frames: the peer gets a moment only.
func (s *socket) closeHandshake(code int, why string) {
	grace := closeWait
	if code == api.CloseProtocolError {
		grace = failWait
	}
	t := time.AfterFunc(grace, func() { s.nc.Close() })
	if code == api.CloseNoStatus || code == wsFailed || code < 1000 || code > 4999 {
		s.c.CloseNow()
	} else {
		s.c.Close(websocket.StatusCode(code), why)
	}
	t.Stop()
	s.nc.Close()
	s.markDone()
}

// How long the peer has to answer a close frame: after a close, and
// after a protocol error.
const (
	closeWait = 5 * time.Second
	failWait  = time.Second
)

// ping sends a server ping every Limits.WebSocketPing; a peer that does
// not answer within Limits.WebSocketPongTimeout is dropped. A peer is not
// pinged while the script has not taken its last message: its answer
// could not be read.
func (s *socket) ping() {
	s.pingMu.Lock()
	if s.stopPings {
		s.pingMu.Unlock()
		return
	}
	s.pings.Add(1)
	s.pingMu.Unlock()
	defer s.pings.Done()
	if !s.stalled.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.lim.WebSocketPongTimeout)
		err := s.c.Ping(ctx)
		cancel()
		if err != nil {
			select {
			case <-s.done:
			default:
				s.srv.log.Info("websocket peer did not answer a ping: dropped", "remote", s.nc.RemoteAddr(),
					"pong_timeout", s.srv.lim.WebSocketPongTimeout)
				s.ended(wsFailed, "")
				s.nc.Close()
			}
			return
		}
	}
	s.pingMu.Lock()
	if !s.stopPings {
		s.pinger.Reset(s.srv.lim.WebSocketPing)
	}
	s.pingMu.Unlock()
}

// wait waits until the socket's goroutines are done with the connection,
// closing it outright if the close handshake takes too long.
func (s *socket) wait() {
	t := time.NewTimer(s.srv.lim.WriteTimeout + 10*time.Second)
	select {
	case <-s.done:
	case <-t.C:
		s.nc.Close()
	}
	t.Stop()
	s.nc.Close()
	<-s.readDone
	s.mu.Lock()
	for s.writing {
		s.idle.Wait()
	}
	s.mu.Unlock()
	s.pingMu.Lock()
	s.stopPings = true
	if s.pinger != nil {
		s.pinger.Stop()
	}
	s.pingMu.Unlock()
	s.pings.Wait()
	s.markDone()
	s.srv.untrackSocket(s)
	if s.gen != nil {
		s.gen.socketClosed()
	}
}

// trackSocket registers an open socket for Shutdown and Close.
func (srv *Server) trackSocket(s *socket) {
	srv.mu.Lock()
	if srv.sockets == nil {
		srv.sockets = make(map[*socket]struct{})
	}
	srv.sockets[s] = struct{}{}
	if s.packet {
		srv.packetSockets++
	}
	late := srv.goingAway
	srv.mu.Unlock()
	if late {
		s.Close(api.CloseGoingAway, "server shutting down")
	}
}

func (srv *Server) untrackSocket(s *socket) {
	srv.mu.Lock()
	if _, ok := srv.sockets[s]; ok && s.packet {
		srv.packetSockets--
	}
	delete(srv.sockets, s)
	srv.mu.Unlock()
}

// closeSockets starts the close handshake of every open socket.
func (srv *Server) closeSockets(code int, reason string) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.goingAway = true
	for s := range srv.sockets {
		s.Close(code, reason)
	}
}

// OpenWebSockets reports how many WebSockets are open.
func (srv *Server) OpenWebSockets() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sockets)
}

// socketOpened and socketClosed count the sockets a generation serves:
// it is not freed while one is open.
func (g *Generation) socketOpened() {
	g.wsMu.Lock()
	g.wsOpen++
	g.wsMu.Unlock()
}

func (g *Generation) socketClosed() {
	g.wsMu.Lock()
	g.wsOpen--
	if g.wsOpen == 0 && g.wsIdle != nil {
		close(g.wsIdle)
		g.wsIdle = nil
	}
	g.wsMu.Unlock()
}

// socketsClosed returns a channel closed when no socket of g is open.
func (g *Generation) socketsClosed() <-chan struct{} {
	g.wsMu.Lock()
	defer g.wsMu.Unlock()
	ch := make(chan struct{})
	if g.wsOpen == 0 {
		close(ch)
		return ch
	}
	if g.wsIdle == nil {
		g.wsIdle = ch
	}
	return g.wsIdle
}
