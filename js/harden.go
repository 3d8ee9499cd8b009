package js

import (
	"sync"

	"github.com/dop251/goja"
)

// Hardening: once a program's files have loaded in a runtime, its
// intrinsics (every object reachable from globalThis, with their
// prototypes, accessors and the iterator and generator prototypes that
// have no global name) are frozen, and so is globalThis, so that a call
// cannot leave a changed built-in or a new global to the next call of
// that runtime: in strict mode (modules) such a write throws a TypeError.

// overridable are the properties of frozen built-in prototypes that a
// script may still assign on objects inheriting them: with a plain
// frozen data property, `obj.toString = f` would throw (JavaScript's
// "override mistake"); as an accessor whose setter defines the property
// on the object assigned to, it works as before freezing.
var overridable = []string{"toString", "toLocaleString", "valueOf", "constructor", "name", "message"}

// hiddenIntrinsics makes the intrinsics that no global names: the
// prototypes of generator and async functions and of the built-in
// iterators (from them the walk reaches the rest).
const hiddenIntrinsics = `[
  Object.getPrototypeOf(function* () {}),
  Object.getPrototypeOf(async function () {}),
  Object.getPrototypeOf([][Symbol.iterator]()),
  Object.getPrototypeOf(new Map()[Symbol.iterator]()),
  Object.getPrototypeOf(new Set()[Symbol.iterator]()),
  Object.getPrototypeOf(""[Symbol.iterator]()),
  Object.getPrototypeOf(/a/g[Symbol.matchAll]("a")),
]`

var hiddenProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("<intrinsics>", hiddenIntrinsics, true)
})

// harden freezes the runtime's intrinsics and globalThis (see above).
func (v *vm) harden() error {
	return v.jsDo(func() {
		rt := v.rt
		global := rt.GlobalObject()
		for _, name := range global.GetOwnPropertyNames() {
			ctor, ok := global.Get(name).(*goja.Object)
			if !ok {
				continue
			}
			if _, ok := goja.AssertFunction(ctor); !ok {
				continue
			}
			if proto, ok := ctor.Get("prototype").(*goja.Object); ok {
				for _, key := range overridable {
					v.enableOverride(proto, key)
				}
			}
		}
		hidden, err := rt.RunProgram(hiddenProgram())
		if err != nil {
			panic(err)
		}
		todo := []*goja.Object{global}
		var items []goja.Value
		if err := rt.ExportTo(hidden, &items); err != nil {
			panic(err)
		}
		for _, h := range items {
			if obj, ok := h.(*goja.Object); ok {
				todo = append(todo, obj)
			}
		}
		v.freezeAll(todo)
	})
}

// freezeAll freezes the objects of todo and everything reachable from
// them: prototypes, property values and accessor functions (read from
// descriptors: no getter runs).
func (v *vm) freezeAll(todo []*goja.Object) {
	seen := map[*goja.Object]bool{}
	push := func(val goja.Value) {
		if obj, ok := val.(*goja.Object); ok && !seen[obj] {
			todo = append(todo, obj)
		}
	}
	visit := func(o *goja.Object, key goja.Value) {
		d, err := v.getOwnDesc(goja.Undefined(), o, key)
		if err != nil {
			panic(err)
		}
		if desc, ok := d.(*goja.Object); ok {
			push(desc.Get("value"))
			push(desc.Get("get"))
			push(desc.Get("set"))
		}
	}
	for len(todo) > 0 {
		o := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[o] {
			continue
		}
		seen[o] = true
		if p := o.Prototype(); p != nil {
			push(p)
		}
		_, isFunc := goja.AssertFunction(o)
		for _, name := range o.GetOwnPropertyNames() {
			if isFunc && (name == "length" || name == "name") {
				continue // primitives on every built-in function
			}
			visit(o, v.rt.ToValue(name))
		}
		for _, sym := range o.Symbols() {
			visit(o, sym)
		}
		if _, err := v.freezeFn(goja.Undefined(), o); err != nil {
			panic(err)
		}
	}
}

// enableOverride turns data property key of proto, if it has one, into
// an accessor: reading gives the value; assigning on an object that
// inherits it defines the property there; assigning on proto itself
// throws, as for any frozen property.
func (v *vm) enableOverride(proto *goja.Object, key string) {
	rt := v.rt
	value := proto.Get(key)
	if value == nil || !v.ownDataProperty(proto, key) {
		return
	}
	getter := rt.ToValue(func(goja.FunctionCall) goja.Value { return value }).(*goja.Object)
	setter := rt.ToValue(func(call goja.FunctionCall) goja.Value {
		this, ok := call.This.(*goja.Object)
		if !ok || this.SameAs(proto) {
			v.throw(v.typeErrorCtor, "Cannot assign to read only property '"+key+"' of a frozen built-in", nil)
		}
		if err := this.DefineDataProperty(key, call.Argument(0), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
			panic(err)
		}
		return goja.Undefined()
	}).(*goja.Object)
	v.setName(getter, key)
	v.setName(setter, key)
	if err := proto.DefineAccessorProperty(key, getter, setter, goja.FLAG_FALSE, goja.FLAG_FALSE); err != nil {
		panic(err)
	}
}

// ownDataProperty reports whether obj has an own, configurable data
// property key.
func (v *vm) ownDataProperty(obj *goja.Object, key string) bool {
	d, err := v.getOwnDesc(goja.Undefined(), obj, v.rt.ToValue(key))
	if err != nil {
		panic(err)
	}
	desc, ok := d.(*goja.Object)
	return ok && isSet(desc.Get("value")) && desc.Get("configurable").ToBoolean()
}
