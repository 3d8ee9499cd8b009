package gointerp

import (
	"reflect"

	"github.com/traefik/yaegi/interp"
)

// globals are an interpreter's package-level variables with the values
// the file's load gave them. Restoring them after every call keeps calls
// from seeing each other's writes (whichever interpreter of the pool
// serves them) and every interpreter of a file alike. The copy is
// shallow: the contents of a map, a slice's elements or what a pointer
// points to, changed by a call, stay changed in that interpreter.
type globals struct {
	in     *interp.Interpreter
	values map[string]reflect.Value // by name, as the load left them
}

// snapshotGlobals records the file's variables as they are now.
func snapshotGlobals(in *interp.Interpreter) globals {
	gs := globals{in: in, values: map[string]reflect.Value{}}
	for name, v := range in.Globals() {
		if !v.IsValid() || !v.CanSet() {
			continue // a constant
		}
		value := reflect.New(v.Type()).Elem()
		value.Set(v)
		gs.values[name] = value
	}
	return gs
}

// restore gives the variables back their recorded values. The variables
// are looked up again: yaegi may give a variable new storage when it is
// assigned.
func (gs globals) restore() {
	if len(gs.values) == 0 {
		return
	}
	for name, v := range gs.in.Globals() {
		if value, ok := gs.values[name]; ok && v.CanSet() {
			v.Set(value)
		}
	}
}
