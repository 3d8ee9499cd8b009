package api

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrArgument is matched by every *ArgError.
var ErrArgument = errors.New("api: bad argument")

// ArgError is a script calling an API function with a wrong argument.
type ArgError struct {
	Func  string // the API function's uWSGI name, without "uwsgi."
	Index int    // 0-based
	Msg   string // what is wrong with the argument
}

// Error is the message every engine shows: "bad argument #N to
// uwsgi.NAME: ...".
func (e *ArgError) Error() string {
	return fmt.Sprintf("bad argument #%d to uwsgi.%s: %s", e.Index+1, e.Func, e.Msg)
}

// Is makes errors.Is(err, ErrArgument) true.
func (e *ArgError) Is(target error) bool { return target == ErrArgument }

// Args are the converted arguments of one API call, with accessors that
// apply uWSGI's loose conversions (numbers given as strings, and back)
// and report mistakes as *ArgError.
type Args struct {
	Func string  // the function called, named in the *ArgError of a mistake
	Vals []Value // the arguments in order; nil for a script's nil
}

// Len is the number of arguments given.
func (a Args) Len() int { return len(a.Vals) }

// Has reports whether argument i was given and is not nil.
func (a Args) Has(i int) bool { return i < len(a.Vals) && a.Vals[i] != nil }

func (a Args) err(i int, format string, args ...any) error {
	return &ArgError{Func: a.Func, Index: i, Msg: fmt.Sprintf(format, args...)}
}

func typeName(v Value) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	case string, []byte:
		return "string"
	case []Value:
		return "list"
	case map[string]Value:
		return "map"
	case Callable:
		return "function"
	}
	return fmt.Sprintf("%T", v)
}

// Bytes returns argument i as bytes: strings as they are, numbers
// formatted.
func (a Args) Bytes(i int) ([]byte, error) {
	if i >= len(a.Vals) {
		return nil, a.err(i, "string expected, got no value")
	}
	switch v := a.Vals[i].(type) {
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	case int64, float64:
		return []byte(FormatValue(v)), nil
	}
	return nil, a.err(i, "string expected, got %s", typeName(a.Vals[i]))
}

// String is Bytes as a string.
func (a Args) String(i int) (string, error) {
	b, err := a.Bytes(i)
	return string(b), err
}

// OptString returns argument i, or def when it is absent or nil.
func (a Args) OptString(i int, def string) (string, error) {
	if !a.Has(i) {
		return def, nil
	}
	return a.String(i)
}

// Float returns argument i as a number (numeric strings convert).
func (a Args) Float(i int) (float64, error) {
	if i >= len(a.Vals) {
		return 0, a.err(i, "number expected, got no value")
	}
	switch v := a.Vals[i].(type) {
	case int64:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f, nil
		}
	case []byte:
		if f, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64); err == nil {
			return f, nil
		}
	}
	return 0, a.err(i, "number expected, got %s", typeName(a.Vals[i]))
}

// Int returns argument i as an integer; fractions are an error.
func (a Args) Int(i int) (int64, error) {
	f, err := a.Float(i)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, a.err(i, "integer expected, got %s", FormatFloat(f))
	}
	return int64(f), nil
}

// OptInt returns argument i, or def when it is absent or nil.
func (a Args) OptInt(i int, def int64) (int64, error) {
	if !a.Has(i) {
		return def, nil
	}
	return a.Int(i)
}

// Signal returns argument i as a signal number, 0..255.
func (a Args) Signal(i int) (uint8, error) {
	n, err := a.Int(i)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 255 {
		return 0, a.err(i, "signal number must be 0..255, got %d", n)
	}
	return uint8(n), nil
}

// Seconds returns argument i, a number of seconds, as a duration.
func (a Args) Seconds(i int) (time.Duration, error) {
	f, err := a.Float(i)
	if err != nil {
		return 0, err
	}
	if f < 0 || f > 1e9 {
		return 0, a.err(i, "seconds must be 0..1e9, got %s", FormatFloat(f))
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Callable returns argument i as a function.
func (a Args) Callable(i int) (Callable, error) {
	if i < len(a.Vals) {
		if c, ok := a.Vals[i].(Callable); ok {
			return c, nil
		}
		return nil, a.err(i, "function expected, got %s", typeName(a.Vals[i]))
	}
	return nil, a.err(i, "function expected, got no value")
}

// Rest returns arguments from i on as byte strings (RPC arguments).
func (a Args) Rest(i int) ([][]byte, error) {
	var out [][]byte
	for j := i; j < len(a.Vals); j++ {
		b, err := a.Bytes(j)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
