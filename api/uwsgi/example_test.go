package uwsgi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// Call sends an RPC (modifier1 173) and returns the function's result.
func ExampleClient_Call() {
	srv := startServer(`uwsgi.register_rpc("add", function(a, b) return tostring(a + b) end)`)
	defer srv.stop()

	c := uwsgi.NewClient(srv.addr) // host:port or a unix socket path
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sum, err := c.Call(ctx, "add", []byte("2"), []byte("3"))
	fmt.Printf("%s %v\n", sum, err)
	_, err = c.Call(ctx, "missing")
	fmt.Println(errors.Is(err, uwsgi.ErrNoResult))
	// Output:
	// 5 <nil>
	// true
}

// The cache methods use a server's caches (modifier1 111): the same items
// its scripts see.
func ExampleClient_CacheGet() {
	srv := startServer(`uwsgi.register_rpc("motd", function() return uwsgi.cache_get("motd") end)`)
	defer srv.stop()

	c := uwsgi.NewClient(srv.addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CacheUpdate(ctx, "motd", []byte("hello from the cache"), uwsgi.Expires(time.Minute)); err != nil {
		fmt.Println(err)
		return
	}
	value, err := c.CacheGet(ctx, "motd")
	fmt.Printf("%s %v\n", value, err)
	motd, err := c.CallString(ctx, "motd")
	fmt.Println(motd, err)
	_, err = c.CacheGet(ctx, "nothing")
	fmt.Println(errors.Is(err, uwsgi.ErrNotFound))
	// Output:
	// hello from the cache <nil>
	// hello from the cache <nil>
	// true
}

// Eval runs code on a listener of a scripthost server that enabled raw
// code evaluation (scripthost serve --eval-socket), in the language that
// modifier2 names.
func ExampleClient_Eval() {
	srv := startServer(`uwsgi.register_rpc("hello", function(name) return "Hello, " .. name .. "!" end)`)
	defer srv.stop()

	c := uwsgi.NewClient(srv.evalAddr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	result, output, err := c.Eval(ctx, uwsgi.ModLua, `print("looking") return uwsgi.call("hello", "operator")`, nil)
	fmt.Printf("%q %q %v\n", result, output, err)
	result, _, err = c.Eval(ctx, uwsgi.ModV8, `[1, 2].map((n) => n * 21)`, nil)
	fmt.Println(result, err)
	// Output:
	// "Hello, operator!" "looking\n" <nil>
	// [21,42] <nil>
}

// server is a scripthost serving one Lua script on loopback listeners.
type server struct {
	addr     string // uwsgi
	evalAddr string // uwsgi with raw code evaluation
	stop     func()
}

func startServer(lua string) server {
	dir, err := os.MkdirTemp("", "scripts-")
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.lua"), []byte(lua), 0o644); err != nil {
		panic(err)
	}
	h, err := scripthost.New(scripthost.Config{Scripts: dir, Eval: &host.EvalConfig{},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	listen := func(serve func(net.Listener) error) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		go serve(l)
		return l.Addr().String()
	}
	return server{addr: listen(h.Serve), evalAddr: listen(h.ServeEval),
		stop: func() { h.Close(); os.RemoveAll(dir) }}
}
