package host_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// The WebSocket transport, tested from Go: echoApp upgrades and echoes,
// and a raw-frame client (test code only: the host writes no frame
// itself) checks the answers to the case groups of the Autobahn
// testsuite on both fronts.

// echoApp upgrades every request that asks for it and echoes each
// message. A few text messages are commands: "fail" makes the app fail
// (1011), "close CODE" closes with CODE, "recv-timeout" waits for a next
// message at most 50 ms and answers what Recv returned, "flood N SIZE"
// sends N messages of SIZE bytes and reports the first Send error.
// Requests without an upgrade are answered "plain".
func echoApp(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	u, ok := api.UpgraderFrom(ctx)
	if r.Vars.Get("PATH_INFO") == "/slow" {
		time.Sleep(300 * time.Millisecond)
	}
	if !ok || r.Vars.Get("PATH_INFO") == "/plain" || r.Vars.Get("PATH_INFO") == "/slow" {
		w.WriteHeader("200 OK", []api.Header{{Name: "Content-Type", Value: "text/plain"}})
		_, err := w.Write([]byte("plain"))
		return err
	}
	ws, err := u.Upgrade(ctx, "", "", "")
	if err != nil {
		return err
	}
	if again, _ := u.Upgrade(ctx, "", "", ""); again != ws || u.Socket() != ws {
		return errors.New("a second Upgrade made another socket")
	}
	for {
		msg, bin, err := ws.Recv(ctx)
		if err != nil {
			var ce *api.WebSocketCloseError
			if errors.As(err, &ce) {
				return nil
			}
			return err
		}
		cmd := string(msg)
		switch {
		case bin:
		case cmd == "fail":
			return errors.New("the script failed on purpose")
		case cmd == "return-close-error":
			// What a script passes on when its socket ended: no failure.
			return fmt.Errorf("recv: %w", &api.WebSocketCloseError{Code: api.CloseGoingAway})
		case strings.HasPrefix(cmd, "close "):
			code, _ := strconv.Atoi(strings.TrimPrefix(cmd, "close "))
			ws.Close(code, "bye")
			continue
		case cmd == "try":
			// Two messages the client sent together: TryRecv finds the
			// second once it arrived, and nothing after it.
			var got string
			for i := 0; i < 100; i++ {
				m, _, ok, err := ws.TryRecv()
				if err != nil {
					return err
				}
				if ok {
					got = string(m)
					break
				}
				time.Sleep(time.Millisecond)
			}
			_, _, ok, _ := ws.TryRecv()
			msg = []byte(fmt.Sprintf("%s %v", got, ok))
		case cmd == "raw":
			// Raw writes to the client (uwsgi.send) would tear frames.
			conn, err := api.ScopeOf(ctx).Conn()
			if err != nil {
				return err
			}
			_, err = conn.Write([]byte("torn"))
			msg = []byte(fmt.Sprint(errors.Is(err, host.ErrHijacked)))
		case cmd == "recv-timeout":
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _, err := ws.Recv(short)
			cancel()
			msg = []byte(fmt.Sprint(err))
		case strings.HasPrefix(cmd, "flood "):
			var n, size int
			fmt.Sscan(strings.TrimPrefix(cmd, "flood "), &n, &size)
			payload := bytes.Repeat([]byte("f"), size)
			for i := 0; i < n; i++ {
				if err := ws.Send(ctx, payload, true); err != nil {
					var ce *api.WebSocketCloseError
					if errors.As(err, &ce) && ce.Code == api.ClosePolicy {
						return nil
					}
					return fmt.Errorf("send %d: %w", i, err)
				}
			}
			continue
		}
		if err := ws.Send(ctx, msg, bin); err != nil {
			return nil
		}
	}
}

// wsFront is where a test's raw client connects: the HTTP front or a
// uwsgi listener (a vars packet instead of the HTTP request).
type wsFront struct {
	name    string
	addr    string
	uwsgi   bool
	proxied bool // through nginx: an HTTP request, nginx's 101
}

// startWS serves app with lim on a uwsgi listener and on the HTTP front.
func startWS(t *testing.T, lim host.Limits, app fakeApp) (*testServer, []wsFront) {
	t.Helper()
	var srv *host.Server
	ts := startAppServer(t, lim, app, func(s *host.Server) { srv = s })
	l := listen(t, "tcp")
	hs := srv.NewHTTPServer(&host.HTTPFront{Server: srv})
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return ts, []wsFront{{name: "uwsgi", addr: ts.addr, uwsgi: true}, {name: "http", addr: l.Addr().String()}}
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// upgradeVars are the vars of an upgrade request as nginx passes them.
func upgradeVars(path string) uwsgi.Vars {
	var vs uwsgi.Vars
	return vs.Add("REQUEST_METHOD", "GET").Add("REQUEST_URI", path).Add("PATH_INFO", path).
		Add("SERVER_PROTOCOL", "HTTP/1.1").Add("HTTP_HOST", "localhost").
		Add("HTTP_UPGRADE", "websocket").Add("HTTP_CONNECTION", "Upgrade").
		Add("HTTP_SEC_WEBSOCKET_KEY", testKey).Add("HTTP_SEC_WEBSOCKET_VERSION", "13")
}

// wsDial connects and sends the upgrade request; it returns the
// connection and a reader positioned after the 101 answer's header.
func wsDial(t testing.TB, f wsFront, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	if f.uwsgi {
		block, err := upgradeVars(path).Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, c, pkt)
	} else {
		mustWrite(t, c, []byte("GET "+path+" HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: "+testKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	}
	br := bufio.NewReader(c)
	head := readHead(t, br)
	if f.proxied {
		checkProxiedHead(t, head)
		return c, br
	}
	want := "HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Origin: *\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if head != want {
		t.Fatalf("handshake answer = %q, want %q", head, want)
	}
	return c, br
}

// readHead reads an HTTP response header.
func readHead(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			t.Fatalf("reading the handshake answer (%q so far): %v", head.String(), err)
		}
		if line == "\r\n" {
			return head.String()
		}
	}
}

// WebSocket opcodes.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// frame is one raw frame as a client writes it.
type frame struct {
	op       byte
	payload  []byte
	notFin   bool
	rsv      byte // the RSV bits, already in place (0x40, 0x20, 0x10)
	unmasked bool
}

func (f frame) bytes() []byte {
	b0 := f.op | f.rsv
	if !f.notFin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mask := byte(0x80)
	if f.unmasked {
		mask = 0
	}
	switch n := len(f.payload); {
	case n < 126:
		out = append(out, mask|byte(n))
	case n <= 0xffff:
		out = append(out, mask|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	var key [4]byte
	rand.Read(key[:])
	out = append(out, key[:]...)
	for i, b := range f.payload {
		out = append(out, b^key[i%4])
	}
	return out
}

func text(s string) frame { return frame{op: opText, payload: []byte(s)} }
func closeFrame(code int, reason string) frame {
	return frame{op: opClose, payload: append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)}
}

// got is a frame the server sent.
type got struct {
	op      byte
	payload []byte
}

func (g got) String() string {
	if len(g.payload) > 40 {
		return fmt.Sprintf("op %#x, %d bytes", g.op, len(g.payload))
	}
	return fmt.Sprintf("op %#x %q", g.op, g.payload)
}

// readServerFrame reads one frame; server frames must be unmasked and
// final (the host sends each message whole).
func readServerFrame(br *bufio.Reader) (got, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return got{}, err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 || h[1]&0x80 != 0 {
		return got{}, fmt.Errorf("bad server frame header % x", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return got{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return got{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return got{}, err
	}
	return got{op: h[0] & 0x0f, payload: p}, nil
}

// Close outcomes a case expects besides a code.
const (
	closedNormally = 0    // the client ends with a close 1000, echoed
	noCode         = 1005 // a close frame without a code
)

// wsCase is one Autobahn-style case: frames sent, frames expected back
// in order (pongs and echoes), then the close code the server sends.
type wsCase struct {
	name  string
	send  []frame
	want  []got
	close int // closedNormally, noCode, or the server's code
}

func bytesOf(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

func echoCases() []wsCase {
	var cs []wsCase
	// 1: framing, text and binary payloads across the length encodings.
	for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		cs = append(cs,
			wsCase{name: fmt.Sprintf("1.1 text %d", n), send: []frame{{op: opText, payload: bytesOf(n, '*')}},
				want: []got{{opText, bytesOf(n, '*')}}},
			wsCase{name: fmt.Sprintf("1.2 binary %d", n), send: []frame{{op: opBinary, payload: bytesOf(n, 0xfe)}},
				want: []got{{opBinary, bytesOf(n, 0xfe)}}})
	}
	cs = append(cs,
		// 2: pings and pongs.
		wsCase{name: "2.1 ping without payload", send: []frame{{op: opPing}}, want: []got{{opPong, []byte{}}}},
		wsCase{name: "2.2 ping with text payload", send: []frame{{op: opPing, payload: []byte("Hello, world!")}},
			want: []got{{opPong, []byte("Hello, world!")}}},
		wsCase{name: "2.3 ping with binary payload", send: []frame{{op: opPing, payload: []byte{0, 0xff, 0xfe, 0xfd}}},
			want: []got{{opPong, []byte{0, 0xff, 0xfe, 0xfd}}}},
		wsCase{name: "2.4 ping with 125 bytes", send: []frame{{op: opPing, payload: bytesOf(125, 0xfe)}},
			want: []got{{opPong, bytesOf(125, 0xfe)}}},
		wsCase{name: "2.5 ping with 126 bytes", send: []frame{{op: opPing, payload: bytesOf(126, 0xfe)}},
			close: api.CloseProtocolError},
		wsCase{name: "2.7 unsolicited pong", send: []frame{{op: opPong}}},
		wsCase{name: "2.8 unsolicited pong with payload", send: []frame{{op: opPong, payload: []byte("unsolicited")}}},
		wsCase{name: "2.9 unsolicited pong then ping", send: []frame{{op: opPong, payload: []byte("x")}, {op: opPing, payload: []byte("y")}},
			want: []got{{opPong, []byte("y")}}},
		wsCase{name: "2.10 ten pings", send: repeatFrames(10, frame{op: opPing, payload: []byte("p")}),
			want: repeatGot(10, got{opPong, []byte("p")})},

		// 3: reserved bits (no extension is negotiated).
		wsCase{name: "3.1 text with RSV1", send: []frame{{op: opText, payload: []byte("x"), rsv: 0x40}}, close: api.CloseProtocolError},
		// Autobahn's NON-STRICT outcome: the connection is failed as soon
		// as the bad frame is read, before the script's echo of the
		// message before it is written.
		wsCase{name: "3.2 RSV2 after a valid message", send: []frame{text("ok"), {op: opText, payload: []byte("x"), rsv: 0x20}},
			close: api.CloseProtocolError},
		wsCase{name: "3.3 RSV3 on binary", send: []frame{{op: opBinary, payload: []byte("x"), rsv: 0x10}}, close: api.CloseProtocolError},
		wsCase{name: "3.6 RSV on ping", send: []frame{{op: opPing, payload: []byte("x"), rsv: 0x60}}, close: api.CloseProtocolError},
		wsCase{name: "3.7 all RSV on close", send: []frame{{op: opClose, rsv: 0x70}}, close: api.CloseProtocolError},

		// 4: opcodes.
		wsCase{name: "4.1.1 reserved data opcode 3", send: []frame{{op: 3}}, close: api.CloseProtocolError},
		wsCase{name: "4.1.2 reserved data opcode 4 with payload", send: []frame{{op: 4, payload: []byte("reserved")}}, close: api.CloseProtocolError},
		wsCase{name: "4.1.3 text, opcode 5, ping", send: []frame{text("hello"), {op: 5}, {op: opPing}},
			close: api.CloseProtocolError}, // NON-STRICT as 3.2
		wsCase{name: "4.2.1 reserved control opcode 11", send: []frame{{op: 11}}, close: api.CloseProtocolError},
		wsCase{name: "4.2.2 reserved control opcode 12 with payload", send: []frame{{op: 12, payload: []byte("x")}}, close: api.CloseProtocolError},

		// 5: fragmentation.
		wsCase{name: "5.1 fragmented ping", send: []frame{{op: opPing, payload: []byte("frag"), notFin: true}, {op: opCont, payload: []byte("ment")}},
			close: api.CloseProtocolError},
		wsCase{name: "5.2 fragmented pong", send: []frame{{op: opPong, payload: []byte("frag"), notFin: true}, {op: opCont, payload: []byte("ment")}},
			close: api.CloseProtocolError},
		wsCase{name: "5.3 text in two fragments", send: []frame{{op: opText, payload: []byte("frag"), notFin: true}, {op: opCont, payload: []byte("ment")}},
			want: []got{{opText, []byte("fragment")}}},
		wsCase{name: "5.5 text in many fragments", send: []frame{{op: opText, payload: []byte("a"), notFin: true},
			{op: opCont, payload: []byte("b"), notFin: true}, {op: opCont, payload: nil, notFin: true}, {op: opCont, payload: []byte("c")}},
			want: []got{{opText, []byte("abc")}}},
		wsCase{name: "5.6 ping between fragments", send: []frame{{op: opText, payload: []byte("frag"), notFin: true},
			{op: opPing, payload: []byte("between")}, {op: opCont, payload: []byte("ment")}},
			want: []got{{opPong, []byte("between")}, {opText, []byte("fragment")}}},
		wsCase{name: "5.9 continuation without a start", send: []frame{{op: opCont, payload: []byte("orphan")}, text("x")},
			close: api.CloseProtocolError},
		wsCase{name: "5.10 final continuation without a start", send: []frame{{op: opCont, payload: []byte("orphan"), notFin: true}},
			close: api.CloseProtocolError},
		wsCase{name: "5.15 new message inside a fragmented one", send: []frame{{op: opText, payload: []byte("a"), notFin: true},
			{op: opText, payload: []byte("b")}},
			close: api.CloseProtocolError},
		wsCase{name: "5.17 binary fragments with a pong between", send: []frame{{op: opBinary, payload: []byte{1}, notFin: true},
			{op: opPong, payload: []byte("x")}, {op: opCont, payload: []byte{2}}},
			want: []got{{opBinary, []byte{1, 2}}}},

		// 6: UTF-8 in text messages (checked on the whole message).
		wsCase{name: "6.1.1 empty text", send: []frame{text("")}, want: []got{{opText, []byte{}}}},
		wsCase{name: "6.2.1 valid UTF-8", send: []frame{text("Hello-µ@ßöäüàá-UTF-8!!")}, want: []got{{opText, []byte("Hello-µ@ßöäüàá-UTF-8!!")}}},
		wsCase{name: "6.2.3 valid UTF-8 split inside a code point", send: []frame{{op: opText, payload: []byte("κό\xcf"), notFin: true},
			{op: opCont, payload: []byte("\x83με")}}, want: []got{{opText, []byte("κόσμε")}}},
		wsCase{name: "6.3.1 invalid UTF-8", send: []frame{{op: opText, payload: []byte("κόσμε\xed\xa0\x80edited")}}, close: api.CloseInvalidData},
		wsCase{name: "6.3.2 invalid UTF-8 in a fragment", send: []frame{{op: opText, payload: []byte("ok"), notFin: true},
			{op: opCont, payload: []byte{0xff}}}, close: api.CloseInvalidData},
		wsCase{name: "6.6 truncated sequence", send: []frame{{op: opText, payload: []byte("\xce")}}, close: api.CloseInvalidData},
		wsCase{name: "6.9 overlong encoding", send: []frame{{op: opText, payload: []byte("\xc0\xaf")}}, close: api.CloseInvalidData},
		wsCase{name: "6.12 lone continuation byte", send: []frame{{op: opText, payload: []byte("\x80")}}, close: api.CloseInvalidData},
		wsCase{name: "6.20 UTF-16 surrogate", send: []frame{{op: opText, payload: []byte("\xed\xbf\xbf")}}, close: api.CloseInvalidData},
		wsCase{name: "6.22 noncharacter is valid", send: []frame{text("\xef\xbf\xbf")}, want: []got{{opText, []byte("\xef\xbf\xbf")}}},
		wsCase{name: "6.x invalid UTF-8 in binary is fine", send: []frame{{op: opBinary, payload: []byte{0xff, 0xfe}}},
			want: []got{{opBinary, []byte{0xff, 0xfe}}}},

		// 7: close handling.
		wsCase{name: "7.1.2 close twice", send: []frame{closeFrame(1000, ""), closeFrame(1000, "")}, close: 1000},
		wsCase{name: "7.1.3 ping after close", send: []frame{closeFrame(1000, ""), {op: opPing, payload: []byte("late")}}, close: 1000},
		wsCase{name: "7.1.4 text after close", send: []frame{closeFrame(1000, ""), text("late")}, close: 1000},
		wsCase{name: "7.1.5 close inside a fragmented message", send: []frame{{op: opText, payload: []byte("frag"), notFin: true}, closeFrame(1000, "")},
			close: 1000},
		wsCase{name: "7.3.1 close without payload", send: []frame{{op: opClose}}, close: noCode},
		wsCase{name: "7.3.2 close with one byte", send: []frame{{op: opClose, payload: []byte{0x03}}}, close: api.CloseProtocolError},
		wsCase{name: "7.3.4 close with a reason", send: []frame{closeFrame(1000, "Hello World!")}, close: 1000},
		wsCase{name: "7.3.5 close with a 123-byte reason", send: []frame{closeFrame(1000, strings.Repeat("*", 123))}, close: 1000},
		// Deviation: Autobahn expects 1007 (or 1002); the framing library
		// does not check close reasons and echoes the code.
		wsCase{name: "7.5.1 close reason not UTF-8 (echoed)", send: []frame{closeFrame(1000, "\xce\xba\xff")}, close: 1000},
		wsCase{name: "7.3.6 close with a 124-byte reason", send: []frame{closeFrame(1000, strings.Repeat("*", 124))}, close: api.CloseProtocolError},
	)
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cs = append(cs, wsCase{name: fmt.Sprintf("7.7 close code %d echoed", code), send: []frame{closeFrame(code, "")}, close: code})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, wsCase{name: fmt.Sprintf("7.9 invalid close code %d", code), send: []frame{closeFrame(code, "")}, close: api.CloseProtocolError})
	}
	cs = append(cs,
		// 9 and the host's own limits (maximum message 64 KiB here).
		wsCase{name: "9 message at the limit", send: []frame{{op: opBinary, payload: bytesOf(64<<10, 1)}}, want: []got{{opBinary, bytesOf(64<<10, 1)}}},
		wsCase{name: "9 message over the limit", send: []frame{{op: opBinary, payload: bytesOf(64<<10+1, 1)}}, close: api.CloseTooBig},
		wsCase{name: "9 fragments over the limit", send: []frame{{op: opText, payload: bytesOf(40<<10, 'a'), notFin: true},
			{op: opCont, payload: bytesOf(40<<10, 'a')}}, close: api.CloseTooBig},
		wsCase{name: "unmasked client frame", send: []frame{{op: opText, payload: []byte("bare"), unmasked: true}}, close: api.CloseProtocolError},
		wsCase{name: "script closes with a code", send: []frame{text("close 4001")}, close: 4001},
		wsCase{name: "script fails", send: []frame{text("fail")}, close: api.CloseInternalError},
		wsCase{name: "script returns a close error", send: []frame{text("return-close-error")}, close: api.CloseNormal},
		wsCase{name: "raw writes refused", send: []frame{text("raw")}, want: []got{{opText, []byte("true")}}},
		wsCase{name: "TryRecv", send: []frame{text("try"), text("second")}, want: []got{{opText, []byte("second false")}}},
		wsCase{name: "Recv honours its context", send: []frame{text("recv-timeout")},
			want: []got{{opText, []byte(context.DeadlineExceeded.Error())}}},
	)
	return cs
}

func repeatFrames(n int, f frame) []frame {
	fs := make([]frame, n)
	for i := range fs {
		fs[i] = f
	}
	return fs
}

func repeatGot(n int, g got) []got {
	gs := make([]got, n)
	for i := range gs {
		gs[i] = g
	}
	return gs
}

// runCase plays c on a new socket and checks the server's frames, its
// close code, and that it closes the connection afterwards.
func runCase(t *testing.T, f wsFront, c wsCase) {
	conn, br := wsDial(t, f, "/ws")
	var out []byte
	for _, fr := range c.send {
		out = append(out, fr.bytes()...)
	}
	if _, err := conn.Write(out); err != nil && !isReset(err) {
		t.Fatal(err)
	}
	// As Autobahn's client does, the expected answers are awaited before
	// the client closes.
	var frames []got
	closeCode := -1
	for {
		if c.close == closedNormally && len(frames) == len(c.want) {
			mustWrite(t, conn, closeFrame(1000, "").bytes())
		}
		g, err := readServerFrame(br)
		if err != nil {
			t.Fatalf("after %v: %v (no close frame)", frames, err)
		}
		if g.op == opClose {
			closeCode = noCode
			if len(g.payload) >= 2 {
				closeCode = int(binary.BigEndian.Uint16(g.payload))
			}
			break
		}
		frames = append(frames, g)
	}
	if fmt.Sprint(frames) != fmt.Sprint(c.want) {
		t.Errorf("frames = %v, want %v", frames, c.want)
	}
	want := c.close
	if want == closedNormally {
		want = 1000
	}
	if closeCode != want {
		t.Errorf("close code = %d, want %d", closeCode, want)
	}
	// Answer the close as a client does, then the server must close.
	conn.Write(closeFrame(1000, "").bytes())
	conn.SetReadDeadline(time.Now().Add(ioTimeout))
	if rest, err := io.ReadAll(br); err != nil && !isReset(err) {
		t.Errorf("after the close: %v", err)
	} else if len(rest) > 0 {
		t.Errorf("after the close: % x", rest)
	}
}

func TestWebSocketConformance(t *testing.T) {
	_, fronts := startWS(t, host.Limits{WebSocketMaxMessage: 64 << 10}, echoApp)
	if nginx, ok := nginxFront(t, fronts[0].addr); ok {
		fronts = append(fronts, nginx)
	}
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			for _, c := range echoCases() {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					runCase(t, f, c)
				})
			}
		})
	}
}

// TestWebSocketNoHandshake: an upgrade request whose app answers
// normally gets a normal response.
func TestWebSocketNoHandshake(t *testing.T) {
	_, fronts := startWS(t, host.Limits{}, echoApp)
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", f.addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			if f.uwsgi {
				block, _ := upgradeVars("/plain").Append(nil)
				pkt, _ := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
				mustWrite(t, c, pkt)
			} else {
				mustWrite(t, c, []byte("GET /plain HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
					"Sec-WebSocket-Key: "+testKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n"))
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "plain" {
				t.Errorf("got %d %q, want 200 \"plain\"", resp.StatusCode, body)
			}
		})
	}
}

// TestWebSocketBadHandshake: a request whose handshake is invalid makes
// Upgrade fail; the app's error becomes a 500, no 101 goes out.
func TestWebSocketBadHandshake(t *testing.T) {
	_, fronts := startWS(t, host.Limits{}, echoApp)
	c, err := net.DialTimeout("tcp", fronts[0].addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	vs := upgradeVars("/ws")
	vs = vs.Add("HTTP_SEC_WEBSOCKET_VERSION", "8")
	block, _ := vs.Append(nil)
	pkt, _ := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
	mustWrite(t, c, pkt)
	got, _ := readUntilClose(c)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 500 ")) {
		t.Errorf("got %q, want a 500", got)
	}
}

// TestWebSocketSlowReader: a peer that does not read is closed with 1008
// once the send queue is full; memory stays bounded and the server keeps
// serving.
func TestWebSocketSlowReader(t *testing.T) {
	ts, fronts := startWS(t, host.Limits{WebSocketSendQueue: 256 << 10}, echoApp)
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			// (The client's receive buffer is left alone: shrinking it on
			// an open connection makes the kernel drop data it already
			// announced room for, and the retransmissions back off for
			// seconds.)
			c, br := wsDial(t, f, "/ws")
			mustWrite(t, c, text("flood 2000 65536").bytes())
			time.Sleep(500 * time.Millisecond) // the server fills its queue meanwhile
			var n int
			for {
				g, err := readServerFrame(br)
				if err != nil {
					t.Fatalf("after %d messages: %v", n, err)
				}
				if g.op == opClose {
					if code := binary.BigEndian.Uint16(g.payload); code != api.ClosePolicy {
						t.Errorf("close code %d, want 1008", code)
					}
					break
				}
				n++
			}
			if n >= 2000 {
				t.Errorf("all %d messages were delivered: the queue did not bound them", n)
			}
			t.Logf("%d messages of 64 KiB delivered before the close", n)
			mustWrite(t, c, closeFrame(1000, "").bytes())
			plainRequest(t, ts)
		})
	}
}

// plainRequest checks that the server still serves a normal request.
func plainRequest(t *testing.T, ts *testServer) {
	t.Helper()
	c := ts.dial(t)
	var vs uwsgi.Vars
	vs = vs.Add("REQUEST_METHOD", "GET").Add("PATH_INFO", "/plain").Add("SERVER_PROTOCOL", "HTTP/1.1")
	block, _ := vs.Append(nil)
	pkt, _ := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
	mustWrite(t, c, pkt)
	got, err := readUntilClose(c)
	if err != nil || !bytes.HasSuffix(got, []byte("plain")) {
		t.Errorf("plain request: %q, %v", got, err)
	}
}

// TestWebSocketPing: the host pings; a peer that answers stays, one
// that does not is dropped.
func TestWebSocketPing(t *testing.T) {
	_, fronts := startWS(t, host.Limits{WebSocketPing: 50 * time.Millisecond, WebSocketPongTimeout: 100 * time.Millisecond}, echoApp)
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			// Answering: three pings, then an echo still works.
			c, br := wsDial(t, f, "/ws")
			for i := 0; i < 3; i++ {
				g, err := readServerFrame(br)
				if err != nil || g.op != opPing {
					t.Fatalf("frame %d: %v, %v; want a ping", i, g, err)
				}
				mustWrite(t, c, frame{op: opPong, payload: g.payload}.bytes())
			}
			mustWrite(t, c, text("alive").bytes())
			for {
				g, err := readServerFrame(br)
				if err != nil {
					t.Fatal(err)
				}
				if g.op == opPing {
					mustWrite(t, c, frame{op: opPong, payload: g.payload}.bytes())
					continue
				}
				if g.op != opText || string(g.payload) != "alive" {
					t.Fatalf("got %v, want the echo", g)
				}
				break
			}
			// Silent: dropped without a close handshake.
			_, br2 := wsDial(t, f, "/ws")
			start := time.Now()
			for {
				g, err := readServerFrame(br2)
				if err != nil {
					break
				}
				if g.op != opPing {
					t.Fatalf("got %v, want pings then the drop", g)
				}
			}
			t.Logf("silent peer dropped after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestWebSocketShutdown: Shutdown closes open sockets with 1001 and
// returns once their calls did.
func TestWebSocketShutdown(t *testing.T) {
	ts, fronts := startWS(t, host.Limits{}, echoApp)
	var brs []*bufio.Reader
	var conns []net.Conn
	for _, f := range fronts {
		c, br := wsDial(t, f, "/ws")
		conns, brs = append(conns, c), append(brs, br)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	for i, br := range brs {
		g, err := readServerFrame(br)
		if err != nil || g.op != opClose || binary.BigEndian.Uint16(g.payload) != api.CloseGoingAway {
			t.Fatalf("%s: got %v, %v; want close 1001", fronts[i].name, g, err)
		}
		mustWrite(t, conns[i], closeFrame(1001, "").bytes())
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := ts.srv.OpenWebSockets(); n != 0 {
		t.Errorf("%d sockets open after Shutdown", n)
	}
}

// TestWebSocketReload: a reload keeps the generation of an open socket
// alive until the socket ends, past the drain timeout.
func TestWebSocketReload(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.fake"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var closed atomic.Int64
	var rl *host.Reloader
	ts := startServer(t, "tcp", host.Limits{}, func(srv *host.Server) {
		eng := &fakeEngine{serve: echoApp}
		rl = &host.Reloader{Server: srv, Dir: dir, Engines: []api.Engine{&closeCounting{eng, &closed}},
			Logger: quietLogger, DrainTimeout: 50 * time.Millisecond}
		if err := rl.Reload(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	})
	f := wsFront{name: "uwsgi", addr: ts.addr, uwsgi: true}
	c, br := wsDial(t, f, "/ws")
	if err := rl.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // well past the drain timeout
	if n := closed.Load(); n != 0 {
		t.Fatalf("%d programs freed while a socket of theirs is open", n)
	}
	mustWrite(t, c, text("still here").bytes())
	if g, err := readServerFrame(br); err != nil || string(g.payload) != "still here" {
		t.Fatalf("after the reload: %v, %v", g, err)
	}
	mustWrite(t, c, closeFrame(1000, "").bytes())
	readServerFrame(br)
	waitFor(t, "the old generation to be freed", func() bool { return closed.Load() == 1 })
}

// closeCounting is an engine whose programs count their Close.
type closeCounting struct {
	*fakeEngine
	closed *atomic.Int64
}

func (e *closeCounting) Load(ctx context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	p, err := e.fakeEngine.Load(ctx, env, files)
	return countingProgram{p, e.closed}, err
}

type countingProgram struct {
	api.Program
	closed *atomic.Int64
}

func (p countingProgram) Close() error { p.closed.Add(1); return p.Program.Close() }

// TestWebSocketIdle measures what idle sockets cost (both ends live in
// this process; the figure includes the test's client connections) and
// checks that normal requests are served meanwhile.
func TestWebSocketIdle(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	ts, fronts := startWS(t, host.Limits{}, echoApp)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := rss(t)
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, _ := wsDial(t, fronts[i%2], "/ws")
		c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	waitFor(t, "every socket to open", func() bool { return ts.srv.OpenWebSockets() == n })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	rssAfter := rss(t)
	heap := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d idle sockets: heap+stacks %d bytes per socket (stacks %d), RSS %d bytes per socket, %d goroutines",
		n, heap/int64(n), (int64(after.StackInuse)-int64(before.StackInuse))/int64(n),
		(rssAfter-rssBefore)/int64(n), runtime.NumGoroutine())
	if per := heap / int64(n); per > 64<<10 {
		t.Errorf("an idle socket costs %d bytes of heap and stack, want at most 64 KiB", per)
	}
	plainRequest(t, ts)
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "every socket to close", func() bool { return ts.srv.OpenWebSockets() == 0 })
}

// rss is the process's resident set size in bytes.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkWebSocketEcho measures echo round trips of a small text
// message on one socket.
func BenchmarkWebSocketEcho(b *testing.B) {
	for _, name := range []string{"uwsgi", "http"} {
		b.Run(name, func(b *testing.B) {
			var srv *host.Server
			ts := startAppServer(b, host.Limits{}, echoApp, func(s *host.Server) { srv = s })
			f := wsFront{name: "uwsgi", addr: ts.addr, uwsgi: true}
			if name == "http" {
				l := listen(b, "tcp")
				hs := srv.NewHTTPServer(&host.HTTPFront{Server: srv})
				go hs.Serve(l)
				defer hs.Close()
				f = wsFront{name: "http", addr: l.Addr().String()}
			}
			c, br := wsDial(b, f, "/ws")
			c.SetDeadline(time.Time{})
			msg := text("hello, websocket").bytes()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mustWrite(b, c, msg)
				if _, err := readServerFrame(br); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c.Write(closeFrame(1000, "").bytes())
			readServerFrame(br)
		})
	}
}

// TestWebSocketOutlivesTimeouts: a socket is not a slow request: the
// packet, idle and call timeouts do not end it.
func TestWebSocketOutlivesTimeouts(t *testing.T) {
	lim := host.Limits{HeaderTimeout: 50 * time.Millisecond, IdleTimeout: 50 * time.Millisecond,
		BodyTimeout: 50 * time.Millisecond, CallTimeout: 100 * time.Millisecond}
	_, fronts := startWS(t, lim, echoApp)
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			c, br := wsDial(t, f, "/ws")
			time.Sleep(300 * time.Millisecond)
			mustWrite(t, c, text("still open").bytes())
			if g, err := readServerFrame(br); err != nil || string(g.payload) != "still open" {
				t.Fatalf("after the timeouts: %v, %v", g, err)
			}
			mustWrite(t, c, closeFrame(1000, "").bytes())
			if g, err := readServerFrame(br); err != nil || g.op != opClose {
				t.Fatalf("close: %v, %v", g, err)
			}
		})
	}
}

// TestWebSocketShutdownAfterDrain: sockets get their 1001 only once the
// requests in flight have been answered.
func TestWebSocketShutdownAfterDrain(t *testing.T) {
	ts, fronts := startWS(t, host.Limits{}, echoApp)
	_, br := wsDial(t, fronts[0], "/ws")
	slow := ts.dial(t)
	var vs uwsgi.Vars
	vs = vs.Add("REQUEST_METHOD", "GET").Add("PATH_INFO", "/slow").Add("SERVER_PROTOCOL", "HTTP/1.1")
	block, _ := vs.Append(nil)
	pkt, _ := uwsgi.AppendPacket(nil, uwsgi.ModLua, 0, block)
	mustWrite(t, slow, pkt)
	time.Sleep(50 * time.Millisecond) // the slow request is running
	answered := make(chan time.Time, 1)
	go func() {
		readUntilClose(slow)
		answered <- time.Now()
	}()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		ts.srv.Shutdown(ctx)
	}()
	g, err := readServerFrame(br)
	closedAt := time.Now()
	if err != nil || g.op != opClose || binary.BigEndian.Uint16(g.payload) != api.CloseGoingAway {
		t.Fatalf("got %v, %v; want close 1001", g, err)
	}
	// Without the drain the close would come some 250 ms early; the two
	// readers here may see their ends a scheduling moment apart.
	if at := <-answered; closedAt.Before(at.Add(-50 * time.Millisecond)) {
		t.Errorf("the socket was closed %v before the request in flight was answered", at.Sub(closedAt))
	}
}
