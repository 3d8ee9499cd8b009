// Package bench is the "scripthost bench" command: a load generator for
// uwsgi-protocol servers (scripthost, uWSGI, anything speaking the wire
// format), in the spirit of redis-benchmark. One goroutine per connection
// sends a request, reads and checks the whole answer, and records the
// latency; buffers are reused so that the client costs as little CPU as
// possible (it usually shares the machine with the server it measures).
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

const benchUsage = `Usage: scripthost bench [flags] ADDR

Load-test a uwsgi-protocol server (scripthost, uWSGI, ...) and report
throughput, latency percentiles, errors and the client's own CPU use.
Every answer is read in full and checked (framing, modifier, result, HTTP
status and body); failures are counted by kind: mismatch, no_response
(closed before any byte), timeout, dial, io.

ADDR is host:port (loopback only unless --allow-remote) or a unix socket:
unix:/path, a path with a slash (/path, ./x, ../x.sock), x.sock, @abstract.

Modes:
  rpc       RPC call (modifier1 173): --func, --args; --raw asks for the raw
            result (modifier2 1, the server closes after it)
  request   HTTP-style request (vars + body, --modifier1, default 6 = Lua
            WSAPI), answered with a raw HTTP response
  ping      ping (modifier1 100), answered [100, n, 1]
  spool     spool job (modifier1 17): --args key=value pairs, comma
            separated (default task=bench), answered [255, 0, 1] once the
            job is stored durably; measures acknowledged jobs per second

Connections: by default one new connection per request (what uWSGI does
anyway). --keepalive reuses connections: each new one starts with the
scripthost extension hello; a server that accepts it keeps the connection
open. When the server closes after every answer (uWSGI), the client
reconnects and counts "reconnects", not errors.

Examples:
  scripthost bench 127.0.0.1:3031                          # rpc hello, c=32, 5 s
  scripthost bench --func add --args 2,3 --expect 5 -c 8 -d 10s 127.0.0.1:3031
  scripthost bench --keepalive --expect "Hello World" -n 100000 unix:/run/app.sock
  scripthost bench --func big --args 1048576 --expect-len 1048576 --expect-fill x -c 4 127.0.0.1:3031
  scripthost bench --mode request --uri /hello --expect "Hello World" 127.0.0.1:3031
  scripthost bench --mode request --method POST --uri /echo --body hi --expect hi \
      --header Content-Type:text/plain 127.0.0.1:3031
  scripthost bench --mode ping -c 1 -d 2s --json 127.0.0.1:3031

Exit status: 0, or 1 when no request succeeded (or, with --strict, when any
failed), 2 for bad usage.

Flags:
`

// Bounds of the flags.
const (
	benchMaxConns    = 10000
	benchMaxDuration = 10 * time.Minute
	benchNCap        = time.Minute // default time cap of -n runs
	benchMaxWarmup   = 1_000_000
	benchMaxSamples  = 4 << 20 // exact latency samples kept over all connections
	benchErrorPause  = time.Millisecond
)

// headerFlag collects the repeatable --header flag.
type headerFlag []string

func (l *headerFlag) String() string     { return strings.Join(*l, ",") }
func (l *headerFlag) Set(v string) error { *l = append(*l, v); return nil }

type config struct {
	addr             string
	network, address string

	mode      string
	fn        string
	args      string
	raw       bool
	modifier1 int
	method    string
	uri       string
	body      string
	host      string
	headers   headerFlag

	conns     int
	dur       time.Duration
	n         int64
	keepalive bool
	timeout   time.Duration
	warmup    int

	expect       string
	expectSet    bool
	expectLen    int
	expectFill   string
	expectStatus int
	maxBody      int64

	json        bool
	strict      bool
	allowRemote bool
	label       string
}

func benchFlags() (*flag.FlagSet, *config) {
	cfg := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {} // errors print one line; --help is handled by Main
	fs.StringVar(&cfg.mode, "mode", "rpc", "rpc, request, ping or spool")
	fs.StringVar(&cfg.fn, "func", "hello", "rpc: function name")
	fs.StringVar(&cfg.args, "args", "", "rpc: arguments, comma separated (a,b,c); spool: the job's key=value pairs (default task=bench)")
	fs.BoolVar(&cfg.raw, "raw", false, "rpc: ask for the raw result (modifier2 1; the server closes after it)")
	fs.IntVar(&cfg.modifier1, "modifier1", int(uwsgi.ModLua), "request: modifier1 (0 WSGI, 6 Lua WSAPI, ...)")
	fs.StringVar(&cfg.method, "method", "GET", "request: HTTP method")
	fs.StringVar(&cfg.uri, "uri", "/hello", "request: request URI (path and query)")
	fs.StringVar(&cfg.body, "body", "", "request: body (CONTENT_LENGTH is set from it)")
	fs.StringVar(&cfg.host, "host", "localhost", "request: Host header (HTTP_HOST, SERVER_NAME)")
	fs.Var(&cfg.headers, "header", "request: extra header `K:V` (repeatable), sent as HTTP_K")
	fs.IntVar(&cfg.conns, "c", 32, "concurrent connections (one goroutine each)")
	fs.DurationVar(&cfg.dur, "d", 5*time.Second, "duration, at most 10m; with -n it is the time cap, 1m unless given")
	fs.Int64Var(&cfg.n, "n", 0, "total requests (0: run for -d)")
	fs.BoolVar(&cfg.keepalive, "keepalive", false, "reuse connections (extension hello; reconnects when the server closes)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "deadline of each request (dial, write, read), at most 1m")
	fs.IntVar(&cfg.warmup, "warmup", 0, "requests sent before measuring, not counted")
	fs.StringVar(&cfg.expect, "expect", "", "expected RPC result, HTTP body or ping message (exact)")
	fs.IntVar(&cfg.expectLen, "expect-len", -1, "expected length of the result or body (-1: unchecked)")
	fs.StringVar(&cfg.expectFill, "expect-fill", "", "one byte every byte of the result or body must equal")
	fs.IntVar(&cfg.expectStatus, "expect-status", 200, "request: expected HTTP status (0: unchecked)")
	fs.Int64Var(&cfg.maxBody, "max-body", 1<<30, "largest result or body accepted, bytes")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON line instead of the table")
	fs.BoolVar(&cfg.strict, "strict", false, "exit 1 when any request failed")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a TCP target that is not loopback")
	fs.StringVar(&cfg.label, "label", "", "label copied into the JSON output")
	return fs, cfg
}

// Main runs "scripthost bench" with args (the words after "bench") and
// returns the exit code: 0 when answers were checked and right, 1 when none
// was (or any failed under --strict), 2 for a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfg := benchFlags()
	fs.SetOutput(stderr)
	// Flags may follow ADDR: parse, take one positional argument, repeat.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, benchUsage)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return 0
			}
			fmt.Fprintln(stderr, "Run 'scripthost bench --help' for usage.")
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "scripthost bench: want exactly one ADDR, got %d arguments\nRun 'scripthost bench --help' for usage.\n", len(pos))
		return 2
	}
	cfg.addr = pos[0]
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.expectSet = set["expect"]
	if cfg.n > 0 && !set["d"] {
		cfg.dur = benchNCap
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "scripthost bench: %v\n", err)
		return 2
	}
	req, err := cfg.buildRequest()
	if err != nil {
		fmt.Fprintf(stderr, "scripthost bench: %v\n", err)
		return 2
	}
	res := runBench(ctx, cfg, req)
	if cfg.json {
		b, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		res.writeTable(stdout, cfg)
	}
	if res.OK == 0 || (cfg.strict && res.Errors > 0) {
		return 1
	}
	return 0
}

func (cfg *config) validate() error {
	switch cfg.mode {
	case "rpc", "request", "ping", "spool":
	default:
		return fmt.Errorf("unknown --mode %q (rpc, request, ping or spool)", cfg.mode)
	}
	switch {
	case cfg.conns < 1 || cfg.conns > benchMaxConns:
		return fmt.Errorf("-c must be 1..%d", benchMaxConns)
	case cfg.n < 0:
		return errors.New("-n must not be negative")
	case cfg.dur <= 0 || cfg.dur > benchMaxDuration:
		return fmt.Errorf("-d must be in (0, %v]", benchMaxDuration)
	case cfg.timeout <= 0 || cfg.timeout > time.Minute:
		return errors.New("--timeout must be in (0, 1m]")
	case cfg.warmup < 0 || cfg.warmup > benchMaxWarmup:
		return fmt.Errorf("--warmup must be 0..%d", benchMaxWarmup)
	case cfg.modifier1 < 0 || cfg.modifier1 > 255:
		return errors.New("--modifier1 must be 0..255")
	case len(cfg.expectFill) > 1:
		return errors.New("--expect-fill takes one byte")
	case cfg.expectStatus < 0 || cfg.expectStatus > 999:
		return errors.New("--expect-status must be 0..999")
	case cfg.maxBody <= 0:
		return errors.New("--max-body must be positive")
	}
	var err error
	if cfg.network, cfg.address, err = uwsgi.SplitAddr(cfg.addr); err != nil {
		return err
	}
	if cfg.network == "tcp" && !cfg.allowRemote {
		h, _, err := net.SplitHostPort(cfg.address)
		if err != nil {
			return fmt.Errorf("address %q: %v", cfg.addr, err)
		}
		if !benchIsLoopback(h) {
			return fmt.Errorf("%q is not a loopback address (use --allow-remote to load-test another host)", cfg.addr)
		}
	}
	return nil
}

func benchIsLoopback(h string) bool {
	if h == "" || strings.EqualFold(h, "localhost") {
		return true // "" dials the local system
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// buildRequest encodes the one request every connection sends.
func (cfg *config) buildRequest() ([]byte, error) {
	switch cfg.mode {
	case "ping":
		return uwsgi.AppendPacket(nil, uwsgi.ModPing, uwsgi.PingRequest, nil)
	case "spool":
		pairs := cfg.args
		if pairs == "" {
			pairs = "task=bench"
		}
		var vars uwsgi.Vars
		for _, kv := range strings.Split(pairs, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--args %q: want key=value pairs", kv)
			}
			vars = vars.Add(k, v)
		}
		block, err := vars.Append(nil)
		if err != nil {
			return nil, err
		}
		return uwsgi.AppendPacket(nil, uwsgi.ModSpooler, 0, block)
	case "rpc":
		var args []string
		if cfg.args != "" {
			args = strings.Split(cfg.args, ",")
		}
		m2 := uwsgi.RPCFramed
		if cfg.raw {
			m2 = uwsgi.RPCRaw
		}
		return uwsgi.AppendRPCRequest(nil, m2, cfg.fn, args...)
	}
	u, err := url.ParseRequestURI(cfg.uri)
	if err != nil {
		return nil, fmt.Errorf("--uri %q: %v", cfg.uri, err)
	}
	hdr := http.Header{}
	for _, kv := range cfg.headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--header %q: want K:V", kv)
		}
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	r := &http.Request{
		Method:     cfg.method,
		URL:        u,
		RequestURI: cfg.uri,
		Proto:      "HTTP/1.1",
		Header:     hdr,
		Host:       cfg.host,
		RemoteAddr: "127.0.0.1:0",
	}
	return uwsgi.BuildRequest(uwsgi.Modifier(cfg.modifier1), 0, r, nil, []byte(cfg.body))
}

// ---------------------------------------------------------------- errors

// Error kinds, in the order they are reported.
const (
	kindMismatch = iota
	kindNoResponse
	kindTimeout
	kindDial
	kindIO
	numKinds
)

var benchKindNames = [numKinds]string{"mismatch", "no_response", "timeout", "dial", "io"}

type benchMismatch struct{ msg string }

func (e *benchMismatch) Error() string { return e.msg }

func benchMismatchf(format string, a ...any) error { return &benchMismatch{fmt.Sprintf(format, a...)} }

type benchDialError struct{ err error }

func (e *benchDialError) Error() string { return e.err.Error() }
func (e *benchDialError) Unwrap() error { return e.err }

var (
	// errNoReply: the connection ended before the first byte of the answer.
	errNoReply = errors.New("connection closed before any byte of the answer")
	// errMarked: a kept connection answered with the close mark, so the
	// request was not processed and goes again on a new connection.
	errMarked = errors.New("close mark")
)

func benchErrorKind(err error) int {
	var me *benchMismatch
	var de *benchDialError
	var ne net.Error
	switch {
	case errors.As(err, &me):
		return kindMismatch
	case errors.As(err, &de):
		return kindDial // refused, or no connection within --timeout
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case errors.Is(err, errNoReply):
		return kindNoResponse
	}
	return kindIO
}

func benchIsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ---------------------------------------------------------------- latency

// histogram is a log-linear latency histogram over nanoseconds: exact below
// 128 ns, then 64 buckets per power of two (at most 1.6 % wide).
type histogram struct {
	counts [benchHistBuckets]uint32
	n      int64
	sum    int64
	max    int64
}

const (
	benchHistSubBits = 6
	benchHistSub     = 1 << benchHistSubBits
	benchHistMaxExp  = 38 // values are clamped below 2^38 ns (about 275 s)
	benchHistBuckets = (benchHistMaxExp - benchHistSubBits + 1) * benchHistSub
)

func benchHistIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	if v >= 1<<benchHistMaxExp {
		v = 1<<benchHistMaxExp - 1
	}
	if v < 2*benchHistSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - benchHistSubBits - 1
	return e*benchHistSub + int(v>>e)
}

// histValue returns the middle of bucket i.
func benchHistValue(i int) int64 {
	if i < 2*benchHistSub {
		return int64(i)
	}
	e := i/benchHistSub - 1
	low := int64(i-e*benchHistSub) << e
	return low + (int64(1)<<e)/2
}

func (h *histogram) add(v int64) {
	h.counts[benchHistIndex(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile uses the nearest-rank method, reporting the bucket's middle
// (never above the maximum seen).
func (h *histogram) quantile(p float64) int64 {
	rank := benchRank(h.n, p)
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen > rank {
			return min(benchHistValue(i), h.max)
		}
	}
	return h.max
}

// nearestRank returns the 0-based index of the p quantile of n values.
func benchRank(n int64, p float64) int64 {
	r := int64(math.Ceil(p*float64(n))) - 1
	return max(0, min(r, n-1))
}

// ---------------------------------------------------------------- workers

// Server kinds learnt from the extension hello (shared by all workers).
const (
	serverUnknown  int32 = iota
	serverPlain          // no extension: uWSGI and alike
	serverExtended       // scripthost: answered the hello
)

type shared struct {
	cfg    *config
	req    []byte // the request
	hello  []byte // the extension hello followed by the request
	fill   []byte // --expect-fill as a byte slice
	dialer net.Dialer
	server atomic.Int32
	// closes is set once the server turned out to close connections after
	// its answers: then, with --keepalive, every answer is followed by a
	// reconnect instead of a request that would find the connection gone.
	closes atomic.Bool
}

type worker struct {
	sh   *shared
	conn net.Conn
	br   *bufio.Reader
	buf  []byte // answers, reused

	reused       bool // conn already carried an answer
	reusable     bool // the last answer left conn usable
	helloPending bool // send the hello in front of the next request
	redial       bool // the next dial replaces a connection the server closes

	ok, errs, reconnects, bodyBytes int64
	kinds                           [numKinds]int64
	firstErr                        error
	hist                            histogram
	samples                         []int64
	sampleCap                       int
	overflow                        bool
}

func (w *worker) reset() {
	w.ok, w.errs, w.reconnects, w.bodyBytes = 0, 0, 0, 0
	w.kinds = [numKinds]int64{}
	w.firstErr = nil
	w.hist = histogram{}
	w.samples = w.samples[:0]
	w.overflow = false
}

func (w *worker) closeConn() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

func (w *worker) dial() error {
	c, err := w.sh.dialer.Dial(w.sh.cfg.network, w.sh.cfg.address)
	if err != nil {
		return &benchDialError{err}
	}
	w.conn = c
	w.br.Reset(c)
	w.reused = false
	return nil
}

// connect opens a connection; with --keepalive it negotiates the extension
// the first time, and later sends the hello in front of the first request.
func (w *worker) connect() error {
	if err := w.dial(); err != nil {
		return err
	}
	if w.redial {
		w.redial = false
		w.reconnects++
	}
	if !w.sh.cfg.keepalive {
		return nil
	}
	switch w.sh.server.Load() {
	case serverExtended:
		w.helloPending = true
		return nil
	case serverPlain:
		return nil
	}
	ext, err := w.negotiate()
	if err != nil {
		w.closeConn()
		return err
	}
	if ext {
		w.sh.server.Store(serverExtended)
		return nil
	}
	// A plain server answers the hello as a ping and closes: the request
	// goes on a new connection, without the hello from now on.
	w.sh.server.Store(serverPlain)
	w.closeConn()
	return w.dial()
}

// negotiate sends the hello alone and reports whether the server accepted it.
func (w *worker) negotiate() (bool, error) {
	w.conn.SetDeadline(time.Now().Add(w.sh.cfg.timeout))
	hello := w.sh.hello[:len(w.sh.hello)-len(w.sh.req)]
	if _, err := w.conn.Write(hello); err != nil {
		return false, err
	}
	return w.readPong()
}

// readPong reads the answer to the hello: true for the extension's pong.
func (w *worker) readPong() (bool, error) {
	h, err := w.readHeader(true)
	if err != nil {
		return false, err
	}
	if h.Modifier1 != uwsgi.ModPing {
		return false, benchMismatchf("answer to the extension hello: modifier1 %v, want ping(100)", h.Modifier1)
	}
	msg, err := w.readN(int64(h.Size))
	if err != nil {
		return false, err
	}
	return h.Modifier2 == uwsgi.PingExt && string(msg) == uwsgi.ExtHello, nil
}

// do performs one request: on a kept connection that turns out closed (or
// answers with a close mark) it goes again, once, on a new connection.
func (w *worker) do() error {
	for attempt := 0; ; attempt++ {
		fresh := w.conn == nil
		if fresh {
			if err := w.connect(); err != nil {
				return err
			}
		}
		err := w.roundTrip()
		if err == nil {
			w.reused = true
			if !w.sh.cfg.keepalive {
				w.closeConn()
			} else if !w.reusable || w.sh.closes.Load() {
				w.closeConn()
				w.redial = true
			}
			return nil
		}
		w.closeConn()
		w.helloPending = false
		if attempt == 0 && !fresh && (err == errNoReply || err == errMarked) {
			if err == errNoReply {
				w.sh.closes.Store(true)
			}
			w.reconnects++
			continue
		}
		return err
	}
}

func (w *worker) roundTrip() error {
	cfg := w.sh.cfg
	w.reusable = false
	if err := w.conn.SetDeadline(time.Now().Add(cfg.timeout)); err != nil {
		return err
	}
	out := w.sh.req
	hello := w.helloPending
	if hello {
		out = w.sh.hello
		w.helloPending = false
	}
	if _, err := w.conn.Write(out); err != nil {
		if benchIsReset(err) {
			return errNoReply
		}
		return err
	}
	if hello {
		ext, err := w.readPong()
		if err != nil {
			return err
		}
		if !ext {
			return benchMismatchf("the server no longer accepts the extension hello")
		}
	}
	switch {
	case cfg.mode == "ping":
		return w.readPing()
	case cfg.mode == "spool":
		return w.readAck()
	case cfg.mode == "rpc" && cfg.raw:
		body, err := w.readToEOF(true)
		if err != nil {
			return err
		}
		return w.check(body)
	case cfg.mode == "rpc":
		return w.readRPC()
	}
	return w.readHTTP()
}

// readHeader reads a packet header. first: no byte of the answer has been
// read yet, so an end of the connection here is errNoReply.
func (w *worker) readHeader(first bool) (uwsgi.Header, error) {
	b, err := w.br.Peek(uwsgi.HeaderSize)
	if err != nil {
		if first && len(b) == 0 && (err == io.EOF || benchIsReset(err)) {
			return uwsgi.Header{}, errNoReply
		}
		if err == io.EOF {
			err = fmt.Errorf("answer cut after %d bytes: %w", len(b), io.ErrUnexpectedEOF)
		}
		return uwsgi.Header{}, err
	}
	h, _ := uwsgi.ParseHeader(b)
	w.br.Discard(uwsgi.HeaderSize)
	return h, nil
}

// readN reads n bytes into the worker's buffer.
func (w *worker) readN(n int64) ([]byte, error) {
	if n > w.sh.cfg.maxBody {
		return nil, benchMismatchf("answer of %d bytes, more than --max-body %d", n, w.sh.cfg.maxBody)
	}
	if int64(cap(w.buf)) < n {
		w.buf = make([]byte, n)
	}
	b := w.buf[:n]
	if _, err := io.ReadFull(w.br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading %d bytes: %w", n, err)
	}
	return b, nil
}

// readToEOF reads everything until the server closes. first: no byte of
// the answer has been read yet.
func (w *worker) readToEOF(first bool) ([]byte, error) {
	if cap(w.buf) < 4<<10 {
		w.buf = make([]byte, 4<<10)
	}
	b := w.buf[:0]
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, cap(b))
			w.buf = b[:0]
		}
		n, err := w.br.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > w.sh.cfg.maxBody {
			return nil, benchMismatchf("answer of more than --max-body %d bytes", w.sh.cfg.maxBody)
		}
		if err == nil {
			continue
		}
		if err == io.EOF || (benchIsReset(err) && len(b) > 0) {
			if first && len(b) == 0 {
				return nil, errNoReply
			}
			return b, nil
		}
		if first && len(b) == 0 && benchIsReset(err) {
			return nil, errNoReply
		}
		return nil, err
	}
}

func (w *worker) readPing() error {
	h, err := w.readHeader(true)
	if err != nil {
		return err
	}
	if err := w.special(h); err != nil {
		return err
	}
	if h.Modifier1 != uwsgi.ModPing || h.Modifier2 != uwsgi.PingPong {
		return benchMismatchf("ping answer %v, want [ping(100), n, 1]", h)
	}
	msg, err := w.readN(int64(h.Size))
	if err != nil {
		return err
	}
	w.reusable = true
	return w.check(msg)
}

// readAck reads a generic response and wants [255, 0, 1].
func (w *worker) readAck() error {
	h, err := w.readHeader(true)
	if err != nil {
		return err
	}
	if err := w.special(h); err != nil {
		return err
	}
	if h.Modifier1 != uwsgi.ModResponse || h.Modifier2 != uwsgi.ResponseOK || h.Size != 0 {
		return benchMismatchf("answer %v, want [255, 0, 1]", h)
	}
	w.reusable = true
	return nil
}

// special handles the packets that may stand in for any framed answer: the
// close mark of a kept connection and error frames.
func (w *worker) special(h uwsgi.Header) error {
	switch {
	case h.Modifier1 == uwsgi.ModCloseMark && w.reused:
		return errMarked
	case uwsgi.IsErrorFrame(h):
		msg, err := w.readN(int64(h.Size))
		if err != nil {
			return err
		}
		return benchMismatchf("error frame from the server: %v", &uwsgi.RemoteError{Code: uwsgi.Code(h.Modifier2), Message: string(msg)})
	}
	return nil
}

func (w *worker) readRPC() error {
	h, err := w.readHeader(true)
	if err != nil {
		return err
	}
	if err := w.special(h); err != nil {
		return err
	}
	if h.Modifier1 != uwsgi.ModRPC {
		return benchMismatchf("RPC answer %v, want modifier1 rpc(173)", h)
	}
	n := int64(h.Size)
	switch h.Modifier2 {
	case uwsgi.RPCFramed:
	case uwsgi.RPCLarge:
		block, err := w.readN(n)
		if err != nil {
			return err
		}
		var ok bool
		if n, ok = uwsgi.LargeLength(block); !ok {
			return benchMismatchf("RPC answer %v: vars block without a valid CONTENT_LENGTH", h)
		}
	default:
		return benchMismatchf("RPC answer %v: unknown modifier2", h)
	}
	body, err := w.readN(n)
	if err != nil {
		return err
	}
	w.reusable = true
	return w.check(body)
}

// readHTTP reads a raw HTTP/1.x response: by Content-Length on kept
// connections, else until the server closes (and then checks that the
// body is exactly Content-Length bytes when there is one).
func (w *worker) readHTTP() error {
	cfg := w.sh.cfg
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && (err == io.EOF || benchIsReset(err)) {
			return errNoReply
		}
		return fmt.Errorf("reading the status line: %w", err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return benchMismatchf("bad HTTP status line %q", benchClip(line, 64))
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return benchMismatchf("bad HTTP status line %q", benchClip(line, 64))
	}
	cl := int64(-1)
	keep := true
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading HTTP headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return benchMismatchf("bad HTTP header line %q", benchClip(line, 64))
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return benchMismatchf("bad Content-Length %q", benchClip(v, 32))
			}
			cl = n
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.Contains(bytes.ToLower(v), []byte("close")) {
				keep = false
			}
		}
	}
	var body []byte
	if cfg.keepalive && cl >= 0 {
		if body, err = w.readN(cl); err != nil {
			return err
		}
		w.reusable = keep
	} else {
		if body, err = w.readToEOF(false); err != nil {
			return err
		}
		if cl >= 0 && int64(len(body)) != cl {
			return benchMismatchf("HTTP body of %d bytes, Content-Length %d", len(body), cl)
		}
	}
	if cfg.expectStatus != 0 && status != cfg.expectStatus {
		return benchMismatchf("HTTP status %d, want %d", status, cfg.expectStatus)
	}
	return w.check(body)
}

func (w *worker) check(body []byte) error {
	cfg := w.sh.cfg
	w.bodyBytes += int64(len(body))
	if cfg.expectSet && string(body) != cfg.expect {
		return benchMismatchf("got %q, want %q", benchClip(body, 64), benchClip([]byte(cfg.expect), 64))
	}
	if cfg.expectLen >= 0 && len(body) != cfg.expectLen {
		return benchMismatchf("got %d bytes, want %d", len(body), cfg.expectLen)
	}
	if len(w.sh.fill) == 1 && bytes.Count(body, w.sh.fill) != len(body) {
		i := bytes.IndexFunc(body, func(r rune) bool { return r != rune(w.sh.fill[0]) })
		return benchMismatchf("byte %d of %d is not %q", i, len(body), w.sh.fill)
	}
	return nil
}

func benchClip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

func (w *worker) record(err error, dt time.Duration) {
	if err == nil {
		w.ok++
		w.hist.add(int64(dt))
		if len(w.samples) < w.sampleCap {
			w.samples = append(w.samples, int64(dt))
		} else {
			w.overflow = true
		}
		return
	}
	w.errs++
	w.kinds[benchErrorKind(err)]++
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// ---------------------------------------------------------------- run

type report struct {
	Label        string           `json:"label,omitempty"`
	Mode         string           `json:"mode"`
	Addr         string           `json:"addr"`
	Conns        int              `json:"c"`
	Keepalive    bool             `json:"keepalive"`
	Extended     bool             `json:"extended"` // the server accepted the extension hello
	Requests     int64            `json:"requests"`
	OK           int64            `json:"ok"`
	Errors       int64            `json:"errors"`
	ErrorKinds   map[string]int64 `json:"error_kinds"`
	FirstError   string           `json:"first_error"`
	Reconnects   int64            `json:"reconnects"`
	Seconds      float64          `json:"seconds"`
	RPS          float64          `json:"rps"`
	P50us        float64          `json:"p50_us"`
	P90us        float64          `json:"p90_us"`
	P99us        float64          `json:"p99_us"`
	MaxUs        float64          `json:"max_us"`
	MeanUs       float64          `json:"mean_us"`
	BodyBytes    int64            `json:"body_bytes"`
	MiBps        float64          `json:"mib_per_s"`
	ClientCPUs   float64          `json:"client_cpu_s"`
	ClientCPUPct float64          `json:"client_cpu_pct"`
	Exact        bool             `json:"exact_percentiles"`
	Truncated    bool             `json:"truncated,omitempty"` // -n not reached before the time cap
	Interrupted  bool             `json:"interrupted,omitempty"`
}

func runBench(ctx context.Context, cfg *config, req []byte) *report {
	sh := &shared{
		cfg:    cfg,
		req:    req,
		hello:  append(uwsgi.AppendHello(nil), req...),
		dialer: net.Dialer{Timeout: cfg.timeout, KeepAlive: -1},
	}
	if cfg.expectFill != "" {
		sh.fill = []byte(cfg.expectFill)
	}
	workers := make([]*worker, cfg.conns)
	perWorker := max(benchMaxSamples/cfg.conns, 64)
	bufSize := 16 << 10 // large results bypass it; HTTP header lines must fit
	if cfg.conns > 1000 {
		bufSize = 4 << 10
	}
	for i := range workers {
		w := &worker{sh: sh, br: bufio.NewReaderSize(nil, bufSize), sampleCap: perWorker}
		initial := 4096
		if cfg.n > 0 {
			initial = int(min(cfg.n/int64(cfg.conns)+1, int64(perWorker)))
		}
		w.samples = make([]int64, 0, min(initial, perWorker))
		workers[i] = w
	}

	var wg sync.WaitGroup
	if cfg.warmup > 0 {
		var left atomic.Int64
		left.Store(int64(cfg.warmup))
		until := time.Now().Add(cfg.dur)
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 && ctx.Err() == nil && time.Now().Before(until) {
					w.do()
				}
			}()
		}
		wg.Wait()
		for _, w := range workers {
			w.reset()
		}
	}

	cpu0 := benchCPUTime()
	start := time.Now()
	deadline := start.Add(cfg.dur)
	var issued atomic.Int64
	var hitDeadline atomic.Bool
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.closeConn()
			t0 := time.Now()
			for ctx.Err() == nil {
				if !t0.Before(deadline) {
					hitDeadline.Store(true)
					return
				}
				if cfg.n > 0 && issued.Add(1) > cfg.n {
					return
				}
				err := w.do()
				t1 := time.Now()
				w.record(err, t1.Sub(t0))
				if err != nil && w.conn == nil {
					// A server that refuses or drops connections would
					// otherwise be hammered in a tight loop.
					time.Sleep(benchErrorPause)
					t1 = time.Now()
				}
				t0 = t1
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := benchCPUTime() - cpu0

	res := &report{
		Label: cfg.label, Mode: cfg.mode, Addr: cfg.addr, Conns: cfg.conns,
		Keepalive: cfg.keepalive, Extended: sh.server.Load() == serverExtended,
		ErrorKinds:  map[string]int64{},
		Seconds:     benchRound(elapsed.Seconds(), 3),
		Truncated:   cfg.n > 0 && hitDeadline.Load() && issued.Load() < cfg.n,
		Interrupted: ctx.Err() != nil,
	}
	var hist histogram
	var samples []int64
	exact := true
	for _, w := range workers {
		res.OK += w.ok
		res.Errors += w.errs
		res.Reconnects += w.reconnects
		res.BodyBytes += w.bodyBytes
		for k, v := range w.kinds {
			if v > 0 {
				res.ErrorKinds[benchKindNames[k]] += v
			}
		}
		if res.FirstError == "" && w.firstErr != nil {
			res.FirstError = benchKindNames[benchErrorKind(w.firstErr)] + ": " + w.firstErr.Error()
		}
		hist.merge(&w.hist)
		exact = exact && !w.overflow
	}
	res.Exact = exact
	if exact {
		samples = make([]int64, 0, hist.n)
		for _, w := range workers {
			samples = append(samples, w.samples...)
		}
		slices.Sort(samples)
	}
	res.Requests = res.OK + res.Errors
	if sec := elapsed.Seconds(); sec > 0 {
		res.RPS = benchRound(float64(res.OK)/sec, 1)
		res.MiBps = benchRound(float64(res.BodyBytes)/sec/(1<<20), 2)
		res.ClientCPUPct = benchRound(cpu.Seconds()/sec*100, 1)
	}
	res.ClientCPUs = benchRound(cpu.Seconds(), 3)
	if hist.n > 0 {
		q := hist.quantile
		if exact {
			q = func(p float64) int64 { return samples[benchRank(int64(len(samples)), p)] }
		}
		res.P50us = benchUs(q(0.50))
		res.P90us = benchUs(q(0.90))
		res.P99us = benchUs(q(0.99))
		res.MaxUs = benchUs(hist.max)
		res.MeanUs = benchRound(float64(hist.sum)/float64(hist.n)/1e3, 1)
	}
	return res
}

func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchUs(ns int64) float64 { return benchRound(float64(ns)/1e3, 1) }

func benchRound(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// describe names what was sent, for the table's title.
func (cfg *config) describe() string {
	switch cfg.mode {
	case "ping":
		return "ping"
	case "spool":
		return "spool " + cfg.args
	case "rpc":
		s := "rpc " + cfg.fn + "(" + cfg.args + ")"
		if cfg.raw {
			s += " raw"
		}
		return s
	}
	return fmt.Sprintf("request modifier1 %d %s %s", cfg.modifier1, cfg.method, cfg.uri)
}

func (r *report) writeTable(w io.Writer, cfg *config) {
	conn := "new connection per request"
	if cfg.keepalive {
		switch {
		case r.Extended:
			conn = "keep-alive (scripthost extension)"
		default:
			conn = "keep-alive requested, server without the extension"
		}
	}
	fmt.Fprintf(w, "scripthost bench: %s -> %s\n", cfg.describe(), cfg.addr)
	fmt.Fprintf(w, "  %-14s %d, %s\n", "connections", cfg.conns, conn)
	capped := ""
	if r.Truncated {
		capped = " (time cap reached before -n)"
	}
	fmt.Fprintf(w, "  %-14s %.3f s%s\n", "duration", r.Seconds, capped)
	fmt.Fprintf(w, "  %-14s %d (ok %d, errors %d)\n", "requests", r.Requests, r.OK, r.Errors)
	fmt.Fprintf(w, "  %-14s %.1f req/s, %.2f MiB/s of results\n", "throughput", r.RPS, r.MiBps)
	if cfg.keepalive {
		fmt.Fprintf(w, "  %-14s %d\n", "reconnects", r.Reconnects)
	}
	approx := ""
	if !r.Exact {
		approx = " (histogram, ±1%)"
	}
	fmt.Fprintf(w, "  %-14s p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  mean %.1f%s\n", "latency µs",
		r.P50us, r.P90us, r.P99us, r.MaxUs, r.MeanUs, approx)
	fmt.Fprintf(w, "  %-14s %.2f s (%.1f %% of one core)\n", "client CPU", r.ClientCPUs, r.ClientCPUPct)
	if r.Errors > 0 {
		var parts []string
		for _, k := range benchKindNames {
			if v := r.ErrorKinds[k]; v > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, v))
			}
		}
		fmt.Fprintf(w, "  %-14s %s\n", "errors", strings.Join(parts, ", "))
		fmt.Fprintf(w, "  %-14s %s\n", "first error", r.FirstError)
	}
	if r.Interrupted {
		fmt.Fprintf(w, "  (interrupted)\n")
	}
}
