package js

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/api/vmpool"
)

// Defaults of Options.
const (
	DefaultMaxCallStackSize = 1000
	DefaultMaxStringSize    = 64 << 20
	DefaultPoolWait         = vmpool.DefaultWait
	// DefaultRegexpMatchTimeout is Options.RegexpMatchTimeout's default.
	DefaultRegexpMatchTimeout = 5 * time.Second
)

// DefaultPoolSize is Options.PoolSize's default: 4 runtimes per CPU, at
// least 8. (Calls that wait in uwsgi functions hold their runtime, and
// GOMAXPROCS may be 1 when the process starts, so the CPUs count.)
func DefaultPoolSize() int { return vmpool.DefaultSize() }

const ()

// Options configure an Engine. Zero fields take the defaults.
type Options struct {
	// PoolSize is the number of runtimes per program (default
	// DefaultPoolSize(): max(4, 2*runtime.NumCPU())).
	PoolSize int
	// PoolWait bounds how long a call waits for a free runtime (default
	// DefaultPoolWait, 5 s); then it fails with an error wrapping
	// ErrPoolBusy and vmpool.ErrBusy, counted in
	// api.Counters.PoolTimeouts and logged.
	PoolWait time.Duration
	// MaxCallStackSize is the deepest JavaScript call nesting (default
	// 1000).
	MaxCallStackSize int
	// MaxStringSize is the longest string, in UTF-16 code units, that
	// the guarded built-ins (repeat, padStart, padEnd, concat, join,
	// JSON.stringify) build and input.read returns (default 64Mi); the
	// other allocations a script sizes are bounded by api.Charge.
	MaxStringSize int
	// RegexpMatchTimeout bounds one match of a regular expression that
	// goja runs in regexp2 (those that backtrack), which does not see the
	// call's deadline (default DefaultRegexpMatchTimeout); the match then
	// throws. goja has no setting per runtime: the first New sets
	// regexp2.DefaultMatchTimeout, for the whole process, and later
	// engines keep it.
	RegexpMatchTimeout time.Duration
	// Logger receives console output and runtime replacements; nil means
	// the Registrations' logger.
	Logger *slog.Logger
}

// setMatchTimeout sets regexp2's process-wide match timeout, once: it is
// read without a lock whenever a runtime compiles a regular expression.
var setMatchTimeout sync.Once

// Engine is the JavaScript engine. It is safe for concurrent use.
type Engine struct {
	opts  Options
	funcs []api.Func
}

var (
	_ api.Engine    = (*Engine)(nil)
	_ api.Evaluator = (*Engine)(nil)
)

// New returns a JavaScript engine.
func New(opts Options) *Engine {
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize()
	}
	if opts.PoolWait <= 0 {
		opts.PoolWait = DefaultPoolWait
	}
	if opts.MaxCallStackSize <= 0 {
		opts.MaxCallStackSize = DefaultMaxCallStackSize
	}
	if opts.MaxStringSize <= 0 {
		opts.MaxStringSize = DefaultMaxStringSize
	}
	if opts.RegexpMatchTimeout <= 0 {
		opts.RegexpMatchTimeout = DefaultRegexpMatchTimeout
	}
	setMatchTimeout.Do(func() { regexp2.DefaultMatchTimeout = opts.RegexpMatchTimeout })
	return &Engine{opts: opts, funcs: api.Funcs()}
}

// Name returns "js".
func (e *Engine) Name() string { return "js" }

// Extensions returns [".js"].
func (e *Engine) Extensions() []string { return []string{".js"} }

// Modifier returns uwsgi.ModV8 (24).
func (e *Engine) Modifier() uwsgi.Modifier { return uwsgi.ModV8 }

func (e *Engine) logger(env *api.Registrations) *slog.Logger {
	return api.EngineLogger(e.opts.Logger, env)
}

// program is what Load made of the files: the compiled code and the pool
// of runtimes. It implements api.Program.
type program struct {
	eng   *Engine
	env   *api.Registrations
	log   *slog.Logger
	files []string // names, sorted
	mods  *modules
	pool  *vmpool.Pool[*vm]

	// life is the generation's lifetime: replacement runtimes are built
	// under it, and Close ends it.
	life context.Context
	stop context.CancelFunc

	closed atomic.Bool

	shape vmpool.Shape // what every runtime's load made
	apps  map[string]api.App
}

// Load compiles files, builds the pool of runtimes and runs the files in
// each (see the package comment). A syntax error or an exception thrown
// while a file runs fails the load with a *api.ScriptError.
func (e *Engine) Load(ctx context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	sorted := api.SortedFiles(files)
	p := &program{
		eng:  e,
		env:  env,
		log:  e.logger(env),
		mods: newModules(env.Dir),
		apps: map[string]api.App{},
		pool: newPool(),
	}
	p.pool.MaxWait, p.pool.Counters = e.opts.PoolWait, env.Counters()
	for _, f := range sorted {
		prg, err := compileModule(f.Name, f.Source)
		if err != nil {
			return nil, err
		}
		p.mods.add(f.Name, prg)
		p.files = append(p.files, f.Name)
	}
	p.life, p.stop = context.WithCancel(context.WithoutCancel(ctx))

	first, err := p.newVM(ctx, false)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.shape = first.shape()
	for _, name := range p.shape.Apps {
		p.apps[name] = &app{p: p, name: name, file: name + ".js"}
	}
	if err := p.pool.Fill(ctx, e.opts.PoolSize, first, p.newReplica); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// newVM builds a runtime of p and runs the files in it.
func (p *program) newVM(ctx context.Context, replica bool) (*vm, error) {
	v, err := newRuntime(p.eng, p.env, p, p.mods, nil)
	if err != nil {
		return nil, err
	}
	v.replica = replica
	err = v.loadFiles(ctx)
	v.scratch.Close()
	if err == nil {
		err = v.harden()
	}
	if err != nil {
		v.close()
		return nil, err
	}
	// An allocation refused and caught at load left nothing behind.
	v.broken = nil
	return v, nil
}

// newReplica builds a runtime in replica mode and checks that it defined
// what the first runtime did.
func (p *program) newReplica(ctx context.Context) (*vm, error) {
	v, err := p.newVM(ctx, true)
	if err != nil {
		return nil, err
	}
	if err := p.shape.Check(v.shape(), ErrNondeterministicLoad); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

// shape is what the files made in v.
func (v *vm) shape() vmpool.Shape {
	return vmpool.Shape{Callbacks: len(v.captured), Apps: slices.Sorted(maps.Keys(v.apps))}
}

// loadFiles runs the program's files in name order and records the apps
// they define.
func (v *vm) loadFiles(ctx context.Context) error {
	v.loading = true
	defer func() { v.loading = false }()
	for _, name := range v.prog.files {
		if err := v.loadFile(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// loadFile runs file name under its load deadline (api.Registrations.FileContext):
// a file whose top level does not end in time fails the load with a
// *api.ScriptError wrapping api.ErrLoadTimeout.
func (v *vm) loadFile(ctx context.Context, name string) error {
	fctx, cancel := v.env.FileContext(ctx, name)
	defer cancel()
	err := v.run(context.WithValue(fctx, heldKey{v.prog}, v), func() error {
		mod, err := v.loadModule(name)
		if err != nil {
			return v.scriptError(err)
		}
		var fn jsFunc
		err = v.jsDo(func() { fn = appOf(mod.Get("exports")) })
		if err != nil {
			return v.scriptError(err)
		}
		if fn.fn != nil {
			v.apps[strings.TrimSuffix(name, ".js")] = fn
		}
		return nil
	})
	if err == nil && fctx.Err() != nil { // the deadline came as the file ended
		cause := context.Cause(fctx)
		err = &api.ScriptError{Engine: errEngine, File: name, Msg: "load interrupted: " + errString(cause), Err: cause}
	}
	if errors.Is(err, api.ErrLoadTimeout) {
		v.log.Warn("js: a file did not finish loading in time", "file", name, "err", err)
	}
	return err
}

// appOf returns the JSGI function a module's exports define: the exports
// themselves, or their app property (called with the exports as this).
func appOf(exports goja.Value) jsFunc {
	obj, ok := exports.(*goja.Object)
	if !ok {
		return jsFunc{}
	}
	if fn, ok := goja.AssertFunction(obj); ok {
		return jsFunc{obj: obj, fn: fn, this: goja.Undefined()}
	}
	if a, ok := obj.Get("app").(*goja.Object); ok {
		if fn, ok := goja.AssertFunction(a); ok {
			return jsFunc{obj: a, fn: fn, this: obj}
		}
	}
	return jsFunc{}
}

// Apps returns the apps the files defined.
func (p *program) Apps() map[string]api.App { return maps.Clone(p.apps) }

// Close closes the idle runtimes now and the borrowed ones when their
// calls return them. Calls after Close fail with ErrClosed.
func (p *program) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	p.stop()
	p.pool.Close()
	return nil
}

// heldKey marks in a context the runtime a call of program p holds.
type heldKey struct{ p *program }

func held(ctx context.Context, p *program) *vm {
	v, _ := ctx.Value(heldKey{p}).(*vm)
	return v
}

// acquire borrows a runtime for a call: the one the call already holds
// (re-entrant calls), else want (a pinned function's runtime) or any one
// from the pool. The returned context marks the runtime as held; release
// must be called once the call is done with it.
func (p *program) acquire(ctx context.Context, want *vm) (*vm, context.Context, func(), error) {
	if h := held(ctx, p); h != nil && (want == nil || want == h) {
		return h, ctx, func() {}, nil
	}
	if p.closed.Load() {
		return nil, ctx, nil, ErrClosed
	}
	v, build, err := p.pool.Get(ctx, want)
	if errors.Is(err, vmpool.ErrBusy) { // counted by the pool
		p.log.Warn("js: no runtime came free in time; call refused", "pool_size", p.eng.opts.PoolSize, "wait", p.eng.opts.PoolWait)
		return nil, ctx, nil, fmt.Errorf("%w: %w", ErrPoolBusy, err)
	}
	if err != nil {
		return nil, ctx, nil, err
	}
	switch {
	case build: // the place of a detached runtime
		if v, err = p.rebuild(); err != nil {
			p.pool.Failed()
			return nil, ctx, nil, err
		}
	case v.rt == nil: // a slot whose replacement could not be built
		nv, err := p.rebuild()
		if err != nil {
			p.pool.Put(v)
			return nil, ctx, nil, err
		}
		v = nv
	}
	return v, context.WithValue(p.pool.Lend(ctx, v), heldKey{p}, v), func() { p.release(v) }, nil
}

// rebuild builds a replacement runtime under the generation's lifetime.
func (p *program) rebuild() (*vm, error) {
	return vmpool.Rebuild(p.life, p.env.Counters(), p.newReplica)
}

// release returns a runtime to the pool, replacing it when it must not
// be reused.
func (p *program) release(v *vm) {
	if v.broken == nil {
		p.pool.Put(v)
		return
	}
	cause := v.broken
	v.close()
	if !p.pool.Discard(v) || p.closed.Load() { // a detached runtime whose place was refilled, or closing
		return
	}
	nv, err := p.rebuild()
	if err != nil {
		p.log.Error("js: cannot replace a discarded runtime; retrying at the next call", "err", err)
		nv = &vm{}
	} else {
		p.log.Info("js: runtime replaced", "cause", cause)
	}
	p.pool.Put(nv)
}

// newPool returns the pool of a program's runtimes (see package vmpool):
// filled at load, a discarded runtime replaced by its caller.
func newPool() *vmpool.Pool[*vm] {
	return vmpool.New(0, func(v *vm) bool { return v.dead.Load() }, (*vm).close, ErrClosed, ErrRuntimeGone)
}

// progFunc is a function captured at load: key n is the n-th callback in
// every runtime of the program.
type progFunc struct {
	p   *program
	key int
}

var _ api.BytesCallable = (*progFunc)(nil)

// Call calls the function with converted arguments and returns its
// result (awaited when it is a promise).
func (f *progFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	v, ctx, release, err := f.p.acquire(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer release()
	return v.callValues(ctx, v.captured[f.key], args)
}

// CallBytes calls the function with string arguments and converts its
// result with String() (see resultBytes).
func (f *progFunc) CallBytes(ctx context.Context, args [][]byte) ([]byte, error) {
	v, ctx, release, err := f.p.acquire(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer release()
	return v.callBytes(ctx, v.captured[f.key], args)
}

// pinnedFunc is a function converted after the load: it runs in the
// runtime that made it.
type pinnedFunc struct {
	v *vm
	f jsFunc
}

var (
	_ api.BytesCallable = (*pinnedFunc)(nil)
	_ api.BoundCallable = (*pinnedFunc)(nil)
)

// Gone is closed once the function's runtime was discarded or closed.
func (f *pinnedFunc) Gone() <-chan struct{} { return f.v.deadCh }

func (f *pinnedFunc) acquire(ctx context.Context) (*vm, context.Context, func(), error) {
	if f.v.prog == nil { // Eval's runtime: only while the Eval runs
		if held(ctx, nil) != f.v || f.v.dead.Load() {
			return nil, ctx, nil, ErrRuntimeGone
		}
		return f.v, ctx, func() {}, nil
	}
	return f.v.prog.acquire(ctx, f.v)
}

// Call calls the function in its runtime.
func (f *pinnedFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	v, ctx, release, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return v.callValues(ctx, f.f, args)
}

// CallBytes calls the function in its runtime, as an RPC.
func (f *pinnedFunc) CallBytes(ctx context.Context, args [][]byte) ([]byte, error) {
	v, ctx, release, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return v.callBytes(ctx, f.f, args)
}

// Eval runs code as a script (not a module: sloppy mode, and its
// completion value is the result) in a fresh sandboxed runtime with
// uwsgi, console, timers and require, and returns the result (awaited
// when it is a promise) and what console printed, at most maxOutput
// bytes. Functions it makes die with its runtime: they cannot be
// registered.
func (e *Engine) Eval(ctx context.Context, env *api.Registrations, code string, maxOutput int) (api.Value, string, bool, error) {
	out := api.NewEvalOutput(maxOutput)
	val, err := e.eval(ctx, env, code, out)
	output, truncated := out.Seal()
	return val, output, truncated, err
}

func (e *Engine) eval(ctx context.Context, env *api.Registrations, code string, out *api.EvalOutput) (api.Value, error) {
	mods := newModules(env.Dir)
	v, err := newRuntime(e, env, nil, mods, out)
	if err != nil {
		return nil, err
	}
	defer v.close()
	prg, err := compileScript("<eval>", code)
	if err != nil {
		return nil, err
	}
	if err := v.jsDo(func() {
		v.rt.GlobalObject().DefineDataProperty("require", v.requireFunc(""), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}); err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, heldKey{nil}, v)
	var val api.Value
	err = v.run(ctx, func() error {
		res, err := v.rt.RunProgram(prg)
		if err != nil {
			return v.scriptError(err)
		}
		if res, err = v.await(res); err != nil {
			return err
		}
		val, err = v.exportValue(res)
		return err
	})
	return val, err
}
