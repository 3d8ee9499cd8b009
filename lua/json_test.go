package lua

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// jsonScript registers RPC functions over the json module for the tests.
const jsonScript = `
uwsgi.register_rpc("roundtrip", function(s) return json.encode(json.decode(s)) end)
uwsgi.register_rpc("encode", function(code) return json.encode(assert(loadstring("return " .. code))()) end)
uwsgi.register_rpc("decode_check", function(s, code)
  local v = json.decode(s)
  return tostring(assert(loadstring("local v = ...; return " .. code))(v))
end)
uwsgi.register_rpc("safe", function(s)
  local safe = require("cjson.safe")
  local v, err = safe.decode(s)
  return tostring(v) .. "|" .. tostring(err)
end)
uwsgi.register_rpc("patch", function()
  local ok1 = pcall(function() json.encode = nil end)
  local ok2 = pcall(function() require("cjson").decode = nil end)
  local ok3 = pcall(function() require("cjson.safe").null = 1 end)
  local ok4 = pcall(function() getmetatable(json.decode("[]")).__index = {} end)
  local ok5 = pcall(rawset, json.array_mt, "x", 1)
  return tostring(ok1) .. tostring(ok2) .. tostring(ok3) .. tostring(ok4) .. tostring(ok5) .. " " ..
    type(json.encode) .. type(require("cjson").decode) .. tostring(rawget(json.array_mt, "x"))
end)
uwsgi.register_rpc("aliases", function()
  return tostring(require("cjson") == json and require("json") == json and require("cjson.safe").null == json.null)
end)
`

// TestJSONRoundTripAgainstGo decodes each document with the module and
// with encoding/json, re-encodes it with the module, and checks that Go
// reads the same value back.
func TestJSONRoundTripAgainstGo(t *testing.T) {
	f := newFixture(t, map[string]string{"j.lua": jsonScript})
	f.mustLoad(Options{})
	corpus := []string{
		`null`, `true`, `false`, `0`, `-0`, `1`, `-1.5`, `3.25e10`, `1e-7`,
		`123456789012345`, `9007199254740993`, `1e300`, `-2.5E-3`,
		`""`, `"plain"`, `"quote \" backslash \\ slash \/ and / bare"`,
		`"\b\f\n\r\t"`, `"\u0000\u001f\u007f"`, `"\u00e9\u4e2d\ud83d\ude00"`, `"é中😀 raw UTF-8"`,
		`[]`, `{}`, `[1,2,3]`, `[1,null,3]`, `[[[]]]`, `{"a":{"b":{"c":[1,{"d":null}]}}}`,
		`{"z":1,"a":2,"m":[true,false,null]}`, `{"1":"string key that looks like a number"}`,
		`{"unicode \u00e9":"v","":"empty key"}`,
		`  {"spaces" : [ 1 , 2 ]}  `,
		`[0.1,0.2,0.30000000000000004,100000000000000000000]`,
	}
	for _, doc := range corpus {
		var want any
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("corpus %s: %v", doc, err)
		}
		out, err := f.rpc(context.Background(), "roundtrip", doc)
		if err != nil {
			t.Errorf("roundtrip %s: %v", doc, err)
			continue
		}
		var got any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Errorf("roundtrip %s gave invalid JSON %q: %v", doc, out, err)
			continue
		}
		if !jsonEquivalent(got, want) {
			t.Errorf("roundtrip %s = %s; Go reads %#v, want %#v", doc, out, got, want)
		}
	}
}

// jsonEquivalent compares decoded JSON values, numbers to the 14
// significant digits the module writes (cjson's precision).
func jsonEquivalent(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		d := x - y
		if d < 0 {
			d = -d
		}
		m := max(x, -x, y, -y)
		return d <= m*1e-13
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEquivalent(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !jsonEquivalent(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestJSONEncode(t *testing.T) {
	f := newFixture(t, map[string]string{"j.lua": jsonScript})
	f.mustLoad(Options{})
	tests := []struct {
		code, want, err string
	}{
		{`{1, 2, 3}`, `[1,2,3]`, ""},
		{`{b = 1, a = "x"}`, `{"a":"x","b":1}`, ""},
		{`{}`, `{}`, ""},
		{`json.empty_array`, `[]`, ""},
		{`setmetatable({}, json.array_mt)`, `[]`, ""},
		{`{json.null, false}`, `[null,false]`, ""},
		{`{[1] = "a", [3] = "c"}`, `["a",null,"c"]`, ""},
		{`{[2.5] = 1}`, `{"2.5":1}`, ""},
		{`{[20] = 1}`, ``, "excessively sparse array"},
		{`"a/b\n\1\127é"`, `"a\/b\n\u0001\u007fé"`, ""},
		{`0.1 + 0.2`, `0.3`, ""},
		{`1e15`, `1e+15`, ""},
		{`2^53`, `9.007199254741e+15`, ""},
		{`0/0`, ``, "must not be NaN or Infinity"},
		{`1/0`, ``, "must not be NaN or Infinity"},
		{`print`, ``, "Cannot serialise function"},
		{`{[{}] = 1}`, ``, "table key must be a number or string"},
		{`coroutine.create(print)`, ``, "type not supported"},
	}
	for _, tt := range tests {
		got, err := f.rpc(context.Background(), "encode", tt.code)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("encode(%s) = %q, %v; want an error with %q", tt.code, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("encode(%s) = %q, %v; want %q", tt.code, got, err, tt.want)
		}
	}
}

func TestJSONDecode(t *testing.T) {
	f := newFixture(t, map[string]string{"j.lua": jsonScript})
	f.mustLoad(Options{})
	tests := []struct {
		doc, check, want, err string
	}{
		{`{"a":[1,2,{"b":null}]}`, `v.a[3].b == json.null`, "true", ""},
		{`[1,2,3]`, `#v`, "3", ""},
		{`[]`, `getmetatable(v) == json.array_mt`, "true", ""},
		{`{"k":"v","k":"w"}`, `v.k`, "w", ""},
		{`"\ud83d\ude00"`, `#v`, "4", ""},
		{`9007199254740993`, `string.format("%.0f", v)`, "9007199254740992", ""},
		{`-0.5e1`, `v`, "-5", ""},
		{`{"a":1,}`, ``, ``, "Expected object key string"},
		{`[1 2]`, ``, ``, "Expected comma or array end"},
		{`01`, ``, ``, "Expected value but found number at character 1"},
		{`+1`, ``, ``, "Expected value"},
		{`"\ud800"`, ``, ``, "invalid unicode escape"},
		{`"\x"`, ``, ``, "invalid escape"},
		{"\"tab\there\"", ``, ``, "Expected string end"},
		{`"open`, ``, ``, "Expected string end"},
		{``, ``, ``, "Expected value but found the end"},
		{strings.Repeat("[", 1001) + strings.Repeat("]", 1001), ``, ``, "too many nested data structures"},
	}
	for _, tt := range tests {
		check := tt.check
		if check == "" {
			check = "v"
		}
		got, err := f.rpc(context.Background(), "decode_check", tt.doc, check)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("decode(%.40s) = %q, %v; want an error with %q", tt.doc, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("decode(%s): %s = %q, %v; want %q", tt.doc, check, got, err, tt.want)
		}
	}
	deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	if _, err := f.rpc(context.Background(), "roundtrip", deep); err != nil {
		t.Errorf("1000 levels (cjson's limit): %v", err)
	}
}

func TestJSONSafeAliasesAndReadOnly(t *testing.T) {
	f := newFixture(t, map[string]string{"j.lua": jsonScript})
	f.mustLoad(Options{})
	ctx := context.Background()
	if got, err := f.rpc(ctx, "safe", `[1,`); err != nil || !strings.HasPrefix(got, "nil|Expected value but found the end") {
		t.Errorf("cjson.safe.decode of bad input = %q, %v", got, err)
	}
	if got, err := f.rpc(ctx, "aliases"); err != nil || got != "true" {
		t.Errorf("json, cjson, cjson.safe: %q, %v", got, err)
	}
	for range 3 {
		if got, err := f.rpc(ctx, "patch"); err != nil || got != "falsefalsefalsefalsefalse functionfunctionnil" {
			t.Errorf("patching the json module in a call = %q, %v; want refused", got, err)
		}
	}
}

func TestJSONEncodeCharged(t *testing.T) {
	f := newFixture(t, map[string]string{"j.lua": jsonScript})
	f.mustLoad(Options{MaxStringSize: 1 << 20})
	_, err := f.rpc(context.Background(), "encode", `(function() local t = {} for i = 1, 200000 do t[i] = "xxxxxxxx" end return t end)()`)
	if err == nil || !strings.Contains(err.Error(), "json.encode") {
		t.Errorf("encoding 2 MB under a 1 MB string limit: %v, want a json.encode limit error", err)
	}
}
