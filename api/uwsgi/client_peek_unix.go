//go:build unix

package uwsgi

import (
	"errors"
	"io"
	"net"
	"syscall"
)

var errIdleData = errors.New("uwsgi: data on an idle connection")

// peekConn checks an idle connection without blocking: nil when nothing is
// readable yet (alive), io.EOF when the server closed it, errIdleData when
// bytes arrived (a close mark or junk: the connection is out of step).
// A deadline in the past cannot do this: Go's poller reports the timeout
// before it looks at the socket. Connections that do not expose their
// descriptor are assumed alive; a close mark still makes the request safe
// to resend.
func peekConn(nc net.Conn) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var rerr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), b[:])
		return true // never wait for readiness
	})
	switch {
	case err != nil:
		return err
	case n > 0:
		return errIdleData
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
		return nil
	case rerr != nil:
		return rerr
	}
	return io.EOF
}
