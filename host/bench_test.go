package host_test

// Server benchmarks over loopback TCP. Allocations are the whole
// process's: the server's per request plus the raw client's (near zero).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// dialExt opens an extended connection without testing.TB, for
// RunParallel bodies.
func dialExt(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(uwsgi.AppendHello(nil)); err != nil {
		c.Close()
		return nil, err
	}
	want := uwsgi.AppendHelloReply(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		c.Close()
		return nil, fmt.Errorf("hello reply % x, %v", got, err)
	}
	return c, nil
}

// roundTrip writes req on c and reads len(resp) bytes into resp.
func roundTrip(c net.Conn, req, resp []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	_, err := io.ReadFull(c, resp)
	return err
}

// noDeadline lifts the test deadline: a benchmark may run longer.
var noDeadline time.Time

var helloReply = framed(uwsgi.ModRPC, 0, []byte("Hello World"))

// One new TCP connection per call, as uWSGI's client and nginx do.
func BenchmarkRPCHelloOneShot(b *testing.B) {
	ts := startServer(b, "tcp", host.Limits{}, nil)
	req, resp := rpcReq(b, 0, "hello"), make([]byte, len(helloReply))
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := roundTrip(c, req, resp); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	if !bytes.Equal(resp, helloReply) {
		b.Fatalf("reply % x, want % x", resp, helloReply)
	}
}

// One extended connection, calls one after the other.
func BenchmarkRPCHelloKeepAlive(b *testing.B) {
	ts := startServer(b, "tcp", host.Limits{}, nil)
	c := ts.dialExtended(b)
	c.SetDeadline(noDeadline)
	req, resp := rpcReq(b, 0, "hello"), make([]byte, len(helloReply))
	b.ReportAllocs()
	for b.Loop() {
		if err := roundTrip(c, req, resp); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(resp, helloReply) {
		b.Fatalf("reply % x, want % x", resp, helloReply)
	}
}

// The same through the Go client's pool (api/uwsgi.Client).
func BenchmarkRPCHelloClient(b *testing.B) {
	ts := startServer(b, "tcp", host.Limits{}, nil)
	cl := uwsgi.NewClient(ts.addr)
	defer cl.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := cl.Call(ctx, "hello")
		if err != nil || string(res) != "Hello World" {
			b.Fatalf("Call = %q, %v", res, err)
		}
	}
}

// One extended connection per goroutine.
func BenchmarkRPCHelloParallel(b *testing.B) {
	ts := startServer(b, "tcp", host.Limits{}, nil)
	req := rpcReq(b, 0, "hello")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dialExt(ts.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		resp := make([]byte, len(helloReply))
		calls := 0
		for pb.Next() {
			if err := roundTrip(c, req, resp); err != nil {
				b.Error(err)
				return
			}
			calls++
		}
		if calls > 0 && !bytes.Equal(resp, helloReply) {
			b.Errorf("reply % x, want % x", resp, helloReply)
		}
	})
}

// A 1 MiB result (the modifier2 5 framing) on a kept connection.
func BenchmarkRPCBig1MiB(b *testing.B) {
	const size = 1 << 20
	ts := startServer(b, "tcp", host.Limits{}, nil)
	c := ts.dialExtended(b)
	c.SetDeadline(noDeadline)
	req := rpcReq(b, 0, "big", fmt.Sprint(size))
	resp := make([]byte, len(uwsgi.AppendRPCHeader(nil, size))+size)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := roundTrip(c, req, resp); err != nil {
			b.Fatal(err)
		}
	}
	want := append(uwsgi.AppendRPCHeader(nil, size), bigPattern[:size]...)
	if !bytes.Equal(resp, want) {
		b.Fatalf("reply of %d bytes differs from the expected one", len(resp))
	}
}

// Ping on a kept plain connection.
func BenchmarkPing(b *testing.B) {
	ts := startServer(b, "tcp", host.Limits{}, nil)
	c := ts.dial(b)
	c.SetDeadline(noDeadline)
	resp := make([]byte, len(pongResp))
	b.ReportAllocs()
	for b.Loop() {
		if err := roundTrip(c, pingReq, resp); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(resp, pongResp) {
		b.Fatalf("pong % x, want % x", resp, pongResp)
	}
}

// Cache magic get of a 64-byte value on a kept connection.
func BenchmarkCacheMagicGet(b *testing.B) {
	ts := startServer(b, "tcp", host.Limits{}, nil)
	value := bytes.Repeat([]byte("v"), 64)
	if err := ts.state.Caches.Default().Update(context.Background(), []byte("bk"), value, 0); err != nil {
		b.Fatal(err)
	}
	c := ts.dialExtended(b)
	c.SetDeadline(noDeadline)
	req := cacheReq(b, uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdGet, Key: []byte("bk")}, nil)
	want := uwsgi.AppendCacheReply(nil, true, value, 0)
	resp := make([]byte, len(want))
	b.ReportAllocs()
	for b.Loop() {
		if err := roundTrip(c, req, resp); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(resp, want) {
		b.Fatalf("reply % x, want % x", resp, want)
	}
}
