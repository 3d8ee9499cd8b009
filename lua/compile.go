package lua

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// compiler turns source into function prototypes shared by every state.
//
// gopher-lua's `..` operator formats numbers with Go's shortest form
// (0.1+0.2 .. "" is "0.30000000000000004") and cannot be hooked at run
// time, so the compiler rewrites every concatenation chain `a .. b .. c`
// into a call of one Go function that concatenates like Lua 5.1 (numbers
// as "%.14g", __concat metamethods, the string size limit). The callee is
// a string constant, a per-engine random marker, that is replaced in the
// compiled prototypes by the Go function itself: the call needs no global
// or field lookup, and scripts cannot reach or replace the function.
type compiler struct {
	marker string
	concat *lua.LFunction
}

func newCompiler(concat lua.LGFunction) *compiler {
	var nonce [16]byte
	rand.Read(nonce[:])
	return &compiler{
		marker: "\x00scripthost.concat." + hex.EncodeToString(nonce[:]),
		// A Go function has no environment scripts can see (getfenv of
		// a Go function is the globals of the caller), so one value can
		// serve every state.
		concat: &lua.LFunction{IsG: true, GFunction: concat},
	}
}

// compile parses, rewrites and compiles one chunk. Errors are
// *api.ScriptError with the chunk name and line.
func (c *compiler) compile(src []byte, name string) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.Token != "" {
				msg += " near '" + pe.Token + "'"
			}
			err = &parseError{line: pe.Pos.Line, msg: msg}
		}
		return nil, compileError(name, src, err)
	}
	c.stmts(chunk)
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, compileError(name, src, err)
	}
	c.patch(proto)
	return proto, nil
}

func (c *compiler) patch(p *lua.FunctionProto) {
	for i, k := range p.Constants {
		if s, ok := k.(lua.LString); ok && string(s) == c.marker {
			p.Constants[i] = c.concat
		}
	}
	for _, child := range p.FunctionPrototypes {
		c.patch(child)
	}
}

func (c *compiler) stmts(list []ast.Stmt) {
	for _, s := range list {
		c.stmt(s)
	}
}

func (c *compiler) exprs(list []ast.Expr) {
	for i, e := range list {
		list[i] = c.expr(e)
	}
}

func (c *compiler) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.AssignStmt:
		c.exprs(s.Lhs)
		c.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		c.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		s.Expr = c.expr(s.Expr)
	case *ast.DoBlockStmt:
		c.stmts(s.Stmts)
	case *ast.WhileStmt:
		s.Condition = c.expr(s.Condition)
		c.stmts(s.Stmts)
	case *ast.RepeatStmt:
		s.Condition = c.expr(s.Condition)
		c.stmts(s.Stmts)
	case *ast.IfStmt:
		s.Condition = c.expr(s.Condition)
		c.stmts(s.Then)
		c.stmts(s.Else)
	case *ast.NumberForStmt:
		s.Init = c.expr(s.Init)
		s.Limit = c.expr(s.Limit)
		s.Step = c.expr(s.Step)
		c.stmts(s.Stmts)
	case *ast.GenericForStmt:
		c.exprs(s.Exprs)
		c.stmts(s.Stmts)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			s.Name.Func = c.expr(s.Name.Func)
			s.Name.Receiver = c.expr(s.Name.Receiver)
		}
		c.stmts(s.Func.Stmts)
	case *ast.ReturnStmt:
		c.exprs(s.Exprs)
	}
}

func (c *compiler) expr(e ast.Expr) ast.Expr {
	switch e := e.(type) {
	case nil:
		return nil
	case *ast.StringConcatOpExpr:
		return c.concatCall(e)
	case *ast.AttrGetExpr:
		e.Object = c.expr(e.Object)
		e.Key = c.expr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			f.Key = c.expr(f.Key)
			f.Value = c.expr(f.Value)
		}
	case *ast.FuncCallExpr:
		e.Func = c.expr(e.Func)
		e.Receiver = c.expr(e.Receiver)
		c.exprs(e.Args)
	case *ast.LogicalOpExpr:
		e.Lhs = c.expr(e.Lhs)
		e.Rhs = c.expr(e.Rhs)
	case *ast.RelationalOpExpr:
		e.Lhs = c.expr(e.Lhs)
		e.Rhs = c.expr(e.Rhs)
	case *ast.ArithmeticOpExpr:
		e.Lhs = c.expr(e.Lhs)
		e.Rhs = c.expr(e.Rhs)
	case *ast.UnaryMinusOpExpr:
		e.Expr = c.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		e.Expr = c.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		e.Expr = c.expr(e.Expr)
	case *ast.FunctionExpr:
		c.stmts(e.Stmts)
	}
	return e
}

// concatCall rewrites the right-associative chain a .. (b .. c) into
// marker(a, b, c), as gopher-lua compiles it into one OP_CONCAT.
func (c *compiler) concatCall(e *ast.StringConcatOpExpr) ast.Expr {
	var args []ast.Expr
	var cur ast.Expr = e
	for {
		ce, ok := cur.(*ast.StringConcatOpExpr)
		if !ok {
			break
		}
		args = append(args, c.expr(ce.Lhs))
		cur = ce.Rhs
	}
	last := c.expr(cur)
	// The last argument of a call expands to all its values: keep it
	// to one, as an operand of `..` is.
	switch l := last.(type) {
	case *ast.FuncCallExpr:
		l.AdjustRet = true
	case *ast.Comma3Expr:
		l.AdjustRet = true
	}
	args = append(args, last)
	fn := &ast.StringExpr{Value: c.marker}
	fn.SetLine(e.Line())
	fn.SetLastLine(e.LastLine())
	// AdjustRet: exactly one result, and `return a .. b` is no tail
	// call, so errors keep the caller's line.
	call := &ast.FuncCallExpr{Func: fn, Args: args, AdjustRet: true}
	call.SetLine(e.Line())
	call.SetLastLine(e.LastLine())
	return call
}
