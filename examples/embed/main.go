// Command embed shows a Go program that serves a scripts directory and Go
// functions of its own over the uwsgi protocol with scripthost.New: any
// uwsgi client (uWSGI's uwsgi.rpc, nginx's uwsgi_modifier1 173,
// scripthost's Go client) calls them, and the scripts call the Go
// functions with uwsgi.call.
//
// The Go functions follow the contract of uWSGI's reference rpc.lua, so the
// comparison benchmark can run this program against uWSGI:
//
//	hello()        "Hello World"
//	echo(a, b...)  the arguments joined with a space
//	add(a, b)      a + b, formatted like Lua 5.1's tostring (C's %.14g)
//	big(n)         n bytes of "x"
//
// The scripts are built into the program (the scripts directory next to
// this file); --scripts serves, and follows changes of, another directory:
//
//	sum(a, b...)   scripts/sums.lua: the arguments added with Go's add
//	shout(w...)    scripts/shout.js: Go's echo, upper-cased
//
//	go run ./examples/embed --socket 127.0.0.1:3031
//	go run ./cmd/scripthost rpc 127.0.0.1:3031 add 0.1 0.2   # 0.3
//	go run ./cmd/scripthost rpc 127.0.0.1:3031 sum 1 2 3     # 6
package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
)

//go:embed scripts
var builtIn embed.FS

func main() {
	socket := flag.String("socket", "127.0.0.1:3031", "uwsgi listener: host:port or unix socket path")
	scripts := flag.String("scripts", "", "scripts directory to serve and follow (default: the scripts built into the program)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*socket, *scripts, log); err != nil {
		log.Error("embed stopped", "err", err)
		os.Exit(1)
	}
}

func run(socket, scripts string, log *slog.Logger) error {
	if scripts == "" {
		dir, err := unpack(builtIn)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		scripts = dir
	}
	h, err := newHost(scripts, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- h.ListenAndServe(socket) }()
	log.Info("serving scripts and Go functions", "addr", socket, "functions", h.State().RPC.Names())
	select {
	case err := <-errc:
		h.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		h.Close()
	}
	if err := <-errc; !errors.Is(err, scripthost.ErrServerClosed) {
		return err
	}
	return nil
}

// newHost returns a host serving the scripts directory and the Go
// functions.
func newHost(scripts string, log *slog.Logger) (*scripthost.Host, error) {
	return scripthost.New(scripthost.Config{Scripts: scripts, Functions: functions(), Logger: log})
}

// unpack writes the built-in scripts to a new temporary directory.
func unpack(fsys embed.FS) (string, error) {
	sub, err := fs.Sub(fsys, "scripts")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "embed-scripts-")
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(dir, sub); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// functions returns the Go RPC functions.
func functions() map[string]api.RPCFunc {
	return map[string]api.RPCFunc{
		"hello": func(context.Context, [][]byte) ([]byte, error) {
			return []byte("Hello World"), nil
		},
		"echo": func(_ context.Context, args [][]byte) ([]byte, error) {
			return bytes.Join(args, []byte(" ")), nil
		},
		"add": func(_ context.Context, args [][]byte) ([]byte, error) {
			var sum float64
			for _, a := range args[:min(len(args), 2)] {
				sum += luaNumber(string(a))
			}
			return []byte(luaFormat(sum)), nil
		},
		"big": bigFunc(),
	}
}

// bigFunc returns big(n), keeping the last result so repeated calls
// measure transport, not allocation (like rpc.lua's memo).
func bigFunc() api.RPCFunc {
	var mu sync.Mutex
	lastN, last := -1, []byte(nil)
	return func(_ context.Context, args [][]byte) ([]byte, error) {
		n := 0
		if len(args) > 0 {
			n = int(max(luaNumber(string(args[0])), 0))
		}
		mu.Lock()
		defer mu.Unlock()
		if n != lastN {
			lastN, last = n, bytes.Repeat([]byte("x"), n)
		}
		return last, nil
	}
}

// luaNumber converts like Lua's tonumber, with 0 for non-numbers.
func luaNumber(s string) float64 {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return float64(v)
	}
	return 0
}

// luaFormat formats like Lua 5.1's tostring: C's "%.14g".
func luaFormat(f float64) string {
	return fmt.Sprintf("%.14g", f)
}
