package api

import (
	"context"
	"errors"
	"fmt"
)

// websocketFuncs are uWSGI's websocket functions (core/websockets.c and
// its plugins' bindings). As in uWSGI they answer nil, or raise: the
// handshake outside an upgrade request, and every function once the
// socket closed ("unable to receive websocket message" in the error, as
// uWSGI says it). A text message reaches the script as a string, a binary
// one as bytes (a string in Lua, a Uint8Array in JavaScript, []byte in
// Go). The time limit and the bound on open sockets are LongCalls's.
var websocketFuncs = []Func{
	{Name: "websocket_handshake", Params: "[key[, origin[, proto]]]",
		Doc:  "answer the request's WebSocket upgrade (the arguments override its Sec-WebSocket-Key, Origin and Sec-WebSocket-Protocol)",
		Call: websocketHandshake},
	{Name: "websocket_recv", Params: "", Doc: "wait for the next message of the WebSocket; fails once it is closed",
		Call: func(ctx context.Context, _ *Registrations, _ Args) (Value, error) {
			ws, err := webSocketOf(ctx)
			if err != nil {
				return nil, errRecv(err)
			}
			s := ScopeOf(ctx)
			resume := s.pauseLimit()
			msg, binary, err := ws.Recv(ctx)
			resume(err == nil)
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if err != nil {
				return nil, errRecv(err)
			}
			return messageValue(s, msg, binary)
		}},
	{Name: "websocket_recv_nb", Params: "", Doc: "the message that arrived, or \"\" when none did; fails once the WebSocket is closed",
		Call: func(ctx context.Context, _ *Registrations, _ Args) (Value, error) {
			ws, err := webSocketOf(ctx)
			if err != nil {
				return nil, errRecv(err)
			}
			msg, binary, ok, err := ws.TryRecv()
			if err != nil {
				return nil, errRecv(err)
			}
			if !ok {
				return "", nil
			}
			s := ScopeOf(ctx)
			s.refreshLimit()
			return messageValue(s, msg, binary)
		}},
	{Name: "websocket_send", Params: "msg", Doc: "send a text message on the WebSocket",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			return websocketSend(ctx, a, false)
		}},
	{Name: "websocket_send_binary", Params: "msg", Doc: "send a binary message on the WebSocket",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			return websocketSend(ctx, a, true)
		}},
}

// websocketHandshake is websocket_handshake: the first one of a call
// takes a place among the host's long calls, detaches the call's
// interpreters from their pools and pauses the time limit in recv (see
// LongCalls); a second one answers as the first did.
func websocketHandshake(ctx context.Context, env *Registrations, a Args) (Value, error) {
	var hs [3]string // key, origin, proto
	for i := range hs {
		var err error
		if hs[i], err = a.OptString(i, ""); err != nil {
			return nil, err
		}
	}
	u, ok := UpgraderFrom(ctx)
	if !ok {
		return nil, errHandshake(ErrNoUpgrade)
	}
	s := ScopeOf(ctx)
	if s == nil {
		return nil, errHandshake(ErrNoCall)
	}
	var calls *LongCalls
	if env != nil && env.State != nil {
		calls = env.State.LongCalls
	}
	first := !s.isLong()
	if first {
		if err := calls.Take(); err != nil {
			return nil, errHandshake(err)
		}
	}
	limit := s.fullLimit() // the host may lift it for the socket's life
	if _, err := u.Upgrade(ctx, hs[0], hs[1], hs[2]); err != nil {
		if first {
			calls.Give()
		}
		return nil, errHandshake(err)
	}
	if first && s.startLong(calls.Give) {
		s.SetHarakiri(limit)
		DetachCall(ctx)
	} else if first {
		calls.Give() // made long meanwhile by another goroutine of the script
	}
	return nil, nil
}

func websocketSend(ctx context.Context, a Args, binary bool) (Value, error) {
	msg, err := a.Bytes(0)
	if err != nil {
		return nil, err
	}
	ws, err := webSocketOf(ctx)
	if err == nil {
		// The message waits in the socket's queue until the peer reads it.
		err = Charge(ctx, int64(len(msg)))
	}
	if err == nil {
		err = ws.Send(ctx, msg, binary)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if binary {
			return nil, fmt.Errorf("api: unable to send websocket binary message: %w", err)
		}
		return nil, fmt.Errorf("api: unable to send websocket message: %w", err)
	}
	return nil, nil
}

// webSocketOf returns the socket the call's handshake made.
func webSocketOf(ctx context.Context) (WebSocket, error) {
	if u, ok := UpgraderFrom(ctx); ok {
		if ws := u.Socket(); ws != nil {
			return ws, nil
		}
	}
	return nil, ErrNoWebSocket
}

// messageValue is a received message as scripts get it, its size charged
// to the call (the engine copies it into the script's string).
func messageValue(s *Scope, msg []byte, binary bool) (Value, error) {
	if err := s.Charge(int64(len(msg))); err != nil {
		return nil, err
	}
	if binary {
		return msg, nil
	}
	return string(msg), nil
}

func errHandshake(err error) error {
	return fmt.Errorf("api: unable to complete websocket handshake: %w", err)
}

func errRecv(err error) error {
	if errors.Is(err, ErrNoWebSocket) {
		return err
	}
	return fmt.Errorf("api: unable to receive websocket message: %w", err)
}
