package gointerp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

func TestEval(t *testing.T) {
	tests := []struct {
		name, code string
		want       api.Value
		out        string
		err        string // in the error, if set
		line       int    // the error's line, if set
		errIs      error
	}{
		{name: "expression", code: "1 + 1", want: int64(2)},
		{name: "string", code: `strings.ToUpper("abc")`, want: "ABC"},
		{name: "statements", code: "x := 20\nfmt.Println(\"x is\", x)\nx * 2 + 2", want: int64(42), out: "x is 20\n"},
		{name: "one line", code: "x := 1; x + 2", want: int64(3)},
		{name: "declaration first", code: "var y = 3; y * 2", want: int64(6)},
		{name: "functions", code: "func sq(n int) int {\n\treturn n * n\n}\nsq(7)", want: int64(49)},
		{name: "multi-line statement", code: "total := 0\nfor i := 0; i < 4; i++ {\n\ttotal += i\n}\ntotal", want: int64(6)},
		{name: "uwsgi", code: "uwsgi.CacheUpdate(\"k\", \"v\")\nuwsgi.CacheGet(\"k\")", want: "v"},
		{name: "uwsgi attributes", code: "uwsgi.Hostname()", want: "testhost"},
		{name: "println", code: "println(\"to stdout\")", out: "to stdout\n"},
		{name: "printf", code: `fmt.Printf("%d-%s", 1, "a")`, want: int64(3), out: "1-a"},
		{name: "log", code: `log.SetFlags(0); log.Print("logged")`, out: "logged\n"},
		{name: "import", code: "import \"math/rand\"\nrand.Intn(1)", want: int64(0)},
		{name: "import again", code: "import \"strings\"\nstrings.Repeat(\"a\", 2)", want: "aa"},
		{name: "list", code: "[]int{1, 2}", want: []api.Value{int64(1), int64(2)}},
		{name: "struct", code: "struct{ A int }{3}", want: "{3}"},
		{name: "no value", code: "x := 1\n_ = x"},
		{name: "assignment", code: "x := 1"},
		{name: "forbidden import", code: "import \"os\"\nos.Getpid()", err: `import "os"`, line: 1, errIs: ErrForbiddenImport},
		{name: "compile error", code: "x := 1\nundefinedFunc(x)\n", err: "undefined: undefinedFunc", line: 2},
		{name: "syntax error", code: "1 + )", err: "expected", line: 1},
		{name: "panic", code: "fmt.Print(\"before \")\npanic(\"eval boom\")", out: "before ", err: "eval boom", errIs: ErrPanic},
		{name: "recursion", code: "func f(i int) int { return f(i+1) + 1 }\nf(0)", err: "stack overflow", errIs: ErrStackOverflow},
		{name: "reserved name", code: "x := 1\n__scripthost.Serve(nil)", err: "the engine's", line: 2, errIs: ErrForbidden},
		{name: "register", code: `uwsgi.RegisterRpc("e", func() {})`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			e := New(Options{})
			got, out, _, err := e.Eval(t.Context(), f.env, tt.code, 0)
			if tt.err != "" {
				var se *api.ScriptError
				if err == nil || !strings.Contains(err.Error(), tt.err) || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
					t.Fatalf("Eval = %v, %q, %v; want an error containing %q", got, out, err, tt.err)
				}
				if errors.As(err, &se) && (se.File != "eval" || (tt.line != 0 && se.Line != tt.line)) {
					t.Errorf("error at %s:%d, want eval:%d", se.File, se.Line, tt.line)
				}
			} else if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if tt.err == "" && !equalValues(got, tt.want) {
				t.Errorf("result %#v, want %#v", got, tt.want)
			}
			if out != tt.out {
				t.Errorf("output %q, want %q", out, tt.out)
			}
		})
	}
}

func equalValues(a, b api.Value) bool {
	la, ok1 := a.([]api.Value)
	lb, ok2 := b.([]api.Value)
	if ok1 && ok2 {
		if len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !equalValues(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestEvalRegisterRefused(t *testing.T) {
	f := newFixture(t)
	got, _, _, err := New(Options{}).Eval(t.Context(), f.env, `_, err := uwsgi.RegisterRpc("e", func() {})
err.Error()`, 0)
	if s, _ := got.(string); err != nil || !strings.Contains(s, "cannot be registered") {
		t.Errorf("registering a function of an eval: %v, %v", got, err)
	}
	if names := f.env.RPCNames(); len(names) != 0 {
		t.Errorf("eval registered %v", names)
	}
}

func TestEvalTimeout(t *testing.T) {
	f := newFixture(t)
	for _, code := range []string{"for {}", "time.Sleep(time.Hour)", "select {}", "<-make(chan int)", "uwsgi.AsyncSleep(3600)\nfor {}"} {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		_, _, _, err := New(Options{}).Eval(ctx, f.env, "fmt.Print(\"started\")\n"+code, 0)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Errorf("%q: Eval = %v after %v, want the deadline", code, err, time.Since(start))
		}
	}
}

func TestEvalOutputLimit(t *testing.T) {
	f := newFixture(t)
	_, out, truncated, err := New(Options{}).Eval(t.Context(), f.env, `for i := 0; i < 300000; i++ { fmt.Print("0123456789") }`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != api.DefaultEvalOutput || !truncated {
		t.Errorf("output of %d bytes, truncated %v; want %d bytes, truncated", len(out), truncated, api.DefaultEvalOutput)
	}
}
