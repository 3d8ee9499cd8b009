package host

import (
	"context"
	"errors"
	"time"

	"github.com/scripthost/scripthost/api"
)

// WebSockets served by consumers.
//
// A request asking for a WebSocket upgrade whose route leads to the file
// that registered the websocket.connect (else websocket.receive)
// consumer is served by the consumers, whether or not the file also has
// an app for its other requests. The host accepts the handshake at once
// (the standards have no acceptance step), then holds the socket with no
// interpreter: its messages become websocket.receive messages, the
// messages sent to its reply channel become frames, and its end a
// websocket.disconnect message. A consumer refuses or ends a socket by
// sending the WebSocket Server Close message (a message without
// "content") to the reply channel.

// runApp serves req with app: WebSockets of the file with socket
// consumers go to them, consumer apps wait for the response message
// (watch, when set, tells when the client leaves), other apps run.
func (s *Server) runApp(ctx context.Context, gen *Generation, app *AppInfo, w api.ResponseWriter, req *api.Request, up *upgrader, watch watchFunc) error {
	if up != nil && gen.socketFile != "" && app.File == gen.socketFile {
		return s.serveSocket(ctx, up, req)
	}
	if ca, ok := app.App.(*consumerApp); ok {
		return ca.serve(ctx, w, req, watch)
	}
	return app.App.ServeRequest(ctx, w, req)
}

// serveSocket upgrades the request and relays its socket to and from
// the consumers until it closes.
func (s *Server) serveSocket(ctx context.Context, up api.Upgrader, req *api.Request) error {
	ws, err := up.Upgrade(ctx, "", "", "")
	if err != nil {
		return err
	}
	layer := s.State.Channels
	reply, err := layer.NewChannel(ctx, "websocket.send")
	if err != nil {
		return err
	}
	base := socketMessage(req, reply)
	fctx, stop := context.WithCancel(ctx)
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		s.forwardReplies(fctx, ws, reply)
	}()
	defer func() {
		stop()
		<-forwarded
	}()
	s.socketEvent(ctx, ChannelWebSocketConnect, base, nil)
	for {
		data, binary, err := ws.Recv(ctx)
		if err != nil {
			s.socketEvent(context.WithoutCancel(ctx), ChannelWebSocketDisconnect, base, nil)
			var closed *api.WebSocketCloseError
			if errors.As(err, &closed) {
				return nil
			}
			return err
		}
		err = s.socketEvent(ctx, ChannelWebSocketReceive, base, map[string]api.Value{"content": string(data), "binary": binary})
		if errors.Is(err, api.ErrChannelFull) || errors.Is(err, api.ErrLayerFull) {
			s.log.Warn("websocket.receive is full: socket closed", "path", req.Var("PATH_INFO"), "err", err)
			ws.Close(api.CloseTryAgainLater, "server busy")
		}
	}
}

// socketMessage is the WebSocket Connection message of the standards:
// GET, COOKIES, META, path, path_info and reply_channel.
func socketMessage(req *api.Request, reply string) map[string]api.Value {
	m, _ := httpRequestMessage(&api.Request{Vars: req.Vars}, reply)
	delete(m, "POST")
	delete(m, "method")
	delete(m, "response_channel")
	m["reply_channel"] = reply
	return m
}

// socketEvent sends the socket's base keys plus extra to channel, when a
// consumer of channel is registered (else no one would receive it).
func (s *Server) socketEvent(ctx context.Context, channel string, base, extra map[string]api.Value) error {
	if _, _, ok := s.State.Consumers.Lookup(channel); !ok {
		return nil
	}
	m := make(map[string]api.Value, len(base)+len(extra))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	err := sendWaiting(ctx, s.State.Channels, channel, m, socketEventWait)
	if err != nil {
		s.log.Warn("websocket message not sent", "channel", channel, "err", err)
	}
	return err
}

// socketEventWait is how long a socket's event waits for room in a full
// consumer channel: the socket is read no faster than the consumers
// keep up, and a burst of connects (a thousand members joining a room)
// waits its turn instead of being lost.
const socketEventWait = 10 * time.Second

// sendWaiting sends msg to channel, waiting up to wait (or ctx's end)
// while the channel is full.
func sendWaiting(ctx context.Context, layer api.ChannelLayer, channel string, msg map[string]api.Value, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		err := layer.Send(ctx, channel, msg)
		if !errors.Is(err, api.ErrChannelFull) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// forwardReplies writes the messages of the reply channel to the socket
// until ctx ends: a WebSocket Send message (content, binary) is a frame,
// a Server Close message (no content) closes the socket with 1000.
func (s *Server) forwardReplies(ctx context.Context, ws api.WebSocket, reply string) {
	for {
		m, err := s.State.Channels.Receive(ctx, reply)
		if err != nil {
			return
		}
		content, ok := m["content"]
		if !ok {
			ws.Close(api.CloseNormal, "")
			continue
		}
		data, _ := api.ToBytes(content)
		binary, _ := m["binary"].(bool)
		ws.Send(ctx, data, binary)
	}
}
