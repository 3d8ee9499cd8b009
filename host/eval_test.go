package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// The eval tests use fake evaluators: the host imports no engine.

const evalIOTimeout = 10 * time.Second

// fakeEval is an api.Evaluator made of a function.
type fakeEval func(ctx context.Context, env *api.Registrations, code string) (api.Value, string, error)

// Eval ignores maxOutput: the host cuts what it returns.
func (f fakeEval) Eval(ctx context.Context, env *api.Registrations, code string, maxOutput int) (api.Value, string, bool, error) {
	v, out, err := f(ctx, env, code)
	return v, out, false, err
}

// limitedEval keeps at most maxOutput bytes itself.
type limitedEval struct {
	fakeEval
	gotMax int
}

func (l *limitedEval) Eval(ctx context.Context, env *api.Registrations, code string, maxOutput int) (api.Value, string, bool, error) {
	l.gotMax = maxOutput
	v, out, err := l.fakeEval(ctx, env, code)
	if len(out) > maxOutput {
		return v, out[:maxOutput], true, err
	}
	return v, out, false, err
}

// scriptedEval understands a few "programs" the tests send.
var scriptedEval = fakeEval(func(ctx context.Context, env *api.Registrations, code string) (api.Value, string, error) {
	switch {
	case code == "boom":
		return nil, "partial output", errors.New("lua: eval:1: boom")
	case code == "loop":
		<-ctx.Done()
		return nil, "", fmt.Errorf("lua: eval:1: interrupted: %w", context.Cause(ctx))
	case code == "loop-canceled":
		<-ctx.Done()
		return nil, "", ctx.Err() // an engine that only reports the context's error
	case code == "panic":
		panic("interpreter bug")
	case strings.HasPrefix(code, "print "):
		return int64(2), strings.TrimPrefix(code, "print "), nil
	}
	return code, "", nil
})

// syncBuffer collects log output written from connection goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// evalServer serves three loopback listeners: a public one (Serve), an
// operations one (ServeOps) and one for eval (ServeEval; ServeOps when
// eval is not enabled).
type evalServer struct {
	srv                     *Server
	state                   *api.State
	log                     *syncBuffer
	public, ops, evalSocket string
}

// startEvalServer starts a server; cfg nil leaves eval disabled. now, when
// not nil, replaces the clock of signature checks.
func startEvalServer(t *testing.T, cfg *EvalConfig, now func() time.Time) *evalServer {
	t.Helper()
	st, err := api.NewState(api.StateConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv := &Server{State: st, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if cfg != nil {
		if err := srv.EnableEval(*cfg); err != nil {
			t.Fatalf("EnableEval: %v", err)
		}
		if now != nil {
			srv.handlers[uwsgi.ModEval].(*evalHandler).now = now
		}
	}
	es := &evalServer{srv: srv, state: st, log: logs}
	serve := func(fn func(net.Listener) error) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fn(l)
		return l.Addr().String()
	}
	es.public = serve(srv.Serve)
	es.ops = serve(srv.ServeOps)
	if cfg != nil {
		es.evalSocket = serve(srv.ServeEval)
	} else {
		es.evalSocket = serve(srv.ServeOps)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), evalIOTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
			srv.Close()
		}
		st.Close()
	})
	return es
}

func evalDial(t *testing.T, addr string, extended bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, evalIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(evalIOTimeout))
	if extended {
		evalWrite(t, c, uwsgi.AppendHello(nil))
		if h, _ := evalRead(t, c); h.Modifier1 != uwsgi.ModPing || h.Modifier2 != uwsgi.PingExt {
			t.Fatalf("hello reply %v", h)
		}
	}
	return c
}

func evalWrite(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func evalRead(t *testing.T, c net.Conn) (uwsgi.Header, []byte) {
	t.Helper()
	h, err := uwsgi.ReadHeader(c)
	if err != nil {
		t.Fatalf("reading a header: %v", err)
	}
	p := make([]byte, h.Size)
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatalf("reading %d bytes of %v: %v", h.Size, h, err)
	}
	return h, p
}

// evalPing checks that an extended connection is still served.
func evalPing(t *testing.T, c net.Conn) {
	t.Helper()
	evalWrite(t, c, []byte{100, 0, 0, 0})
	if h, _ := evalRead(t, c); h.Modifier1 != uwsgi.ModPing {
		t.Fatalf("reply to a ping: %v", h)
	}
}

// evalClosed checks that the server closes c without another byte.
func evalClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Fatalf("got % x, %v; want the close", got, err)
	}
}

// evalEnd checks how a connection goes on after an answer: an extended
// one is still served, a plain one is closed.
func evalEnd(t *testing.T, c net.Conn, extended bool) {
	t.Helper()
	if extended {
		evalPing(t, c)
	} else {
		evalClosed(t, c)
	}
}

func evalPacket(m2 uint8, payload string) []byte {
	b, err := uwsgi.AppendPacket(nil, uwsgi.ModEval, m2, []byte(payload))
	if err != nil {
		panic(err)
	}
	return b
}

// expectEvalError reads an error frame and checks its code and message.
func expectEvalError(t *testing.T, c net.Conn, code uwsgi.Code, msg string) {
	t.Helper()
	h, p := evalRead(t, c)
	if h.Modifier1 != uwsgi.ModResponse || uwsgi.Code(h.Modifier2) != code {
		t.Fatalf("reply %v %q, want an error frame %v (%d)", h, p, code, code)
	}
	if !strings.Contains(string(p), msg) {
		t.Fatalf("error message %q does not contain %q", p, msg)
	}
}

// readEvalReply reads a success reply and returns its vars.
func readEvalReply(t *testing.T, c net.Conn) map[string]string {
	t.Helper()
	h, p := evalRead(t, c)
	if h.Modifier1 != uwsgi.ModEval || h.Modifier2 != 0 {
		t.Fatalf("reply %v %q, want [22, n, 0]", h, p)
	}
	vs, err := uwsgi.ParseVars(nil, p, 0)
	if err != nil {
		t.Fatalf("reply block: %v", err)
	}
	return vs.Map()
}

func luaOnly(ev api.Evaluator) map[uwsgi.Modifier]api.Evaluator {
	return map[uwsgi.Modifier]api.Evaluator{uwsgi.ModLua: ev}
}

func TestEvalNotEnabledIsDropped(t *testing.T) {
	es := startEvalServer(t, nil, nil)
	for _, addr := range []string{es.public, es.ops} {
		c := evalDial(t, addr, false)
		evalWrite(t, c, evalPacket(6, "return 1"))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%s: waiting for the close: %v", addr, err)
		}
		if len(got) != 0 {
			t.Errorf("%s: got % x, want the connection closed without a byte", addr, got)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := es.srv.ServeEval(l); !errors.Is(err, ErrEvalDisabled) {
		t.Errorf("ServeEval without EnableEval = %v, want ErrEvalDisabled", err)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("ServeEval without EnableEval left the listener open")
	}
}

func TestEvalRefusedOutsideEvalListeners(t *testing.T) {
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(scriptedEval)}, nil)
	for _, tc := range []struct {
		name, addr string
		extended   bool
	}{
		{"public", es.public, false},
		{"public extended", es.public, true},
		{"ops without eval", es.ops, false},
		{"ops without eval extended", es.ops, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := evalDial(t, tc.addr, tc.extended)
			evalWrite(t, c, evalPacket(6, "return 1"))
			expectEvalError(t, c, uwsgi.CodeRefused, "only served on the operator's eval listener")
			evalEnd(t, c, tc.extended)
		})
	}
	logs := es.log.String()
	for _, want := range []string{`msg="eval refused"`, "listener=" + es.public, "listener=" + es.ops, "outcome=refused", "lang=lua"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not contain %q:\n%s", want, logs)
		}
	}
}

func TestEvalFailures(t *testing.T) {
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(scriptedEval), MaxCode: 64, Timeout: 50 * time.Millisecond}, nil)
	for _, tc := range []struct {
		name string
		m2   uint8
		code string
		want uwsgi.Code
		msg  string
	}{
		{"unknown language", 7, "return 1", uwsgi.CodeBadRequest, "unknown eval language: modifier2 7"},
		{"language not enabled", 24, "1+1", uwsgi.CodeRefused, "eval of js is not enabled"},
		{"go not enabled", 11, "1+1", uwsgi.CodeRefused, "eval of go is not enabled"},
		{"code too large", 6, strings.Repeat("x", 65), uwsgi.CodeTooLarge, "code of 65 bytes, at most 64"},
		{"script error", 6, "boom", uwsgi.CodeScript, "lua: eval:1: boom"},
		{"timeout", 6, "loop", uwsgi.CodeTimeout, "eval ran past its time limit (50ms): lua: eval:1: interrupted"},
		{"timeout reported as canceled", 6, "loop-canceled", uwsgi.CodeTimeout, "harakiri"},
		{"interpreter panic", 6, "panic", uwsgi.CodeFailed, "interpreter bug"},
	} {
		for _, extended := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/extended=%v", tc.name, extended), func(t *testing.T) {
				c := evalDial(t, es.evalSocket, extended)
				evalWrite(t, c, evalPacket(tc.m2, tc.code))
				expectEvalError(t, c, tc.want, tc.msg)
				evalEnd(t, c, extended) // an extended connection stays usable
			})
		}
	}
	logs := es.log.String()
	for _, want := range []string{`msg="eval failed"`, `outcome="script error"`, "outcome=timeout", `outcome="too large"`,
		`outcome="bad request"`, "lang=unknown(7)", "lang=js"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not contain %q:\n%s", want, logs)
		}
	}
}

func TestEvalReplyBytes(t *testing.T) {
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(scriptedEval)}, nil)
	for _, tc := range []struct {
		name string
		code string
		want []byte
	}{
		{"result and output", "print hi\n", []byte{
			22, 24, 0, 0,
			6, 0, 'r', 'e', 's', 'u', 'l', 't', 1, 0, '2',
			6, 0, 'o', 'u', 't', 'p', 'u', 't', 3, 0, 'h', 'i', '\n',
		}},
		{"result only", "abc", []byte{
			22, 23, 0, 0,
			6, 0, 'r', 'e', 's', 'u', 'l', 't', 3, 0, 'a', 'b', 'c',
			6, 0, 'o', 'u', 't', 'p', 'u', 't', 0, 0,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := evalDial(t, es.evalSocket, false)
			evalWrite(t, c, evalPacket(6, tc.code))
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("reading the reply: %v (got % x)", err, got)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("reply\n got % x\nwant % x", got, tc.want)
			}
			evalClosed(t, c)
		})
	}
	// Pipelined on a plain connection: both answered, in order, then the
	// close.
	c := evalDial(t, es.evalSocket, false)
	evalWrite(t, c, append(evalPacket(6, "one"), evalPacket(6, "two")...))
	for _, want := range []string{"one", "two"} {
		if got := readEvalReply(t, c)["result"]; got != want {
			t.Errorf("pipelined result %q, want %q", got, want)
		}
	}
	evalClosed(t, c)
}

type callable struct{}

func (callable) Call(context.Context, []api.Value) (api.Value, error) { return nil, nil }

func TestFormatResult(t *testing.T) {
	for _, tc := range []struct {
		v    api.Value
		want string
	}{
		{nil, "nil"},
		{true, "true"},
		{int64(-42), "-42"},
		{0.1 + 0.2, "0.3"},
		{1e100, "1e+100"},
		{"text as it is\n", "text as it is\n"},
		{[]byte("bytes"), "bytes"},
		{callable{}, "function"},
		{[]api.Value{int64(1), "a", nil, []byte("b"), 1.5, false}, `[1,"a",null,"b",1.5,false]`},
		{map[string]api.Value{"b": int64(2), "a": []api.Value{}, "<&>": "<&>"}, `{"<&>":"<&>","a":[],"b":2}`},
		{[]api.Value{math.Inf(1), math.NaN(), callable{}}, `["inf","nan","function"]`},
		{[]api.Value{map[string]api.Value{"k": []api.Value{"v"}}}, `[{"k":["v"]}]`},
	} {
		if got := formatResult(tc.v); got != tc.want {
			t.Errorf("formatResult(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	deep := api.Value("bottom")
	for range 2 * maxJSONDepth {
		deep = []api.Value{deep}
	}
	if got := formatResult(deep); !strings.Contains(got, `"..."`) || strings.Contains(got, "bottom") {
		t.Errorf("a value nested %d deep is not cut: %.80s...", 2*maxJSONDepth, got)
	}
}

func TestEvalOutputLimits(t *testing.T) {
	big := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name           string
		result, output string
		truncated      bool
		max            int
		wantResult     string
		wantOutput     string
		wantTruncated  bool
	}{
		{name: "fits", result: "r", output: "o", max: 8, wantResult: "r", wantOutput: "o"},
		{name: "output cut", result: "r", output: "0123456789", max: 8, wantResult: "r", wantOutput: "01234567", wantTruncated: true},
		{name: "result cut", result: "0123456789", output: "", max: 4, wantResult: "0123", wantTruncated: true},
		{name: "utf-8 kept whole", result: "", output: "ééé", max: 5, wantOutput: "éé", wantTruncated: true},
		{name: "binary cut as asked", result: "", output: "\x80\x80\x80\x80\x80\x80", max: 5, wantOutput: "\x80\x80\x80\x80\x80", wantTruncated: true},
		{name: "engine cut", result: "r", output: "o", truncated: true, max: 8, wantResult: "r", wantOutput: "o", wantTruncated: true},
		{name: "block limit cuts output", result: big(40000), output: big(40000), max: 64 << 10,
			wantResult: big(40000), wantOutput: big(uwsgi.MaxSize - 34 - 40000), wantTruncated: true},
		{name: "block limit cuts result", result: big(70000), output: big(10), max: 1 << 20,
			wantResult: big(uwsgi.MaxSize - 34), wantOutput: "", wantTruncated: true},
		{name: "exactly full", result: big(uwsgi.MaxSize - 20 - 5), output: big(5), max: 1 << 20,
			wantResult: big(uwsgi.MaxSize - 25), wantOutput: big(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendEvalReply(nil, tc.result, tc.output, tc.truncated, tc.max)
			p, n, _, err := uwsgi.Extract(b, uwsgi.MaxSize)
			if err != nil || n != len(b) {
				t.Fatalf("Extract: n %d of %d, err %v", n, len(b), err)
			}
			if p.Modifier1 != uwsgi.ModEval || p.Modifier2 != 0 {
				t.Errorf("header %v, want [22, n, 0]", p.Header)
			}
			vs, err := uwsgi.ParseVars(nil, p.Payload, 0)
			if err != nil {
				t.Fatal(err)
			}
			m := vs.Map()
			if m["result"] != tc.wantResult || m["output"] != tc.wantOutput {
				t.Errorf("result %d bytes, output %d bytes (%.20q), want %d and %d (%.20q)",
					len(m["result"]), len(m["output"]), m["output"], len(tc.wantResult), len(tc.wantOutput), tc.wantOutput)
			}
			if got := m["truncated"] == "1"; got != tc.wantTruncated {
				t.Errorf("truncated %v, want %v", got, tc.wantTruncated)
			}
			if _, present := m["truncated"]; present && !tc.wantTruncated {
				t.Error("truncated var present without truncation")
			}
		})
	}
}

func TestEvalOutputLimitOverTheWire(t *testing.T) {
	lim := &limitedEval{fakeEval: scriptedEval}
	es := startEvalServer(t, &EvalConfig{
		Evaluators: map[uwsgi.Modifier]api.Evaluator{uwsgi.ModLua: scriptedEval, uwsgi.ModV8: lim},
		MaxOutput:  4,
	}, nil)
	c := evalDial(t, es.evalSocket, true)
	for _, m2 := range []uint8{6, 24} {
		evalWrite(t, c, evalPacket(m2, "print 0123456789"))
		got := readEvalReply(t, c)
		if got["output"] != "0123" || got["result"] != "2" || got["truncated"] != "1" {
			t.Errorf("modifier2 %d: reply %q, want output 0123, result 2, truncated 1", m2, got)
		}
	}
	if lim.gotMax != 4 {
		t.Errorf("Eval got maxOutput %d, want 4", lim.gotMax)
	}
}

// signedPacket builds a signed eval request from its vars.
func signedPacket(t *testing.T, m2 uint8, kv ...string) []byte {
	t.Helper()
	var vs uwsgi.Vars
	for i := 0; i+1 < len(kv); i += 2 {
		vs = vs.Add(kv[i], kv[i+1])
	}
	block, err := vs.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return evalPacket(m2, string(block))
}

func TestEvalSignatures(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(scriptedEval), Key: key}, func() time.Time { return now })
	sign := func(ts, code string) string { return uwsgi.EvalSignature(key, ts, uwsgi.ModLua, code) }
	valid := signedPacket(t, 6, "code", "fresh", "ts", "1700000000", "sig", sign("1700000000", "fresh"))
	for _, tc := range []struct {
		name string
		req  []byte
		want uwsgi.Code // 0: success, with result "ok"
		msg  string
	}{
		{"unsigned", evalPacket(6, "ok"), uwsgi.CodeRefused, "requires signed eval requests"},
		{"vars without sig", signedPacket(t, 6, "code", "ok", "ts", "1700000000"), uwsgi.CodeRefused, "requires signed"},
		{"valid", valid, 0, ""},
		{"replayed", valid, uwsgi.CodeRefused, "replayed eval signature"},
		{"fraction", signedPacket(t, 6, "code", "ok", "ts", "1700000000.5", "sig", sign("1700000000.5", "ok")), 0, ""},
		{"same code later", signedPacket(t, 6, "code", "ok", "ts", "1700000000.500000001", "sig", sign("1700000000.500000001", "ok")), 0, ""},
		{"other vars ignored", signedPacket(t, 6, "note", "x", "code", "ok", "ts", "1699999999", "sig", sign("1699999999", "ok")), 0, ""},
		{"window edge past", signedPacket(t, 6, "code", "ok", "ts", "1699999940", "sig", sign("1699999940", "ok")), 0, ""},
		{"window edge future", signedPacket(t, 6, "code", "ok", "ts", "1700000060", "sig", sign("1700000060", "ok")), 0, ""},
		{"expired", signedPacket(t, 6, "code", "ok", "ts", "1699999939", "sig", sign("1699999939", "ok")), uwsgi.CodeRefused, "outside the 1m0s window"},
		{"future", signedPacket(t, 6, "code", "ok", "ts", "1700000061", "sig", sign("1700000061", "ok")), uwsgi.CodeRefused, "outside the 1m0s window"},
		{"bad sig", signedPacket(t, 6, "code", "ok", "ts", "1700000001", "sig", strings.Repeat("0", 64)), uwsgi.CodeRefused, "bad eval signature"},
		{"uppercase sig", signedPacket(t, 6, "code", "ok", "ts", "1700000001", "sig", strings.ToUpper(sign("1700000001", "ok"))), uwsgi.CodeRefused, "bad eval signature"},
		{"short sig", signedPacket(t, 6, "code", "ok", "ts", "1700000001", "sig", sign("1700000001", "ok")[:63]), uwsgi.CodeRefused, "bad eval signature"},
		{"other key", signedPacket(t, 6, "code", "ok", "ts", "1700000001", "sig",
			uwsgi.EvalSignature([]byte("another key, 16+ bytes"), "1700000001", uwsgi.ModLua, "ok")), uwsgi.CodeRefused, "bad eval signature"},
		{"other code", signedPacket(t, 6, "code", "evil", "ts", "1700000001", "sig", sign("1700000001", "ok")), uwsgi.CodeRefused, "bad eval signature"},
		{"other ts", signedPacket(t, 6, "code", "ok", "ts", "1700000002", "sig", sign("1700000001", "ok")), uwsgi.CodeRefused, "bad eval signature"},
		{"other language", signedPacket(t, 24, "code", "ok", "ts", "1700000001", "sig", sign("1700000001", "ok")), uwsgi.CodeRefused, "bad eval signature"},
		{"language not enabled", signedPacket(t, 24, "code", "ok", "ts", "1700000001", "sig",
			uwsgi.EvalSignature(key, "1700000001", uwsgi.ModV8, "ok")), uwsgi.CodeRefused, "eval of js is not enabled"},
		{"unknown language", signedPacket(t, 7, "code", "ok", "ts", "1700000001", "sig", sign("1700000001", "ok")), uwsgi.CodeBadRequest, "unknown eval language"},
		{"no ts", signedPacket(t, 6, "code", "ok", "sig", sign("", "ok")), uwsgi.CodeBadRequest, "without code or ts"},
		{"no code", signedPacket(t, 6, "ts", "1700000001", "sig", sign("1700000001", "")), uwsgi.CodeBadRequest, "without code or ts"},
		{"two codes", signedPacket(t, 6, "code", "ok", "code", "ok", "ts", "1700000001", "sig", sign("1700000001", "ok")), uwsgi.CodeBadRequest, "two code vars"},
		{"two sigs", signedPacket(t, 6, "code", "ok", "ts", "1700000001", "sig", "x", "sig", sign("1700000001", "ok")), uwsgi.CodeBadRequest, "two sig vars"},
		{"ts not a number", signedPacket(t, 6, "code", "ok", "ts", "soon", "sig", sign("soon", "ok")), uwsgi.CodeBadRequest, "is not Unix seconds"},
		{"negative ts", signedPacket(t, 6, "code", "ok", "ts", "-5", "sig", sign("-5", "ok")), uwsgi.CodeBadRequest, "is not Unix seconds"},
		{"ts with 10 fraction digits", signedPacket(t, 6, "code", "ok", "ts", "1700000000.0000000001", "sig",
			sign("1700000000.0000000001", "ok")), uwsgi.CodeBadRequest, "is not Unix seconds"},
		{"longer code", signedPacket(t, 6, "code", strings.Repeat("y", 300), "ts", "1700000003", "sig",
			sign("1700000003", strings.Repeat("y", 300))), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := evalDial(t, es.evalSocket, false)
			evalWrite(t, c, tc.req)
			if tc.want != 0 {
				expectEvalError(t, c, tc.want, tc.msg)
			} else if got := readEvalReply(t, c); got["result"] == "" {
				t.Errorf("reply %q, want a result", got)
			}
			evalClosed(t, c)
		})
	}
}

func TestEvalSignedCodeLimit(t *testing.T) {
	key := []byte("0123456789abcdef")
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(scriptedEval), Key: key, MaxCode: 10}, nil)
	c := evalDial(t, es.evalSocket, true)
	req, err := uwsgi.AppendEvalRequest(nil, uwsgi.ModLua, "0123456789a", key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	evalWrite(t, c, req)
	expectEvalError(t, c, uwsgi.CodeTooLarge, "code of 11 bytes, at most 10")
	req, _ = uwsgi.AppendEvalRequest(nil, uwsgi.ModLua, "0123456789", key, time.Now())
	evalWrite(t, c, req)
	if got := readEvalReply(t, c)["result"]; got != "0123456789" {
		t.Errorf("result %q", got)
	}
}

func TestReplayGuardIsBounded(t *testing.T) {
	g := newReplayGuard(2)
	now := time.Unix(1000, 0)
	a, b, c := [32]byte{1}, [32]byte{2}, [32]byte{3}
	steps := []struct {
		sig   [32]byte
		until time.Time
		now   time.Time
		want  replayVerdict
	}{
		{a, now.Add(time.Minute), now, replayFresh},
		{a, now.Add(time.Minute), now, replaySeen},
		{b, now.Add(2 * time.Minute), now, replayFresh},
		{c, now.Add(time.Minute), now, replayFull},
		{c, now.Add(2 * time.Minute), now.Add(time.Minute), replayFresh}, // a left the window
		{b, now.Add(2 * time.Minute), now.Add(time.Minute), replaySeen},
		{a, now.Add(3 * time.Minute), now.Add(time.Minute), replayFull},
	}
	for i, s := range steps {
		if got := g.admit(s.sig, s.until, s.now); got != s.want {
			t.Errorf("step %d: admit = %d, want %d", i, got, s.want)
		}
	}
	if len(g.seen) > 2 {
		t.Errorf("%d signatures remembered, limit 2", len(g.seen))
	}
}

func TestEvalLogHasHashNotCode(t *testing.T) {
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(scriptedEval)}, nil)
	const secret = "SECRET-7f3a-return-the-password"
	c := evalDial(t, es.evalSocket, true)
	evalWrite(t, c, evalPacket(6, secret))
	readEvalReply(t, c)
	evalWrite(t, c, evalPacket(24, secret))
	expectEvalError(t, c, uwsgi.CodeRefused, "not enabled")
	pub := evalDial(t, es.public, false)
	evalWrite(t, pub, evalPacket(6, secret))
	expectEvalError(t, pub, uwsgi.CodeRefused, "eval listener")

	logs := es.log.String()
	if strings.Contains(logs, "SECRET") {
		t.Errorf("the log contains the code:\n%s", logs)
	}
	// sha256("SECRET-7f3a-return-the-password"), first 12 hex digits.
	const sum = "7c9cd1c707c8"
	if got := strings.Count(logs, "sha256="+sum); got != 3 {
		t.Errorf("the log has sha256=%s %d times, want 3:\n%s", sum, got, logs)
	}
	for _, want := range []string{
		`msg=eval listener=` + es.evalSocket + ` remote=127.0.0.1:`,
		"lang=lua sha256=" + sum + " bytes=31 outcome=ok took=",
		`msg="eval refused" listener=` + es.evalSocket,
		`lang=js sha256=` + sum + ` bytes=31 outcome=refused`,
		`reason="eval of js is not enabled on this server"`,
		`msg="eval refused" listener=` + es.public,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not contain %q:\n%s", want, logs)
		}
	}
}

func TestEvalEnvAndScope(t *testing.T) {
	var mu sync.Mutex
	var envs []*api.Registrations
	ev := fakeEval(func(ctx context.Context, env *api.Registrations, code string) (api.Value, string, error) {
		mu.Lock()
		envs = append(envs, env)
		mu.Unlock()
		sc := api.ScopeOf(ctx)
		if sc == nil {
			return nil, "", errors.New("no call scope")
		}
		if d := time.Until(sc.Deadline()); d <= 0 || d > 2*time.Second {
			return nil, "", fmt.Errorf("deadline in %v, want within the 2s eval timeout", d)
		}
		if _, err := sc.Conn(); !errors.Is(err, api.ErrNoConnection) {
			return nil, "", fmt.Errorf("eval code has a client connection (%v)", err)
		}
		sc.SetHarakiri(time.Hour) // set_user_harakiri works
		if d := time.Until(sc.Deadline()); d < time.Minute {
			return nil, "", fmt.Errorf("deadline in %v after SetHarakiri(1h)", d)
		}
		err := env.RegisterRPC(code, func(context.Context, [][]byte) ([]byte, error) { return []byte("from eval"), nil })
		return "registered", "", err
	})
	es := startEvalServer(t, &EvalConfig{Evaluators: luaOnly(ev), Timeout: 2 * time.Second}, nil)
	c := evalDial(t, es.evalSocket, true)
	call := func(fn string) string {
		t.Helper()
		out, err := es.state.RPC.CallBytes(context.Background(), []byte(fn), nil)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(out)
	}
	eval := func(code string) {
		t.Helper()
		evalWrite(t, c, evalPacket(6, code))
		if got := readEvalReply(t, c)["result"]; got != "registered" {
			t.Fatalf("eval %q: result %q", code, got)
		}
	}

	eval("before_scripts") // no generation yet: a standalone Registrations, live at once
	if got := call("before_scripts"); got != "from eval" {
		t.Errorf("RPC registered by eval before any scripts: %q", got)
	}
	gen1 := &Generation{ID: 1, Registrations: api.NewRegistrations(es.state, t.TempDir())}
	if _, err := es.srv.SetScripts(gen1, Routes{}); err != nil {
		t.Fatal(err)
	}
	eval("in_gen1")
	if got := call("in_gen1"); got != "from eval" {
		t.Errorf("RPC registered by eval in generation 1: %q", got)
	}
	gen2 := &Generation{ID: 2, Registrations: api.NewRegistrations(es.state, t.TempDir())}
	if _, err := es.srv.SetScripts(gen2, Routes{}); err != nil {
		t.Fatal(err)
	}
	if got := call("in_gen1"); !strings.Contains(got, "error") {
		t.Errorf("RPC registered by eval survived the reload: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(envs) != 2 || envs[0].State != es.state || envs[1] != gen1.Registrations {
		t.Errorf("eval Envs: %v, want a standalone one over the server's state, then generation 1's", envs)
	}
}

func TestEnableEvalConfig(t *testing.T) {
	srv := &Server{Logger: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		name string
		cfg  EvalConfig
	}{
		{"empty key", EvalConfig{Key: []byte{}}},
		{"short key", EvalConfig{Key: []byte("fifteen bytes!!")}},
		{"not a language", EvalConfig{Evaluators: map[uwsgi.Modifier]api.Evaluator{uwsgi.ModWSGI: scriptedEval}}},
		{"nil evaluator", EvalConfig{Evaluators: map[uwsgi.Modifier]api.Evaluator{uwsgi.ModLua: nil}}},
	} {
		if err := srv.EnableEval(tc.cfg); !errors.Is(err, ErrEvalConfig) {
			t.Errorf("%s: EnableEval = %v, want ErrEvalConfig", tc.name, err)
		}
	}
	if srv.handlers[uwsgi.ModEval] != nil {
		t.Error("a refused configuration installed a handler")
	}
	if err := srv.EnableEval(EvalConfig{}); err != nil {
		t.Fatal(err)
	}
	h := srv.handlers[uwsgi.ModEval].(*evalHandler)
	want := EvalConfig{Timeout: 5 * time.Second, MaxOutput: 64 << 10, MaxCode: 65535, Window: time.Minute}
	got := h.cfg
	if got.Timeout != want.Timeout || got.MaxOutput != want.MaxOutput || got.MaxCode != want.MaxCode || got.Window != want.Window {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
}

func TestEvalListenersConfig(t *testing.T) {
	st, err := api.NewState(api.StateConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := &Server{State: st, Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnableEval(EvalConfig{Evaluators: luaOnly(scriptedEval), Listeners: []string{l.Addr().String()}}); err != nil {
		t.Fatal(err)
	}
	go srv.ServeOps(l)
	defer srv.Close()
	c := evalDial(t, l.Addr().String(), false)
	evalWrite(t, c, evalPacket(6, "listed"))
	if got := readEvalReply(t, c)["result"]; got != "listed" {
		t.Errorf("result %q", got)
	}
}

func TestParseEvalTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"0", time.Unix(0, 0), true},
		{"1700000000", time.Unix(1700000000, 0), true},
		{"1700000000.5", time.Unix(1700000000, 500000000), true},
		{"1700000000.000000001", time.Unix(1700000000, 1), true},
		{"", time.Time{}, false},
		{".5", time.Time{}, false},
		{"1.", time.Time{}, false},
		{"1e9", time.Time{}, false},
		{"+1", time.Time{}, false},
		{" 1", time.Time{}, false},
		{"1234567890123", time.Time{}, false},
	} {
		got, ok := parseEvalTime(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseEvalTime(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzEvalVerify feeds arbitrary payloads to the signed-block check: it
// must never panic, and accept only what the key signed.
func FuzzEvalVerify(f *testing.F) {
	key := []byte("0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	good, _ := uwsgi.AppendEvalRequest(nil, uwsgi.ModLua, "return 1", key, now)
	f.Add(good[uwsgi.HeaderSize:], uint8(6))
	f.Add([]byte("return 1"), uint8(6))
	f.Add([]byte{3, 0, 's', 'i', 'g', 0, 0}, uint8(24))
	f.Fuzz(func(t *testing.T, payload []byte, m2 uint8) {
		h := &evalHandler{cfg: EvalConfig{Key: key, Window: time.Minute}, replay: newReplayGuard(4), now: func() time.Time { return now }}
		code, fail := h.verify(payload, m2)
		if fail != nil {
			return
		}
		vs, err := uwsgi.ParseVars(nil, payload, 0)
		if err != nil {
			t.Fatalf("accepted a payload that is not a vars block: %q", payload)
		}
		if want := uwsgi.EvalSignature(key, vs.Get("ts"), uwsgi.Modifier(m2), string(code)); vs.Get("sig") != want {
			t.Fatalf("accepted a bad signature: %q", payload)
		}
	})
}
