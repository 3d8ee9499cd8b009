package gointerp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

// testBudget is the memory budget of the allocation tests: its largest
// single allocation is 16 MiB, so the guards refuse before the tests
// allocate much.
const testBudget = 64 << 20

// budgetContext is a call's context under a budget of testBudget bytes,
// as the host makes it.
func budgetContext(t *testing.T) (context.Context, *api.Scope) {
	ctx, scope, done := api.NewScope(api.WithMemory(t.Context(), api.NewMemory(testBudget)), nil, 0)
	t.Cleanup(done)
	return ctx, scope
}

// allocCases allocate past the budget's cap, each in its own way; the
// code may use buf, a bytes.Buffer variable, and s, a []byte.
var allocCases = []struct{ name, code string }{
	{"make slice", `_ = make([]byte, 1<<40)`},
	{"make slice of a typed size", `var n uint64 = 1 << 40; _ = make([]byte, n)`},
	{"make slice by element size", `_ = make([][1 << 10]byte, 1<<20)`},
	{"make capacity", `_ = make([]int64, 0, 1<<38)`},
	{"make struct slice", `type big struct{ a, b, c, d [64]int64 }; _ = make([]big, 1<<20)`},
	{"make map", `_ = make(map[int]string, 1<<40)`},
	{"make chan", `_ = make(chan int, 1<<40)`},
	{"append growth", `s = make([]byte, 1<<20); for { s = append(s, s...) }`},
	{"append one by one", `l := make([]int64, 1<<20); for { l = append(l, 1) }`},
	{"strings.Repeat", `_ = strings.Repeat("x", 1<<40)`},
	{"bytes.Repeat", `_ = bytes.Repeat([]byte("xy"), 1<<40)`},
	{"strings.ReplaceAll", `x := strings.Repeat("a", 1<<20); _ = strings.ReplaceAll(x, "a", x)`},
	{"strings.Replace", `x := strings.Repeat("a", 1<<20); _ = strings.Replace(x, "", x, -1)`},
	{"bytes.ReplaceAll", `x := bytes.Repeat([]byte("a"), 1<<20); _ = bytes.ReplaceAll(x, []byte("a"), x)`},
	{"strings.Join", `_ = strings.Join(make([]string, 1<<16), strings.Repeat("x", 1<<20))`},
	{"strings.NewReplacer", `x := strings.Repeat("a", 1<<20); _ = strings.NewReplacer("a", x).Replace(x)`},
	{"strings.Builder.Grow", `var b strings.Builder; b.Grow(1 << 40)`},
	{"strings.Builder writes", `var b strings.Builder; b.WriteString(strings.Repeat("x", 1<<20)); for { b.WriteString(b.String()) }`},
	{"bytes.Buffer.Grow", `buf.Grow(1 << 40)`},
	{"bytes.NewBuffer", `bytes.NewBuffer(nil).Grow(1 << 40)`},
	{"bytes.Buffer writes", `buf.Write(make([]byte, 1<<20)); for { buf.Write(buf.Bytes()) }`},
	{"bytes.Buffer via fmt", `fmt.Fprint(&buf, strings.Repeat("x", 1<<20)); for { fmt.Fprint(&buf, buf.String()) }`},
	{"bufio.NewWriterSize", `_ = bufio.NewWriterSize(&buf, 1<<40)`},
	{"recovered", `defer func() { recover() }(); _ = make([]byte, 1<<40)`},
}

const allocImports = `import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"scripthost/uwsgi"
)

var _ = fmt.Sprint
var _ = bufio.NewWriter
var _ = slices.Contains([]int{1}, 1)
var _ = bytes.NewBuffer
var _ = strings.Repeat
`

func TestAllocGuardsRPC(t *testing.T) {
	for _, tt := range allocCases {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, p := f.mustLoad(Options{PoolSize: 1}, files("alloc.go", "package main\n\n"+allocImports+`
var calls int

func init() {
	uwsgi.RegisterRpc("alloc", func() string {
		var buf bytes.Buffer
		var s []byte
		_, _ = buf, s
		`+tt.code+`
		return "allocated"
	})
	uwsgi.RegisterRpc("calls", func() int { calls++; return calls })
}
`)...)
			if _, err := f.rpc(t.Context(), "calls"); err != nil {
				t.Fatal(err)
			}
			first := p.(*program).scripts[0].pool.Idle()[0]
			ctx, scope := budgetContext(t)
			got, err := f.rpc(ctx, "alloc")
			var se *api.ScriptError
			if !errors.Is(err, api.ErrAllocTooLarge) || !errors.As(err, &se) || se.File != "alloc.go" {
				t.Fatalf("alloc() = %q, %v; want a ScriptError of alloc.go wrapping api.ErrAllocTooLarge", got, err)
			}
			if scope.Charged() > testBudget {
				t.Errorf("%d bytes charged, over the budget", scope.Charged())
			}
			if !first.gone.Load() {
				t.Error("the interpreter was not discarded")
			}
			if got, err := f.rpc(t.Context(), "calls"); got != "1" || err != nil {
				t.Errorf("calls() after = %q, %v; want 1 from a fresh interpreter", got, err)
			}
		})
	}
}

func TestAllocGuardsEval(t *testing.T) {
	f := newFixture(t)
	e := New(Options{Logger: f.state.Logger})
	for _, tt := range allocCases {
		t.Run(tt.name, func(t *testing.T) {
			ctx, _ := budgetContext(t)
			code := "var buf bytes.Buffer\nvar s []byte\n" + strings.ReplaceAll(tt.code, "; ", "\n") + "\n\"allocated\""
			switch tt.name {
			case "recovered": // a deferred call needs a function
				code = "func() {\n" + tt.code + "\n}()"
			}
			got, _, _, err := e.Eval(ctx, f.env, code, 0)
			if !errors.Is(err, api.ErrAllocTooLarge) {
				t.Errorf("Eval = %v, %v; want api.ErrAllocTooLarge", got, err)
			}
		})
	}
	if got, _, _, err := e.Eval(t.Context(), f.env, `strings.Repeat("ab", 3)`, 0); got != "ababab" || err != nil {
		t.Errorf("Eval after = %v, %v", got, err)
	}
}

func TestAllocGuardsLeaveScriptsAlone(t *testing.T) {
	// The guards keep what make, append and the guarded types do, and a
	// script's own make or append is its own.
	f := newFixture(t)
	f.mustLoad(Options{}, files("ok.go", "package main\n\n"+allocImports+`
type ints []int

func (l ints) sum() (n int) {
	for _, x := range l {
		n += x
	}
	return n
}

type box struct{ items []string }

func init() {
	uwsgi.RegisterRpc("ok", func() string {
		m := make(map[string]int, 4)
		m["a"] = 1
		var n8 int8 = 3
		l := make(ints, n8, 10)
		l = append(l, 1, 2)
		l = append(l, l...)
		b := box{}
		b.items = append(b.items, "x", "y")
		bs := []byte("he")
		bs = append(bs, "llo"...)
		c := make(chan struct{}, 1e3)
		var sb strings.Builder
		sb.Grow(10)
		sb.WriteString("sb")
		sb.WriteByte('!')
		fmt.Fprint(&sb, 42)
		buf := bytes.NewBufferString("buf")
		buf.WriteRune('é')
		out := bufio.NewWriterSize(buf, 16)
		out.WriteString("+")
		out.Flush()
		r := strings.NewReplacer("a", "A", "", "-")
		return fmt.Sprintln(len(m), l.sum(), len(l), cap(l) >= 10, b.items, string(bs), cap(c), sb.String(),
			buf.String(), r.Replace("ab"), strings.Join([]string{"x", "y"}, ","), strings.ReplaceAll("aa", "a", "bb"),
			string(bytes.Repeat([]byte("z"), 2)), strings.Title("x"))
	})
	uwsgi.RegisterRpc("own", func() string {
		make := func(s string, n int) string { return strings.Repeat(s, n) }
		append := func(a, b string) string { return a + b }
		return append(make("a", 2), "b")
	})
}
`)...)
	want := "1 6 10 true [x y] hello 1000 sb!42 bufé+ A-b- x,y bbbb zz X\n"
	if got, err := f.rpc(t.Context(), "ok"); got != want || err != nil {
		t.Errorf("ok() = %q, %v; want %q", got, err, want)
	}
	if got, err := f.rpc(t.Context(), "own"); got != "aab" || err != nil {
		t.Errorf("own() = %q, %v", got, err)
	}
}

func TestAllocGuardsJSON(t *testing.T) {
	f := newFixture(t)
	f.mustLoad(Options{}, files("j.go", `package main

import (
	"bytes"
	"encoding/json"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterRpc("j", func() string {
		var buf bytes.Buffer
		json.Indent(&buf, []byte(`+"`"+`{"a":[1,2]}`+"`"+`), "", " ")
		json.Compact(&buf, []byte(`+"`"+` [ 3 ] `+"`"+`))
		json.HTMLEscape(&buf, []byte("<"))
		return buf.String()
	})
}
`)...)
	want := "{\n \"a\": [\n  1,\n  2\n ]\n}[3]\\u003c"
	if got, err := f.rpc(t.Context(), "j"); got != want || err != nil {
		t.Errorf("j() = %q, %v; want %q", got, err, want)
	}
}

func TestAllocRunawayInterrupted(t *testing.T) {
	// Small allocations stay under the cap: the memory watchdog stops
	// the loop by cancelling the call that was charged most with a cause
	// wrapping api.ErrMemoryLimit, as the test does here.
	f := newFixture(t)
	f.mustLoad(Options{PoolSize: 1}, files("grow.go", `package main

import (
	"strings"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterRpc("grow", func() int {
		var s []string
		for {
			s = append(s, strings.Repeat("x", 1<<20))
		}
		return len(s)
	})
	uwsgi.RegisterRpc("ok", func() string { return "ok" })
}
`)...)
	parent, kill := context.WithCancelCause(api.WithMemory(t.Context(), api.NewMemory(1<<30)))
	defer kill(nil)
	ctx, scope, done := api.NewScope(parent, nil, 0)
	defer done()
	go func() { // the watchdog
		for scope.Charged() < 32<<20 {
			time.Sleep(time.Millisecond)
		}
		kill(fmt.Errorf("%w: this call allocated %d", api.ErrMemoryLimit, scope.Charged()))
	}()
	_, err := f.rpc(ctx, "grow")
	if !errors.Is(err, api.ErrMemoryLimit) || !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("grow() = %v, want an error wrapping api.ErrMemoryLimit that says so", err)
	}
	if got, err := f.rpc(t.Context(), "ok"); got != "ok" || err != nil {
		t.Errorf("ok() after = %q, %v", got, err)
	}
}

func TestArraySizeLimit(t *testing.T) {
	tests := []struct{ name, decl string }{
		{"var", "var big [1 << 40]byte"},
		{"new", "var p = new([1 << 31]int64)"},
		{"constant", "const n = 1 << 20\n\nvar grid [n][n]int"},
		{"composite", "func f() int { return len([1 << 40]byte{}) }"},
		{"type", "type page [1 << 40]byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, _, err := f.load(Options{}, files("arr.go", "package main\n\n"+tt.decl+"\n")...)
			var se *api.ScriptError
			if !errors.As(err, &se) || !errors.Is(err, api.ErrAllocTooLarge) || se.File != "arr.go" || se.Line < 3 {
				t.Errorf("Load = %v, want a ScriptError at a line of arr.go wrapping api.ErrAllocTooLarge", err)
			}
			e := New(Options{Logger: f.state.Logger})
			if _, _, _, err := e.Eval(t.Context(), f.env, "x := 1\n"+tt.decl, 0); !errors.Is(err, api.ErrAllocTooLarge) {
				t.Errorf("Eval = %v, want api.ErrAllocTooLarge", err)
			}
		})
	}
	f := newFixture(t)
	f.mustLoad(Options{}, files("small.go", "package main\n\nimport \"time\"\n\nvar a [1 << 10]time.Duration\nvar b = [...]int{1, 2}\n")...)
}
