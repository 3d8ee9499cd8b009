// Package lua is scripthost's Lua engine: .lua files of the scripts
// directory run on gopher-lua (a Lua 5.1 interpreter in Go) with the
// uWSGI API as the global table `uwsgi`, serve WSAPI apps (modifier1 6)
// the way uWSGI's Lua plugin does, and export RPC functions and signal
// handlers to the shared registry.
//
// # Generations, states and the pool
//
// Load compiles every file once into gopher-lua function prototypes and
// builds a pool of Options.PoolSize Lua states (LState) from them, all at
// once so that every error surfaces at load. A state is used by one call
// at a time; calls borrow one from the pool, waiting as long as their
// context allows and at most Options.PoolWait: then the call fails with
// ErrPoolBusy (wrapping vmpool.ErrBusy), counted in the State's
// Counters.PoolTimeouts and logged.
//
// Module-level code runs once per state, in file-name order, each file
// under the Env's load deadline (api.Env.FileContext: a file whose top
// level does not end in time fails the load, in the first state or in a
// replica built later, with a *ScriptError wrapping api.ErrLoadTimeout
// that names the file), and each
// file's result is also what require returns for it. Registrations happen
// once: the first state runs the files against the real api.Env, the
// others are replicas in which register_rpc, register_signal, add_timer,
// add_rb_timer and add_cron check their arguments and capture their
// function arguments but register nothing (they run against a scratch
// Env); every other uwsgi call runs normally in every state (a uwsgi.log
// at module level logs once per state, and uwsgi.signal_registered sees
// what the first state registered). Every
// function converted for the API during a load gets the next key (0, 1,
// ...), the same in every state, so a registered callback is (program,
// key) and runs in whichever state a call borrows. Module-level code must
// therefore be deterministic: a replica capturing other callbacks or apps
// than the first state fails the load (ErrNondeterministicLoad).
//
// A function converted after the load (passed to the API during a call)
// is a callback of the program if it was captured at load; any other (a
// closure made during a call, a function never passed to the API at load)
// lives in that one state: calling it borrows that very state, waiting
// while it serves other calls, and fails with ErrStateGone once the state
// has been replaced. A module first required during a call runs as part
// of that call, so its registrations are of the second kind. Two calls
// that each hold a state and wait for the other's can only end by their
// deadlines; register at load what must run anywhere.
//
// A call that calls back into the same program (uwsgi.call from Lua into
// a Lua RPC of the same files) runs in the state it already holds: the
// context carries the held state, so a pool of one cannot deadlock. Such a
// context must not be shared with other goroutines while the call runs.
//
// # Limits
//
// Every call runs with its context set on the state (gopher-lua checks it
// at every instruction): harakiri, cancellation and the memory watchdog
// (api.Memory, which cancels the call that allocated most with a cause
// wrapping api.ErrMemoryLimit) interrupt runaway code. The call stack
// holds Options.CallStackSize frames, the value stack grows to
// Options.RegistryMaxSize slots, and coroutines nest at most 100 deep.
//
// Strings a script sizes are checked before they are built: string.rep,
// string.format, string.gsub, string.char, string.upper/lower/reverse,
// table.concat, `..`, load(func) and env.input:read stay under
// Options.MaxStringSize (ErrStringTooLarge, which wraps
// api.ErrAllocTooLarge), and each allocation is charged to the running
// call (api.Charge) first, failing with api.ErrAllocTooLarge over the
// single-allocation cap or api.ErrMemoryLimit when the budget has no room.
// string.gsub and string.gmatch find their matches a few at a time (not
// all at once, as gopher-lua's do) and a long gsub can be interrupted.
// Tables are not charged: they grow a slot at a time, which the watchdog
// sees in the heap. A state whose call was interrupted, panicked or hit
// one of these limits is closed and replaced by a fresh replica, even if
// the script caught the error; a plain Lua error leaves the state usable
// (gopher-lua unwinds its stacks), unlike uWSGI's plugin, whose stack
// keeps the error and breaks later requests. Pattern matching
// (string.find, match, gmatch, gsub) is the engine's own, Lua 5.1's
// algorithm: repetitions loop instead of recursing per character, so
// long subjects work, recursion is bounded by the pattern's items
// ("pattern too complex" past 200, as Lua 5.2), and a backtracking search
// is interrupted at the call's deadline.
//
// # Isolation
//
// A call (a request, an RPC, a signal handler) leaves no trace in the
// globals or the standard library of the state it ran in; see isolation.
// What the files did at load (globals, functions added to string, ...) is
// the same in every state and stays. During a call, a new global lives
// until the call ends and a changed or removed global is restored then;
// the tables string, table, math, os, coroutine, debug and uwsgi are
// read-only (a field assignment is an error that says so; raw writes are
// removed when the call ends); setfenv's changes are undone. pairs, next,
// rawget and rawset on _G and on those tables see the globals and
// libraries as the call sees them; getmetatable of them is nil and their
// metatables cannot be changed (getmetatable("") is a read-only table
// whose __index is string). Tables the files made (module tables,
// tables in globals) and module locals are the program's state and are
// shared by the calls a state serves, as in OpenResty; keep request data
// out of them, or in the cache. A metatable the files set on _G still
// answers reads of missing globals, but no longer sees writes.
//
// # Sandbox
//
// States open only: the base library without dofile, loadfile, module and
// _printregs (load and loadstring compile text through the engine;
// collectgarbage leaves collection to Go's GC and answers "count"); string,
// table, math, coroutine; os with clock, date, difftime and time only (no
// execute, exit, getenv, remove, rename, setenv, setlocale, tmpname); debug
// with traceback only. There is no io, no channel library and no C or
// file-path loader: require finds module "a.b" as a/b.lua or a/b/init.lua
// inside the scripts directory only (no absolute paths, no "..", no
// symlinks out of it), compiles it once per generation and runs it once
// per state (package.loaded is per state; package.preload works).
//
// # Lua 5.1 compatibility
//
// The reference is uWSGI's plugin on PUC Lua 5.1. Numbers convert to text
// like Lua 5.1 ("%.14g": tostring(0.1+0.2) is "0.3", 1e15+1 is "1e+15",
// 10/2 is "5") in tostring, print, `..` (the compiler turns concatenations
// into a call of the engine's own concat), string.format's %s (and %g
// defaults to precision 6 as in C), table.concat, RPC results and WSAPI
// bodies, and tonumber accepts what Lua 5.1's strtod does ("1e15").
// Remaining differences of gopher-lua: library functions that coerce
// a number to a string internally (a number passed as the string argument
// of string.* functions) use Go's shortest form; arithmetic on strings
// reads "010" as octal (8); error messages name functions without quotes and
// give errors raised by Go functions the calling Lua line; a `..` error
// says "attempt to concatenate a nil value" without the variable's name.
// And by design: integral numbers go to the API as integers, so uwsgi.cache_set(k,
// 1e15+1) stores "1000000000000001" where uWSGI stores "1e+15". Booleans
// returned by an RPC function are no result, as lua_tolstring makes them
// in uWSGI.
//
// # WSAPI
//
// An app is a file returning a function, or a table with a run function
// (like uWSGI's --lua), named after the file without ".lua". See app.
package lua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
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
	DefaultPoolWait = 5 * time.Second
)

const (
	// registrySize is the initial value stack of a state and of each
	// coroutine: small, because app.lua-style bodies make a coroutine per
	// request; it grows on demand up to Options.RegistryMaxSize.
	registrySize = 128
	// maxCoroutineDepth bounds coroutines resuming coroutines: each
	// level nests a Go call and has a call stack of its own.
	maxCoroutineDepth = 100
	// replicaTimeout bounds building a replacement state.
	replicaTimeout = 30 * time.Second
	// maxEvalOutput bounds what Eval captures from print.
	maxEvalOutput = 1 << 20
)

// Options configure an Engine. Zero fields take the defaults.
type Options struct {
	// PoolSize is the number of Lua states per program (default
	// max(8, 4*runtime.NumCPU()): calls that wait in uwsgi.async_sleep,
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
	// Env's logger.
	Logger *slog.Logger
}

// Engine is the Lua engine. It is safe for concurrent use.
type Engine struct {
	opts  Options
	funcs []api.Func
	comp  *compiler
}

var _ api.Engine = (*Engine)(nil)

// New returns a Lua engine.
func New(opts Options) *Engine {
	if opts.PoolSize <= 0 {
		opts.PoolSize = max(8, 4*runtime.NumCPU())
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

func (e *Engine) logger(env *api.Env) *slog.Logger { return api.EngineLogger(e.opts.Logger, env) }

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
	env   *api.Env
	log   *slog.Logger
	files []file
	mods  *modules

	pool *vmpool.Pool[*vm]
	// life is the generation's lifetime: replacement states are built
	// under it, and Close ends it.
	life context.Context
	stop context.CancelFunc

	ncaptured int      // callbacks captured by every state's load
	appNames  []string // sorted
	apps      map[string]api.App
}

// Load compiles files, builds the pool of states and runs the files in
// each (see the package comment). A syntax error or an error raised while
// a file runs fails the load with a *ScriptError.
func (e *Engine) Load(ctx context.Context, env *api.Env, files []api.File) (api.Program, error) {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b api.File) int { return strings.Compare(a.Name, b.Name) })
	p := &program{
		eng:  e,
		env:  env,
		log:  e.logger(env),
		mods: newModules(e.comp, env.Dir),
		apps: map[string]api.App{},
		pool: newPool(e.opts.PoolWait),
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
	p.ncaptured = len(first.captured)
	p.appNames = slices.Sorted(maps.Keys(first.apps))
	for _, name := range p.appNames {
		p.apps[name] = &app{p: p, name: name, file: name + ".lua"}
	}
	states := []*vm{first}
	for len(states) < e.opts.PoolSize {
		v, err := p.newReplica(ctx)
		if err != nil {
			for _, s := range states {
				s.close()
			}
			p.Close()
			return nil, err
		}
		states = append(states, v)
	}
	// The first state goes on top: the first call runs where the
	// registrations happened.
	for _, v := range slices.Backward(states) {
		p.pool.Put(v)
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
	if len(v.captured) != p.ncaptured || !slices.Equal(slices.Sorted(maps.Keys(v.apps)), p.appNames) {
		v.close()
		return nil, fmt.Errorf("%w: %d callbacks and apps %v, want %d and %v", ErrNondeterministicLoad,
			len(v.captured), slices.Sorted(maps.Keys(v.apps)), p.ncaptured, p.appNames)
	}
	return v, nil
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
	v, _, err := p.pool.Get(ctx, want)
	if errors.Is(err, vmpool.ErrBusy) {
		return nil, ctx, nil, p.busy(err)
	}
	if err != nil {
		return nil, ctx, nil, err
	}
	if v.L == nil { // a slot whose replacement could not be built
		nv, err := p.rebuild()
		if err != nil {
			p.pool.Put(v)
			return nil, ctx, nil, err
		}
		v = nv
	}
	return v, hold(ctx, p, v), func() { p.release(v) }, nil
}

// busy counts and logs a call that found no free state within the pool's
// wait.
func (p *program) busy(err error) error {
	if st := p.env.State; st != nil && st.Counters != nil {
		st.Counters.PoolTimeouts.Add(1)
	}
	p.log.Warn("lua: no free state for a call", "pool_size", p.eng.opts.PoolSize, "waited", p.eng.opts.PoolWait)
	return fmt.Errorf("%w: %w", ErrPoolBusy, err)
}

// rebuild builds a replacement state under the generation's lifetime.
func (p *program) rebuild() (*vm, error) {
	ctx, cancel := context.WithTimeout(p.life, replicaTimeout)
	defer cancel()
	return p.newReplica(ctx)
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
	nv, err := p.rebuild()
	if err != nil {
		p.log.Error("lua: cannot replace a discarded state; retrying at the next call", "err", err)
		nv = &vm{}
	} else {
		p.log.Info("lua: state replaced", "cause", cause)
	}
	p.pool.Discard(v)
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

var _ api.BytesCallable = (*stateFunc)(nil)

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
// first; several values are a list) and what it printed (at most 1 MiB).
// Functions it defines cannot be registered, since the state is closed
// when Eval returns (ErrStateGone).
func (e *Engine) Eval(ctx context.Context, env *api.Env, code string) (api.Value, string, error) {
	out := &printBuffer{max: maxEvalOutput}
	v, err := newState(e, env, nil, newModules(e.comp, env.Dir), out)
	if err != nil {
		return nil, "", err
	}
	defer v.close()
	proto, err := e.comp.compile([]byte("return "+code), "eval")
	if err != nil {
		if proto, err = e.comp.compile([]byte(code), "eval"); err != nil {
			return nil, "", err
		}
	}
	ctx = hold(ctx, nil, v)
	rets, err := v.call(ctx, v.L.NewFunctionFromProto(proto), nil, lua.MultRet)
	if err != nil {
		return nil, out.String(), err
	}
	val, err := v.results(rets)
	return val, out.String(), err
}
