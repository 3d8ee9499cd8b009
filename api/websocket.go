package api

import (
	"context"
	"errors"
	"fmt"
)

// WebSocket is an open WebSocket (RFC 6455) as scripts and consumers use
// it. The host owns the framing: pings and pongs, the close handshake,
// UTF-8 checks, the message size limit and the bounded send queue. An
// implementation is safe for one reader and any number of senders at once.
type WebSocket interface {
	// Recv blocks until the next whole message arrives, the socket closes
	// (a *WebSocketCloseError) or ctx ends.
	Recv(ctx context.Context) (msg []byte, binary bool, err error)
	// TryRecv returns a message that already arrived, or ok false at once
	// when none did (uWSGI's websocket_recv_nb).
	TryRecv() (msg []byte, binary bool, ok bool, err error)
	// Send queues one message. It does not wait for a slow peer: when the
	// socket's send queue is full the socket is closed (1008) and Send
	// fails with a *WebSocketCloseError.
	Send(ctx context.Context, msg []byte, binary bool) error
	// Close starts the close handshake with code and reason (a reason is
	// cut to what fits a control frame). It is safe to call more than once.
	Close(code int, reason string) error
}

// Close codes of RFC 6455 section 7.4.1 that the host and scripts use.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001 // the host shuts down
	CloseProtocolError = 1002
	CloseUnsupported   = 1003
	CloseNoStatus      = 1005 // received only: the peer's close had no code
	CloseAbnormal      = 1006 // received only: the connection dropped
	CloseInvalidData   = 1007 // a text message that is not UTF-8
	ClosePolicy        = 1008 // e.g. a peer that does not read its messages
	CloseTooBig        = 1009 // a message over the size limit
	CloseInternalError = 1011 // the script failed
	CloseTryAgainLater = 1013
)

// WebSocketCloseError is how a socket's end reaches Recv and Send: the
// close code and reason the peer sent, or the host's when it closed it.
type WebSocketCloseError struct {
	Code   int    // a Close* code: CloseNoStatus for a close without one, CloseAbnormal when the connection broke
	Reason string // the close frame's reason, often ""
}

func (e *WebSocketCloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket closed (%d)", e.Code)
	}
	return fmt.Sprintf("websocket closed (%d %s)", e.Code, e.Reason)
}

// ErrNoUpgrade is websocket_handshake's error outside a request that asked
// for a WebSocket upgrade; ErrNoWebSocket is the error of the other
// websocket_* functions before a handshake.
var (
	ErrNoUpgrade   = errors.New("api: this request did not ask for a websocket upgrade")
	ErrNoWebSocket = errors.New("api: no websocket: call websocket_handshake first")
)

// Upgrader turns the request of a call into a WebSocket. The host puts one
// in the context of every request that asked for an upgrade
// (WithUpgrader); websocket_handshake calls Upgrade, and the other
// websocket_* functions use the socket it made (Socket).
type Upgrader interface {
	// Upgrade answers the handshake (101 Switching Protocols) and returns
	// the socket. key, origin and proto override the request's
	// Sec-WebSocket-Key, Origin and Sec-WebSocket-Protocol when not "",
	// as uWSGI's websocket_handshake arguments do. A second call returns
	// the same socket.
	Upgrade(ctx context.Context, key, origin, proto string) (WebSocket, error)
	// Socket is the socket Upgrade made, nil before.
	Socket() WebSocket
}

type upgraderKey struct{}

// WithUpgrader returns ctx carrying u for the websocket_* functions.
func WithUpgrader(ctx context.Context, u Upgrader) context.Context {
	return context.WithValue(ctx, upgraderKey{}, u)
}

// UpgraderFrom returns the Upgrader of the request ctx belongs to, if any.
func UpgraderFrom(ctx context.Context) (Upgrader, bool) {
	u, ok := ctx.Value(upgraderKey{}).(Upgrader)
	return u, ok && u != nil
}
