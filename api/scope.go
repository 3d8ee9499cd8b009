package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Errors of the per-call scope.
var (
	ErrNoConnection = errors.New("api: no client connection in this call")
	ErrBadHandle    = errors.New("api: no such file descriptor")
	ErrHarakiri     = errors.New("api: harakiri: the call ran out of time")
	// ErrNoCall is a function that needs a call (its handles end with
	// the call) used outside one, e.g. at a file's top level.
	ErrNoCall = errors.New("api: not inside a call")
)

// Conn is the client connection of the request a call serves, as the
// send/recv/disconnect functions use it.
type Conn interface {
	io.Reader // bytes after the request packet (the body, WebSocket frames)
	io.Writer // raw bytes to the client, in order with the response
	Flush() error
	// Peek returns the next n bytes without consuming them, waiting for
	// them; wait_fd_read uses it, interrupting it with SetReadDeadline.
	Peek(n int) ([]byte, error)
	SetReadDeadline(t time.Time) error
	// Close disconnects the client; the call goes on.
	Close() error
}

// Scope is the state of one call (a request, an RPC, a signal handler):
// its deadline, which set_user_harakiri moves, its client connection, and
// the handles ("file descriptors") scripts open with async_connect. It
// travels in the call's context. A Scope is used by one goroutine at a time.
type Scope struct {
	conn     Conn
	base     time.Duration // the call's own time limit, 0 = none
	limit    time.Duration // the full limit: base, or set_user_harakiri's
	cancel   context.CancelCauseFunc
	mu       sync.Mutex
	timer    *time.Timer
	handles  map[int]*handle
	nextFD   int
	connFD   int
	connGone bool // the client connection was closed by the script
	waits    []wait
	readyFD  int
	deadline time.Time
	// A long call (see LongCalls) releases its place when it ends; its
	// limit is paused while it waits (paused: the time left then).
	long     bool
	endLong  func()
	paused   bool
	leftOver time.Duration
	life     *time.Timer // SetLifetime's

	mem     *Memory // the budget the call is counted in, if any
	charged atomic.Int64
	started time.Time
	ended   chan struct{} // closed when the call ends
}

type handle struct {
	conn net.Conn
	r    *bufio.Reader
}

type wait struct {
	fd      int
	write   bool
	timeout time.Duration
}

type scopeKey struct{}

// NewScope starts a call: the returned context is cancelled with
// ErrHarakiri after timeout (0 = no limit; set_user_harakiri can change
// it) and when the returned function is called, which also closes the
// handles the call opened. conn may be nil (RPCs, signal handlers).
func NewScope(parent context.Context, conn Conn, timeout time.Duration) (context.Context, *Scope, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	s := &Scope{conn: conn, base: timeout, limit: timeout, cancel: cancel, nextFD: 3, readyFD: -1}
	if timeout > 0 {
		s.setTimer(timeout)
	}
	if m := MemoryOf(parent); m != nil {
		s.mem, s.started, s.ended = m, time.Now(), make(chan struct{})
		m.add(s)
	}
	ctx = context.WithValue(ctx, scopeKey{}, s)
	return ctx, s, func() {
		if s.mem != nil && s.mem.remove(s) {
			close(s.ended)
		}
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Stop()
		}
		if s.life != nil {
			s.life.Stop()
		}
		hs := s.handles
		s.handles = nil
		endLong := s.endLong
		s.endLong = nil
		s.mu.Unlock()
		if endLong != nil {
			endLong()
		}
		for _, h := range hs {
			h.conn.Close()
		}
		cancel(context.Canceled)
	}
}

// ScopeOf returns the call's scope, or nil outside a call.
func ScopeOf(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

func (s *Scope) setTimer(d time.Duration) {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.deadline = time.Now().Add(d)
	s.timer = time.AfterFunc(d, func() { s.cancel(ErrHarakiri) })
}

// SetHarakiri gives the call d more time from now; 0 restores the call's
// own limit counted from now (none if it had none). It is uWSGI's
// set_user_harakiri.
func (s *Scope) SetHarakiri(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		d = s.base
	}
	s.limit = d
	s.paused = false
	s.restartLocked(d)
}

// ErrLifetime is the cause of a call interrupted by SetLifetime's
// bound; it wraps ErrHarakiri.
var ErrLifetime = fmt.Errorf("%w: its lifetime ended", ErrHarakiri)

// SetLifetime bounds the whole call to d from now (0: no bound), apart
// from its time limit, which SetHarakiri sets and a long call pauses
// while it waits (see LongCalls): the host bounds so how long a
// WebSocket may live at most.
func (s *Scope) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.life != nil {
		s.life.Stop()
		s.life = nil
	}
	if d > 0 {
		s.life = time.AfterFunc(d, func() { s.cancel(ErrLifetime) })
	}
}

// fullLimit is the call's time limit: its own, or set_user_harakiri's.
func (s *Scope) fullLimit() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

// restartLocked gives the call d from now (0: no limit); s.mu is held.
func (s *Scope) restartLocked(d time.Duration) {
	if d > 0 {
		s.setTimer(d)
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.deadline = time.Time{}
}

// startLong makes the call long (see LongCalls): end runs when the call
// ends. It reports false, and does nothing, when the call is long already.
func (s *Scope) startLong(end func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.long {
		return false
	}
	s.long, s.endLong = true, end
	return true
}

// isLong reports whether the call made a WebSocket handshake.
func (s *Scope) isLong() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.long
}

// pauseLimit stops a long call's time limit while it waits for its peer;
// the returned function starts it again: in full when fresh (a message
// arrived), else with the time that was left. A call that is not long
// keeps its limit running.
func (s *Scope) pauseLimit() (resume func(fresh bool)) {
	if s == nil {
		return func(bool) {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.long || s.paused {
		return func(bool) {}
	}
	s.paused = true
	s.leftOver = 0
	if !s.deadline.IsZero() {
		s.leftOver = max(time.Until(s.deadline), time.Millisecond)
		s.timer.Stop()
	}
	return func(fresh bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.paused { // set_user_harakiri ran meanwhile (another goroutine of the script)
			return
		}
		s.paused = false
		if fresh || s.leftOver == 0 {
			s.restartLocked(s.limit)
		} else {
			s.restartLocked(s.leftOver)
		}
	}
}

// refreshLimit gives a long call its full limit again (a message came).
func (s *Scope) refreshLimit() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.long && !s.paused {
		s.restartLocked(s.limit)
	}
}

// Deadline returns when the call will be interrupted (zero: never).
func (s *Scope) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// Conn returns the client connection, or ErrNoConnection (also once the
// script disconnected it).
func (s *Scope) Conn() (Conn, error) {
	if s == nil || s.conn == nil {
		return nil, ErrNoConnection
	}
	s.mu.Lock()
	gone := s.connGone
	s.mu.Unlock()
	if gone {
		return nil, fmt.Errorf("%w: the client was disconnected", ErrNoConnection)
	}
	return s.conn, nil
}

// ConnectionFD returns the handle that stands for the client connection.
func (s *Scope) ConnectionFD() (int, error) {
	if _, err := s.Conn(); err != nil {
		return -1, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connFD == 0 {
		s.connFD = s.nextFD
		s.nextFD++
	}
	return s.connFD, nil
}

// Connect dials addr (a TCP "host:port" or a unix socket, told apart as
// uwsgi.SplitAddr says) and returns a handle for it.
func (s *Scope) Connect(ctx context.Context, addr string) (int, error) {
	if s == nil {
		return -1, ErrNoCall
	}
	network, address, err := uwsgi.SplitAddr(addr)
	if err != nil {
		return -1, fmt.Errorf("api: async_connect: %w", err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return -1, fmt.Errorf("api: async_connect %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handles == nil {
		s.handles = make(map[int]*handle)
	}
	fd := s.nextFD
	s.nextFD++
	s.handles[fd] = &handle{conn: c, r: bufio.NewReader(c)}
	return fd, nil
}

func (s *Scope) lookup(fd int) (*handle, bool, error) {
	if s == nil {
		return nil, false, ErrBadHandle
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fd == s.connFD && s.connFD != 0 {
		if s.connGone {
			return nil, false, fmt.Errorf("%w: %d (the client connection was closed)", ErrBadHandle, fd)
		}
		return nil, true, nil
	}
	if h, ok := s.handles[fd]; ok {
		return h, false, nil
	}
	return nil, false, fmt.Errorf("%w: %d", ErrBadHandle, fd)
}

// Send writes data to handle fd (the client connection when fd < 0).
func (s *Scope) Send(ctx context.Context, fd int, data []byte) (int, error) {
	if fd < 0 {
		c, err := s.Conn()
		if err != nil {
			return 0, err
		}
		n, err := c.Write(data)
		if err == nil {
			err = c.Flush()
		}
		return n, err
	}
	h, isConn, err := s.lookup(fd)
	if err != nil {
		return 0, err
	}
	if isConn {
		return s.Send(ctx, -1, data)
	}
	stop := context.AfterFunc(ctx, func() { h.conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	return h.conn.Write(data)
}

// maxRecv bounds the buffer of one Recv.
const maxRecv = 1 << 20

// Recv reads at most n bytes from handle fd (the client connection when
// fd < 0); at the end of the stream it returns no bytes and io.EOF.
func (s *Scope) Recv(ctx context.Context, fd int, n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	var r io.Reader
	if fd < 0 {
		c, err := s.Conn()
		if err != nil {
			return nil, err
		}
		r = c
	} else {
		h, isConn, err := s.lookup(fd)
		if err != nil {
			return nil, err
		}
		if isConn {
			return s.Recv(ctx, -1, n)
		}
		stop := context.AfterFunc(ctx, func() { h.conn.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		r = h.r
	}
	// One read returns what has arrived, so a bigger buffer than
	// maxRecv only wastes memory the script chose the size of.
	n = min(n, maxRecv)
	if err := s.Charge(int64(n)); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	got, err := r.Read(buf)
	if got > 0 {
		return buf[:got], nil
	}
	if err == nil {
		err = io.EOF
	}
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return nil, err
}

// CloseFD closes handle fd; closing the client connection's handle
// disconnects the client.
func (s *Scope) CloseFD(fd int) error {
	h, isConn, err := s.lookup(fd)
	if err != nil {
		return err
	}
	if isConn {
		return s.Disconnect()
	}
	s.mu.Lock()
	delete(s.handles, fd)
	s.mu.Unlock()
	return h.conn.Close()
}

// Disconnect flushes and closes the client connection; the call goes on,
// and the connection's handle is no longer valid.
func (s *Scope) Disconnect() error {
	c, err := s.Conn()
	if err != nil {
		return err
	}
	s.mu.Lock()
	gone := s.connGone
	s.connGone = true
	s.mu.Unlock()
	if gone {
		return nil
	}
	c.Flush()
	return c.Close()
}

// IsConnected reports whether handle fd is open (a dialed connection that
// was not closed, or the client connection).
func (s *Scope) IsConnected(fd int) bool {
	_, _, err := s.lookup(fd)
	return err == nil
}

// WaitFD registers interest in fd becoming readable (or writable) for the
// next Suspend, with a timeout (0 = none), like uWSGI's wait_fd_read and
// wait_fd_write.
func (s *Scope) WaitFD(fd int, write bool, timeout time.Duration) error {
	if _, _, err := s.lookup(fd); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, wait{fd: fd, write: write, timeout: timeout})
	return nil
}

// Suspend waits for what WaitFD registered: until one of the handles is
// ready (ReadyFD then returns it) or the timeout passes (ReadyFD returns
// -1). With nothing registered it just lets other goroutines run. Waiting
// holds no CPU and ends early when ctx is done.
func (s *Scope) Suspend(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	waits := s.waits
	s.waits = nil
	s.readyFD = -1
	s.mu.Unlock()
	if len(waits) == 0 {
		return ctx.Err()
	}
	var timeout time.Duration
	for _, w := range waits {
		if w.timeout > 0 && (timeout == 0 || w.timeout < timeout) {
			timeout = w.timeout
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if timeout > 0 {
		wctx, cancel = context.WithTimeout(wctx, timeout)
		defer cancel()
	}
	ready := make(chan int, len(waits))
	var wg sync.WaitGroup
	for _, w := range waits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.waitReady(wctx, w) {
				ready <- w.fd
			}
		}()
	}
	// Every waiter must have stopped reading before the script may read.
	var err error
	select {
	case fd := <-ready:
		s.mu.Lock()
		s.readyFD = fd
		s.mu.Unlock()
	case <-wctx.Done():
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
	}
	cancel()
	wg.Wait()
	return err
}

// waitReady blocks until w's handle is ready or ctx is done. Readiness to
// read is data (or EOF) buffered for the next Recv; writes are always
// ready on a connected socket.
func (s *Scope) waitReady(ctx context.Context, w wait) bool {
	if w.write {
		return true
	}
	h, isConn, err := s.lookup(w.fd)
	if err != nil {
		return false
	}
	type peeker interface {
		Peek(int) ([]byte, error)
		SetReadDeadline(time.Time) error
	}
	var p peeker = s.conn
	if !isConn {
		p = handlePeeker{h}
	}
	stop := context.AfterFunc(ctx, func() { p.SetReadDeadline(time.Unix(1, 0)) })
	_, err = p.Peek(1)
	if !stop() {
		p.SetReadDeadline(time.Time{}) // undo the interruption
		return false
	}
	return err == nil || !isTimeout(err)
}

type handlePeeker struct{ h *handle }

func (p handlePeeker) Peek(n int) ([]byte, error)        { return p.h.r.Peek(n) }
func (p handlePeeker) SetReadDeadline(t time.Time) error { return p.h.conn.SetReadDeadline(t) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ReadyFD returns the handle that ended the last Suspend, or -1 when it
// ended by timeout (or nothing was waited for).
func (s *Scope) ReadyFD() int {
	if s == nil {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyFD
}
