package api

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// Value is a script-neutral value, what engines convert their languages'
// values to and from. Its dynamic type is one of:
//
//	nil                 Lua nil, JS null/undefined, Go nil
//	bool
//	int64               integral numbers
//	float64             other numbers
//	string              text and byte strings (Go strings hold any bytes)
//	[]byte              binary data where the language has a type for it
//	[]Value             a list (Lua sequence, JS array, Go slice)
//	map[string]Value    a map (Lua table, JS object, Go map)
//	Callable            a function of some engine
//
// Engines convert every other value of theirs to one of these, or fail.
type Value = any

// Callable is a script function handed to the API (an RPC, a signal
// handler). Calling it borrows a VM of the engine and generation that made
// it, so it may be called from any goroutine.
type Callable interface {
	Call(ctx context.Context, args []Value) (Value, error)
}

// BytesCallable is implemented by Callables whose language has its own
// rules for turning a result into bytes (Lua's tostring, JS's toString);
// RPC registrations use it when present.
type BytesCallable interface {
	Callable
	CallBytes(ctx context.Context, args [][]byte) ([]byte, error)
}

// RPCFromCallable adapts a script function to the RPC registry: byte
// string arguments in, a byte string out. A nil result is ErrNoResult, as
// in uWSGI.
func RPCFromCallable(c Callable) RPCFunc {
	if bc, ok := c.(BytesCallable); ok {
		return bc.CallBytes
	}
	return func(ctx context.Context, args [][]byte) ([]byte, error) {
		vals := make([]Value, len(args))
		for i, a := range args {
			vals[i] = string(a)
		}
		v, err := c.Call(ctx, vals)
		if err != nil {
			return nil, err
		}
		b, ok := ToBytes(v)
		if !ok {
			return nil, ErrNoResult
		}
		return b, nil
	}
}

// ToBytes converts an RPC result to bytes: strings and numbers convert as
// uWSGI's Lua plugin converts them (lua_tolstring), nil does not; booleans
// become "true"/"false" (an extension), lists, maps and functions do not
// convert.
func ToBytes(v Value) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return []byte(x), true
	case []byte:
		return x, true
	case nil:
		return nil, false
	case int64, float64, bool:
		return []byte(FormatValue(v)), true
	}
	return nil, false
}

// FormatValue renders a scalar as text: integers in decimal, floats like
// Lua 5.1's tostring (C's "%.14g", so 0.1+0.2 is "0.3"), booleans as
// true/false, nil as "nil".
func FormatValue(v Value) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return FormatFloat(x)
	}
	return fmt.Sprintf("%v", v)
}

// FormatFloat formats like Lua 5.1: "%.14g", with inf, -inf and nan
// spelled as C prints them.
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 14, 64)
}

// StringBytes returns the bytes of s without copying them, for results
// handed to the host, which only reads them (RPC results are never
// modified). Callers must not write to the slice.
func StringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
