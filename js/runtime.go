package js

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/scripthost/scripthost/api"
)

// vm is one goja runtime with what the engine keeps about it. It is used
// by one goroutine at a time: the one that borrowed it from the pool.
type vm struct {
	rt   *goja.Runtime // nil for a pool slot awaiting a rebuild
	eng  *Engine
	env  *api.Registrations
	prog *program // nil for Eval
	mods *modules
	out  *api.EvalOutput // Eval's console capture; nil: console logs
	log  *slog.Logger

	replica bool                     // registrations only capture their functions
	scratch api.ScratchRegistrations // where they go instead, while loading
	loading bool                     // running the files: functions get callback keys

	captured []jsFunc // callbacks by key
	keyOf    map[*goja.Object]int
	apps     map[string]jsFunc       // app functions by name
	modCache map[string]*goja.Object // module objects by name

	ctx context.Context // the running call's
	// scope is the Scope of scopeCtx, the context of the call that last
	// charged an allocation (see charge).
	scope    *api.Scope
	scopeCtx context.Context
	depth    int         // nesting of calls (re-entrant calls)
	broken   error       // why the runtime must not be reused
	dead     atomic.Bool // closed or discarded: pinned functions fail
	// deadCh is closed with the runtime: the end of its pinned functions
	// (pinnedFunc.Gone).
	deadCh chan struct{}

	loop     loop
	rejected map[*goja.Promise]struct{} // rejected promises nobody handled yet
	causes   map[*goja.Object]error     // the Go errors behind errors thrown by the engine

	doFn  func() // what jsDo runs
	tramp goja.Callable

	// Built-ins taken when the runtime is made, so that a script
	// replacing a global cannot break the engine.
	errorCtor, typeErrorCtor, rangeErrorCtor *goja.Object
	uint8Ctor                                *goja.Object
	jsonStringify                            goja.Callable             // the guarded one
	getOwnDesc                               goja.Callable             // Reflect.getOwnPropertyDescriptor
	hasInstance                              *goja.Object              // for guarded constructors
	joining                                  map[*goja.Object]struct{} // arrays being joined
	freezeFn                                 goja.Callable
	promiseThen                              goja.Callable
	resolved                                 goja.Value // a fulfilled promise, for queueMicrotask
	uwsgi                                    *goja.Object
	jsgi                                     *goja.Object // the frozen request.jsgi

	// JSGI requests (jsgi.go).
	req       *request // the request being served
	envGetter goja.Value
	// headerNames maps HTTP_ vars to header names (see headerName).
	headerNames map[string]string
	inputProto  *goja.Object
	versions    map[string]goja.Value
}

// jsFunc is a function of the runtime, with the this value it is called
// with.
type jsFunc struct {
	obj  *goja.Object
	fn   goja.Callable
	this goja.Value
}

// newRuntime makes a sandboxed runtime with console, timers, require
// support and the uwsgi object.
func newRuntime(e *Engine, env *api.Registrations, p *program, mods *modules, out *api.EvalOutput) (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(e.opts.MaxCallStackSize)
	// goja would otherwise read any file a "//# sourceMappingURL=" comment
	// names, also for code given to eval and Function.
	rt.SetParserOptions(parser.WithDisableSourceMaps)
	v := &vm{
		rt:       rt,
		deadCh:   make(chan struct{}),
		eng:      e,
		env:      env,
		prog:     p,
		mods:     mods,
		out:      out,
		log:      e.logger(env),
		keyOf:    map[*goja.Object]int{},
		apps:     map[string]jsFunc{},
		modCache: map[string]*goja.Object{},
		rejected: map[*goja.Promise]struct{}{},
		causes:   map[*goja.Object]error{},
		joining:  map[*goja.Object]struct{}{},
	}
	rt.SetPromiseRejectionTracker(v.trackRejection)
	v.tramp, _ = goja.AssertFunction(rt.ToValue(func(goja.FunctionCall) goja.Value {
		f := v.doFn
		v.doFn = nil
		if f != nil {
			f()
		}
		return goja.Undefined()
	}))
	if err := v.jsDo(v.setup); err != nil {
		return nil, fmt.Errorf("js: making a runtime: %w", err)
	}
	return v, nil
}

// setup takes the built-ins the engine uses and installs the globals.
func (v *vm) setup() {
	rt := v.rt
	global := rt.GlobalObject()
	ctor := func(name string) *goja.Object { return global.Get(name).ToObject(rt) }
	v.errorCtor, v.typeErrorCtor, v.rangeErrorCtor = ctor("Error"), ctor("TypeError"), ctor("RangeError")
	v.uint8Ctor = ctor("Uint8Array")
	v.freezeFn = v.method(ctor("Object"), "freeze")
	promise := ctor("Promise")
	v.promiseThen = v.method(promise.Get("prototype").ToObject(rt), "then")
	resolve := v.method(promise, "resolve")
	res, err := resolve(promise)
	if err != nil {
		panic(err)
	}
	v.resolved = res

	v.guardAllocs()
	v.openConsole()
	v.openTimers()
	v.openUwsgi()
	v.openFetch()
	v.jsgi = v.jsgiObject()
	v.openRequests()
}

func (v *vm) method(obj *goja.Object, name string) goja.Callable {
	fn, ok := goja.AssertFunction(obj.Get(name))
	if !ok {
		panic(v.rt.NewTypeError("js: built-in %s is missing", name))
	}
	return fn
}

// jsDo runs f as if JavaScript had called it: exceptions thrown by
// getters, proxies or toString methods that f triggers come back as an
// error, and the microtasks f queues run before jsDo returns (when no
// other JavaScript is running).
func (v *vm) jsDo(f func()) error {
	prev := v.doFn
	v.doFn = f
	_, err := v.tramp(goja.Undefined())
	v.doFn = prev
	return err
}

// freeze applies Object.freeze to val and, recursively, to the objects
// it holds.
func (v *vm) freeze(val goja.Value, depth int) {
	obj, ok := val.(*goja.Object)
	if !ok || depth > maxDepth {
		return
	}
	for _, k := range obj.Keys() {
		v.freeze(obj.Get(k), depth+1)
	}
	if _, err := v.freezeFn(goja.Undefined(), obj); err != nil {
		panic(err)
	}
}

// newError makes an error object of ctor (Error, TypeError, RangeError)
// and remembers the Go error behind it.
func (v *vm) newError(ctor *goja.Object, msg string, cause error) *goja.Object {
	obj, err := v.rt.New(ctor, v.rt.ToValue(msg))
	if err != nil {
		obj = v.rt.NewGoError(fmt.Errorf("%s", msg))
	}
	if cause != nil {
		v.causes[obj] = cause
	}
	return obj
}

// throw throws an error from a Go function called by JavaScript.
func (v *vm) throw(ctor *goja.Object, msg string, cause error) {
	panic(v.newError(ctor, msg, cause))
}

// context is the context of the call v is running.
func (v *vm) context() context.Context {
	if v.ctx == nil {
		return context.Background()
	}
	return v.ctx
}

// run runs body as a call of v under ctx. The outermost call of a
// runtime watches ctx (interrupting the runtime when it is done), turns
// panics into errors, and at its end drops the call's timers and reports
// its unhandled rejections. Any call whose context ended while it ran
// leaves the runtime broken: the interrupt may still be pending in it.
func (v *vm) run(ctx context.Context, body func() error) (err error) {
	prevCtx := v.ctx
	v.ctx = ctx
	v.depth++
	var stop func() bool
	if ctx.Done() != nil {
		rt := v.rt
		stop = context.AfterFunc(ctx, func() { rt.Interrupt(context.Cause(ctx)) })
	}
	defer func() {
		if p := recover(); p != nil {
			err = v.panicError(p)
		}
		if stop != nil && !stop() {
			v.markBroken(context.Cause(ctx))
		}
		v.depth--
		v.ctx = prevCtx
		if v.depth == 0 {
			v.endCall()
		}
	}()
	return body()
}

// panicError turns a panic that escaped goja into an error; the runtime
// is not reused after it.
func (v *vm) panicError(p any) error {
	switch x := p.(type) {
	case *goja.InterruptedError:
		v.markBroken(ErrPanic)
		return v.scriptError(x)
	case *goja.StackOverflowError:
		v.markBroken(ErrPanic)
		return v.scriptError(x)
	case *goja.Exception:
		v.markBroken(ErrPanic)
		return v.scriptError(x)
	}
	v.markBroken(ErrPanic)
	return &api.ScriptError{Engine: errEngine, Msg: fmt.Sprintf("interpreter panic: %v", p), Trace: string(debug.Stack()), Err: ErrPanic}
}

// endCall ends the outermost call: timers die with it, and rejections
// nobody handled are logged.
func (v *vm) endCall() {
	v.loop.reset()
	if len(v.rejected) > 0 {
		for p := range v.rejected {
			if v.broken == nil {
				msg, _, _ := v.describe(p.Result())
				v.log.Warn("js: unhandled promise rejection", "reason", msg)
			}
		}
		clear(v.rejected)
	}
	clear(v.causes)
}

func (v *vm) trackRejection(p *goja.Promise, op goja.PromiseRejectionOperation) {
	switch op {
	case goja.PromiseRejectionReject:
		v.rejected[p] = struct{}{}
	case goja.PromiseRejectionHandle:
		delete(v.rejected, p)
	}
}

// callJS calls fn; a failure is a *api.ScriptError.
func (v *vm) callJS(fn goja.Callable, this goja.Value, args ...goja.Value) (goja.Value, error) {
	res, err := fn(this, args...)
	if err != nil {
		return nil, v.scriptError(err)
	}
	return res, nil
}

// callValues is Callable.Call: converted arguments, the result awaited
// and converted.
func (v *vm) callValues(ctx context.Context, f jsFunc, args []api.Value) (api.Value, error) {
	var out api.Value
	err := v.run(ctx, func() error {
		jsArgs := make([]goja.Value, len(args))
		for i, a := range args {
			jv, err := v.toJS(a, 0)
			if err != nil {
				return fmt.Errorf("js: argument %d: %w", i+1, err)
			}
			jsArgs[i] = jv
		}
		res, err := v.callJS(f.fn, goja.Undefined(), jsArgs...)
		if err != nil {
			return err
		}
		if res, err = v.await(res); err != nil {
			return err
		}
		out, err = v.exportValue(res)
		return err
	})
	return out, err
}

// callBytes is an RPC call: string arguments, the result converted with
// JavaScript's String() (see resultBytes).
func (v *vm) callBytes(ctx context.Context, f jsFunc, args [][]byte) ([]byte, error) {
	var out []byte
	err := v.run(ctx, func() error {
		jsArgs := make([]goja.Value, len(args))
		for i, a := range args {
			jsArgs[i] = v.rt.ToValue(string(a))
		}
		res, err := v.callJS(f.fn, goja.Undefined(), jsArgs...)
		if err != nil {
			return err
		}
		if res, err = v.await(res); err != nil {
			return err
		}
		out, err = v.resultBytes(res)
		return err
	})
	return out, err
}

// close frees the runtime; functions pinned to it fail from now on.
func (v *vm) close() {
	if !v.dead.Swap(true) && v.deadCh != nil {
		close(v.deadCh)
	}
	v.rt = nil
	v.captured, v.keyOf, v.apps, v.modCache = nil, nil, nil, nil
	v.rejected, v.causes = nil, nil
	v.loop.reset()
}

// guard replaces method name of proto with one that runs check first;
// check may throw, or change the this and arguments the original gets
// (converted once, so that a valueOf or a getter cannot answer
// differently to the original).
func (v *vm) guard(proto *goja.Object, name string, check func(call *goja.FunctionCall)) {
	orig, ok := goja.AssertFunction(proto.Get(name))
	if !ok {
		return
	}
	v.replaceMethod(proto, name, func(call goja.FunctionCall) goja.Value {
		check(&call)
		res, err := orig(call.This, call.Arguments...)
		if err != nil {
			panic(err)
		}
		return res
	})
}

// replaceMethod sets method name of obj to impl, with the name and
// length of the method it replaces.
func (v *vm) replaceMethod(obj *goja.Object, name string, impl func(goja.FunctionCall) goja.Value) {
	length := goja.Value(v.rt.ToValue(0))
	if orig, ok := obj.Get(name).(*goja.Object); ok {
		length = orig.Get("length")
	}
	fn := v.rt.ToValue(impl).(*goja.Object)
	v.setName(fn, name)
	fn.DefineDataProperty("length", length, goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	obj.DefineDataProperty(name, fn, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// setName sets a native function's name property, for stack traces.
func (v *vm) setName(fn *goja.Object, name string) {
	fn.DefineDataProperty("name", v.rt.ToValue(name), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

func formatCount(n float64) string {
	if n < 1e21 {
		return fmt.Sprintf("%.0f", n)
	}
	return fmt.Sprintf("%g", n)
}

// openConsole installs console.log/info/debug/warn/error: lines for the
// logger (or Eval's output).
func (v *vm) openConsole() {
	c := v.rt.NewObject()
	for _, m := range []struct {
		name  string
		level slog.Level
	}{
		{"log", slog.LevelInfo}, {"info", slog.LevelInfo}, {"debug", slog.LevelDebug},
		{"warn", slog.LevelWarn}, {"error", slog.LevelError}, {"trace", slog.LevelDebug},
	} {
		fn := v.rt.ToValue(func(call goja.FunctionCall) goja.Value {
			v.print(m.level, v.format(call.Arguments))
			return goja.Undefined()
		}).(*goja.Object)
		v.setName(fn, m.name)
		c.Set(m.name, fn)
	}
	v.rt.GlobalObject().DefineDataProperty("console", c, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// format renders console arguments: strings as they are, errors with
// their stack, functions by name, other objects as JSON when they can
// be, everything else with String().
func (v *vm) format(args []goja.Value) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v.formatOne(a))
	}
	return b.String()
}

func (v *vm) formatOne(a goja.Value) string {
	obj, ok := a.(*goja.Object)
	if !ok {
		return a.String()
	}
	if _, ok := goja.AssertFunction(obj); ok {
		name := obj.Get("name")
		if name == nil || name.String() == "" {
			return "[Function (anonymous)]"
		}
		return "[Function: " + name.String() + "]"
	}
	if v.rt.InstanceOf(obj, v.errorCtor) {
		if s := obj.Get("stack"); s != nil && !goja.IsUndefined(s) {
			return s.String()
		}
		return obj.String()
	}
	if s, err := v.jsonStringify(goja.Undefined(), obj); err == nil && s != nil && !goja.IsUndefined(s) {
		return s.String()
	}
	return obj.String()
}

// print writes a line of console output.
func (v *vm) print(level slog.Level, s string) {
	if v.out != nil {
		v.out.Line(s)
		return
	}
	v.log.Log(v.context(), level, s, "source", "script")
}
