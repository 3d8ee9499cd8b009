package host

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Linux's fast path for one-shot connections. Most uwsgi connections are
// one packet in, one answer out, then close (nginx, uWSGI's rpc client,
// one-shot clients). Through net.Listener each of them costs accept4,
// getsockname, setsockopt, an epoll registration and removal and usually a
// trip through the poller; on a virtual machine where every system call is
// expensive that was most of a call's CPU. So standard listeners are
// served through sockListener, and the connections it accepts (sockConn)
// use plain non-blocking system calls for as long as they succeed: a
// one-shot request then costs accept4, read, write and close. The first
// call that would block hands the descriptor to Go's poller (an *os.File),
// and from then on the connection behaves like any net.Conn, deadlines
// included.

// fastListener is the one entry to this file: it wraps TCP and unix
// stream listeners, or reports why it cannot (l is then served as it is).
func fastListener(l net.Listener) (net.Listener, error) {
	return newSockListener(l)
}

// sockListener serves a standard TCP or unix listener by accepting on a
// duplicate of its socket, waiting in Go's poller (net's listeners offer
// no raw reads of their own). Closing it closes both.
type sockListener struct {
	net.Listener
	f       *os.File
	rc      syscall.RawConn
	network string
	closed  atomic.Bool
}

// newSockListener wraps l, or fails for listeners it cannot use.
func newSockListener(l net.Listener) (*sockListener, error) {
	fl, ok := l.(interface{ File() (*os.File, error) })
	network := l.Addr().Network()
	if !ok || network != "tcp" && network != "unix" {
		return nil, errors.New("not a TCP or unix stream listener")
	}
	f, err := fl.File()
	if err != nil {
		return nil, err
	}
	// Never call f.Fd: it would make the shared socket blocking.
	rc, err := f.SyscallConn()
	if err == nil {
		err = prepareListener(rc, network)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &sockListener{Listener: l, f: f, rc: rc, network: network}, nil
}

// prepareListener sets the options accepted sockets inherit from their
// listener, so that they need no system call of their own: TCP_NODELAY
// (the net package sets it on every connection) and TCP_DEFER_ACCEPT,
// which makes accept wait for the client's first bytes; every uwsgi client
// speaks first, so the first read finds the packet there.
func prepareListener(rc syscall.RawConn, network string) error {
	if network != "tcp" {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
		}
	})
	if err == nil {
		err = serr
	}
	return err
}

// Accept accepts one connection, waiting in Go's poller while there is
// none.
func (l *sockListener) Accept() (net.Conn, error) {
	var nfd int
	var errno syscall.Errno
	err := l.rc.Read(func(fd uintptr) bool {
		nfd, errno = accept4(fd)
		return errno != syscall.EAGAIN
	})
	return l.accepted(err, nfd, errno)
}

// accept4 accepts a connection on the listening socket fd, without
// waiting and without asking for the peer's address.
func accept4(fd uintptr) (int, syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, 0, 0,
			syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		if e != syscall.EINTR {
			return int(r), e
		}
	}
}

// accepted turns what an accept gave into a connection or an error.
func (l *sockListener) accepted(err error, nfd int, errno syscall.Errno) (net.Conn, error) {
	switch {
	case err != nil && l.closed.Load():
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: net.ErrClosed}
	case err != nil:
		return nil, err
	case errno != 0:
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.Addr(), Err: os.NewSyscallError("accept4", errno)}
	}
	return &sockConn{fd: nfd, network: l.network}, nil
}

// Close stops Accept and closes the listener.
func (l *sockListener) Close() error {
	l.closed.Store(true)
	l.f.Close()
	return l.Listener.Close()
}

// sockConn is a net.Conn over an accepted non-blocking socket: see the top
// of this file. It is safe for concurrent use like any net.Conn; the
// descriptor is closed only when no raw system call is using it, so its
// number cannot be reused under a call in progress.
type sockConn struct {
	fd      int
	network string // "tcp" or "unix"

	mu       sync.Mutex
	f        *os.File        // set when a call would have blocked: the poller's from then on
	rc       syscall.RawConn // f's: raw calls that wait in the poller
	inflight int             // raw system calls in progress outside the poller
	closed   bool
	rdl, wdl time.Time // deadlines, applied to f when it is made
	laddr    net.Addr
	raddr    net.Addr

	rd, wr pollIO // the read and the write in progress through the poller
}

// pollIO is a read or write made through the poller: step, bound once,
// is what RawConn.Read or Write calls until it reports done.
type pollIO struct {
	step func(fd uintptr) bool
	p    []byte
	n    int
	err  error
}

func (c *sockConn) Read(p []byte) (int, error) {
	rc, err := c.begin("read", &c.rdl)
	if err != nil {
		return 0, err
	}
	if rc != nil {
		return c.pollRead(rc, p)
	}
	n, err := rawIO(syscall.SYS_READ, c.fd, p)
	c.end()
	switch {
	case err == syscall.EAGAIN:
		if rc, err = c.poller("read"); err != nil {
			return 0, err
		}
		return c.pollRead(rc, p)
	case err != nil:
		return 0, c.opError("read", os.NewSyscallError("read", err))
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *sockConn) Write(p []byte) (int, error) {
	rc, err := c.begin("write", &c.wdl)
	if err != nil {
		return 0, err
	}
	if rc != nil {
		return c.pollWrite(rc, p)
	}
	written := 0
	for written < len(p) {
		n, werr := rawIO(syscall.SYS_WRITE, c.fd, p[written:])
		if werr != nil {
			err = werr
			break
		}
		written += n
	}
	c.end()
	switch {
	case err == syscall.EAGAIN:
		if rc, err = c.poller("write"); err != nil {
			return written, err
		}
		n, err := c.pollWrite(rc, p[written:])
		return written + n, err
	case err != nil:
		return written, c.opError("write", os.NewSyscallError("write", err))
	}
	return written, nil
}

// pollRead reads through the poller: the same raw read, and a wait for
// the socket while it has nothing (deadlines apply to the wait).
func (c *sockConn) pollRead(rc syscall.RawConn, p []byte) (int, error) {
	c.rd.p, c.rd.n, c.rd.err = p, 0, nil
	err := rc.Read(c.rd.step)
	n, rerr := c.rd.n, c.rd.err
	c.rd.p = nil
	switch {
	case err != nil:
		return 0, c.pollError("read", err)
	case rerr != nil:
		return 0, c.opError("read", os.NewSyscallError("read", rerr))
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *sockConn) readStep(fd uintptr) bool {
	n, err := rawIO(syscall.SYS_READ, int(fd), c.rd.p)
	if err == syscall.EAGAIN {
		return false
	}
	c.rd.n, c.rd.err = n, err
	return true
}

// pollWrite writes all of p through the poller.
func (c *sockConn) pollWrite(rc syscall.RawConn, p []byte) (int, error) {
	c.wr.p, c.wr.n, c.wr.err = p, 0, nil
	err := rc.Write(c.wr.step)
	n, werr := c.wr.n, c.wr.err
	c.wr.p = nil
	switch {
	case err != nil:
		return n, c.pollError("write", err)
	case werr != nil:
		return n, c.opError("write", os.NewSyscallError("write", werr))
	}
	return n, nil
}

func (c *sockConn) writeStep(fd uintptr) bool {
	for c.wr.n < len(c.wr.p) {
		n, err := rawIO(syscall.SYS_WRITE, int(fd), c.wr.p[c.wr.n:])
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			c.wr.err = err
			return true
		}
		c.wr.n += n
	}
	return true
}

// pollError gives the poller's errors the net package's shapes.
func (c *sockConn) pollError(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return c.opError(op, os.ErrDeadlineExceeded)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return c.opError(op, net.ErrClosed)
	}
	return c.opError(op, err)
}

// begin starts an I/O call: it returns the poller's raw connection once
// there is one, an error if the connection is closed or the deadline has
// passed, or (nil, nil) with a raw call registered, to be ended by end.
func (c *sockConn) begin(op string, deadline *time.Time) (syscall.RawConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, c.opError(op, net.ErrClosed)
	case c.rc != nil:
		return c.rc, nil
	case !deadline.IsZero() && !time.Now().Before(*deadline):
		return nil, c.opError(op, os.ErrDeadlineExceeded)
	}
	c.inflight++
	return nil, nil
}

func (c *sockConn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if c.closed && c.inflight == 0 {
		c.release()
	}
}

// poller hands the descriptor to Go's poller, once; op is the call that
// needs it.
// toPoller moves a connection of the fast path to Go's poller, for uses
// that read and write at once (WebSockets); other connections are there.
func toPoller(nc net.Conn) error {
	if sc, ok := nc.(*sockConn); ok {
		_, err := sc.poller("websocket")
		return err
	}
	return nil
}

func (c *sockConn) poller(op string) (syscall.RawConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.opError(op, net.ErrClosed)
	}
	if c.rc == nil {
		// The descriptor is non-blocking, so os.NewFile registers it with
		// the poller and the file supports deadlines.
		f := os.NewFile(uintptr(c.fd), "socket")
		rc, err := f.SyscallConn()
		if err != nil { // not for an open file
			return nil, c.opError(op, err)
		}
		if !c.rdl.IsZero() {
			f.SetReadDeadline(c.rdl)
		}
		if !c.wdl.IsZero() {
			f.SetWriteDeadline(c.wdl)
		}
		c.rd.step, c.wr.step = c.readStep, c.writeStep
		c.f, c.rc = f, rc
	}
	return c.rc, nil
}

func (c *sockConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Err: err}
}

// Close closes the connection; calls blocked in the poller return
// net.ErrClosed.
func (c *sockConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	if c.inflight == 0 {
		return c.release()
	}
	return nil
}

// release closes the descriptor; c.mu is held.
func (c *sockConn) release() error {
	if c.f != nil {
		return c.f.Close()
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(c.fd), 0, 0); e != 0 {
		return c.opError("close", os.NewSyscallError("close", e))
	}
	return nil
}

func (c *sockConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *sockConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, t, (*os.File).SetReadDeadline)
}

func (c *sockConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, t, (*os.File).SetWriteDeadline)
}

func (c *sockConn) setDeadline(dl *time.Time, t time.Time, apply func(*os.File, time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set deadline", net.ErrClosed)
	}
	*dl = t
	if c.f != nil {
		return apply(c.f, t)
	}
	return nil
}

// LocalAddr and RemoteAddr ask the kernel on first use: most connections
// never need them.
func (c *sockConn) LocalAddr() net.Addr {
	return c.addr(&c.laddr, syscall.Getsockname)
}

func (c *sockConn) RemoteAddr() net.Addr {
	return c.addr(&c.raddr, syscall.Getpeername)
}

func (c *sockConn) addr(cache *net.Addr, query func(int) (syscall.Sockaddr, error)) net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *cache == nil && !c.closed {
		if sa, err := query(c.fd); err == nil {
			*cache = sockaddrAddr(sa, c.network)
		}
	}
	if *cache == nil {
		if c.network == "unix" {
			return &net.UnixAddr{Net: "unix"}
		}
		return &net.TCPAddr{}
	}
	return *cache
}

func sockaddrAddr(sa syscall.Sockaddr, network string) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
	case *syscall.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			zone = strconv.Itoa(int(sa.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port, Zone: zone}
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	if network == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return &net.TCPAddr{}
}
