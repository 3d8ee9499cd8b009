package lua

import (
	lua "github.com/yuin/gopher-lua"
)

// Calls do not leak state to later calls through a state's globals or
// its standard library (as OpenResty keeps requests apart). Once the
// files are loaded, a state is frozen:
//
//   - The globals move to a base table; _G, the environment of every
//     function, stays empty, with a metatable that reads from the base and
//     sends writes to isolation.write: a new global goes to the call's
//     overlay table (read before the base), a change of a global of the
//     base is made in the base and its first value kept. When the call
//     ends (its state goes back to the pool) the overlay is dropped and
//     the base restored.
//   - The library tables (string, table, math, os, coroutine, debug,
//     uwsgi) become read-only views: writing a field is an error, and
//     anything written into them raw is removed when the call ends.
//   - setfenv's changes are undone when the call ends.
//
// rawget, rawset, next, pairs, getmetatable and setmetatable see _G and
// the views as the tables they stand for. Tables made by the files
// (module tables, tables in globals) stay shared by the calls a state
// serves: they are the program's state, like a module's locals.
type isolation struct {
	frozen  bool
	globals *lua.LTable // _G
	base    *lua.LTable // the globals as the files left them
	meta    *lua.LTable // _G's metatable
	overlay *lua.LTable // globals the running call added; nil: none yet
	undo    []saved     // base globals the running call changed
	fenvs   []savedEnv  // environments setfenv changed
	libs    map[*lua.LTable]*lua.LTable
	views   []*lua.LTable // the library views, then the string metatable's
	strMeta *lua.LTable   // what getmetatable("") shows
}

type saved struct{ key, value lua.LValue }

type savedEnv struct {
	fn  *lua.LFunction // nil: the thread's environment
	th  *lua.LState
	env *lua.LTable
}

// isolatedLibs are the library tables that are read-only after load.
var isolatedLibs = []string{"string", "table", "math", "os", "coroutine", "debug", "uwsgi", "json"}

// isolatedModules are modules of package.loaded, not globals, that are
// read-only after load too.
var isolatedModules = []string{"cjson.safe", "resty.http"}

// openIsolation wraps the base functions that must see through _G and
// the library views; the state is frozen after its files are loaded.
func (v *vm) openIsolation(g *lua.LTable) {
	L := v.L
	iso := &v.iso
	iso.globals = g
	wrap := func(name string, fn func(inner lua.LGFunction) lua.LGFunction) {
		inner := g.RawGetString(name).(*lua.LFunction).GFunction
		g.RawSetString(name, L.NewFunction(fn(inner)))
	}
	var nextFn *lua.LFunction
	wrap("next", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			t, ok := L.Get(1).(*lua.LTable)
			if !ok || !iso.frozen {
				return inner(L)
			}
			if t == iso.globals {
				k, val := iso.nextGlobal(L.Get(2))
				return pushPair(L, k, val)
			}
			if real := iso.libs[t]; real != nil {
				k, val := real.Next(L.Get(2))
				return pushPair(L, k, val)
			}
			return inner(L)
		}
	})
	nextFn = g.RawGetString("next").(*lua.LFunction)
	wrap("pairs", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			t := L.CheckTable(1)
			v.fillEnv(t)
			L.Push(nextFn)
			L.Push(t)
			L.Push(lua.LNil)
			return 3
		}
	})
	wrap("rawget", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok && iso.frozen {
				if t == iso.globals {
					L.Push(iso.rawGlobal(L.CheckAny(2)))
					return 1
				}
				if real := iso.libs[t]; real != nil {
					L.Push(real.RawGet(L.CheckAny(2)))
					return 1
				}
			}
			return inner(L)
		}
	})
	wrap("rawset", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok && iso.frozen {
				if t == iso.globals {
					iso.write(L, L.CheckAny(2), L.CheckAny(3))
					L.SetTop(1)
					return 1
				}
				if iso.libs[t] != nil {
					readOnly(L, t, L.Get(2))
				}
			}
			return inner(L)
		}
	})
	wrap("getmetatable", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			if iso.frozen {
				switch x := L.CheckAny(1).(type) {
				case lua.LString:
					L.Push(iso.strMeta)
					return 1
				case *lua.LTable:
					if iso.backing(x) != nil {
						L.Push(lua.LNil)
						return 1
					}
				}
			}
			return inner(L)
		}
	})
	wrap("setmetatable", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			t := L.CheckTable(1) // as in Lua 5.1: no metatables for strings
			if iso.frozen && iso.backing(t) != nil {
				L.RaiseError("cannot change the metatable of %s after load", iso.name(t))
			}
			return inner(L)
		}
	})
	wrap("setfenv", func(inner lua.LGFunction) lua.LGFunction {
		return func(L *lua.LState) int {
			if iso.frozen {
				iso.saveEnv(L)
			}
			return inner(L)
		}
	})
}

func pushPair(L *lua.LState, k, val lua.LValue) int {
	if k == lua.LNil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(k)
	L.Push(val)
	return 2
}

// freeze moves the globals to the base table and puts the library views
// in place (see isolation).
func (v *vm) freeze() {
	L := v.L
	iso := &v.iso
	g := iso.globals
	iso.base = L.NewTable()
	for k, val := g.Next(lua.LNil); k != lua.LNil; k, val = g.Next(k) {
		iso.base.RawSetH(k, val)
	}
	for _, name := range isolatedLibs {
		real, ok := iso.base.RawGetString(name).(*lua.LTable)
		if !ok {
			continue
		}
		view := iso.view(L, real)
		iso.base.RawSetString(name, view)
		// require finds the library under its own name and aliases
		// (json is also cjson).
		for k, val := v.loaded.Next(lua.LNil); k != lua.LNil; k, val = v.loaded.Next(k) {
			if val == real {
				v.loaded.RawSetH(k, view)
			}
		}
	}
	for _, name := range isolatedModules {
		if real, ok := v.loaded.RawGetString(name).(*lua.LTable); ok {
			v.loaded.RawSetString(name, iso.view(L, real))
		}
	}
	// getmetatable("") shows a read-only metatable whose __index is the
	// string view: the real one would give away the string table.
	shown := L.NewTable()
	shown.RawSetString("__index", iso.base.RawGetString("string"))
	iso.strMeta = iso.view(L, shown)
	// A metatable the files gave _G keeps serving reads of the base.
	if mt, ok := g.Metatable.(*lua.LTable); ok {
		iso.base.Metatable = mt
	}
	clearTable(g)
	iso.meta = L.NewTable()
	iso.meta.RawSetString("__index", iso.base)
	iso.meta.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		iso.write(L, L.CheckAny(2), L.Get(3))
		return 0
	}))
	g.Metatable = iso.meta
	iso.frozen = true
}

// view returns a read-only view of a library table.
func (iso *isolation) view(L *lua.LState, real *lua.LTable) *lua.LTable {
	if iso.libs == nil {
		iso.libs = map[*lua.LTable]*lua.LTable{}
	}
	view := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", real)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		readOnly(L, view, L.Get(2))
		return 0
	}))
	// A library's own __newindex (uwsgi.spooler = fn) keeps working.
	if rmt, ok := real.Metatable.(*lua.LTable); ok {
		if ni, ok := rmt.RawGetString("__newindex").(*lua.LFunction); ok {
			mt.RawSetString("__newindex", ni)
		}
	}
	view.Metatable = mt
	iso.libs[view] = real
	iso.views = append(iso.views, view)
	return view
}

// readOnly raises the error of a write into a library view.
func readOnly(L *lua.LState, view *lua.LTable, key lua.LValue) {
	L.RaiseError("attempt to change a standard library table (field %s): they are read-only after load", key.String())
}

// backing returns the table a view or _G stands for, or nil.
func (iso *isolation) backing(t *lua.LTable) *lua.LTable {
	if t == iso.globals {
		return iso.base
	}
	return iso.libs[t]
}

func (iso *isolation) name(t *lua.LTable) string {
	if t == iso.globals {
		return "_G"
	}
	return "a standard library table"
}

// write is the assignment _G[k] = val during a call.
func (iso *isolation) write(L *lua.LState, k, val lua.LValue) {
	if k == lua.LNil {
		L.RaiseError("table index is nil")
	}
	if old := iso.base.RawGet(k); old != lua.LNil || iso.changed(k) {
		if !iso.changed(k) {
			iso.undo = append(iso.undo, saved{k, old})
		}
		iso.base.RawSet(k, val)
		return
	}
	if iso.overlay == nil {
		if val == lua.LNil {
			return
		}
		iso.overlay = L.NewTable()
		iso.overlay.Metatable = iso.meta // reads go on to the base
		iso.meta = L.NewTable()
		iso.meta.RawSetString("__index", iso.overlay)
		iso.meta.RawSetString("__newindex", iso.overlay.Metatable.(*lua.LTable).RawGetString("__newindex"))
		iso.globals.Metatable = iso.meta
	}
	iso.overlay.RawSet(k, val)
}

func (iso *isolation) changed(k lua.LValue) bool {
	for _, s := range iso.undo {
		if s.key == k {
			return true
		}
	}
	return false
}

// rawGlobal is rawget(_G, k): the overlay's, else the base's.
func (iso *isolation) rawGlobal(k lua.LValue) lua.LValue {
	if iso.overlay != nil {
		if val := iso.overlay.RawGet(k); val != lua.LNil {
			return val
		}
	}
	return iso.base.RawGet(k)
}

// nextGlobal is next(_G, k): the overlay's globals, then the base's.
func (iso *isolation) nextGlobal(k lua.LValue) (lua.LValue, lua.LValue) {
	if o := iso.overlay; o != nil && (k == lua.LNil || o.RawGet(k) != lua.LNil) {
		if nk, nv := o.Next(k); nk != lua.LNil {
			return nk, nv
		}
		k = lua.LNil
	}
	return iso.base.Next(k)
}

// saveEnv keeps the environment setfenv is about to change.
func (iso *isolation) saveEnv(L *lua.LState) {
	switch x := L.Get(1).(type) {
	case *lua.LFunction:
		if !x.IsG {
			iso.fenvs = append(iso.fenvs, savedEnv{fn: x, env: x.Env})
		}
	case lua.LNumber:
		if x <= 0 {
			iso.fenvs = append(iso.fenvs, savedEnv{th: L, env: L.Env})
			return
		}
		if dbg, ok := L.GetStack(int(x)); ok {
			if fn, err := L.GetInfo("f", dbg, lua.LNil); err == nil {
				if f, ok := fn.(*lua.LFunction); ok && !f.IsG {
					iso.fenvs = append(iso.fenvs, savedEnv{fn: f, env: f.Env})
				}
			}
		}
	}
}

// endCall undoes what the call that used the state changed.
func (iso *isolation) endCall() {
	if !iso.frozen {
		return
	}
	if iso.overlay != nil {
		iso.meta = iso.overlay.Metatable.(*lua.LTable)
		iso.globals.Metatable = iso.meta
		iso.overlay = nil
	}
	for i := len(iso.undo) - 1; i >= 0; i-- {
		iso.base.RawSet(iso.undo[i].key, iso.undo[i].value)
	}
	iso.undo = iso.undo[:0]
	for i := len(iso.fenvs) - 1; i >= 0; i-- {
		if s := iso.fenvs[i]; s.fn != nil {
			s.fn.Env = s.env
		} else {
			s.th.Env = s.env
		}
	}
	iso.fenvs = iso.fenvs[:0]
	clearTable(iso.globals)
	for _, view := range iso.views {
		clearTable(view)
	}
}

// clearTable removes a table's raw entries.
func clearTable(t *lua.LTable) {
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(lua.LNil) {
		t.RawSet(k, lua.LNil)
	}
}
