package js

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/scripthost/scripthost/api"
)

// Errors of the engine. Script failures are *api.ScriptError values that
// wrap one of these (or the API's or the context's error) when there is a
// cause beyond the script's own message.
var (
	// ErrClosed is returned by calls into a program after Close.
	ErrClosed = errors.New("js: program closed")
	// ErrStringTooLarge is a script building a string over
	// Options.MaxStringSize with one of the guarded built-ins.
	ErrStringTooLarge = errors.New("js: string too large")
	// ErrPoolBusy is a call that found no free runtime within
	// Options.PoolWait (it also wraps vmpool.ErrBusy).
	ErrPoolBusy = errors.New("js: every runtime of the pool is busy")
	// ErrStackOverflow is a script exceeding Options.MaxCallStackSize.
	ErrStackOverflow = errors.New("js: stack overflow")
	// ErrPanic is a Go panic inside the interpreter or the engine.
	ErrPanic = errors.New("js: interpreter panic")
	// ErrRuntimeGone is a call of a function pinned to its runtime (one
	// passed to the API after the load) whose runtime is gone: it was
	// discarded, its program closed, or it belonged to an Eval.
	ErrRuntimeGone = errors.New("js: the runtime that made this function is gone")
	// ErrNondeterministicLoad is a replica runtime defining other
	// callbacks or apps than the first runtime of the pool did.
	ErrNondeterministicLoad = errors.New("js: files defined different callbacks or apps in another runtime of the pool")
	// ErrUnsettled is a promise that can never settle: the call awaits it
	// and no timer is left to run.
	ErrUnsettled = errors.New("js: promise never settled (nothing left to run)")
	// ErrNestedAwait is a pending promise returned to a call nested in
	// another call of the same runtime (uwsgi.call from JS into JS): only
	// the outermost call runs the event loop.
	ErrNestedAwait = errors.New("js: a nested call cannot wait for a pending promise")
	// ErrBadResponse is a JSGI app returning an invalid status, headers or
	// body.
	ErrBadResponse = errors.New("js: invalid JSGI response")
	// ErrModule is a require that cannot be resolved or is refused.
	ErrModule = errors.New("js: cannot require module")
)

// errEngine is the Engine of the engine's *api.ScriptError values: how
// their messages start.
const errEngine = "js"

// compileError turns a goja parse or compile error of a module into a
// *api.ScriptError; offset is the length of the module wrapper's prefix on
// the first line.
func compileError(name string, err error, offset int) *api.ScriptError {
	se := &api.ScriptError{Engine: errEngine, File: name, Msg: err.Error()}
	var list parser.ErrorList
	var pe *parser.Error
	var ce *goja.CompilerSyntaxError
	if errors.As(err, &list) && len(list) > 0 {
		pe = list[0]
	} else {
		errors.As(err, &pe)
	}
	switch {
	case pe != nil:
		se.Line, se.Column, se.Msg = pe.Position.Line, pe.Position.Column, "SyntaxError: "+pe.Message
	case errors.As(err, &ce):
		se.Msg = "SyntaxError: " + ce.Message
		if ce.File != nil {
			p := ce.File.Position(ce.Offset)
			se.Line, se.Column = p.Line, p.Column
		}
	}
	if se.Line == 1 {
		se.Column = max(1, se.Column-offset)
	}
	return se
}

// position is a place in a script.
type position struct {
	file      string
	line, col int
}

// framePosition finds the innermost frame of a script in a stack.
func (v *vm) framePosition(frames []goja.StackFrame) position {
	for i := range frames {
		f := &frames[i]
		if f.SrcName() == "<native>" {
			continue
		}
		p := f.Position()
		return v.fixPosition(position{file: p.Filename, line: p.Line, col: p.Column})
	}
	return position{}
}

// fixPosition undoes the module wrapper's shift of first-line columns.
func (v *vm) fixPosition(p position) position {
	if p.line == 1 && v.mods != nil && v.mods.isModule(p.file) {
		p.col = max(1, p.col-len(modulePrefix))
	}
	return p
}

// stackPosition parses the first script frame of an Error's stack
// property ("\tat f (app.js:3:9(12))").
func (v *vm) stackPosition(stack string) position {
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "at ")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(rest, '('); i >= 0 && strings.HasSuffix(rest, ")") {
			// "f (file:1:2(3))": the outer parentheses, then the pc.
			inner := strings.TrimSuffix(rest, ")")
			if j := strings.LastIndexByte(inner, '('); j >= 0 {
				inner = inner[:j]
			}
			if k := strings.IndexByte(inner, '('); k >= 0 {
				inner = inner[k+1:]
			}
			rest = inner
		}
		parts := strings.Split(rest, ":")
		if len(parts) < 3 {
			continue
		}
		line, err1 := strconv.Atoi(parts[len(parts)-2])
		col, err2 := strconv.Atoi(parts[len(parts)-1])
		if err1 != nil || err2 != nil {
			continue
		}
		return v.fixPosition(position{file: strings.Join(parts[:len(parts)-2], ":"), line: line, col: col})
	}
	return position{}
}

// scriptError turns the error of a JavaScript call into a *api.ScriptError
// and decides whether the runtime may be reused.
func (v *vm) scriptError(err error) error {
	var se *api.ScriptError
	if errors.As(err, &se) && !isGojaError(err) {
		return err
	}
	ctx := v.context()
	var (
		ie *goja.InterruptedError
		so *goja.StackOverflowError
		ex *goja.Exception
	)
	out := &api.ScriptError{Engine: errEngine, Msg: err.Error(), Err: err}
	switch {
	case errors.As(err, &ie):
		p := v.framePosition(ie.Stack())
		out.File, out.Line, out.Column = p.file, p.line, p.col
		cause, _ := ie.Value().(error)
		if cause == nil {
			cause = context.Cause(ctx)
		}
		out.Msg, out.Err = "call interrupted: "+errString(cause), cause
		v.markBroken(cause)
	case errors.As(err, &so):
		p := v.framePosition(so.Stack())
		out.File, out.Line, out.Column = p.file, p.line, p.col
		out.Msg = fmt.Sprintf("RangeError: maximum call stack size (%d) exceeded", v.eng.opts.MaxCallStackSize)
		out.Err = ErrStackOverflow
		v.markBroken(ErrStackOverflow)
	case errors.As(err, &ex):
		p := v.framePosition(ex.Stack())
		out.File, out.Line, out.Column = p.file, p.line, p.col
		out.Msg, out.Trace, out.Err = v.describe(ex.Value())
		if out.Err == nil {
			out.Err = ex.Unwrap()
		}
		if stackOverflowed(ex) {
			out.Err = ErrStackOverflow
			v.markBroken(ErrStackOverflow)
		}
	}
	if ctx.Err() != nil && out.Err == nil {
		out.Err = context.Cause(ctx)
	}
	return out
}

// stackOverflowed reports goja's own "Maximum call stack size exceeded"
// RangeError, raised as an ordinary exception by some built-ins.
func stackOverflowed(ex *goja.Exception) bool {
	return strings.Contains(ex.Error(), "Maximum call stack size exceeded")
}

func isGojaError(err error) bool {
	var ie *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	return errors.As(err, &ie) || errors.As(err, &so) || errors.As(err, &ex)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// valueError is a *api.ScriptError for a thrown or rejected value that did
// not come with a goja exception (a rejected promise's reason).
func (v *vm) valueError(val goja.Value) *api.ScriptError {
	msg, stack, cause := v.describe(val)
	p := v.stackPosition(stack)
	return &api.ScriptError{Engine: errEngine, File: p.file, Line: p.line, Column: p.col, Msg: msg, Trace: stack, Err: cause}
}

// describe renders a thrown value: its message ("Error: kaput"), its
// stack when it is an Error, and the Go error behind it when an API
// function threw it. It never lets a script's toString or getter escape.
func (v *vm) describe(val goja.Value) (msg, stack string, cause error) {
	if val == nil {
		return "undefined", "", nil
	}
	obj, ok := val.(*goja.Object)
	if !ok {
		return val.String(), "", nil
	}
	cause = v.causes[obj]
	err := v.jsDo(func() {
		msg = obj.String()
		if s := obj.Get("stack"); s != nil && !goja.IsUndefined(s) && !goja.IsNull(s) {
			stack = s.String()
		}
	})
	if err != nil {
		msg = "[uncaught " + obj.ClassName() + "]"
	}
	return msg, stack, cause
}

// markBroken records that the runtime must not be reused.
func (v *vm) markBroken(err error) {
	if v.broken == nil {
		v.broken = err
	}
}
