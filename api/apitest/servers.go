package apitest

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// server accepts connections on l and hands each to handle in a goroutine
// of its own, until the test ends; then it closes the listener and every
// open connection and waits for the goroutines.
type server struct {
	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func serve(t testing.TB, l net.Listener, handle func(net.Conn)) {
	s := &server{l: l, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// startEcho starts an echo server on network "tcp" (127.0.0.1) or "unix"
// and returns its address.
func startEcho(t testing.TB, network string) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		// Not t.TempDir: socket paths are limited to about 100 bytes.
		dir, err := os.MkdirTemp("", "apitest")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		addr = filepath.Join(dir, "echo.sock")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("echo server: %v", err)
	}
	serve(t, l, func(c net.Conn) { io.Copy(c, c) })
	return l.Addr().String()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Node is a minimal uWSGI 2.0 node for remote calls: one request per
// connection, failures reported by closing without a byte, and the
// scripthost hello answered as the plain ping it is to uWSGI. It serves
//
//   - RPC (173, modifier2 0): "hello" returns "Hello World", "echo" its
//     arguments joined with spaces; any other name gets no result;
//   - signals (110): recorded, acknowledged with [255, 0, 1];
//   - the cache magic interface (111/17) over caches "default" and
//     "other".
type Node struct {
	Addr   string      // host:port the node listens on, on 127.0.0.1
	Caches *api.Caches // the node's caches "default" and "other", for checking what remote calls did

	mu      sync.Mutex
	signals []uint8
	calls   []string
}

// StartNode starts a Node on 127.0.0.1 for the duration of the test.
func StartNode(t testing.TB) *Node {
	t.Helper()
	caches, err := api.NewCaches(api.CacheConfig{Name: "default"}, api.CacheConfig{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	n := &Node{Addr: l.Addr().String(), Caches: caches}
	serve(t, l, n.serveConn)
	return n
}

// Signals returns the signals the node received.
func (n *Node) Signals() []uint8 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uint8(nil), n.signals...)
}

// Calls returns the RPC calls the node received, each as the function
// name and its arguments joined with spaces.
func (n *Node) Calls() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

// Cache returns one of the node's caches ("" is the default).
func (n *Node) Cache(name string) *api.Cache {
	c, err := n.Caches.Cache(name)
	if err != nil {
		panic(err)
	}
	return c
}

func (n *Node) serveConn(c net.Conn) {
	c.SetDeadline(time.Now().Add(callTimeout))
	p, err := uwsgi.ReadPacket(c, nil, uwsgi.MaxSize)
	if err != nil {
		return
	}
	var reply []byte
	switch p.Modifier1 {
	case uwsgi.ModPing:
		reply = uwsgi.Header{Modifier1: uwsgi.ModPing, Modifier2: uwsgi.PingPong}.Append(nil)
	case uwsgi.ModSignal:
		n.mu.Lock()
		n.signals = append(n.signals, p.Modifier2)
		n.mu.Unlock()
		reply = uwsgi.Header{Modifier1: uwsgi.ModResponse, Modifier2: uwsgi.ResponseOK}.Append(nil)
	case uwsgi.ModRPC:
		reply = n.rpc(p)
	case uwsgi.ModCache:
		reply = n.cache(c, p)
	}
	if reply != nil {
		c.Write(reply)
	}
}

func (n *Node) rpc(p uwsgi.Packet) []byte {
	if p.Modifier2 != uwsgi.RPCFramed {
		return nil
	}
	items, err := uwsgi.ParseArray(nil, p.Payload, 1+api.MaxRPCArgs)
	if err != nil || len(items) == 0 {
		return nil
	}
	args := make([]string, len(items)-1)
	for i, a := range items[1:] {
		args[i] = string(a)
	}
	name := string(items[0])
	n.mu.Lock()
	n.calls = append(n.calls, strings.Join(append([]string{name}, args...), " "))
	n.mu.Unlock()
	var res string
	switch name {
	case "hello":
		res = "Hello World"
	case "echo":
		res = strings.Join(args, " ")
	}
	if res == "" {
		return nil
	}
	return append(uwsgi.AppendRPCHeader(nil, len(res)), res...)
}

func (n *Node) cache(c net.Conn, p uwsgi.Packet) []byte {
	if p.Modifier2 != uwsgi.CacheMagic {
		return nil
	}
	req, err := uwsgi.ParseCacheRequest(p.Payload)
	if err != nil {
		return nil
	}
	cache, err := n.Caches.Cache(req.Cache)
	if err != nil {
		return nil
	}
	ctx := context.Background()
	switch req.Cmd {
	case uwsgi.CacheCmdGet:
		it, err := cache.Get(ctx, req.Key)
		if err != nil {
			return nil
		}
		var exp int64
		if !it.Expires.IsZero() {
			exp = it.Expires.Unix()
		}
		return uwsgi.AppendCacheReply(nil, true, it.Value, exp)
	case uwsgi.CacheCmdExists:
		if ok, _ := cache.Exists(ctx, req.Key); !ok {
			return nil
		}
	case uwsgi.CacheCmdDel:
		err = cache.Delete(ctx, req.Key)
	case uwsgi.CacheCmdClear:
		err = cache.Clear(ctx)
	case uwsgi.CacheCmdSet, uwsgi.CacheCmdUpdate:
		if req.Size == 0 {
			return nil
		}
		value := make([]byte, req.Size)
		if _, err := io.ReadFull(c, value); err != nil {
			return nil
		}
		ttl := time.Duration(req.Expires) * time.Second
		if req.Cmd == uwsgi.CacheCmdSet {
			err = cache.Set(ctx, req.Key, value, ttl)
		} else {
			err = cache.Update(ctx, req.Key, value, ttl)
		}
	}
	if err != nil {
		return nil
	}
	return uwsgi.AppendCacheReply(nil, false, nil, 0)
}
