package lua

import (
	"errors"
	"log/slog"
	"slices"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// registers are the API functions that register something with the host
// (a function, a timer). In replica states, while the files load, they
// run against a scratch Env: arguments are checked and results given as
// in the first state, which registered for real, but nothing is
// registered again.
var registers = map[string]bool{
	"register_rpc":    true,
	"register_signal": true,
	"add_timer":       true,
	"add_rb_timer":    true,
	"add_cron":        true,
}

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
	L.SetGlobal("uwsgi", t)
	v.loaded.RawSetString("uwsgi", t)
}

// apiFunc adapts one API function: Lua arguments to api values, the call
// under the running call's context, the result back to Lua; an error is
// raised as a Lua error. (API functions that fail softly return nil.)
func (v *vm) apiFunc(f api.Func) lua.LGFunction {
	reg := registers[f.Name]
	return func(L *lua.LState) int {
		vals, err := v.args(L, 1)
		if err != nil {
			v.raise(L, "uwsgi."+f.Name+": "+err.Error(), err)
		}
		env := v.env
		if reg {
			if v.loading && v.replica {
				if env, err = v.scratchEnv(); err != nil {
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

// scratchEnv is where a replica's registrations go while it loads.
func (v *vm) scratchEnv() (*api.Env, error) {
	if v.scratch == nil {
		st, err := api.NewState(api.StateConfig{Hostname: v.env.State.Hostname, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		v.scratch = api.NewEnv(st, v.env.Dir)
	}
	return v.scratch, nil
}
