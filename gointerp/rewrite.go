package gointerp

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
	"strconv"
	"strings"
)

// The engine adds a few things to a script's text before yaegi compiles
// it (the hidden import, the renamed main, a stack check at the start of
// every function body). Insertions stay on their line, so lines are
// unchanged and columns are mapped back by fixPos.

// edit replaces del bytes at offset at of the original text with text.
type edit struct {
	at, del   int
	text      string
	line, col int // the position of at in the original
	// inside is where positions inside the inserted text map to (line 0:
	// line, col).
	inside struct{ line, col int }
}

type edits []edit

// apply returns src with the edits made.
func (es edits) apply(src string) string {
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b edit) int { return a.at - b.at })
	var b strings.Builder
	last := 0
	for _, e := range es {
		b.WriteString(src[last:e.at])
		b.WriteString(e.text)
		last = e.at + e.del
	}
	b.WriteString(src[last:])
	return b.String()
}

// fixPos maps a position of the edited text to the original.
func (es edits) fixPos(line, col int) (int, int) {
	var on []edit
	for _, e := range es {
		if e.line == line {
			on = append(on, e)
		}
	}
	slices.SortStableFunc(on, func(a, b edit) int { return a.col - b.col })
	shift := 0
	for _, e := range on {
		start := e.col + shift
		if col < start || (col == start && e.text == "") {
			break
		}
		end := start + len(e.text)
		// Inside what was inserted, or just after it at the end of the
		// line (yaegi's position of the statement's end).
		if col < end || (col == end && e.inside.line > e.line) {
			if e.inside.line > 0 {
				return e.inside.line, e.inside.col
			}
			return line, e.col
		}
		shift += len(e.text) - e.del
	}
	return line, col - shift
}

// checkCall is the stack depth check the engine puts at the start of
// every function body: yaegi runs an interpreted call on the Go stack,
// and a Go stack overflow ends the process.
var checkCall = hiddenAlias + ".Check(); "

// bodyEdits returns the insertion of checkCall at the start of every
// function body in n; offsets are the file's, minus base.
func bodyEdits(fset *token.FileSet, n ast.Node, base int) edits {
	var es edits
	ast.Inspect(n, func(n ast.Node) bool {
		var body *ast.BlockStmt
		switch n := n.(type) {
		case *ast.FuncDecl:
			body = n.Body
		case *ast.FuncLit:
			body = n.Body
		}
		if body != nil {
			p := fset.Position(body.Lbrace)
			e := edit{at: p.Offset + 1 - base, text: checkCall, line: p.Line, col: p.Column + 1}
			if len(body.List) > 0 {
				// yaegi reports some runtime errors at a function's
				// first statement: keep that the user's.
				first := fset.Position(body.List[0].Pos())
				e.inside.line, e.inside.col = first.Line, first.Column
			}
			es = append(es, e)
		}
		return true
	})
	return es
}

// allocEdits returns the guards of the allocations whose size the script
// gives (see alloc.go), in n parsed from text with object resolution, so
// that a script's own make or append is left alone; offsets are text's,
// minus base:
//
//	make(T, n)           make(T, __scripthost.Make((T)(nil), n))
//	make(T, n, c)        make(T, n, __scripthost.Make((T)(nil), c))
//	append(s, x, y)      append(s[:__scripthost.Append(s, 2)], x, y)
//	append(s, t...)      append(s[:__scripthost.Append(s, len(t))], t...)
//
// append is guarded when s can be evaluated twice
// without effects (a variable, a field, an element); other appends grow
// from memory the call already has, where the memory watchdog is the
// bound.
func allocEdits(fset *token.FileSet, n ast.Node, text string, base int) edits {
	var es edits
	src := func(n ast.Node) string {
		return text[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset]
	}
	insert := func(at token.Pos, s string) {
		p := fset.Position(at)
		es = append(es, edit{at: p.Offset - base, text: s, line: p.Line, col: p.Column})
	}
	wrap := func(arg ast.Expr, fn, first string) {
		insert(arg.Pos(), hiddenAlias+"."+fn+"("+first+", ")
		insert(arg.End(), ")")
	}
	ast.Inspect(n, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fun, ok := call.Fun.(*ast.Ident)
		if ok && fun.Obj == nil { // not the script's own
			switch {
			case fun.Name == "make" && len(call.Args) >= 2:
				zero := "nil" // element size unknown: the guard assumes a word
				if t := src(call.Args[0]); !strings.Contains(t, "\n") {
					zero = "(" + t + ")(nil)"
				}
				wrap(call.Args[len(call.Args)-1], "Make", zero)
			case fun.Name == "append" && len(call.Args) >= 2 && reevaluable(call.Args[0]):
				added := strconv.Itoa(len(call.Args) - 1)
				if call.Ellipsis.IsValid() {
					added = "1"
					if last := call.Args[len(call.Args)-1]; reevaluable(last) {
						added = "len(" + src(last) + ")"
					}
				}
				insert(call.Args[0].End(), "[:"+hiddenAlias+".Append("+src(call.Args[0])+", "+added+")]")
			}
		}
		return true
	})
	return es
}

// reevaluable reports whether evaluating e twice is harmless: names,
// fields, elements and dereferences of those, constants.
func reevaluable(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name != "_"
	case *ast.BasicLit:
		return true
	case *ast.ParenExpr:
		return reevaluable(e.X)
	case *ast.SelectorExpr:
		return reevaluable(e.X)
	case *ast.StarExpr:
		return reevaluable(e.X)
	case *ast.IndexExpr:
		return reevaluable(e.X) && reevaluable(e.Index)
	}
	return false
}

// importEdit adds the hidden package's import after the package clause.
func importEdit(fset *token.FileSet, f *ast.File) edit {
	p := fset.Position(f.Name.End())
	return edit{at: p.Offset, text: fmt.Sprintf("; import %s %q", hiddenAlias, hiddenPath), line: p.Line, col: p.Column}
}
