package gointerp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"io"
	"math"
	pathpkg "path"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/scripthost/scripthost/api"
)

// Allocation guards. Every allocation whose size a script gives is
// charged with api.Charge to the running call before it is made: make
// and append (rewritten by allocEdits to go through Make and Append),
// and the standard functions and types below, replaced in
// the interpreters by guarded versions. A charge that fails panics in the
// script with the api error (ErrAllocTooLarge, ErrMemoryLimit); the call
// fails with it even if the script recovers, and the interpreter is
// discarded. Without the guards, make([]byte, 1<<40) is a fatal "out of
// memory" of the whole process, which no recover stops.

// allocError is the panic of a refused allocation.
type allocError struct {
	what string
	err  error
}

func (e *allocError) Error() string { return e.what + ": " + e.err.Error() }
func (e *allocError) Unwrap() error { return e.err }

// charge charges n bytes about to be allocated by what to the running
// call, or panics in the script.
func (v *vm) charge(what string, n int64) {
	ctx := v.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if err := api.Charge(ctx, n); err != nil {
		ae := &allocError{what: what, err: err}
		v.allocErr = ae
		v.dead = true
		panic(ae)
	}
}

// allocFailed is the error of a call whose script allocation was refused
// (nil if none was): the call fails with it even if the script recovered
// the panic.
func (v *vm) allocFailed() error {
	if v.allocErr == nil {
		return nil
	}
	return &api.ScriptError{Engine: errEngine, File: v.name, Msg: "panic: " + v.allocErr.Error(), Err: fmt.Errorf("%w: %w", ErrPanic, v.allocErr)}
}

// makeLen is Make: the guard of make's last size. like is a value of the made type (a typed nil), for its element
// size. It returns n as an int.
func (v *vm) makeLen(like any, n any) int {
	count := toCount(n)
	v.charge("make", mulSat(count, elemSize(reflect.TypeOf(like))))
	return int(min(count, math.MaxInt))
}

// appendLen is Append: the guard of append(s, added elements), which
// allocates when s has no room. It returns len(s).
func (v *vm) appendLen(s any, added int) int {
	rv := reflect.ValueOf(s)
	if rv.Kind() != reflect.Slice {
		return rv.Len()
	}
	n, c := rv.Len(), rv.Cap()
	if added > 0 && n+added > c {
		v.charge("append", mulSat(int64(grownCap(c, n+added)), int64(rv.Type().Elem().Size())))
	}
	return n
}

// grownCap is about the capacity append gives a slice of capacity c that
// needs need (the runtime's growth rule, rounded up).
func grownCap(c, need int) int {
	grown := 2 * c
	if c >= 256 {
		grown = c + (c+3*256)/4
	}
	return max(need, grown)
}

// toCount reads make's size argument, whatever its integer type (an
// untyped constant arrives as int, or float64 when written 1e6).
func toCount(n any) int64 {
	rv := reflect.ValueOf(n)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return int64(min(rv.Uint(), math.MaxInt64))
	case reflect.Float32, reflect.Float64:
		return int64(max(min(rv.Float(), math.MaxInt64), math.MinInt64))
	}
	panic(fmt.Sprintf("make: size of type %T", n))
}

// elemSize is the bytes per element of a made slice, map or channel (a
// word when the type is not known).
func elemSize(t reflect.Type) int64 {
	if t == nil {
		return 8
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Chan, reflect.Array, reflect.Pointer:
		return int64(t.Elem().Size())
	case reflect.Map:
		return int64(t.Key().Size()+t.Elem().Size()) + 8 // and the table's overhead
	}
	return 8
}

// mulSat is n*size, saturated (a negative n is left to make's own panic).
func mulSat(n, size int64) int64 {
	if n <= 0 || size <= 0 {
		return 0
	}
	if n > math.MaxInt64/size {
		return math.MaxInt64
	}
	return n * size
}

// guardedFuncs are the per-interpreter replacements of the standard
// functions that allocate what their arguments say, for the allowed
// packages among them.
func (v *vm) guardedFuncs(allowed map[string]bool) map[string]map[string]reflect.Value {
	charged := func(what string, n int) { v.charge(what, int64(n)) }
	funcs := map[string]map[string]reflect.Value{
		"strings": {
			"Repeat": reflect.ValueOf(func(s string, n int) string {
				if n > 0 {
					v.charge("strings.Repeat", mulSat(int64(n), int64(len(s))))
				}
				return strings.Repeat(s, n)
			}),
			"Replace": reflect.ValueOf(func(s, old, new string, n int) string {
				charged("strings.Replace", replacedLen(len(s), len(old), len(new), countMatches(s, old, n, strings.Count, utf8.RuneCountInString)))
				return strings.Replace(s, old, new, n)
			}),
			"ReplaceAll": reflect.ValueOf(func(s, old, new string) string {
				charged("strings.ReplaceAll", replacedLen(len(s), len(old), len(new), countMatches(s, old, -1, strings.Count, utf8.RuneCountInString)))
				return strings.ReplaceAll(s, old, new)
			}),
			"Join": reflect.ValueOf(func(elems []string, sep string) string {
				charged("strings.Join", joinedLen(len(elems), len(sep), func(i int) int { return len(elems[i]) }))
				return strings.Join(elems, sep)
			}),
			"NewReplacer": reflect.ValueOf(v.newReplacer),
		},
		"bytes": {
			"Repeat": reflect.ValueOf(func(b []byte, n int) []byte {
				if n > 0 {
					v.charge("bytes.Repeat", mulSat(int64(n), int64(len(b))))
				}
				return bytes.Repeat(b, n)
			}),
			"Replace": reflect.ValueOf(func(s, old, new []byte, n int) []byte {
				charged("bytes.Replace", replacedLen(len(s), len(old), len(new), countMatches(s, old, n, bytes.Count, utf8.RuneCount)))
				return bytes.Replace(s, old, new, n)
			}),
			"ReplaceAll": reflect.ValueOf(func(s, old, new []byte) []byte {
				charged("bytes.ReplaceAll", replacedLen(len(s), len(old), len(new), countMatches(s, old, -1, bytes.Count, utf8.RuneCount)))
				return bytes.ReplaceAll(s, old, new)
			}),
			"Join": reflect.ValueOf(func(elems [][]byte, sep []byte) []byte {
				charged("bytes.Join", joinedLen(len(elems), len(sep), func(i int) int { return len(elems[i]) }))
				return bytes.Join(elems, sep)
			}),
			"NewBuffer":       reflect.ValueOf(func(buf []byte) *scriptBuffer { return &scriptBuffer{Buffer: *bytes.NewBuffer(buf)} }),
			"NewBufferString": reflect.ValueOf(func(s string) *scriptBuffer { return &scriptBuffer{Buffer: *bytes.NewBufferString(s)} }),
		},
		"bufio": {
			"NewReaderSize": reflect.ValueOf(func(r io.Reader, size int) *bufio.Reader {
				charged("bufio.NewReaderSize", size)
				return bufio.NewReaderSize(r, size)
			}),
			"NewWriterSize": reflect.ValueOf(func(w io.Writer, size int) *bufio.Writer {
				charged("bufio.NewWriterSize", size)
				return bufio.NewWriterSize(w, size)
			}),
		},
		"encoding/json": {
			// They take a *bytes.Buffer, which scripts have as a
			// *scriptBuffer.
			"Compact": reflect.ValueOf(func(dst *scriptBuffer, src []byte) error {
				dst.room(len(src))
				return json.Compact(&dst.Buffer, src)
			}),
			"HTMLEscape": reflect.ValueOf(func(dst *scriptBuffer, src []byte) {
				dst.room(6 * len(src))
				json.HTMLEscape(&dst.Buffer, src)
			}),
			"Indent": reflect.ValueOf(func(dst *scriptBuffer, src []byte, prefix, indent string) error {
				// Every byte may start a line of prefix and indents: the
				// bound is loose, the indentation depth is not known.
				dst.room(len(src) * (2 + len(prefix) + len(indent)))
				return json.Indent(&dst.Buffer, src, prefix, indent)
			}),
		},
	}
	out := map[string]map[string]reflect.Value{}
	for pkg, syms := range funcs {
		if allowed[pkg] {
			out[stdlibKeys[pkg]] = syms
		}
	}
	return out
}

// guardedTypes replace standard types whose methods grow buffers by what
// scripts say (their Go names stay: strings.Builder, bytes.Buffer,
// strings.Replacer).
var guardedTypes = map[string]map[string]reflect.Value{
	"strings": {
		"Builder":  reflect.ValueOf((*scriptBuilder)(nil)),
		"Replacer": reflect.ValueOf((*scriptReplacer)(nil)),
	},
	"bytes": {"Buffer": reflect.ValueOf((*scriptBuffer)(nil))},
}

// countMatches is how many times old is replaced in s (n < 0: all).
func countMatches[S string | []byte](s, old S, n int, count func(S, S) int, runes func(S) int) int {
	if n == 0 {
		return 0
	}
	m := count(s, old)
	if len(old) == 0 {
		m = runes(s) + 1
	}
	if n > 0 {
		m = min(m, n)
	}
	return m
}

// replacedLen is the length of s with m matches of old replaced by new,
// saturated.
func replacedLen(s, old, new, m int) int {
	if new <= old {
		return s
	}
	grow := mulSat(int64(m), int64(new-old))
	return int(min(int64(s)+grow, math.MaxInt64))
}

// joinedLen is the length of n elements joined with a separator.
func joinedLen(n, sep int, elem func(int) int) int {
	if n == 0 {
		return 0
	}
	total := mulSat(int64(n-1), int64(sep))
	for i := range n {
		total += int64(elem(i))
		if total < 0 {
			return math.MaxInt
		}
	}
	return int(total)
}

// Methods of the guarded types have no interpreter at hand: they find it
// by their goroutine (each interpreter serves its calls in a goroutine of
// its own, an Eval's chunks each in one), for growths of minTypeCharge
// bytes or more; smaller growths are left to the memory watchdog, and
// while a file loads the charge checks the allocation cap only.
const minTypeCharge = 64 << 10

// serving maps the goroutines serving calls to their interpreter.
var serving sync.Map // goroutine id -> *vm

// goroutineID returns the id of the running goroutine, read from its
// stack header ("goroutine 12 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

// enterEval is Enter, run first by each chunk of an Eval: it maps the
// chunk's goroutine to the Eval's interpreter until leaveEval.
func (v *vm) enterEval() int {
	id := goroutineID()
	v.evalMu.Lock()
	defer v.evalMu.Unlock()
	if v.evalLeft {
		return 0 // an interrupted chunk that went on
	}
	serving.Store(id, v)
	v.evalGoroutines = append(v.evalGoroutines, id)
	return 0
}

func (v *vm) leaveEval() {
	v.evalMu.Lock()
	defer v.evalMu.Unlock()
	v.evalLeft = true
	for _, id := range v.evalGoroutines {
		serving.Delete(id)
	}
}

// chargeGrowth charges n bytes a guarded type is about to allocate.
func chargeGrowth(what string, n int) {
	if n < minTypeCharge {
		return
	}
	if v, ok := serving.Load(goroutineID()); ok {
		v.(*vm).charge(what, int64(n))
		return
	}
	if err := api.Charge(context.Background(), int64(n)); err != nil {
		panic(&allocError{what: what, err: err})
	}
}

// growth is what a buffer of length n and capacity c allocates to take k
// more bytes (0: it has room).
func growth(n, c, k int) int {
	if k <= c-n {
		return 0
	}
	if k > math.MaxInt-n-c {
		return math.MaxInt
	}
	return 2*c + k
}

// scriptBuilder is strings.Builder for scripts.
type scriptBuilder struct{ strings.Builder }

func (b *scriptBuilder) room(k int) {
	chargeGrowth("strings.Builder", growth(b.Len(), b.Cap(), k))
}

func (b *scriptBuilder) Grow(n int) {
	if n > 0 {
		b.room(n)
	}
	b.Builder.Grow(n)
}

func (b *scriptBuilder) Write(p []byte) (int, error) {
	b.room(len(p))
	return b.Builder.Write(p)
}

func (b *scriptBuilder) WriteString(s string) (int, error) {
	b.room(len(s))
	return b.Builder.WriteString(s)
}

func (b *scriptBuilder) WriteByte(c byte) error {
	b.room(1)
	return b.Builder.WriteByte(c)
}

func (b *scriptBuilder) WriteRune(r rune) (int, error) {
	b.room(utf8.UTFMax)
	return b.Builder.WriteRune(r)
}

// scriptBuffer is bytes.Buffer for scripts.
type scriptBuffer struct{ bytes.Buffer }

func (b *scriptBuffer) room(k int) {
	chargeGrowth("bytes.Buffer", growth(b.Len(), b.Cap(), k))
}

func (b *scriptBuffer) Grow(n int) {
	if n > 0 {
		b.room(n)
	}
	b.Buffer.Grow(n)
}

func (b *scriptBuffer) Write(p []byte) (int, error) {
	b.room(len(p))
	return b.Buffer.Write(p)
}

func (b *scriptBuffer) WriteString(s string) (int, error) {
	b.room(len(s))
	return b.Buffer.WriteString(s)
}

func (b *scriptBuffer) WriteByte(c byte) error {
	b.room(1)
	return b.Buffer.WriteByte(c)
}

func (b *scriptBuffer) WriteRune(r rune) (int, error) {
	b.room(utf8.UTFMax)
	return b.Buffer.WriteRune(r)
}

// ReadFrom reads r to its end, growing the buffer through the guard (io.Copy
// into a buffer comes here).
func (b *scriptBuffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		b.Grow(bytes.MinRead)
		free := b.AvailableBuffer()
		free = free[:cap(free)]
		n, err := r.Read(free)
		if n < 0 || n > len(free) {
			panic("bytes.Buffer: reader returned an invalid count")
		}
		b.Buffer.Write(free[:n])
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// scriptReplacer is strings.Replacer for scripts: Replace charges the
// most its result can be to the interpreter that made it (the zero
// Replacer replaces nothing).
type scriptReplacer struct {
	v *vm
	r *strings.Replacer
	// ratio is the most a replaced byte can become, insert the most an
	// empty old string inserts at each position.
	ratio, insert int
}

func (v *vm) newReplacer(oldnew ...string) *scriptReplacer {
	sr := &scriptReplacer{v: v, r: strings.NewReplacer(oldnew...), ratio: 1}
	for i := 0; i+1 < len(oldnew); i += 2 {
		old, new := len(oldnew[i]), len(oldnew[i+1])
		if old == 0 {
			sr.insert = max(sr.insert, new)
			continue
		}
		sr.ratio = max(sr.ratio, (new+old-1)/old)
	}
	return sr
}

func (sr *scriptReplacer) Replace(s string) string {
	if sr.r == nil {
		return s
	}
	bound := mulSat(int64(len(s)), int64(sr.ratio))
	if inserted := mulSat(int64(len(s))+1, int64(sr.insert)); bound > math.MaxInt64-inserted {
		bound = math.MaxInt64
	} else {
		bound += inserted
	}
	sr.v.charge("strings.Replacer", bound)
	return sr.r.Replace(s)
}

func (sr *scriptReplacer) WriteString(w io.Writer, s string) (int, error) {
	if sr.r == nil {
		return io.WriteString(w, s)
	}
	return sr.r.WriteString(w, s)
}

// checkArrays refuses array types of more than maxAlloc bytes (var a
// [1 << 40]byte): their size is a constant, so the file is refused when
// it loads rather than the process when the array is made. The file is
// type-checked on its own; what its imports define is unknown and
// ignored (a word per element of an imported type).
func checkArrays(name string, fset *token.FileSet, f *ast.File, maxAlloc int64, fixPos func(line, col int) (int, int)) error {
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{
		Importer: importerFunc(func(path string) (*types.Package, error) {
			p := types.NewPackage(path, pathpkg.Base(path))
			p.MarkComplete()
			return p, nil
		}),
		Error: func(error) {}, // only the constants matter here
		Sizes: types.SizesFor("gc", "amd64"),
	}
	conf.Check("main", fset, []*ast.File{f}, info)
	for expr, tv := range info.Types {
		at, ok := expr.(*ast.ArrayType)
		if !ok || at.Len == nil || !tv.IsType() {
			continue
		}
		if size := conf.Sizes.Sizeof(tv.Type); size < 0 || size > maxAlloc {
			p := fset.Position(at.Pos())
			line, col := fixPos(p.Line, p.Column)
			return &api.ScriptError{Engine: errEngine, File: name, Line: line, Column: col, Err: api.ErrAllocTooLarge,
				Msg: fmt.Sprintf("array type %s: over the %d byte allocation limit", types.ExprString(at), maxAlloc)}
		}
	}
	return nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// maxAllocOf is the allocation cap of the budget ctx carries.
func maxAllocOf(ctx context.Context) int64 {
	if m := api.MemoryOf(ctx); m != nil {
		return m.MaxAlloc()
	}
	return api.DefaultMaxAlloc
}
