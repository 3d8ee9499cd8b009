package tests

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/host"
	"github.com/scripthost/scripthost/js"
	"github.com/scripthost/scripthost/lua"
)

// BenchmarkEvalRoundTrip measures raw eval (modifier1 22) per language:
// the client's request over a unix socket, a fresh sandboxed interpreter,
// the code, the framed answer. `make bench` reports it beside the
// request and RPC figures.
func BenchmarkEvalRoundTrip(b *testing.B) {
	state, err := api.NewState(api.StateConfig{})
	if err != nil {
		b.Fatal(err)
	}
	srv := host.NewServer(state)
	srv.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) // every eval logs a line
	err = srv.EnableEval(host.EvalConfig{Evaluators: map[uwsgi.Modifier]api.Evaluator{
		uwsgi.ModLua: lua.New(lua.Options{}),
		uwsgi.ModV8:  js.New(js.Options{}),
		uwsgi.ModGo:  gointerp.New(gointerp.Options{}),
	}})
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "eval.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeEval(l) }()
	b.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, host.ErrServerClosed) {
			b.Errorf("ServeEval = %v", err)
		}
	})
	c := uwsgi.NewClient(sock)
	b.Cleanup(func() { c.Close() })
	for _, lang := range []struct {
		name string
		mod  uwsgi.Modifier
		code string
	}{
		{"lua", uwsgi.ModLua, "return 1 + 1"},
		{"js", uwsgi.ModV8, "1 + 1"},
		{"go", uwsgi.ModGo, "1 + 1"},
	} {
		b.Run(lang.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				res, _, err := c.Eval(ctx, lang.mod, lang.code, nil)
				if err != nil || res != "2" {
					b.Fatalf("Eval(%s) = %q, %v", lang.code, res, err)
				}
			}
		})
	}
}
