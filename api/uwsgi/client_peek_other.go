//go:build !unix

package uwsgi

import "net"

// peekConn cannot check a connection without blocking on this platform: an
// idle connection is assumed alive; a close mark in reply still makes the
// request safe to resend.
func peekConn(net.Conn) error { return nil }
