package js

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/dop251/goja"
)

// The string-building built-ins: a size over Options.MaxStringSize is a
// RangeError wrapping ErrStringTooLarge, and what passes is charged (two
// bytes per UTF-16 code unit) before it is built.

// tooLarge throws the RangeError of a string over the limit.
func (v *vm) tooLarge(what string, n float64) {
	v.throw(v.rangeErrorCtor, fmt.Sprintf("Invalid string length: %s would make %s characters, over the limit of %d",
		what, formatCount(n), v.eng.opts.MaxStringSize), ErrStringTooLarge)
}

// buildString checks and charges a string of n UTF-16 code units.
func (v *vm) buildString(what string, n float64) {
	if n > float64(v.eng.opts.MaxStringSize) {
		v.tooLarge(what, n)
	}
	v.allocate(what, 2*n)
}

// toStr is ToString(val) as a string value.
func (v *vm) toStr(val goja.Value) goja.Value {
	s := val.ToString()
	if _, ok := s.(goja.String); ok {
		return s
	}
	return v.rt.ToValue(s.String())
}

// strLen is the length of a string value in UTF-16 code units.
func strLen(s goja.Value) float64 {
	if gs, ok := s.(goja.String); ok {
		return float64(gs.Length())
	}
	return float64(len(s.String()))
}

// thisString converts the this of a String.prototype method once (the
// method gets the string, so that a toString cannot answer differently
// the second time); undefined and null are left for the method to
// refuse.
func thisString(call *goja.FunctionCall) float64 {
	if goja.IsUndefined(call.This) || goja.IsNull(call.This) {
		return 0
	}
	call.This = call.This.ToString()
	return strLen(call.This)
}

// guardStrings guards String.prototype.repeat, padStart, padEnd and
// concat, and replaces Array.prototype.join and %TypedArray%.prototype.join
// by versions that size the result before building it.
func (v *vm) guardStrings() {
	rt := v.rt
	global := rt.GlobalObject()
	str := global.Get("String").ToObject(rt).Get("prototype").ToObject(rt)
	v.guard(str, "repeat", func(call *goja.FunctionCall) {
		n := thisString(call)
		count := call.Argument(0).ToNumber()
		call.Arguments = []goja.Value{count}
		if c := count.ToFloat(); c > 0 && !math.IsInf(c, 1) && n > 0 {
			v.buildString("repeat", n*math.Trunc(c))
		}
	})
	for _, name := range []string{"padStart", "padEnd"} {
		v.guard(str, name, func(call *goja.FunctionCall) {
			n := thisString(call)
			target := call.Argument(0).ToNumber()
			call.Arguments = replaceArg(call.Arguments, 0, target)
			if t := target.ToFloat(); t > n {
				v.buildString(name, math.Trunc(t))
			}
		})
	}
	v.guard(str, "concat", func(call *goja.FunctionCall) {
		n := thisString(call)
		args := make([]goja.Value, len(call.Arguments))
		for i, a := range call.Arguments {
			args[i] = a.ToString()
			n += strLen(args[i])
		}
		call.Arguments = args
		v.buildString("concat", n)
	})

	arrayProto := global.Get("Array").ToObject(rt).Get("prototype").ToObject(rt)
	v.replaceMethod(arrayProto, "join", v.join)
	typedProto := global.Get("Uint8Array").ToObject(rt).Prototype().Get("prototype").ToObject(rt)
	v.guard(typedProto, "join", func(call *goja.FunctionCall) {
		obj, ok := call.This.(*goja.Object)
		if !ok {
			return
		}
		n, ok := typedLength(obj)
		if !ok {
			return
		}
		sep := 1.0
		if s := call.Argument(0); !goja.IsUndefined(s) {
			s = s.ToString()
			call.Arguments = []goja.Value{s}
			sep = strLen(s)
		}
		// Each element prints at least one character, at most 24.
		if l := float64(n); l > 0 {
			if min := l + (l-1)*sep; min > float64(v.eng.opts.MaxStringSize) {
				v.tooLarge("join", min)
			}
			v.buildString("join", min(24*l+(l-1)*sep, float64(v.eng.opts.MaxStringSize)))
		}
	})
}

// join is Array.prototype.join: it converts every element once, adding
// up the length, and builds the string only when it fits. A join nested
// in the join of the same array (a cycle) gives "", as in goja and V8.
func (v *vm) join(call goja.FunctionCall) goja.Value {
	rt := v.rt
	obj := call.This.ToObject(rt)
	limit := float64(v.eng.opts.MaxStringSize)
	if _, cyclic := v.joining[obj]; cyclic {
		return rt.ToValue("")
	}
	if len(v.joining) >= v.eng.opts.MaxCallStackSize {
		v.throw(v.rangeErrorCtor, "Maximum call stack size exceeded: join nested too deep", nil)
	}
	n := toLength(obj.Get("length"))
	var sep goja.Value = rt.ToValue(",")
	if s := call.Argument(0); !goja.IsUndefined(s) {
		sep = s.ToString()
	}
	if n == 0 {
		return rt.ToValue("")
	}
	sepLen := strLen(sep)
	// The loop below cannot be interrupted: its length is bounded even
	// with an empty separator.
	if n > limit || (n-1)*sepLen > limit {
		v.tooLarge("join", max(n, (n-1)*sepLen))
	}
	v.allocate("join", n*valueBytes)
	v.joining[obj] = struct{}{}
	defer delete(v.joining, obj)
	parts := make([]goja.Value, int(n))
	total := (n - 1) * sepLen
	for i := range parts {
		el := obj.Get(strconv.Itoa(i))
		if el == nil || goja.IsUndefined(el) || goja.IsNull(el) {
			continue
		}
		parts[i] = v.toStr(el)
		if total += strLen(parts[i]); total > limit {
			v.tooLarge("join", total)
		}
	}
	v.allocate("join", 2*total)
	var b goja.StringBuilder
	b.Grow(int(total))
	sepStr, _ := sep.(goja.String)
	for i, p := range parts {
		if i > 0 && sepStr != nil {
			b.WriteString(sepStr)
		}
		if s, ok := p.(goja.String); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// guardJSON replaces JSON.stringify and JSON.parse (see jsonWalk and
// jsonNesting).
func (v *vm) guardJSON(json *goja.Object) {
	stringify := v.method(json, "stringify")
	v.replaceMethod(json, "stringify", func(call goja.FunctionCall) goja.Value {
		w := &jsonWalk{v: v, gap: gapLength(call.Argument(2))}
		if obj, ok := call.Argument(1).(*goja.Object); ok {
			if fn, ok := goja.AssertFunction(obj); ok {
				w.user = fn
			} else if isArray(obj) {
				w.allow = v.propertyList(obj)
			}
		}
		res, err := stringify(goja.Undefined(), call.Argument(0), v.rt.ToValue(w.replace), call.Argument(2))
		if err != nil {
			panic(err)
		}
		return res
	})
	v.guard(json, "parse", func(call *goja.FunctionCall) {
		text := call.Argument(0).ToString()
		call.Arguments = replaceArg(call.Arguments, 0, text)
		if d := jsonNesting(text.String()); d > maxNesting {
			v.throw(v.rangeErrorCtor, fmt.Sprintf("JSON.parse: nesting deeper than %d", maxNesting), nil)
		}
	})
	v.jsonStringify = v.method(json, "stringify")
}

// jsonWalk is one JSON.stringify: goja's stringify calls its replace for
// every value, so it can add up the size of the output as it grows,
// follow the nesting, watch the call's context, and apply the script's
// own replacer (a function, or a property list, applied by rebuilding
// objects with the listed properties in the list's order).
type jsonWalk struct {
	v     *vm
	user  goja.Callable
	allow []goja.Value
	gap   float64
	open  []*goja.Object // the objects being serialized, outermost first

	nodes   int
	size    float64 // characters so far
	charged float64 // bytes charged so far
}

// jsonCharge is how much output is charged at once.
const jsonCharge = 1 << 20

func (w *jsonWalk) replace(call goja.FunctionCall) goja.Value {
	v := w.v
	holder, _ := call.This.(*goja.Object)
	key, val := call.Argument(0), call.Argument(1)
	if w.nodes++; w.nodes%1024 == 0 {
		if ctx := v.context(); ctx.Err() != nil {
			cause := context.Cause(ctx)
			v.throw(v.errorCtor, "JSON.stringify interrupted: "+cause.Error(), cause)
		}
	}
	if w.user != nil {
		res, err := w.user(holder, key, val)
		if err != nil {
			panic(err)
		}
		val = res
	}
	for len(w.open) > 0 && w.open[len(w.open)-1] != holder {
		w.open = w.open[:len(w.open)-1]
	}
	depth := float64(len(w.open))
	if depth > 0 {
		if isArray(holder) {
			w.size++ // ,
		} else {
			w.size += strLen(key) + 4 // "key":,
		}
		if w.gap > 0 {
			w.size += 2 + depth*w.gap // newline, indent, space
		}
	}
	switch x := val.(type) {
	case goja.String:
		w.size += float64(x.Length()) + 2
	case *goja.Object:
		if _, ok := goja.AssertFunction(x); ok {
			break
		}
		if w.allow != nil && !isArray(x) && !isPrimitiveWrapper(x) {
			x = w.filter(x)
			val = x
		}
		if len(w.open) >= maxNesting {
			v.throw(v.rangeErrorCtor, fmt.Sprintf("JSON.stringify: nesting deeper than %d", maxNesting), nil)
		}
		w.open = append(w.open, x)
		w.size += 2 + 1 + depth*w.gap
	default:
		w.size += 24 // a number, true, false, null
	}
	if w.size > float64(v.eng.opts.MaxStringSize) {
		v.tooLarge("JSON.stringify", w.size)
	}
	if more := 2*w.size - w.charged; more >= jsonCharge {
		v.allocate("JSON.stringify", more)
		w.charged += more
	}
	return val
}

func isPrimitiveWrapper(obj *goja.Object) bool {
	switch obj.ClassName() {
	case "Number", "String", "Boolean", "BigInt":
		return true
	}
	return false
}

// filter is obj with only the properties of the property list, in its
// order.
func (w *jsonWalk) filter(obj *goja.Object) *goja.Object {
	out := w.v.rt.NewObject()
	for _, name := range w.allow {
		if val := obj.Get(name.String()); val != nil && !goja.IsUndefined(val) {
			out.Set(name.String(), val)
		}
	}
	return out
}

// propertyList is JSON.stringify's property list from an array replacer:
// its string and number elements, each once.
func (v *vm) propertyList(arr *goja.Object) []goja.Value {
	n := toLength(arr.Get("length"))
	v.allocate("JSON.stringify", n*valueBytes)
	seen := map[string]bool{}
	list := []goja.Value{}
	for i := 0; i < int(n); i++ {
		el := arr.Get(strconv.Itoa(i))
		if el == nil {
			continue
		}
		var name string
		switch x := el.(type) {
		case *goja.Object:
			if c := x.ClassName(); c != "String" && c != "Number" {
				continue
			}
			name = x.String()
		case goja.String:
			name = x.String()
		default:
			if t := el.ExportType(); t == nil || (t.Kind() != reflect.Int64 && t.Kind() != reflect.Float64) {
				continue
			}
			name = el.String()
		}
		if !seen[name] {
			seen[name] = true
			list = append(list, v.rt.ToValue(name))
		}
	}
	return list
}

// gapLength is the indentation JSON.stringify makes of its space
// argument: at most 10 characters.
func gapLength(space goja.Value) float64 {
	switch x := space.(type) {
	case nil:
		return 0
	case goja.String:
		return min(float64(x.Length()), 10)
	case *goja.Object:
		return 10 // a Number or String object: at most 10
	}
	if goja.IsUndefined(space) || goja.IsNull(space) {
		return 0
	}
	if f, ok := space.Export().(float64); ok {
		return min(max(math.Trunc(f), 0), 10)
	}
	if i, ok := space.Export().(int64); ok {
		return float64(min(max(i, 0), 10))
	}
	return 0
}

// jsonNesting returns the deepest nesting of arrays and objects in JSON
// text (brackets outside strings).
func jsonNesting(s string) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > deepest {
				deepest = depth
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
