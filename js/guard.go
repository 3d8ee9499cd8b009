package js

import (
	"fmt"
	"math"
	"reflect"

	"github.com/dop251/goja"

	"github.com/scripthost/scripthost/api"
)

// Allocation guards. goja allocates in native code that harakiri cannot
// interrupt, and a Go allocation the machine cannot hold is a fatal error
// of the whole process: every built-in that allocates a size the script
// picks is replaced by one that reads the size once, charges it to the
// call (api.Charge) and only then lets the original run, with arguments
// it cannot size differently a second time (numbers instead of objects
// with valueOf, a snapshot instead of an array-like with a length
// getter).

// valueBytes is what goja keeps per element of an array or argument list
// (one interface value).
const valueBytes = 16

// maxNesting bounds the nesting that native recursion (JSON.parse,
// JSON.stringify, join of nested arrays) follows on the Go stack.
const maxNesting = 10000

var (
	typeProxy = reflect.TypeOf(goja.Proxy{})
)

// charge accounts n bytes the running call is about to allocate.
func (v *vm) charge(n float64) error {
	b := int64(math.MaxInt64)
	if n < math.MaxInt64 {
		b = int64(max(n, 0))
	}
	if v.ctx != v.scopeCtx { // the call's scope, looked up once per call
		v.scope, v.scopeCtx = api.ScopeOf(v.context()), v.ctx
	}
	if v.scope != nil {
		return v.scope.Charge(b)
	}
	return api.Charge(v.context(), b)
}

// allocate charges n bytes for what (a call like "new ArrayBuffer") or
// throws a RangeError carrying the api error; the runtime is not reused
// after a refusal.
func (v *vm) allocate(what string, n float64) {
	if err := v.charge(n); err != nil {
		v.markBroken(err)
		v.throw(v.rangeErrorCtor, fmt.Sprintf("%s: %v", what, err), err)
	}
}

// isSet reports a property value that is neither missing nor undefined.
func isSet(val goja.Value) bool { return val != nil && !goja.IsUndefined(val) }

func isProxy(obj *goja.Object) bool { return obj.ExportType() == typeProxy }

// isArray reports a real Array (whose length is a data property).
func isArray(obj *goja.Object) bool { return obj.ClassName() == "Array" && !isProxy(obj) }

// typedLength returns the element count of a typed array.
func typedLength(obj *goja.Object) (int, bool) {
	if obj.ClassName() != "Object" {
		return 0, false
	}
	t := obj.ExportType()
	if t == nil || t.Kind() != reflect.Slice {
		return 0, false
	}
	return reflect.ValueOf(obj.Export()).Len(), true
}

// toIndex converts a size argument once, as the built-ins would.
func toIndex(val goja.Value) float64 {
	f := val.ToFloat()
	if math.IsNaN(f) {
		return 0
	}
	return math.Trunc(f)
}

// toLength is ECMAScript's ToLength.
func toLength(val goja.Value) float64 {
	if val == nil {
		return 0
	}
	return min(max(toIndex(val), 0), 1<<53-1)
}

// dataLength reads the length of an array-like whose length cannot change
// between two reads: a real array, or an object (no proxy on its
// prototype chain) whose length is a data property.
func (v *vm) dataLength(obj *goja.Object) (float64, bool) {
	if isArray(obj) {
		return toLength(obj.Get("length")), true
	}
	for p := obj; p != nil; p = p.Prototype() {
		if isProxy(p) {
			return 0, false
		}
		d, err := v.getOwnDesc(goja.Undefined(), p, v.rt.ToValue("length"))
		if err != nil {
			panic(err)
		}
		desc, ok := d.(*goja.Object)
		if !ok {
			continue
		}
		if isSet(desc.Get("get")) || isSet(desc.Get("set")) {
			return 0, false
		}
		return toLength(desc.Get("value")), true
	}
	return 0, true
}

// mustDataLength is dataLength throwing a TypeError for what when the
// length could change between the check and the built-in's own read.
func (v *vm) mustDataLength(what string, obj *goja.Object) float64 {
	n, ok := v.dataLength(obj)
	if !ok {
		v.throw(v.typeErrorCtor, what+": not supported on a Proxy or an array-like with a length accessor", nil)
	}
	return n
}

// snapshot is an array-like whose length is n and whose elements are
// obj's: an object inheriting from obj with its own length, so that a
// built-in reading the length again gets n.
func (v *vm) snapshot(obj *goja.Object, n float64) *goja.Object {
	s := v.rt.CreateObject(obj)
	s.DefineDataProperty("length", v.rt.ToValue(n), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	return s
}

// iterable returns the iterator method of obj (nil: none).
func iteratorMethod(obj *goja.Object) goja.Callable {
	m := obj.GetSymbol(goja.SymIterator)
	if m == nil || goja.IsUndefined(m) || goja.IsNull(m) {
		return nil
	}
	fn, _ := goja.AssertFunction(m)
	return fn
}

// stableSource makes an array-like or iterable argument of a built-in
// that allocates from it safe to hand over: an iterable is wrapped so
// that the built-in sees the same iterator method as this check did; an
// array-like's length is read once, charged at elemBytes per element, and
// fixed in a snapshot.
func (v *vm) stableSource(what string, obj *goja.Object, elemBytes float64) goja.Value {
	if m := iteratorMethod(obj); m != nil {
		w := v.rt.NewObject()
		w.DefineDataPropertySymbol(goja.SymIterator, v.rt.ToValue(func(goja.FunctionCall) goja.Value {
			it, err := m(obj)
			if err != nil {
				panic(err)
			}
			return it
		}), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
		return w
	}
	n := toLength(obj.Get("length"))
	v.allocate(what, n*elemBytes)
	return v.snapshot(obj, n)
}

// guardAllocs installs the guarded built-ins (see the list in the package
// comment).
func (v *vm) guardAllocs() {
	rt := v.rt
	global := rt.GlobalObject()
	reflectObj := global.Get("Reflect").ToObject(rt)
	v.getOwnDesc = v.method(reflectObj, "getOwnPropertyDescriptor")
	v.hasInstance = rt.ToValue(v.ordinaryHasInstance).(*goja.Object)
	v.setName(v.hasInstance, "[Symbol.hasInstance]")

	v.guardConstructor("ArrayBuffer", func(args []goja.Value) []goja.Value {
		if len(args) == 0 {
			return args
		}
		n := toIndex(args[0])
		v.allocate("new ArrayBuffer", n)
		return replaceArg(args, 0, rt.ToValue(n))
	})
	for _, ta := range []struct {
		name string
		size float64
	}{
		{"Int8Array", 1}, {"Uint8Array", 1}, {"Uint8ClampedArray", 1},
		{"Int16Array", 2}, {"Uint16Array", 2},
		{"Int32Array", 4}, {"Uint32Array", 4}, {"Float32Array", 4},
		{"Float64Array", 8}, {"BigInt64Array", 8}, {"BigUint64Array", 8},
	} {
		what := "new " + ta.name
		v.guardConstructor(ta.name, func(args []goja.Value) []goja.Value {
			if len(args) == 0 {
				return args
			}
			src, ok := args[0].(*goja.Object)
			if !ok {
				n := toIndex(args[0])
				v.allocate(what, n*ta.size)
				return replaceArg(args, 0, rt.ToValue(n))
			}
			if src.ExportType() == typeArrayBuffer {
				return args // a view: nothing allocated
			}
			if n, ok := typedLength(src); ok {
				v.allocate(what, float64(n)*ta.size)
				return args
			}
			return replaceArg(args, 0, v.stableSource(what, src, ta.size))
		})
	}

	array := global.Get("Array").ToObject(rt)
	v.guard(array, "from", func(call *goja.FunctionCall) {
		if src, ok := call.Argument(0).(*goja.Object); ok {
			call.Arguments = replaceArg(call.Arguments, 0, v.stableSource("Array.from", src, valueBytes))
		}
	})
	arrayProto := array.Get("prototype").ToObject(rt)
	v.guard(arrayProto, "map", func(call *goja.FunctionCall) {
		if obj, ok := call.This.(*goja.Object); ok && isArray(obj) { // made dense at once
			v.allocate("Array.prototype.map", toLength(obj.Get("length"))*valueBytes)
		}
	})
	for _, name := range []string{"sort", "toSorted"} {
		what := "Array.prototype." + name
		v.guard(arrayProto, name, func(call *goja.FunctionCall) {
			if obj, ok := call.This.(*goja.Object); ok {
				v.allocate(what, v.mustDataLength(what, obj)*valueBytes)
			}
		})
	}
	v.guard(arrayProto, "fill", func(call *goja.FunctionCall) {
		obj, ok := call.This.(*goja.Object)
		if !ok {
			return
		}
		n := v.mustDataLength("Array.prototype.fill", obj)
		start, end := relIndex(call.Argument(1), n, 0), relIndex(call.Argument(2), n, n)
		v.allocate("Array.prototype.fill", max(end-start, 0)*valueBytes)
		call.Arguments = []goja.Value{call.Argument(0), rt.ToValue(start), rt.ToValue(end)}
	})
	// Spreading, Array.from and new Set() copy what an iterator yields in
	// a native loop: an array's iterator is charged for one value per
	// element when it is made.
	for _, name := range []string{"values", "keys", "entries"} {
		v.guard(arrayProto, name, v.iteratorCheck("Array.prototype."+name))
	}
	arrayProto.DefineDataPropertySymbol(goja.SymIterator, arrayProto.Get("values"), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	typedProto := global.Get("Uint8Array").ToObject(rt).Prototype().Get("prototype").ToObject(rt)
	for _, name := range []string{"values", "keys", "entries"} {
		v.guard(typedProto, name, v.iteratorCheck("TypedArray.prototype."+name))
	}
	typedProto.DefineDataPropertySymbol(goja.SymIterator, typedProto.Get("values"), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)

	// apply and Reflect copy an array-like into an argument list.
	argList := func(what string, val goja.Value) goja.Value {
		obj, ok := val.(*goja.Object)
		if !ok {
			return val
		}
		if isArray(obj) {
			v.allocate(what, toLength(obj.Get("length"))*valueBytes)
			return obj
		}
		n := toLength(obj.Get("length"))
		v.allocate(what, n*valueBytes)
		return v.snapshot(obj, n)
	}
	fnProto := global.Get("Function").ToObject(rt).Get("prototype").ToObject(rt)
	v.guard(fnProto, "apply", func(call *goja.FunctionCall) {
		if len(call.Arguments) > 1 {
			call.Arguments = replaceArg(call.Arguments, 1, argList("Function.prototype.apply", call.Arguments[1]))
		}
	})
	v.guard(reflectObj, "apply", func(call *goja.FunctionCall) {
		call.Arguments = replaceArg(call.Arguments, 2, argList("Reflect.apply", call.Argument(2)))
	})
	v.guard(reflectObj, "construct", func(call *goja.FunctionCall) {
		call.Arguments = replaceArg(call.Arguments, 1, argList("Reflect.construct", call.Argument(1)))
	})

	v.guardStrings()
	v.guardJSON(global.Get("JSON").ToObject(rt))
}

// iteratorCheck charges the copy a native loop may make of what an
// array's (or typed array's) iterator yields. The iterator of an
// array-like reads its length at every step, so it must be a data
// property.
func (v *vm) iteratorCheck(what string) func(*goja.FunctionCall) {
	return func(call *goja.FunctionCall) {
		obj, ok := call.This.(*goja.Object)
		if !ok {
			return
		}
		var n float64
		if l, ok := typedLength(obj); ok {
			n = float64(l)
		} else {
			n = v.mustDataLength(what, obj)
		}
		v.allocate(what, n*valueBytes)
	}
}

// relIndex converts a relative index argument of fill once (def when
// undefined).
func relIndex(arg goja.Value, length, def float64) float64 {
	if goja.IsUndefined(arg) {
		return def
	}
	i := toIndex(arg)
	if i < 0 {
		return max(length+i, 0)
	}
	return min(i, length)
}

// replaceArg returns args with args[i] = val (extending args with
// undefined as needed), leaving the caller's slice alone.
func replaceArg(args []goja.Value, i int, val goja.Value) []goja.Value {
	out := make([]goja.Value, max(len(args), i+1))
	copy(out, args)
	for j := len(args); j < i; j++ {
		out[j] = goja.Undefined()
	}
	out[i] = val
	return out
}

// guardConstructor replaces the global constructor name with a proxy of
// it whose construct trap lets check see (and convert) the arguments
// first. Through the proxy the constructor keeps its name, length,
// prototype, statics and instanceof; its prototype's constructor points
// at the proxy, so that species lookups (slice, subclasses) come back
// through it.
func (v *vm) guardConstructor(name string, check func(args []goja.Value) []goja.Value) {
	rt := v.rt
	global := rt.GlobalObject()
	target, ok := global.Get(name).(*goja.Object)
	if !ok {
		return
	}
	construct, _ := goja.AssertConstructor(target)
	call, _ := goja.AssertFunction(target)
	proxy := rt.ToValue(rt.NewProxy(target, &goja.ProxyTrapConfig{
		Construct: func(_ *goja.Object, args []goja.Value, newTarget *goja.Object) *goja.Object {
			obj, err := construct(newTarget, check(args)...)
			if err != nil {
				panic(err)
			}
			return obj
		},
		Apply: func(_ *goja.Object, this goja.Value, args []goja.Value) goja.Value {
			res, err := call(this, args...) // throws: a constructor needs new
			if err != nil {
				panic(err)
			}
			return res
		},
	})).(*goja.Object)
	// goja's proxies of functions lack instanceof: the constructor gets
	// OrdinaryHasInstance as its own Symbol.hasInstance (this is the
	// constructor, or a subclass of it).
	target.DefineDataPropertySymbol(goja.SymHasInstance, v.hasInstance, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE)
	target.Get("prototype").ToObject(rt).DefineDataProperty("constructor", proxy, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	global.DefineDataProperty(name, proxy, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// ordinaryHasInstance is ECMAScript's OrdinaryHasInstance(this, arg).
func (v *vm) ordinaryHasInstance(call goja.FunctionCall) goja.Value {
	c, ok := call.This.(*goja.Object)
	if !ok {
		return v.rt.ToValue(false)
	}
	if _, ok := goja.AssertFunction(c); !ok {
		return v.rt.ToValue(false)
	}
	obj, ok := call.Argument(0).(*goja.Object)
	if !ok {
		return v.rt.ToValue(false)
	}
	proto, ok := c.Get("prototype").(*goja.Object)
	if !ok {
		v.throw(v.typeErrorCtor, "Function has non-object prototype in instanceof check", nil)
	}
	for p := obj.Prototype(); p != nil; p = p.Prototype() {
		if p.SameAs(proto) {
			return v.rt.ToValue(true)
		}
	}
	return v.rt.ToValue(false)
}
