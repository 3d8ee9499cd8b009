package lua

import (
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// A WSAPI env table holds every request var, and a request through nginx
// has a dozen or two of them; filling a gopher-lua table costs about four
// allocations a key, as much as the rest of a small app's request. Apps
// read a few. So the env table starts empty, with a metatable whose
// __index finds a var when it is read, in a copy of the vars the table
// owns (the request's buffers are reused after it). Scripts cannot tell
// the difference: everything that would see the table's raw contents or
// change them (a write to a key it does not hold, next, pairs, rawget,
// rawset, getmetatable, setmetatable, and conversion to Go values) first
// fills it with every var, "input" included, and drops the metatable, so
// from then on it is a plain table.
type wsapiEnv struct {
	vars  []envVar     // in packet order: the last of equal names wins
	boxed []lua.LValue // vars[i]'s value as a Lua string, once read
	input *lua.LTable  // env.input, made when first read
	body  *bodyReader  // what input:read reads
}

type envVar struct{ name, value string }

// openEnv makes the state's env metatable and the hidden key under which
// an env table keeps its vars, and wraps the base functions that look at
// raw contents or metatables.
func (v *vm) openEnv(g *lua.LTable) {
	L := v.L
	v.envKey = L.NewUserData()
	v.envMeta = L.NewTable()
	v.envMeta.RawSetString("__index", L.NewFunction(v.envIndex))
	v.envMeta.RawSetString("__newindex", L.NewFunction(v.envNewIndex))

	next := g.RawGetString("next").(*lua.LFunction)
	g.RawSetString("pairs", L.NewFunction(func(L *lua.LState) int {
		v.fillEnv(L.CheckTable(1))
		L.Push(next)
		L.Push(L.Get(1))
		L.Push(lua.LNil)
		return 3
	}))
	// These take the table first and use no upvalues: the wrapper can
	// run them as they are, on its own arguments.
	for _, name := range []string{"next", "rawget", "rawset", "getmetatable", "setmetatable"} {
		orig := g.RawGetString(name).(*lua.LFunction).GFunction
		g.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok {
				v.fillEnv(t)
			}
			return orig(L)
		}))
	}
}

// newEnv returns the env table of request r, whose body is read through
// body.
func (v *vm) newEnv(r *api.Request, body *bodyReader) *lua.LTable {
	size := 0
	for _, kv := range r.Vars {
		size += len(kv.Key) + len(kv.Value)
	}
	// One string holds every name and value: vars are substrings of it.
	var b strings.Builder
	b.Grow(size)
	for _, kv := range r.Vars {
		b.Write(kv.Key)
		b.Write(kv.Value)
	}
	all := b.String()
	e := &wsapiEnv{vars: make([]envVar, len(r.Vars)), body: body}
	at := 0
	for i, kv := range r.Vars {
		name := all[at : at+len(kv.Key)]
		at += len(kv.Key)
		e.vars[i] = envVar{name: name, value: all[at : at+len(kv.Value)]}
		at += len(kv.Value)
	}
	t := v.L.CreateTable(0, 0)
	ud := v.L.NewUserData()
	ud.Value = e
	t.RawSetH(v.envKey, ud)
	t.Metatable = v.envMeta
	return t
}

// envOf returns the vars of an env table not filled yet, or nil.
func (v *vm) envOf(t *lua.LTable) *wsapiEnv {
	if t.Metatable != v.envMeta {
		return nil
	}
	ud, ok := t.RawGetH(v.envKey).(*lua.LUserData)
	if !ok {
		return nil
	}
	e, _ := ud.Value.(*wsapiEnv)
	return e
}

// lookup returns the value of env key name, or nil.
func (e *wsapiEnv) lookup(v *vm, name string) lua.LValue {
	if name == "input" {
		return e.inputTable(v)
	}
	for i := len(e.vars) - 1; i >= 0; i-- {
		if e.vars[i].name == name {
			return e.value(i)
		}
	}
	if name == "CONTENT_TYPE" {
		return emptyString
	}
	return lua.LNil
}

var emptyString lua.LValue = lua.LString("")

func (e *wsapiEnv) value(i int) lua.LValue {
	if e.boxed == nil {
		e.boxed = make([]lua.LValue, len(e.vars))
	}
	if e.boxed[i] == nil {
		s := e.vars[i].value
		if lv, ok := commonValues[s]; ok {
			e.boxed[i] = lv
		} else {
			e.boxed[i] = lua.LString(s)
		}
	}
	return e.boxed[i]
}

// inputTable returns env.input, making it on first use; while its request
// runs, it is the one input:read reads.
func (e *wsapiEnv) inputTable(v *vm) *lua.LTable {
	if e.input == nil {
		e.input = v.L.CreateTable(0, 1)
		if v.readFn == nil {
			v.readFn = v.L.NewFunction(v.inputRead)
		}
		e.input.RawSetString("read", v.readFn)
		if v.body == e.body && e.body != nil {
			v.input = e.input
		}
	}
	return e.input
}

// fillEnv turns t, if it is an env table not filled yet, into a plain
// table holding every var and input.
func (v *vm) fillEnv(t *lua.LTable) {
	e := v.envOf(t)
	if e == nil {
		return
	}
	t.Metatable = lua.LNil
	t.RawSetH(v.envKey, lua.LNil)
	for i, kv := range e.vars {
		t.RawSetString(kv.name, e.value(i))
	}
	if t.RawGetString("CONTENT_TYPE") == lua.LNil {
		t.RawSetString("CONTENT_TYPE", emptyString)
	}
	t.RawSetString("input", e.inputTable(v))
}

// envIndex is __index of env tables: env[key].
func (v *vm) envIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	e := v.envOf(t)
	name, ok := L.Get(2).(lua.LString)
	if e == nil || !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(e.lookup(v, string(name)))
	return 1
}

// envNewIndex is __newindex of env tables: env[key] = value fills the
// table first, so that the write, a nil included, acts on a plain table.
func (v *vm) envNewIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	v.fillEnv(t)
	L.SetTable(t, L.Get(2), L.Get(3))
	return 0
}
