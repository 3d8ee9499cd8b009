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

	lua "github.com/yuin/gopher-lua"

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

// gsubCheck is how many matches string.gsub replaces between looks at
// the call's context.
const gsubCheck = 256

// strGsub is Lua 5.1's string.gsub, building its result match by match:
// the result is checked against the string size limit and charged as it
// grows, and a long substitution can be interrupted. Replacement values
// that are numbers convert like Lua 5.1.
func (v *vm) strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	maxN := L.OptInt(4, len(src)+1)
	p, anchored := 0, len(pat) > 0 && pat[0] == '^'
	if anchored {
		p = 1
	}
	b := v.builder(L, "string.gsub")
	m := newPatMatch(L, src, pat)
	n := 0
	copied := 0 // src before copied is in b; after it, still to copy
	for s := 0; n < maxN; {
		m.level = 0
		e := m.matchAll(s, p)
		if e != -1 {
			n++
			if n%gsubCheck == 0 {
				interrupted(L)
			}
			b.add(src[copied:s])
			b.add(v.replacement(L, m, s, e, repl))
			copied = e
		}
		if e != -1 && e > s {
			s = e
		} else if s < len(src) {
			s++ // the character stays to be copied
		} else {
			break
		}
		if anchored {
			break
		}
	}
	b.add(src[copied:])
	if n == 0 {
		L.Push(L.Get(1))
	} else {
		L.Push(lua.LString(b.String()))
	}
	L.Push(lua.LNumber(n))
	return 2
}

// replacement is what string.gsub puts in place of the match from s to e.
func (v *vm) replacement(L *lua.LState, m *patMatch, s, e int, repl lua.LValue) string {
	var val lua.LValue
	switch r := repl.(type) {
	case lua.LString:
		return v.expand(L, m, s, e, string(r))
	case *lua.LTable:
		val = L.GetTable(r, m.captureValue(0, s, e))
	case *lua.LFunction:
		top := L.GetTop()
		L.Push(r)
		nargs := m.pushCaptures(s, e, true)
		L.Call(nargs, 1)
		val = L.Get(-1)
		L.SetTop(top)
	}
	if val == lua.LNil || val == lua.LFalse {
		return m.src[s:e]
	}
	str, ok := stringOf(val)
	if !ok {
		L.RaiseError("invalid replacement value (a %s)", val.Type().String())
	}
	return str
}

// expand is a replacement string with %0 replaced by the whole match,
// %1-%9 by captures and %x by x.
func (v *vm) expand(L *lua.LState, m *patMatch, s, e int, repl string) string {
	if strings.IndexByte(repl, '%') < 0 {
		return repl
	}
	b := v.builder(L, "string.gsub")
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' || i+1 == len(repl) {
			b.reserve(1)
			b.WriteByte(c)
			continue
		}
		i++
		c = repl[i]
		switch {
		case c == '0':
			b.add(m.src[s:e])
		case c >= '1' && c <= '9':
			str, _ := stringOf(m.captureValue(int(c-'1'), s, e))
			b.add(str)
		default:
			b.reserve(1)
			b.WriteByte(c)
		}
	}
	return b.String()
}

// strGmatch is string.gmatch: each call of the iterator finds the next
// match. The iterator needs no state argument.
func strGmatch(L *lua.LState) int {
	src, pat := L.CheckString(1), L.CheckString(2)
	// A leading '^' anchors the first match, as in Lua 5.4 (and as
	// gopher-lua did); Lua 5.1 took it literally.
	p, anchored := 0, len(pat) > 0 && pat[0] == '^'
	if anchored {
		p = 1
	}
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		m := newPatMatch(L, src, pat)
		for s := pos; s <= len(src); s++ {
			m.level = 0
			e := m.matchAll(s, p)
			if anchored {
				pos = len(src) + 1 // one try, at the start
			}
			if e != -1 {
				if !anchored {
					pos = e
					if e == s {
						pos++ // an empty match: go on one further
					}
				}
				return m.pushCaptures(s, e, true)
			}
			if anchored {
				break
			}
		}
		pos = len(src) + 1
		return 0
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
