package lua

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// openLibs opens the safe standard libraries and replaces the functions
// the engine does differently (see the package comment).
func (v *vm) openLibs() {
	L := v.L
	libs := []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
		{lua.OsLibName, lua.OpenOs},
		{lua.DebugLibName, lua.OpenDebug},
	}
	for _, lib := range libs {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	loaded := L.G.Registry.RawGetString("_LOADED").(*lua.LTable)
	v.loaded = loaded
	set := func(t *lua.LTable, name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }
	lib := func(name string) *lua.LTable { return g.RawGetString(name).(*lua.LTable) }

	for _, name := range []string{"dofile", "loadfile", "module", "_printregs"} {
		g.RawSetString(name, lua.LNil)
	}
	set(g, "print", v.basePrint)
	set(g, "tostring", baseTostring)
	set(g, "tonumber", baseTonumber)
	set(g, "load", v.baseLoad)
	set(g, "loadstring", v.baseLoadString)
	set(g, "collectgarbage", baseCollectGarbage)
	set(g, "require", v.require)
	pkg := L.NewTable()
	pkg.RawSetString("loaded", loaded)
	pkg.RawSetString("preload", L.NewTable())
	g.RawSetString("package", pkg)
	loaded.RawSetString("package", pkg)

	osLib := lib("os")
	for _, name := range []string{"execute", "exit", "getenv", "remove", "rename", "setenv", "setlocale", "tmpname"} {
		osLib.RawSetString(name, lua.LNil)
	}
	dbg := L.NewTable()
	dbg.RawSetString("traceback", lib("debug").RawGetString("traceback"))
	g.RawSetString("debug", dbg)
	loaded.RawSetString("debug", dbg)

	str := lib("string")
	set(str, "rep", v.strRep)
	set(str, "format", v.strFormat)
	set(str, "char", v.strChar)
	set(str, "gsub", v.strGsub)
	set(str, "gmatch", strGmatch)
	set(str, "find", strFind)
	set(str, "match", strMatch)
	for _, name := range []string{"upper", "lower", "reverse"} {
		set(str, name, v.chargedLen("string."+name, str.RawGetString(name).(*lua.LFunction).GFunction))
	}
	set(lib("table"), "concat", v.tableConcat)

	v.openCoroutines(lib("coroutine"))
	v.openJSON(L, g)
	v.openEnv(g)
	v.openIsolation(g)
}

func baseTostring(L *lua.LState) int {
	L.CheckAny(1)
	L.Push(lua.LString(tostring(L, L.Get(1))))
	return 1
}

// baseTonumber is Lua 5.1's tonumber: strtod's syntax ("1e15", " 0x1A ",
// "inf"), where gopher-lua's refuses exponents without a dot.
func baseTonumber(L *lua.LState) int {
	val := L.CheckAny(1)
	if b := L.Get(2); b == lua.LNil || b == lua.LNumber(10) {
		switch x := val.(type) {
		case lua.LNumber:
			L.Push(x)
		case lua.LString:
			if n, ok := str2number(string(x)); ok {
				L.Push(n)
			} else {
				L.Push(lua.LNil)
			}
		default:
			L.Push(lua.LNil)
		}
		return 1
	}
	base := L.CheckInt(2)
	if base < 2 || base > 36 {
		L.ArgError(2, "base out of range")
	}
	s := strings.ToLower(strings.Trim(L.CheckString(1), cSpace))
	neg := strings.HasPrefix(s, "-")
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "-"), base, 64)
	if err != nil {
		L.Push(lua.LNil)
		return 1
	}
	if neg {
		L.Push(-lua.LNumber(n))
	} else {
		L.Push(lua.LNumber(n))
	}
	return 1
}

// cSpace is C's isspace.
const cSpace = " \t\n\v\f\r"

// str2number converts like Lua 5.1 (strtod, then hexadecimal integers,
// surrounding spaces allowed).
func str2number(s string) (lua.LNumber, bool) {
	s = strings.Trim(s, cSpace)
	if s == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err == nil || !strings.ContainsAny(s, "_") {
			return lua.LNumber(f), true
		}
	}
	body, neg := s, false
	if body[0] == '-' || body[0] == '+' {
		neg, body = body[0] == '-', body[1:]
	}
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		if n, err := strconv.ParseUint(body[2:], 16, 64); err == nil {
			if neg {
				return -lua.LNumber(n), true
			}
			return lua.LNumber(n), true
		}
	}
	return 0, false
}

func (v *vm) basePrint(L *lua.LState) int {
	n := L.GetTop()
	parts := make([]string, n)
	for i := range parts {
		parts[i] = tostring(L, L.Get(i+1))
	}
	v.print(strings.Join(parts, "\t"))
	return 0
}

// baseLoad is load(func [, chunkname]), also accepting a string.
func (v *vm) baseLoad(L *lua.LState) int {
	var src []byte
	switch x := L.Get(1).(type) {
	case lua.LString:
		src = []byte(x)
	case *lua.LFunction:
		for {
			L.Push(x)
			L.Call(0, 1)
			piece := L.Get(-1)
			L.Pop(1)
			if piece == lua.LNil {
				break
			}
			s, ok := piece.(lua.LString)
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("reader function must return a string"))
				return 2
			}
			if s == "" {
				break
			}
			v.reserve(L, "load: chunk", int64(len(src)+len(s)), int64(len(s)))
			src = append(src, s...)
		}
	default:
		L.TypeError(1, lua.LTFunction)
	}
	return v.loadChunk(L, src, chunkName(L.OptString(2, "=(load)"), src))
}

func (v *vm) baseLoadString(L *lua.LState) int {
	src := L.CheckString(1)
	return v.loadChunk(L, []byte(src), chunkName(L.OptString(2, src), []byte(src)))
}

// chunkName shows a chunk name like Lua 5.1: "=name" and "@name" as name,
// source text as [string "first line..."].
func chunkName(name string, src []byte) string {
	if strings.HasPrefix(name, "=") || strings.HasPrefix(name, "@") {
		return name[1:]
	}
	first, _, more := strings.Cut(name, "\n")
	if len(first) > 40 {
		first, more = first[:40], true
	}
	if more {
		first += "..."
	}
	return `[string "` + first + `"]`
}

func (v *vm) loadChunk(L *lua.LState, src []byte, name string) int {
	proto, err := v.eng.comp.compile(src, name)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(luaMessage(err)))
		return 2
	}
	L.Push(L.NewFunctionFromProto(proto))
	return 1
}

// luaMessage is an error as Lua code sees it: "chunk:line: message".
func luaMessage(err error) string {
	var se *api.ScriptError
	if errors.As(err, &se) && se.File != "" {
		return se.File + ":" + strconv.Itoa(se.Line) + ": " + se.Msg
	}
	return err.Error()
}

// baseCollectGarbage leaves collection to Go's GC: a script cannot stop
// the process to collect. "count" reports the process heap in KiB.
func baseCollectGarbage(L *lua.LState) int {
	switch L.OptString(1, "collect") {
	case "count":
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		kb := 0.0
		if s[0].Value.Kind() == metrics.KindUint64 {
			kb = float64(s[0].Value.Uint64()) / 1024
		}
		L.Push(lua.LNumber(kb))
	case "step":
		L.Push(lua.LFalse)
	default:
		L.Push(lua.LNumber(0))
	}
	return 1
}

// require loads module name from the scripts directory (see modules),
// once per state.
func (v *vm) require(L *lua.LState) int {
	name := L.CheckString(1)
	if res := v.loaded.RawGetString(name); res != lua.LNil {
		if res == v.mark {
			L.RaiseError("loop or previous error loading module '%s'", name)
		}
		L.Push(res)
		return 1
	}
	var fn lua.LValue
	if pre, ok := L.GetField(L.GetGlobal("package"), "preload").(*lua.LTable); ok {
		if f, ok := pre.RawGetString(name).(*lua.LFunction); ok {
			fn = f
		}
	}
	if fn == nil {
		proto, err := v.mods.find(name)
		if err != nil {
			L.RaiseError("%s", luaMessage(err))
		}
		fn = L.NewFunctionFromProto(proto)
	}
	v.loaded.RawSetString(name, v.mark)
	done := false
	defer func() {
		if !done { // the error goes on; a later require may retry
			v.loaded.RawSetString(name, lua.LNil)
		}
	}()
	L.Push(fn)
	L.Push(lua.LString(name))
	L.Call(1, 1)
	res := L.Get(-1)
	L.Pop(1)
	if res == lua.LNil {
		if set := v.loaded.RawGetString(name); set != v.mark && set != lua.LNil {
			res = set // the module set package.loaded[name] itself
		} else {
			res = lua.LTrue
		}
	}
	v.loaded.RawSetString(name, res)
	done = true
	L.Push(res)
	return 1
}

// modules finds and compiles the modules of a scripts directory, each
// once: the program's files are added up front, others are read on the
// first require, through an os.Root so that no name reaches outside the
// directory.
type modules struct {
	comp   *compiler
	dir    string
	mu     sync.Mutex
	protos map[string]*lua.FunctionProto // by path relative to dir
}

func newModules(c *compiler, dir string) *modules {
	return &modules{comp: c, dir: dir, protos: map[string]*lua.FunctionProto{}}
}

func (m *modules) add(rel string, p *lua.FunctionProto) {
	m.mu.Lock()
	m.protos[rel] = p
	m.mu.Unlock()
}

// validModuleName accepts dotted names of letters, digits, '_' and '-'.
func validModuleName(name string) bool {
	for part := range strings.SplitSeq(name, ".") {
		if part == "" {
			return false
		}
		for _, c := range []byte(part) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// find returns module name ("a.b": a/b.lua, else a/b/init.lua).
func (m *modules) find(name string) (*lua.FunctionProto, error) {
	if !validModuleName(name) {
		return nil, fmt.Errorf("module '%s' refused: module names are dotted names of files in the scripts directory", name)
	}
	base := strings.ReplaceAll(name, ".", "/")
	candidates := []string{base + ".lua", base + "/init.lua"}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range candidates {
		if p := m.protos[c]; p != nil {
			return p, nil
		}
	}
	if m.dir == "" {
		return nil, fmt.Errorf("module '%s' not found: no scripts directory", name)
	}
	root, err := os.OpenRoot(m.dir)
	if err != nil {
		return nil, fmt.Errorf("module '%s': %w", name, err)
	}
	defer root.Close()
	for _, c := range candidates {
		src, err := root.ReadFile(c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("module '%s': %w", name, err)
		}
		p, err := m.comp.compile(src, c)
		if err != nil {
			return nil, err
		}
		m.protos[c] = p
		return p, nil
	}
	return nil, fmt.Errorf("module '%s' not found: no %s or %s in the scripts directory", name, candidates[0], candidates[1])
}

// strRep is string.rep under the string size limit.
func (v *vm) strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := float64(L.CheckNumber(2))
	if n < 1 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	size := saturate(n * float64(len(s)))
	v.reserve(L, "string.rep", size, size)
	L.Push(lua.LString(strings.Repeat(s, int(n))))
	return 1
}

// tableConcat is table.concat with numbers formatted like Lua 5.1.
func (v *vm) tableConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := ""
	if L.Get(2) != lua.LNil {
		s, ok := stringOf(L.Get(2))
		if !ok {
			L.TypeError(2, lua.LTString)
		}
		sep = s
	}
	i := L.OptInt(3, 1)
	j := t.Len()
	if L.Get(4) != lua.LNil {
		j = L.CheckInt(4)
	}
	if i > j {
		L.Push(lua.LString(""))
		return 1
	}
	// The result's size first (numbers at their longest), so that it is
	// refused or charged before it is built.
	size := int64(len(sep)) * int64(j-i)
	for k := i; k <= j; k++ {
		switch x := t.RawGetInt(k).(type) {
		case lua.LString:
			size += int64(len(x))
		case lua.LNumber:
			size += maxNumberLen
		default:
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
	}
	v.reserve(L, "table.concat", size, size)
	var b strings.Builder
	b.Grow(int(size))
	for k := i; k <= j; k++ {
		s, _ := stringOf(t.RawGetInt(k))
		b.WriteString(s)
		if k < j {
			b.WriteString(sep)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// strFormat is string.format with C's conversions: %s formats numbers
// like tostring, %g defaults to precision 6, %q quotes like Lua 5.1, and
// widths and precisions have at most two digits.
func (v *vm) strFormat(L *lua.LState) int {
	f := L.CheckString(1)
	top := L.GetTop()
	arg := 1
	b := v.builder(L, "string.format")
	b.reserve(len(f)) // the text between conversions
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			b.WriteByte('%')
			continue
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		if i-start > 5 {
			L.RaiseError("invalid format (repeated flags)")
		}
		flags := f[start:i]
		var width string
		width, i = digits(L, f, i)
		prec, hasPrec := "", false
		if i < len(f) && f[i] == '.' {
			prec, i = digits(L, f, i+1)
			hasPrec = true
		}
		if i >= len(f) {
			L.RaiseError("invalid option '%%' to 'format'")
		}
		conv := f[i]
		arg++
		if arg > top {
			L.RaiseError("bad argument #%d to 'format' (no value)", arg)
		}
		spec := "%" + flags + width
		if hasPrec {
			spec += "." + prec
		}
		b.reserve(maxConversion)
		switch conv {
		case 'c':
			b.WriteByte(byte(int64(L.CheckNumber(arg))))
		case 'd', 'i':
			fmt.Fprintf(b, spec+"d", int64(L.CheckNumber(arg)))
		case 'o', 'u', 'x', 'X':
			verb := string(conv)
			if conv == 'u' {
				verb = "d"
			}
			n := int64(L.CheckNumber(arg))
			if n < 0 { // C prints the unsigned long
				fmt.Fprintf(b, spec+verb, uint64(n))
			} else {
				fmt.Fprintf(b, spec+verb, n)
			}
		case 'e', 'E', 'f', 'g', 'G':
			x := float64(L.CheckNumber(arg))
			if math.IsInf(x, 0) || math.IsNaN(x) {
				pad(&b.Builder, formatNumber(lua.LNumber(x)), width, strings.Contains(flags, "-"))
				break
			}
			if !hasPrec {
				spec += ".6"
			}
			fmt.Fprintf(b, spec+string(conv), x)
		case 'q':
			s := L.CheckString(arg)
			b.reserve(2*len(s) + 2)
			quote(&b.Builder, s)
		case 's':
			s := tostring(L, L.Get(arg))
			if hasPrec {
				if p, _ := strconv.Atoi("0" + prec); p < len(s) {
					s = s[:p]
				}
			}
			b.reserve(max(len(s), maxWidth))
			pad(&b.Builder, s, width, strings.Contains(flags, "-"))
		default:
			L.RaiseError("invalid option '%%%c' to 'format'", conv)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// maxWidth bounds a format's width and precision (two digits);
// maxConversion bounds what a conversion of a number writes (%99.99f of
// 1e308 is 409 bytes).
const (
	maxWidth      = 99
	maxConversion = 512
)

// digits reads at most two digits of a format at i.
func digits(L *lua.LState, f string, i int) (string, int) {
	start := i
	for i < len(f) && f[i] >= '0' && f[i] <= '9' {
		i++
	}
	if i-start > 2 {
		L.RaiseError("invalid format (width or precision too long)")
	}
	return f[start:i], i
}

func pad(b *strings.Builder, s, width string, left bool) {
	w, _ := strconv.Atoi("0" + width)
	fill := strings.Repeat(" ", max(0, w-len(s)))
	if left {
		b.WriteString(s)
		b.WriteString(fill)
		return
	}
	b.WriteString(fill)
	b.WriteString(s)
}

// quote is Lua 5.1's %q.
func quote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '\n':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\000`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// concat implements `..` (see compiler): Lua 5.1's right-to-left
// concatenation with numbers as "%.14g", __concat metamethods, the string
// size limit and the result charged to the call.
func (e *Engine) concat(L *lua.LState) int {
	n := L.GetTop()
	v := vmOf(L)
	reserve := func(total, add int64) {
		if v != nil {
			v.reserve(L, "string concatenation", total, add)
		} else if total > int64(e.opts.MaxStringSize) {
			L.RaiseError("string concatenation over the %d byte limit", e.opts.MaxStringSize)
		}
	}
	simple := true
	var size int64 // at most the result's
	for i := 1; i <= n; i++ {
		switch x := L.Get(i).(type) {
		case lua.LString:
			size += int64(len(x))
		case lua.LNumber:
			size += maxNumberLen
		default:
			simple = false
		}
	}
	if simple {
		reserve(size, size)
		var b strings.Builder
		b.Grow(int(size))
		for i := 1; i <= n; i++ {
			s, _ := stringOf(L.Get(i))
			b.WriteString(s)
		}
		L.Push(lua.LString(b.String()))
		return 1
	}
	acc := L.Get(n)
	for i := n - 1; i >= 1; i-- {
		lhs := L.Get(i)
		ls, lok := stringOf(lhs)
		rs, rok := stringOf(acc)
		if lok && rok {
			size := int64(len(ls) + len(rs))
			reserve(size, size)
			acc = lua.LString(ls + rs)
			continue
		}
		h := L.GetMetaField(lhs, "__concat")
		if h == lua.LNil {
			h = L.GetMetaField(acc, "__concat")
		}
		if h == lua.LNil {
			bad := lhs
			if lok {
				bad = acc
			}
			L.RaiseError("attempt to concatenate a %s value", bad.Type().String())
		}
		L.Push(h)
		L.Push(lhs)
		L.Push(acc)
		L.Call(2, 1)
		acc = L.Get(-1)
		L.Pop(1)
	}
	L.Push(acc)
	return 1
}
