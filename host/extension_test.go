package host_test

// The scripthost extension (api/uwsgi/ext.go) on raw sockets: the hello,
// error frames instead of silent closes, empty results, and the limits
// that only extended clients are told about.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

func TestHelloReply(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	c := ts.dial(t)
	mustWrite(t, c, uwsgi.AppendHello(nil))
	want := append([]byte{100, byte(len(uwsgi.ExtHello)), 0, uwsgi.PingExt}, uwsgi.ExtHello...)
	if got := mustRead(t, c, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("hello reply = % x, want % x", got, want)
	}
	if got := uwsgi.AppendHelloReply(nil); !bytes.Equal(got, want) {
		t.Errorf("AppendHelloReply = % x, want % x", got, want)
	}
	ping(t, c)

	// A ping with another payload is an ordinary ping.
	other := ts.dial(t)
	mustWrite(t, other, framed(uwsgi.ModPing, 0, []byte("scripthost-ext/2")))
	if got := mustRead(t, other, 4); !bytes.Equal(got, pongResp) {
		t.Errorf("ping with a payload = % x, want % x", got, pongResp)
	}
	mustWrite(t, other, rpcReq(t, uwsgi.RPCFramed, "nope"))
	expectClosed(t, other)
}

// extStep is one request on an extended connection and its answer: exact
// bytes, or an error frame with a code and a message containing msg.
type extStep struct {
	name string
	req  []byte
	want []byte
	code uwsgi.Code
	msg  string
}

func args(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = strconv.Itoa(i % 10)
	}
	return a
}

func argdumpResult(a []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "argc=%d", len(a))
	for _, s := range a {
		fmt.Fprintf(&b, "|%d:%s", len(s), s)
	}
	return b.String()
}

func TestExtendedErrorFrames(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) {
		if err := s.State.RPC.Register("panics", func(context.Context, [][]byte) ([]byte, error) {
			panic("function bug")
		}); err != nil {
			t.Fatal(err)
		}
	})
	cache := func(cmd, key string, value []byte) []byte {
		return cacheReq(t, uwsgi.CacheRequest{Cmd: cmd, Key: []byte(key)}, value)
	}
	ok := uwsgi.AppendCacheReply(nil, false, nil, 0)
	bigKey := strings.Repeat("k", 3000)
	large := bigPattern[:100000]
	steps := []extStep{
		{name: "result", req: rpcReq(t, 0, "hello"), want: framed(uwsgi.ModRPC, 0, []byte("Hello World"))},
		{name: "unknown function", req: rpcReq(t, 0, "nope"), code: uwsgi.CodeNotFound, msg: "nope"},
		{name: "no result", req: rpcReq(t, 0, "pystr"), code: uwsgi.CodeNoResult},
		{name: "script error", req: rpcReq(t, 0, "boom"), code: uwsgi.CodeScript, msg: "boom"},
		{name: "panic", req: rpcReq(t, 0, "panics"), code: uwsgi.CodeScript, msg: "function bug"},
		{name: "empty result", req: rpcReq(t, 0, "empty"), want: []byte{173, 0, 0, 0}},
		{name: "254 args", req: rpcReq(t, 0, "argdump", args(254)...), want: framed(uwsgi.ModRPC, 0, []byte(argdumpResult(args(254))))},
		{name: "255 args", req: rpcReq(t, 0, "argdump", args(255)...), code: uwsgi.CodeBadRequest, msg: "254"},
		{name: "300 args", req: rpcReq(t, 0, "argdump", args(300)...), code: uwsgi.CodeBadRequest},
		{name: "empty packet", req: []byte{173, 0, 0, 0}, code: uwsgi.CodeBadRequest},
		{name: "truncated array", req: framed(uwsgi.ModRPC, 0, []byte{5, 0, 'h', 'e'}), code: uwsgi.CodeBadRequest},
		{name: "only empty items", req: framed(uwsgi.ModRPC, 0, []byte{0, 0, 0, 0}), code: uwsgi.CodeBadRequest},
		{name: "large result", req: rpcReq(t, 0, "big", "100000"),
			want: append(uwsgi.AppendRPCHeader(nil, len(large)), large...)},
		{name: "cache get miss", req: cache(uwsgi.CacheCmdGet, "xk", nil), code: uwsgi.CodeNotFound, msg: "xk"},
		{name: "cache exists miss", req: cache(uwsgi.CacheCmdExists, "xk", nil), code: uwsgi.CodeNotFound},
		{name: "cache del miss", req: cache(uwsgi.CacheCmdDel, "xk", nil), code: uwsgi.CodeNotFound},
		{name: "cache set", req: cache(uwsgi.CacheCmdSet, "xk", []byte("one")), want: ok},
		{name: "cache set existing", req: cache(uwsgi.CacheCmdSet, "xk", []byte("two")), code: uwsgi.CodeExists},
		{name: "cache get", req: cache(uwsgi.CacheCmdGet, "xk", nil), want: uwsgi.AppendCacheReply(nil, true, []byte("one"), 0)},
		{name: "cache update", req: cache(uwsgi.CacheCmdUpdate, "xk", []byte("three")), want: ok},
		{name: "cache get updated", req: cache(uwsgi.CacheCmdGet, "xk", nil), want: uwsgi.AppendCacheReply(nil, true, []byte("three"), 0)},
		{name: "cache key too large", req: cache(uwsgi.CacheCmdSet, bigKey, []byte("v")), code: uwsgi.CodeTooLarge},
		{name: "cache get empty key", req: cache(uwsgi.CacheCmdGet, "", nil), code: uwsgi.CodeBadRequest},
		{name: "cache clear", req: cache(uwsgi.CacheCmdClear, "", nil), want: ok},
		{name: "signal unregistered", req: []byte{110, 0, 0, 99}, code: uwsgi.CodeFailed, msg: "99"},
		{name: "signal registered", req: []byte{110, 0, 0, 17}, want: ackOK},
		{name: "hello again", req: uwsgi.AppendHello(nil), want: uwsgi.AppendHelloReply(nil)},
	}
	c := ts.dialExtended(t)
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mustWrite(t, c, st.req)
			if st.want != nil {
				if got := mustRead(t, c, len(st.want)); !bytes.Equal(got, st.want) {
					t.Fatalf("got %s, want %s", show(got), show(st.want))
				}
			} else {
				expectErrorFrame(t, c, st.code, st.msg)
			}
			ping(t, c) // the connection is still usable
		})
	}
}

// expectErrorFrame reads an error frame and checks its code and that its
// message mentions msg.
func expectErrorFrame(tb testing.TB, c interface{ Read([]byte) (int, error) }, code uwsgi.Code, msg string) {
	tb.Helper()
	h, err := uwsgi.ReadHeader(c)
	if err != nil {
		tb.Fatalf("reading the error frame: %v", err)
	}
	body := make([]byte, h.Size)
	if _, err := readFull(c, body); err != nil {
		tb.Fatalf("reading the error message: %v", err)
	}
	if h.Modifier1 != uwsgi.ModResponse || uwsgi.Code(h.Modifier2) != code || h.Size == 0 {
		tb.Fatalf("got frame %v %q, want an error frame with code %v (%d)", h, body, code, uint8(code))
	}
	if !uwsgi.IsErrorFrame(h) {
		tb.Errorf("IsErrorFrame(%v) = false", h)
	}
	if !containsFold(string(body), msg) {
		tb.Errorf("error message %q does not mention %q", body, msg)
	}
}

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Failures after which the request's remaining bytes cannot be skipped:
// the error frame, then the close.
func TestExtendedErrorThenClose(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	tests := []struct {
		name string
		req  []byte
		code uwsgi.Code
		msg  string
	}{
		{"unknown cache", cacheReq(t, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdGet, Key: []byte("k"), Cache: "nosuchcache"}, nil),
			uwsgi.CodeNotFound, "nosuchcache"},
		{"unknown cache, set", cacheReq(t, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdSet, Key: []byte("k"), Cache: "nosuchcache"}, []byte("v")),
			uwsgi.CodeNotFound, "nosuchcache"},
		{"value over the item size", cacheSizeReq(t, uwsgi.CacheCmdSet, 65537), uwsgi.CodeTooLarge, "65536"},
		{"update over the item size", cacheSizeReq(t, uwsgi.CacheCmdUpdate, 1<<30), uwsgi.CodeTooLarge, "65536"},
		{"unknown command", cacheVarsReq(t, "cmd", "frob", "key", "k"), uwsgi.CodeBadRequest, "frob"},
		{"set without size", cacheVarsReq(t, "cmd", "set", "key", "k"), uwsgi.CodeBadRequest, "size"},
		{"malformed dict", framed(uwsgi.ModCache, uwsgi.CacheMagic, []byte{3, 0, 'c', 'm'}), uwsgi.CodeBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dialExtended(t)
			mustWrite(t, c, tt.req)
			expectErrorFrame(t, c, tt.code, tt.msg)
			expectClosed(t, c)
		})
	}
}

// cacheSizeReq is a set or update announcing size value bytes, without
// the value.
func cacheSizeReq(tb testing.TB, cmd string, size int) []byte {
	return cacheVarsReq(tb, "cmd", cmd, "key", "k", "size", strconv.Itoa(size))
}

func cacheVarsReq(tb testing.TB, kv ...string) []byte {
	tb.Helper()
	var vs uwsgi.Vars
	for i := 0; i < len(kv); i += 2 {
		vs = vs.Add(kv[i], kv[i+1])
	}
	b, err := vs.Append(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return framed(uwsgi.ModCache, uwsgi.CacheMagic, b)
}

// Raw and HTTP modes have no framing, so even extended clients get
// uWSGI's answers there.
func TestExtendedRawModes(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	bridge, _ := uwsgi.Vars{}.Add("PATH_INFO", "/nope").Append(nil)
	tests := []struct {
		name string
		req  []byte
		want string
	}{
		{"raw unknown", rpcReq(t, uwsgi.RPCRaw, "nope"), ""},
		{"raw error", rpcReq(t, uwsgi.RPCRaw, "boom"), ""},
		{"raw 255 args", rpcReq(t, uwsgi.RPCRaw, "argdump", args(255)...), argdumpResult(args(254))},
		{"bridge unknown", framed(uwsgi.ModRPC, uwsgi.RPCHTTP, bridge),
			"HTTP/1.0 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nNot Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dialExtended(t)
			mustWrite(t, c, tt.req)
			got, err := readUntilClose(c)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v, want %s then the close", show(got), err, show([]byte(tt.want)))
			}
		})
	}
}

// Without the hello, extra RPC arguments are ignored as uWSGI does.
func TestPlainExtraArgsIgnored(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	for _, n := range []int{254, 255, 300} {
		got := ts.exchange(t, rpcReq(t, uwsgi.RPCFramed, "argdump", args(n)...), true)
		want := framed(uwsgi.ModRPC, 0, []byte(argdumpResult(args(min(n, 254)))))
		if !bytes.Equal(got, want) {
			t.Errorf("%d args: got %s, want %s", n, show(got), show(want))
		}
	}
	// MaxRPCArgs lowers the limit.
	small := startServer(t, "tcp", host.Limits{MaxRPCArgs: 2}, nil)
	got := small.exchange(t, rpcReq(t, uwsgi.RPCFramed, "argdump", "a", "b", "c"), true)
	if want := framed(uwsgi.ModRPC, 0, []byte("argc=2|1:a|1:b")); !bytes.Equal(got, want) {
		t.Errorf("MaxRPCArgs 2: got %s, want %s", show(got), show(want))
	}
	c := small.dialExtended(t)
	mustWrite(t, c, rpcReq(t, uwsgi.RPCFramed, "argdump", "a", "b", "c"))
	expectErrorFrame(t, c, uwsgi.CodeBadRequest, "2")
}

// A plain connection can upgrade itself with a hello pipelined after
// other packets.
func TestHelloAfterPlainPackets(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	c := ts.dial(t)
	mustWrite(t, c, append(append([]byte(nil), pingReq...), uwsgi.AppendHello(nil)...))
	if got := mustRead(t, c, len(pongResp)); !bytes.Equal(got, pongResp) {
		t.Fatalf("pong = % x, want % x", got, pongResp)
	}
	if got, want := mustRead(t, c, len(uwsgi.AppendHelloReply(nil))), uwsgi.AppendHelloReply(nil); !bytes.Equal(got, want) {
		t.Fatalf("hello reply = % x, want % x", got, want)
	}
	mustWrite(t, c, rpcReq(t, 0, "nope"))
	expectErrorFrame(t, c, uwsgi.CodeNotFound, "nope")
	ping(t, c)
}

func TestCallTimeout(t *testing.T) {
	var g *gate
	ts := startServer(t, "tcp", host.Limits{CallTimeout: 50 * time.Millisecond}, func(s *host.Server) {
		g = registerGate(t, s.State)
	})
	t.Run("extended", func(t *testing.T) {
		c := ts.dialExtended(t)
		mustWrite(t, c, rpcReq(t, 0, "block", "1"))
		// The function returns ctx.Err(), a plain "context canceled":
		// the host still knows the call ran out of time.
		expectErrorFrame(t, c, uwsgi.CodeTimeout, "out of time")
		if err := <-g.cancelled; !errors.Is(err, api.ErrHarakiri) {
			t.Errorf("the call's context.Cause = %v, want api.ErrHarakiri", err)
		}
		ping(t, c)
	})
	t.Run("plain", func(t *testing.T) {
		c := ts.dial(t)
		mustWrite(t, c, rpcReq(t, 0, "block", "2"))
		expectClosed(t, c)
		<-g.cancelled
	})
}
