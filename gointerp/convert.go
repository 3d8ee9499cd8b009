package gointerp

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
)

// All conversion between the Go values of scripts and api's neutral
// values is here.
//
// Script to API (toValue): nil, nil pointers, nil interfaces and nil
// functions are nil; booleans; every integer kind is int64 (a uint64 over
// MaxInt64 becomes a float64); floats are float64; strings; []byte and
// byte arrays ([32]byte from sha256.Sum256) are []byte; other slices and
// arrays are lists; maps with string keys are maps; a time.Duration is
// its number of seconds, since the API counts time in seconds; functions
// are api.Callables. Structs, pointers to non-nil values, channels and
// maps with other keys do not convert (ErrConvert).
//
// API to script (toGo): nil, bool, int64, float64, string, []byte as they
// are; lists are []any and maps map[string]any of converted values; an
// api.Callable is a func(args ...any) (any, error).
//
// API values passed to a script function's parameters (assign) follow
// api.Args's loose rules: a string parameter takes strings, bytes and
// numbers (formatted like uWSGI's Lua plugin); numeric parameters take
// numbers and numeric strings (integers only if integral and in range); a
// time.Duration takes seconds; []byte takes strings; slices, maps and
// function types convert element by element; an interface parameter (any)
// takes the value as toGo gives it. nil is the zero value.

// maxDepth bounds the nesting of lists and maps (a []any can hold itself).
const maxDepth = 64

var (
	errorType    = reflect.TypeFor[error]()
	durationType = reflect.TypeFor[time.Duration]()
	anyType      = reflect.TypeFor[any]()
	// apiFuncType is the type of every uwsgi function of scripts, and of
	// the functions API callables become in scripts.
	apiFuncType = reflect.TypeFor[func(args ...any) (any, error)]()
)

// converter converts values for one interpreter: wrap makes a script
// function an api.Callable, ctx is the context in which Callables given
// to the script as Go functions run (the running call's).
type converter struct {
	wrap func(fn reflect.Value) (api.Callable, error)
	ctx  func() context.Context
}

func convErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConvert, fmt.Sprintf(format, args...))
}

// toValue converts a script's Go value to an api.Value.
func (c *converter) toValue(x any) (api.Value, error) { return c.value(reflect.ValueOf(x), 0) }

func (c *converter) value(rv reflect.Value, depth int) (api.Value, error) {
	if !rv.IsValid() {
		return nil, nil
	}
	if depth > maxDepth {
		return nil, convErr("lists or maps nested deeper than %d", maxDepth)
	}
	t := rv.Type()
	if t == durationType {
		return time.Duration(rv.Int()).Seconds(), nil
	}
	switch rv.Kind() {
	case reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return c.value(rv.Elem(), depth)
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		if rv.CanInterface() {
			if cl, ok := rv.Interface().(api.Callable); ok {
				return cl, nil
			}
		}
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u), nil
		}
		return float64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return b, nil
		}
		list := make([]api.Value, rv.Len())
		for i := range list {
			v, err := c.value(rv.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			list[i] = v
		}
		return list, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, convErr("map with %s keys (want string keys)", t.Key())
		}
		m := make(map[string]api.Value, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			v, err := c.value(it.Value(), depth+1)
			if err != nil {
				return nil, err
			}
			m[it.Key().String()] = v
		}
		return m, nil
	case reflect.Func:
		if rv.IsNil() {
			return nil, nil
		}
		if c.wrap == nil {
			return nil, convErr("a function cannot be passed here")
		}
		return c.wrap(rv)
	}
	if rv.CanInterface() {
		if cl, ok := rv.Interface().(api.Callable); ok {
			return cl, nil
		}
	}
	return nil, convErr("%s", kindName(t))
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "a struct (" + t.String() + ")"
	case reflect.Pointer:
		return "a pointer (" + t.String() + ")"
	}
	return "a value of type " + t.String()
}

// toGo converts an api.Value to the Go value a script sees.
func (c *converter) toGo(v api.Value) any {
	switch x := v.(type) {
	case []api.Value:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = c.toGo(e)
		}
		return out
	case map[string]api.Value:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = c.toGo(e)
		}
		return out
	case api.Callable:
		return c.goFunc(x, apiFuncType).Interface()
	}
	return v
}

// goFunc makes a Go function of type t that calls cl: arguments convert
// with toValue, the result is assigned to t's first result that is not
// an error, and cl's error to its error result.
func (c *converter) goFunc(cl api.Callable, t reflect.Type) reflect.Value {
	return reflect.MakeFunc(t, func(in []reflect.Value) []reflect.Value {
		var args []api.Value
		var err error
		for i, a := range in {
			if t.IsVariadic() && i == len(in)-1 {
				for j := range a.Len() {
					var v api.Value
					if v, err = c.value(a.Index(j), 0); err != nil {
						break
					}
					args = append(args, v)
				}
				break
			}
			var v api.Value
			if v, err = c.value(a, 0); err != nil {
				break
			}
			args = append(args, v)
		}
		var res api.Value
		if err == nil {
			ctx := context.Background()
			if c.ctx != nil {
				ctx = c.ctx()
			}
			res, err = cl.Call(ctx, args)
		}
		out := make([]reflect.Value, t.NumOut())
		set := false
		for i := range out {
			ot := t.Out(i)
			out[i] = reflect.Zero(ot)
			switch {
			case ot == errorType:
				continue
			case !set && err == nil:
				set = true
				rv, aerr := c.assign(res, ot, 0)
				if aerr != nil {
					err = fmt.Errorf("result: %w", aerr)
					continue
				}
				out[i] = rv
			}
		}
		if err != nil {
			n := len(out)
			if n == 0 || t.Out(n-1) != errorType {
				// No way to return it: fail the script's call.
				panic(fmt.Sprintf("gointerp: call of a %s: %v", t, err))
			}
			out[n-1] = errorValue(err)
		}
		return out
	})
}

// assign converts v to a value of type t.
func (c *converter) assign(v api.Value, t reflect.Type, depth int) (reflect.Value, error) {
	if v == nil {
		return reflect.Zero(t), nil
	}
	if depth > maxDepth {
		return reflect.Value{}, convErr("lists or maps nested deeper than %d", maxDepth)
	}
	if t == durationType {
		f, ok := number(v)
		if !ok {
			return reflect.Value{}, convErr("%s as a duration in seconds", typeName(v))
		}
		return reflect.ValueOf(time.Duration(f * float64(time.Second))), nil
	}
	switch t.Kind() {
	case reflect.Interface:
		rv := reflect.ValueOf(c.toGo(v))
		if !rv.Type().AssignableTo(t) {
			return reflect.Value{}, convErr("%s as %s", typeName(v), t)
		}
		out := reflect.New(t).Elem()
		out.Set(rv)
		return out, nil
	case reflect.String:
		switch x := v.(type) {
		case string, []byte, int64, float64:
			return reflect.ValueOf(api.FormatValue(x)).Convert(t), nil
		}
	case reflect.Bool:
		if b, ok := v.(bool); ok {
			return reflect.ValueOf(b).Convert(t), nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := integer(v); ok {
			out := reflect.New(t).Elem()
			if !out.OverflowInt(n) {
				out.SetInt(n)
				return out, nil
			}
			return reflect.Value{}, convErr("%d overflows %s", n, t)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n, ok := integer(v); ok && n >= 0 {
			out := reflect.New(t).Elem()
			if !out.OverflowUint(uint64(n)) {
				out.SetUint(uint64(n))
				return out, nil
			}
			return reflect.Value{}, convErr("%d overflows %s", n, t)
		}
	case reflect.Float32, reflect.Float64:
		if f, ok := number(v); ok {
			return reflect.ValueOf(f).Convert(t), nil
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			switch x := v.(type) {
			case string:
				return reflect.ValueOf([]byte(x)).Convert(t), nil
			case []byte:
				return reflect.ValueOf(append([]byte(nil), x...)).Convert(t), nil
			}
			break
		}
		list, ok := v.([]api.Value)
		if !ok {
			break
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		for i, e := range list {
			rv, err := c.assign(e, t.Elem(), depth+1)
			if err != nil {
				return reflect.Value{}, err
			}
			out.Index(i).Set(rv)
		}
		return out, nil
	case reflect.Map:
		m, ok := v.(map[string]api.Value)
		if !ok || t.Key().Kind() != reflect.String {
			break
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for k, e := range m {
			rv, err := c.assign(e, t.Elem(), depth+1)
			if err != nil {
				return reflect.Value{}, err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), rv)
		}
		return out, nil
	case reflect.Func:
		if cl, ok := v.(api.Callable); ok {
			return c.goFunc(cl, t), nil
		}
	}
	return reflect.Value{}, convErr("%s as %s", typeName(v), t)
}

// typeName names an api value's type in messages.
func typeName(v api.Value) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int64, float64:
		return "number " + api.FormatValue(x)
	case string, []byte:
		return "string"
	case []api.Value:
		return "list"
	case map[string]api.Value:
		return "map"
	case api.Callable:
		return "function"
	}
	return fmt.Sprintf("%T", v)
}

// number reads v as a number; numeric strings count, as in api.Args.
func number(v api.Value) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	case []byte:
		f, err := strconv.ParseFloat(strings.TrimSpace(string(x)), 64)
		return f, err == nil
	}
	return 0, false
}

// integer reads v as an integer: integral numbers and numeric strings.
func integer(v api.Value) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, true
		}
	case []byte:
		if n, err := strconv.ParseInt(strings.TrimSpace(string(x)), 10, 64); err == nil {
			return n, true
		}
	}
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// callArgs converts api values to the arguments of a function of type t:
// missing arguments are zero values, extra ones are dropped unless t is
// variadic.
func (c *converter) callArgs(t reflect.Type, args []api.Value) ([]reflect.Value, error) {
	n := t.NumIn()
	fixed := n
	if t.IsVariadic() {
		fixed = n - 1
	}
	var in []reflect.Value
	for i := range fixed {
		var a api.Value
		if i < len(args) {
			a = args[i]
		}
		rv, err := c.assign(a, t.In(i), 0)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		in = append(in, rv)
	}
	if t.IsVariadic() {
		et := t.In(n - 1).Elem()
		for i := fixed; i < len(args); i++ {
			rv, err := c.assign(args[i], et, 0)
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i+1, err)
			}
			in = append(in, rv)
		}
	}
	return in, nil
}

// results converts what a script function returned: its last result is
// its error if of type error, its first other result its value.
func (c *converter) results(t reflect.Type, out []reflect.Value) (api.Value, error) {
	n := len(out)
	var err error
	if n > 0 && t.Out(n-1) == errorType {
		if e := out[n-1]; !e.IsNil() {
			err = e.Interface().(error)
		}
		n--
	}
	if err != nil || n == 0 {
		return nil, err
	}
	v, cerr := c.value(out[0], 0)
	if cerr != nil {
		return nil, fmt.Errorf("result: %w", cerr)
	}
	return v, nil
}

// anyValue returns x as a reflect.Value of type any (valid even for nil).
func anyValue(x any) reflect.Value {
	rv := reflect.New(anyType).Elem()
	if x != nil {
		rv.Set(reflect.ValueOf(x))
	}
	return rv
}

// errorValue returns err as a reflect.Value of type error.
func errorValue(err error) reflect.Value {
	rv := reflect.New(errorType).Elem()
	if err != nil {
		rv.Set(reflect.ValueOf(err))
	}
	return rv
}
