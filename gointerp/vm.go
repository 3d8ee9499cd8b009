package gointerp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/scripthost/scripthost/api"
)

const (
	// stopGrace is how long an interrupted call waits for its script to
	// stop before it gives the interpreter up (see vm.do).
	stopGrace = 500 * time.Millisecond
	// hiddenPath is the package through which a file's generated main
	// hands its interpreter to the engine; scripts cannot import it.
	hiddenPath  = "scripthost.internal/runtime"
	hiddenAlias = reservedPrefix
	// mainRename is what a file's own main function is renamed to: the
	// generated main calls it, then serves.
	mainRename = "__scripthost_main"
	// maxStackFrames bounds the Go stack of a call (some 50 MB): yaegi
	// runs interpreted calls on the Go stack, whose overflow would end
	// the process. checkEvery is how often check measures it.
	maxStackFrames = 100_000
	checkEvery     = 4096
)

// vm is one yaegi interpreter running one file (or an Eval). The file's
// package-level variables and init functions run, then its main if any,
// then a generated main serves the calls of the program one at a time, in
// the goroutine of the interpreter's one EvalWithContext: every call
// (RPC, signal, request) is a job handed to that goroutine. Running
// everything within one execution is what lets yaegi interrupt any of it
// (its cancellation channel is per execution, and closures keep the one of
// the execution that made them).
type vm struct {
	eng  *Engine
	sc   *script // nil for Eval
	env  *api.Registrations
	log  *slog.Logger
	name string // the file, for messages
	conv converter
	in   *interp.Interpreter

	eval    bool                     // an Eval's interpreter
	replica bool                     // registrations only capture their functions
	scratch api.ScratchRegistrations // where they go instead, while loading
	loading bool                     // running the file: functions get callback keys

	captured []reflect.Value // callbacks by key (made while loading)
	handler  http.Handler    // the app, if the file defines one
	appErr   error

	// ctx is the context of the running call: set and read by whoever
	// runs the interpreter at the moment (its goroutine, or a goroutine
	// running a re-entrant call while it waits).
	ctx      context.Context
	req      *reqState // the request being served, if any
	calls    int       // function calls, for check
	overflow bool      // check stopped the interpreter
	// allocErr is the allocation the guards refused during the current
	// job (see alloc.go).
	allocErr *allocError
	// globals are the file's package-level variables as the load left
	// them, restored after every call.
	globals globals
	// evalGoroutines run an Eval's chunks (see enterEval).
	evalMu         sync.Mutex
	evalGoroutines []uint64
	evalLeft       bool // the Eval returned
	// dead: a script panic was recovered; the interpreter is discarded
	// after the current job (written while running, read after the job).
	dead bool

	jobs     chan *job
	served   chan struct{} // closed when the file has loaded and serving begins
	quit     chan struct{} // closed by close: the serve loop returns
	stopped  chan struct{} // closed by interrupt: time.Sleep returns
	exited   chan struct{} // closed when the execution's EvalWithContext returned
	execErr  error         // valid once exited is closed
	stopExec context.CancelCauseFunc
	stopOnce sync.Once
	quitOnce sync.Once

	stdout    io.Writer
	stderr    *traceWriter
	gone      atomic.Bool // closed: its functions cannot be called any more
	abandoned atomic.Bool // interrupted without stopping: API calls fail
}

// check runs at the start of every interpreted function: every
// checkEvery calls it makes sure the Go stack is under maxStackFrames
// frames. Past that it stops the interpreter, which unwinds the calls
// without panicking (yaegi's panics cost the square of the depth to
// unwind), and the call fails with ErrStackOverflow.
func (v *vm) check() {
	v.calls++
	if v.calls%checkEvery != 0 {
		return
	}
	var pc [1]uintptr
	if runtime.Callers(maxStackFrames, pc[:]) == 0 {
		return
	}
	v.overflow = true
	v.dead = true
	v.interrupt(ErrStackOverflow)
	if !v.eval {
		<-v.exited // yaegi's stop has happened: the calls unwind
	}
}

func overflowError(name string) *api.ScriptError {
	return &api.ScriptError{Engine: errEngine, File: name, Msg: fmt.Sprintf("stack overflow: calls nested over %d Go frames deep", maxStackFrames),
		Err: ErrStackOverflow}
}

// noFiles is the interpreters' source filesystem: imports of packages
// that are not built in find no source.
type noFiles struct{}

func (noFiles) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// job is one call handed to an interpreter's goroutine.
type job struct {
	ctx  context.Context
	fn   func() error
	done chan struct{}
	err  error
}

// newInterp makes the sandboxed interpreter: the allowed standard
// packages, the allocation guards and the interruptible time.Sleep of
// this interpreter, the uwsgi package and the hidden serve hook; no
// source is ever read from disk.
func (v *vm) newInterp() error {
	v.in = interp.New(interp.Options{
		Stdout:               v.stdout,
		Stderr:               v.stderr,
		Stdin:                strings.NewReader(""),
		Args:                 []string{v.name},
		Env:                  []string{},
		SourcecodeFilesystem: noFiles{},
	})
	// Cancellable channel operations are chosen when code is compiled,
	// and function literals are compiled with their file: switch them on
	// first (any *WithContext call does).
	if _, err := v.in.EvalWithContext(context.Background(), "0"); err != nil {
		return err
	}
	sb := v.eng.sandbox
	if err := v.in.Use(sb.exports); err != nil {
		return err
	}
	own := interp.Exports{
		UwsgiPath + "/uwsgi": v.uwsgiSymbols(),
		hiddenPath + "/runtime": {
			"Serve": reflect.ValueOf(v.serve), "Check": reflect.ValueOf(v.check),
			"Make": reflect.ValueOf(v.makeLen), "Append": reflect.ValueOf(v.appendLen), "Enter": reflect.ValueOf(v.enterEval),
		},
	}
	maps.Copy(own, v.guardedFuncs(sb.allowed))
	if sb.allowed["time"] {
		own[stdlibKeys["time"]] = map[string]reflect.Value{"Sleep": reflect.ValueOf(sleeper(v.stopped))}
	}
	return v.in.Use(own)
}

func newVMBase(e *Engine, env *api.Registrations, log *slog.Logger, name string) *vm {
	v := &vm{
		eng:     e,
		env:     env,
		log:     log,
		name:    name,
		jobs:    make(chan *job),
		served:  make(chan struct{}),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	v.conv = converter{wrap: v.wrapFunc, ctx: func() context.Context { return v.ctx }}
	v.stdout = &lineLogger{log: log, file: name, stream: "stdout"}
	v.stderr = &traceWriter{out: &lineLogger{log: log, file: name, stream: "stderr"}}
	return v
}

// newVM builds an interpreter for sc and loads the file in it: the first
// of a program registers for real, replicas into a scratch Registrations. It
// returns once the file's init functions and main have run.
func newVM(ctx context.Context, sc *script, replica bool) (*vm, error) {
	p := sc.p
	v := newVMBase(p.eng, p.env, p.log, sc.name)
	v.sc, v.replica = sc, replica
	if err := v.newInterp(); err != nil {
		return nil, fmt.Errorf("gointerp: %s: building the interpreter: %w", sc.name, err)
	}
	ctx, cancelLoad := p.env.FileContext(ctx, sc.name)
	defer cancelLoad()
	execCtx, stop := context.WithCancelCause(context.Background())
	v.stopExec = stop
	v.loading = true
	v.ctx = hold(ctx, v)
	go v.execute(execCtx, sc.source())
	served := func() (*vm, error) {
		if v.appErr != nil {
			v.close()
			return nil, v.appErr
		}
		return v, nil
	}
	select {
	case <-v.served:
		return served()
	case <-v.exited:
		select {
		case <-v.served: // and then ended at once: a bad Handler
			return served()
		default:
		}
		v.close()
		if v.overflow {
			return nil, overflowError(sc.name)
		}
		if v.execErr != nil {
			var se *api.ScriptError
			if pe, ok := v.execErr.(interp.Panic); ok {
				se = panicError(sc.name, pe.Value, v.stderr.take())
			} else {
				se = compileError(sc.name, v.execErr, 0)
			}
			se.Line, se.Column = sc.fixPos(se.Line, se.Column)
			return nil, se
		}
		return nil, &api.ScriptError{Engine: errEngine, File: sc.name, Msg: "the file stopped before it was loaded"}
	case <-ctx.Done():
		v.abandoned.Store(true) // what the file does from now on does not count
		v.interrupt(context.Cause(ctx))
		v.close()
		cause := context.Cause(ctx)
		if errors.Is(cause, api.ErrLoadTimeout) {
			// The host counts the timeouts of a load it asked for; a
			// replica is built later, for a call, and counted here.
			if st := p.env.State; replica && st != nil && st.Counters != nil {
				st.Counters.LoadTimeouts.Add(1)
			}
			p.log.Warn("gointerp: a file did not finish loading in time", "file", sc.name, "replica", replica)
		}
		return nil, &api.ScriptError{Engine: errEngine, File: sc.name, Msg: "load interrupted: " + cause.Error(), Err: cause}
	}
}

// execute compiles and runs the file: init, main, then the serve loop
// until close. (EvalWithContext, unlike ExecuteWithContext, does not race
// with its own goroutine when interrupted.)
func (v *vm) execute(ctx context.Context, src string) {
	defer close(v.exited)
	_, v.execErr = v.in.EvalWithContext(ctx, src)
}

// serve is called by the file's generated main with its Handler (nil if
// it has none): it ends the load and runs jobs until the interpreter is
// closed or a job panicked.
func (v *vm) serve(handler any) {
	v.setApp(handler)
	v.loading = false
	v.scratch.Close()
	v.ctx = nil
	close(v.served)
	if v.appErr != nil {
		return
	}
	v.globals = snapshotGlobals(v.in)
	id := goroutineID()
	serving.Store(id, v)
	defer serving.Delete(id)
	for {
		select {
		case j := <-v.jobs:
			v.runJob(j)
			if v.dead {
				return
			}
		case <-v.quit:
			return
		}
	}
}

func (v *vm) setApp(h any) {
	if v.sc == nil || !v.sc.hasHandler {
		return
	}
	switch h := h.(type) {
	case func(http.ResponseWriter, *http.Request):
		if h != nil {
			v.handler = http.HandlerFunc(h)
			return
		}
	case http.Handler:
		if rv := reflect.ValueOf(h); !(rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Func) || !rv.IsNil() {
			v.handler = h
			return
		}
	}
	msg := fmt.Sprintf("Handler is %T; want a func(http.ResponseWriter, *http.Request) or a non-nil http.Handler", h)
	if h == nil {
		msg = "Handler is nil; want a func(http.ResponseWriter, *http.Request) or a non-nil http.Handler"
	}
	v.appErr = &api.ScriptError{Engine: errEngine, File: v.name, Line: v.sc.handlerLine, Msg: msg, Err: ErrHandler}
}

func (v *vm) runJob(j *job) {
	defer close(j.done)
	defer func() {
		v.ctx = nil
		if p := recover(); p != nil {
			j.err = v.panicErr(p)
			v.dead = true
		}
	}()
	v.ctx = j.ctx
	v.stderr.take()
	j.err = j.fn()
	if v.overflow {
		j.err = overflowError(v.name)
	}
	if err := v.allocFailed(); err != nil && j.err == nil {
		j.err = err // the script recovered the guard's panic
	}
	if !v.dead {
		v.globals.restore()
	}
}

// do runs fn in v's goroutine under ctx, which must hold v. When ctx ends
// first, the interpreter is stopped: yaegi stops interpreted code at its
// next instruction and wakes its blocked channel operations, our
// time.Sleep returns, and the API functions return the context's error.
// A script blocked in a library call nothing can wake (sync.Mutex.Lock of
// a lock nobody releases, a long regexp) cannot be stopped: after
// stopGrace the call returns anyway and the interpreter is abandoned, its
// API calls failing from then on. discard reports that v must not serve
// again (interrupted or panicked).
func (v *vm) do(ctx context.Context, fn func() error) (discard bool, err error) {
	j := &job{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case v.jobs <- j:
	case <-v.exited:
		return true, v.exitError()
	case <-ctx.Done():
		return false, interrupted(v.name, ctx)
	}
	select {
	case <-j.done:
		if j.err == nil && ctx.Err() != nil {
			// The script went on after the API told it the call was
			// over; the call failed all the same.
			return false, interrupted(v.name, ctx)
		}
		return v.dead, j.err
	case <-ctx.Done():
		v.interrupt(context.Cause(ctx))
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case <-j.done:
		case <-t.C:
			v.abandoned.Store(true)
			v.log.Warn("gointerp: an interrupted script did not stop; its interpreter is abandoned", "file", v.name)
		}
		return true, interrupted(v.name, ctx)
	}
}

// inline runs fn in the interpreter the calling goroutine already holds
// (a call re-entering its own file): no job, the caller's stack.
func (v *vm) inline(ctx context.Context, fn func() error) (err error) {
	prev := v.ctx
	v.ctx = ctx
	defer func() {
		v.ctx = prev
		if p := recover(); p != nil {
			err = v.panicErr(p)
			v.dead = true
		}
	}()
	return fn()
}

// panicErr describes a panic recovered from the interpreter's code.
func (v *vm) panicErr(p any) *api.ScriptError {
	se := panicError(v.name, p, v.stderr.take())
	if v.sc != nil {
		se.Line, se.Column = v.sc.fixPos(se.Line, se.Column)
	}
	return se
}

func interrupted(name string, ctx context.Context) error {
	cause := context.Cause(ctx)
	return &api.ScriptError{Engine: errEngine, File: name, Msg: "interrupted: " + cause.Error(), Err: cause}
}

func (v *vm) exitError() error {
	if v.execErr != nil {
		return fmt.Errorf("%w: %v", ErrVMGone, v.execErr)
	}
	return ErrVMGone
}

// interrupt stops the interpreted code (yaegi's cancellation) and our
// sleeps.
func (v *vm) interrupt(cause error) {
	v.stopOnce.Do(func() {
		close(v.stopped)
		if v.stopExec != nil {
			v.stopExec(cause)
		}
	})
}

// close ends the serve loop and the execution.
func (v *vm) close() {
	v.quitOnce.Do(func() {
		v.gone.Store(true)
		close(v.quit)
		v.interrupt(ErrClosed)
	})
}

// callFunc calls a script function with api values and returns its result
// as an api value; it runs in the interpreter's goroutine.
func (v *vm) callFunc(fn reflect.Value, args []api.Value) (api.Value, error) {
	t := fn.Type()
	in, err := v.conv.callArgs(t, args)
	if err != nil {
		return nil, &api.ScriptError{Engine: errEngine, File: v.name, Msg: "calling a script function: " + err.Error(), Err: err}
	}
	res, err := v.conv.results(t, fn.Call(in))
	if err != nil {
		return nil, &api.ScriptError{Engine: errEngine, File: v.name, Msg: err.Error(), Err: err}
	}
	return res, nil
}

// wrapFunc makes a script function an api.Callable: a callback of the
// program (found again by key in every interpreter of the file) if made
// while the file loads, else a function of this one interpreter.
func (v *vm) wrapFunc(fn reflect.Value) (api.Callable, error) {
	if v.loading && v.sc != nil {
		key := len(v.captured)
		v.captured = append(v.captured, fn)
		return &progFunc{sc: v.sc, key: key}, nil
	}
	return &vmFunc{v: v, fn: fn}, nil
}

// heldKey marks in a context the interpreters the call holds, innermost
// first: a call holding one may borrow another to run a function of it.
type heldKey struct{}

type holding struct {
	v     *vm
	outer *holding
}

func hold(ctx context.Context, v *vm) context.Context {
	outer, _ := ctx.Value(heldKey{}).(*holding)
	return context.WithValue(ctx, heldKey{}, &holding{v: v, outer: outer})
}

// held returns the innermost interpreter the call holds that is want, or
// (want nil) runs file sc.
func held(ctx context.Context, sc *script, want *vm) *vm {
	for h, _ := ctx.Value(heldKey{}).(*holding); h != nil; h = h.outer {
		if h.v == want || (want == nil && h.v.sc == sc) {
			return h.v
		}
	}
	return nil
}

// progFunc is a function made while a file loaded: key n is the n-th
// such function in every interpreter of the file, so any of them can run
// it.
type progFunc struct {
	sc  *script
	key int
}

// Call calls the function in an interpreter of its file.
func (f *progFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	var res api.Value
	err := f.sc.with(ctx, nil, func(v *vm) error {
		if f.key >= len(v.captured) {
			return fmt.Errorf("gointerp: %s: callback %d is not defined yet (called while the file loads)", f.sc.name, f.key)
		}
		var err error
		res, err = v.callFunc(v.captured[f.key], args)
		return err
	})
	return res, err
}

// vmFunc is a function made during a call: it exists in one interpreter,
// so calling it borrows that one (waiting while it serves other calls)
// and fails with ErrVMGone once it was discarded or closed.
type vmFunc struct {
	v  *vm
	fn reflect.Value
}

var _ api.BoundCallable = (*vmFunc)(nil)

// Gone is closed once the function's interpreter was discarded or closed.
func (f *vmFunc) Gone() <-chan struct{} { return f.v.quit }

// Call calls the function in its interpreter.
func (f *vmFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	var res api.Value
	run := func(v *vm) error {
		var err error
		res, err = v.callFunc(f.fn, args)
		return err
	}
	if f.v.sc == nil { // an Eval's: callable only while the Eval runs it
		if held(ctx, nil, f.v) == nil || f.v.gone.Load() {
			return nil, ErrVMGone
		}
		return res, f.v.inline(ctx, func() error { return run(f.v) })
	}
	err := f.v.sc.with(ctx, f.v, run)
	return res, err
}

// lineLogger logs what a script prints, line by line.
type lineLogger struct {
	log          *slog.Logger
	file, stream string
	mu           sync.Mutex
	buf          []byte
}

// maxLogLine cuts lines that never end.
const maxLogLine = 64 << 10

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 && len(l.buf) < maxLogLine {
			break
		}
		if i < 0 {
			i = len(l.buf)
		}
		l.log.Info(string(l.buf[:i]), "source", "script", "file", l.file, "stream", l.stream)
		l.buf = l.buf[min(i+1, len(l.buf)):]
	}
	return len(p), nil
}

// traceWriter is an interpreter's stderr: yaegi writes there the
// position of every frame a panic unwinds ("file:12:3: panic: ..."),
// which is kept for the error of the call (take); everything else goes
// to the log.
type traceWriter struct {
	out   io.Writer
	mu    sync.Mutex
	trace strings.Builder
}

func (w *traceWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if _, _, _, rest, ok := splitPosition(line); ok && strings.HasPrefix(rest, "panic") {
			if w.trace.Len() < 64<<10 {
				w.trace.WriteString(line)
			}
			continue
		}
		if line != "" {
			w.out.Write([]byte(line))
		}
	}
	return len(p), nil
}

// take returns the panic trace written since the last take.
func (w *traceWriter) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.trace.String()
	w.trace.Reset()
	return s
}
