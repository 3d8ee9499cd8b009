package host_test

// Shared fixtures of the host tests: a state with the RPC functions, cache
// and signal of the uWSGI instance that produced the vectors, servers on
// real loopback and unix sockets, and raw-socket helpers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// vectorDir holds the uWSGI 2.0.21 captures (see its README.md).
const vectorDir = "../api/uwsgi/testdata/vectors"

// ioTimeout bounds every socket wait of a test so that nothing hangs; no
// test asserts how long anything took.
const ioTimeout = 10 * time.Second

var quietLogger = slog.New(slog.DiscardHandler)

// Literal packets used throughout.
var (
	pingReq   = []byte{100, 0, 0, 0}
	pongResp  = []byte{100, 0, 0, 1}
	ackOK     = []byte{255, 0, 0, 1}
	closeMark = []byte{200, 0, 0, 0}
)

// bigPattern backs the results of "big": "0123456789" repeated, like the
// Lua function of the capture server.
var bigPattern = bytes.Repeat([]byte("0123456789"), (2<<20)/10+1)

// maxBig caps "big" so that a fuzzed argument cannot ask for gigabytes.
const maxBig = 2 << 20

// registerCaptureFuncs registers, as Go functions, the RPC functions of the
// capture server (vectors README, "Server-side application code").
func registerCaptureFuncs(tb testing.TB, reg *api.Registry) {
	tb.Helper()
	arg := func(args [][]byte, i int) string {
		if i < len(args) {
			return string(args[i])
		}
		return "nil" // Lua's tostring(nil)
	}
	funcs := map[string]api.RPCFunc{
		"hello": func(context.Context, [][]byte) ([]byte, error) {
			return []byte("Hello World"), nil
		},
		"hellolua": func(_ context.Context, args [][]byte) ([]byte, error) {
			return []byte("args are " + arg(args, 0) + " " + arg(args, 1)), nil
		},
		"argdump": func(_ context.Context, args [][]byte) ([]byte, error) {
			out := []byte("argc=" + strconv.Itoa(len(args)))
			for _, a := range args {
				out = append(out, '|')
				out = strconv.AppendInt(out, int64(len(a)), 10)
				out = append(out, ':')
				out = append(out, a...)
			}
			return out, nil
		},
		"big": func(_ context.Context, args [][]byte) ([]byte, error) {
			n, _ := strconv.Atoi(arg(args, 0))
			n = max(0, min(n, maxBig))
			return bigPattern[:n:n], nil
		},
		"empty": func(context.Context, [][]byte) ([]byte, error) {
			return []byte{}, nil
		},
		"boom": func(context.Context, [][]byte) ([]byte, error) {
			return nil, errors.New("boom")
		},
		"httphello": func(_ context.Context, args [][]byte) ([]byte, error) {
			body := "hello from rpc, args:"
			for _, a := range args {
				body += " " + string(a)
			}
			return []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
				strconv.Itoa(len(body)) + "\r\n\r\n" + body), nil
		},
		"pyhello": func(_ context.Context, args [][]byte) ([]byte, error) {
			return append([]byte("py:"), bytes.Join(args, []byte(","))...), nil
		},
		// A Python 3 str result is "no result" for uWSGI.
		"pystr": func(context.Context, [][]byte) ([]byte, error) {
			return nil, api.ErrNoResult
		},
	}
	for name, fn := range funcs {
		if err := reg.Register(name, fn); err != nil {
			tb.Fatalf("Register(%q): %v", name, err)
		}
	}
}

// newState returns a state like the capture server's: its RPC functions, a
// cache named "default" (items=100, blocksize=65536) and signal 17.
func newState(tb testing.TB) *api.State {
	tb.Helper()
	st, err := api.NewState(api.StateConfig{
		Caches:   []api.CacheConfig{{Name: "default", MaxItems: 100, MaxItemSize: 65536}},
		Hostname: "test",
		Logger:   quietLogger,
	})
	if err != nil {
		tb.Fatalf("NewState: %v", err)
	}
	registerCaptureFuncs(tb, st.RPC)
	if err := st.Signals.Register(17, "worker", func(context.Context, uint8) error { return nil }); err != nil {
		tb.Fatalf("Signals.Register(17): %v", err)
	}
	return st
}

// testServer is a host.Server serving one listener of a test.
type testServer struct {
	srv     *host.Server
	state   *api.State
	network string
	addr    string
	served  chan error // Serve's result
}

// listen opens a loopback TCP listener or a unix socket in a temporary
// directory.
func listen(tb testing.TB, network string) net.Listener {
	tb.Helper()
	var (
		l   net.Listener
		err error
	)
	switch network {
	case "tcp":
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case "unix":
		l, err = net.Listen("unix", filepath.Join(tb.TempDir(), "s.sock"))
	default:
		tb.Fatalf("unknown network %q", network)
	}
	if err != nil {
		tb.Fatalf("listen %s: %v", network, err)
	}
	return l
}

// startServer serves a new server with a fresh capture state and limits
// lim on a new listener. setup, when not nil, runs before Serve (Handle,
// extra registrations). Cleanup shuts the server down and checks that
// Serve returned ErrServerClosed.
func startServer(tb testing.TB, network string, lim host.Limits, setup func(*host.Server)) *testServer {
	tb.Helper()
	st := newState(tb)
	srv := &host.Server{State: st, Logger: quietLogger, Limits: lim}
	if setup != nil {
		setup(srv)
	}
	l := listen(tb, network)
	ts := &testServer{srv: srv, state: st, network: network, addr: l.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(l) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
			srv.Close()
		}
		select {
		case err := <-ts.served:
			if !errors.Is(err, host.ErrServerClosed) {
				tb.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(ioTimeout):
			tb.Errorf("Serve did not return after Shutdown")
		}
	})
	return ts
}

// dial opens a raw connection to the server, closed at cleanup, with a
// deadline so that a test never hangs.
func (ts *testServer) dial(tb testing.TB) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout(ts.network, ts.addr, ioTimeout)
	if err != nil {
		tb.Fatalf("dial %s %s: %v", ts.network, ts.addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return c
}

// dialExtended opens a connection and negotiates the extension.
func (ts *testServer) dialExtended(tb testing.TB) net.Conn {
	tb.Helper()
	c := ts.dial(tb)
	mustWrite(tb, c, uwsgi.AppendHello(nil))
	want := uwsgi.AppendHelloReply(nil)
	if got := mustRead(tb, c, len(want)); !bytes.Equal(got, want) {
		tb.Fatalf("hello reply = % x, want % x", got, want)
	}
	return c
}

// exchange does what the capture scripts did: one fresh connection, the
// request written at once, then (with halfClose) the write side shut, and
// everything read until the server closes. A reset counts as the close: the
// server may drop a connection with unread input, as uWSGI does.
func (ts *testServer) exchange(tb testing.TB, req []byte, halfClose bool) []byte {
	tb.Helper()
	c := ts.dial(tb)
	defer c.Close()
	if _, err := c.Write(req); err != nil && !isReset(err) {
		tb.Fatalf("write: %v", err)
	}
	if halfClose {
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil && !isReset(err) && !errors.Is(err, syscall.ENOTCONN) {
			tb.Fatalf("CloseWrite: %v", err)
		}
	}
	got, err := readUntilClose(c)
	if err != nil {
		tb.Fatalf("reading the response (got %d bytes so far): %v", len(got), err)
	}
	return got
}

// readUntilClose reads until EOF or a reset.
func readUntilClose(c net.Conn) ([]byte, error) {
	got, err := io.ReadAll(c)
	if err != nil && isReset(err) {
		err = nil
	}
	return got, err
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func mustWrite(tb testing.TB, c net.Conn, b []byte) {
	tb.Helper()
	if _, err := c.Write(b); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

func mustRead(tb testing.TB, c net.Conn, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if k, err := io.ReadFull(c, b); err != nil {
		tb.Fatalf("read %d bytes: got % x, err %v", n, b[:k], err)
	}
	return b
}

// expectClosed reads until the server closes and fails if any byte comes.
func expectClosed(tb testing.TB, c net.Conn) {
	tb.Helper()
	got, err := readUntilClose(c)
	if err != nil {
		tb.Fatalf("waiting for the server to close: %v (got % x)", err, got)
	}
	if len(got) != 0 {
		tb.Fatalf("got % x before the close, want nothing", got)
	}
}

// readFrame reads one framed packet: header and payload.
func readFrame(tb testing.TB, c net.Conn) (uwsgi.Header, []byte) {
	tb.Helper()
	h, err := uwsgi.ReadHeader(c)
	if err != nil {
		tb.Fatalf("reading a header: %v", err)
	}
	return h, mustRead(tb, c, int(h.Size))
}

// ping checks that c still answers a ping with a pong.
func ping(tb testing.TB, c net.Conn) {
	tb.Helper()
	mustWrite(tb, c, pingReq)
	if got := mustRead(tb, c, len(pongResp)); !bytes.Equal(got, pongResp) {
		tb.Fatalf("pong = % x, want % x", got, pongResp)
	}
}

func rpcReq(tb testing.TB, m2 uint8, fn string, args ...string) []byte {
	tb.Helper()
	b, err := uwsgi.AppendRPCRequest(nil, m2, fn, args...)
	if err != nil {
		tb.Fatalf("AppendRPCRequest(%q): %v", fn, err)
	}
	return b
}

func cacheReq(tb testing.TB, req uwsgi.CacheRequest, value []byte) []byte {
	tb.Helper()
	b, err := uwsgi.AppendCacheRequest(nil, req, value)
	if err != nil {
		tb.Fatalf("AppendCacheRequest(%+v): %v", req, err)
	}
	return b
}

// framed returns p with a [m1, len, m2] header.
func framed(m1 uwsgi.Modifier, m2 uint8, p []byte) []byte {
	b, err := uwsgi.AppendPacket(nil, m1, m2, p)
	if err != nil {
		panic(err)
	}
	return b
}

// errorFrame returns the extension's error frame.
func errorFrame(code uwsgi.Code, msg string) []byte {
	return uwsgi.AppendError(nil, code, msg)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// show formats bytes for messages: quoted when short, else a summary.
func show(b []byte) string {
	if len(b) <= 200 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%d bytes starting %q", len(b), b[:64])
}

// containsFold is strings.Contains on the message of an error frame.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
