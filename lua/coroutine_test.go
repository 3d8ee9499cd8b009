package lua

import (
	"strings"
	"testing"
)

// coroutine.wrap runs on pooled threads: these check that reuse is
// invisible to scripts.
func TestCoroutineWrap(t *testing.T) {
	f := newFixture(t, nil)
	e := New(Options{Logger: quietLogger()})
	tests := []struct{ name, code, want string }{
		{"yields and returns values", `
			local g = coroutine.wrap(function(a, b)
				local c = coroutine.yield(a + b, "y")
				return c .. "!", "r2"
			end)
			local s1, y = g(1, 2)
			local r1, r2 = g("done")
			return s1 .. y .. " " .. r1 .. r2`, "3y done!r2"},
		{"finished coroutine is dead", `
			local g = coroutine.wrap(function() return 1 end)
			g()
			local ok, err = pcall(g)
			return tostring(ok) .. " " .. err`, "false eval:3: cannot resume dead coroutine"},
		{"threads are reused one after the other", `
			local function who() return coroutine.running() end
			local a = coroutine.wrap(who)()
			local b = coroutine.wrap(who)()
			return tostring(a == b)`, "true"},
		{"running coroutines never share a thread", `
			local g1 = coroutine.wrap(function() coroutine.yield(coroutine.running()) end)
			local g2 = coroutine.wrap(function() coroutine.yield(coroutine.running()) end)
			return tostring(g1() ~= g2())`, "true"},
		{"a kept handle of a finished wrap coroutine is dead", `
			local th = coroutine.wrap(function() return coroutine.running() end)()
			local ok, err = coroutine.resume(th, "anything")
			local after = coroutine.wrap(function(x) return x * 2 end)(21)
			return tostring(ok) .. " " .. err .. " " .. after`, "false cannot resume dead coroutine 42"},
		{"errors reach the caller and the next wrap works", `
			local g = coroutine.wrap(function() error("boom", 0) end)
			local ok, err = pcall(g)
			local ok2, err2 = pcall(g)
			return tostring(ok) .. " " .. err .. " / " .. tostring(ok2) .. " " .. err2 .. " / " ..
				coroutine.wrap(function() return "fine" end)()`, "false boom / false eval:3: cannot resume dead coroutine / fine"},
		{"nested wraps", `
			local outer = coroutine.wrap(function()
				local inner = coroutine.wrap(function() coroutine.yield("i1"); return "i2" end)
				coroutine.yield(inner()); coroutine.yield(inner()); return "o"
			end)
			return outer() .. outer() .. outer()`, "i1i2o"},
		{"a wrap never called takes no thread and an unfinished one keeps its own", `
			local idle = coroutine.wrap(function() return "late" end)
			local half = coroutine.wrap(function() coroutine.yield("a"); return "b" end)
			half()
			for i = 1, 20 do coroutine.wrap(function() return i end)() end
			return half() .. idle()`, "blate"},
		{"nil results and no results", `
			local g = coroutine.wrap(function() coroutine.yield(); coroutine.yield(nil, 2); return end)
			local n1 = select("#", g())
			local a, b = g()
			local n3 = select("#", g())
			return n1 .. tostring(a) .. b .. n3`, "0nil20"},
		{"many sequential coroutines", `
			local sum = 0
			for i = 1, 1000 do
				local g = coroutine.wrap(function(x) coroutine.yield(x); return x end)
				sum = sum + g(i) + g()
			end
			return tostring(sum)`, "1001000"},
		{"wrap needs a function", `
			local ok, err = pcall(coroutine.wrap, 1)
			return tostring(ok) .. " " .. tostring(err:find("function expected") ~= nil)`, "false true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evalString(t, e, f.env, strings.TrimSpace(tt.code)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
