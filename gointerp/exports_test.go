package gointerp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

func TestGoName(t *testing.T) {
	for name, want := range map[string]string{
		"cache_get":         "CacheGet",
		"register_rpc":      "RegisterRpc",
		"add_rb_timer":      "AddRbTimer",
		"set_user_harakiri": "SetUserHarakiri",
		"masterpid":         "Masterpid",
		"connection_fd":     "ConnectionFd",
		"wait_fd_read":      "WaitFdRead",
		"version":           "Version",
		"a__b_":             "AB",
	} {
		if got := GoName(name); got != want {
			t.Errorf("GoName(%q) = %q, want %q", name, got, want)
		}
	}
}

// Every function of api's table is in the scripts' uwsgi package under
// its mechanical name, with the type the package comment gives.
func TestEveryFuncExported(t *testing.T) {
	f := newFixture(t)
	e := New(Options{})
	v := newVMBase(e, f.env, f.state.Logger, "test")
	syms := v.uwsgiSymbols()
	funcs := api.Funcs()
	if len(syms) != len(funcs) {
		t.Errorf("the package has %d symbols, the API %d functions", len(syms), len(funcs))
	}
	var refs []string
	for _, fn := range funcs {
		name := GoName(fn.Name)
		sym, ok := syms[name]
		if !ok {
			t.Errorf("uwsgi.%s (%s) is missing", name, fn.Name)
			continue
		}
		if fn.Call != nil && sym.Type() != apiFuncType {
			t.Errorf("uwsgi.%s has type %s, want %s", name, sym.Type(), apiFuncType)
		}
		if fn.Value != nil && (sym.Kind() != reflect.Func || sym.Type().NumIn() != 0 || sym.Type().NumOut() != 1) {
			t.Errorf("uwsgi.%s has type %s, want a function returning its value", name, sym.Type())
		}
		refs = append(refs, "_ = uwsgi."+name)
	}
	// And scripts can refer to them all.
	if _, _, _, err := e.Eval(t.Context(), f.env, strings.Join(refs, "\n"), 0); err != nil {
		t.Errorf("a script referring to every function: %v", err)
	}
	for name, typ := range map[string]reflect.Type{"Version": reflect.TypeFor[func() string](),
		"Hostname": reflect.TypeFor[func() string](), "Opt": reflect.TypeFor[func() map[string]any]()} {
		if got := syms[name].Type(); got != typ {
			t.Errorf("uwsgi.%s has type %s, want %s", name, got, typ)
		}
	}
}

func TestExportCollision(t *testing.T) {
	_, err := newExports([]api.Func{{Name: "cache_get", Value: func(*api.Registrations) api.Value { return nil }},
		{Name: "cache__get", Value: func(*api.Registrations) api.Value { return nil }}})
	if err == nil {
		t.Error("two API names mapping to one Go name were accepted")
	}
}
