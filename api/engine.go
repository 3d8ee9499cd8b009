package api

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"

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
	Load(ctx context.Context, env *Env, files []File) (Program, error)
}

// File is one script of the scripts directory.
type File struct {
	Name   string // path relative to the scripts directory, with "/" separators
	Path   string // path on disk, for error messages and require
	Source []byte
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
	Modifier1 uwsgi.Modifier
	Modifier2 uint8
	Vars      uwsgi.Vars // valid until the app returns
	// Body reads the request body: exactly CONTENT_LENGTH bytes, then EOF.
	Body io.Reader
}

// Var returns the value of a request var ("" when absent), the last
// duplicate winning.
func (r *Request) Var(key string) string { return r.Vars.Get(key) }

// Header is one response header line, in the order the app gave it.
type Header struct{ Name, Value string }

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
// sees the uwsgi API: the operator's raw eval (modifier1 22). It returns
// the code's value and what it printed.
type Evaluator interface {
	Eval(ctx context.Context, env *Env, code string) (result Value, output string, err error)
}

// EngineLogger is an engine's logger: its own when set, else the Env's,
// else slog's default.
func EngineLogger(own *slog.Logger, env *Env) *slog.Logger {
	if own != nil {
		return own
	}
	if env != nil && env.Logger != nil {
		return env.Logger
	}
	return slog.Default()
}

// ScriptErrorText is how every engine prints a script error:
// "engine: file:line:column: message", leaving out what is unknown (zero
// or empty).
func ScriptErrorText(engine, file string, line, column int, msg string) string {
	var b strings.Builder
	b.WriteString(engine)
	b.WriteString(": ")
	if file != "" {
		b.WriteString(file)
		if line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(line))
			if column > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(column))
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}
