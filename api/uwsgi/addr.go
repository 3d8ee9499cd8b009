package uwsgi

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrAddr is wrapped by SplitAddr's errors.
var ErrAddr = errors.New("uwsgi: bad address")

// SplitAddr decides whether addr names a unix socket or a TCP address and
// returns the network ("unix" or "tcp") and the address to dial or listen
// on. Every part of scripthost that takes an address (listeners, the
// client, remote caches, uwsgi.rpc nodes, async_connect, the bench command)
// uses these rules, first match wins:
//
//   - "unix:PATH" is the unix socket PATH, whatever PATH looks like.
//   - "@NAME" is NAME in Linux's abstract socket namespace.
//   - An address containing a slash is a socket path: "/run/x.sock",
//     "./x", "../run/x.sock", "run/x.sock". A "host:port" never has one.
//   - An address ending in ".sock" is a socket path in the current
//     directory: "x.sock".
//   - Anything else is TCP and must be "host:port" with a port:
//     "127.0.0.1:3031", "localhost:3031", "[::1]:3031", or ":3031" (every
//     local address when listening, this machine when dialing).
//
// A bare name with neither a port nor a path ("localhost", "x") is an
// error rather than a guess; write "unix:x" for a socket file named x.
func SplitAddr(addr string) (network, address string, err error) {
	switch {
	case addr == "":
		return "", "", fmt.Errorf("%w: empty address", ErrAddr)
	case strings.HasPrefix(addr, "unix:"):
		if addr == "unix:" {
			return "", "", fmt.Errorf("%w: %q names no socket", ErrAddr, addr)
		}
		return "unix", addr[len("unix:"):], nil
	case addr[0] == '@', strings.ContainsRune(addr, '/'), strings.HasSuffix(addr, ".sock"):
		if addr == "@" {
			return "", "", fmt.Errorf("%w: %q names no socket", ErrAddr, addr)
		}
		return "unix", addr, nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !strings.ContainsRune(addr, ':') {
			return "", "", fmt.Errorf("%w: %q has no port (TCP is host:port; a unix socket is unix:%s, ./%s or a path)", ErrAddr, addr, addr, addr)
		}
		return "", "", fmt.Errorf("%w: %q: %w", ErrAddr, addr, err)
	}
	if port == "" {
		return "", "", fmt.Errorf("%w: %q has no port", ErrAddr, addr)
	}
	return "tcp", addr, nil
}
