package lua

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
)

// patScript runs a Lua expression over its arguments and returns its
// values joined with "|".
const patScript = `
local function pack(...) return {n = select("#", ...), ...} end
uwsgi.register_rpc("eval", function(code, ...)
  local r = pack(assert(loadstring("return " .. code))(...))
  for i = 1, r.n do r[i] = tostring(r[i]) end
  return table.concat(r, "|", 1, r.n)
end)
`

func TestPatternsLikeLua51(t *testing.T) {
	f := newFixture(t, map[string]string{"p.lua": patScript})
	f.mustLoad(Options{})
	tests := []struct {
		code, want string
	}{
		{`string.find("hello world", "o w")`, "5|7"},
		{`string.find("hello", "l+")`, "3|4"},
		{`string.find("hello", "xyz")`, "nil"},
		{`string.find("a.b", ".", 1, true)`, "2|2"},
		{`string.find("a+b", "+", 1, true)`, "2|2"},
		{`string.find("hello", "l", -2)`, "4|4"},
		{`string.find("hello", "", 10)`, "nil"},
		{`string.find("hello", "", 6)`, "6|5"},
		{`string.find("key=val", "(%w+)=(%w+)")`, "1|7|key|val"},
		{`string.match("key=val", "(%w+)=(%w+)")`, "key|val"},
		{`string.match("hello", "()ll()")`, "3|5"},
		{`string.match("  trim  ", "^%s*(.-)%s*$")`, "trim"},
		{`string.match("f(a(b)c)d", "%b()")`, "(a(b)c)"},
		{`string.match("THE (quick) fox", "%f[%a]%a+")`, "THE"},
		{`string.match("hello", "(l)%1")`, "l"},
		{`string.match("x = 'a' .. \"b\"", "([\"'])(.-)%1")`, "'|a"},
		{`string.match("2024-01-31", "(%d+)-(%d+)-(%d+)")`, "2024|01|31"},
		{`string.match("abc", "^b")`, "nil"},
		{`string.match("abc", "c$")`, "c"},
		{`string.match("a$c", "$c")`, "$c"},
		{`string.match("]x", "[]]")`, "]"},
		{`string.match("a-b", "[a%-]+")`, "a-"},
		{`string.match("Ab1_", "[^%l]+")`, "A"},
		{`string.match("x", "[a-")`, "ERR malformed pattern (missing ']')"},
		{`string.match("x", "%")`, "ERR malformed pattern (ends with '%')"},
		{`string.match("x", "(x")`, "ERR unfinished capture"},
		{`string.match("x", "x)")`, "ERR invalid pattern capture"},
		{`string.match("x", "%1")`, "ERR invalid capture index"},
		{`string.match("x", "%b")`, "ERR unbalanced pattern"},
		{`string.match("x", "%fx")`, "ERR missing '[' after '%f' in pattern"},
		{`string.gsub("hello world", "o", "0")`, "hell0 w0rld|2"},
		{`string.gsub("hello", "", "-")`, "-h-e-l-l-o-|6"},
		{`string.gsub("abc", "%w", "%0%0")`, "aabbcc|3"},
		{`string.gsub("abc", "(%w)", "[%1]", 2)`, "[a][b]c|2"},
		{`string.gsub("$name is $age", "%$(%w+)", {name = "Ann", age = 7})`, "Ann is 7|2"},
		{`string.gsub("a,b", "%w", function(c) return c:upper() end)`, "A,B|2"},
		{`string.gsub("abc", "b", "%2")`, "ERR invalid capture index"},
	}
	for _, tt := range tests {
		got, err := f.rpc(context.Background(), "eval", tt.code)
		if err != nil {
			got = "ERR " + err.Error()
		}
		if strings.HasPrefix(tt.want, "ERR ") {
			if !strings.HasPrefix(got, "ERR ") || !strings.Contains(got, strings.TrimPrefix(tt.want, "ERR ")) {
				t.Errorf("%s = %q, want an error with %q", tt.code, got, strings.TrimPrefix(tt.want, "ERR "))
			}
			continue
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.code, got, tt.want)
		}
	}
}

// TestPatternsOnLargeInput: a 10 MB form parsed with the patterns of the
// example app (gopher-lua's matcher gave up with "pattern/input too
// complex" at about 1 MB).
func TestPatternsOnLargeInput(t *testing.T) {
	f := newFixture(t, map[string]string{"p.lua": patScript})
	f.mustLoad(Options{})
	big := strings.Repeat("x", 10<<20)
	form := "a=1&text=" + big + "&z=2"
	for _, tt := range []struct{ code, want string }{
		{`#string.match(..., "text=([^&]*)")`, "10485760"},
		{`#string.match(..., "text=(.-)&")`, "10485760"},
		{`select(2, string.gsub(..., "([^&=]+)=([^&=]*)", "%1"))`, "3"},
		{`(function(s) local n = 0 for k, v in s:gmatch("([^&=]+)=([^&=]*)") do n = n + #v end return n end)(...)`, "10485762"},
		{`#(...):match("^.*$")`, "10485773"},
		{`string.find(..., "z=2", 1, true)`, "10485771|10485773"},
	} {
		got, err := f.rpc(context.Background(), "eval", tt.code, form)
		if err != nil || got != tt.want {
			t.Errorf("%s on 10 MB = %q, %v; want %q", tt.code, got, err, tt.want)
		}
	}
}

// TestPatternBacktrackingInterrupted: a pattern that backtracks for a very
// long time stops at the call's deadline.
func TestPatternBacktrackingInterrupted(t *testing.T) {
	f := newFixture(t, map[string]string{"p.lua": patScript})
	f.mustLoad(Options{})
	ctx, cancel := context.WithTimeoutCause(context.Background(), 300*time.Millisecond, api.ErrHarakiri)
	defer cancel()
	start := time.Now()
	_, err := f.rpc(ctx, "eval", `string.find(string.rep("a", 100000), "(.-)(.-)(.-)(.-)b")`)
	if !errors.Is(err, api.ErrHarakiri) {
		t.Errorf("backtracking pattern: %v, want interrupted at the deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopped after %v", d)
	}
	if got, err := f.rpc(context.Background(), "eval", `string.find("ab", "b")`); err != nil || got != "2|2" {
		t.Errorf("the next call: %q, %v", got, err)
	}
}

func TestPatternTooDeep(t *testing.T) {
	f := newFixture(t, map[string]string{"p.lua": patScript})
	f.mustLoad(Options{})
	_, err := f.rpc(context.Background(), "eval", `string.find(string.rep("a", 300), string.rep("a?", 300))`)
	if err == nil || !strings.Contains(err.Error(), "pattern too complex") {
		t.Errorf("300 optional items: %v, want pattern too complex", err)
	}
}
