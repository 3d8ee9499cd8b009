package scripthost_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// roomConsumers are a chat room in each language: a socket joins the
// group "room" on connect and is greeted, text goes to the whole room,
// binary comes back to its sender, "bye" closes the socket, and a
// disconnect leaves the room and counts in the cache.
var roomConsumers = map[string]string{
	"lua": `
uwsgi.register_consumer("websocket.connect", function(msg)
  uwsgi.group_add("room", msg.reply_channel)
  uwsgi.channel_send(msg.reply_channel, {content = "welcome " .. msg.path .. " " .. msg.GET[1][2]})
end)
uwsgi.register_consumer("websocket.receive", function(msg)
  if msg.binary then
    uwsgi.channel_send(msg.reply_channel, {content = msg.content, binary = true})
  elseif msg.content == "bye" then
    uwsgi.channel_send(msg.reply_channel, {})
  else
    uwsgi.group_send("room", {content = msg.content})
  end
end)
uwsgi.register_consumer("websocket.disconnect", function(msg)
  uwsgi.group_discard("room", msg.reply_channel)
  uwsgi.cache_inc("left")
end)`,
	"js": `
uwsgi.register_consumer("websocket.connect", (msg) => {
  uwsgi.group_add("room", msg.reply_channel);
  uwsgi.channel_send(msg.reply_channel, {content: "welcome " + msg.path + " " + msg.GET[0][1]});
});
uwsgi.register_consumer("websocket.receive", (msg) => {
  if (msg.binary) {
    uwsgi.channel_send(msg.reply_channel, {content: msg.content, binary: true});
  } else if (msg.content === "bye") {
    uwsgi.channel_send(msg.reply_channel, {});
  } else {
    uwsgi.group_send("room", {content: msg.content});
  }
});
uwsgi.register_consumer("websocket.disconnect", (msg) => {
  uwsgi.group_discard("room", msg.reply_channel);
  uwsgi.cache_inc("left");
});`,
	"go": `package main

import "scripthost/uwsgi"

func main() {
	uwsgi.RegisterConsumer("websocket.connect", func(msg map[string]any) {
		q := msg["GET"].([]any)[0].([]any)
		uwsgi.GroupAdd("room", msg["reply_channel"])
		uwsgi.ChannelSend(msg["reply_channel"], map[string]any{"content": "welcome " + msg["path"].(string) + " " + q[1].(string)})
	})
	uwsgi.RegisterConsumer("websocket.receive", func(msg map[string]any) {
		switch {
		case msg["binary"] == true:
			uwsgi.ChannelSend(msg["reply_channel"], map[string]any{"content": msg["content"], "binary": true})
		case msg["content"] == "bye":
			uwsgi.ChannelSend(msg["reply_channel"], map[string]any{})
		default:
			uwsgi.GroupSend("room", map[string]any{"content": msg["content"]})
		}
	})
	uwsgi.RegisterConsumer("websocket.disconnect", func(msg map[string]any) {
		uwsgi.GroupDiscard("room", msg["reply_channel"])
		uwsgi.CacheInc("left")
	})
}
`,
}

func TestWebSocketConsumers(t *testing.T) {
	for lang, src := range roomConsumers {
		t.Run(lang, func(t *testing.T) {
			dir := scriptsDir(t, map[string]string{"room" + extOf[lang]: src})
			h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true}})
			addr, _ := serve(t, h.ServePlainHTTP)
			ctx := ctxTimeout(t)
			dial := func() *websocket.Conn {
				c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws?name=x", nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.CloseNow() })
				expect(t, ctx, c, websocket.MessageText, "welcome /ws x")
				return c
			}
			a, b := dial(), dial()
			if err := a.Write(ctx, websocket.MessageText, []byte("hi all")); err != nil {
				t.Fatal(err)
			}
			expect(t, ctx, a, websocket.MessageText, "hi all")
			expect(t, ctx, b, websocket.MessageText, "hi all")
			b.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2})
			expect(t, ctx, b, websocket.MessageBinary, "\x00\x01\x02")

			b.Write(ctx, websocket.MessageText, []byte("bye"))
			_, _, err := b.Read(ctx)
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("after bye: %v, want a close 1000 from the consumer", err)
			}
			waitCounter(t, h, "left", 1)
			// b left the room: a's message reaches a only, and a's close
			// is a disconnect too.
			a.Write(ctx, websocket.MessageText, []byte("alone"))
			expect(t, ctx, a, websocket.MessageText, "alone")
			a.Close(websocket.StatusNormalClosure, "")
			waitCounter(t, h, "left", 2)
		})
	}
}

func expect(t *testing.T, ctx context.Context, c *websocket.Conn, typ websocket.MessageType, want string) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	gotType, got, err := c.Read(rctx)
	if err != nil || gotType != typ || string(got) != want {
		t.Fatalf("read %v %q, %v; want %v %q", gotType, got, err, typ, want)
	}
}

func waitCounter(t *testing.T, h *scripthost.Host, key string, want int64) {
	t.Helper()
	c, err := h.Cache("")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.Num(context.Background(), []byte(key))
		if err == nil && n == want || time.Now().After(deadline) {
			if n != want {
				t.Errorf("counter %s = %d (%v), want %d", key, n, err, want)
			}
			return
		}
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// examples/chat: the page at /, and text sent by one client reaches all.
func TestChatExample(t *testing.T) {
	h := newHost(t, scripthost.Config{Scripts: "examples/chat", Watch: scripthost.Watch{Disabled: true}})
	addr, _ := serve(t, h.ServePlainHTTP)
	ctx := ctxTimeout(t)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `new WebSocket(scheme + location.host + "/ws")`) {
		t.Fatalf("GET / = %d %.80q", resp.StatusCode, page)
	}
	var clients []*websocket.Conn
	for range 3 {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		clients = append(clients, c)
	}
	layer := h.State().Channels.(*api.MemoryLayer)
	deadline := time.Now().Add(10 * time.Second)
	for layer.Stats().Memberships < len(clients) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	clients[1].Write(ctx, websocket.MessageText, []byte("hello, room"))
	for _, c := range clients {
		expect(t, ctx, c, websocket.MessageText, "hello, room")
	}
	clients[0].Close(websocket.StatusNormalClosure, "")
	deadline = time.Now().Add(10 * time.Second)
	for layer.Stats().Memberships != len(clients)-1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := layer.Stats().Memberships; n != len(clients)-1 {
		t.Errorf("%d members after one client left, want %d", n, len(clients)-1)
	}
}

// A reload keeps an open socket; its next messages reach the new
// generation's consumer. Shutdown closes it with 1001.
func TestWebSocketConsumerReloadAndShutdown(t *testing.T) {
	echo := func(v string) string {
		return `uwsgi.register_consumer("websocket.receive", function(msg)
  uwsgi.channel_send(msg.reply_channel, {content = "` + v + `:" .. msg.content})
end)`
	}
	dir := scriptsDir(t, map[string]string{"echo.lua": echo("v1")})
	h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true}})
	addr, _ := serve(t, h.ServePlainHTTP)
	ctx := ctxTimeout(t)
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte("a"))
	expect(t, ctx, c, websocket.MessageText, "v1:a")

	if err := os.WriteFile(filepath.Join(dir, "echo.lua"), []byte(echo("v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 1)
	go func() { reloaded <- h.Reload(ctx) }()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Reload did not return while a socket was open")
	}
	c.Write(ctx, websocket.MessageText, []byte("b"))
	expect(t, ctx, c, websocket.MessageText, "v2:b")

	shut := make(chan error, 1)
	go func() { shut <- h.Shutdown(ctx) }()
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("on shutdown: %v, want a close 1001", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A WebSocket whose upgrade came as a uwsgi packet (nginx's
// uwsgi_pass) is served by the consumers too.
func TestWebSocketConsumerUWSGI(t *testing.T) {
	dir := scriptsDir(t, map[string]string{"echo.lua": `
uwsgi.register_consumer("websocket.receive", function(msg)
  uwsgi.channel_send(msg.reply_channel, {content = "echo:" .. msg.content})
end)`})
	h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true}})
	addr, _ := serve(t, h.Serve)
	req, _ := http.NewRequest("GET", "http://localhost/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	packet, err := uwsgi.BuildRequest(0, 0, req, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(packet)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %v, %v", resp, err)
	}
	// A masked text frame "hi" (RFC 6455 section 5.2).
	mask := []byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | 2}
	frame = append(frame, mask...)
	for i, b := range []byte("hi") {
		frame = append(frame, b^mask[i%4])
	}
	conn.Write(frame)
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, head[1]&0x7f)
	io.ReadFull(br, payload)
	if head[0] != 0x81 || string(payload) != "echo:hi" {
		t.Errorf("frame % x %q, want a text frame \"echo:hi\"", head, payload)
	}
}

// A websocket.connect consumer refuses a socket with the Server Close
// message, or by failing.
func TestWebSocketConsumerRefuses(t *testing.T) {
	dir := scriptsDir(t, map[string]string{"gate.lua": `
uwsgi.register_consumer("websocket.connect", function(msg)
  if msg.path_info == "/fail" then error("refused by failing") end
  if msg.COOKIES.token ~= "ok" then uwsgi.channel_send(msg.reply_channel, {}) return end
  uwsgi.channel_send(msg.reply_channel, {content = "in"})
end)`})
	h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true}})
	addr, _ := serve(t, h.ServePlainHTTP)
	ctx := ctxTimeout(t)
	for _, tc := range []struct{ path, cookie, want string }{
		{"/ws", "token=ok", "in"}, {"/ws", "token=no", ""}, {"/fail", "token=ok", ""},
	} {
		hdr := http.Header{"Cookie": {tc.cookie}}
		c, _, err := websocket.Dial(ctx, "ws://"+addr+tc.path, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		switch {
		case tc.want != "" && (err != nil || string(got) != tc.want):
			t.Errorf("%s %s: read %q, %v; want %q", tc.path, tc.cookie, got, err, tc.want)
		case tc.want == "" && websocket.CloseStatus(err) != websocket.StatusNormalClosure:
			t.Errorf("%s %s: read %q, %v; want a close 1000", tc.path, tc.cookie, got, err)
		}
		c.CloseNow()
	}
}
