package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
)

// The channels of Daphne's message standards that the host produces.
const (
	ChannelHTTPRequest         = "http.request"
	ChannelHTTPDisconnect      = "http.disconnect"
	ChannelWebSocketConnect    = "websocket.connect"
	ChannelWebSocketReceive    = "websocket.receive"
	ChannelWebSocketDisconnect = "websocket.disconnect"
)

// Consumers as apps.
//
// A file that registers a consumer of http.request and defines no app of
// its own has an app of its name all the same (chat.lua: app "chat"),
// served by the consumer: it takes every route an app of that file would
// take (UWSGI_APPID, --mount, --map, the engine's default app, the
// fallback of modifier1 0). There is one consumer per channel (the last
// registration wins), so one file's consumer serves http.request at a
// time. A request it serves becomes an http.request message; the
// consumer answers on the message's response_channel with an HTTP
// Response message, which the host writes to the client.

// addConsumerApps adds to gen the apps of the files whose consumers
// serve http.request and WebSockets, unless those files define apps
// themselves, and notes the file whose consumers take WebSockets.
func addConsumerApps(gen *Generation, engines []api.Engine) {
	for _, ch := range []string{ChannelWebSocketConnect, ChannelWebSocketReceive} {
		if file, ok := gen.Registrations.ConsumerFile(ch); ok && file != "" {
			gen.socketFile = file
			addConsumerApp(gen, engines, file)
			break
		}
	}
	if file, ok := gen.Registrations.ConsumerFile(ChannelHTTPRequest); ok && file != "" {
		addConsumerApp(gen, engines, file)
	}
}

func addConsumerApp(gen *Generation, engines []api.Engine, file string) {
	ext := path.Ext(file)
	name := strings.TrimSuffix(path.Base(file), ext)
	for _, eng := range engines {
		if !slices.Contains(eng.Extensions(), ext) {
			continue
		}
		for _, a := range gen.Apps {
			if a.Name == name && a.Engine == eng.Name() {
				return // the file's own app, or its consumers' already
			}
		}
		gen.Apps = append(gen.Apps, AppInfo{Name: name, Engine: eng.Name(), File: file,
			App: &consumerApp{state: gen.Registrations.State, log: gen.Registrations.Logger}, mod: eng.Modifier()})
		return
	}
}

// consumerApp serves requests through the http.request consumer.
type consumerApp struct {
	state *api.State
	log   *slog.Logger
}

// ServeRequest implements api.App: the client is gone when ctx ends
// for another reason than its time limit.
func (a *consumerApp) ServeRequest(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	return a.serve(ctx, w, r, nil)
}

// watchFunc starts watching the client once the request was read: gone
// closes when it leaves; stop ends the watch.
type watchFunc func() (gone <-chan struct{}, stop func())

// errClientGone: the client left before the consumer answered.
var errClientGone = errors.New("host: the client left before the consumer answered")

// errResponseTimeout: no response message arrived within the call's
// time limit.
var errResponseTimeout = errors.New("host: the http.request consumer sent no response in time")

// serve sends r as an http.request message, waits for the response
// message (until ctx ends or the client leaves, which sends
// http.disconnect; watch, when set, tells) and writes it to w.
func (a *consumerApp) serve(ctx context.Context, w api.ResponseWriter, r *api.Request, watch watchFunc) error {
	layer := a.state.Channels
	if _, _, ok := a.state.Consumers.Lookup(ChannelHTTPRequest); !ok {
		return writeStatus(w, http.StatusNotFound) // a file with WebSocket consumers only
	}
	reply, err := layer.NewChannel(ctx, "http.response")
	if err != nil {
		return err
	}
	msg, err := httpRequestMessage(r, reply)
	if errors.Is(err, api.ErrMessageTooLarge) {
		return writeStatus(w, http.StatusRequestEntityTooLarge)
	}
	if err != nil {
		return err
	}
	if err := layer.Send(ctx, ChannelHTTPRequest, msg); err != nil {
		if errors.Is(err, api.ErrChannelFull) || errors.Is(err, api.ErrLayerFull) {
			a.log.Warn("http.request refused: the channel is full", "path", r.Var("PATH_INFO"), "err", err)
			return writeStatus(w, http.StatusServiceUnavailable)
		}
		if errors.Is(err, api.ErrMessageTooLarge) {
			return writeStatus(w, http.StatusRequestEntityTooLarge)
		}
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if watch != nil && r.Body != nil {
		io.Copy(io.Discard, r.Body) // what the message did not take
		gone, stop := watch()
		defer stop()
		go func() {
			select {
			case <-gone:
				cancel()
			case <-wctx.Done():
			}
		}()
	}
	resp, err := layer.Receive(wctx, reply)
	if err != nil {
		if errors.Is(context.Cause(ctx), api.ErrHarakiri) {
			writeStatus(w, http.StatusGatewayTimeout)
			return errResponseTimeout
		}
		if wctx.Err() != nil { // the client left
			a.disconnected(msg)
			return errClientGone
		}
		return err
	}
	return writeHTTPResponse(w, resp)
}

// disconnected sends http.disconnect, with the request's keys, when a
// consumer of it is registered.
func (a *consumerApp) disconnected(req map[string]api.Value) {
	if _, _, ok := a.state.Consumers.Lookup(ChannelHTTPDisconnect); !ok {
		return
	}
	if err := a.state.Channels.Send(context.Background(), ChannelHTTPDisconnect, req); err != nil {
		a.log.Warn("http.disconnect not sent", "err", err)
	}
}

// httpRequestMessage is the HTTP Request message of the standards:
// GET and POST as lists of [name, value] pairs, COOKIES as a map, META
// the request's vars (the CGI environment Django's request.META holds),
// path (SCRIPT_NAME + PATH_INFO), path_info, the upper-cased method and
// response_channel. POST is parsed from an
// application/x-www-form-urlencoded body; other bodies give an empty
// list.
func httpRequestMessage(r *api.Request, reply string) (map[string]api.Value, error) {
	meta := make(map[string]api.Value, len(r.Vars))
	for _, v := range r.Vars {
		meta[string(v.Key)] = string(v.Value)
	}
	method := strings.ToUpper(r.Var("REQUEST_METHOD"))
	post := []api.Value{}
	ctype, _, _ := strings.Cut(r.Var("CONTENT_TYPE"), ";")
	if method == http.MethodPost && strings.EqualFold(strings.TrimSpace(ctype), "application/x-www-form-urlencoded") && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, api.DefaultMaxMessage+1))
		if err != nil {
			return nil, err
		}
		if len(body) > api.DefaultMaxMessage {
			return nil, fmt.Errorf("%w: a form body over %d bytes", api.ErrMessageTooLarge, api.DefaultMaxMessage)
		}
		post = queryPairs(string(body))
	}
	return map[string]api.Value{
		"GET":              queryPairs(r.Var("QUERY_STRING")),
		"POST":             post,
		"COOKIES":          cookies(r.Var("HTTP_COOKIE")),
		"META":             meta,
		"path":             r.Var("SCRIPT_NAME") + r.Var("PATH_INFO"),
		"path_info":        r.Var("PATH_INFO"),
		"method":           method,
		"response_channel": reply,
	}, nil
}

// queryPairs parses a query string into [name, value] pairs, in order;
// pairs that do not unescape are left out, as url.ParseQuery does.
func queryPairs(q string) []api.Value {
	out := []api.Value{}
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, []api.Value{k, v})
	}
	return out
}

// cookies parses a Cookie header into a map (the last of a name wins).
func cookies(header string) map[string]api.Value {
	out := map[string]api.Value{}
	if header == "" {
		return out
	}
	cs, _ := http.ParseCookie(header)
	for _, c := range cs {
		out[c.Name] = c.Value
	}
	return out
}

// writeHTTPResponse writes an HTTP Response message: status_code
// (default 200), content_type (default text/html; charset=utf-8, as
// Django's), headers (name -> value, or a list of values), content.
func writeHTTPResponse(w api.ResponseWriter, m map[string]api.Value) error {
	status := 200
	switch v := m["status_code"].(type) {
	case int64:
		status = int(v)
	case float64:
		status = int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			status = n
		}
	}
	if status < 100 || status > 999 {
		return fmt.Errorf("host: response status_code %d out of range", status)
	}
	hm, _ := m["headers"].(map[string]api.Value)
	ctype := "text/html; charset=utf-8"
	if s, ok := m["content_type"].(string); ok && s != "" {
		ctype = s
	} else if s, ok := messageHeader(hm, "Content-Type"); ok {
		ctype = s
	}
	content, _ := api.ToBytes(m["content"])
	hdrs := []api.Header{{Name: "Content-Type", Value: ctype}}
	names := make([]string, 0, len(hm))
	for k := range hm {
		if !strings.EqualFold(k, "Content-Type") && !strings.EqualFold(k, "Content-Length") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		if vs, ok := hm[k].([]api.Value); ok {
			for _, e := range vs {
				hdrs = append(hdrs, api.Header{Name: k, Value: api.FormatValue(e)})
			}
			continue
		}
		hdrs = append(hdrs, api.Header{Name: k, Value: api.FormatValue(hm[k])})
	}
	for _, h := range hdrs {
		if strings.ContainsAny(h.Name, "\r\n:") || strings.ContainsAny(h.Value, "\r\n") || h.Name == "" {
			return fmt.Errorf("host: response header %q is not a valid header", h.Name)
		}
	}
	hdrs = append(hdrs, api.Header{Name: "Content-Length", Value: strconv.Itoa(len(content))})
	if err := w.WriteHeader(strconv.Itoa(status), hdrs); err != nil {
		return err
	}
	if _, err := w.Write(content); err != nil {
		return err
	}
	return w.Flush()
}

// messageHeader finds a header of a response message by name, in any case.
func messageHeader(hm map[string]api.Value, name string) (string, bool) {
	for k, v := range hm {
		if strings.EqualFold(k, name) {
			return api.FormatValue(v), true
		}
	}
	return "", false
}

// writeStatus answers with a status and its text.
func writeStatus(w api.ResponseWriter, code int) error {
	if w.HeaderSent() {
		return nil
	}
	msg := http.StatusText(code) + "\n"
	if err := w.WriteHeader(strconv.Itoa(code), []api.Header{{Name: "Content-Type", Value: "text/plain"},
		{Name: "Content-Length", Value: strconv.Itoa(len(msg))}}); err != nil {
		return err
	}
	_, err := w.Write([]byte(msg))
	return err
}

// consumerFailed answers the client of an http.request whose consumer
// failed: a 500 on its response channel; a websocket.connect whose
// consumer failed closes the socket.
func (s *Server) consumerFailed(ctx context.Context, channel string, msg map[string]api.Value, err error) {
	if channel == ChannelWebSocketConnect {
		// A connect that failed refuses the socket: the Server Close message.
		if reply, ok := msg["reply_channel"].(string); ok {
			s.State.Channels.Send(ctx, reply, map[string]api.Value{})
		}
		return
	}
	if channel != ChannelHTTPRequest {
		return
	}
	reply, ok := msg["response_channel"].(string)
	if !ok {
		return
	}
	s.State.Channels.Send(ctx, reply, map[string]api.Value{"status_code": int64(500), "content_type": "text/plain",
		"content": "Internal Server Error\n"})
}

// watchClient reports, by closing gone, that the client of c closed its
// side while the request waits for a consumer; stop ends the watch.
// Nothing more is read from the connection after the request, so the
// peek only sees its end.
func watchClient(c *conn) (gone <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.br.Peek(1); err != nil && !isTimeout(err) {
			close(ch)
		}
	}()
	return ch, func() {
		c.nc.SetReadDeadline(time.Now())
		<-done
		c.nc.SetReadDeadline(time.Time{})
	}
}

// isTimeout reports whether err is a read deadline's.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
