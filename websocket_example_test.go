package scripthost_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/apitest"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/js"
	"github.com/scripthost/scripthost/lua"
)

// TestWebSocketEchoExamples runs the echo apps of examples/websocket-echo
// against an in-memory WebSocket: Lua echoes every message as text, as
// uWSGI's Lua plugin does; JavaScript and Go keep binary messages binary.
func TestWebSocketEchoExamples(t *testing.T) {
	for _, tc := range []struct {
		engine api.Engine
		file   string
		want   string
	}{
		{lua.New(lua.Options{}), "echo.lua", `text:"hello" text:"\x00\xff"`},
		{js.New(js.Options{}), "jsecho.js", `text:"hello" binary:"\x00\xff"`},
		{gointerp.New(gointerp.Options{}), "goecho.go", `text:"hello" binary:"\x00\xff"`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("examples", "websocket-echo", tc.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			state, err := api.NewState(api.StateConfig{Hostname: "testhost", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer state.Close()
			env := api.NewRegistrations(state, filepath.Dir(path))
			defer env.Close(context.Background())
			prog, err := tc.engine.Load(t.Context(), env, []api.File{{Name: tc.file, Path: path, Source: src}})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			defer prog.Close()
			app := prog.Apps()[strings.TrimSuffix(tc.file, filepath.Ext(tc.file))]
			if app == nil {
				t.Fatalf("no app in %s", tc.file)
			}
			u := apitest.NewUpgrader(apitest.WebSocket{
				Messages: []apitest.Message{apitest.Text("hello"), apitest.Binary("\x00\xff")}, Close: true})
			ctx, _, done := api.NewScope(t.Context(), nil, 10*time.Second)
			ctx = api.WithUpgrader(ctx, u)
			req := &api.Request{Modifier1: tc.engine.Modifier(), Vars: apitest.RequestVars(), Body: strings.NewReader("")}
			if err := app.ServeRequest(ctx, discard{}, req); err != nil {
				t.Errorf("ServeRequest: %v", err)
			}
			done()
			if got, want := u.Transcript(), `upgrade("","","") `+tc.want; got != want {
				t.Errorf("transcript\ngot  %s\nwant %s", got, want)
			}
			if n := state.LongCalls.Open(); n != 0 {
				t.Errorf("%d WebSockets counted open after the call", n)
			}
		})
	}
}

type discard struct{}

func (discard) WriteHeader(string, []api.Header) error { return nil }
func (discard) Write(p []byte) (int, error)            { return len(p), nil }
func (discard) Flush() error                           { return nil }
func (discard) HeaderSent() bool                       { return false }
