package gointerp

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
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

// importEdit adds the hidden package's import after the package clause.
func importEdit(fset *token.FileSet, f *ast.File) edit {
	p := fset.Position(f.Name.End())
	return edit{at: p.Offset, text: fmt.Sprintf("; import %s %q", hiddenAlias, hiddenPath), line: p.Line, col: p.Column}
}
