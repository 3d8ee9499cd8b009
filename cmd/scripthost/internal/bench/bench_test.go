package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// fakeUWSGI is a tiny uwsgi server for the bench tests: RPC hello, echo,
// big and wrong (framed or raw), ping, the extension hello, and HTTP-style
// requests (GET /hello, POST /echo, anything else 404). In "uwsgi" flavour
// it behaves like uWSGI 2.0: it closes after every answer and answers the
// hello like a ping; in "ext" flavour it accepts the hello and keeps the
// connection open after framed answers, like scripthost.
type fakeUWSGI struct {
	addr     string
	extended bool
	l        net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startFake(t *testing.T, network string, extended bool) *fakeUWSGI {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "fake.sock")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUWSGI{extended: extended, l: l, conns: map[net.Conn]struct{}{}}
	f.addr = l.Addr().String()
	if network == "unix" {
		f.addr = "unix:" + addr
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer func() {
					f.mu.Lock()
					delete(f.conns, c)
					f.mu.Unlock()
					c.Close()
				}()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeUWSGI) serve(c net.Conn) {
	br := bufio.NewReader(c)
	ext := false
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		p, err := uwsgi.ReadPacket(br, nil, uwsgi.MaxSize)
		if err != nil {
			return
		}
		var out []byte
		keep := false
		switch p.Modifier1 {
		case uwsgi.ModPing:
			if f.extended && uwsgi.IsHello(p) {
				ext = true
				out = uwsgi.AppendHelloReply(nil)
			} else {
				out, _ = uwsgi.AppendPacket(nil, uwsgi.ModPing, uwsgi.PingPong, nil)
			}
			keep = true
		case uwsgi.ModRPC:
			items, err := uwsgi.ParseArray(nil, p.Payload, 0)
			if err != nil || len(items) == 0 {
				return
			}
			var result []byte
			switch string(items[0]) {
			case "hello":
				result = []byte("Hello World")
			case "echo":
				result = bytes.Join(items[1:], []byte(" "))
			case "big":
				n, _ := strconv.Atoi(string(items[1]))
				result = bytes.Repeat([]byte("x"), n)
			case "wrong":
				result = []byte("Hello Wrld")
			default:
				return // unknown function: close without a byte, like uWSGI
			}
			if p.Modifier2 == uwsgi.RPCRaw {
				out = result
			} else {
				out = append(uwsgi.AppendRPCHeader(nil, len(result)), result...)
				keep = true
			}
		case uwsgi.ModLua:
			vs, err := uwsgi.ParseVars(nil, p.Payload, 0)
			if err != nil {
				return
			}
			body := make([]byte, uwsgi.ParseContentLength([]byte(vs.Get("CONTENT_LENGTH"))))
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			status, answer := "404 Not Found", []byte("Not Found")
			switch vs.Get("PATH_INFO") {
			case "/hello":
				status, answer = "200 OK", []byte("Hello World")
			case "/echo":
				status, answer = "200 OK", body
			case "/header":
				status, answer = "200 OK", []byte(vs.Get("HTTP_X_TEST"))
			}
			out = []byte("HTTP/1.1 " + status + "\r\nContent-Type: text/plain\r\nContent-Length: " +
				strconv.Itoa(len(answer)) + "\r\n\r\n")
			out = append(out, answer...)
		default:
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		if !keep || !ext {
			return
		}
	}
}

// benchJSON runs Main with --json and decodes its line.
func benchJSON(t *testing.T, args ...string) (map[string]any, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), append([]string{"--json"}, args...), &stdout, &stderr)
	var res map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON line: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return res, code
}

func num(t *testing.T, res map[string]any, key string) float64 {
	t.Helper()
	v, ok := res[key].(float64)
	if !ok {
		t.Fatalf("JSON has no number %q: %v", key, res)
	}
	return v
}

func TestBenchModes(t *testing.T) {
	plain := startFake(t, "tcp", false)
	ext := startFake(t, "tcp", true)
	unix := startFake(t, "unix", true)
	const n = 200
	tests := []struct {
		name       string
		srv        *fakeUWSGI
		args       []string
		extended   bool // the server accepted the hello
		reconnects bool // reconnects expected (> 0) or none
		bodyBytes  int  // per request
	}{
		{"rpc hello oneshot", plain, []string{"--expect", "Hello World"}, false, false, 11},
		{"rpc hello keepalive uwsgi-like", plain, []string{"--keepalive", "--expect", "Hello World"}, false, true, 11},
		{"rpc hello keepalive extended", ext, []string{"--keepalive", "--expect", "Hello World"}, true, false, 11},
		{"rpc hello oneshot extended server", ext, []string{"--expect", "Hello World"}, false, false, 11},
		{"rpc echo args", ext, []string{"--keepalive", "--func", "echo", "--args", "a,b,c", "--expect", "a b c"}, true, false, 5},
		{"rpc big large framing", plain, []string{"--func", "big", "--args", "70000", "--expect-len", "70000", "--expect-fill", "x"}, false, false, 70000},
		{"rpc big keepalive", ext, []string{"--keepalive", "--func", "big", "--args", "70000", "--expect-len", "70000", "--expect-fill", "x"}, true, false, 70000},
		{"rpc raw", plain, []string{"--raw", "--expect", "Hello World"}, false, false, 11},
		{"rpc raw keepalive", ext, []string{"--raw", "--keepalive", "--expect", "Hello World"}, true, true, 11},
		{"ping oneshot", plain, []string{"--mode", "ping"}, false, false, 0},
		{"ping keepalive uwsgi-like", plain, []string{"--mode", "ping", "--keepalive"}, false, true, 0},
		{"ping keepalive extended", ext, []string{"--mode", "ping", "--keepalive"}, true, false, 0},
		{"request hello", plain, []string{"--mode", "request", "--uri", "/hello", "--expect", "Hello World"}, false, false, 11},
		{"request hello keepalive", ext, []string{"--mode", "request", "--keepalive", "--uri", "/hello", "--expect", "Hello World"}, true, true, 11},
		{"request post echo", plain, []string{"--mode", "request", "--method", "POST", "--uri", "/echo", "--body", "some body", "--expect", "some body"}, false, false, 9},
		{"request header", plain, []string{"--mode", "request", "--uri", "/header", "--header", "X-Test: yes", "--expect", "yes"}, false, false, 3},
		{"request 404", plain, []string{"--mode", "request", "--uri", "/nope", "--expect-status", "404", "--expect", "Not Found"}, false, false, 9},
		{"unix socket keepalive", unix, []string{"--keepalive", "--expect", "Hello World"}, true, false, 11},
		{"warmup", plain, []string{"--warmup", "50", "--expect", "Hello World"}, false, false, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-n", strconv.Itoa(n), "-c", "4"}, tc.args...)
			res, code := benchJSON(t, append(args, tc.srv.addr)...)
			if code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
			if got := num(t, res, "ok"); got != n || num(t, res, "errors") != 0 || num(t, res, "requests") != n {
				t.Fatalf("ok %v errors %v requests %v, want %d/0/%d; first error %q", got, res["errors"], res["requests"], n, n, res["first_error"])
			}
			if got := res["extended"].(bool); got != tc.extended {
				t.Errorf("extended = %v, want %v", got, tc.extended)
			}
			if got := num(t, res, "reconnects"); (got > 0) != tc.reconnects {
				t.Errorf("reconnects = %v, want > 0: %v", got, tc.reconnects)
			}
			if got := num(t, res, "body_bytes"); got != float64(n*tc.bodyBytes) {
				t.Errorf("body_bytes = %v, want %d", got, n*tc.bodyBytes)
			}
			p50, p90, p99, mx := num(t, res, "p50_us"), num(t, res, "p90_us"), num(t, res, "p99_us"), num(t, res, "max_us")
			if !(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= mx) {
				t.Errorf("percentiles not ordered: p50 %v p90 %v p99 %v max %v", p50, p90, p99, mx)
			}
			if num(t, res, "rps") <= 0 || num(t, res, "seconds") <= 0 || num(t, res, "mean_us") <= 0 {
				t.Errorf("rps/seconds/mean_us not positive: %v", res)
			}
		})
	}
}

func TestBenchErrors(t *testing.T) {
	plain := startFake(t, "tcp", false)
	ext := startFake(t, "tcp", true)
	// A port with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	tests := []struct {
		name string
		args []string
		kind string
		ok   bool // some requests succeed
	}{
		{"wrong result", []string{"--func", "wrong", "--expect", "Hello World", plain.addr}, "mismatch", false},
		{"wrong length", []string{"--expect-len", "3", plain.addr}, "mismatch", false},
		{"wrong fill", []string{"--expect-fill", "x", plain.addr}, "mismatch", false},
		{"wrong status", []string{"--mode", "request", "--uri", "/nope", plain.addr}, "mismatch", false},
		{"wrong body", []string{"--mode", "request", "--uri", "/hello", "--expect", "Hello", "--keepalive", ext.addr}, "mismatch", false},
		{"unknown function", []string{"--func", "nope", plain.addr}, "no_response", false},
		{"unknown function keepalive", []string{"--func", "nope", "--keepalive", ext.addr}, "no_response", false},
		{"ping message", []string{"--mode", "ping", "--expect", "warning", plain.addr}, "mismatch", false},
		{"nothing listening", []string{closed}, "dial", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, code := benchJSON(t, append([]string{"-n", "20", "-c", "2"}, tc.args...)...)
			if code != 1 {
				t.Errorf("exit status %d, want 1 (nothing succeeded)", code)
			}
			if num(t, res, "ok") != 0 || num(t, res, "errors") != 20 {
				t.Fatalf("ok %v errors %v, want 0/20", res["ok"], res["errors"])
			}
			kinds, _ := res["error_kinds"].(map[string]any)
			if kinds[tc.kind] != float64(20) {
				t.Errorf("error_kinds = %v, want %s: 20", kinds, tc.kind)
			}
			if fe, _ := res["first_error"].(string); !strings.HasPrefix(fe, tc.kind+": ") {
				t.Errorf("first_error = %q, want it to start with %q", fe, tc.kind)
			}
		})
	}
}

func TestBenchStrict(t *testing.T) {
	plain := startFake(t, "tcp", false)
	// A clean run exits 0 with --strict, a failing one 1.
	_, code := benchJSON(t, "-n", "10", "-c", "1", "--strict", "--expect", "Hello World", plain.addr)
	if code != 0 {
		t.Errorf("clean run with --strict: exit %d, want 0", code)
	}
	_, code = benchJSON(t, "-n", "10", "-c", "1", "--strict", "--func", "nope", plain.addr)
	if code != 1 {
		t.Errorf("failing run with --strict: exit %d, want 1", code)
	}
}

func TestBenchDurationAndTable(t *testing.T) {
	ext := startFake(t, "tcp", true)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Main(context.Background(), []string{"-d", "300ms", "-c", "3", "--keepalive", "--expect", "Hello World", ext.addr}, &stdout, &stderr)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("a 300ms run took %v", took)
	}
	out := stdout.String()
	for _, want := range []string{"rpc hello() -> " + ext.addr, "requests", "req/s", "p50", "p99", "client CPU", "keep-alive (scripthost extension)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "errors    ") {
		t.Errorf("table shows an errors line for a clean run:\n%s", out)
	}
}

func TestBenchJSONKeys(t *testing.T) {
	plain := startFake(t, "tcp", false)
	res, _ := benchJSON(t, "-n", "5", "-c", "1", "--label", "x/y", plain.addr)
	for _, k := range []string{"requests", "ok", "errors", "error_kinds", "first_error", "reconnects", "seconds",
		"rps", "p50_us", "p90_us", "p99_us", "max_us", "mean_us", "client_cpu_s", "client_cpu_pct", "mode", "addr", "c"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q: %v", k, res)
		}
	}
	if res["label"] != "x/y" || res["mode"] != "rpc" || res["c"] != float64(1) {
		t.Errorf("label/mode/c = %v/%v/%v", res["label"], res["mode"], res["c"])
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout for --help, else in stderr
	}{
		{"help", []string{"--help"}, 0, "Examples:"},
		{"no address", []string{"-n", "1"}, 2, "exactly one ADDR"},
		{"two addresses", []string{"127.0.0.1:1", "127.0.0.1:2"}, 2, "exactly one ADDR"},
		{"remote refused", []string{"10.1.2.3:3031"}, 2, "--allow-remote"},
		{"remote name refused", []string{"example.com:3031"}, 2, "not a loopback"},
		{"bad mode", []string{"--mode", "x", "127.0.0.1:1"}, 2, "unknown --mode"},
		{"bad c", []string{"-c", "0", "127.0.0.1:1"}, 2, "-c must be"},
		{"too long", []string{"-d", "11m", "127.0.0.1:1"}, 2, "-d must be"},
		{"bad fill", []string{"--expect-fill", "xy", "127.0.0.1:1"}, 2, "one byte"},
		{"bad header", []string{"--mode", "request", "--header", "nocolon", "127.0.0.1:1"}, 2, "want K:V"},
		{"empty arg", []string{"--args", "a,,b", "127.0.0.1:1"}, 2, "empty array item"},
		{"unknown flag", []string{"--nope", "127.0.0.1:1"}, 2, "--help"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			out := stderr.String()
			if tc.code == 0 {
				out = stdout.String()
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestBenchFlagsAfterAddr(t *testing.T) {
	plain := startFake(t, "tcp", false)
	res, code := benchJSON(t, plain.addr, "-n", "7", "-c", "1", "--expect", "Hello World")
	if code != 0 || num(t, res, "ok") != 7 {
		t.Errorf("exit %d ok %v, want 0 and 7", code, res["ok"])
	}
}

func TestBenchHistogram(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	var vals []int64
	for range 100000 {
		v := int64(r.ExpFloat64()*2e6) + 1000 // ns, around 2 ms
		vals = append(vals, v)
		h.add(v)
	}
	vals = append(vals, 7)
	h.add(7) // exact below 128 ns
	slices.Sort(vals)
	for _, p := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := vals[benchRank(int64(len(vals)), p)]
		got := h.quantile(p)
		if d := float64(got-exact) / float64(exact); d > 0.02 || d < -0.02 {
			t.Errorf("p%v: histogram %d, exact %d (%.2f%% off)", p*100, got, exact, d*100)
		}
	}
	if h.max != vals[len(vals)-1] {
		t.Errorf("max %d, want %d", h.max, vals[len(vals)-1])
	}
	// Bucket indexes are monotonic and every value lies in its bucket.
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<37 + 12345, 1 << 40} {
		i := benchHistIndex(v)
		if i < prev || i >= benchHistBuckets {
			t.Errorf("index(%d) = %d after %d (buckets %d)", v, i, prev, benchHistBuckets)
		}
		prev = i
	}
}

// The request the bench sends for rpc mode is the codec's RPC packet.
func TestBenchRequestBytes(t *testing.T) {
	cfg := &config{mode: "rpc", fn: "add", args: "2,3"}
	got, err := cfg.buildRequest()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{173, 0, 0, 0}
	for _, s := range []string{"add", "2", "3"} {
		want = binary.LittleEndian.AppendUint16(want, uint16(len(s)))
		want = append(want, s...)
	}
	binary.LittleEndian.PutUint16(want[1:3], uint16(len(want)-4))
	if !bytes.Equal(got, want) {
		t.Errorf("request % x, want % x", got, want)
	}
}

// On a kept connection a request costs no allocation in the client: the
// server here answers from fixed buffers so that only the client counts.
func TestBenchKeepaliveAllocs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hello := uwsgi.AppendHelloReply(nil)
		reply := append(uwsgi.AppendRPCHeader(nil, 11), "Hello World"...)
		buf := make([]byte, 4096)
		for {
			if _, err := io.ReadFull(c, buf[:4]); err != nil {
				return
			}
			h, _ := uwsgi.ParseHeader(buf[:4])
			if _, err := io.ReadFull(c, buf[:h.Size]); err != nil {
				return
			}
			out := reply
			if h.Modifier1 == uwsgi.ModPing {
				out = hello
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}()
	cfg := &config{mode: "rpc", fn: "hello", keepalive: true, timeout: 5 * time.Second,
		expect: "Hello World", expectSet: true, expectLen: -1, maxBody: 1 << 20}
	cfg.network, cfg.address = "tcp", l.Addr().String()
	req, err := cfg.buildRequest()
	if err != nil {
		t.Fatal(err)
	}
	sh := &shared{cfg: cfg, req: req, hello: append(uwsgi.AppendHello(nil), req...)}
	w := &worker{sh: sh, br: bufio.NewReaderSize(nil, 64<<10), sampleCap: 1 << 16}
	defer w.closeConn()
	if err := w.do(); err != nil { // connects and negotiates
		t.Fatal(err)
	}
	var failed error
	allocs := testing.AllocsPerRun(2000, func() {
		if err := w.do(); err != nil && failed == nil {
			failed = err
		}
		w.record(nil, time.Millisecond)
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if sh.server.Load() != serverExtended || w.reconnects != 0 {
		t.Fatalf("server kind %d, reconnects %d: want extended, 0", sh.server.Load(), w.reconnects)
	}
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per kept-alive request, want 0", allocs)
	}
}
