package lua

import (
	"context"
	"fmt"
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// maxDepth bounds the nesting of converted tables and lists; deeper
// values (or cyclic tables) are an error.
const maxDepth = 100

// formatNumber formats a number like Lua 5.1's tostring ("%.14g").
// maxNumberLen bounds the length of formatNumber's result
// ("-2.2250738585072e-308").
const maxNumberLen = 24

func formatNumber(n lua.LNumber) string {
	f := float64(n)
	if f == math.Trunc(f) && math.Abs(f) < 1e14 && (f != 0 || !math.Signbit(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return api.FormatFloat(f)
}

// stringOf converts a string or number like lua_tolstring; ok is false
// for every other type.
func stringOf(v lua.LValue) (string, bool) {
	switch x := v.(type) {
	case lua.LString:
		return string(x), true
	case lua.LNumber:
		return formatNumber(x), true
	}
	return "", false
}

// tostring is Lua 5.1's tostring: numbers as "%.14g", __tostring
// metamethods honoured.
func tostring(L *lua.LState, v lua.LValue) string {
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return formatNumber(x)
	}
	s := L.ToStringMeta(v)
	if n, ok := s.(lua.LNumber); ok {
		return formatNumber(n)
	}
	return s.String()
}

// resultBytes converts an RPC function's result like uWSGI's plugin does
// (lua_tolstring): strings as they are, numbers formatted, anything else
// (nil, booleans, tables, functions) is no result.
func resultBytes(v lua.LValue) ([]byte, error) {
	s, ok := stringOf(v)
	if !ok {
		return nil, api.ErrNoResult
	}
	return api.StringBytes(s), nil // Lua strings are immutable: no copy
}

// fromLua converts a Lua value to an api.Value. Functions become
// Callables: during a load, captured under a key valid in every state of
// the program; afterwards, a function captured at load keeps its key and
// any other is bound to this state (see stateFunc).
func (v *vm) fromLua(lv lua.LValue, depth int) (api.Value, error) {
	switch x := lv.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(x), nil
	case lua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case lua.LString:
		return string(x), nil
	case *lua.LTable:
		if depth >= maxDepth {
			return nil, fmt.Errorf("table nesting deeper than %d (a cycle?)", maxDepth)
		}
		return v.tableFromLua(x, depth+1)
	case *lua.LFunction:
		return v.callableOf(x), nil
	}
	return nil, fmt.Errorf("cannot convert a %s value", lv.Type())
}

func (v *vm) tableFromLua(t *lua.LTable, depth int) (api.Value, error) {
	v.fillEnv(t)
	count, maxKey, seq := 0, 0, true
	t.ForEach(func(k, _ lua.LValue) {
		count++
		if !seq {
			return
		}
		n, ok := k.(lua.LNumber)
		if !ok || float64(n) != math.Trunc(float64(n)) || n < 1 || n > math.MaxInt32 {
			seq = false
			return
		}
		maxKey = max(maxKey, int(n))
	})
	if seq && count > 0 && maxKey == count {
		list := make([]api.Value, count)
		for i := range list {
			val, err := v.fromLua(t.RawGetInt(i+1), depth)
			if err != nil {
				return nil, err
			}
			list[i] = val
		}
		return list, nil
	}
	m := make(map[string]api.Value, count)
	var err error
	t.ForEach(func(k, val lua.LValue) {
		if err != nil {
			return
		}
		key, ok := stringOf(k)
		if !ok {
			key = k.String()
		}
		m[key], err = v.fromLua(val, depth)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// callableOf wraps a Lua function as an api.Callable.
func (v *vm) callableOf(fn *lua.LFunction) api.Callable {
	if key, ok := v.keyOf[fn]; ok {
		return &progFunc{p: v.prog, key: key}
	}
	if v.loading && v.prog != nil {
		key := len(v.captured)
		v.captured = append(v.captured, fn)
		v.keyOf[fn] = key
		return &progFunc{p: v.prog, key: key}
	}
	return &stateFunc{v: v, fn: fn}
}

// toLua converts an api.Value to a Lua value of state L (the running
// thread of v).
func (v *vm) toLua(L *lua.LState, val api.Value, depth int) (lua.LValue, error) {
	switch x := val.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(x), nil
	case int64:
		return lua.LNumber(x), nil
	case int:
		return lua.LNumber(x), nil
	case float64:
		return lua.LNumber(x), nil
	case string:
		return lua.LString(x), nil
	case []byte:
		return lua.LString(x), nil
	case []api.Value:
		if depth >= maxDepth {
			return nil, fmt.Errorf("list nesting deeper than %d", maxDepth)
		}
		t := L.CreateTable(len(x), 0)
		for i, e := range x {
			lv, err := v.toLua(L, e, depth+1)
			if err != nil {
				return nil, err
			}
			t.RawSetInt(i+1, lv)
		}
		return t, nil
	case map[string]api.Value:
		if depth >= maxDepth {
			return nil, fmt.Errorf("map nesting deeper than %d", maxDepth)
		}
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			lv, err := v.toLua(L, e, depth+1)
			if err != nil {
				return nil, err
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	case *progFunc:
		if x.p == v.prog && x.key < len(v.captured) {
			return v.captured[x.key], nil
		}
		return v.foreignFunc(L, x), nil
	case *stateFunc:
		if x.v == v {
			return x.fn, nil
		}
		return v.foreignFunc(L, x), nil
	case api.Callable:
		return v.foreignFunc(L, x), nil
	}
	return nil, fmt.Errorf("cannot convert %T to a Lua value", val)
}

// foreignFunc makes a Lua function that calls c (a function of another
// engine, program or state, or a Go function).
func (v *vm) foreignFunc(L *lua.LState, c api.Callable) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		args, err := v.args(L, 1)
		if err != nil {
			v.raise(L, "function call: "+err.Error(), err)
		}
		res, err := c.Call(v.context(), args)
		if err != nil {
			v.raise(L, "function call failed: "+err.Error(), err)
		}
		lv, err := v.toLua(L, res, 0)
		if err != nil {
			v.raise(L, "function result: "+err.Error(), err)
		}
		L.Push(lv)
		return 1
	})
}

// args converts the arguments of a Go function called from Lua, from
// stack index first on.
func (v *vm) args(L *lua.LState, first int) ([]api.Value, error) {
	top := L.GetTop()
	if top < first {
		return nil, nil
	}
	vals := make([]api.Value, top-first+1)
	for i := range vals {
		val, err := v.fromLua(L.Get(first+i), 0)
		if err != nil {
			return nil, fmt.Errorf("bad argument #%d: %w", i+1, err)
		}
		vals[i] = val
	}
	return vals, nil
}

// stringArgs converts RPC arguments.
func stringArgs(args [][]byte) []lua.LValue {
	out := make([]lua.LValue, len(args))
	for i, a := range args {
		out[i] = lua.LString(a)
	}
	return out
}

// valueArgs converts the arguments of Callable.Call.
func (v *vm) valueArgs(args []api.Value) ([]lua.LValue, error) {
	out := make([]lua.LValue, len(args))
	for i, a := range args {
		lv, err := v.toLua(v.L, a, 0)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		out[i] = lv
	}
	return out, nil
}

// context is the context of the call v is running.
func (v *vm) context() context.Context {
	if v.ctx == nil {
		return context.Background()
	}
	return v.ctx
}

// results converts the values a call returned into one api.Value: none is
// nil, one is itself, more are a list.
func (v *vm) results(rets []lua.LValue) (api.Value, error) {
	switch len(rets) {
	case 0:
		return nil, nil
	case 1:
		return v.fromLua(rets[0], 0)
	}
	list := make([]api.Value, len(rets))
	for i, r := range rets {
		val, err := v.fromLua(r, 0)
		if err != nil {
			return nil, err
		}
		list[i] = val
	}
	return list, nil
}

// commonValues holds the request vars' usual values as Lua strings, made
// once: reading them from an env table allocates nothing.
var commonValues = make(map[string]lua.LValue)

func init() {
	for _, v := range []string{
		"", "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS",
		"HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "http", "https", "on", "off", "/",
		"80", "443", "8080", "localhost", "127.0.0.1", "*/*", "close", "keep-alive", "gzip",
	} {
		commonValues[v] = lua.LString(v)
	}
}
