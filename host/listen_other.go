//go:build !linux

package host

import (
	"errors"
	"net"
)

// fastListener is Linux's alone (sockconn_linux.go): elsewhere listeners
// are served through net.Listener as they are.
func fastListener(net.Listener) (net.Listener, error) {
	return nil, errors.New("no fast path for listeners on this system")
}

// toPoller has nothing to do here: connections are Go's own.
func toPoller(net.Conn) error { return nil }
