package apitest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/scripthost/scripthost/api"
)

// WebSocket makes a Request case's request one that asks for a WebSocket
// upgrade: its context carries an Upgrader (NewUpgrader) whose socket's
// peer sends Messages once the handshake is answered.
type WebSocket struct {
	// Messages are sent by the peer in order, each its After later.
	Messages []Message
	// Close makes the peer close the socket (1000) after its messages;
	// otherwise the socket stays open until the call ends.
	Close bool
}

// Message is one message of the peer, sent After the previous one (or
// the handshake).
type Message struct {
	Data   string        // the message's payload
	Binary bool          // a binary message rather than a text one
	After  time.Duration // the delay before it is sent; 0 sends it at once
}

// Text and Binary are messages sent at once.
func Text(s string) Message   { return Message{Data: s} }
func Binary(s string) Message { return Message{Data: s, Binary: true} }

// Upgrader is an api.Upgrader in memory, standing for the host's: it
// records the handshakes and what the script sends, in its Transcript,
// and its socket delivers the peer's messages of a WebSocket.
type Upgrader struct {
	peer WebSocket

	mu       sync.Mutex
	log      []string
	sock     *Socket
	upgraded chan struct{}
}

var _ api.Upgrader = (*Upgrader)(nil)

// NewUpgrader returns an Upgrader whose peer behaves as ws says.
func NewUpgrader(ws WebSocket) *Upgrader {
	return &Upgrader{peer: ws, upgraded: make(chan struct{})}
}

// Upgrade implements api.Upgrader: it records the handshake's arguments
// (upgrade("key","origin","proto"), "" where the request's are used)
// and returns the one socket. Like the host, the first one bounds the
// call's life and lifts its time limit, which websocket_handshake must
// give the script back.
func (u *Upgrader) Upgrade(ctx context.Context, key, origin, proto string) (api.WebSocket, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.log = append(u.log, fmt.Sprintf("upgrade(%q,%q,%q)", key, origin, proto))
	if u.sock == nil {
		u.sock = newSocket(u, u.peer, time.Now())
		close(u.upgraded)
		if s := api.ScopeOf(ctx); s != nil {
			s.SetLifetime(time.Hour)
			s.SetHarakiri(time.Hour)
		}
	}
	return u.sock, nil
}

// Socket implements api.Upgrader.
func (u *Upgrader) Socket() api.WebSocket {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sock == nil {
		return nil // not a nil *Socket in an interface
	}
	return u.sock
}

// Upgraded is closed at the first handshake.
func (u *Upgrader) Upgraded() <-chan struct{} { return u.upgraded }

// Transcript is what happened, space-separated: upgrade(...) for each
// handshake, text:"..." and binary:"..." for each message sent,
// close(code) when the socket was closed by its owner.
func (u *Upgrader) Transcript() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.log, " ")
}

func (u *Upgrader) record(s string) {
	u.mu.Lock()
	u.log = append(u.log, s)
	u.mu.Unlock()
}

// Socket is the Upgrader's api.WebSocket.
type Socket struct {
	u     *Upgrader
	close bool // the peer closes after its messages

	mu     sync.Mutex
	due    []time.Time // when each pending message arrives
	queue  []Message
	closed *api.WebSocketCloseError // delivered to the script
}

var _ api.WebSocket = (*Socket)(nil)

func newSocket(u *Upgrader, ws WebSocket, start time.Time) *Socket {
	s := &Socket{u: u, close: ws.Close, queue: append([]Message(nil), ws.Messages...)}
	at := start
	for _, m := range ws.Messages {
		at = at.Add(m.After)
		s.due = append(s.due, at)
	}
	return s
}

// next returns the next message if it arrived, when the next one will
// arrive (zero: none will), or the close.
func (s *Socket) next() (m Message, ok bool, wait time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		return Message{}, false, time.Time{}, s.closed
	}
	if len(s.queue) == 0 {
		if s.close {
			s.closed = &api.WebSocketCloseError{Code: api.CloseNormal}
			return Message{}, false, time.Time{}, s.closed
		}
		return Message{}, false, time.Time{}, nil
	}
	if d := s.due[0]; time.Now().Before(d) {
		return Message{}, false, d, nil
	}
	m = s.queue[0]
	s.queue, s.due = s.queue[1:], s.due[1:]
	return m, true, time.Time{}, nil
}

// Recv implements api.WebSocket.
func (s *Socket) Recv(ctx context.Context) ([]byte, bool, error) {
	for {
		m, ok, wait, err := s.next()
		if err != nil {
			return nil, false, err
		}
		if ok {
			return []byte(m.Data), m.Binary, nil
		}
		var tick <-chan time.Time
		if !wait.IsZero() {
			t := time.NewTimer(time.Until(wait))
			defer t.Stop()
			tick = t.C
		}
		select {
		case <-tick:
		case <-ctx.Done():
			return nil, false, context.Cause(ctx)
		}
	}
}

// TryRecv implements api.WebSocket.
func (s *Socket) TryRecv() ([]byte, bool, bool, error) {
	m, ok, _, err := s.next()
	if err != nil || !ok {
		return nil, false, false, err
	}
	return []byte(m.Data), m.Binary, true, nil
}

// Send implements api.WebSocket: it records the message, or fails once
// the peer's close was received.
func (s *Socket) Send(_ context.Context, msg []byte, binary bool) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed != nil {
		return closed
	}
	kind := "text"
	if binary {
		kind = "binary"
	}
	s.u.record(fmt.Sprintf("%s:%q", kind, msg))
	return nil
}

// Close implements api.WebSocket.
func (s *Socket) Close(code int, _ string) error {
	s.mu.Lock()
	if s.closed == nil {
		s.closed = &api.WebSocketCloseError{Code: code}
	}
	s.mu.Unlock()
	s.u.record(fmt.Sprintf("close(%d)", code))
	return nil
}
