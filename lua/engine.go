package lua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/api/vmpool"
)

// Defaults of Options.
const (
	DefaultCallStackSize   = 200
	DefaultRegistryMaxSize = 256 * 1024
	DefaultMaxStringSize   = 64 << 20
	// DefaultPoolWait is how long a call waits for a free state.
	DefaultPoolWait = vmpool.DefaultWait
)

const (
	// registrySize is the initial value stack of a state and of each
	// coroutine: small, because app.lua-style bodies make a coroutine per
	// request; it grows on demand up to Options.RegistryMaxSize.
	registrySize = 128
	// maxCoroutineDepth bounds coroutines resuming coroutines: each
	// level nests a Go call and has a call stack of its own.
	maxCoroutineDepth = 100
)

// Options configure an Engine. Zero fields take the defaults.
type Options struct {
	// PoolSize is the number of Lua states per program (default
	// max(4, 2*runtime.NumCPU()): calls that wait in uwsgi.async_sleep,
	// recv or rpc hold a state without using a processor, and GOMAXPROCS
	// may be 1 when the engine is made).
	PoolSize int
	// PoolWait bounds how long a call waits for a free state (default
	// DefaultPoolWait); then it fails with ErrPoolBusy, counted in
	// api.Counters.PoolTimeouts.
	PoolWait time.Duration
	// CallStackSize is the deepest Lua call nesting (default 200).
	CallStackSize int
	// RegistryMaxSize is the most value-stack slots a state or coroutine
	// grows to (default 256Ki).
	RegistryMaxSize int
	// MaxStringSize is the longest string the engine's string functions
	// build (default 64 MiB).
	MaxStringSize int
	// Logger receives print output and state replacements; nil means the
	// Registrations' logger.
	Logger *slog.Logger
}

// Engine is the Lua engine. It is safe for concurrent use.
type Engine struct {
	opts  Options
	funcs []api.Func
	comp  *compiler
}

var (
	_ api.Engine    = (*Engine)(nil)
	_ api.Evaluator = (*Engine)(nil)
)

// New returns a Lua engine.
func New(opts Options) *Engine {
	if opts.PoolSize <= 0 {
		opts.PoolSize = vmpool.DefaultSize()
	}
	if opts.PoolWait <= 0 {
		opts.PoolWait = DefaultPoolWait
	}
	if opts.CallStackSize <= 0 {
		opts.CallStackSize = DefaultCallStackSize
	}
	if opts.RegistryMaxSize <= 0 {
		opts.RegistryMaxSize = DefaultRegistryMaxSize
	}
	opts.RegistryMaxSize = max(opts.RegistryMaxSize, registrySize)
	if opts.MaxStringSize <= 0 {
		opts.MaxStringSize = DefaultMaxStringSize
	}
	e := &Engine{opts: opts, funcs: api.Funcs()}
	e.comp = newCompiler(e.concat)
	return e
}

// Name returns "lua".
func (e *Engine) Name() string { return "lua" }

// Extensions returns [".lua"].
func (e *Engine) Extensions() []string { return []string{".lua"} }

// Modifier returns uwsgi.ModLua (6).
func (e *Engine) Modifier() uwsgi.Modifier { return uwsgi.ModLua }

func (e *Engine) logger(env *api.Registrations) *slog.Logger {
	return api.EngineLogger(e.opts.Logger, env)
}

// file is one compiled script of a program.
type file struct {
	name   string // as given, "app.lua"
	module string // its require name, "app"
	proto  *lua.FunctionProto
}

// program is what Load made of the files: the compiled code and the pool
// of states. It implements api.Program.
type program struct {
	eng   *Engine
	env   *api.Registrations
	log   *slog.Logger
	files []file
	mods  *modules

	pool *vmpool.Pool[*vm]
	// life is the generation's lifetime: replacement states are built
	// under it, and Close ends it.
	life context.Context
	stop context.CancelFunc

	shape vmpool.Shape // what every state's load made
	apps  map[string]api.App
}

// Load compiles files, builds the pool of states and runs the files in
// each (see the package comment). A syntax error or an error raised while
// a file runs fails the load with a *api.ScriptError.
func (e *Engine) Load(ctx context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	sorted := api.SortedFiles(files)
	p := &program{
		eng:  e,
		env:  env,
		log:  e.logger(env),
		mods: newModules(e.comp, env.Dir),
		apps: map[string]api.App{},
		pool: newPool(e.opts.PoolWait, env.Counters()),
	}
	for _, f := range sorted {
		proto, err := e.comp.compile(f.Source, f.Name)
		if err != nil {
			return nil, err
		}
		p.mods.add(f.Name, proto)
		p.files = append(p.files, file{name: f.Name, module: moduleName(f.Name), proto: proto})
	}
	p.life, p.stop = context.WithCancel(context.WithoutCancel(ctx))

	// Functions the first state registered may be called (and wait for a
	// state) before Load returns; if it fails they get ErrClosed.
	first, err := newVM(ctx, e, env, p, false)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.shape = first.shape()
	for _, name := range p.shape.Apps {
		p.apps[name] = &app{p: p, name: name, file: name + ".lua"}
	}
	if err := p.pool.Fill(ctx, e.opts.PoolSize, first, p.newReplica); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// moduleName is the require name of a script: "lib/x.lua" is "lib.x".
func moduleName(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, ".lua"), "/", ".")
}

// Apps returns the apps the files defined.
func (p *program) Apps() map[string]api.App { return maps.Clone(p.apps) }

// Close closes the idle states now and the borrowed ones when their calls
// return them. Calls after Close fail with ErrClosed.
func (p *program) Close() error {
	p.pool.Close()
	p.stop()
	return nil
}

// newReplica builds a state in replica mode and checks that it defined
// what the first state did.
func (p *program) newReplica(ctx context.Context) (*vm, error) {
	v, err := newVM(ctx, p.eng, p.env, p, true)
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

// heldKey marks in a context the states of program p that the call
// holds: innermost first (a call holding one state may borrow another to
// run a function bound to it).
type heldKey struct{ p *program }

type holding struct {
	v     *vm
	outer *holding
}

// hold marks v as held by the calls under the returned context.
func hold(ctx context.Context, p *program, v *vm) context.Context {
	outer, _ := ctx.Value(heldKey{p}).(*holding)
	return context.WithValue(ctx, heldKey{p}, &holding{v: v, outer: outer})
}

// held returns the state the call holds (want nil: the innermost), or nil.
func held(ctx context.Context, p *program, want *vm) *vm {
	for h, _ := ctx.Value(heldKey{p}).(*holding); h != nil; h = h.outer {
		if want == nil || h.v == want {
			return h.v
		}
	}
	return nil
}

// acquire borrows a state for a call: the one the call already holds
// (re-entrant calls), or one from the pool: any state (want nil) or want.
// The returned context marks the state as held; release must be called
// once the call is done with it.
func (p *program) acquire(ctx context.Context, want *vm) (*vm, context.Context, func(), error) {
	if v := held(ctx, p, want); v != nil {
		return v, ctx, func() {}, nil
	}
	if ctx.Err() != nil { // no state to waste on a call that cannot run
		return nil, ctx, nil, context.Cause(ctx)
	}
	v, build, err := p.pool.Get(ctx, want)
	if errors.Is(err, vmpool.ErrBusy) {
		return nil, ctx, nil, p.busy(err)
	}
	if err != nil {
		return nil, ctx, nil, err
	}
	switch {
	case build: // the place of a detached state
		if v, err = p.rebuild(); err != nil {
			p.pool.Failed()
			return nil, ctx, nil, err
		}
	case v.L == nil: // a slot whose replacement could not be built
		nv, err := p.rebuild()
		if err != nil {
			p.pool.Put(v)
			return nil, ctx, nil, err
		}
		v = nv
	}
	return v, hold(p.pool.Lend(ctx, v), p, v), func() { p.release(v) }, nil
}

// busy logs a call that found no free state within the pool's wait (the
// pool counted it).
func (p *program) busy(err error) error {
	p.log.Warn("lua: no free state for a call", "pool_size", p.eng.opts.PoolSize, "waited", p.eng.opts.PoolWait)
	return fmt.Errorf("%w: %w", ErrPoolBusy, err)
}

// rebuild builds a replacement state under the generation's lifetime.
func (p *program) rebuild() (*vm, error) {
	return vmpool.Rebuild(p.life, p.env.Counters(), p.newReplica)
}

// release returns a state to the pool, replacing it when it must not be
// reused.
func (p *program) release(v *vm) {
	if v.broken == nil {
		v.iso.endCall()
		p.pool.Put(v)
		return
	}
	cause := v.broken
	v.close()
	if !p.pool.Discard(v) { // a detached state whose place was refilled
		p.log.Info("lua: state discarded", "cause", cause)
		return
	}
	nv, err := p.rebuild()
	if err != nil {
		p.log.Error("lua: cannot replace a discarded state; retrying at the next call", "err", err)
		nv = &vm{}
	} else {
		p.log.Info("lua: state replaced", "cause", cause)
	}
	p.pool.Put(nv)
}

// progFunc is a function captured at load: key n is the n-th callback in
// every state of the program.
type progFunc struct {
	p   *program
	key int
}

var _ api.BytesCallable = (*progFunc)(nil)

// Call calls the function with converted arguments and returns its
// first result.
func (f *progFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	v, ctx, release, err := f.p.acquire(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer release()
	fn, err := v.callback(f.key)
	if err != nil {
		return nil, err
	}
	return v.callValues(ctx, fn, args)
}

// CallBytes calls the function with string arguments and converts its
// result like uWSGI's lua_tolstring.
func (f *progFunc) CallBytes(ctx context.Context, args [][]byte) ([]byte, error) {
	v, ctx, release, err := f.p.acquire(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer release()
	fn, err := v.callback(f.key)
	if err != nil {
		return nil, err
	}
	return v.callBytes(ctx, fn, args)
}

// callback returns the function of key in v. A replica still loading may
// not have reached the file that defines it.
func (v *vm) callback(key int) (*lua.LFunction, error) {
	if key >= len(v.captured) {
		return nil, fmt.Errorf("lua: callback %d is not defined yet in this state (called while the files load)", key)
	}
	return v.captured[key], nil
}

// stateFunc is a function value converted during a call (not captured at
// load): it exists in one state only, so calling it borrows that state,
// waiting for it if it is busy, and fails with ErrStateGone once the
// state was replaced or closed. The functions of an Eval are callable only
// within the Eval.
type stateFunc struct {
	v  *vm
	fn *lua.LFunction
}

var (
	_ api.BytesCallable = (*stateFunc)(nil)
	_ api.BoundCallable = (*stateFunc)(nil)
)

// Gone is closed once the function's state was replaced or closed.
func (f *stateFunc) Gone() <-chan struct{} { return f.v.goneCh }

func (f *stateFunc) borrow(ctx context.Context) (context.Context, func(), error) {
	if held(ctx, f.v.prog, f.v) != nil {
		if f.v.L == nil {
			return ctx, nil, ErrStateGone
		}
		return ctx, func() {}, nil
	}
	if f.v.prog == nil || f.v.gone.Load() {
		return ctx, nil, ErrStateGone
	}
	_, ctx, release, err := f.v.prog.acquire(ctx, f.v)
	return ctx, release, err
}

// Call calls the function in its state.
func (f *stateFunc) Call(ctx context.Context, args []api.Value) (api.Value, error) {
	ctx, release, err := f.borrow(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return f.v.callValues(ctx, f.fn, args)
}

// CallBytes calls the function in its state.
func (f *stateFunc) CallBytes(ctx context.Context, args [][]byte) ([]byte, error) {
	ctx, release, err := f.borrow(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return f.v.callBytes(ctx, f.fn, args)
}

// Eval runs code in a fresh sandboxed state with the uwsgi table and
// returns what it returns (an expression's value: "return " is tried
// first; several values are a list) and what it printed (at most
// maxOutput bytes). Functions it defines cannot be registered, since the
// state is closed when Eval returns (ErrStateGone).
func (e *Engine) Eval(ctx context.Context, env *api.Registrations, code string, maxOutput int) (api.Value, string, bool, error) {
	out := api.NewEvalOutput(maxOutput)
	val, err := e.eval(ctx, env, code, out)
	output, truncated := out.Seal()
	return val, output, truncated, err
}

func (e *Engine) eval(ctx context.Context, env *api.Registrations, code string, out *api.EvalOutput) (api.Value, error) {
	v, err := newState(e, env, nil, newModules(e.comp, env.Dir), out)
	if err != nil {
		return nil, err
	}
	defer v.close()
	proto, err := e.comp.compile([]byte("return "+code), "eval")
	if err != nil {
		if proto, err = e.comp.compile([]byte(code), "eval"); err != nil {
			return nil, err
		}
	}
	ctx = hold(ctx, nil, v)
	rets, err := v.call(ctx, v.L.NewFunctionFromProto(proto), nil, lua.MultRet)
	if err != nil {
		return nil, err
	}
	return v.results(rets)
}
