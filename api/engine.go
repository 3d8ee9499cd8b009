package api

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Engine is one script language. The host finds the files of its
// extensions in the scripts directory and asks the engine to load them as
// one generation; cmd wires engines into the host explicitly.
type Engine interface {
	// Name is the language's short name ("lua", "js", "go").
	Name() string
	// Extensions are the file name suffixes the engine loads (".lua").
	Extensions() []string
	// Modifier is the modifier1 of the language's requests (6 for Lua).
	Modifier() uwsgi.Modifier
	// Load compiles and runs files against env: files register RPCs,
	// signal handlers and timers, and files that return an app define it.
	// A broken file fails the whole load with a *ScriptError.
	Load(ctx context.Context, env *Registrations, files []File) (Program, error)
}

// File is one script of the scripts directory.
type File struct {
	Name   string // path relative to the scripts directory, with "/" separators
	Path   string // path on disk, for error messages and require
	Source []byte // the file's contents as the host read them for this load
}

// SortedFiles returns a copy of files sorted by name: the order in which
// engines run them.
func SortedFiles(files []File) []File {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return sorted
}

// Program is what an engine made of its files for one generation.
type Program interface {
	// Apps are the apps the files defined, by name (the file name without
	// its extension).
	Apps() map[string]App
	// Close frees the program's VMs once no call uses them any more.
	Close() error
}

// App serves HTTP-style requests (WSAPI, JSGI, http.Handler apps).
type App interface {
	ServeRequest(ctx context.Context, w ResponseWriter, r *Request) error
}

// Request is an HTTP-style request as an app sees it.
type Request struct {
	// Modifier1 is the modifier1 the request came with, which picked
	// its app (HTTPFront.Modifier1 for the HTTP front).
	Modifier1 uwsgi.Modifier
	// Modifier2 is the request packet's modifier2 (0 from the HTTP front).
	Modifier2 uint8
	Vars      uwsgi.Vars // valid until the app returns
	// Body reads the request body: exactly CONTENT_LENGTH bytes, then EOF.
	Body io.Reader
}

// Var returns the value of a request var ("" when absent), the last
// duplicate winning.
func (r *Request) Var(key string) string { return r.Vars.Get(key) }

// Header is one response header line, in the order the app gave it.
type Header struct {
	// Name is the header's name as the app wrote it, Value its value.
	Name, Value string
}

// ResponseWriter writes a raw HTTP response the way uWSGI does: the
// status line (with the request's SERVER_PROTOCOL) and headers on the
// first Write or Flush, then the body, ending when the connection closes.
type ResponseWriter interface {
	// WriteHeader sets the status ("200 OK", or just a code, which gets
	// its standard reason) and the headers; it fails if the header was
	// already sent.
	WriteHeader(status string, headers []Header) error
	// Write writes body bytes, sending the header first if needed (200 OK
	// with no headers when WriteHeader was not called).
	Write(p []byte) (int, error)
	// Flush sends what is buffered.
	Flush() error
	// HeaderSent reports whether the status line went out.
	HeaderSent() bool
}

// Evaluator runs a piece of code in a fresh, sandboxed interpreter that
// sees the uwsgi API: the operator's raw eval (modifier1 22).
type Evaluator interface {
	// Eval returns the code's value and what it printed: at most
	// maxOutput bytes (<= 0: DefaultEvalOutput), capture stopping at the
	// limit while the code runs; truncated reports that it printed more.
	Eval(ctx context.Context, env *Registrations, code string, maxOutput int) (result Value, output string, truncated bool, err error)
}

// DefaultEvalOutput is how much of an Eval's output is kept when the
// caller sets no limit.
const DefaultEvalOutput = 1 << 20

// EvalOutput collects what the code of an Eval prints, keeping the first
// bytes up to its limit. It is safe for concurrent use.
type EvalOutput struct {
	mu        sync.Mutex
	b         strings.Builder
	max       int
	truncated bool
	sealed    bool
}

// NewEvalOutput returns an EvalOutput keeping max bytes (<= 0:
// DefaultEvalOutput).
func NewEvalOutput(max int) *EvalOutput {
	if max <= 0 {
		max = DefaultEvalOutput
	}
	return &EvalOutput{max: max}
}

// Write keeps what fits of p; it never fails.
func (o *EvalOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sealed || o.truncated {
		return len(p), nil
	}
	if room := o.max - o.b.Len(); len(p) > room {
		o.b.Write(p[:room])
		o.truncated = true
		return len(p), nil
	}
	o.b.Write(p)
	return len(p), nil
}

// Line writes s and a newline.
func (o *EvalOutput) Line(s string) { o.Write([]byte(s + "\n")) }

// Seal stops the capture (code still running after its Eval writes
// nowhere) and returns what was kept and whether some was dropped.
func (o *EvalOutput) Seal() (output string, truncated bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sealed = true
	return o.b.String(), o.truncated
}

// EngineLogger is an engine's logger: its own when set, else the Registrations',
// else slog's default.
func EngineLogger(own *slog.Logger, env *Registrations) *slog.Logger {
	if own != nil {
		return own
	}
	if env != nil && env.Logger != nil {
		return env.Logger
	}
	return slog.Default()
}

// ScriptError is a script's failure with the place it happened, in
// every engine: a syntax error at load, an error raised while a file ran,
// or the failure of a call. Errors of the engine, of the API and the
// context's cause are its Err, so errors.Is finds them through it.
type ScriptError struct {
	// Engine names the engine that reports it, as its messages start
	// ("lua", "js", "gointerp").
	Engine string
	// File is the script's name relative to the scripts directory (the
	// engine's name for the code of an Eval); "" when unknown.
	File   string
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Msg    string // the message without the position
	// Trace is the script's stack at the error, when the engine knows it.
	Trace string
	// Err is the cause, if any: an interrupted call's context cause
	// (ErrHarakiri, ErrMemoryLimit, ErrLoadTimeout, ...), an allocation
	// refused (ErrAllocTooLarge), the error of an API function the script
	// did not handle, or one of the engine's own errors.
	Err error
}

// Error formats the error as "engine: file:line:column: message",
// leaving out what is unknown (zero or empty).
func (e *ScriptError) Error() string {
	var b strings.Builder
	b.WriteString(e.Engine)
	b.WriteString(": ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause.
func (e *ScriptError) Unwrap() error { return e.Err }
