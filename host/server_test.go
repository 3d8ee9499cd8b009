package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// gate is an RPC function "block" that reports each call on entered and
// returns "ok" once the test sends on release (one send per call), or
// ctx.Err() once the context is done (its cause reported on cancelled).
type gate struct {
	entered   chan gateEntry
	release   chan struct{}
	cancelled chan error
	released  atomic.Bool // set by the test before its first release
}

type gateEntry struct {
	id            string // the call's first argument
	afterReleased bool   // whether the test had started releasing
}

func registerGate(tb testing.TB, st *api.State) *gate {
	tb.Helper()
	g := &gate{entered: make(chan gateEntry, 16), release: make(chan struct{}), cancelled: make(chan error, 16)}
	err := st.RPC.Register("block", func(ctx context.Context, args [][]byte) ([]byte, error) {
		id := ""
		if len(args) > 0 {
			id = string(args[0])
		}
		g.entered <- gateEntry{id: id, afterReleased: g.released.Load()}
		select {
		case <-g.release:
			return []byte("ok"), nil
		case <-ctx.Done():
			g.cancelled <- context.Cause(ctx)
			return nil, ctx.Err()
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func (g *gate) waitEntered(tb testing.TB) gateEntry {
	tb.Helper()
	select {
	case e := <-g.entered:
		return e
	case <-time.After(ioTimeout):
		tb.Fatal("timed out waiting for a call to enter the gate")
	}
	panic("unreachable")
}

func (g *gate) releaseOne(tb testing.TB) {
	tb.Helper()
	g.released.Store(true)
	select {
	case g.release <- struct{}{}:
	case <-time.After(ioTimeout):
		tb.Fatal("timed out releasing a call")
	}
}

func TestServeReturnsErrServerClosed(t *testing.T) {
	stops := []struct {
		name string
		stop func(*host.Server) error
	}{
		{"Shutdown", func(s *host.Server) error { return s.Shutdown(context.Background()) }},
		{"Close", func(s *host.Server) error { return s.Close() }},
	}
	for _, stop := range stops {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(stop.name+"/"+network, func(t *testing.T) {
				srv := &host.Server{State: newState(t), Logger: quietLogger}
				l := listen(t, network)
				served := make(chan error, 1)
				go func() { served <- srv.Serve(l) }()
				c, err := net.Dial(network, l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(ioTimeout))
				ping(t, c)
				c.Close()
				if err := stop.stop(srv); err != nil {
					t.Fatalf("%s = %v, want nil", stop.name, err)
				}
				select {
				case err := <-served:
					if !errors.Is(err, host.ErrServerClosed) {
						t.Errorf("Serve = %v, want ErrServerClosed", err)
					}
				case <-time.After(ioTimeout):
					t.Fatal("Serve did not return")
				}
				if _, err := net.Dial(network, l.Addr().String()); err == nil {
					t.Error("the listener still accepts connections")
				}
			})
		}
	}
}

func TestServeAfterStop(t *testing.T) {
	stops := []struct {
		name string
		stop func(*host.Server) error
	}{
		{"Shutdown", func(s *host.Server) error { return s.Shutdown(context.Background()) }},
		{"Close", func(s *host.Server) error { return s.Close() }},
	}
	for _, stop := range stops {
		t.Run(stop.name, func(t *testing.T) {
			srv := &host.Server{State: newState(t), Logger: quietLogger}
			if err := stop.stop(srv); err != nil {
				t.Fatalf("%s before Serve = %v, want nil", stop.name, err)
			}
			l := listen(t, "tcp")
			if err := srv.Serve(l); !errors.Is(err, host.ErrServerClosed) {
				t.Errorf("Serve after %s = %v, want ErrServerClosed", stop.name, err)
			}
			if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept on the listener given to Serve = %v, want net.ErrClosed (Serve owns it)", err)
			}
		})
	}
}

// Serve and Shutdown called at the same moment: Serve must always return
// ErrServerClosed, and Shutdown must leave no goroutine behind, whichever
// runs first. Serve checks "closing" before it registers its listener, and
// starts the background goroutines after that, both outside the lock that
// Shutdown takes: a Shutdown that completes in between leaves Serve
// blocked in Accept on a listener nobody closes, or leaves the signal and
// sweeper goroutines running.
func TestServeShutdownRace(t *testing.T) {
	base := runtime.NumGoroutine()
	for i := range 500 {
		srv := &host.Server{State: newState(t), Logger: quietLogger}
		l := listen(t, "tcp")
		served := make(chan error, 1)
		start := make(chan struct{})
		go func() { <-start; served <- srv.Serve(l) }()
		shut := make(chan error, 1)
		go func() { <-start; shut <- srv.Shutdown(context.Background()) }()
		close(start)
		if err := <-shut; err != nil {
			t.Fatalf("iteration %d: Shutdown = %v", i, err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, host.ErrServerClosed) {
				t.Fatalf("iteration %d: Serve = %v, want ErrServerClosed", i, err)
			}
		case <-time.After(ioTimeout):
			srv.Close()
			t.Fatalf("iteration %d: Serve still blocks in Accept after Shutdown returned: "+
				"its listener was registered after Shutdown closed the listeners", i)
		}
		if n := runtime.NumGoroutine(); n > base+20 {
			t.Log("goroutines outlive Shutdown: Serve started the background ones (signals, timers, sweeper) after Shutdown stopped them?")
			waitGoroutines(t, base) // reports the leaked goroutines
		}
	}
	t.Log("checking that Shutdown left no background goroutine (signals, timers, sweeper) running")
	waitGoroutines(t, base)
}

// waitGoroutines polls until no more than n goroutines run.
func waitGoroutines(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(ioTimeout)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Fatalf("%d goroutines run, want at most %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListenAndServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "las.sock")
	srv := &host.Server{State: newState(t), Logger: quietLogger}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe("unix:" + path) }()
	var c net.Conn
	waitFor(t, "ListenAndServe to listen", func() bool {
		var err error
		c, err = net.Dial("unix", path)
		return err == nil
	})
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	ping(t, c)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; !errors.Is(err, host.ErrServerClosed) {
		t.Errorf("ListenAndServe = %v, want ErrServerClosed", err)
	}
	if err := srv.ListenAndServe("127.0.0.1:0"); !errors.Is(err, host.ErrServerClosed) {
		t.Errorf("ListenAndServe after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()

	// A socket file left by a dead process is replaced.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = host.Listen(stale)
	if err != nil {
		t.Fatalf("Listen(stale socket) = %v, want a listener", err)
	}
	defer l.Close()

	// A socket some server still answers on is not taken over.
	if l2, err := host.Listen("unix:" + stale); err == nil {
		l2.Close()
		t.Error("Listen on a socket in use succeeded, want an error")
	}

	// Anything else at the path is left alone: a mistyped address must
	// not delete a file.
	regular := filepath.Join(dir, "config.json")
	if err := os.WriteFile(regular, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l3, err := host.Listen(regular); err == nil {
		l3.Close()
		t.Errorf("Listen(%s) replaced a regular file with a socket, want an error", regular)
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "{}" {
		t.Errorf("the regular file after Listen: %q, %v, want it untouched", b, err)
	}

	tcp, err := host.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen(tcp) = %v", err)
	}
	if got := tcp.Addr().Network(); got != "tcp" {
		t.Errorf("Listen(127.0.0.1:0) network = %s, want tcp", got)
	}
	tcp.Close()
}

// Listen takes addresses by uwsgi.SplitAddr's rules, relative socket paths
// included.
func TestListenAddresses(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(dir, "app"))
	for _, tt := range []struct{ addr, file string }{
		{"../run/x.sock", "run/x.sock"},
		{"./y", "app/y"},
		{"z.sock", "app/z.sock"},
		{"unix:w", "app/w"},
	} {
		l, err := host.Listen(tt.addr)
		if err != nil {
			t.Errorf("Listen(%q) = %v", tt.addr, err)
			continue
		}
		if got := l.Addr().Network(); got != "unix" {
			t.Errorf("Listen(%q) network = %s, want unix", tt.addr, got)
		}
		if fi, err := os.Lstat(filepath.Join(dir, tt.file)); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Errorf("Listen(%q): %s is not a socket (%v)", tt.addr, tt.file, err)
		}
		l.Close()
	}
	if l, err := host.Listen("localhost"); err == nil {
		l.Close()
		t.Error("Listen(localhost) succeeded, want an error for the missing port")
	} else if !errors.Is(err, uwsgi.ErrAddr) {
		t.Errorf("Listen(localhost) = %v, want uwsgi.ErrAddr", err)
	}
}

func TestServeSeveralListeners(t *testing.T) {
	srv := &host.Server{State: newState(t), Logger: quietLogger}
	ls := []net.Listener{listen(t, "tcp"), listen(t, "unix"), listen(t, "tcp")}
	served := make(chan error, len(ls))
	for _, l := range ls {
		go func() { served <- srv.Serve(l) }()
	}
	for _, l := range ls {
		c, err := net.Dial(l.Addr().Network(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		ping(t, c)
		c.Close()
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	for range ls {
		select {
		case err := <-served:
			if !errors.Is(err, host.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Fatal("a Serve did not return after Shutdown")
		}
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	var g *gate
	ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) { g = registerGate(t, s.State) })
	c := ts.dial(t)
	mustWrite(t, c, rpcReq(t, uwsgi.RPCFramed, "block", "1"))
	g.waitEntered(t)

	type result struct {
		err           error
		afterReleased bool
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		err := ts.srv.Shutdown(ctx)
		done <- result{err, g.released.Load()}
	}()

	// Shutdown has begun once new connections are refused.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ts.addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case r := <-done:
		t.Fatalf("Shutdown returned %v while a call was in flight", r.err)
	default:
	}

	g.releaseOne(t)
	if got, want := mustRead(t, c, 6), framed(uwsgi.ModRPC, 0, []byte("ok")); !bytes.Equal(got, want) {
		t.Errorf("response of the in-flight call = % x, want % x", got, want)
	}
	expectClosed(t, c)
	select {
	case r := <-done:
		if r.err != nil {
			t.Errorf("Shutdown = %v, want nil", r.err)
		}
		if !r.afterReleased {
			t.Error("Shutdown returned before the in-flight call was released")
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return after the call finished")
	}
}

func TestShutdownExpiredContextThenClose(t *testing.T) {
	var g *gate
	ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) { g = registerGate(t, s.State) })
	c := ts.dial(t)
	mustWrite(t, c, rpcReq(t, uwsgi.RPCFramed, "block", "1"))
	g.waitEntered(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown(cancelled ctx) with a call in flight = %v, want context.Canceled", err)
	}
	select {
	case err := <-g.cancelled:
		t.Fatalf("the call's context ended (%v) before Close", err)
	default:
	}

	if err := ts.srv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	select {
	case err := <-g.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the call's context.Cause after Close = %v, want context.Canceled", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Close did not cancel the call's context")
	}
	expectClosed(t, c)
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	ext := ts.dialExtended(t)
	ping(t, ext) // answered and kept open: idle

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with only idle connections = %v, want nil", err)
	}
	if got := mustRead(t, ext, 4); !bytes.Equal(got, closeMark) {
		t.Errorf("extended connection got % x at shutdown, want the close mark % x", got, closeMark)
	}
	expectClosed(t, ext)
}

func TestMaxConns(t *testing.T) {
	var g *gate
	ts := startServer(t, "tcp", host.Limits{MaxConns: 2}, func(s *host.Server) { g = registerGate(t, s.State) })
	conns := make([]net.Conn, 3)
	for i := range 2 {
		conns[i] = ts.dial(t)
		mustWrite(t, conns[i], rpcReq(t, uwsgi.RPCRaw, "block", fmt.Sprint(i+1)))
		g.waitEntered(t)
	}
	// The kernel completes the third handshake, but the server does not
	// take the connection while two are served.
	conns[2] = ts.dial(t)
	mustWrite(t, conns[2], rpcReq(t, uwsgi.RPCRaw, "block", "3"))

	g.releaseOne(t) // one of the first two answers and closes (raw mode)
	e := g.waitEntered(t)
	if e.id != "3" || !e.afterReleased {
		t.Fatalf("entered %+v, want call 3, entered only after a slot was freed", e)
	}
	g.releaseOne(t)
	g.releaseOne(t)
	for i, c := range conns {
		got, err := readUntilClose(c)
		if err != nil || string(got) != "ok" {
			t.Errorf("connection %d got %q, %v, want \"ok\" then the close", i+1, got, err)
		}
	}
}

// Packets a plain connection pipelined are answered in order, then the
// connection closes; an extended one stays open.
func TestPipelined(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	// Two framed calls, a ping and a signal in one write.
	var req []byte
	req = append(req, rpcReq(t, uwsgi.RPCFramed, "hello")...)
	req = append(req, rpcReq(t, uwsgi.RPCFramed, "hellolua", "a", "b")...)
	req = append(req, pingReq...)
	req = append(req, 110, 0, 0, 17)
	wants := [][]byte{
		framed(uwsgi.ModRPC, 0, []byte("Hello World")),
		framed(uwsgi.ModRPC, 0, []byte("args are a b")),
		pongResp,
		ackOK,
	}
	for _, extended := range []bool{false, true} {
		t.Run(fmt.Sprintf("extended=%v", extended), func(t *testing.T) {
			c := ts.dial(t)
			if extended {
				c = ts.dialExtended(t)
			}
			mustWrite(t, c, req)
			for i, want := range wants {
				if got := mustRead(t, c, len(want)); !bytes.Equal(got, want) {
					t.Errorf("response %d = % x, want % x", i+1, got, want)
				}
			}
			if extended {
				ping(t, c)
			} else {
				expectClosed(t, c)
			}
		})
	}
}

// A plain connection is closed right after its answer, as uWSGI does, so
// that one-shot clients need not close first; nothing here half-closes
// the client side. Framed answers keep an extended connection; raw and
// HTTP answers end with the close on any, as their end is the EOF.
func TestCloseAfterAnswer(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	bridge, err := uwsgi.Vars{}.Add("PATH_INFO", "/hello").Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  []byte
		want []byte
		keep bool // an extended connection stays open
	}{
		{"rpc framed", rpcReq(t, uwsgi.RPCFramed, "hello"), framed(uwsgi.ModRPC, 0, []byte("Hello World")), true},
		{"ping", pingReq, pongResp, true},
		{"signal", []byte{110, 0, 0, 17}, ackOK, true},
		{"cache magic", cacheReq(t, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdExists, Key: []byte("nokey")}, nil), nil, false},
		{"cache magic clear", cacheReq(t, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdClear}, nil), uwsgi.AppendCacheReply(nil, false, nil, 0), true},
		{"rpc raw", rpcReq(t, uwsgi.RPCRaw, "hello"), []byte("Hello World"), false},
		{"rpc modifier2 4", rpcReq(t, 4, "hello"), []byte("Hello World"), false},
		{"rpc bridge", framed(uwsgi.ModRPC, uwsgi.RPCHTTP, bridge),
			[]byte("HTTP/1.0 200 OK\r\nContent-Length: 11\r\nContent-Type: application/binary\r\n\r\nHello World"), false},
		{"rpc unknown", rpcReq(t, uwsgi.RPCFramed, "nope"), nil, false},
		{"echo", framed(uwsgi.ModEcho, 0, []byte("abc")), []byte("abc"), false},
		{"close mark", closeMark, nil, false},
		{"cache simple get", framed(uwsgi.ModCache, uwsgi.CacheSimpleGet, []byte("nokey")), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial(t)
			mustWrite(t, c, tt.req)
			if got := mustRead(t, c, len(tt.want)); !bytes.Equal(got, tt.want) {
				t.Fatalf("response = % x, want % x", got, tt.want)
			}
			expectClosed(t, c)
			if !tt.keep {
				return
			}
			ext := ts.dialExtended(t)
			mustWrite(t, ext, tt.req)
			if got := mustRead(t, ext, len(tt.want)); !bytes.Equal(got, tt.want) {
				t.Fatalf("extended: response = % x, want % x", got, tt.want)
			}
			ping(t, ext)
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{IdleTimeout: 50 * time.Millisecond}, nil)
	t.Run("plain", func(t *testing.T) {
		c := ts.dial(t)
		ping(t, c)
		expectClosed(t, c)
	})
	t.Run("extended", func(t *testing.T) {
		c := ts.dialExtended(t)
		if got := mustRead(t, c, 4); !bytes.Equal(got, closeMark) {
			t.Errorf("got % x when idle, want the close mark % x", got, closeMark)
		}
		expectClosed(t, c)
	})
}

func TestHeaderTimeout(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{HeaderTimeout: 50 * time.Millisecond, IdleTimeout: time.Hour}, nil)
	warm := ts.dial(t)
	ping(t, warm)
	warm.Close()
	base := runtime.NumGoroutine()

	tests := []struct {
		name  string
		first []byte // a complete exchange first, answered with answer
		answer,
		partial []byte // then these bytes and silence
	}{
		{name: "silence"},
		{name: "partial header", partial: []byte{100, 0}},
		{name: "partial payload", partial: framed(uwsgi.ModEcho, 0, []byte("0123456789"))[:6]},
		{name: "partial rpc", partial: rpcReq(t, uwsgi.RPCFramed, "hellolua", "a", "b")[:9]},
		// On a kept connection the idle timeout (an hour) applies only
		// until the first byte of the next packet.
		{name: "partial header after a ping", first: pingReq, answer: pongResp, partial: []byte{173}},
		{name: "partial payload after a ping", first: pingReq, answer: pongResp, partial: rpcReq(t, 0, "hello")[:7]},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Go(func() {
			// The first packet itself has 50 ms: a client the machine
			// delays that long is closed before its answer, legitimately.
			// Then try again.
			for attempt := 1; ; attempt++ {
				answered, err := headerTimeoutCase(ts.addr, tt.first, tt.answer, tt.partial)
				if err != nil {
					t.Errorf("%s: %v", tt.name, err)
				}
				if answered || attempt == 5 {
					return
				}
			}
		})
	}
	wg.Wait()
	waitGoroutines(t, base)
}

// headerTimeoutCase sends first and expects answer (answered reports
// whether it came), then sends partial and expects the server to close
// without a byte.
func headerTimeoutCase(addr string, first, answer, partial []byte) (answered bool, err error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if first != nil {
		c.Write(first)
		got := make([]byte, len(answer))
		if n, err := io.ReadFull(c, got); err != nil {
			if n == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
				return false, nil // closed as too slow
			}
			return false, fmt.Errorf("answer = % x, %v, want % x", got[:n], err, answer)
		}
		if !bytes.Equal(got, answer) {
			return false, fmt.Errorf("answer = % x, want % x", got, answer)
		}
	}
	c.Write(partial)
	got, err := readUntilClose(c)
	if err != nil || len(got) != 0 {
		return true, fmt.Errorf("got % x, %v, want the server to close without a byte", got, err)
	}
	return true, nil
}

func TestBodyTimeout(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{BodyTimeout: 50 * time.Millisecond}, nil)
	set := cacheReq(t, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdSet, Key: []byte("bk")}, []byte("HELLO"))
	packet := set[:len(set)-5]
	tests := []struct {
		name     string
		extended bool
		sent     []byte
	}{
		{"no value", false, packet},
		{"partial value", false, set[:len(set)-2]},
		{"no value, extended", true, packet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c net.Conn
			if tt.extended {
				c = ts.dialExtended(t)
			} else {
				c = ts.dial(t)
			}
			mustWrite(t, c, tt.sent)
			expectClosed(t, c)
			if ok, _ := ts.state.Caches.Default().Exists(context.Background(), []byte("bk")); ok {
				t.Error("the item was stored without its value")
			}
		})
	}
}

func TestMaxPacket(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{MaxPacket: 100}, nil)
	payload := bytes.Repeat([]byte("p"), 101)
	tests := []struct {
		name string
		req  []byte
		want []byte
	}{
		{"echo at the limit", framed(uwsgi.ModEcho, 0, payload[:100]), payload[:100]},
		{"echo over the limit", framed(uwsgi.ModEcho, 0, payload), nil},
		{"rpc over the limit", rpcReq(t, uwsgi.RPCRaw, "argdump", string(payload[:90])), nil},
		{"rpc at the limit", rpcReq(t, uwsgi.RPCRaw, "argdump", string(payload[:89])), []byte("argc=1|89:" + string(payload[:89]))},
		{"header only, huge size", []byte{173, 0xff, 0xff, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ts.exchange(t, tt.req, true); !bytes.Equal(got, tt.want) {
				t.Errorf("got %s, want %s", show(got), show(tt.want))
			}
		})
	}
}

func TestEffectiveLimits(t *testing.T) {
	tests := []struct {
		name string
		in   host.Limits
		want host.Limits
	}{
		{"zero", host.Limits{}, host.DefaultLimits},
		{"clamped", host.Limits{MaxPacket: 1 << 20, MaxRPCArgs: 1000}, func() host.Limits {
			l := host.DefaultLimits
			l.MaxPacket, l.MaxRPCArgs = uwsgi.MaxSize, api.MaxRPCArgs
			return l
		}()},
		{"set", host.Limits{MaxPacket: 4096, MaxConns: 3, HeaderTimeout: time.Second}, func() host.Limits {
			l := host.DefaultLimits
			l.MaxPacket, l.MaxConns, l.HeaderTimeout = 4096, 3, time.Second
			return l
		}()},
	}
	for _, tt := range tests {
		srv := &host.Server{State: newState(t), Limits: tt.in}
		if got := srv.EffectiveLimits(); got != tt.want {
			t.Errorf("%s: EffectiveLimits() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if d := host.DefaultLimits; d.MaxPacket != 65535 || d.HeaderTimeout != 4*time.Second {
		t.Errorf("DefaultLimits = %+v, want MaxPacket 65535 and uWSGI's 4 s socket timeout", d)
	}
}

func TestHandlerPanic(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) {
		s.Handle(uwsgi.ModLua, host.HandlerFunc(func(context.Context, *host.PacketWriter, *host.Packet) host.Outcome {
			panic("handler bug")
		}))
		if err := s.State.RPC.Register("panics", func(context.Context, [][]byte) ([]byte, error) {
			panic("function bug")
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("handler", func(t *testing.T) {
		c := ts.dial(t)
		ping(t, c)
		mustWrite(t, c, framed(uwsgi.ModLua, 0, nil))
		expectClosed(t, c)
	})
	t.Run("rpc function", func(t *testing.T) {
		c := ts.dial(t)
		mustWrite(t, c, rpcReq(t, uwsgi.RPCFramed, "panics"))
		expectClosed(t, c)
	})
	t.Run("others still served", func(t *testing.T) {
		for range 3 {
			if got := ts.exchange(t, rpcReq(t, uwsgi.RPCRaw, "hello"), true); string(got) != "Hello World" {
				t.Fatalf("after the panics: got %q, want \"Hello World\"", got)
			}
		}
	})
}

func TestUnknownModifiersDropped(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	vars, _ := uwsgi.Vars{}.Add("REQUEST_METHOD", "GET").Append(nil)
	for _, m := range []uwsgi.Modifier{uwsgi.ModWSGI, uwsgi.ModLua, uwsgi.ModV8, uwsgi.ModGo,
		uwsgi.ModEval, uwsgi.ModHTTPResponse, uwsgi.ModExample, uwsgi.ModResponse, 1, 254} {
		t.Run(m.String(), func(t *testing.T) {
			// First on a kept connection: the pong, then the close.
			c := ts.dial(t)
			ping(t, c)
			mustWrite(t, c, framed(m, 0, vars))
			expectClosed(t, c)
			// Then as the first packet.
			if got := ts.exchange(t, framed(m, 0, vars), false); len(got) != 0 {
				t.Errorf("got %s, want nothing", show(got))
			}
		})
	}
}

func TestHandleReplacesBuiltin(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) {
		s.Handle(uwsgi.ModEcho, host.HandlerFunc(func(_ context.Context, w *host.PacketWriter, r *host.Packet) host.Outcome {
			w.WriteString("custom:")
			w.Write(r.Payload)
			return host.Close
		}))
		// A request handler reading its body: what an engine does.
		s.Handle(uwsgi.ModLua, host.HandlerFunc(func(_ context.Context, w *host.PacketWriter, r *host.Packet) host.Outcome {
			vars, err := r.Vars(nil)
			if err != nil {
				return host.Close
			}
			body := make([]byte, uwsgi.ParseContentLength([]byte(vars.Get("CONTENT_LENGTH"))))
			if _, err := io.ReadFull(r.Body(), body); err != nil {
				return host.Close
			}
			w.WriteString(host.StatusLine(vars.Get("SERVER_PROTOCOL"), 200))
			w.WriteString("Content-Type: text/plain\r\n\r\n")
			w.WriteString(vars.Get("REQUEST_METHOD") + " " + vars.Get("PATH_INFO") + " body=" + string(body))
			return host.Close
		}))
	})
	if got, want := ts.exchange(t, framed(uwsgi.ModEcho, 0, []byte("abc")), true), "custom:abc"; string(got) != want {
		t.Errorf("echo replaced: got %q, want %q", got, want)
	}
	req, err := uwsgi.Vars{}.Add("REQUEST_METHOD", "POST").Add("PATH_INFO", "/post").
		Add("CONTENT_LENGTH", "11").Add("SERVER_PROTOCOL", "HTTP/1.1").Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	packet := append(framed(uwsgi.ModLua, 0, req), "hello world"...)
	// Body in the same write, and body sent after the response started
	// to be awaited.
	for _, split := range []int{len(packet), len(packet) - 11, len(packet) - 3} {
		t.Run(fmt.Sprint("split", split), func(t *testing.T) {
			c := ts.dial(t)
			mustWrite(t, c, packet[:split])
			mustWrite(t, c, packet[split:])
			got, err := readUntilClose(c)
			want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nPOST /post body=hello world"
			if err != nil || string(got) != want {
				t.Errorf("got %q, %v, want %q", got, err, want)
			}
		})
	}
}

func TestSignalDelivered(t *testing.T) {
	delivered := make(chan uint8, 1)
	ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) {
		s.State.Signals.Register(17, "worker", func(_ context.Context, num uint8) error {
			delivered <- num
			return nil
		})
	})
	if got := ts.exchange(t, []byte{110, 0, 0, 17}, true); !bytes.Equal(got, ackOK) {
		t.Fatalf("ack = % x, want % x", got, ackOK)
	}
	select {
	case num := <-delivered:
		if num != 17 {
			t.Errorf("handler got signal %d, want 17", num)
		}
	case <-time.After(ioTimeout):
		t.Fatal("the signal handler did not run")
	}
}

func TestPingWarning(t *testing.T) {
	long := strings.Repeat("w", 100)
	tests := []struct {
		warning, want string
	}{
		{"", ""},
		{"disk almost full", "disk almost full"},
		{long, long[:80]},
	}
	for _, tt := range tests {
		ts := startServer(t, "tcp", host.Limits{}, func(s *host.Server) { s.Warning = tt.warning })
		got := ts.exchange(t, pingReq, true)
		if want := framed(uwsgi.ModPing, uwsgi.PingPong, []byte(tt.want)); !bytes.Equal(got, want) {
			t.Errorf("Warning %q: pong = %s, want %s", tt.warning, show(got), show(want))
		}
	}
}

func TestManyPipelinedPings(t *testing.T) {
	ts := startServer(t, "unix", host.Limits{}, nil)
	c := ts.dial(t)
	const n = 1000 // 4000 bytes: one write, one read of the server's
	mustWrite(t, c, bytes.Repeat(pingReq, n))
	if got, want := mustRead(t, c, n*len(pongResp)), bytes.Repeat(pongResp, n); !bytes.Equal(got, want) {
		t.Fatalf("%d pipelined pings: answers differ from %d pongs", n, n)
	}
	expectClosed(t, c)
}

func TestMaxVars(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{MaxVars: 2}, func(s *host.Server) {
		s.Handle(uwsgi.ModLua, host.HandlerFunc(func(_ context.Context, w *host.PacketWriter, r *host.Packet) host.Outcome {
			if _, err := r.Vars(nil); err != nil {
				return host.Close
			}
			w.WriteString("ok")
			return host.Close
		}))
	})
	vars := uwsgi.Vars{}.Add("PATH_INFO", "/hello").Add("A", "1")
	two, _ := vars.Append(nil)
	three, _ := vars.Add("B", "2").Append(nil)
	tests := []struct {
		name string
		req  []byte
		want string
	}{
		{"request, 2 vars", framed(uwsgi.ModLua, 0, two), "ok"},
		{"request, 3 vars", framed(uwsgi.ModLua, 0, three), ""},
		{"rpc bridge, 2 vars", framed(uwsgi.ModRPC, uwsgi.RPCHTTP, two),
			"HTTP/1.0 200 OK\r\nContent-Length: 11\r\nContent-Type: application/binary\r\n\r\nHello World"},
		{"rpc bridge, 3 vars", framed(uwsgi.ModRPC, uwsgi.RPCHTTP, three), ""},
	}
	for _, tt := range tests {
		if got := ts.exchange(t, tt.req, true); string(got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A client that stops reading a large response is dropped after the
// write timeout: the handler's write fails, the connection closes.
func TestWriteTimeout(t *testing.T) {
	const size = 8 << 20
	written := make(chan error, 1)
	ts := startServer(t, "unix", host.Limits{WriteTimeout: 50 * time.Millisecond}, func(s *host.Server) {
		s.Handle(uwsgi.ModExample, host.HandlerFunc(func(_ context.Context, w *host.PacketWriter, _ *host.Packet) host.Outcome {
			_, err := w.Write(make([]byte, size))
			if err == nil {
				err = w.Flush()
			}
			written <- err
			return host.Close
		}))
	})
	c := ts.dial(t)
	mustWrite(t, c, []byte{byte(uwsgi.ModExample), 0, 0, 0})
	select {
	case err := <-written:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("handler's write to a client that does not read = %v, want a deadline error", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("the write did not time out")
	}
	got, err := readUntilClose(c)
	if err != nil || len(got) >= size {
		t.Errorf("client read %d bytes, %v, want fewer than %d, then the close", len(got), err, size)
	}
}
