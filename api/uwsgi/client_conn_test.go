package uwsgi

import (
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
	"syscall"
	"testing"
	"time"
)

// TestClientPooling counts connections: an extended server serves every
// call on one connection; a plain one needs one for the hello, then one
// per call.
func TestClientPooling(t *testing.T) {
	const calls = 5
	tests := []struct {
		network   string
		ext       bool
		wantDials int64
		wantMode  int32
	}{
		{"tcp", true, 1, modeExtended},
		{"unix", true, 1, modeExtended},
		{"tcp", false, calls + 1, modePlain},
		{"unix", false, calls + 1, modePlain},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/ext=%v", tt.network, tt.ext), func(t *testing.T) {
			s := newFakeServer(t, tt.network, tt.ext, newFakeBackend().serve)
			c := newTestClient(t, s)
			for i := range calls {
				got, err := c.CallString(testCtx(t), "hellolua", fmt.Sprint(i))
				if want := fmt.Sprint("args are ", i); err != nil || got != want {
					t.Fatalf("call %d = %q, %v; want %q", i, got, err, want)
				}
			}
			if got := s.dials.Load(); got != tt.wantDials {
				t.Errorf("%d connections, want %d", got, tt.wantDials)
			}
			if got := s.hellos.Load(); got != 1 {
				t.Errorf("%d hellos, want 1", got)
			}
			if got := c.mode.Load(); got != tt.wantMode {
				t.Errorf("mode %d, want %d", got, tt.wantMode)
			}
		})
	}
}

// TestClientPoolMixedCalls checks that errors which leave the connection
// in step (error frames, refusals) keep it pooled, and that calls on
// connections of their own never send the hello.
func TestClientPoolMixedCalls(t *testing.T) {
	b := newFakeBackend()
	s := newFakeServer(t, "tcp", true, b.serve)
	c := newTestClient(t, s)
	runOps(t, c, []clientOp{
		{name: "call", run: callOp("hello"), want: "Hello World"},
		{name: "unknown", run: callOp("nope"), wantErr: []error{ErrNotFound}},
		{name: "empty", run: callOp("empty"), want: ""},
		{name: "ping", run: pingOp, want: ""},
		{name: "signal refused", run: signalOp(99), wantErr: []error{ErrFailed}},
		{name: "signal remote error", run: signalOp(66), wantErr: []error{ErrRefused}},
		{name: "cache miss", run: cacheGetOp("x"), wantErr: []error{ErrNotFound}},
		{name: "cache set", run: cacheSetOp("x", "1")},
		{name: "cache set again", run: cacheSetOp("x", "1"), wantErr: []error{ErrExists}},
		{name: "call 1 MiB", run: callOp("big", "1048576"), want: string(fakeBig(1 << 20))},
		{name: "call again", run: callOp("hello"), want: "Hello World"},
	})
	if got := s.dials.Load(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
	runOps(t, c, []clientOp{
		{name: "raw", run: rawOp("hello"), want: "Hello World"},
		{name: "echo", run: echoOp("x"), want: "x"},
	})
	if got, want := s.dials.Load(), int64(3); got != want {
		t.Errorf("%d connections, want %d", got, want)
	}
	if got := s.hellos.Load(); got != 1 {
		t.Errorf("%d hellos, want 1", got)
	}
}

// closeMarkReply answers with a close mark and closes, without processing.
var closeMarkReply = fakeReply{Bytes: CloseMark.Append(nil), Close: true}

func TestClientCloseMarkRetry(t *testing.T) {
	b := newFakeBackend()
	// The second request of every connection crosses the server's close mark.
	s := newFakeServer(t, "tcp", true, func(r *fakeRequest) fakeReply {
		if r.Seq == 1 {
			return closeMarkReply
		}
		return b.serve(r)
	})
	c := newTestClient(t, s)
	for i := range 2 {
		if got, err := c.CallString(testCtx(t), "hello"); err != nil || got != "Hello World" {
			t.Fatalf("call %d = %q, %v", i, got, err)
		}
	}
	if got := s.dials.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
	if got := s.requests.Load(); got != 3 {
		t.Errorf("server got %d requests, want 3 (one refused with a close mark, then resent)", got)
	}
	if got := b.processed.Load(); got != 2 {
		t.Errorf("%d requests processed, want 2", got)
	}
}

func TestClientCloseMarkRetriesOnce(t *testing.T) {
	s := newFakeServer(t, "tcp", true, func(*fakeRequest) fakeReply { return closeMarkReply })
	c := newTestClient(t, s)
	_, err := c.Call(testCtx(t), "hello")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("error %v, want ErrUnavailable", err)
	}
	if got := s.requests.Load(); got != 2 {
		t.Errorf("server got %d requests, want 2", got)
	}
}

// TestClientNoRetryAfterSilence: a reused connection that closes without a
// byte may have run the request, so it is not sent again.
func TestClientNoRetryAfterSilence(t *testing.T) {
	b := newFakeBackend()
	s := newFakeServer(t, "tcp", true, func(r *fakeRequest) fakeReply {
		rep := b.serve(r)
		if r.Seq == 1 {
			return fakeReply{Close: true} // processed, then died
		}
		return rep
	})
	c := newTestClient(t, s)
	ctx := testCtx(t)
	if _, err := c.Call(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Call(ctx, "hello")
	if !errors.Is(err, ErrNoResult) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v, want ErrNoResult and io.ErrUnexpectedEOF", err)
	}
	if got := b.processed.Load(); got != 2 {
		t.Errorf("%d requests processed, want 2 (no retry)", got)
	}
	if got, err := c.CallString(ctx, "hello"); err != nil || got != "Hello World" {
		t.Errorf("call after = %q, %v", got, err)
	}
	if got := s.dials.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// TestClientIdleCheck: an idle connection the server has closed (with or
// without a close mark) or that has outlived IdleTimeout is not reused.
func TestClientIdleCheck(t *testing.T) {
	tests := []struct {
		name        string
		then        []byte // sent after the first reply, before the server closes
		idleTimeout time.Duration
	}{
		{"close mark", CloseMark.Append(nil), 0},
		{"silent close", []byte{}, 0},
		{"stray data", []byte("junk"), 0},
		{"idle timeout", nil, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend()
			s := newFakeServer(t, "tcp", true, func(r *fakeRequest) fakeReply {
				rep := b.serve(r)
				rep.Then = tt.then
				return rep
			})
			c := newTestClient(t, s)
			c.IdleTimeout = tt.idleTimeout
			ctx := testCtx(t)
			for i := range 3 {
				if got, err := c.CallString(ctx, "hello"); err != nil || got != "Hello World" {
					t.Fatalf("call %d = %q, %v", i, got, err)
				}
				if tt.then != nil {
					<-s.closed // the server is done with the connection
				}
			}
			if got := s.dials.Load(); got != 3 {
				t.Errorf("%d connections, want 3", got)
			}
			if got := s.requests.Load(); got != 3 {
				t.Errorf("server got %d requests, want 3 (none sent on a dead connection)", got)
			}
		})
	}
}

func TestClientMaxIdle(t *testing.T) {
	s := newFakeServer(t, "tcp", true, newFakeBackend().serve)
	c := newTestClient(t, s)
	c.MaxIdle = -1
	for range 3 {
		if _, err := c.Call(testCtx(t), "hello"); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.dials.Load(); got != 3 {
		t.Errorf("%d connections without pooling, want 3", got)
	}
}

func TestClientConcurrent(t *testing.T) {
	const workers, calls = 50, 20
	for _, ext := range []bool{true, false} {
		t.Run(fmt.Sprintf("ext=%v", ext), func(t *testing.T) {
			s := newFakeServer(t, "tcp", ext, newFakeBackend().serve)
			c := newTestClient(t, s)
			c.MaxIdle = workers
			var wg sync.WaitGroup
			var failures atomic.Int64
			for w := range workers {
				wg.Go(func() {
					for i := range calls {
						want := fmt.Sprintf("args are %d %d", w, i)
						got, err := c.CallString(context.Background(), "hellolua", fmt.Sprint(w), fmt.Sprint(i))
						if err != nil || got != want {
							if failures.Add(1) < 5 {
								t.Errorf("worker %d call %d = %q, %v; want %q", w, i, got, err, want)
							}
						}
					}
				})
			}
			wg.Wait()
			if got := s.requests.Load(); got != workers*calls {
				t.Errorf("server got %d requests, want %d", got, workers*calls)
			}
			if ext {
				// No more connections than calls in flight at once.
				if got := s.dials.Load(); got > workers {
					t.Errorf("%d connections for %d workers", got, workers)
				}
			}
		})
	}
}

// TestClientTimeouts: every wait ends at the context's deadline, on its
// cancellation, or after Timeout, with a server that never answers.
func TestClientTimeouts(t *testing.T) {
	stallAll := func(*fakeRequest) fakeReply { return fakeReply{Stall: true} }
	stallMid := func(*fakeRequest) fakeReply {
		return fakeReply{Bytes: []byte{byte(ModRPC), 10, 0, 0, 'a', 'b'}, Stall: true}
	}
	stallBody := func(*fakeRequest) fakeReply {
		return fakeReply{Bytes: []byte("HTTP/1.0 200 OK\r\n\r\npartial"), Stall: true}
	}
	type call func(ctx context.Context, c *Client) error
	callHello := func(ctx context.Context, c *Client) error { _, err := c.Call(ctx, "hello"); return err }
	calls := map[string]call{
		"call":   callHello,
		"raw":    func(ctx context.Context, c *Client) error { _, err := c.CallRaw(ctx, "hello"); return err },
		"ping":   func(ctx context.Context, c *Client) error { _, err := c.Ping(ctx); return err },
		"signal": func(ctx context.Context, c *Client) error { return c.Signal(ctx, 1) },
		"echo":   func(ctx context.Context, c *Client) error { _, err := c.Echo(ctx, []byte("x")); return err },
		"cache":  func(ctx context.Context, c *Client) error { _, err := c.CacheGet(ctx, "k"); return err },
		"do":     func(ctx context.Context, c *Client) error { return doAndRead(ctx, c) },
	}
	tests := []struct {
		name    string
		ext     bool
		handler func(*fakeRequest) fakeReply
		calls   []string
		how     string // "deadline", "cancel", "timeout"
		want    []error
	}{
		{"deadline ext", true, stallAll, []string{"call", "ping", "signal", "cache", "raw", "echo", "do"}, "deadline",
			[]error{ErrTimeout, context.DeadlineExceeded}},
		{"deadline plain", false, stallAll, []string{"call", "cache"}, "deadline",
			[]error{ErrTimeout, context.DeadlineExceeded}},
		{"deadline mid-read", true, stallMid, []string{"call"}, "deadline",
			[]error{ErrTimeout, context.DeadlineExceeded}},
		{"deadline in body", false, stallBody, []string{"do"}, "deadline",
			[]error{ErrTimeout, context.DeadlineExceeded}},
		{"cancel ext", true, stallAll, []string{"call", "ping", "cache", "raw", "echo", "do"}, "cancel",
			[]error{context.Canceled}},
		{"cancel plain", false, stallAll, []string{"call", "signal"}, "cancel", []error{context.Canceled}},
		{"cancel mid-read", true, stallMid, []string{"call"}, "cancel", []error{context.Canceled}},
		{"cancel in body", false, stallBody, []string{"do"}, "cancel", []error{context.Canceled}},
		{"timeout ext", true, stallAll, []string{"call", "raw", "do"}, "timeout",
			[]error{ErrTimeout, os.ErrDeadlineExceeded}},
		{"timeout mid-read", true, stallMid, []string{"call"}, "timeout",
			[]error{ErrTimeout, os.ErrDeadlineExceeded}},
	}
	for _, tt := range tests {
		for _, name := range tt.calls {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				got := make(chan struct{}, 1)
				s := newFakeServer(t, "tcp", tt.ext, func(r *fakeRequest) fakeReply {
					got <- struct{}{}
					return tt.handler(r)
				})
				c := newTestClient(t, s)
				c.Timeout = time.Minute
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				switch tt.how {
				case "deadline":
					ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					defer cancel()
				case "cancel":
					go func() {
						<-got
						cancel()
					}()
				case "timeout":
					c.Timeout = 50 * time.Millisecond
				}
				var err error
				within(t, 30*time.Second, func() { err = calls[name](ctx, c) })
				for _, w := range tt.want {
					if !errors.Is(err, w) {
						t.Errorf("error %v does not match %v", err, w)
					}
				}
			})
		}
	}
}

func doAndRead(ctx context.Context, c *Client) error {
	req := newHTTPRequest("GET", "http://localhost/", "")
	resp, err := c.Do(ctx, ModLua, 0, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

// TestClientCanceledBefore: a context that is already done fails the call
// before any connection is made.
func TestClientCanceledBefore(t *testing.T) {
	s := newFakeServer(t, "tcp", true, newFakeBackend().serve)
	c := newTestClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, "hello"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n := s.dials.Load(); n != 0 {
		t.Errorf("%d connections, want 0", n)
	}
	// A canceled call does not spoil the pool.
	if _, err := c.Call(testCtx(t), "hello"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, "hello"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if _, err := c.Call(testCtx(t), "hello"); err != nil {
		t.Fatal(err)
	}
	if n := s.dials.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestClientConnectErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	tests := []struct {
		addr string
		want []error
	}{
		{refused, []error{ErrConnect, syscall.ECONNREFUSED}},
		{filepath.Join(t.TempDir(), "missing.sock"), []error{ErrConnect, syscall.ENOENT}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c := NewClient(tt.addr)
			c.mode.Store(modePlain)
			ctx := testCtx(t)
			checks := map[string]error{}
			_, checks["call"] = c.Call(ctx, "hello")
			_, checks["raw"] = c.CallRaw(ctx, "hello")
			_, checks["ping"] = c.Ping(ctx)
			checks["cache"] = c.CacheSet(ctx, "k", []byte("v"))
			_, checks["do"] = c.Do(ctx, ModWSGI, 0, newHTTPRequest("GET", "http://x/", ""))
			for name, err := range checks {
				for _, w := range tt.want {
					if !errors.Is(err, w) {
						t.Errorf("%s: error %v does not match %v", name, err, w)
					}
				}
				var oe *net.OpError
				if !errors.As(err, &oe) {
					t.Errorf("%s: error %v does not hold a *net.OpError", name, err)
				}
			}
			if got := c.mode.Load(); got != modeUnknown {
				t.Errorf("mode %d after a dial failure, want unknown", got)
			}
		})
	}
}

func TestClientBadAddress(t *testing.T) {
	c := NewClient("localhost") // no port
	if _, err := c.Call(testCtx(t), "hello"); !errors.Is(err, ErrConnect) || !errors.Is(err, ErrAddr) {
		t.Errorf("Call to %q = %v, want ErrConnect and ErrAddr", c.Addr(), err)
	}
}

// TestClientServerReplaced: a Client that knew its server as extended
// notices a plain one at the same address, and the other way round after
// a failed dial.
func TestClientServerReplaced(t *testing.T) {
	b := newFakeBackend()
	s := newFakeServer(t, "tcp", true, b.serve)
	c := newTestClient(t, s)
	if _, err := c.Call(testCtx(t), "hello"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.ext.Store(false) // the hello is now answered as uWSGI does
	c2 := newTestClient(t, s)
	c2.mode.Store(modeExtended)
	if got, err := c2.CallString(testCtx(t), "hello"); err != nil || got != "Hello World" {
		t.Fatalf("call = %q, %v", got, err)
	}
	if got := c2.mode.Load(); got != modePlain {
		t.Errorf("mode %d, want plain", got)
	}
}

func TestClientProtocolErrors(t *testing.T) {
	_, httpReply := clientVector(t, "rpc_mod2_2_http_unknown")
	tests := []struct {
		name    string
		ext     bool
		reply   []byte
		call    func(ctx context.Context, c *Client) error
		want    error
		wantMsg string
	}{
		{"HTTP to call", false, httpReply, callErr("hello"), ErrProtocol, `"HTTP/1.0 404 Not Found"`},
		{"HTTP to call ext", true, httpReply, callErr("hello"), ErrProtocol, `"HTTP/1.0 404 Not Found"`},
		{"HTTP to ping", false, httpReply, func(ctx context.Context, c *Client) error {
			_, err := c.Ping(ctx)
			return err
		}, ErrProtocol, "HTTP/1.0 404"},
		{"HTTP to cache", true, httpReply, func(ctx context.Context, c *Client) error {
			_, err := c.CacheGet(ctx, "k")
			return err
		}, ErrProtocol, "HTTP/1.0 404"},
		{"ping reply to call", false, []byte{100, 0, 0, 1}, callErr("hello"), ErrProtocol, "ping(100)"},
		{"cache reply to call", true, []byte{111, 0, 0, 17}, callErr("hello"), ErrProtocol, ""},
		{"bad large block", true, []byte{173, 3, 0, 5, 'a', 'b', 'c'}, callErr("hello"), ErrProtocol, ""},
		{"truncated result", false, []byte{173, 10, 0, 0, 'a', 'b', 'c'}, callErr("hello"), io.ErrUnexpectedEOF, ""},
		{"truncated header", false, []byte{173, 10}, callErr("hello"), io.ErrUnexpectedEOF, ""},
		{"close mark on plain", false, CloseMark.Append(nil), callErr("hello"), ErrProtocol, "close"},
		{"signal reply to signal bad code", false, []byte{255, 0, 0, 7}, func(ctx context.Context, c *Client) error {
			return c.Signal(ctx, 1)
		}, ErrProtocol, ""},
		{"bad cache dict", true, []byte{111, 3, 0, 17, 1, 0, 'x'}, func(ctx context.Context, c *Client) error {
			_, err := c.CacheGet(ctx, "k")
			return err
		}, ErrProtocol, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, "tcp", tt.ext, func(*fakeRequest) fakeReply { return fakeReply{Bytes: tt.reply, Close: true} })
			err := tt.call(testCtx(t), newTestClient(t, s))
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %s", err, tt.wantMsg)
			}
		})
	}
}

func callErr(fn string) func(ctx context.Context, c *Client) error {
	return func(ctx context.Context, c *Client) error {
		_, err := c.Call(ctx, fn)
		return err
	}
}

func TestClientClosed(t *testing.T) {
	s := newFakeServer(t, "tcp", true, newFakeBackend().serve)
	c := newTestClient(t, s)
	if _, err := c.Call(testCtx(t), "hello"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-s.closed // the idle connection was closed
	if _, err := c.Call(testCtx(t), "hello"); !errors.Is(err, ErrClientClosed) {
		t.Errorf("error %v, want ErrClientClosed", err)
	}
}

func TestClientAbstractSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract unix sockets are Linux only")
	}
	name := fmt.Sprintf("@scripthost-client-test-%d", os.Getpid())
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Skip(err)
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := ReadPacket(nc, nil, MaxSize); err == nil {
				nc.Write([]byte{100, 0, 0, 1})
			}
			nc.Close()
		}
	}()
	defer ln.Close()
	c := NewClient(name)
	defer c.Close()
	if _, err := c.Ping(testCtx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func BenchmarkClientCallPooled(b *testing.B) {
	s := newFakeServer(b, "tcp", true, newFakeBackend().serve)
	c := newTestClient(b, s)
	ctx := context.Background()
	arg := []byte("x")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(ctx, "hellolua", arg); err != nil {
			b.Fatal(err)
		}
	}
}
