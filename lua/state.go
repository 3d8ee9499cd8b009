package lua

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// vmRegistryKey finds a state's *vm from Go functions shared by every
// state (the concat function).
const vmRegistryKey = "scripthost.vm"

// vm is one Lua state with what the engine keeps about it. It is used by
// one goroutine at a time: the one that borrowed it from the pool.
type vm struct {
	L    *lua.LState // nil once closed (or for a slot awaiting a rebuild)
	gone atomic.Bool // closed: read by calls of its functions from anywhere
	// goneCh is closed with the state: the end of the functions bound to
	// it (stateFunc.Gone).
	goneCh chan struct{}

	eng  *Engine
	env  *api.Registrations
	prog *program // nil for Eval
	mods *modules
	out  *api.EvalOutput // Eval's print capture; nil: print logs

	replica bool                     // registrations only capture their functions
	scratch api.ScratchRegistrations // where they go instead, while loading
	loading bool                     // running the files: functions get callback keys

	captured []*lua.LFunction // callbacks by key
	keyOf    map[*lua.LFunction]int
	apps     map[string]lua.LValue // app functions by name
	loaded   *lua.LTable           // package.loaded

	ctx    context.Context // the running call's
	scope  *api.Scope      // the running call's, charged for its allocations
	depth  int             // nesting of calls (re-entrant calls)
	broken error           // why the state must not be reused
	raised raised          // the Go error behind the last raise

	coDepth int // coroutines resuming coroutines
	co      coPool
	mark    *lua.LUserData // private marker: coroutine.wrap functions, modules being loaded

	input   *lua.LTable    // the running WSAPI request's env.input, once made
	body    *bodyReader    // the running WSAPI request's body
	readFn  *lua.LFunction // input:read
	envMeta *lua.LTable    // metatable of env tables not filled yet (env.go)
	envKey  *lua.LUserData // the hidden key under which they keep their vars

	iso isolation // calls kept apart (isolation.go)
}

type raised struct {
	msg string
	err error
}

func (e *Engine) luaOptions() lua.Options {
	return lua.Options{
		CallStackSize:       e.opts.CallStackSize,
		RegistrySize:        registrySize,
		RegistryGrowStep:    registrySize,
		RegistryMaxSize:     e.opts.RegistryMaxSize,
		SkipOpenLibs:        true,
		MinimizeStackMemory: true,
	}
}

// newState builds a sandboxed state with the uwsgi table.
func newState(e *Engine, env *api.Registrations, p *program, mods *modules, out *api.EvalOutput) (*vm, error) {
	v := &vm{
		L:      lua.NewState(e.luaOptions()),
		goneCh: make(chan struct{}),
		eng:    e,
		env:    env,
		prog:   p,
		mods:   mods,
		out:    out,
		keyOf:  map[*lua.LFunction]int{},
		apps:   map[string]lua.LValue{},
	}
	ud := v.L.NewUserData()
	ud.Value = v
	v.L.G.Registry.RawSetString(vmRegistryKey, ud)
	v.mark = v.L.NewUserData()
	// Opening libraries runs Go code only, but through gopher-lua's
	// unprotected Call: keep a failure an error.
	err := v.L.GPCall(func(L *lua.LState) int {
		v.openLibs()
		v.openUwsgi()
		v.openRestyHTTP(L)
		return 0
	}, lua.LNil)
	if err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

// newVM builds a state of p and runs the files in it.
func newVM(ctx context.Context, e *Engine, env *api.Registrations, p *program, replica bool) (*vm, error) {
	v, err := newState(e, env, p, p.mods, nil)
	if err != nil {
		return nil, err
	}
	v.replica = replica
	err = v.loadFiles(ctx)
	v.scratch.Close()
	if err != nil {
		v.close()
		return nil, err
	}
	v.freeze()
	return v, nil
}

// vmOf returns the vm of state L (or of the state a coroutine L runs in).
func vmOf(L *lua.LState) *vm {
	ud, _ := L.G.Registry.RawGetString(vmRegistryKey).(*lua.LUserData)
	if ud == nil {
		return nil
	}
	v, _ := ud.Value.(*vm)
	return v
}

// loadFiles runs the program's files in name order, each under the Registrations'
// load deadline (FileContext); a file already run by a require is not run
// again.
func (v *vm) loadFiles(ctx context.Context) error {
	v.loading = true
	defer func() { v.loading = false }()
	ctx = hold(ctx, v.prog, v)
	for _, f := range v.prog.files {
		res := v.loaded.RawGetString(f.module)
		if res == lua.LNil {
			v.loaded.RawSetString(f.module, v.mark)
			fctx, cancel := v.env.FileContext(ctx, f.name)
			rets, err := v.call(fctx, v.L.NewFunctionFromProto(f.proto), nil, 1)
			cancel()
			if err != nil {
				v.loaded.RawSetString(f.module, lua.LNil)
				return err
			}
			res = rets[0]
			stored := res
			if stored == lua.LNil {
				stored = lua.LTrue
			}
			v.loaded.RawSetString(f.module, stored)
		}
		if fn := appOf(res); fn != nil {
			v.apps[strings.TrimSuffix(f.name, ".lua")] = fn
		}
	}
	return nil
}

// appOf returns the WSAPI function a file's result defines: the result
// itself, or its run field.
func appOf(res lua.LValue) *lua.LFunction {
	switch x := res.(type) {
	case *lua.LFunction:
		return x
	case *lua.LTable:
		fn, _ := x.RawGetString("run").(*lua.LFunction)
		return fn
	}
	return nil
}

// call calls fn with args in the state under ctx and returns nret results
// (all with lua.MultRet). A nested call (from a Go function the state is
// running) runs on the thread that is running, in the same stacks.
func (v *vm) call(ctx context.Context, fn lua.LValue, args []lua.LValue, nret int) ([]lua.LValue, error) {
	L := v.L
	if v.depth > 0 {
		if cur := v.L.G.CurrentThread; cur != nil {
			L = cur
		}
	} else {
		v.raised = raised{}
	}
	prevCtx, prevScope, prevLuaCtx := v.ctx, v.scope, L.Context()
	v.ctx, v.scope = ctx, api.ScopeOf(ctx)
	v.depth++
	if ctx.Done() != nil {
		L.SetContext(ctx)
	} else if prevLuaCtx != nil {
		L.RemoveContext() // nothing to check at every instruction
	}
	base := L.GetTop()
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), nret, nil)
	var rets []lua.LValue
	if err == nil {
		rets = make([]lua.LValue, L.GetTop()-base)
		for i := range rets {
			rets[i] = L.Get(base + 1 + i)
		}
	}
	L.SetTop(base)
	v.depth--
	v.ctx, v.scope = prevCtx, prevScope
	if prevLuaCtx != nil {
		L.SetContext(prevLuaCtx)
	} else {
		L.RemoveContext()
	}
	if err != nil {
		return nil, v.scriptError(ctx, err)
	}
	return rets, nil
}

// callBytes is an RPC call: string arguments, the result converted like
// lua_tolstring.
func (v *vm) callBytes(ctx context.Context, fn *lua.LFunction, args [][]byte) ([]byte, error) {
	rets, err := v.call(ctx, fn, stringArgs(args), 1)
	if err != nil {
		return nil, err
	}
	return resultBytes(rets[0])
}

// callValues is Callable.Call: converted arguments, the first result.
func (v *vm) callValues(ctx context.Context, fn *lua.LFunction, args []api.Value) (api.Value, error) {
	largs, err := v.valueArgs(args)
	if err != nil {
		return nil, err
	}
	rets, err := v.call(ctx, fn, largs, 1)
	if err != nil {
		return nil, err
	}
	return v.fromLua(rets[0], 0)
}

// scriptError turns a failed PCall into a *api.ScriptError and decides
// whether the state may be reused.
func (v *vm) scriptError(ctx context.Context, err error) error {
	var ae *lua.ApiError
	if !errors.As(err, &ae) {
		v.broken = err
		return &api.ScriptError{Engine: errEngine, Msg: err.Error(), Err: err}
	}
	msg, ok := stringOf(ae.Object)
	if !ok {
		msg = ae.Object.String()
	}
	se := &api.ScriptError{Engine: errEngine, Msg: strings.TrimSpace(msg), Trace: ae.StackTrace}
	if file, line, rest, ok := splitPosition(msg); ok {
		se.File, se.Line, se.Msg = file, line, rest
	} else {
		se.File, se.Line = tracebackPosition(ae.StackTrace)
	}
	switch {
	case ctx.Err() != nil:
		se.Err = context.Cause(ctx)
		se.Msg = "call interrupted: " + se.Err.Error()
		v.broken = se.Err
	case overflowed(se.Msg):
		se.Err = ErrStackOverflow
		v.broken = ErrStackOverflow
	case ae.Type == lua.ApiErrorPanic:
		se.Err = ErrPanic
		v.broken = ErrPanic
	case v.raised.err != nil && v.raised.msg == se.Msg:
		se.Err = v.raised.err
	}
	v.raised = raised{}
	return se
}

// overflowed reports gopher-lua's stack exhaustion, which it raises as a
// plain message ("stack overflow", "registry overflow") or, for the call
// stack of a state with MinimizeStackMemory, as a Go panic ("lua
// callstack overflow"). A script raising the same text only costs a
// rebuilt state.
func overflowed(msg string) bool {
	return strings.HasSuffix(msg, "stack overflow") || strings.HasSuffix(msg, "registry overflow")
}

// raise raises msg as a Lua error (with the caller's position) and
// remembers err as its cause for the Go side.
func (v *vm) raise(L *lua.LState, msg string, err error) {
	v.raised = raised{msg: msg, err: err}
	L.RaiseError("%s", msg)
}

// limit raises a resource limit error; the state is replaced afterwards.
func (v *vm) limit(L *lua.LState, msg string, err error) {
	v.broken = err
	v.raise(L, msg, err)
}

// close frees the state.
func (v *vm) close() {
	if !v.gone.Swap(true) && v.goneCh != nil {
		close(v.goneCh)
	}
	if v.L != nil {
		v.L.Close()
		v.L = nil
	}
}

// print writes a line of print output.
func (v *vm) print(s string) {
	if v.out != nil {
		v.out.Line(s)
		return
	}
	v.eng.logger(v.env).Info(s, "source", "script")
}
