package lua

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// The json module has lua-cjson's API, as OpenResty bundles it: it is the
// global json and also what require("cjson") and require("json") return;
// require("cjson.safe") gives the variant that returns nil and the error
// message instead of raising. Its behaviour follows cjson's defaults:
//
//   - json.encode: nil and json.null are null; numbers are written like
//     tostring ("%.14g"), and NaN or infinity is an error; strings escape
//     '"', '\', '/' and control characters, and keep other bytes as they
//     are; a table whose keys are all positive integers is an array (holes
//     become null), unless it is excessively sparse (its largest index
//     over 10 and over twice its number of items), which is an error as
//     in cjson; any other table is an object, whose number keys become
//     strings and whose keys are written sorted (cjson leaves them in
//     table order); an empty table is {}, except json.empty_array and
//     tables with the json.array_mt metatable, which are [];
//     functions, threads and userdata are errors; nesting deeper than
//     1000 is an error.
//   - json.decode: objects and arrays become tables, null becomes
//     json.null, numbers become Lua numbers (a double: integers beyond
//     2^53 lose precision, as in cjson); \u escapes, surrogate pairs
//     included, become UTF-8; nesting deeper than 1000 is an error.
//     Arrays get the json.array_mt metatable, as OpenResty's cjson does
//     with decode_array_with_array_mt(true), so that an empty array
//     encodes back as [] rather than {}.
//
// cjson's configuration functions (encode_sparse_array, ...) change a
// module-wide setting that would outlive the call that made it, so they
// are not offered.

const jsonMaxDepth = 1000

// jsonNull is json.null's value.
type jsonNull struct{}

// jsonModule builds the module table; safe selects cjson.safe's error
// convention.
func (v *vm) jsonModule(L *lua.LState, null, emptyArray *lua.LUserData, arrayMT *lua.LTable, safe bool) *lua.LTable {
	m := L.NewTable()
	encode := func(L *lua.LState) int {
		e := jsonEncoder{v: v, L: L, null: null, emptyArray: emptyArray, arrayMT: arrayMT, b: v.builder(L, "json.encode")}
		if msg := e.encode(L.CheckAny(1), 0); msg != "" {
			return jsonFail(L, safe, msg)
		}
		L.Push(lua.LString(e.b.String()))
		return 1
	}
	decode := func(L *lua.LState) int {
		s := L.CheckString(1)
		// Decoded values take about as much as their text, plus tables.
		v.charge(L, "json.decode", 2*int64(len(s)))
		d := jsonDecoder{L: L, s: s, null: null, arrayMT: arrayMT}
		val, msg := d.decode()
		if msg != "" {
			return jsonFail(L, safe, msg)
		}
		L.Push(val)
		return 1
	}
	m.RawSetString("encode", L.NewFunction(encode))
	m.RawSetString("decode", L.NewFunction(decode))
	m.RawSetString("null", null)
	m.RawSetString("empty_array", emptyArray)
	m.RawSetString("array_mt", arrayMT)
	m.RawSetString("_NAME", lua.LString("cjson"))
	m.RawSetString("_VERSION", lua.LString("2.1.0"))
	return m
}

// openJSON installs the json module: the global json, and cjson, json and
// cjson.safe for require.
func (v *vm) openJSON(L *lua.LState, g *lua.LTable) {
	null := L.NewUserData()
	null.Value = jsonNull{}
	emptyArray := L.NewUserData()
	emptyArray.Value = jsonNull{}
	// array_mt is only a mark; a read-only view (see isolation), so that
	// no call can change what every decoded array shares.
	arrayMT := v.iso.view(L, L.NewTable())
	m := v.jsonModule(L, null, emptyArray, arrayMT, false)
	g.RawSetString("json", m)
	v.loaded.RawSetString("json", m)
	v.loaded.RawSetString("cjson", m)
	v.loaded.RawSetString("cjson.safe", v.jsonModule(L, null, emptyArray, arrayMT, true))
}

// jsonFail raises msg, or with safe returns nil and msg.
func jsonFail(L *lua.LState, safe bool, msg string) int {
	if !safe {
		L.RaiseError("%s", msg)
	}
	L.Push(lua.LNil)
	L.Push(lua.LString(msg))
	return 2
}

type jsonEncoder struct {
	v          *vm
	L          *lua.LState
	null       *lua.LUserData
	emptyArray *lua.LUserData
	arrayMT    *lua.LTable
	b          *builder
}

// encode writes val; it returns cjson's message for what cannot be
// encoded, or "".
func (e *jsonEncoder) encode(val lua.LValue, depth int) string {
	switch x := val.(type) {
	case *lua.LNilType:
		e.b.add("null")
	case lua.LBool:
		if x {
			e.b.add("true")
		} else {
			e.b.add("false")
		}
	case lua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "Cannot serialise number: must not be NaN or Infinity"
		}
		e.b.add(formatNumber(x))
	case lua.LString:
		e.str(string(x))
	case *lua.LUserData:
		switch x {
		case e.null:
			e.b.add("null")
		case e.emptyArray:
			e.b.add("[]")
		default:
			return "Cannot serialise userdata: type not supported"
		}
	case *lua.LTable:
		if depth >= jsonMaxDepth {
			return fmt.Sprintf("Cannot serialise, excessive nesting (%d)", depth+1)
		}
		interrupted(e.L)
		return e.table(x, depth+1)
	default:
		return fmt.Sprintf("Cannot serialise %s: type not supported", val.Type())
	}
	return ""
}

func (e *jsonEncoder) table(t *lua.LTable, depth int) string {
	n, isArray, msg := jsonArrayLength(t)
	if msg != "" {
		return msg
	}
	if isArray && (n > 0 || e.L.GetMetatable(t) == e.arrayMT) {
		e.b.add("[")
		for i := 1; i <= n; i++ {
			if i > 1 {
				e.b.add(",")
			}
			if msg := e.encode(t.RawGetInt(i), depth); msg != "" {
				return msg
			}
		}
		e.b.add("]")
		return ""
	}
	type field struct {
		key string
		val lua.LValue
	}
	var fields []field
	var bad string
	t.ForEach(func(k, val lua.LValue) {
		switch kk := k.(type) {
		case lua.LString:
			fields = append(fields, field{string(kk), val})
		case lua.LNumber:
			fields = append(fields, field{formatNumber(kk), val})
		default:
			bad = "Cannot serialise table: table key must be a number or string"
		}
	})
	if bad != "" {
		return bad
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
	e.b.add("{")
	for i, f := range fields {
		if i > 0 {
			e.b.add(",")
		}
		e.str(f.key)
		e.b.add(":")
		if msg := e.encode(f.val, depth); msg != "" {
			return msg
		}
	}
	e.b.add("}")
	return ""
}

// jsonArrayLength tells whether t's keys are all positive integers and
// its largest one; an excessively sparse array is cjson's error.
func jsonArrayLength(t *lua.LTable) (n int, isArray bool, msg string) {
	items := 0
	isArray = true
	t.ForEach(func(k, _ lua.LValue) {
		num, ok := k.(lua.LNumber)
		if !ok || float64(num) != math.Floor(float64(num)) || num < 1 || float64(num) > math.MaxInt32 {
			isArray = false
			return
		}
		items++
		n = max(n, int(num))
	})
	if !isArray {
		return 0, false, ""
	}
	if n > 10 && n > 2*items {
		return 0, false, "Cannot serialise table: excessively sparse array"
	}
	return n, true, ""
}

const jsonHex = "0123456789abcdef"

// str writes s quoted, escaped as cjson does.
func (e *jsonEncoder) str(s string) {
	e.b.reserve(len(s) + 2)
	e.b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch {
		case c == '"':
			esc = `\"`
		case c == '\\':
			esc = `\\`
		case c == '/':
			esc = `\/`
		case c == '\n':
			esc = `\n`
		case c == '\r':
			esc = `\r`
		case c == '\t':
			esc = `\t`
		case c == '\b':
			esc = `\b`
		case c == '\f':
			esc = `\f`
		case c < 0x20 || c == 0x7f:
			esc = `\u00` + string(jsonHex[c>>4]) + string(jsonHex[c&15])
		default:
			continue
		}
		e.b.add(s[start:i])
		e.b.add(esc)
		start = i + 1
	}
	e.b.add(s[start:])
	e.b.add(`"`)
}

type jsonDecoder struct {
	L       *lua.LState
	s       string
	i       int
	depth   int
	null    *lua.LUserData
	arrayMT *lua.LTable
}

func (d *jsonDecoder) decode() (lua.LValue, string) {
	val, msg := d.value()
	if msg != "" {
		return nil, msg
	}
	d.space()
	if d.i < len(d.s) {
		return nil, d.expected("the end")
	}
	return val, ""
}

func (d *jsonDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// expected is cjson's message for an unexpected token at d.i.
func (d *jsonDecoder) expected(what string) string {
	found := "the end"
	if d.i < len(d.s) {
		found = "invalid token"
		switch c := d.s[d.i]; {
		case c == '{':
			found = "object"
		case c == '[':
			found = "array"
		case c == '"':
			found = "string"
		case c == '-' || c >= '0' && c <= '9':
			found = "number"
		case c == ',':
			found = "comma"
		case c == ':':
			found = "colon"
		case c == ']':
			found = "array end"
		case c == '}':
			found = "object end"
		}
	}
	return fmt.Sprintf("Expected %s but found %s at character %d", what, found, d.i+1)
}

func (d *jsonDecoder) value() (lua.LValue, string) {
	d.space()
	if d.i >= len(d.s) {
		return nil, d.expected("value")
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, msg := d.string()
		return lua.LString(s), msg
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return lua.LTrue, ""
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return lua.LFalse, ""
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
		return d.null, ""
	}
	return nil, d.expected("value")
}

func (d *jsonDecoder) nest() string {
	d.depth++
	if d.depth > jsonMaxDepth {
		return fmt.Sprintf("Found too many nested data structures (%d) at character %d", d.depth, d.i+1)
	}
	interrupted(d.L)
	return ""
}

func (d *jsonDecoder) object() (lua.LValue, string) {
	if msg := d.nest(); msg != "" {
		return nil, msg
	}
	d.i++ // {
	t := d.L.NewTable()
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return t, ""
	}
	for {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.expected("object key string")
		}
		key, msg := d.string()
		if msg != "" {
			return nil, msg
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.expected("colon")
		}
		d.i++
		val, msg := d.value()
		if msg != "" {
			return nil, msg
		}
		t.RawSetString(key, val)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			d.depth--
			return t, ""
		}
		return nil, d.expected("comma or object end")
	}
}

func (d *jsonDecoder) array() (lua.LValue, string) {
	if msg := d.nest(); msg != "" {
		return nil, msg
	}
	d.i++ // [
	t := d.L.NewTable()
	t.Metatable = d.arrayMT
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return t, ""
	}
	for n := 1; ; n++ {
		val, msg := d.value()
		if msg != "" {
			return nil, msg
		}
		t.RawSetInt(n, val)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			d.depth--
			return t, ""
		}
		return nil, d.expected("comma or array end")
	}
}

func (d *jsonDecoder) number() (lua.LValue, string) {
	start := d.i
	for d.i < len(d.s) && strings.IndexByte("+-0123456789.eE", d.s[d.i]) >= 0 {
		d.i++
	}
	text := d.s[start:d.i]
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !isRangeError(err) || !jsonNumberSyntax(text) {
		d.i = start
		return nil, d.expected("value")
	}
	return lua.LNumber(f), ""
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// jsonNumberSyntax checks JSON's number grammar, stricter than
// ParseFloat's (no leading '+', no "1.", no hexadecimal, no leading 0).
func jsonNumberSyntax(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// string reads a JSON string at d.i (its opening quote).
func (d *jsonDecoder) string() (string, string) {
	d.i++
	var b strings.Builder
	start := d.i
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			b.WriteString(d.s[start:d.i])
			d.i++
			return b.String(), ""
		case c < 0x20:
			return "", d.expected("string end")
		case c != '\\':
			d.i++
			continue
		}
		b.WriteString(d.s[start:d.i])
		d.i++
		if d.i >= len(d.s) {
			break
		}
		switch e := d.s[d.i]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := d.unicode()
			if !ok {
				return "", fmt.Sprintf("Expected value but found invalid unicode escape code at character %d", d.i+1)
			}
			b.WriteRune(r)
			d.i-- // unicode left d.i after the escape
		default:
			return "", fmt.Sprintf("Expected value but found invalid escape code at character %d", d.i+1)
		}
		d.i++
		start = d.i
	}
	return "", d.expected("string end")
}

// unicode reads \uXXXX (d.i at the u), with a following low surrogate
// when the first is a high one, and leaves d.i after it.
func (d *jsonDecoder) unicode() (rune, bool) {
	hex4 := func(at int) (rune, bool) {
		if at+4 > len(d.s) {
			return 0, false
		}
		n, err := strconv.ParseUint(d.s[at:at+4], 16, 16)
		return rune(n), err == nil
	}
	r, ok := hex4(d.i + 1)
	if !ok {
		return 0, false
	}
	d.i += 5
	if !utf16.IsSurrogate(r) {
		return r, true
	}
	if r >= 0xdc00 || !strings.HasPrefix(d.s[d.i:], `\u`) {
		return 0, false // a lone or reversed surrogate
	}
	lo, ok := hex4(d.i + 2)
	if !ok || lo < 0xdc00 || lo > 0xdfff {
		return 0, false
	}
	d.i += 6
	r = utf16.DecodeRune(r, lo)
	return r, r != utf8.RuneError
}
