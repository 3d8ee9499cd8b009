package lua

import (
	"errors"
	"slices"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// openUwsgi sets the global uwsgi table from api.Funcs(): attributes as
// values, functions through one generic adapter.
func (v *vm) openUwsgi() {
	L := v.L
	t := L.CreateTable(0, len(v.eng.funcs))
	for _, f := range v.eng.funcs {
		switch {
		case f.Value != nil:
			lv, err := v.toLua(L, f.Value(v.env), 0)
			if err != nil {
				L.RaiseError("uwsgi.%s: %s", f.Name, err)
			}
			t.RawSetString(f.Name, lv)
		case f.Call != nil:
			t.RawSetString(f.Name, L.NewFunction(v.apiFunc(f)))
		}
	}
	// uwsgi.spooler = fn registers fn, as in uWSGI's Python plugin.
	mt := L.NewTable()
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		k, val := L.Get(2), L.Get(3)
		if k == lua.LString("spooler") {
			L.Push(t.RawGetString("register_spooler"))
			L.Push(val)
			L.Call(1, 0)
			return 0
		}
		if v.iso.frozen {
			readOnly(L, t, k)
		}
		t.RawSet(k, val)
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse) // not for scripts to change
	t.Metatable = mt
	L.SetGlobal("uwsgi", t)
	v.loaded.RawSetString("uwsgi", t)
}

// apiFunc adapts one API function: Lua arguments to api values, the call
// under the running call's context, the result back to Lua; an error is
// raised as a Lua error. (API functions that fail softly return nil.)
func (v *vm) apiFunc(f api.Func) lua.LGFunction {
	return func(L *lua.LState) int {
		vals, err := v.args(L, 1)
		if err != nil {
			v.raise(L, "uwsgi."+f.Name+": "+err.Error(), err)
		}
		env := v.env
		if f.Registers {
			if v.loading && v.replica {
				if env, err = v.scratch.For(v.env); err != nil {
					v.raise(L, "uwsgi."+f.Name+": "+err.Error(), err)
				}
			}
			if v.prog == nil && slices.ContainsFunc(vals, func(val api.Value) bool { _, ok := val.(*stateFunc); return ok }) {
				v.raise(L, "uwsgi."+f.Name+": functions of an eval cannot be registered: its state ends with it", ErrStateGone)
			}
		}
		res, err := f.Invoke(v.context(), env, vals)
		if err != nil {
			msg := "uwsgi." + f.Name + ": " + err.Error()
			if errors.Is(err, api.ErrArgument) {
				msg = err.Error() // already names the function
			}
			v.raise(L, msg, err)
		}
		lv, err := v.toLua(L, res, 0)
		if err != nil {
			v.raise(L, "uwsgi."+f.Name+": result: "+err.Error(), err)
		}
		L.Push(lv)
		return 1
	}
}
