package lua

import (
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Coroutines. Every resume gets the running call's context and counts
// towards maxCoroutineDepth. coroutine.wrap, which uWSGI-style WSAPI apps
// call for every response body, runs its function on a pooled thread:
// gopher-lua builds a whole state for a new coroutine (most of a hello
// request's allocations), so a finished wrap coroutine's thread is kept
// for the next one. A pooled thread waits inside coLoopSrc, which runs one
// function per round and reports its end with a private marker.

// coLoopSrc is the body of a pooled thread. Its arguments are a private
// key, the function and its arguments; whoever resumes an idle pooled
// thread without the key (a script that kept coroutine.running()) gets
// the error a dead coroutine gives, which also retires the thread.
const coLoopSrc = `
local key, done, yield = ...
local function loop(k, f, ...)
  if k ~= key then error("cannot resume dead coroutine", 0) end
  return loop(yield(done, f(...)))
end
return loop
`

// maxPooledThreads bounds the idle threads a state keeps.
const maxPooledThreads = 8

// coPool is a state's coroutine machinery.
type coPool struct {
	resume    lua.LGFunction
	create    *lua.LFunction
	loop      *lua.LFunction // coLoopSrc's loop
	key, done *lua.LUserData
	idle      []*lua.LState
}

// openCoroutines replaces coroutine.resume and coroutine.wrap.
func (v *vm) openCoroutines(co *lua.LTable) {
	L := v.L
	p := &v.co
	p.resume = co.RawGetString("resume").(*lua.LFunction).GFunction
	p.create = co.RawGetString("create").(*lua.LFunction)
	p.key, p.done = L.NewUserData(), L.NewUserData()
	fn, err := L.Load(strings.NewReader(coLoopSrc), "=coroutine")
	if err != nil {
		panic("lua: coroutine loop: " + err.Error()) // a constant that compiles
	}
	L.Push(fn)
	L.Push(p.key)
	L.Push(p.done)
	L.Push(co.RawGetString("yield"))
	L.Call(3, 1)
	p.loop = L.Get(-1).(*lua.LFunction)
	L.Pop(1)

	co.RawSetString("resume", L.NewFunction(func(L *lua.LState) int {
		v.enterCoroutine(L, L.CheckThread(1))
		defer v.leaveCoroutine()
		return p.resume(L)
	}))
	co.RawSetString("wrap", L.NewFunction(func(L *lua.LState) int {
		f := L.CheckFunction(1)
		// Upvalues: the thread (nil until the first call and once
		// finished), v.mark (recognised by deadCoroutine), the function
		// (nil once started).
		L.Push(L.NewClosure(v.wrapped, lua.LNil, v.mark, f))
		return 1
	}))
}

// wrapped is the function coroutine.wrap returns: it resumes the
// coroutine and raises its errors; calling it once the coroutine is dead
// raises "cannot resume dead coroutine", as in Lua 5.1 (uWSGI's WSAPI
// loop relies on that to end a body).
func (v *vm) wrapped(L *lua.LState) int {
	p := &v.co
	thv, f := L.Get(lua.UpvalueIndex(1)), L.Get(lua.UpvalueIndex(3))
	th, _ := thv.(*lua.LState)
	if th == nil && f == lua.LNil || th != nil && th.Dead {
		L.RaiseError("cannot resume dead coroutine")
	}
	if th == nil {
		th = v.thread(L)
		L.Replace(lua.UpvalueIndex(1), th)
		L.Replace(lua.UpvalueIndex(3), lua.LNil)
		L.Insert(f, 1)
		L.Insert(p.key, 1)
	}
	v.enterCoroutine(L, th)
	defer v.leaveCoroutine()
	L.Insert(th, 1)
	n := p.resume(L)
	top := L.GetTop()
	if !lua.LVAsBool(L.Get(top - n + 1)) {
		L.Replace(lua.UpvalueIndex(1), lua.LNil)
		L.Error(L.Get(top-n+2), 0)
	}
	if n >= 2 && L.Get(top-n+2) == p.done {
		// The function returned: its results follow the marker.
		L.Replace(lua.UpvalueIndex(1), lua.LNil)
		if len(p.idle) < maxPooledThreads {
			p.idle = append(p.idle, th)
		}
		return n - 2
	}
	return n - 1
}

// thread returns an idle pooled thread or a new one.
func (v *vm) thread(L *lua.LState) *lua.LState {
	p := &v.co
	for len(p.idle) > 0 {
		th := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if !th.Dead {
			return th
		}
	}
	L.CallByParam(lua.P{Fn: p.create, NRet: 1}, p.loop)
	th := L.Get(-1).(*lua.LState)
	L.Pop(1)
	return th
}

// deadCoroutine reports whether fn is a coroutine.wrap function of v
// whose coroutine has finished.
func (v *vm) deadCoroutine(fn *lua.LFunction) bool {
	if !fn.IsG || len(fn.Upvalues) != 3 || fn.Upvalues[1].Value() != v.mark {
		return false
	}
	th, _ := fn.Upvalues[0].Value().(*lua.LState)
	return th == nil && fn.Upvalues[2].Value() == lua.LNil || th != nil && th.Dead
}

// enterCoroutine bounds coroutine nesting and gives the coroutine the
// running call's context: one created during an earlier call (or at load)
// would otherwise keep that call's, long cancelled.
func (v *vm) enterCoroutine(L, th *lua.LState) {
	if v.coDepth >= maxCoroutineDepth {
		v.limit(L, fmt.Sprintf("coroutines nested deeper than %d", maxCoroutineDepth), ErrStackOverflow)
	}
	v.coDepth++
	if ctx := L.Context(); ctx != nil {
		th.SetContext(ctx)
	} else {
		th.RemoveContext()
	}
}

func (v *vm) leaveCoroutine() { v.coDepth-- }
