package lua

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"

	"github.com/scripthost/scripthost/api"
)

// Allocations a script sizes (strings it builds, bodies it reads) are
// charged to the running call before they are made (api.Charge): one too
// large for the call's budget raises a Lua error carrying the api error
// and retires the state, and the memory watchdog finds the call that
// allocated most. Tables are not charged: they grow one slot at a time,
// which the watchdog's heap reading covers.

// charge accounts n bytes that the running call is about to allocate;
// over a bound it raises a limit error naming what and does not return.
func (v *vm) charge(L *lua.LState, what string, n int64) {
	var err error
	if v.scope != nil {
		err = v.scope.Charge(n)
	} else {
		err = api.Charge(v.context(), n)
	}
	if err != nil {
		v.limit(L, what+": "+err.Error(), err)
	}
}

// reserve checks a string that what builds, total bytes long once n more
// are added, against Options.MaxStringSize, and charges the n bytes.
func (v *vm) reserve(L *lua.LState, what string, total, n int64) {
	if total > int64(v.eng.opts.MaxStringSize) {
		v.limit(L, fmt.Sprintf("%s: result of %d bytes over the %d byte limit", what, total, v.eng.opts.MaxStringSize), ErrStringTooLarge)
	}
	v.charge(L, what, n)
}

// saturate converts a size computed in floating point to int64.
func saturate(f float64) int64 {
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(f)
}

// builder builds a string whose every growth is checked against the
// string size limit and charged before it happens.
type builder struct {
	strings.Builder
	v    *vm
	L    *lua.LState
	what string
}

func (v *vm) builder(L *lua.LState, what string) *builder {
	return &builder{v: v, L: L, what: what}
}

// reserve makes room for n more bytes.
func (b *builder) reserve(n int) {
	if b.Cap()-b.Len() >= n {
		return
	}
	// strings.Builder grows to twice its capacity plus what is asked.
	b.v.reserve(b.L, b.what, int64(b.Len())+int64(n), 2*int64(b.Cap())+int64(n))
	b.Grow(n)
}

// add appends s.
func (b *builder) add(s string) {
	b.reserve(len(s))
	b.WriteString(s)
}

// interrupted raises the running call's cancellation from Go code that
// loops (call scriptError then reports the context's cause).
func interrupted(L *lua.LState) {
	if ctx := L.Context(); ctx != nil && ctx.Err() != nil {
		L.RaiseError("%s", context.Cause(ctx))
	}
}

// chargedLen wraps a string library function whose result is as long as
// its first argument.
func (v *vm) chargedLen(what string, fn lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		v.charge(L, what, int64(len(L.CheckString(1))))
		return fn(L)
	}
}

// strChar is string.char, charged: one byte per argument.
func (v *vm) strChar(L *lua.LState) int {
	n := L.GetTop()
	v.charge(L, "string.char", int64(n))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(L.CheckInt(i + 1))
	}
	L.Push(lua.LString(b))
	return 1
}

// readOnlyBytes views s as bytes for the pattern matcher, which only
// reads them: copying a long subject for every match would cost more
// than the match.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// matchBatch is how many matches a matcher finds at once: the pattern
// is compiled for every search, and a batch bounds the memory of the
// matches found ahead.
const matchBatch = 64

// matcher finds the matches of a pattern in a subject one after another,
// as Lua 5.1's gsub and gmatch walk the subject.
type matcher struct {
	L        *lua.LState
	pat, src string
	pos      int // where the next search starts
	found    []*pm.MatchData
	done     bool
}

func newMatcher(L *lua.LState, pat, src string) *matcher {
	return &matcher{L: L, pat: pat, src: src}
}

// next returns the next match, or nil.
func (m *matcher) next() *pm.MatchData {
	if len(m.found) == 0 {
		if m.done || m.pos > len(m.src) {
			return nil
		}
		mds, err := pm.Find(m.pat, readOnlyBytes(m.src), m.pos, matchBatch)
		if err != nil {
			m.L.RaiseError("%s", err.Error())
		}
		// An anchored pattern is tried at the start only.
		m.done = len(mds) < matchBatch || strings.HasPrefix(m.pat, "^")
		if len(mds) == 0 {
			return nil
		}
		m.found = mds
		m.pos = after(mds[len(mds)-1])
	}
	md := m.found[0]
	m.found = m.found[1:]
	return md
}

// capture returns capture i of a match (0: the whole match; 1 stands for
// the whole match when the pattern has no captures, as in Lua 5.1).
func capture(L *lua.LState, md *pm.MatchData, src string, i int) lua.LValue {
	idx := 2 * i
	if i > 0 && idx >= md.CaptureLength() {
		if i != 1 {
			L.RaiseError("invalid capture index")
		}
		idx = 0
	}
	if md.IsPosCapture(idx) {
		return lua.LNumber(md.Capture(idx))
	}
	return lua.LString(src[md.Capture(idx):md.Capture(idx+1)])
}

// captures returns the number of captures of a match.
func captures(md *pm.MatchData) int { return md.CaptureLength()/2 - 1 }

// after returns where the search goes on after a match: past it, or one
// byte further for an empty match.
func after(md *pm.MatchData) int {
	if end := md.Capture(1); end > md.Capture(0) {
		return end
	}
	return md.Capture(0) + 1
}

// gsubCheck is how many matches string.gsub replaces between looks at
// the call's context.
const gsubCheck = 256

// strGsub is string.gsub, building its result match by match: the result
// is checked against the string size limit and charged as it grows, and a
// long substitution can be interrupted. (gopher-lua's finds every match
// first and copies the whole subject for each.) Replacement values that
// are numbers convert like Lua 5.1.
func (v *vm) strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	maxN := L.OptInt(4, len(src)+1)
	b := v.builder(L, "string.gsub")
	m := newMatcher(L, pat, src)
	n, copied := 0, 0 // matches, bytes of src done
	for n < maxN {
		md := m.next()
		if md == nil {
			break
		}
		n++
		if n%gsubCheck == 0 {
			interrupted(L)
		}
		start, end := md.Capture(0), md.Capture(1)
		b.add(src[copied:start])
		b.add(v.replacement(L, md, src, repl))
		copied = min(after(md), len(src))
		if end == start {
			b.add(src[start:copied])
		}
	}
	if n == 0 {
		L.Push(L.Get(1))
	} else {
		b.add(src[copied:])
		L.Push(lua.LString(b.String()))
	}
	L.Push(lua.LNumber(n))
	return 2
}

// replacement is what string.gsub puts in place of a match.
func (v *vm) replacement(L *lua.LState, md *pm.MatchData, src string, repl lua.LValue) string {
	whole := src[md.Capture(0):md.Capture(1)]
	var val lua.LValue
	switch r := repl.(type) {
	case lua.LString:
		return v.expand(L, md, src, string(r))
	case *lua.LTable:
		val = L.GetTable(r, capture(L, md, src, 1))
	case *lua.LFunction:
		L.Push(r)
		nargs := max(captures(md), 1)
		for i := 1; i <= nargs; i++ {
			L.Push(capture(L, md, src, i))
		}
		L.Call(nargs, 1)
		val = L.Get(-1)
		L.Pop(1)
	}
	if val == lua.LNil || val == lua.LFalse {
		return whole
	}
	s, ok := stringOf(val)
	if !ok {
		L.RaiseError("invalid replacement value (a %s)", val.Type().String())
	}
	return s
}

// expand is a replacement string with %0-%9 replaced by captures and %x
// by x.
func (v *vm) expand(L *lua.LState, md *pm.MatchData, src, repl string) string {
	if strings.IndexByte(repl, '%') < 0 {
		return repl
	}
	b := v.builder(L, "string.gsub")
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' || i+1 == len(repl) {
			b.WriteByte(c)
			continue
		}
		i++
		c = repl[i]
		if c < '0' || c > '9' {
			b.WriteByte(c)
			continue
		}
		s, _ := stringOf(capture(L, md, src, int(c-'0')))
		b.add(s)
	}
	return b.String()
}

// strGmatch is string.gmatch, finding one match per iteration (gopher-lua's
// finds every match first, which for a long subject is a lot of memory).
// The iterator needs no state argument.
func strGmatch(L *lua.LState) int {
	m := newMatcher(L, L.CheckString(2), L.CheckString(1))
	L.Push(L.NewFunction(func(L *lua.LState) int {
		m.L = L
		md := m.next()
		if md == nil {
			return 0
		}
		if captures(md) == 0 {
			L.Push(capture(L, md, m.src, 0))
			return 1
		}
		for i := 1; i <= captures(md); i++ {
			L.Push(capture(L, md, m.src, i))
		}
		return captures(md)
	}))
	return 1
}

// readChunk is how much input:read reads, and charges, at a time.
const readChunk = 64 << 10

// readCharged reads up to n bytes, charging the buffer before it grows.
func (v *vm) readCharged(L *lua.LState, r io.Reader, n int) []byte {
	var buf []byte
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grow := min(max(cap(buf), readChunk), n-len(buf))
			v.charge(L, "input:read", int64(len(buf)+grow))
			buf = slices.Grow(buf, grow)
		}
		got, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+got]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			v.raise(L, "input:read: "+err.Error(), err)
		}
	}
	return buf
}

// readLine reads a line (without its newline) of at most limit bytes,
// charging it as it grows; ok is false at the end of the body.
func (v *vm) readLine(L *lua.LState, br *bufio.Reader, limit int) (line []byte, ok bool) {
	var buf []byte
	for {
		piece, err := br.ReadSlice('\n')
		if len(buf)+len(piece) > limit {
			v.limit(L, "input:read: line over the string size limit", ErrStringTooLarge)
		}
		v.charge(L, "input:read", int64(len(piece)))
		buf = append(buf, piece...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			v.raise(L, "input:read: "+err.Error(), err)
		}
		if len(buf) == 0 {
			return nil, false
		}
		return bytes.TrimSuffix(buf, []byte("\n")), true
	}
}
