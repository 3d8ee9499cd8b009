package gointerp

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

// script is one file of a program: its source, what the load found out
// about it, and its pool of interpreters.
type script struct {
	p           *program
	name        string // "app.go"
	app         string // the app name: name without ".go"
	src         []byte
	edits       edits // what the engine adds to the text (see source)
	hasMain     bool
	hasHandler  bool
	handlerLine int
	shape       vmpool.Shape // what the first interpreter made while loading
	pool        *vmpool.Pool[*vm]
}

// analyze parses the file once to check it against the sandbox and find
// its main and Handler.
func (sc *script) analyze() error {
	fset := token.NewFileSet()
	// With object resolution: the allocation guards tell the builtins
	// from the script's own names.
	f, err := parser.ParseFile(fset, sc.name, sc.src, 0)
	if err != nil {
		return compileError(sc.name, err, 0)
	}
	pos := func(n ast.Node) (int, int) {
		p := fset.Position(n.Pos())
		return p.Line, p.Column
	}
	if err := sc.p.eng.sandbox.checkFile(sc.name, f, pos); err != nil {
		return err
	}
	if err := checkArrays(sc.name, fset, f, sc.p.maxAlloc, nop); err != nil {
		return err
	}
	sc.edits = append(bodyEdits(fset, f, 0), importEdit(fset, f))
	sc.edits = append(sc.edits, allocEdits(fset, f, string(sc.src), 0)...)
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil {
				continue
			}
			switch d.Name.Name {
			case "main":
				if d.Type.Params.NumFields() > 0 || d.Type.Results.NumFields() > 0 {
					line, col := pos(d)
					return &api.ScriptError{Engine: errEngine, File: sc.name, Line: line, Column: col, Msg: "func main must have no arguments and no return values"}
				}
				sc.hasMain = true
				p := fset.Position(d.Name.Pos())
				sc.edits = append(sc.edits, edit{at: p.Offset, del: len("main"), text: mainRename, line: p.Line, col: p.Column})
			case "Handler":
				sc.hasHandler = true
				sc.handlerLine, _ = pos(d)
			}
		case *ast.GenDecl:
			if d.Tok != token.VAR {
				continue
			}
			for _, spec := range d.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if id.Name == "Handler" {
						sc.hasHandler = true
						sc.handlerLine, _ = pos(id)
					}
				}
			}
		}
	}
	return nil
}

func nop(line, col int) (int, int) { return line, col }

// source is the file as interpreters run it: the hidden package imported
// on the package clause's line, a stack check at the start of every
// function body, its own main renamed, and a generated main appended that
// runs it and then serves. Lines do not move; fixPos maps columns back.
func (sc *script) source() string {
	call := ""
	if sc.hasMain {
		call = mainRename + "(); "
	}
	handler := "nil"
	if sc.hasHandler {
		handler = "Handler"
	}
	return sc.edits.apply(string(sc.src)) +
		fmt.Sprintf("\n\nfunc main() { %s%s.Serve(%s) }\n", call, hiddenAlias, handler)
}

// fixPos maps a position in source() back to the file.
func (sc *script) fixPos(line, col int) (int, int) { return sc.edits.fixPos(line, col) }

// with runs fn in an interpreter of the file: the one the call already
// holds (re-entrant calls run inline), or want, or any from the pool,
// building one if the pool may grow.
func (sc *script) with(ctx context.Context, want *vm, fn func(v *vm) error) error {
	if v := held(ctx, sc, want); v != nil {
		return v.inline(ctx, func() error { return fn(v) })
	}
	v, err := sc.acquire(ctx, want)
	if err != nil {
		return err
	}
	discard, err := v.do(hold(sc.pool.Lend(ctx, v), v), func() error { return fn(v) })
	if discard {
		v.close()
		sc.pool.Discard(v)
		sc.p.log.Info("gointerp: interpreter discarded", "file", sc.name, "err", err)
	} else {
		sc.pool.Put(v)
	}
	return err
}

// acquire borrows an interpreter (want, or any), building a replica when
// the pool has room and none is idle.
func (sc *script) acquire(ctx context.Context, want *vm) (*vm, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	v, build, err := sc.pool.Get(ctx, want)
	if errors.Is(err, vmpool.ErrBusy) {
		return nil, sc.busy(err)
	}
	if err != nil || !build {
		return v, err
	}
	v, err = sc.replica(ctx)
	if err != nil {
		sc.pool.Failed()
		sc.p.log.Error("gointerp: cannot build an interpreter", "file", sc.name, "err", err)
		return nil, err
	}
	return v, nil
}

// busy reports a call that waited too long for an interpreter (the pool
// counted it): logged, and failed with an error wrapping ErrPoolBusy and
// err.
func (sc *script) busy(err error) error {
	sc.p.log.Warn("gointerp: every interpreter of the file is busy; call refused", "file", sc.name,
		"pool_size", sc.p.eng.opts.PoolSize, "waited", sc.p.eng.opts.PoolWait)
	return fmt.Errorf("gointerp: %s: %w (%d interpreters): %w", sc.name, ErrPoolBusy, sc.p.eng.opts.PoolSize, err)
}

// replica builds another interpreter of the file, under the program's
// lifetime (not the call's values: the file's init must not see the
// call's client connection), given up when the caller gives up.
func (sc *script) replica(ctx context.Context) (*vm, error) {
	bctx, cancel := context.WithTimeoutCause(sc.p.life, vmpool.ReplicaTimeout,
		fmt.Errorf("building an interpreter took over %v", vmpool.ReplicaTimeout))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	v, err := newVM(bctx, sc, true)
	if err != nil {
		return nil, err
	}
	if err := sc.shape.Check(v.shape(), ErrNondeterministicLoad); err != nil {
		v.close()
		return nil, &api.ScriptError{Engine: errEngine, File: sc.name, Msg: err.Error(), Err: err}
	}
	return v, nil
}

// shape is what the file made in v: its app is the file's Handler, the
// same in every interpreter, so the callbacks are what may differ.
func (v *vm) shape() vmpool.Shape { return vmpool.Shape{Callbacks: len(v.captured)} }
