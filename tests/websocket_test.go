package tests

// WebSockets with real third-party clients (Debian's python3-websockets,
// npm's ws) against the host's transport, directly on the HTTP front,
// through nginx's uwsgi_pass and through uWSGI's HTTP router. The app is
// a Go echo app served in this process: the transport is under test, not
// a script engine.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// wsEchoEngine loads every ".ws" file as an app (modifier1 6) that
// upgrades and echoes; the text "close CODE" closes with CODE.
type wsEchoEngine struct{}

func (wsEchoEngine) Name() string             { return "wsecho" }
func (wsEchoEngine) Extensions() []string     { return []string{".ws"} }
func (wsEchoEngine) Modifier() uwsgi.Modifier { return uwsgi.ModLua }
func (wsEchoEngine) Load(ctx context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	apps := map[string]api.App{}
	for _, f := range files {
		apps[strings.TrimSuffix(f.Name, ".ws")] = wsEchoApp{}
	}
	return wsEchoProgram(apps), nil
}

type wsEchoProgram map[string]api.App

func (p wsEchoProgram) Apps() map[string]api.App { return p }
func (p wsEchoProgram) Close() error             { return nil }

type wsEchoApp struct{}

func (wsEchoApp) ServeRequest(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	u, ok := api.UpgraderFrom(ctx)
	if !ok {
		w.WriteHeader("200 OK", nil)
		_, err := w.Write([]byte("plain"))
		return err
	}
	ws, err := u.Upgrade(ctx, "", "", "")
	if err != nil {
		return err
	}
	for {
		msg, bin, err := ws.Recv(ctx)
		if err != nil {
			var ce *api.WebSocketCloseError
			if errors.As(err, &ce) {
				return nil
			}
			return err
		}
		if code, ok := strings.CutPrefix(string(msg), "close "); ok && !bin {
			n, _ := strconv.Atoi(code)
			ws.Close(n, "asked to")
			continue
		}
		if err := ws.Send(ctx, msg, bin); err != nil {
			return nil
		}
	}
}

// startWSHost serves the echo app in this process on a uwsgi listener
// and an HTTP front, with the default limits (1 MiB messages).
func startWSHost(t *testing.T) (uwsgiAddr, httpAddr string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.ws"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	state, err := api.NewState(api.StateConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := &host.Server{State: state, Logger: log}
	rl := &host.Reloader{Server: srv, Dir: dir, Logger: log, Engines: []api.Engine{wsEchoEngine{}}}
	if err := rl.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ul, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.NewHTTPServer(&host.HTTPFront{Server: srv})
	go srv.Serve(ul)
	go hs.Serve(hl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
			srv.Close()
		}
		rl.Close(ctx)
	})
	return ul.Addr().String(), hl.Addr().String()
}

// wsFronts starts the fronts a client reaches the echo app through and
// returns their ws:// URLs by name.
func wsFronts(t *testing.T) map[string]string {
	t.Helper()
	uwsgiAddr, httpAddr := startWSHost(t)
	fronts := map[string]string{"http": "ws://" + httpAddr + "/ws"}
	n := startNginx(t, `
        location /ws {
            include uwsgi_params;
            uwsgi_pass `+uwsgiAddr+`;
            uwsgi_modifier1 6;
        }`)
	fronts["nginx"] = "ws://" + n.HTTPAddr + "/ws"
	router := freeAddr(t)
	startUWSGI(t, uwsgiOptions{
		Plugins: []string{"http"},
		Args:    []string{"--http", router, "--http-to", uwsgiAddr, "--http-websockets", "--http-modifier1", "6"},
	})
	waitDial(t, router)
	fronts["uwsgi-http"] = "ws://" + router + "/ws"
	return fronts
}

func waitDial(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(peerStartTimeout)
	for !canDial("tcp", addr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// pythonClient is the websockets (Debian python3-websockets) client:
// text, binary and 1 MiB echoes, a ping, a close code chosen by the
// server, a normal close by the client.
const pythonClient = `
import asyncio, sys, websockets

async def main(url):
    async with websockets.connect(url, max_size=4 << 20) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01\xfe")
        assert await ws.recv() == b"\x00\x01\xfe"
        big = b"x" * (1 << 20)
        await ws.send(big)
        assert await ws.recv() == big
        pong = await ws.ping(b"p")
        await asyncio.wait_for(pong, 5)
        await ws.send("close 4001")
        try:
            await ws.recv()
            raise SystemExit("no close")
        except websockets.ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 4001, e
    async with websockets.connect(url) as ws:
        await ws.send("bye")
        assert await ws.recv() == "bye"
    assert ws.close_code == 1000, ws.close_code
    try:
        async with websockets.connect(url) as ws:
            await ws.send(b"y" * ((1 << 20) + 1))
            await ws.recv()
        raise SystemExit("an oversize message was accepted")
    except websockets.ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 1009, e
    print("OK")

asyncio.run(asyncio.wait_for(main(sys.argv[1]), 20))
`

// nodeClient is the same exchange with npm's ws.
const nodeClient = `
const WebSocket = require(process.argv[2]);
const url = process.argv[3];
const fail = (m) => { console.error(m); process.exit(1); };
setTimeout(() => fail('timeout'), 20000);
function open(u) {
  const ws = new WebSocket(u, { maxPayload: 4 << 20 });
  const queue = []; const waiting = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiting.length) waiting.shift()(m); else queue.push(m);
  });
  ws.on('error', (e) => fail('error: ' + e.message));
  ws.next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r));
  ws.closed = new Promise((r) => ws.on('close', (code) => r(code)));
  return new Promise((r) => ws.on('open', () => r(ws)));
}
(async () => {
  let ws = await open(url);
  ws.send('hello');
  let m = await ws.next();
  if (m.isBinary || m.data.toString() !== 'hello') fail('text echo');
  ws.send(Buffer.from([0, 1, 254]));
  m = await ws.next();
  if (!m.isBinary || !m.data.equals(Buffer.from([0, 1, 254]))) fail('binary echo');
  const big = Buffer.alloc(1 << 20, 120);
  ws.send(big);
  m = await ws.next();
  if (!m.data.equals(big)) fail('1 MiB echo');
  ws.ping('p');
  await new Promise((r) => ws.once('pong', r));
  ws.send('close 4001');
  let code = await ws.closed;
  if (code !== 4001) fail('close code ' + code);
  ws = await open(url);
  ws.send('bye');
  await ws.next();
  ws.close(1000);
  code = await ws.closed;
  if (code !== 1000) fail('normal close ' + code);
  ws = await open(url);
  ws.send(Buffer.alloc((1 << 20) + 1));
  code = await ws.closed;
  if (code !== 1009) fail('oversize close ' + code);
  console.log('OK');
  process.exit(0);
})();
`

// wsNodeModule finds npm's ws where tests/install-peers.sh puts it.
func wsNodeModule(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SCRIPTHOST_NODE_MODULES")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "scripthost-peers", "node_modules")
	}
	mod := filepath.Join(dir, "ws")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
		if os.Getenv(peersVar) == "" {
			peerSkips.Add(1)
			t.Skip(skipNeedsPeers)
		}
		t.Fatalf("npm's ws not found in %s: run tests/install-peers.sh", dir)
	}
	return mod
}

// pythonWithWebsockets finds a python3 that imports websockets (Debian's
// /usr/bin/python3 with python3-websockets).
func pythonWithWebsockets(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import websockets").Run() == nil {
			return py
		}
	}
	if os.Getenv(peersVar) == "" {
		peerSkips.Add(1)
		t.Skip(skipNeedsPeers)
	}
	t.Fatal("no python3 with the websockets module: run tests/install-peers.sh (python3-websockets)")
	return ""
}

func TestPeerWebSocketClients(t *testing.T) {
	py := pythonWithWebsockets(t)
	wsMod := wsNodeModule(t)
	node := requireBinary(t, "node")
	dir := t.TempDir()
	pyFile, jsFile := filepath.Join(dir, "client.py"), filepath.Join(dir, "client.js")
	os.WriteFile(pyFile, []byte(pythonClient), 0o644)
	os.WriteFile(jsFile, []byte(nodeClient), 0o644)
	fronts := wsFronts(t)
	clients := []struct {
		name string
		args func(url string) []string
	}{
		{"python-websockets", func(url string) []string { return []string{py, pyFile, url} }},
		{"node-ws", func(url string) []string { return []string{node, jsFile, wsMod, url} }},
	}
	for _, front := range []string{"http", "nginx", "uwsgi-http"} {
		for _, c := range clients {
			t.Run(front+"/"+c.name, func(t *testing.T) {
				args := c.args(fronts[front])
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "OK") {
					t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
				}
			})
		}
	}
	// The fronts still serve plain requests.
	resp, err := http.Get("http" + strings.TrimPrefix(fronts["nginx"], "ws"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("plain request through nginx: %d", resp.StatusCode)
	}
}
