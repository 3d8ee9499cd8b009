package apitest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

// containmentScripts are, by engine name, an app that makes a WebSocket
// handshake and echoes until the socket closes, and an RPC function "t"
// answering "ok".
var containmentScripts = map[string]string{
	"lua": `
uwsgi.register_rpc("t", function() return "ok" end)
return function(env)
  uwsgi.websocket_handshake()
  while true do uwsgi.websocket_send(uwsgi.websocket_recv()) end
end`,
	"js": `
uwsgi.register_rpc("t", () => "ok");
module.exports = function (req) {
  uwsgi.websocket_handshake();
  for (;;) uwsgi.websocket_send(uwsgi.websocket_recv());
};`,
	"go": `package main

import (
	"net/http"

	"scripthost/uwsgi"
)

func init() { uwsgi.RegisterRpc("t", func() string { return "ok" }) }

func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WebsocketHandshake()
	for {
		msg, err := uwsgi.WebsocketRecv()
		if err != nil {
			panic(err)
		}
		uwsgi.WebsocketSend(msg)
	}
}`,
}

// RunContainment checks that WebSockets do not starve the other calls
// of an engine whose pools newEngine sizes: with one interpreter per
// pool, while a WebSocket call holds it, RPC calls and a second
// WebSocket are still served, and once the sockets close the pool is as
// it was.
func RunContainment(t *testing.T, newEngine func(poolSize int) api.Engine) {
	engine := newEngine(1)
	src, ok := containmentScripts[engine.Name()]
	if !ok {
		t.Skipf("no containment script for engine %s", engine.Name())
	}
	ctx := t.Context()
	log := &LogRecorder{}
	state, err := api.NewState(api.StateConfig{Hostname: "testhost", Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	dir := t.TempDir()
	env := api.NewRegistrations(state, dir)
	defer env.Close(context.Background())
	file := "case" + engine.Extensions()[0]
	if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	prog, err := engine.Load(ctx, env, []api.File{{Name: file, Path: filepath.Join(dir, file), Source: []byte(src)}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	defer prog.Close()
	if err := env.Commit(nil); err != nil {
		t.Fatal(err)
	}
	app := prog.Apps()["case"]
	if app == nil {
		t.Fatal("the script defined no app")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", log)
		}
	})

	call := func(what string) {
		t.Helper()
		cctx, _, done := api.NewScope(ctx, nil, 3*time.Second)
		defer done()
		res, err := state.RPC.Call(cctx, "t")
		if err != nil || string(res) != "ok" {
			t.Fatalf("%s: t() = %q, %v; want \"ok\"", what, res, err)
		}
	}
	type socket struct {
		u    *Upgrader
		stop context.CancelFunc
		err  chan error
	}
	open := func() socket {
		sctx, stop := context.WithCancel(ctx)
		u := NewUpgrader(WebSocket{Messages: []Message{Text("ping")}})
		s := socket{u: u, stop: stop, err: make(chan error, 1)}
		go func() {
			cctx, _, done := api.NewScope(sctx, nil, 0)
			cctx = api.WithUpgrader(cctx, u)
			req := &api.Request{Modifier1: engine.Modifier(), Vars: RequestVars(), Body: strings.NewReader("")}
			err := app.ServeRequest(cctx, discardResponse{}, req)
			done() // the scope's end gives the long call back: before the test looks
			s.err <- err
		}()
		select {
		case <-u.Upgraded():
		case err := <-s.err:
			t.Fatalf("the WebSocket call ended before its handshake: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no handshake within 5 s")
		}
		return s
	}

	call("before any WebSocket")
	first := open()
	call("with a WebSocket open")
	second := open()
	call("with two WebSockets open")
	if n := state.LongCalls.Open(); n != 2 {
		t.Errorf("%d long calls open, want 2", n)
	}
	for _, s := range []socket{first, second} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(s.u.Transcript(), `text:"ping"`) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !strings.Contains(s.u.Transcript(), `text:"ping"`) {
			t.Errorf("transcript %q: the message was not echoed", s.u.Transcript())
		}
		s.stop()
		<-s.err
	}
	if n := state.LongCalls.Open(); n != 0 {
		t.Errorf("%d long calls open after the sockets closed, want 0", n)
	}
	call("after the WebSockets closed")
}

// discardResponse is an api.ResponseWriter that keeps nothing.
type discardResponse struct{}

func (discardResponse) WriteHeader(string, []api.Header) error { return nil }
func (discardResponse) Write(p []byte) (int, error)            { return len(p), nil }
func (discardResponse) Flush() error                           { return nil }
func (discardResponse) HeaderSent() bool                       { return false }
