package js

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"

	"github.com/dop251/goja"

	"github.com/scripthost/scripthost/api"
)

// This file holds every conversion between JavaScript values and api
// values.
//
//	JavaScript                   api.Value
//	undefined, null              nil (nil becomes null)
//	boolean                      bool
//	number                       int64 when integral and |n| <= 2^53, else float64
//	bigint                       int64 (out of range: an error)
//	string                       string (UTF-8; lone surrogates become U+FFFD)
//	Uint8Array, ArrayBuffer      []byte (copied); []byte becomes a Uint8Array
//	Array                        []Value
//	other objects                map[string]Value of their own enumerable string keys
//	function                     Callable (see callableOf)
//
// Symbols and promises do not convert. Strings coming from the API are
// decoded as UTF-8: bytes that are not UTF-8 become U+FFFD, so binary
// data is only safe through Uint8Array (input.readBytes, binary
// WebSocket messages, bytes from Go functions) or as RPC results.

const (
	// maxDepth bounds the nesting of converted arrays and objects;
	// deeper values (or cycles) are an error.
	maxDepth = 100
	// maxList bounds the length of a converted array (a sparse array's
	// length can be 2^32-1).
	maxList = 1 << 24
)

var (
	typeBytes       = reflect.TypeOf([]byte(nil))
	typeArrayBuffer = reflect.TypeOf(goja.ArrayBuffer{})
	typePromise     = reflect.TypeOf((*goja.Promise)(nil))
)

// fromJS converts a JavaScript value to an api.Value. For objects it may
// run script code (getters, proxies), so it must run where JavaScript
// can: in a Go function called by JavaScript, or under jsDo.
func (v *vm) fromJS(val goja.Value, depth int) (api.Value, error) {
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return nil, nil
	}
	switch x := val.(type) {
	case *goja.Object:
		return v.objectFromJS(x, depth)
	case *goja.Symbol:
		return nil, fmt.Errorf("cannot convert a symbol")
	}
	switch x := val.Export().(type) {
	case bool:
		return x, nil
	case int64:
		return x, nil
	case float64:
		return number(x), nil
	case string:
		return x, nil
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), nil
		}
		return nil, fmt.Errorf("BigInt %s is out of range", x)
	}
	return nil, fmt.Errorf("cannot convert a %s", typeName(val))
}

// number is a JavaScript number as an api value.
func number(f float64) api.Value {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f)
	}
	return f
}

func (v *vm) objectFromJS(obj *goja.Object, depth int) (api.Value, error) {
	if fn, ok := goja.AssertFunction(obj); ok {
		return v.callableOf(obj, fn), nil
	}
	if b, ok := bytesOf(obj); ok {
		return bytes.Clone(b), nil
	}
	if obj.ExportType() == typePromise {
		return nil, fmt.Errorf("cannot convert a Promise (await it first)")
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d (a cycle?)", maxDepth)
	}
	if obj.ClassName() == "Array" {
		n := obj.Get("length").ToInteger()
		if n > maxList {
			return nil, fmt.Errorf("array of %d items is too long to convert", n)
		}
		list := make([]api.Value, n)
		for i := range list {
			item, err := v.fromJS(obj.Get(strconv.Itoa(i)), depth+1)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			list[i] = item
		}
		return list, nil
	}
	keys := obj.Keys()
	m := make(map[string]api.Value, len(keys))
	for _, k := range keys {
		item, err := v.fromJS(obj.Get(k), depth+1)
		if err != nil {
			return nil, fmt.Errorf("property %s: %w", k, err)
		}
		m[k] = item
	}
	return m, nil
}

// bytesOf returns the bytes of a Uint8Array (or Uint8ClampedArray) view
// or an ArrayBuffer, not copied.
func bytesOf(obj *goja.Object) ([]byte, bool) {
	switch obj.ExportType() {
	case typeBytes:
		b, ok := obj.Export().([]byte)
		return b, ok
	case typeArrayBuffer:
		ab, ok := obj.Export().(goja.ArrayBuffer)
		return ab.Bytes(), ok
	}
	return nil, false
}

// exportValue converts a result (of a call or an Eval) to an api.Value.
func (v *vm) exportValue(val goja.Value) (api.Value, error) {
	if _, ok := val.(*goja.Object); !ok {
		return v.fromJS(val, 0)
	}
	var out api.Value
	var cerr error
	if err := v.jsDo(func() { out, cerr = v.fromJS(val, 0) }); err != nil {
		return nil, v.scriptError(err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("js: result: %w", cerr)
	}
	return out, nil
}

// resultBytes converts an RPC function's result like uWSGI's V8 plugin
// does, but in bytes: a string as its UTF-8 bytes (uWSGI used its UTF-16
// length, a bug for non-ASCII text), numbers, booleans and bigints with
// String() (0.1+0.2 is "0.30000000000000004"), a Uint8Array or
// ArrayBuffer as its bytes. null, undefined and every other object (as
// Lua tables and api.ToBytes) are no result.
func (v *vm) resultBytes(val goja.Value) ([]byte, error) {
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return nil, api.ErrNoResult
	}
	switch x := val.(type) {
	case *goja.Object:
		if b, ok := bytesOf(x); ok {
			return bytes.Clone(b), nil
		}
		return nil, api.ErrNoResult
	case *goja.Symbol:
		return nil, api.ErrNoResult
	}
	return api.StringBytes(val.String()), nil // a fresh Go string: no second copy
}

// callableOf wraps a JavaScript function as an api.Callable. During a
// load, a function gets the next key (the same in every runtime of the
// program); a function captured at load keeps its key afterwards; any
// other is pinned to this runtime.
func (v *vm) callableOf(obj *goja.Object, fn goja.Callable) api.Callable {
	if key, ok := v.keyOf[obj]; ok {
		return &progFunc{p: v.prog, key: key}
	}
	if v.loading && v.prog != nil {
		key := len(v.captured)
		v.captured = append(v.captured, jsFunc{obj: obj, fn: fn, this: goja.Undefined()})
		v.keyOf[obj] = key
		return &progFunc{p: v.prog, key: key}
	}
	return &pinnedFunc{v: v, f: jsFunc{obj: obj, fn: fn, this: goja.Undefined()}}
}

// uint8Array returns b as a Uint8Array over it (b must not be used
// elsewhere after).
func (v *vm) uint8Array(b []byte) (goja.Value, error) {
	u8, err := v.rt.New(v.uint8Ctor, v.rt.ToValue(v.rt.NewArrayBuffer(b)))
	if err != nil {
		return nil, err
	}
	return u8, nil
}

// toJS converts an api.Value to a JavaScript value of v.
func (v *vm) toJS(val api.Value, depth int) (goja.Value, error) {
	rt := v.rt
	switch x := val.(type) {
	case nil:
		return goja.Null(), nil
	case bool:
		return rt.ToValue(x), nil
	case int64:
		return rt.ToValue(x), nil
	case int:
		return rt.ToValue(x), nil
	case float64:
		return rt.ToValue(x), nil
	case string:
		return rt.ToValue(x), nil
	case []byte:
		return v.uint8Array(x)
	case []api.Value:
		if depth >= maxDepth {
			return nil, fmt.Errorf("list nesting deeper than %d", maxDepth)
		}
		items := make([]any, len(x))
		for i, e := range x {
			jv, err := v.toJS(e, depth+1)
			if err != nil {
				return nil, err
			}
			items[i] = jv
		}
		return rt.NewArray(items...), nil
	case map[string]api.Value:
		if depth >= maxDepth {
			return nil, fmt.Errorf("map nesting deeper than %d", maxDepth)
		}
		obj := rt.NewObject()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			jv, err := v.toJS(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			obj.Set(k, jv)
		}
		return obj, nil
	case *progFunc:
		if x.p == v.prog && v.prog != nil && x.key < len(v.captured) {
			return v.captured[x.key].obj, nil
		}
		return v.foreignFunc(x), nil
	case *pinnedFunc:
		if x.v == v {
			return x.f.obj, nil
		}
		return v.foreignFunc(x), nil
	case api.Callable:
		return v.foreignFunc(x), nil
	}
	return nil, fmt.Errorf("cannot convert %T to a JavaScript value", val)
}

// foreignFunc makes a JavaScript function that calls c (a function of
// another engine, program or runtime, or a Go function).
func (v *vm) foreignFunc(c api.Callable) goja.Value {
	return v.rt.ToValue(func(call goja.FunctionCall) goja.Value {
		args := make([]api.Value, len(call.Arguments))
		for i, a := range call.Arguments {
			val, err := v.fromJS(a, 0)
			if err != nil {
				v.throw(v.typeErrorCtor, fmt.Sprintf("bad argument #%d to function: %v", i+1, err), err)
			}
			args[i] = val
		}
		res, err := c.Call(v.context(), args)
		if err != nil {
			v.throw(v.errorCtor, "function call failed: "+err.Error(), err)
		}
		jv, err := v.toJS(res, 0)
		if err != nil {
			v.throw(v.typeErrorCtor, "function result: "+err.Error(), err)
		}
		return jv
	})
}

// typeName is typeof, with null and arrays told apart.
func typeName(val goja.Value) string {
	switch {
	case val == nil || goja.IsUndefined(val):
		return "undefined"
	case goja.IsNull(val):
		return "null"
	}
	switch x := val.(type) {
	case *goja.Object:
		if _, ok := goja.AssertFunction(x); ok {
			return "function"
		}
		if x.ClassName() == "Array" {
			return "array"
		}
		return "object"
	case *goja.Symbol:
		return "symbol"
	}
	switch val.ExportType().Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Int64, reflect.Float64:
		return "number"
	}
	if _, ok := val.Export().(*big.Int); ok {
		return "bigint"
	}
	return "value"
}
