package gointerp

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/traefik/yaegi/interp"

	"github.com/scripthost/scripthost/api"
)

// evalName names Eval's code in errors.
const evalName = "eval"

// Eval runs code in a fresh sandboxed interpreter (see the package
// comment) and returns the value of its last expression and what it
// printed, at most maxOutput bytes. Functions it makes cannot be
// registered: the interpreter ends with the Eval.
func (e *Engine) Eval(ctx context.Context, env *api.Registrations, code string, maxOutput int) (api.Value, string, bool, error) {
	if err := e.usable(); err != nil {
		return nil, "", false, err
	}
	out := api.NewEvalOutput(maxOutput)
	v := newVMBase(e, env, e.logger(env), evalName)
	v.eval = true
	v.stdout = out
	v.stderr = &traceWriter{out: out}
	if err := v.newInterp(); err != nil {
		return nil, "", false, fmt.Errorf("gointerp: eval: building the interpreter: %w", err)
	}
	defer v.close()
	preloaded, err := e.preImport(v.in)
	if err != nil {
		return nil, "", false, err
	}
	defer v.leaveEval()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	v.stopExec = stop
	ctx = hold(ctx, v)
	v.ctx = ctx
	res, err := v.evalChunks(ctx, code, preloaded)
	if err == nil {
		err = v.allocFailed()
	}
	var val api.Value
	if err != nil {
		v.abandoned.Store(true)
	} else {
		val, err = evalResult(v, res)
	}
	// Sealed before the interpreter closes: what code still running
	// prints goes nowhere.
	output, truncated := out.Seal()
	return val, output, truncated, err
}

// preImport imports uwsgi and every allowed package under its name,
// except names two allowed packages share. It returns the imports made,
// by name.
func (e *Engine) preImport(in *interp.Interpreter) (map[string]string, error) {
	byName := map[string][]string{}
	for p := range e.sandbox.allowed {
		name := path.Base(p)
		byName[name] = append(byName[name], p)
	}
	imported := map[string]string{}
	var b strings.Builder
	b.WriteString("import (\n")
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		if paths := byName[name]; len(paths) == 1 && isIdent(name) {
			imported[name] = paths[0]
			fmt.Fprintf(&b, "\t%s %q\n", name, paths[0])
		}
	}
	fmt.Fprintf(&b, "\t%s %q\n)", hiddenAlias, hiddenPath)
	if _, err := in.Eval(b.String()); err != nil {
		return nil, fmt.Errorf("gointerp: eval: importing the allowed packages: %w", err)
	}
	return imported, nil
}

func isIdent(s string) bool {
	return token.IsIdentifier(s) && !token.IsKeyword(s)
}

// chunk is a piece of Eval's code that parses on its own.
type chunk struct {
	src  string
	line int // 1-based line of its start in the code
}

// splitChunks cuts code into pieces a REPL would evaluate one at a time:
// lines are gathered until they parse as declarations or as statements,
// or until the parser's complaint is about something other than their
// end.
func splitChunks(code string) []chunk {
	var out []chunk
	var cur strings.Builder
	start := 1
	lines := strings.SplitAfter(code, "\n")
	for i, line := range lines {
		if cur.Len() == 0 {
			start = i + 1
		}
		cur.WriteString(line)
		src := cur.String()
		if strings.TrimSpace(src) == "" {
			cur.Reset()
			continue
		}
		if i < len(lines)-1 && unfinished(src) {
			continue
		}
		out = append(out, chunk{src: src, line: start})
		cur.Reset()
	}
	return out
}

// unfinished reports whether src fails to parse only because it ends too
// early.
func unfinished(src string) bool {
	fset := token.NewFileSet()
	_, errDecl := parser.ParseFile(fset, "", "package p;"+src, parser.SkipObjectResolution)
	if errDecl == nil {
		return false
	}
	_, errStmt := parser.ParseFile(fset, "", "package p; func _() {"+src+"\n}", parser.SkipObjectResolution)
	if errStmt == nil {
		return false
	}
	atEnd := func(err error) bool {
		msg := err.Error()
		return strings.Contains(msg, "'EOF'") || strings.Contains(msg, "raw string literal not terminated") ||
			strings.Contains(msg, "comment not terminated")
	}
	return atEnd(errDecl) || atEnd(errStmt)
}

// chunkEdits returns the stack checks of the function bodies of a chunk
// (see bodyEdits) and its allocation guards (allocEdits), whether it is
// declarations or statements.
func chunkEdits(src string) edits {
	for _, prefix := range []string{"package p;", "package p; func _() {"} {
		text := prefix + src
		if prefix != "package p;" {
			text += "\n}"
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "", text, 0)
		if err != nil {
			continue
		}
		var es edits
		for _, e := range append(bodyEdits(fset, f, len(prefix)), allocEdits(fset, f, text, len(prefix))...) {
			if e.at < 0 {
				continue // the wrapper's own body
			}
			if e.line == 1 {
				e.col -= len(prefix)
			}
			es = append(es, e)
		}
		return es
	}
	return nil
}

// chunkArrays is checkArrays for a chunk of Eval's code, declarations or
// statements, after decls, the declarations of the chunks before it (the
// constants it may use). It reports whether the chunk is declarations.
func chunkArrays(c chunk, src, decls string, maxAlloc int64) (bool, error) {
	before := "package main;" + decls + "\n"
	skip := strings.Count(before, "\n")
	fixPos := func(line, col int) (int, int) {
		if line -= skip; line == 1 {
			col = 0 // after the wrapper's prefix
		}
		return c.line + line - 1, col
	}
	for i, wrap := range [][2]string{{"", ""}, {"func _() {", "\n}"}} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, evalName, before+wrap[0]+src+wrap[1], parser.SkipObjectResolution)
		if err == nil {
			return i == 0, checkArrays(evalName, fset, f, maxAlloc, fixPos)
		}
	}
	return false, nil
}

// asStatements reports whether src parses as statements only.
func asStatements(src string) bool {
	fset := token.NewFileSet()
	if _, err := parser.ParseFile(fset, "", "package p;"+src, parser.SkipObjectResolution); err == nil {
		return false
	}
	_, err := parser.ParseFile(fset, "", "package p; func _() {"+src+"\n}", parser.SkipObjectResolution)
	return err == nil
}

// evalChunks evaluates the chunks in order and returns the last value.
func (v *vm) evalChunks(ctx context.Context, code string, preloaded map[string]string) (res reflect.Value, err error) {
	var decls string // the declaration chunks so far
	for _, c := range splitChunks(code) {
		if err := checkTokens(evalName, c.src, c.line); err != nil {
			return res, err
		}
		src, err := v.evalImports(c, preloaded)
		if err != nil {
			return res, err
		}
		if strings.TrimSpace(src) == "" {
			continue
		}
		isDecl, err := chunkArrays(c, src, decls, maxAllocOf(ctx))
		if err != nil {
			return res, err
		}
		if isDecl {
			decls += "\n" + src
		}
		es := chunkEdits(src)
		src = es.apply(src)
		// yaegi runs each chunk in a goroutine of its own: the chunk
		// first tells the allocation guards which interpreter runs there
		// (enterEval).
		switch {
		case asStatements(src):
			// yaegi takes code starting with var, const or type for
			// declarations; a leading empty statement makes it run
			// "var x = 1; x" as statements.
			src = ";" + hiddenAlias + ".Enter(); " + src
		case startsWithVar(src):
			src = "var _ = " + hiddenAlias + ".Enter(); " + src
		}
		r, err := v.in.EvalWithContext(ctx, src)
		if err != nil {
			var pe interp.Panic
			switch {
			case v.overflow:
				return res, overflowError(evalName)
			case ctx.Err() != nil:
				v.interrupt(context.Cause(ctx))
				return res, interrupted(evalName, ctx)
			case errors.As(err, &pe):
				return res, panicError(evalName, pe.Value, v.stderr.take())
			}
			se := compileError(evalName, err, 0)
			if se.Line > 0 {
				se.Line, se.Column = es.fixPos(se.Line, se.Column)
				if se.Line == 1 {
					se.Column = 0 // yaegi's own wrapping shifts the first line
				}
				se.Line += c.line - 1
			}
			return res, se
		}
		res = r
		if !endsWithExpr(c.src) {
			res = reflect.Value{}
		}
	}
	return res, nil
}

// startsWithVar reports whether src is declarations, a var first (the
// other declarations run no code).
func startsWithVar(src string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p;"+src, parser.SkipObjectResolution)
	if err != nil || len(f.Decls) == 0 {
		return false
	}
	d, ok := f.Decls[0].(*ast.GenDecl)
	return ok && d.Tok == token.VAR
}

// endsWithExpr reports whether src's last statement is an expression,
// whose value is then the result.
func endsWithExpr(src string) bool {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", "package p; func _() {"+src+"\n}", parser.SkipObjectResolution)
	if err != nil {
		return false
	}
	body := f.Decls[0].(*ast.FuncDecl).Body.List
	if len(body) == 0 {
		return false
	}
	_, ok := body[len(body)-1].(*ast.ExprStmt)
	return ok
}

// evalImports checks a chunk made of import declarations against the
// sandbox, drops the imports the interpreter already has and returns
// what is left to evaluate (the chunk itself if it is not imports).
func (v *vm) evalImports(c chunk, preloaded map[string]string) (string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", "package p;"+c.src, parser.SkipObjectResolution|parser.ImportsOnly)
	if err != nil || len(f.Imports) == 0 {
		return c.src, nil
	}
	full, err := parser.ParseFile(fset, "", "package p;"+c.src, parser.SkipObjectResolution)
	if err != nil || len(full.Decls) != countImportDecls(full) {
		return c.src, nil // imports followed by more: let the interpreter say
	}
	var b strings.Builder
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !v.eng.sandbox.allowed[p] {
			pos := fset.Position(imp.Pos())
			return "", &api.ScriptError{Engine: errEngine, File: evalName, Line: c.line + pos.Line - 1, Column: pos.Column,
				Msg: fmt.Sprintf("import %s: package not allowed in scripts", imp.Path.Value), Err: ErrForbiddenImport}
		}
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if preloaded[name] == p {
			continue
		}
		fmt.Fprintf(&b, "import %s %q\n", name, p)
		preloaded[name] = p
	}
	return b.String(), nil
}

func countImportDecls(f *ast.File) int {
	n := 0
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			n++
		}
	}
	return n
}

// evalResult converts Eval's value; what has no API counterpart (a
// struct, a function) is rendered with fmt's %v.
func evalResult(v *vm, res reflect.Value) (api.Value, error) {
	if !res.IsValid() || !res.CanInterface() {
		return nil, nil
	}
	x := res.Interface()
	val, err := v.conv.toValue(x)
	if _, isFunc := val.(api.Callable); err != nil || isFunc {
		return fmt.Sprintf("%v", x), nil
	}
	return val, nil
}
