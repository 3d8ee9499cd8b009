package lua

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// Errors of the engine. Script failures are *api.ScriptError values that
// wrap one of these (or the API's or the context's error) when there is a
// cause beyond the script's own message.
var (
	// ErrClosed is returned by calls into a program after Close.
	ErrClosed = errors.New("lua: program closed")
	// ErrStringTooLarge is a script building a string over
	// Options.MaxStringSize. It wraps api.ErrAllocTooLarge.
	ErrStringTooLarge = fmt.Errorf("lua: string too large: %w", api.ErrAllocTooLarge)
	// ErrStackOverflow is a script exhausting the call stack or the value
	// stack (deep recursion).
	ErrStackOverflow = errors.New("lua: stack overflow")
	// ErrPanic is a Go panic inside the interpreter or a library function.
	ErrPanic = errors.New("lua: interpreter panic")
	// ErrStateGone is a call of a function that lives in one Lua state
	// (one made during a call, or by Eval) after that state was replaced
	// or closed.
	ErrStateGone = errors.New("lua: the Lua state of this function is gone")
	// ErrPoolBusy is a call that found no free state within
	// Options.PoolWait; it also wraps vmpool.ErrBusy.
	ErrPoolBusy = errors.New("lua: every Lua state of the program is busy")
	// ErrNondeterministicLoad is a replica state defining other callbacks
	// or apps than the first state of the pool did.
	ErrNondeterministicLoad = errors.New("lua: files defined different callbacks or apps in another state of the pool")
)

// errEngine is the Engine of the engine's *api.ScriptError values: how
// their messages start.
const errEngine = "lua"

// splitPosition splits gopher-lua's "chunk:line: message" into its parts;
// ok is false when msg carries no position.
func splitPosition(msg string) (file string, line int, rest string, ok bool) {
	for i := 0; i < len(msg); i++ {
		if msg[i] != ':' || i == 0 {
			continue
		}
		j := i + 1
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		if j == i+1 || j >= len(msg) || msg[j] != ':' {
			continue
		}
		n, err := strconv.Atoi(msg[i+1 : j])
		if err != nil {
			return "", 0, msg, false
		}
		return msg[:i], n, strings.TrimPrefix(msg[j+1:], " "), true
	}
	return "", 0, msg, false
}

// tracebackPosition finds the innermost Lua frame of a gopher-lua stack
// traceback ("\tchunk:line: in ...").
func tracebackPosition(tb string) (string, int) {
	for _, l := range strings.Split(tb, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[G]") {
			continue
		}
		if file, line, _, ok := splitPosition(l); ok {
			return file, line
		}
	}
	return "", 0
}

// compileError turns a gopher-lua parse or compile error into a
// *api.ScriptError.
func compileError(name string, src []byte, err error) *api.ScriptError {
	se := &api.ScriptError{Engine: errEngine, File: name, Msg: err.Error()}
	var pe *parseError
	var ce *lua.CompileError
	switch {
	case errors.As(err, &pe):
		se.Line, se.Msg = pe.line, pe.msg
		if se.Line <= 0 { // at EOF
			se.Line = strings.Count(string(src), "\n") + 1
		}
	case errors.As(err, &ce):
		se.Line, se.Msg = ce.Line, ce.Message
	}
	return se
}

// parseError is gopher-lua's parse.Error in our terms.
type parseError struct {
	line int
	msg  string
}

func (e *parseError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }
