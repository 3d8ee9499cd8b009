package js

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"

	"github.com/scripthost/scripthost/api"
)

// camelName is the camelCase alias of an API name ("register_rpc" is
// "registerRpc"), or "" when the name has no underscore.
func camelName(name string) string {
	if !strings.Contains(name, "_") {
		return ""
	}
	var b strings.Builder
	up := false
	for _, r := range name {
		switch {
		case r == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// openUwsgi sets the global, frozen uwsgi object from api.Funcs():
// attributes as (frozen) values, functions through one generic adapter,
// each under its uWSGI name and, when the name has an underscore, its
// camelCase alias (not enumerable).
func (v *vm) openUwsgi() {
	rt := v.rt
	obj := rt.NewObject()
	for _, f := range v.eng.funcs {
		var val goja.Value
		switch {
		case f.Value != nil:
			jv, err := v.toJS(f.Value(v.env), 0)
			if err != nil {
				panic(rt.NewTypeError("uwsgi.%s: %s", f.Name, err))
			}
			v.freeze(jv, 0)
			val = jv
		case f.Call != nil:
			fn := rt.ToValue(v.apiFunc(f)).(*goja.Object)
			v.setName(fn, f.Name)
			v.freeze(fn, maxDepth)
			val = fn
		default:
			continue
		}
		obj.DefineDataProperty(f.Name, val, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
		if alias := camelName(f.Name); alias != "" {
			obj.DefineDataProperty(alias, val, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
		}
	}
	// uwsgi.spooler = fn registers fn, as in uWSGI's Python plugin; reading
	// it gives the function this runtime registered last.
	if reg, ok := goja.AssertFunction(obj.Get("register_spooler")); ok {
		var last goja.Value = goja.Undefined()
		getter := rt.ToValue(func(goja.FunctionCall) goja.Value { return last })
		setter := rt.ToValue(func(call goja.FunctionCall) goja.Value {
			if _, err := reg(goja.Undefined(), call.Argument(0)); err != nil {
				var ex *goja.Exception
				if errors.As(err, &ex) {
					panic(ex.Value()) // rethrown as it was thrown
				}
				panic(rt.NewGoError(err))
			}
			last = call.Argument(0)
			return goja.Undefined()
		})
		obj.DefineAccessorProperty("spooler", getter, setter, goja.FLAG_FALSE, goja.FLAG_TRUE)
	}
	v.freeze(obj, maxDepth) // its values are frozen already
	rt.GlobalObject().DefineDataProperty("uwsgi", obj, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	v.uwsgi = obj
}

// apiFunc adapts one API function: JavaScript arguments to api values,
// the call under the running call's context, the result back. An error
// is thrown: a TypeError for a bad argument (its message starts "bad
// argument #N to uwsgi.NAME"), else an Error "uwsgi.NAME: ...". (API
// functions that fail softly return null.)
func (v *vm) apiFunc(f api.Func) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		vals := make([]api.Value, len(call.Arguments))
		for i, a := range call.Arguments {
			val, err := v.fromJS(a, 0)
			if err != nil {
				ae := &api.ArgError{Func: f.Name, Index: i, Msg: err.Error()}
				v.throw(v.typeErrorCtor, ae.Error(), ae)
			}
			vals[i] = val
		}
		env := v.env
		if f.Registers {
			if v.loading && v.replica {
				var err error
				if env, err = v.scratch.For(v.env); err != nil {
					v.throw(v.errorCtor, "uwsgi."+f.Name+": "+err.Error(), err)
				}
			}
			for _, val := range vals {
				if pf, ok := val.(*pinnedFunc); ok && pf.v.prog == nil {
					v.throw(v.errorCtor, "uwsgi."+f.Name+": a function made by eval cannot be registered "+
						"(it dies with the eval's runtime)", ErrRuntimeGone)
				}
			}
		}
		res, err := f.Invoke(v.context(), env, vals)
		if err != nil {
			if errors.Is(err, api.ErrArgument) {
				v.throw(v.typeErrorCtor, err.Error(), err) // already names the function
			}
			v.throw(v.errorCtor, "uwsgi."+f.Name+": "+err.Error(), err)
		}
		jv, err := v.toJS(res, 0)
		if err != nil {
			v.throw(v.typeErrorCtor, fmt.Sprintf("uwsgi.%s: result: %v", f.Name, err), err)
		}
		return jv
	}
}
