package lua

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.1's pattern matching, for string.find, match, gmatch and gsub.
// gopher-lua's matcher compiles patterns to a virtual machine that
// recurses once per character a repetition takes, and gives up with
// "pattern/input too complex" on long subjects (a 1 MB form matched with
// "(.-)&"). This one works as Lua 5.1's own does: a repetition of a single
// character class is a loop, and recursion only goes as deep as the
// pattern has items. Backtracking can still take long on hostile
// patterns, so the matcher looks at the call's context as it goes.

const (
	patMaxCaptures = 32  // LUA_MAXCAPTURES
	patMaxDepth    = 200 // pattern items deep, as Lua 5.2's MAXCCALLS
	patCheckSteps  = 1 << 16
	capUnfinished  = -1
	capPosition    = -2
)

type patCapture struct{ start, len int }

// patMatch is one search of pattern pat in subject src.
type patMatch struct {
	L        *lua.LState
	src, pat string
	level    int // captures opened so far
	capture  [patMaxCaptures]patCapture
	depth    int
	steps    int
}

func newPatMatch(L *lua.LState, src, pat string) *patMatch {
	return &patMatch{L: L, src: src, pat: pat}
}

func (m *patMatch) error(msg string) { m.L.RaiseError("%s", msg) }

// tick counts work and looks at the call's context now and then.
func (m *patMatch) tick() {
	m.steps++
	if m.steps%patCheckSteps == 0 {
		interrupted(m.L)
	}
}

// classEnd returns the index just past the single-character class at p.
func (m *patMatch) classEnd(p int) int {
	pat := m.pat
	c := pat[p]
	p++
	switch c {
	case '%':
		if p >= len(pat) {
			m.error("malformed pattern (ends with '%')")
		}
		return p + 1
	case '[':
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		// The first character of a set may be ']' itself.
		for {
			if p >= len(pat) {
				m.error("malformed pattern (missing ']')")
			}
			c := pat[p]
			p++
			if c == '%' && p < len(pat) {
				p++ // an escape such as %]
			}
			if p < len(pat) && pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

// matchClass reports whether c is in class cl (the letter after '%').
func matchClass(c, cl byte) bool {
	var res bool
	lower := cl | 0x20
	switch lower {
	case 'a':
		res = isAlpha(c)
	case 'c':
		res = c < 0x20 || c == 0x7f
	case 'd':
		res = c >= '0' && c <= '9'
	case 'l':
		res = c >= 'a' && c <= 'z'
	case 'p':
		res = isPunct(c)
	case 's':
		res = c == ' ' || c >= '\t' && c <= '\r'
	case 'u':
		res = c >= 'A' && c <= 'Z'
	case 'w':
		res = isAlpha(c) || c >= '0' && c <= '9'
	case 'x':
		res = c >= '0' && c <= '9' || lower2(c) >= 'a' && lower2(c) <= 'f'
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if cl >= 'A' && cl <= 'Z' {
		return !res
	}
	return res
}

func lower2(c byte) byte { return c | 0x20 }

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isPunct(c byte) bool {
	return c > 0x20 && c < 0x7f && !isAlpha(c) && !(c >= '0' && c <= '9')
}

// matchBracket reports whether c is in the set [...] from p (at '[') to
// ec (at ']').
func (m *patMatch) matchBracket(c byte, p, ec int) bool {
	pat := m.pat
	sig := true
	p++
	if pat[p] == '^' {
		sig = false
		p++
	}
	for ; p < ec; p++ {
		switch {
		case pat[p] == '%':
			p++
			if matchClass(c, pat[p]) {
				return sig
			}
		case p+2 < ec && pat[p+1] == '-':
			if pat[p] <= c && c <= pat[p+2] {
				return sig
			}
			p += 2
		case pat[p] == c:
			return sig
		}
	}
	return !sig
}

// singleMatch reports whether the subject byte at s matches the class
// from p to ep.
func (m *patMatch) singleMatch(s, p, ep int) bool {
	if s >= len(m.src) {
		return false
	}
	c := m.src[s]
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return matchClass(c, m.pat[p+1])
	case '[':
		return m.matchBracket(c, p, ep-1)
	}
	return m.pat[p] == c
}

// match matches the pattern from p at subject position s and returns the
// end of the match, or -1.
func (m *patMatch) match(s, p int) int {
	m.depth++
	if m.depth > patMaxDepth {
		m.error("pattern too complex")
	}
	defer func() { m.depth-- }()
	pat := m.pat
	for {
		m.tick()
		if p >= len(pat) {
			return s
		}
		switch pat[p] {
		case '(':
			if p+1 < len(pat) && pat[p+1] == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinished)
		case ')':
			return m.endCapture(s, p+1)
		case '%':
			if p+1 < len(pat) {
				switch c := pat[p+1]; {
				case c == 'b':
					if s = m.matchBalance(s, p+2); s == -1 {
						return -1
					}
					p += 4
					continue
				case c == 'f':
					p += 2
					if p >= len(pat) || pat[p] != '[' {
						m.error("missing '[' after '%f' in pattern")
					}
					ep := m.classEnd(p)
					var prev, cur byte
					if s > 0 {
						prev = m.src[s-1]
					}
					if s < len(m.src) {
						cur = m.src[s]
					}
					if m.matchBracket(prev, p, ep-1) || !m.matchBracket(cur, p, ep-1) {
						return -1
					}
					p = ep
					continue
				case c >= '0' && c <= '9':
					if s = m.matchCapture(s, c); s == -1 {
						return -1
					}
					p += 2
					continue
				}
			}
		case '$':
			if p+1 == len(pat) {
				if s == len(m.src) {
					return s
				}
				return -1
			}
		}
		ep := m.classEnd(p)
		var rep byte
		if ep < len(pat) {
			rep = pat[ep]
		}
		switch rep {
		case '?':
			if m.singleMatch(s, p, ep) {
				if res := m.match(s+1, ep+1); res != -1 {
					return res
				}
			}
			p = ep + 1
			continue
		case '*':
			return m.maxExpand(s, p, ep)
		case '+':
			if !m.singleMatch(s, p, ep) {
				return -1
			}
			return m.maxExpand(s+1, p, ep)
		case '-':
			return m.minExpand(s, p, ep)
		}
		if !m.singleMatch(s, p, ep) {
			return -1
		}
		s++
		p = ep
	}
}

// maxExpand takes as many repetitions as match, then gives them back one
// at a time until the rest of the pattern matches.
func (m *patMatch) maxExpand(s, p, ep int) int {
	i := 0
	for m.singleMatch(s+i, p, ep) {
		i++
	}
	for ; i >= 0; i-- {
		if res := m.match(s+i, ep+1); res != -1 {
			return res
		}
	}
	return -1
}

// minExpand takes as few repetitions as let the rest match.
func (m *patMatch) minExpand(s, p, ep int) int {
	for {
		if res := m.match(s, ep+1); res != -1 {
			return res
		}
		if !m.singleMatch(s, p, ep) {
			return -1
		}
		s++
	}
}

func (m *patMatch) startCapture(s, p, what int) int {
	if m.level >= patMaxCaptures {
		m.error("too many captures")
	}
	m.capture[m.level] = patCapture{start: s, len: what}
	m.level++
	res := m.match(s, p)
	if res == -1 {
		m.level--
	}
	return res
}

func (m *patMatch) endCapture(s, p int) int {
	l := -1
	for i := m.level - 1; i >= 0; i-- {
		if m.capture[i].len == capUnfinished {
			l = i
			break
		}
	}
	if l < 0 {
		m.error("invalid pattern capture")
	}
	m.capture[l].len = s - m.capture[l].start
	res := m.match(s, p)
	if res == -1 {
		m.capture[l].len = capUnfinished
	}
	return res
}

// matchBalance is %bxy at p (at x): a balanced run from x to y.
func (m *patMatch) matchBalance(s, p int) int {
	if p+1 >= len(m.pat) {
		m.error("unbalanced pattern")
	}
	if s >= len(m.src) || m.src[s] != m.pat[p] {
		return -1
	}
	open, close := m.pat[p], m.pat[p+1]
	depth := 1
	for s++; s < len(m.src); s++ {
		switch m.src[s] {
		case close:
			if depth--; depth == 0 {
				return s + 1
			}
		case open:
			depth++
		}
	}
	return -1
}

// matchCapture is a back reference %1-%9 at s.
func (m *patMatch) matchCapture(s int, c byte) int {
	l := int(c - '1')
	if l < 0 || l >= m.level || m.capture[l].len == capUnfinished {
		m.error("invalid capture index")
	}
	cp := m.capture[l]
	if cp.len < 0 { // a position capture: Lua 5.1 never matches it
		return -1
	}
	want := m.src[cp.start : cp.start+cp.len]
	if len(m.src)-s >= len(want) && m.src[s:s+len(want)] == want {
		return s + len(want)
	}
	return -1
}

// captureValue is capture i of a match from s to e: i 0 with no captures
// is the whole match, as in Lua 5.1.
func (m *patMatch) captureValue(i, s, e int) lua.LValue {
	if i >= m.level {
		if i != 0 {
			m.error("invalid capture index")
		}
		return lua.LString(m.src[s:e])
	}
	cp := m.capture[i]
	switch cp.len {
	case capUnfinished:
		m.error("unfinished capture")
	case capPosition:
		return lua.LNumber(cp.start + 1)
	}
	return lua.LString(m.src[cp.start : cp.start+cp.len])
}

// pushCaptures pushes the captures of a match from s to e (the whole
// match when there are none, if whole) and returns how many.
func (m *patMatch) pushCaptures(s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := 0; i < n; i++ {
		m.L.Push(m.captureValue(i, s, e))
	}
	return n
}

// matchAll is match for a whole search: a match that leaves a capture
// open is a malformed pattern.
func (m *patMatch) matchAll(s, p int) int {
	e := m.match(s, p)
	if e != -1 {
		for i := 0; i < m.level; i++ {
			if m.capture[i].len == capUnfinished {
				m.error("unfinished capture")
			}
		}
	}
	return e
}

// search finds the first match starting at or after init (at init only
// when anchored) and returns its bounds, or -1, -1.
func (m *patMatch) search(init int, p int, anchored bool) (start, end int) {
	for s := init; s <= len(m.src); s++ {
		m.level = 0
		if e := m.matchAll(s, p); e != -1 {
			return s, e
		}
		if anchored {
			break
		}
	}
	return -1, -1
}

// patSpecials are the characters that make a pattern more than plain
// text for string.find.
const patSpecials = "^$*+?.([%-"

// strFindAux is string.find (find true) and string.match (find false).
func strFindAux(L *lua.LState, find bool) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	init := L.OptInt(3, 1)
	switch {
	case init < 0:
		init = max(len(src)+init+1, 1)
	case init == 0:
		init = 1
	}
	if init > len(src)+1 {
		L.Push(lua.LNil)
		return 1
	}
	init-- // 0-based
	if find && (L.ToBool(4) || !strings.ContainsAny(pat, patSpecials)) {
		if i := indexFrom(src, pat, init); i >= 0 {
			L.Push(lua.LNumber(i + 1))
			L.Push(lua.LNumber(i + len(pat)))
			return 2
		}
		L.Push(lua.LNil)
		return 1
	}
	m := newPatMatch(L, src, pat)
	p, anchored := 0, len(pat) > 0 && pat[0] == '^'
	if anchored {
		p = 1
	}
	s, e := m.search(init, p, anchored)
	if s < 0 {
		L.Push(lua.LNil)
		return 1
	}
	if find {
		L.Push(lua.LNumber(s + 1))
		L.Push(lua.LNumber(e))
		return 2 + m.pushCaptures(-1, -1, false)
	}
	return m.pushCaptures(s, e, true)
}

func strFind(L *lua.LState) int  { return strFindAux(L, true) }
func strMatch(L *lua.LState) int { return strFindAux(L, false) }

// indexFrom is the byte index of sub in s at or after from, or -1.
func indexFrom(s, sub string, from int) int {
	if from > len(s) {
		return -1
	}
	if i := strings.Index(s[from:], sub); i >= 0 {
		return from + i
	}
	return -1
}
