package tests

// The echo apps of examples/websocket-echo (uWSGI's websocket API in Lua,
// JavaScript and Go) served by the scripthost binary, over real loopback
// connections on the HTTP front and on the uwsgi listener.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// uwsgiTransport sends a request to a uwsgi listener as a uwsgi packet
// with modifier1 mod and reads the raw HTTP answer, keeping the
// connection as the body of a 101 for the WebSocket client.
type uwsgiTransport struct {
	addr string
	mod  uwsgi.Modifier
}

func (tr uwsgiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var d net.Dialer
	c, err := d.DialContext(req.Context(), "tcp", tr.addr)
	if err != nil {
		return nil, err
	}
	packet, err := uwsgi.BuildRequest(tr.mod, 0, req, nil, nil)
	if err == nil {
		_, err = c.Write(packet)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &bufferedConn{Reader: br, Conn: c}
	}
	return resp, nil
}

type bufferedConn struct {
	io.Reader
	net.Conn
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.Reader.Read(p) }

// dialEcho opens a WebSocket to path on the HTTP front (mod 0) or, with
// a modifier1, on the uwsgi listener.
func dialEcho(ctx context.Context, s *scripthostProc, path string, mod uwsgi.Modifier) (*websocket.Conn, *http.Response, error) {
	if mod == 0 {
		return websocket.Dial(ctx, "ws://"+s.HTTPAddr+path, nil)
	}
	client := &http.Client{Transport: uwsgiTransport{addr: s.Addr, mod: mod}}
	return websocket.Dial(ctx, "ws://localhost"+path, &websocket.DialOptions{HTTPClient: client})
}

func TestWebSocketAPIEchoApps(t *testing.T) {
	s := startScripthost(t, copyDir(t, "../examples/websocket-echo"), true,
		"--mount", "/lua=echo", "--mount", "/js=jsecho", "--mount", "/go=goecho", "--call-timeout", "2s")
	apps := []struct {
		path string
		mod  uwsgi.Modifier
		bin  []byte
		// binary messages come back as text from Lua, whose strings do
		// not tell text from bytes (as in uWSGI)
		binBack websocket.MessageType
	}{
		{"/lua/", uwsgi.ModLua, []byte("bytes\x01"), websocket.MessageText},
		{"/js/", uwsgi.ModV8, []byte{0, 0xff, 1}, websocket.MessageBinary},
		{"/go/", uwsgi.ModGo, []byte{0, 0xff, 1}, websocket.MessageBinary},
	}
	for _, app := range apps {
		for _, front := range []string{"http", "uwsgi"} {
			t.Run(front+app.path, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				mod := uwsgi.Modifier(0)
				if front == "uwsgi" {
					mod = app.mod
				}
				c, resp, err := dialEcho(ctx, s, app.path, mod)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 20)
				if resp.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("status %d, want 101", resp.StatusCode)
				}
				for i, m := range []struct {
					typ  websocket.MessageType
					data []byte
					back websocket.MessageType
				}{
					{websocket.MessageText, []byte("hello"), websocket.MessageText},
					{websocket.MessageBinary, app.bin, app.binBack},
					{websocket.MessageText, bytes.Repeat([]byte("x"), 70000), websocket.MessageText},
				} {
					if i == 2 {
						// Idle past --call-timeout: waiting for a message
						// does not count against it.
						time.Sleep(2500 * time.Millisecond)
					}
					if err := c.Write(ctx, m.typ, m.data); err != nil {
						t.Fatalf("write %d: %v", i, err)
					}
					typ, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("read %d: %v", i, err)
					}
					if typ != m.back || !bytes.Equal(got, m.data) {
						t.Errorf("message %d: got %v %q, want %v %q", i, typ, trim(got), m.back, trim(m.data))
					}
				}
				if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
					t.Errorf("close: %v", err)
				}
			})
		}
	}
}

func trim(b []byte) string {
	if len(b) > 20 {
		return fmt.Sprintf("%s... (%d bytes)", b[:20], len(b))
	}
	return string(b)
}

// TestWebSocketAPIContainment: with one Lua state, two WebSockets and a
// plain request are served at once, and past --max-websockets a handshake
// gets 503.
func TestWebSocketAPIContainment(t *testing.T) {
	files := copyDir(t, "../examples/websocket-echo")
	files["plain.lua"] = []byte(`return function(env) return 200, {}, "plain" end`)
	s := startScripthost(t, files, true, "--mount", "/lua=echo", "--mount", "/plain=plain",
		"--lua-pool", "1", "--max-websockets", "2", "--pool-wait", "2s")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var conns []*websocket.Conn
	for i := range 2 {
		c, _, err := dialEcho(ctx, s, "/lua/", 0)
		if err != nil {
			t.Fatalf("WebSocket %d: %v", i+1, err)
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}
	for i, c := range conns {
		msg := fmt.Sprintf("socket %d", i+1)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
			t.Errorf("socket %d echoed %q, %v", i+1, got, err)
		}
	}
	resp, err := http.Get("http://" + s.HTTPAddr + "/plain/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "plain" {
		t.Errorf("plain request with two WebSockets open: %d %q", resp.StatusCode, body)
	}
	for _, mod := range []uwsgi.Modifier{0, uwsgi.ModLua} {
		_, resp, err = dialEcho(ctx, s, "/lua/", mod)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Errorf("third WebSocket (modifier1 %d): status %d, %v; want 503", mod, code, err)
		}
	}
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// TestPeerWebSocketAPIEchoLua serves examples/websocket-echo/echo.lua on
// uWSGI's Lua plugin and on scripthost, both behind one nginx
// (uwsgi_pass, modifier1 6), and compares what a client receives from
// each, byte for byte: the handshake's answer (nginx's Date aside) and
// the echoed frames.
func TestPeerWebSocketAPIEchoLua(t *testing.T) {
	echo, err := os.ReadFile("../examples/websocket-echo/echo.lua")
	if err != nil {
		t.Fatal(err)
	}
	peer := startUWSGI(t, uwsgiOptions{Plugins: []string{"lua51"}, Files: map[string][]byte{"echo.lua": echo},
		Args: []string{"--lua", "echo.lua"}})
	s := startScripthost(t, map[string][]byte{"echo.lua": echo}, false)
	n := startNginx(t, `
        location /uwsgi/ {
            include uwsgi_params;
            uwsgi_pass `+peer.Addr+`;
            uwsgi_modifier1 6;
        }
        location /scripthost/ {
            include uwsgi_params;
            uwsgi_pass `+s.Addr+`;
            uwsgi_modifier1 6;
        }`)
	frames := [][]byte{
		maskedFrame(0x81, []byte("hello")),
		maskedFrame(0x82, []byte("bytes\x01")),
		maskedFrame(0x81, bytes.Repeat([]byte("y"), 300)),
	}
	exchange := func(path string) (head string, echoed [][]byte) {
		t.Helper()
		c, err := net.DialTimeout("tcp", n.HTTPAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
		br := bufio.NewReader(c)
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: handshake answer: %v (so far %q)", path, err, b.String())
			}
			if strings.HasPrefix(line, "Date: ") {
				line = "Date: (removed)\r\n"
			}
			b.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		for _, f := range frames {
			if _, err := c.Write(f); err != nil {
				t.Fatal(err)
			}
			got, err := readFrame(br)
			if err != nil {
				t.Fatalf("%s: echo: %v", path, err)
			}
			echoed = append(echoed, got)
		}
		return b.String(), echoed
	}
	wantHead, wantFrames := exchange("/uwsgi/")
	gotHead, gotFrames := exchange("/scripthost/")
	t.Logf("handshake answer %q; echoed frames of %d, %d and %d bytes", wantHead, len(wantFrames[0]), len(wantFrames[1]), len(wantFrames[2]))
	if gotHead != wantHead {
		t.Errorf("handshake answer through nginx\nscripthost %q\nuWSGI      %q", gotHead, wantHead)
	}
	for i := range wantFrames {
		if !bytes.Equal(gotFrames[i], wantFrames[i]) {
			t.Errorf("echo %d\nscripthost % x\nuWSGI      % x", i+1, trimBytes(gotFrames[i]), trimBytes(wantFrames[i]))
		}
	}
}

// maskedFrame is one whole client frame (FIN set) of opcode op.
func maskedFrame(op byte, payload []byte) []byte {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	out := []byte{op}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("frame too large for the test")
	}
	out = append(out, mask[:]...)
	for i, b := range payload {
		out = append(out, b^mask[i%4])
	}
	return out
}

// readFrame reads one server frame (unmasked) and returns its bytes,
// header included.
func readFrame(br *bufio.Reader) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, err
	}
	n := int(head[1] & 0x7f)
	switch n {
	case 126:
		ext := make([]byte, 2)
		if _, err := io.ReadFull(br, ext); err != nil {
			return nil, err
		}
		head = append(head, ext...)
		n = int(ext[0])<<8 | int(ext[1])
	case 127:
		return nil, fmt.Errorf("frame over 64 KiB")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
}

func trimBytes(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}
