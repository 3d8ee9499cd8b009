package scripthost_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// A Go program serves a scripts directory: New loads it, Serve answers
// on a listener (ListenAndServe opens one), and the scripts are reloaded
// whenever the directory changes.
func Example() {
	scripts := writeScripts(map[string]string{
		"hello.lua": `uwsgi.register_rpc("hello", function(name) return "Hello, " .. name .. "!" end)`,
	})
	defer os.RemoveAll(scripts)

	h, err := scripthost.New(scripthost.Config{
		Scripts: scripts,
		Logger:  slog.New(slog.DiscardHandler), // quiet for the example
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Shutdown(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go h.Serve(l)

	// Any uwsgi client calls the script: nginx, uWSGI, or Go's.
	c := uwsgi.NewClient(l.Addr().String())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	greeting, err := c.CallString(ctx, "hello", "Gopher")
	fmt.Println(greeting, err)
	// Output: Hello, Gopher! <nil>
}

// Go functions are registered beside the scripts before they load: the
// scripts call them with uwsgi.call, clients with RPC, like any script's.
func ExampleConfig_functions() {
	scripts := writeScripts(map[string]string{
		"shout.js": `uwsgi.register_rpc('shout', (s) => uwsgi.call('upper', s) + '!');`,
	})
	defer os.RemoveAll(scripts)

	h, err := scripthost.New(scripthost.Config{
		Scripts: scripts,
		Functions: map[string]api.RPCFunc{
			"upper": func(_ context.Context, args [][]byte) ([]byte, error) {
				return bytes.ToUpper(bytes.Join(args, []byte(" "))), nil
			},
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()

	// In the process, without a listener; a client gets the same answer.
	shout, err := h.Call(context.Background(), "shout", []byte("hello"))
	fmt.Printf("%s %v\n", shout, err)
	// Output: HELLO! <nil>
}

// The Go program and its scripts share the caches.
func ExampleHost_Cache() {
	scripts := writeScripts(map[string]string{
		"motd.lua": `uwsgi.register_rpc("motd", function() return uwsgi.cache_get("motd") or "none" end)`,
	})
	defer os.RemoveAll(scripts)

	h, err := scripthost.New(scripthost.Config{Scripts: scripts, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	cache, err := h.Cache("") // the default cache
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := cache.Set(ctx, []byte("motd"), []byte("scripts and Go, one cache"), time.Hour); err != nil {
		fmt.Println(err)
		return
	}
	motd, err := h.Call(ctx, "motd")
	fmt.Printf("%s %v\n", motd, err)
	// Output: scripts and Go, one cache <nil>
}

// writeScripts writes a scripts directory of files (name -> source).
func writeScripts(files map[string]string) string {
	dir, err := os.MkdirTemp("", "scripts-")
	if err != nil {
		panic(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			panic(err)
		}
	}
	return dir
}
