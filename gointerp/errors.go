package gointerp

import (
	"errors"
	"fmt"
	"go/scanner"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/scripthost/scripthost/api"
)

// Errors of the engine. Script failures are *api.ScriptError values that wrap
// one of these (or the API's or the context's error) when there is a cause
// beyond the script's own message.
var (
	// ErrClosed is returned by calls into a program after Close.
	ErrClosed = errors.New("gointerp: program closed")
	// ErrPanic is a panic in a script (or in a library function it
	// called); the interpreter that ran it is discarded.
	ErrPanic = errors.New("gointerp: script panicked")
	// ErrStackOverflow is a script recursing too deep (the call fails as
	// a panic does).
	ErrStackOverflow = errors.New("gointerp: stack overflow")
	// ErrForbiddenImport is an import of a package outside the sandbox.
	ErrForbiddenImport = errors.New("gointerp: import of a package outside the sandbox")
	// ErrForbidden is a construct the sandbox refuses (a go statement).
	ErrForbidden = errors.New("gointerp: construct not allowed in scripts")
	// ErrVMGone is a call of a function made during a call (so living in
	// one interpreter) after that interpreter was discarded or closed, or
	// a call of a function of an Eval after the Eval returned.
	ErrVMGone = errors.New("gointerp: the interpreter of this function is gone")
	// ErrAbandoned is an API call made by script code that kept running
	// after its call was interrupted and given up.
	ErrAbandoned = errors.New("gointerp: the call was interrupted")
	// ErrNondeterministicLoad is a replica interpreter whose file made
	// other callbacks than the first interpreter's did.
	ErrNondeterministicLoad = errors.New("gointerp: the file made different callbacks in another interpreter of the pool")
	// ErrHandler is a Handler of the wrong type (or nil).
	ErrHandler = errors.New("gointerp: bad Handler")
	// ErrPoolBusy is a call that found every interpreter of its file
	// busy for Options.PoolWait; the error also wraps vmpool.ErrBusy.
	ErrPoolBusy = errors.New("gointerp: the interpreter pool is busy")
	// ErrConvert is a value that has no counterpart on the other side
	// (a struct passed to the API, a list where an int is expected).
	ErrConvert = errors.New("gointerp: cannot convert value")
)

// errEngine is the Engine of the engine's *api.ScriptError values: how
// their messages start.
const errEngine = "gointerp"

// positionRE matches the "file:line:col: " or "line:col: " prefix yaegi
// puts on its compile errors and panic traces.
var positionRE = regexp.MustCompile(`^(?:(.*?):)?(\d+):(\d+): `)

// splitPosition splits a yaegi message into its position and the rest.
func splitPosition(msg string) (file string, line, col int, rest string, ok bool) {
	m := positionRE.FindStringSubmatch(msg)
	if m == nil {
		return "", 0, 0, msg, false
	}
	line, _ = strconv.Atoi(m[2])
	col, _ = strconv.Atoi(m[3])
	return m[1], line, col, msg[len(m[0]):], true
}

// compileError turns a parse or compile error of file name into a
// *api.ScriptError; lineOffset is added to the lines (Eval's chunks).
func compileError(name string, err error, lineOffset int) *api.ScriptError {
	var list scanner.ErrorList
	var one *scanner.Error
	switch {
	case errors.As(err, &list) && len(list) > 0:
		one = list[0]
	case errors.As(err, &one):
	default:
		se := &api.ScriptError{Engine: errEngine, File: name, Msg: err.Error()}
		if _, line, col, rest, ok := splitPosition(err.Error()); ok {
			se.Line, se.Column, se.Msg = line+lineOffset, col, rest
		}
		return se
	}
	return &api.ScriptError{Engine: errEngine, File: name, Line: one.Pos.Line + lineOffset, Column: one.Pos.Column, Msg: one.Msg}
}

// panicError describes a recovered panic; trace is what yaegi printed on
// the interpreter's stderr while unwinding (innermost frame first).
func panicError(name string, value any, trace string) *api.ScriptError {
	if rv, ok := value.(reflect.Value); ok && rv.IsValid() && rv.CanInterface() {
		value = rv.Interface() // the interpreter panics with its values wrapped
	}
	se := &api.ScriptError{Engine: errEngine, File: name, Msg: fmt.Sprintf("panic: %v", value), Err: ErrPanic}
	if err, ok := value.(error); ok {
		se.Err = fmt.Errorf("%w: %w", ErrPanic, err)
	}
	for _, l := range strings.Split(trace, "\n") {
		if _, line, col, rest, ok := splitPosition(l); ok && strings.HasPrefix(rest, "panic") {
			se.Line, se.Column = line, col
			break
		}
	}
	return se
}
