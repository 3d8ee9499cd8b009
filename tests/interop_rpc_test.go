package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// ourServer starts an in-process scripthost server on a free 127.0.0.1
// port with Go RPC functions: hello, big(n) (n bytes of "0123456789..."),
// httphello(args...) (a whole HTTP response), argdump(args...), and signal
// 17 recording its deliveries. It is closed when the test ends.
type ourServer struct {
	Addr    string
	State   *api.State
	Signals chan uint8
}

func startOurServer(t *testing.T) *ourServer {
	t.Helper()
	state, err := api.NewState(api.StateConfig{Caches: []api.CacheConfig{{Name: "default"}, {Name: "other"}}})
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]api.RPCFunc{
		"hello": func(context.Context, [][]byte) ([]byte, error) { return []byte("Hello World"), nil },
		"big": func(_ context.Context, args [][]byte) ([]byte, error) {
			var n int
			if len(args) > 0 {
				fmt.Sscan(string(args[0]), &n)
			}
			return bigPayload(n), nil
		},
		"httphello": func(_ context.Context, args [][]byte) ([]byte, error) {
			body := "hello from rpc, args:"
			for _, a := range args {
				body += " " + string(a)
			}
			return []byte(fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)), nil
		},
		"argdump": func(_ context.Context, args [][]byte) ([]byte, error) {
			out := fmt.Sprintf("argc=%d", len(args))
			for _, a := range args {
				out += fmt.Sprintf("|%d:%s", len(a), a)
			}
			return []byte(out), nil
		},
	}
	for name, fn := range funcs {
		if err := state.RPC.Register(name, fn); err != nil {
			t.Fatal(err)
		}
	}
	s := &ourServer{State: state, Signals: make(chan uint8, 16)}
	if err := state.Signals.Register(17, "worker", func(_ context.Context, n uint8) error {
		s.Signals <- n
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	srv := host.NewServer(state)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		if err := <-done; !errors.Is(err, host.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
		state.Close()
	})
	return s
}

// bigPayload is n bytes of "0123456789" repeated, like the capture
// server's big().
func bigPayload(n int) []byte {
	return bytes.Repeat([]byte("0123456789"), n/10+1)[:n]
}

// signalHandlerLua registers signal 17 on uWSGI: the handler records its
// delivery in the cache, where the test reads it back.
const signalHandlerLua = `
uwsgi.register_signal(17, "worker", function(sig)
  uwsgi.cache_update("signal17", "delivered")
end)
`

// TestInteropClientAgainstUWSGI drives a real uWSGI 2.0.21 with our Go
// client: RPC (framed, raw, large results), ping, cache, signal, and an
// HTTP-style request.
func TestInteropClientAgainstUWSGI(t *testing.T) {
	u := startUWSGI(t, uwsgiOptions{
		Plugins:   []string{"lua51", "rpc", "ping", "cache"},
		Master:    true,
		Processes: 1,
		Files: map[string][]byte{
			"rpc.lua": testdataFile(t, "uwsgi/rpc.lua"),
			"app.lua": testdataFile(t, "uwsgi/app.lua"),
		},
		Args: []string{"--lua-load", "rpc.lua", "--lua", "app.lua",
			"--cache2", "name=default,items=100", "--cache2", "name=other,items=10"},
	})
	// uWSGI 2.0.21's Lua plugin loses its WSAPI app when a loaded file
	// calls register_signal, so signals get an instance of their own.
	us := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"lua51", "cache", "signal"},
		Master:  true,
		Files:   map[string][]byte{"signal.lua": []byte(signalHandlerLua)},
		Args:    []string{"--lua-load", "signal.lua", "--cache2", "name=default,items=10"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := uwsgi.NewClient(u.Addr)
	defer c.Close()

	calls := []struct {
		fn   string
		args []string
		want string
	}{
		{"hello", nil, "Hello World"},
		{"echo", []string{"a", "b", "c"}, "a b c"},
		{"add", []string{"0.1", "0.2"}, "0.3"},
		{"add", []string{"1e15", "1"}, "1e+15"},
		{"big", []string{"65535"}, strings.Repeat("x", 65535)},
		{"big", []string{"65536"}, strings.Repeat("x", 65536)},
		{"big", []string{"1048576"}, strings.Repeat("x", 1048576)},
	}
	for _, call := range calls {
		got, err := c.CallString(ctx, call.fn, call.args...)
		if err != nil || got != call.want {
			t.Errorf("Call(%s %v) = %.40q (%d bytes), %v; want %.40q (%d bytes)", call.fn, call.args, got, len(got), err, call.want, len(call.want))
		}
	}
	if _, err := c.CallString(ctx, "nope"); !errors.Is(err, uwsgi.ErrNoResult) {
		t.Errorf("Call(nope) error = %v, want ErrNoResult", err)
	}
	if got, err := c.CallRaw(ctx, "hello"); err != nil || string(got) != "Hello World" {
		t.Errorf("CallRaw(hello) = %q, %v", got, err)
	}
	if warning, err := c.Ping(ctx); err != nil || warning != "" {
		t.Errorf("Ping() = %q, %v; want empty warning", warning, err)
	}

	// Cache over the magic interface, default and named caches.
	if err := c.CacheSet(ctx, "k", []byte("v1")); err != nil {
		t.Fatalf("CacheSet: %v", err)
	}
	if err := c.CacheSet(ctx, "k", []byte("v2")); !errors.Is(err, uwsgi.ErrFailed) {
		t.Errorf("CacheSet of an existing key: error = %v, want ErrFailed", err)
	}
	if err := c.CacheUpdate(ctx, "k", []byte("v3"), uwsgi.Expires(time.Hour)); err != nil {
		t.Errorf("CacheUpdate: %v", err)
	}
	val, exp, err := c.CacheGetItem(ctx, "k")
	if err != nil || string(val) != "v3" || time.Until(exp) < 50*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Errorf("CacheGetItem(k) = %q, %v, %v; want v3 expiring in about an hour", val, exp, err)
	}
	if ok, err := c.CacheExists(ctx, "k"); !ok || err != nil {
		t.Errorf("CacheExists(k) = %v, %v", ok, err)
	}
	if err := c.CacheSet(ctx, "n", []byte("named"), uwsgi.InCache("other")); err != nil {
		t.Errorf("CacheSet in other: %v", err)
	}
	if got, err := c.CacheGet(ctx, "n", uwsgi.InCache("other")); err != nil || string(got) != "named" {
		t.Errorf("CacheGet(n, other) = %q, %v", got, err)
	}
	if _, err := c.CacheGet(ctx, "n"); !errors.Is(err, uwsgi.ErrNotFound) {
		t.Errorf("CacheGet(n) in default: error = %v, want ErrNotFound", err)
	}
	if err := c.CacheDel(ctx, "k"); err != nil {
		t.Errorf("CacheDel(k): %v", err)
	}
	if ok, err := c.CacheExists(ctx, "k"); ok || err != nil {
		t.Errorf("CacheExists(k) after del = %v, %v; want false, nil", ok, err)
	}
	if err := c.CacheClear(ctx, uwsgi.InCache("other")); err != nil {
		t.Errorf("CacheClear(other): %v", err)
	}
	if _, err := c.CacheGet(ctx, "n", uwsgi.InCache("other")); !errors.Is(err, uwsgi.ErrNotFound) {
		t.Errorf("CacheGet(n, other) after clear: error = %v, want ErrNotFound", err)
	}

	// Signal 17: acknowledged, then delivered to the Lua handler.
	cs := uwsgi.NewClient(us.Addr)
	defer cs.Close()
	if err := cs.Signal(ctx, 17); err != nil {
		t.Fatalf("Signal(17): %v", err)
	}
	waitFor(t, "signal 17 delivered on uWSGI", func() bool {
		v, err := cs.CacheGet(ctx, "signal17")
		return err == nil && string(v) == "delivered"
	})

	// An HTTP-style request (modifier1 6) to app.lua.
	req, _ := http.NewRequest("GET", "http://localhost/hello", nil)
	resp, err := c.Do(ctx, uwsgi.ModLua, 0, req)
	if err != nil {
		t.Fatalf("Do(GET /hello): %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello World" {
		t.Errorf("Do(GET /hello) = %d %q, want 200 Hello World", resp.StatusCode, body)
	}
}

// TestInteropCLIAgainstUWSGI runs the scripthost client subcommands
// against a real uWSGI.
func TestInteropCLIAgainstUWSGI(t *testing.T) {
	bin := buildScripthost(t)
	u := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"lua51", "rpc", "ping", "cache", "signal"},
		Master:  true,
		Files:   map[string][]byte{"rpc.lua": testdataFile(t, "uwsgi/rpc.lua")},
		Args:    []string{"--lua-load", "rpc.lua", "--cache2", "name=default,items=100"},
	})
	cases := []struct {
		args     []string
		wantOut  string
		wantCode int
	}{
		{[]string{"rpc", u.Addr, "hello"}, "Hello World\n", 0},
		{[]string{"rpc", u.Addr, "add", "1.5", "2"}, "3.5\n", 0},
		{[]string{"rpc", "--raw", u.Addr, "echo", "x", "y"}, "x y\n", 0},
		{[]string{"rpc", u.Addr, "nope"}, "", 1},
		{[]string{"ping", u.Addr}, "PONG\n", 0},
		{[]string{"cache", u.Addr, "set", "ck", "cv"}, "", 0},
		{[]string{"cache", u.Addr, "get", "ck"}, "cv\n", 0},
		{[]string{"cache", u.Addr, "exists", "ck"}, "true\n", 0},
		{[]string{"cache", u.Addr, "del", "ck"}, "", 0},
		{[]string{"cache", u.Addr, "exists", "ck"}, "false\n", 1},
		{[]string{"signal", u.Addr, "17"}, "", 0},
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, tc.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("scripthost %v: %v", tc.args, err)
		}
		if code != tc.wantCode || (tc.wantOut != "" && stdout.String() != tc.wantOut) {
			t.Errorf("scripthost %v = exit %d, stdout %q (stderr %q); want exit %d, stdout %q",
				tc.args, code, stdout.String(), stderr.String(), tc.wantCode, tc.wantOut)
		}
		if code == 1 && tc.wantOut == "" && stderr.Len() == 0 {
			t.Errorf("scripthost %v failed without a message on stderr", tc.args)
		}
	}
}

// rpcClientPy is a WSGI app that makes uWSGI act as a client of our
// server: uwsgi.rpc, remote cache and remote signal, driven by the query.
const rpcClientPy = `
import uwsgi

def application(env, start_response):
    path = env.get('PATH_INFO', '')
    args = [a.encode() for a in env.get('QUERY_STRING', '').split('&') if a]
    node = args[0]
    if path == '/rpc':
        res = uwsgi.rpc(node, *args[1:])
    elif path == '/cache':
        name = 'default@' + node.decode()
        uwsgi.cache_update(b'py-key', b'py-value', 0, name)
        res = b','.join([uwsgi.cache_get(b'py-key', name) or b'None',
                         b'1' if uwsgi.cache_exists(b'py-key', name) else b'0'])
        uwsgi.cache_del(b'py-key', name)
        res += b',' + (uwsgi.cache_get(b'py-key', name) or b'None')
    elif path == '/signal':
        res = str(uwsgi.signal(17, node.decode())).encode()
    else:
        res = b'unknown path'
    if res is None:
        res = b'None'
    start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(res)))])
    return [res]
`

// TestInteropUWSGIClientCallsOurServer has a Python app inside a real
// uWSGI call our server with uwsgi.rpc (small and large results), the
// remote cache and a remote signal.
func TestInteropUWSGIClientCallsOurServer(t *testing.T) {
	ours := startOurServer(t)
	u := startUWSGI(t, uwsgiOptions{
		Plugins: []string{"python3"},
		Master:  true,
		Files:   map[string][]byte{"client.py": []byte(rpcClientPy)},
		Args:    []string{"--wsgi-file", "client.py"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := uwsgi.NewClient(u.Addr)
	defer c.Close()
	get := func(path, query string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://localhost"+path+"?"+query, nil)
		resp, err := c.Do(ctx, uwsgi.ModWSGI, 0, req)
		if err != nil {
			t.Fatalf("GET %s?%s via uWSGI: %v\n%s", path, query, err, u.LogTail(20))
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s?%s via uWSGI: %d, %v\n%s", path, query, resp.StatusCode, err, u.LogTail(20))
		}
		return body
	}
	cases := []struct {
		query string
		want  []byte
	}{
		{ours.Addr + "&hello", []byte("Hello World")},
		{ours.Addr + "&argdump&a&bb", []byte("argc=2|1:a|2:bb")},
		{ours.Addr + "&big&65535", bigPayload(65535)},
		{ours.Addr + "&big&65536", bigPayload(65536)},
		{ours.Addr + "&big&300000", bigPayload(300000)},
		{ours.Addr + "&nope", []byte("None")},
	}
	for _, tc := range cases {
		if got := get("/rpc", tc.query); !bytes.Equal(got, tc.want) {
			t.Errorf("uwsgi.rpc(%s) = %.60q (%d bytes), want %.60q (%d bytes)", tc.query, got, len(got), tc.want, len(tc.want))
		}
	}
	if got := get("/cache", ours.Addr); string(got) != "py-value,1,None" {
		t.Errorf("remote cache from uWSGI = %q, want py-value,1,None", got)
	}
	// uwsgi.signal returns None when the node acknowledged the signal and
	// raises when it did not.
	if got := get("/signal", ours.Addr); string(got) != "None" {
		t.Errorf("uwsgi.signal(17, ours) = %q, want None", got)
	}
	select {
	case n := <-ours.Signals:
		if n != 17 {
			t.Errorf("signal delivered = %d, want 17", n)
		}
	case <-ctx.Done():
		t.Fatal("signal 17 from uWSGI never delivered")
	}
}

// TestInteropNginxRPC calls our RPC functions from nginx: raw mode with
// uwsgi_param items (the RPC documentation's example, whose trailing empty
// item uWSGI rejects and we skip), and the PATH_INFO bridge.
func TestInteropNginxRPC(t *testing.T) {
	ours := startOurServer(t)
	n := startNginx(t, `
        location /call {
            uwsgi_modifier1 173;
            uwsgi_modifier2 1;
            uwsgi_param httphello foo;
            uwsgi_param bar "";
            uwsgi_pass `+ours.Addr+`;
            uwsgi_pass_request_headers off;
            uwsgi_pass_request_body off;
        }
        location /call2 {
            uwsgi_modifier1 173;
            uwsgi_modifier2 1;
            uwsgi_param httphello foo;
            uwsgi_param bar baz;
            uwsgi_pass `+ours.Addr+`;
            uwsgi_pass_request_headers off;
            uwsgi_pass_request_body off;
        }
        location /rpc/ {
            uwsgi_modifier1 173;
            uwsgi_modifier2 2;
            include uwsgi_params;
            uwsgi_param PATH_INFO /argdump/x/yy;
            uwsgi_pass `+ours.Addr+`;
            uwsgi_pass_request_body off;
        }`)
	client := &http.Client{Timeout: 10 * time.Second}
	cases := []struct {
		path, want, ctype string
	}{
		{"/call", "hello from rpc, args: foo bar", "text/plain"},
		{"/call2", "hello from rpc, args: foo bar baz", "text/plain"},
		{"/rpc/", "argc=2|1:x|2:yy", "application/binary"},
	}
	for _, tc := range cases {
		resp, err := client.Get(n.URL(tc.path))
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != tc.want || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("GET %s = %d %q (%s), want 200 %q (%s)\n%s", tc.path, resp.StatusCode, body,
				resp.Header.Get("Content-Type"), tc.want, tc.ctype, n.LogTail(10))
		}
	}
}

// TestInteropPlainConnectionsClose: on a plain connection (no extension)
// our server answers and closes, byte for byte as uWSGI does, so that a
// one-shot client (nginx, uwsgi.rpc) reads the end instead of having to
// close first. Nothing here half-closes the client side.
func TestInteropPlainConnectionsClose(t *testing.T) {
	u := startUWSGI(t, uwsgiOptions{
		Plugins:   []string{"lua51", "rpc", "ping"},
		Master:    true,
		Processes: 1,
		Files:     map[string][]byte{"rpc.lua": testdataFile(t, "uwsgi/rpc.lua")},
		Args:      []string{"--lua-load", "rpc.lua"},
	})
	ours := startOurServer(t)
	hello, err := uwsgi.AppendRPCRequest[string](nil, uwsgi.RPCFramed, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"ping", []byte{100, 0, 0, 0}},
		{"rpc framed", hello},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := rawExchange("tcp", u.Addr, tc.req, 10*time.Second)
			if err != nil {
				t.Fatalf("uWSGI: %v (got % x)\n%s", err, want, u.LogTail(20))
			}
			got, err := rawExchange("tcp", ours.Addr, tc.req, 10*time.Second)
			if err != nil {
				t.Fatalf("ours: %v (got % x), want % x then the close", err, got, want)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ours = % x, uWSGI = % x", got, want)
			}
		})
	}
}

// TestInteropClientAgainstOurServer runs the same client operations as
// against uWSGI, over the extension (pooled connections, error frames).
func TestInteropClientAgainstOurServer(t *testing.T) {
	ours := startOurServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := uwsgi.NewClient(ours.Addr)
	defer c.Close()
	for i := range 50 {
		if got, err := c.CallString(ctx, "hello"); err != nil || got != "Hello World" {
			t.Fatalf("call %d: Call(hello) = %q, %v", i, got, err)
		}
	}
	if got, err := c.Call(ctx, "big", []byte("1048576")); err != nil || !bytes.Equal(got, bigPayload(1048576)) {
		t.Errorf("Call(big 1 MiB) = %d bytes, %v", len(got), err)
	}
	_, err := c.Call(ctx, "nope")
	var re *uwsgi.RemoteError
	if !errors.As(err, &re) || re.Code != uwsgi.CodeNotFound || !strings.Contains(re.Message, "nope") {
		t.Errorf("Call(nope) error = %v, want a not-found error frame naming the function", err)
	}
	if !errors.Is(err, uwsgi.ErrNoResult) {
		t.Errorf("Call(nope) error = %v, want it to match ErrNoResult like on uWSGI", err)
	}
	if err := c.CacheSet(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.CacheSet(ctx, "k", []byte("v")); !errors.Is(err, uwsgi.ErrExists) {
		t.Errorf("CacheSet of an existing key: error = %v, want ErrExists", err)
	}
	if err := c.Signal(ctx, 17); err != nil {
		t.Errorf("Signal(17) = %v", err)
	}
	if err := c.Signal(ctx, 99); err == nil {
		t.Errorf("Signal(99) without a handler = nil, want an error")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
