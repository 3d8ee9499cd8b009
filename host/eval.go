package host

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// Eval defaults (zero EvalConfig fields).
const (
	DefaultEvalTimeout   = 5 * time.Second
	DefaultEvalMaxOutput = 64 << 10
	DefaultEvalMaxCode   = uwsgi.MaxSize
	DefaultEvalWindow    = 60 * time.Second
	// MinEvalKey is the shortest key EnableEval accepts.
	MinEvalKey = 16
	// maxReplay bounds the signatures remembered against replays.
	maxReplay = 16384
)

// Eval errors.
var (
	// ErrEvalConfig: EnableEval was given an unusable configuration.
	ErrEvalConfig = errors.New("host: invalid eval configuration")
	// ErrEvalDisabled: ServeEval on a server without EnableEval.
	ErrEvalDisabled = errors.New("host: eval is not enabled (call EnableEval first)")
)

// evalLanguages are the modifier2 values of eval requests.
var evalLanguages = map[uwsgi.Modifier]string{uwsgi.ModLua: "lua", uwsgi.ModV8: "js", uwsgi.ModGo: "go"}

// EvalConfig configures raw code evaluation (see EnableEval for the
// protocol). Zero fields take the defaults.
type EvalConfig struct {
	// Evaluators run the code of each language, by the language's
	// modifier1 (uwsgi.ModLua, ModV8, ModGo). A language without one is
	// refused.
	Evaluators map[uwsgi.Modifier]api.Evaluator
	// Key, when not nil, is the HMAC key every request must be signed
	// with; at least MinEvalKey bytes.
	Key []byte
	// Timeout is each eval's time limit (default 5 s).
	Timeout time.Duration
	// MaxOutput bounds the result and the output, each (default 64 KiB).
	MaxOutput int
	// MaxCode bounds the code's length (default and at most 65535).
	MaxCode int
	// Window is how far a signature's ts may be from the server's clock
	// (default 60 s); signatures are remembered that long against replays.
	Window time.Duration
	// Listeners are addresses of operations listeners (served with
	// ServeOps) that serve eval, as their net.Listener's Addr().String()
	// gives them. ServeEval adds its listener itself.
	Listeners []string
}

// EnableEval makes the server serve raw code evaluation (modifier1 22)
// with cfg, on the listeners cfg and ServeEval name. Like Handle, it must
// be called before Serve. A key shorter than MinEvalKey, or an evaluator
// for anything but Lua, JavaScript and Go, is ErrEvalConfig.
//
// uWSGI documents modifier1 22 as "raw code evaluation, the interpreter is
// chosen by modifier2" but never implemented it: uWSGI drops the packet.
// scripthost implements it for operators, off by default.
//
// # Where it is served
//
// A server on which EnableEval was never called has no handler for 22: it
// drops the packet and closes the connection without a byte, like uWSGI.
// With EnableEval, eval runs only on operations listeners named for eval
// (served with ServeEval, or served with ServeOps and listed in
// EvalConfig.Listeners); every other listener, operations listeners for
// reload and status included, answers with an error frame CodeRefused.
//
// # Request
//
//	[22, size, lang] + payload
//
// lang (modifier2) names the language by its own modifier1: 6 Lua, 24
// JavaScript, 11 Go. Without a key (EvalConfig.Key nil) the payload is
// the code. With a key it is a uwsgi vars block:
//
//	code  the code
//	ts    when the request was signed: Unix seconds in decimal, optionally
//	      with a fraction of 1 to 9 digits ("1700000000", "1700000000.25")
//	sig   the lowercase hex HMAC-SHA256, keyed with the key, of
//	      ts + "\n" + lang in decimal + "\n" + code (uwsgi.EvalSignature)
//
// Other vars are ignored. The server refuses a ts further than the window
// (EvalConfig.Window, 60 s) from its clock, and a sig it accepted within
// the window (a replay); it remembers at most 16384 signatures at a time
// and refuses further signed requests until old ones leave the window.
//
// # Success
//
//	[22, size, 0] + vars block: result, output[, truncated]
//
// result is the code's value as text: nil, booleans, numbers and strings
// as api.FormatValue writes them (strings as they are), lists and maps as
// JSON, functions as "function". output is what the code printed. Each is
// cut to EvalConfig.MaxOutput bytes (64 KiB), and output further (then
// result) so that the block fits in 65535 bytes; truncated is "1" when
// anything was cut and absent otherwise.
//
// # Failure
//
// An error frame, [255, len, code] + a message (uwsgi.AppendError), to
// every client, whether or not it sent the extension hello: eval is
// scripthost's own packet. An extended connection stays open for the next
// request; a plain one closes, as after any answer.
//
//	CodeRefused     eval not allowed on this listener; signature missing,
//	                wrong, outside the window or replayed; language not
//	                enabled
//	CodeBadRequest  unknown language (modifier2); a signed block with sig
//	                but without code or ts, with one of them twice, or
//	                with a ts that is not Unix seconds
//	CodeTooLarge    code longer than EvalConfig.MaxCode
//	CodeScript      the code raised an error: the engine's message, with
//	                file and line
//	CodeTimeout     the code ran past EvalConfig.Timeout (5 s)
//	CodeUnavailable the server is closing
//	CodeFailed      the interpreter failed (a panic)
//
// A payload that is not a vars block with a sig var, sent where a key is
// required, is an unsigned request: CodeRefused.
//
// # What the code sees
//
// The uwsgi API over the server's State, through the Registrations of the scripts
// generation serving at that moment. Registrations the code makes
// (register_rpc, register_signal, add_timer, ...) are that generation's:
// they live until the next reload replaces it. Before any scripts are
// loaded the code runs in a standalone Registrations over the same State, whose
// registrations stay until scripts register the same names. The code has no client
// connection (connection_fd and send/recv without a file descriptor
// fail). Its time limit starts when it starts; set_user_harakiri moves it.
//
// # Log
//
// Every eval and every refusal is logged: the listener and the remote
// address, the language, the first 12 hex digits of the code's SHA-256
// (of the payload when the code could not be extracted), the code's
// length, the outcome and how long it took. The code itself is never
// logged.
func (s *Server) EnableEval(cfg EvalConfig) error {
	s.init()
	if cfg.Key != nil && len(cfg.Key) < MinEvalKey {
		return fmt.Errorf("%w: the key has %d bytes, want at least %d", ErrEvalConfig, len(cfg.Key), MinEvalKey)
	}
	for m, ev := range cfg.Evaluators {
		if _, ok := evalLanguages[m]; !ok {
			return fmt.Errorf("%w: evaluator for modifier %v: eval languages are lua (6), js (24) and go (11)", ErrEvalConfig, m)
		}
		if ev == nil {
			return fmt.Errorf("%w: nil evaluator for %s", ErrEvalConfig, evalLanguages[m])
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultEvalTimeout
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultEvalMaxOutput
	}
	if cfg.MaxCode <= 0 || cfg.MaxCode > uwsgi.MaxSize {
		cfg.MaxCode = DefaultEvalMaxCode
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultEvalWindow
	}
	cfg.Evaluators = maps.Clone(cfg.Evaluators)
	cfg.Key = bytes.Clone(cfg.Key)
	h := &evalHandler{srv: s, cfg: cfg, listeners: map[string]bool{}, replay: newReplayGuard(maxReplay), now: time.Now}
	for _, l := range cfg.Listeners {
		h.listeners[l] = true
	}
	s.Handle(uwsgi.ModEval, h)
	return nil
}

// ServeEval is ServeOps for a listener that also serves eval requests.
// EnableEval must have been called; otherwise l is closed and
// ErrEvalDisabled returned. Give it a unix socket only the operator can
// reach.
func (s *Server) ServeEval(l net.Listener) error {
	s.init()
	h, ok := s.handlers[uwsgi.ModEval].(*evalHandler)
	if !ok {
		l.Close()
		return ErrEvalDisabled
	}
	h.allow(l.Addr().String())
	return s.ServeOps(l)
}

type evalHandler struct {
	srv    *Server
	cfg    EvalConfig
	replay *replayGuard
	now    func() time.Time

	mu        sync.RWMutex
	listeners map[string]bool

	standalone     *api.Registrations // the Registrations before any scripts generation
	standaloneOnce sync.Once
}

func (h *evalHandler) allow(addr string) {
	h.mu.Lock()
	h.listeners[addr] = true
	h.mu.Unlock()
}

func (h *evalHandler) allowed(r *Packet) bool {
	if !r.Ops {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.listeners[r.Listener]
}

// evalFailure is a request answered with an error frame.
type evalFailure struct {
	code uwsgi.Code
	msg  string
}

func (h *evalHandler) ServeUWSGI(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	start := time.Now()
	lang, known := evalLanguages[uwsgi.Modifier(r.Modifier2)]
	if !known {
		lang = "unknown(" + strconv.Itoa(int(r.Modifier2)) + ")"
	}
	code := r.Payload // until the signed block is opened
	fail := func(f evalFailure) Outcome {
		h.logEval(r, lang, code, start, f.code.String(), f.msg)
		if _, err := w.Write(uwsgi.AppendError(w.Scratch(), f.code, f.msg)); err != nil {
			return Close
		}
		return Keep
	}
	if !h.allowed(r) {
		return fail(evalFailure{uwsgi.CodeRefused, "eval is only served on the operator's eval listener"})
	}
	if !known {
		return fail(evalFailure{uwsgi.CodeBadRequest, "unknown eval language: modifier2 " + strconv.Itoa(int(r.Modifier2)) +
			" (6 lua, 24 js, 11 go)"})
	}
	if h.cfg.Key != nil {
		signed, f := h.verify(r.Payload, r.Modifier2)
		if signed != nil {
			code = signed
		}
		if f != nil {
			return fail(*f)
		}
	}
	ev := h.cfg.Evaluators[uwsgi.Modifier(r.Modifier2)]
	if ev == nil {
		return fail(evalFailure{uwsgi.CodeRefused, "eval of " + lang + " is not enabled on this server"})
	}
	if len(code) > h.cfg.MaxCode {
		return fail(evalFailure{uwsgi.CodeTooLarge, fmt.Sprintf("code of %d bytes, at most %d are allowed", len(code), h.cfg.MaxCode)})
	}
	result, output, truncated, err := h.run(ctx, ev, string(code))
	if err != nil {
		return fail(h.failure(err))
	}
	h.logEval(r, lang, code, start, "ok", "")
	if _, err := w.Write(appendEvalReply(w.Scratch(), result, output, truncated, h.cfg.MaxOutput)); err != nil {
		return Close
	}
	return Keep
}

// run evaluates code with the eval's time limit in the current Registrations.
func (h *evalHandler) run(ctx context.Context, ev api.Evaluator, code string) (result string, output string, truncated bool, err error) {
	env, release := h.env()
	defer release()
	ctx, _, done := api.NewScope(ctx, nil, h.cfg.Timeout)
	defer done()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: the interpreter panicked: %v", errEvalPanic, p)
		}
	}()
	v, output, truncated, err := ev.Eval(ctx, env, code, h.cfg.MaxOutput)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return "", "", false, err
	}
	return formatResult(v), output, truncated, nil
}

var errEvalPanic = errors.New("host: eval failed")

// failure classifies an error of the code.
func (h *evalHandler) failure(err error) evalFailure {
	switch {
	case errors.Is(err, api.ErrHarakiri):
		return evalFailure{uwsgi.CodeTimeout, "eval ran past its time limit (" + h.cfg.Timeout.String() + "): " + err.Error()}
	case errors.Is(err, context.Canceled):
		return evalFailure{uwsgi.CodeUnavailable, "the server is closing: " + err.Error()}
	case errors.Is(err, errEvalPanic):
		return evalFailure{uwsgi.CodeFailed, err.Error()}
	}
	return evalFailure{uwsgi.CodeScript, err.Error()}
}

// env returns the Registrations eval code runs in, held open until release.
func (h *evalHandler) env() (env *api.Registrations, release func()) {
	if rt := h.srv.acquireRouter(); rt != nil {
		return rt.gen.Registrations, rt.gen.Registrations.Release
	}
	h.standaloneOnce.Do(func() {
		env := api.NewRegistrations(h.srv.State, "")
		if err := env.Commit(nil); err != nil {
			h.srv.log.Error("eval: standalone environment", "err", err)
		}
		h.standalone = env
	})
	return h.standalone, func() {}
}

// verify opens a signed block: it returns the code (nil when there is
// none) and, when the request must be refused, why.
func (h *evalHandler) verify(payload []byte, lang uint8) ([]byte, *evalFailure) {
	var code, ts, sig []byte
	var haveCode, haveTS, haveSig bool
	dup := ""
	err := uwsgi.EachVar(payload, func(k, v []byte) bool {
		var have *bool
		switch string(k) {
		case "code":
			code, have = v, &haveCode
		case "ts":
			ts, have = v, &haveTS
		case "sig":
			sig, have = v, &haveSig
		default:
			return true
		}
		if *have && dup == "" {
			dup = string(k)
		}
		*have = true
		return true
	})
	if err != nil || !haveSig {
		return nil, &evalFailure{uwsgi.CodeRefused, "this server requires signed eval requests: a vars block with code, ts and sig"}
	}
	switch {
	case dup != "":
		return code, &evalFailure{uwsgi.CodeBadRequest, "signed eval request with two " + dup + " vars"}
	case !haveCode || !haveTS:
		return code, &evalFailure{uwsgi.CodeBadRequest, "signed eval request without code or ts"}
	}
	signedAt, ok := parseEvalTime(string(ts))
	if !ok {
		return code, &evalFailure{uwsgi.CodeBadRequest, fmt.Sprintf("signed eval request: ts %.40q is not Unix seconds", ts)}
	}
	want := uwsgi.EvalSignature(h.cfg.Key, string(ts), uwsgi.Modifier(lang), string(code))
	if !hmac.Equal(sig, []byte(want)) {
		return code, &evalFailure{uwsgi.CodeRefused, "bad eval signature"}
	}
	now := h.now()
	if d := now.Sub(signedAt); d > h.cfg.Window || d < -h.cfg.Window {
		return code, &evalFailure{uwsgi.CodeRefused, fmt.Sprintf("eval signature outside the %v window (signed %v from the server's clock)",
			h.cfg.Window, d.Round(time.Second))}
	}
	var key [sha256.Size]byte
	hex.Decode(key[:], sig)
	switch h.replay.admit(key, signedAt.Add(h.cfg.Window), now) {
	case replaySeen:
		return code, &evalFailure{uwsgi.CodeRefused, "replayed eval signature"}
	case replayFull:
		return code, &evalFailure{uwsgi.CodeRefused, "too many signed eval requests within the window; retry later"}
	}
	return code, nil
}

// parseEvalTime parses a ts var: decimal Unix seconds with an optional
// fraction of 1 to 9 digits.
func parseEvalTime(s string) (time.Time, bool) {
	secs, frac, hasFrac := strings.Cut(s, ".")
	if len(secs) == 0 || len(secs) > 12 || !digits(secs) || hasFrac && (len(frac) == 0 || len(frac) > 9 || !digits(frac)) {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var ns int64
	if hasFrac {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return time.Unix(n, ns), true
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// logEval logs one eval or refusal, never the code itself.
func (h *evalHandler) logEval(r *Packet, lang string, code []byte, start time.Time, outcome, msg string) {
	sum := sha256.Sum256(code)
	attrs := []any{"listener", r.Listener, "remote", r.RemoteAddr, "lang", lang,
		"sha256", hex.EncodeToString(sum[:6]), "bytes", len(code), "outcome", outcome, "took", time.Since(start)}
	switch outcome {
	case "ok":
		h.srv.log.Info("eval", attrs...)
	case uwsgi.CodeRefused.String():
		h.srv.log.Warn("eval refused", append(attrs, "reason", msg)...)
	default:
		h.srv.log.Warn("eval failed", append(attrs, "err", msg)...)
	}
}

// formatResult renders an eval's value as text.
func formatResult(v api.Value) string {
	switch v.(type) {
	case []api.Value, map[string]api.Value:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(jsonValue(v, 0)); err != nil {
			return api.FormatValue(v)
		}
		return strings.TrimSuffix(b.String(), "\n")
	case api.Callable:
		return "function"
	}
	return api.FormatValue(v)
}

// maxJSONDepth bounds nesting in results (engines should not produce
// cycles, but a deep value must not exhaust the stack).
const maxJSONDepth = 100

// jsonValue converts a value to what encoding/json writes as JSON.
func jsonValue(v api.Value, depth int) any {
	if depth > maxJSONDepth {
		return "..."
	}
	switch x := v.(type) {
	case nil, bool, int64, string:
		return x
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return api.FormatFloat(x)
		}
		return x
	case []byte:
		return string(x)
	case []api.Value:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, depth+1)
		}
		return out
	case map[string]api.Value:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e, depth+1)
		}
		return out
	case api.Callable:
		return "function"
	}
	return api.FormatValue(v)
}

// appendEvalReply appends the success reply to dst: result and output cut
// to max bytes each, and to fit one packet.
func appendEvalReply(dst []byte, result, output string, truncated bool, max int) []byte {
	var cut bool
	if result, cut = cutText(result, max); cut {
		truncated = true
	}
	if output, cut = cutText(output, max); cut {
		truncated = true
	}
	overhead := func() int {
		n := 4 + len("result") + 4 + len("output")
		if truncated {
			n += 4 + len("truncated") + 1
		}
		return n
	}
	if overhead()+len(result)+len(output) > uwsgi.MaxSize {
		truncated = true
		room := uwsgi.MaxSize - overhead() - len(result)
		if room < 0 {
			output = ""
			result, _ = cutText(result, uwsgi.MaxSize-overhead())
		} else {
			output, _ = cutText(output, room)
		}
	}
	vs := uwsgi.Vars{}.Add("result", result).Add("output", output)
	if truncated {
		vs = vs.Add("truncated", "1")
	}
	block, _ := vs.Append(make([]byte, 0, vs.Size()))
	dst, _ = uwsgi.AppendPacket(dst, uwsgi.ModEval, 0, block)
	return dst
}

// cutText cuts s to at most n bytes, not inside a UTF-8 sequence.
func cutText(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && n-i < utf8.UTFMax-1 && !utf8.RuneStart(s[i]) {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		i = n // not text: cut where asked
	}
	return s[:i], true
}

// replayGuard remembers accepted signatures until they leave the window.
type replayGuard struct {
	mu   sync.Mutex
	max  int
	seen map[[sha256.Size]byte]time.Time // signature -> when it stops mattering
}

type replayVerdict int

const (
	replayFresh replayVerdict = iota
	replaySeen
	replayFull
)

func newReplayGuard(max int) *replayGuard {
	return &replayGuard{max: max, seen: map[[sha256.Size]byte]time.Time{}}
}

// admit records sig, which matters until until, unless it was seen or the
// memory is full of signatures that still matter.
func (g *replayGuard) admit(sig [sha256.Size]byte, until, now time.Time) replayVerdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.seen[sig]; ok && now.Before(t) {
		return replaySeen
	}
	if len(g.seen) >= g.max {
		for k, t := range g.seen {
			if !now.Before(t) {
				delete(g.seen, k)
			}
		}
		if len(g.seen) >= g.max {
			return replayFull
		}
	}
	g.seen[sig] = until
	return replayFresh
}
