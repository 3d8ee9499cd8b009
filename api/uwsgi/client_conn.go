package uwsgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// helloPacket is sent first on every new connection of a Client that does
// not know the server to be plain.
var helloPacket = AppendHello(nil)

// longAgo is a deadline in the past: it makes blocked I/O return at once.
var longAgo = time.Unix(1, 0)

// clientConn is one connection of a Client. During a call it is attached
// to the call's context: every Read and Write first pushes the deadline to
// now + the Client's Timeout (capped by the context's deadline), and a
// canceled context moves the deadline into the past for good.
type clientConn struct {
	nc        net.Conn
	br        *bufio.Reader // reads through the clientConn, so deadlines apply
	extended  bool          // the server accepted the hello on this connection
	reused    bool          // taken from the idle pool for the current call
	idleSince time.Time

	mu       sync.Mutex
	deadline time.Time // the call's context deadline; zero: none
	timeout  time.Duration
	canceled bool
	stop     func() bool
}

func newClientConn(nc net.Conn) *clientConn {
	cn := &clientConn{nc: nc}
	cn.br = bufio.NewReader(cn)
	return cn
}

// begin attaches the connection to a call.
func (cn *clientConn) begin(ctx context.Context, timeout time.Duration) {
	d, _ := ctx.Deadline()
	cn.mu.Lock()
	cn.deadline, cn.timeout, cn.canceled = d, timeout, false
	cn.mu.Unlock()
	cn.stop = context.AfterFunc(ctx, cn.interrupt)
}

// interrupt runs when the call's context is done.
func (cn *clientConn) interrupt() {
	cn.mu.Lock()
	cn.canceled = true
	cn.nc.SetDeadline(longAgo)
	cn.mu.Unlock()
}

// end detaches the connection from its call. It reports whether the
// connection can serve another call: not if the context's cancellation
// reached it (its deadline is gone for good).
func (cn *clientConn) end() bool {
	if cn.stop == nil {
		return false
	}
	stopped := cn.stop()
	cn.stop = nil
	if !stopped {
		return false
	}
	return cn.nc.SetDeadline(time.Time{}) == nil
}

func (cn *clientConn) close() { cn.nc.Close() }

// refresh sets the deadline for the next read or write.
func (cn *clientConn) refresh() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.canceled {
		return os.ErrDeadlineExceeded
	}
	var d time.Time
	if cn.timeout > 0 {
		d = time.Now().Add(cn.timeout)
	}
	if !cn.deadline.IsZero() && (d.IsZero() || cn.deadline.Before(d)) {
		d = cn.deadline
	}
	return cn.nc.SetDeadline(d)
}

func (cn *clientConn) Read(p []byte) (int, error) {
	if err := cn.refresh(); err != nil {
		return 0, err
	}
	return cn.nc.Read(p)
}

func (cn *clientConn) Write(p []byte) (int, error) {
	if err := cn.refresh(); err != nil {
		return 0, err
	}
	return cn.nc.Write(p)
}

// alive reports whether an idle connection can be reused: nothing arrived
// on it while it was idle (a close mark, stray data) and the server has
// not closed it. It never blocks.
func (cn *clientConn) alive() bool {
	if cn.br.Buffered() > 0 {
		return false
	}
	return peekConn(cn.nc) == nil
}

// hello sends the extension hello and reports whether the server accepted
// it. A plain server answers it as a ping ([100, 0, 1]) or closes without a
// byte: false, nil. Timeouts and other I/O errors are returned.
func (cn *clientConn) hello() (bool, error) {
	if _, err := cn.Write(helloPacket); err != nil {
		if isClosedBySilence(err) {
			return false, nil
		}
		return false, err
	}
	h, err := ReadHeader(cn.br)
	if err != nil {
		if isClosedBySilence(err) {
			return false, nil
		}
		return false, err
	}
	if h.Modifier1 != ModPing || h.Modifier2 != PingExt || int(h.Size) != len(ExtHello) {
		return false, nil
	}
	var b [len(ExtHello)]byte
	if _, err := io.ReadFull(cn.br, b[:]); err != nil {
		if isClosedBySilence(err) {
			return false, nil
		}
		return false, err
	}
	return string(b[:]) == ExtHello, nil
}

// roundTrip writes req and reads the reply's header, handling what every
// framed reply may be instead of the expected one: a close mark, an error
// frame, raw HTTP or nothing at all.
func (cn *clientConn) roundTrip(req []byte, read readFunc) (consumed bool, err error) {
	if _, err := cn.Write(req); err != nil {
		return false, &writeError{err}
	}
	h, err := ReadHeader(cn.br)
	switch {
	case err == io.EOF && cn.extended:
		// An extended server always answers or sends a close mark first;
		// silence means it died, possibly while running the request.
		return false, fmt.Errorf("%w: the server closed the connection without a reply; the request may have been processed: %w",
			ErrNoResult, io.ErrUnexpectedEOF)
	case err == io.EOF:
		return false, errSilent
	case err != nil:
		return false, err
	}
	switch {
	case h.Modifier1 == ModCloseMark:
		if cn.extended && h.Size == 0 {
			return false, errCloseMark
		}
		return false, protocolError("unexpected close mark %v", h)
	case h.Bytes() == [HeaderSize]byte{'H', 'T', 'T', 'P'}:
		return false, cn.httpReplyError()
	case IsErrorFrame(h) && h.Modifier2 != ResponseOK:
		msg := make([]byte, h.Size)
		if _, err := io.ReadFull(cn.br, msg); err != nil {
			return false, unexpected(err)
		}
		return true, &RemoteError{Code: Code(h.Modifier2), Message: string(msg)}
	}
	return read(cn, h)
}

// httpReplyError reads the rest of the status line of a raw HTTP reply
// that came where a framed one was expected.
func (cn *clientConn) httpReplyError() error {
	line, err := cn.br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) && len(line) == 0 {
		return protocolError("raw HTTP reply to a framed request")
	}
	status := "HTTP" + string(line)
	for len(status) > 0 && (status[len(status)-1] == '\n' || status[len(status)-1] == '\r') {
		status = status[:len(status)-1]
	}
	if len(status) > 200 {
		status = status[:200] + "..."
	}
	return protocolError("raw HTTP reply %q to a framed request", status)
}

// discard reads and drops n bytes.
func (cn *clientConn) discard(n int) error {
	_, err := cn.br.Discard(n)
	return unexpected(err)
}
