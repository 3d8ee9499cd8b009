package gointerp

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scripthost/scripthost/api"
)

// GoName is the name of API function name in the scripts' uwsgi package:
// the name's underscore-separated words with their first letters upper
// case, joined ("cache_get" is CacheGet, "register_rpc" RegisterRpc,
// "add_rb_timer" AddRbTimer, "masterpid" Masterpid). The rule is
// mechanical, with no initialisms, so that every name of uWSGI's
// documentation maps to one Go name without a table.
func GoName(name string) string {
	var b strings.Builder
	for _, word := range strings.Split(name, "_") {
		r, size := utf8.DecodeRuneInString(word)
		if size == 0 {
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
		b.WriteString(word[size:])
	}
	return b.String()
}

// export is one symbol of the uwsgi package.
type export struct {
	f    api.Func
	name string // GoName(f.Name)
}

// newExports builds the uwsgi package's table from api's.
func newExports(funcs []api.Func) ([]export, error) {
	seen := map[string]string{}
	var out []export
	for _, f := range funcs {
		if f.Call == nil && f.Value == nil {
			continue
		}
		name := GoName(f.Name)
		if prev, dup := seen[name]; dup || !isExported(name) {
			return nil, fmt.Errorf("gointerp: API functions %q and %q both map to Go name %q", prev, f.Name, name)
		}
		seen[name] = f.Name
		out = append(out, export{f: f, name: name})
	}
	return out, nil
}

func isExported(name string) bool {
	r, _ := utf8.DecodeRuneInString(name)
	return unicode.IsUpper(r)
}

// uwsgiSymbols builds the uwsgi package of one interpreter: every
// function of the API table is a func(args ...any) (any, error) made with
// reflect.MakeFunc around one generic adapter, every attribute a function
// without arguments returning its current value (Version() string,
// Hostname() string, Opt() map[string]any).
func (v *vm) uwsgiSymbols() map[string]reflect.Value {
	syms := make(map[string]reflect.Value, len(v.eng.exports))
	for _, x := range v.eng.exports {
		if x.f.Call != nil {
			syms[x.name] = reflect.MakeFunc(apiFuncType, func(in []reflect.Value) []reflect.Value {
				res, err := v.callAPI(x, in[0])
				return []reflect.Value{anyValue(res), errorValue(err)}
			})
			continue
		}
		typ := anyType
		if val := v.conv.toGo(x.f.Value(v.env)); val != nil {
			typ = reflect.TypeOf(val)
		}
		fnType := reflect.FuncOf(nil, []reflect.Type{typ}, false)
		syms[x.name] = reflect.MakeFunc(fnType, func([]reflect.Value) []reflect.Value {
			rv, err := v.conv.assign(x.f.Value(v.env), typ, 0)
			if err != nil {
				panic(fmt.Sprintf("uwsgi.%s: %v", x.name, err))
			}
			return []reflect.Value{rv}
		})
	}
	return syms
}

// callAPI is the adapter of every uwsgi function: script values to api
// values, the call under the running call's context, the result back.
// Errors are returned to the script as Go errors; argument errors keep
// api's "bad argument #N to uwsgi.name" text.
func (v *vm) callAPI(x export, args reflect.Value) (any, error) {
	vals := make([]api.Value, args.Len())
	for i := range vals {
		val, err := v.conv.value(args.Index(i), 0)
		if err != nil {
			return nil, &api.ArgError{Func: x.f.Name, Index: i, Msg: err.Error()}
		}
		vals[i] = val
	}
	env := v.env
	if x.f.Registers {
		if v.eval && hasCallable(vals) {
			return nil, fmt.Errorf("uwsgi.%s: %w: functions of an eval cannot be registered, its interpreter ends with it", x.name, ErrVMGone)
		}
		if v.loading && v.replica {
			var err error
			if env, err = v.scratch.For(v.env); err != nil {
				return nil, fmt.Errorf("uwsgi.%s: %w", x.name, err)
			}
		}
	}
	if v.abandoned.Load() {
		return nil, fmt.Errorf("uwsgi.%s: %w", x.name, ErrAbandoned)
	}
	if v.req != nil {
		v.req.beforeAPI(x.f.Name, vals)
	}
	res, err := x.f.Invoke(v.ctx, env, vals)
	if v.req != nil {
		v.req.noteAPI(x.f.Name, vals, res)
	}
	if err != nil {
		if !errors.Is(err, api.ErrArgument) {
			err = fmt.Errorf("uwsgi.%s: %w", x.name, err)
		}
		return nil, err
	}
	return v.conv.toGo(res), nil
}

func hasCallable(vals []api.Value) bool {
	for _, val := range vals {
		if _, ok := val.(api.Callable); ok {
			return true
		}
	}
	return false
}
