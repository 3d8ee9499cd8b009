package tests

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Raw code evaluation (modifier1 22) through the scripthost binary:
// `serve --eval-socket ADDR` (an operations listener with eval enabled,
// repeatable), `--eval-key FILE` and `--eval-timeout D`.

// evalScripts register an RPC function and a signal handler that leaves
// a trace in the cache.
var evalScripts = map[string][]byte{
	"hello.lua": []byte(`uwsgi.register_rpc("hello", function(name) return "Hello, " .. (name or "world") end)
uwsgi.register_signal(17, "", function(sig) uwsgi.cache_update("signalled", tostring(sig)) end)
`),
}

const evalKey = "8d7d1f5a0c2b4e6f9a1b3c5d7e9f0a2b4c6d8e0f"

// startEvalHost starts scripthost with an eval listener (and an
// operations listener without eval) and waits until they accept.
func startEvalHost(t *testing.T, extra ...string) (p *scripthostProc, evalAddr, opsAddr string) {
	t.Helper()
	evalAddr, opsAddr = freeAddr(t), freeAddr(t)
	args := append([]string{"--eval-socket", evalAddr, "--ops-socket", opsAddr}, extra...)
	p = startScripthost(t, evalScripts, false, args...)
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range []string{evalAddr, opsAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if p.child.exited() || time.Now().After(deadline) {
				t.Fatalf("scripthost did not come up on %s: %v\n%s", addr, p.child.exitErr(), tailFile(p.Console, 40))
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	return p, evalAddr, opsAddr
}

func evalCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEvalLua(t *testing.T) {
	p, evalAddr, opsAddr := startEvalHost(t, "--eval-timeout", "500ms")
	ctx := evalCtx(t)
	public := uwsgi.NewClient(p.Addr)
	defer public.Close()
	c := uwsgi.NewClient(evalAddr)
	defer c.Close()

	if err := public.CacheUpdate(ctx, "k", []byte("from the cache")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ code, result, output string }{
		{`return uwsgi.cache_get("k")`, "from the cache", ""},
		{`print("hi") return 1+1`, "2", "hi\n"},
		{`uwsgi.call("hello")`, "Hello, world", ""},
		{`return uwsgi.call("hello", "ops")`, "Hello, ops", ""},
		{`return {1, "two", {three = 3}}`, `[1,"two",{"three":3}]`, ""},
		{`return 0.1 + 0.2`, "0.3", ""},
	} {
		result, output, err := c.Eval(ctx, uwsgi.ModLua, tc.code, nil)
		if err != nil || result != tc.result || output != tc.output {
			t.Errorf("eval %q = %q, %q, %v; want %q, %q", tc.code, result, output, err, tc.result, tc.output)
		}
	}

	// A signal raised by eval code runs the script's handler.
	if _, _, err := c.Eval(ctx, uwsgi.ModLua, `uwsgi.signal(17)`, nil); err != nil {
		t.Fatalf("eval uwsgi.signal(17): %v", err)
	}
	waitFor(t, "the signal 17 handler", func() bool {
		v, err := public.CacheGet(ctx, "signalled")
		return err == nil && string(v) == "17"
	})

	// Errors: the script's, and the time limit. The server goes on.
	_, _, err := c.Eval(ctx, uwsgi.ModLua, `error("boom")`, nil)
	var re *uwsgi.RemoteError
	if !errors.As(err, &re) || re.Code != uwsgi.CodeScript || !strings.Contains(re.Message, "eval:1: boom") {
		t.Errorf("eval error(\"boom\"): %v, want a script error with file and line", err)
	}
	if _, _, err := c.Eval(ctx, uwsgi.ModLua, `while true do end`, nil); !errors.Is(err, uwsgi.ErrTimeout) {
		t.Errorf("eval of an endless loop: %v, want a timeout", err)
	}
	if result, _, err := c.Eval(ctx, uwsgi.ModLua, `return "still serving"`, nil); err != nil || result != "still serving" {
		t.Errorf("eval after the timeout = %q, %v", result, err)
	}

	// Eval is refused everywhere else: the public socket, the operations
	// socket without eval.
	for _, addr := range []string{p.Addr, opsAddr} {
		other := uwsgi.NewClient(addr)
		if _, _, err := other.Eval(ctx, uwsgi.ModLua, `return 1`, nil); !errors.Is(err, uwsgi.ErrRefused) {
			t.Errorf("eval on %s: %v, want refused", addr, err)
		}
		other.Close()
	}

	// The CLI.
	bin := buildScripthost(t)
	out, err := exec.CommandContext(ctx, bin, "eval", evalAddr, "--lang", "lua", `print("from the cli") return uwsgi.call("hello", "cli")`).CombinedOutput()
	if err != nil || string(out) != "from the cli\nHello, cli\n" {
		t.Errorf("scripthost eval = %q, %v", out, err)
	}
	cmd := exec.CommandContext(ctx, bin, "eval", evalAddr, "--lang", "lua", "-")
	cmd.Stdin = strings.NewReader(`local n = 0
for i = 1, 10 do n = n + i end
return n`)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "55\n" {
		t.Errorf("scripthost eval - (stdin) = %q, %v", out, err)
	}
	var stderr bytes.Buffer
	cmd = exec.CommandContext(ctx, bin, "eval", p.Addr, "--lang", "lua", "return 1")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "refused") {
		t.Errorf("scripthost eval on the public socket: %v, stderr %q; want exit 1, refused", err, stderr.String())
	}

	// The log names every eval by hash, never by its code.
	const secret = `return "SECRET-eval-marker"`
	if _, _, err := c.Eval(ctx, uwsgi.ModLua, secret, nil); err != nil {
		t.Fatal(err)
	}
	// Each eval is logged before its reply is sent.
	logs, _ := os.ReadFile(p.Console)
	if bytes.Contains(logs, []byte("SECRET-eval-marker")) {
		t.Errorf("the log contains eval code:\n%s", logs)
	}
	if !bytes.Contains(logs, []byte("sha256=")) || !bytes.Contains(logs, []byte("outcome=refused")) {
		t.Errorf("the log does not record evals and refusals with hashes:\n%s", tailFile(p.Console, 20))
	}
}

func TestEvalSigned(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "eval.key")
	if err := os.WriteFile(keyFile, []byte(evalKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, evalAddr, _ := startEvalHost(t, "--eval-key", keyFile)
	ctx := evalCtx(t)
	c := uwsgi.NewClient(evalAddr)
	defer c.Close()
	key := []byte(evalKey) // the file's content without its newline

	if result, _, err := c.Eval(ctx, uwsgi.ModLua, `return 6*7`, key); err != nil || result != "42" {
		t.Errorf("signed eval = %q, %v", result, err)
	}
	if result, _, err := c.Eval(ctx, uwsgi.ModLua, `return 6*7`, key); err != nil || result != "42" {
		t.Errorf("the same code signed again = %q, %v (not a replay: a new signature)", result, err)
	}
	for name, k := range map[string][]byte{"unsigned": nil, "wrong key": []byte("not the key, but long enough")} {
		if _, _, err := c.Eval(ctx, uwsgi.ModLua, `return 1`, k); !errors.Is(err, uwsgi.ErrRefused) {
			t.Errorf("%s eval: %v, want refused", name, err)
		}
	}

	// A captured request sent again is refused; so is an old one.
	req, err := uwsgi.AppendEvalRequest(nil, uwsgi.ModLua, `return "once"`, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old, _ := uwsgi.AppendEvalRequest(nil, uwsgi.ModLua, `return "old"`, key, time.Now().Add(-2*time.Minute))
	// Each on a connection of its own: a plain connection closes after
	// its answer.
	for i, step := range []struct {
		req  []byte
		want uwsgi.Modifier
		code uint8
	}{
		{req, uwsgi.ModEval, 0},
		{req, uwsgi.ModResponse, uint8(uwsgi.CodeRefused)},
		{old, uwsgi.ModResponse, uint8(uwsgi.CodeRefused)},
	} {
		h, body := evalExchange(t, evalAddr, step.req)
		if h.Modifier1 != step.want || h.Modifier2 != step.code {
			t.Errorf("step %d: reply %v %q, want [%v, n, %d]", i, h, body, step.want, step.code)
		}
	}

	bin := buildScripthost(t)
	out, err := exec.CommandContext(ctx, bin, "eval", evalAddr, "--lang", "lua", "--key", keyFile, `return "signed by the cli"`).CombinedOutput()
	if err != nil || string(out) != "signed by the cli\n" {
		t.Errorf("scripthost eval --key = %q, %v", out, err)
	}
	out, err = exec.CommandContext(ctx, bin, "eval", evalAddr, "--lang", "lua", `return 1`).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") {
		t.Errorf("scripthost eval without --key = %q, %v; want exit 1, refused", out, err)
	}
}

// TestEvalJSAndGo needs the JavaScript and Go engines wired into serve
// as evaluators; until they are, the server refuses these languages and
// the test says so.
func TestEvalJSAndGo(t *testing.T) {
	p, evalAddr, _ := startEvalHost(t)
	ctx := evalCtx(t)
	public := uwsgi.NewClient(p.Addr)
	defer public.Close()
	if err := public.CacheUpdate(ctx, "k", []byte("shared")); err != nil {
		t.Fatal(err)
	}
	c := uwsgi.NewClient(evalAddr)
	defer c.Close()
	for _, tc := range []struct {
		name         string
		lang         uwsgi.Modifier
		code         string
		result, outp string
	}{
		{"js arithmetic", uwsgi.ModV8, `1+1`, "2", ""},
		{"js console and cache", uwsgi.ModV8, `console.log("hi"); uwsgi.cache_get("k")`, "shared", "hi\n"},
		{"js calls lua", uwsgi.ModV8, `uwsgi.call("hello", "js")`, "Hello, js", ""},
		{"go arithmetic", uwsgi.ModGo, `1+1`, "2", ""},
	} {
		result, output, err := c.Eval(ctx, tc.lang, tc.code, nil)
		if errors.Is(err, uwsgi.ErrRefused) {
			t.Errorf("%s: %v: the %v engine is not wired into serve as an evaluator (EvalConfig.Evaluators)", tc.name, err, tc.lang)
			continue
		}
		if err != nil || result != tc.result || output != tc.outp {
			t.Errorf("%s: eval %q = %q, %q, %v; want %q, %q", tc.name, tc.code, result, output, err, tc.result, tc.outp)
		}
	}
}

// evalExchange sends one packet on a new plain connection and reads the
// framed reply.
func evalExchange(t *testing.T, addr string, req []byte) (uwsgi.Header, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	h, err := uwsgi.ReadHeader(conn)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, h.Size)
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	return h, body
}
