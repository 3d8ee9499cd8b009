package gointerp

import (
	"errors"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line, col int    // want position (col 0: not checked)
		msg       string // want in the message
		err       error  // want errors.Is, if set
	}{
		{name: "syntax", src: "package main\n\nfunc init() {\n\tx := \n}\n", line: 5, col: 1, msg: "expected operand"},
		{name: "type", src: "package main\n\nfunc init() {\n\tvar x int = \"s\"\n\t_ = x\n}\n", line: 4, msg: "cannot"},
		{name: "undefined", src: "package main\n\nfunc init() {\n\tfoo()\n}\n", line: 4, col: 2, msg: "undefined: foo"},
		{name: "return type", src: "package main\n\nfunc f() int { return \"x\" }\n", line: 3, msg: "cannot use"},
		{name: "not main", src: "package lib\n\nfunc F() {}\n", line: 1, col: 9, msg: "scripts are package main"},
		{name: "forbidden import", src: "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nvar _ = fmt.Sprint\nvar _ = os.Exit\n",
			line: 5, col: 2, msg: `import "os"`, err: ErrForbiddenImport},
		{name: "go statement", src: "package main\n\nfunc init() {\n\tgo func() {}()\n}\n", line: 4, col: 2, msg: "go statement", err: ErrForbidden},
		{name: "reserved name", src: "package main\n\nfunc init() {\n\t__scripthost.Serve(nil)\n}\n", line: 4, col: 2, msg: "the engine's", err: ErrForbidden},
		{name: "panic in init", src: "package main\n\nfunc init() {\n\tpanic(\"boom\")\n}\n", line: 4, msg: "panic: boom", err: ErrPanic},
		// yaegi places some runtime errors at the function's first
		// statement (in a variable's initialization, at the variable).
		{name: "panic in main", src: "package main\n\nfunc main() {\n\tvar m map[string]int\n\tm[\"x\"] = 1\n}\n", line: 4, msg: "panic: assignment to entry in nil map", err: ErrPanic},
		{name: "panic in var", src: "package main\n\nvar a []int\nvar x = a[3]\n", line: 3, msg: "out of range", err: ErrPanic},
		{name: "bad main", src: "package main\n\nfunc main() int { return 1 }\n", line: 3, msg: "func main must have no arguments"},
		{name: "handler type", src: "package main\n\nvar Handler = 42\n", line: 3, msg: "Handler is int", err: ErrHandler},
		{name: "handler nil", src: "package main\n\nimport \"net/http\"\n\nvar Handler http.Handler\n", line: 5, msg: "Handler is nil", err: ErrHandler},
		{name: "handler signature", src: "package main\n\nfunc Handler(s string) {}\n", line: 3, err: ErrHandler},
		{name: "trimmed symbol", src: "package main\n\nimport \"net/http\"\n\nfunc init() {\n\thttp.Get(\"http://example.com\")\n}\n", line: 6, msg: "has no symbol Get"},
		{name: "error on main line", src: "package main\n\nfunc main() { foo() }\n", line: 3, col: 15, msg: "undefined: foo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.load(Options{}, files("bad.go", tt.src)...)
			var se *api.ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("Load = %v (%T), want a *api.ScriptError", err, err)
			}
			if se.File != "bad.go" || se.Line != tt.line || (tt.col != 0 && se.Column != tt.col) {
				t.Errorf("error at %s:%d:%d, want bad.go:%d:%d (%v)", se.File, se.Line, se.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("message %q, want it to contain %q", se.Msg, tt.msg)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("error %v does not match %v", err, tt.err)
			}
			if !strings.HasPrefix(err.Error(), "gointerp: bad.go:") {
				t.Errorf("Error() = %q, want it to start with the file's position", err)
			}
		})
	}
}

func TestLoadErrorFailsWholeLoad(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.load(Options{}, files("a.go", readTestdata(t, "rpc.go"), "b.go", "package main\nfunc init() { nope() }\n")...)
	if err == nil {
		t.Fatal("Load succeeded with a broken file")
	}
	if names := f.env.RPCNames(); len(names) != 4 {
		t.Logf("staged RPCs of the failed generation: %v (the host discards the Registrations)", names)
	}
}

func TestForbiddenImports(t *testing.T) {
	for _, pkg := range []string{"os", "os/exec", "unsafe", "syscall", "net", "reflect", "runtime", "runtime/debug",
		"plugin", "io/ioutil", "path/filepath", "net/http/httputil", "C", "github.com/x/y", "./local", "scripthost.internal/runtime"} {
		t.Run(pkg, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.load(Options{}, files("imp.go", "package main\n\nimport _ \""+pkg+"\"\n")...)
			var se *api.ScriptError
			if !errors.Is(err, ErrForbiddenImport) || !errors.As(err, &se) || se.Line != 3 || !strings.Contains(se.Msg, `"`+pkg+`"`) {
				t.Errorf("Load = %v, want a ScriptError at imp.go:3 naming %q and matching ErrForbiddenImport", err, pkg)
			}
		})
	}
}

func TestAllowedPackages(t *testing.T) {
	src := "package main\n\nimport (\n\t\"os\"\n\t\"scripthost/uwsgi\"\n)\n\nfunc init() {\n\tuwsgi.RegisterRpc(\"pid\", func() bool { return os.Getpid() > 0 })\n}\n"
	f := newFixture(t)
	if _, _, err := f.load(Options{}, files("os.go", src)...); !errors.Is(err, ErrForbiddenImport) {
		t.Fatalf("default sandbox: Load = %v, want ErrForbiddenImport", err)
	}
	f = newFixture(t)
	f.mustLoad(Options{AllowedPackages: []string{"os"}}, files("os.go", src)...)
	if got, err := f.rpc(t.Context(), "pid"); got != "true" || err != nil {
		t.Errorf("pid() = %q, %v", got, err)
	}
	// fmt is not allowed in that sandbox.
	f = newFixture(t)
	if _, _, err := f.load(Options{AllowedPackages: []string{"os"}}, files("f.go", "package main\nimport \"fmt\"\nvar _ = fmt.Sprint\n")...); !errors.Is(err, ErrForbiddenImport) {
		t.Errorf("Load importing fmt = %v, want ErrForbiddenImport", err)
	}
	f = newFixture(t)
	if _, _, err := f.load(Options{AllowedPackages: []string{"nosuch/pkg"}}, files("f.go", "package main\n")...); err == nil || !strings.Contains(err.Error(), "nosuch/pkg") {
		t.Errorf("Load with an unknown allowed package = %v", err)
	}
}

func TestApps(t *testing.T) {
	f := newFixture(t)
	_, p := f.mustLoad(Options{},
		files("app.go", readTestdata(t, "app.go"),
			"rpc.go", readTestdata(t, "rpc.go"),
			"sub/fn.go", "package main\nimport \"net/http\"\nvar Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})\n",
			"mux.go", "package main\nimport \"net/http\"\nvar Handler = http.NewServeMux()\n",
			"typ.go", "package main\nimport \"net/http\"\ntype h struct{}\nfunc (h) ServeHTTP(w http.ResponseWriter, r *http.Request) {}\nvar Handler http.Handler = h{}\n",
			"typename.go", "package main\ntype Handler struct{}\n")...)
	var names []string
	for name := range p.Apps() {
		names = append(names, name)
	}
	want := "app mux sub/fn typ"
	if got := strings.Join(sortedStrings(names), " "); got != want {
		t.Errorf("apps %q, want %q", got, want)
	}
}

func TestMainAndInitOrder(t *testing.T) {
	f := newFixture(t)
	f.mustLoad(Options{}, files("order.go", `package main

import "scripthost/uwsgi"

var steps = record("var")

func record(s string) string {
	uwsgi.CacheUpdate("steps", val(uwsgi.CacheGet("steps"))+s+";")
	return s
}

func val(v any, _ error) string { s, _ := v.(string); return s }

func init() { record("init1") }

func main() { record("main") }

func init() { record("init2") }
`)...)
	if got, _ := f.state.Caches.Default().Get(t.Context(), []byte("steps")); string(got.Value) != "var;init1;init2;main;" {
		t.Errorf("load ran %q, want var;init1;init2;main;", got.Value)
	}
}

func TestNondeterministicLoad(t *testing.T) {
	f := newFixture(t)
	// The second interpreter registers one more callback than the first.
	src := `package main

import "scripthost/uwsgi"

func init() {
	n, _ := uwsgi.CacheInc("loads")
	uwsgi.RegisterRpc("slow", func() string { uwsgi.AsyncSleep(0.2); return "ok" })
	if n.(int64) > 1 {
		uwsgi.RegisterRpc("extra", func() {})
	}
}
`
	f.mustLoad(Options{PoolSize: 2}, files("nd.go", src)...)
	ctx := t.Context()
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := f.rpc(ctx, "slow"); errs <- err }()
	}
	var failed error
	for range 2 {
		if err := <-errs; err != nil {
			failed = err
		}
	}
	if !errors.Is(failed, ErrNondeterministicLoad) {
		t.Errorf("concurrent calls: %v, want one to fail with ErrNondeterministicLoad", failed)
	}
}
