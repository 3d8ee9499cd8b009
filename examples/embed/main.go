// Command embed shows a Go program serving its own RPC functions over the
// uwsgi protocol with scripthost's host package: any uwsgi client (uWSGI's
// uwsgi.rpc, nginx's uwsgi_modifier1 173, scripthost's Go client) can call
// them.
//
// The functions follow the contract of uWSGI's reference rpc.lua, so the
// comparison benchmark can run this program against uWSGI:
//
//	hello()        "Hello World"
//	echo(a, b...)  the arguments joined with a space
//	add(a, b)      a + b, formatted like Lua 5.1's tostring (C's %.14g)
//	big(n)         n bytes of "x"
//
//	go run ./examples/embed --socket 127.0.0.1:3031
//	go run ./cmd/scripthost rpc 127.0.0.1:3031 add 0.1 0.2   # 0.3
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/host"
)

func main() {
	socket := flag.String("socket", "127.0.0.1:3031", "uwsgi listener: host:port or unix socket path")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*socket, log); err != nil {
		log.Error("embed stopped", "err", err)
		os.Exit(1)
	}
}

func run(socket string, log *slog.Logger) error {
	state, err := api.NewState(api.StateConfig{Logger: log})
	if err != nil {
		return err
	}
	if err := register(state.RPC); err != nil {
		return err
	}
	srv := host.NewServer(state)
	srv.Logger = log
	l, err := host.Listen(socket)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("serving Go RPC functions", "addr", l.Addr().String(), "functions", state.RPC.Names())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, host.ErrServerClosed) {
		return err
	}
	return nil
}

func register(reg *api.Registry) error {
	funcs := map[string]api.RPCFunc{
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
	for name, fn := range funcs {
		if err := reg.Register(name, fn); err != nil {
			return err
		}
	}
	return nil
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
