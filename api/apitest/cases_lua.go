package apitest

// luaPrelude renders results as the package documentation says; it is
// prepended to every Lua script.
const luaPrelude = `-- apitest prelude
local function show(v)
  if v == nil then return "nil" end
  local ty = type(v)
  if ty == "string" then return '"' .. v .. '"' end
  if ty == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = show(x) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  return tostring(v)
end
local function shows(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = show((select(i, ...))) end
  return table.concat(parts, " ")
end
local function argerr(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return "no error" end
  err = tostring(err)
  return string.match(err, "bad argument #%d+ to uwsgi%.[%w_]+") or ("other error: " .. err)
end
local function fails(text, f, ...)
  local ok, err = pcall(f, ...)
  if ok then return "no error" end
  err = tostring(err)
  if string.find(err, text, 1, true) then return "failed" end
  return "other error: " .. err
end
local function reply(body)
  return 200, {}, coroutine.wrap(function() coroutine.yield(body) end)
end
local function recvn(fd, n)
  local got = ""
  while #got < n do
    local s = uwsgi.recv(fd, n - #got)
    if s == nil then break end
    got = got .. s
  end
  return got
end
-- case
`

// luaScripts are the Lua scripts of the cases, by case name.
var luaScripts = map[string]string{
	// Cron and timers.
	"add_cron/registers": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.add_cron(30, -1, -1, -1, -1, -1),
    uwsgi.add_cron(30, 0, 3, -1, -1, 0),
    (uwsgi.add_cron(30, -5, -1, 1, 12, 7)))
end)`,
	"add_cron/out_of_range": `
local function bad(...) return fails("cron field out of range", uwsgi.add_cron, 30, ...) end
uwsgi.register_rpc("t", function()
  return table.concat({bad(60, -1, -1, -1, -1), bad(-1, 24, -1, -1, -1), bad(-1, -1, 0, -1, -1),
    bad(-1, -1, -1, 13, -1), bad(-1, -1, -1, -1, 8), bad(-61, -1, -1, -1, -1)}, " ")
end)`,
	"add_cron/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.add_cron, 30, 0, 0, 1, 1),
    argerr(uwsgi.add_cron, 256, 0, 0, 1, 1, 0),
    argerr(uwsgi.add_cron, 30, "noon", 0, 1, 1, 0),
    argerr(uwsgi.add_cron, 30, 0, 1.5, 1, 1, 0)}, ";")
end)`,
	"add_timer/fires": `
uwsgi.register_signal(20, "", function(sig) uwsgi.cache_inc("ticks") end)
uwsgi.register_rpc("t", function() return show(uwsgi.add_timer(20, 0.05)) end)`,
	"add_timer/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({fails("timer interval must be positive", uwsgi.add_timer, 20, 0),
    argerr(uwsgi.add_timer, 20, -1), argerr(uwsgi.add_timer, 20), argerr(uwsgi.add_timer, "x", 1)}, ";")
end)`,
	"add_rb_timer/iterations": `
uwsgi.register_signal(21, "", function(sig) uwsgi.cache_inc("rb") end)
uwsgi.register_rpc("t", function() return show(uwsgi.add_rb_timer(21, 0.05, 2)) end)`,
	"add_rb_timer/forever": `
uwsgi.register_signal(21, "", function(sig) uwsgi.cache_inc("rb") end)
uwsgi.register_rpc("t", function() return show(uwsgi.add_rb_timer(21, 0.05)) end)`,
	"add_rb_timer/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({fails("iterations must not be negative", uwsgi.add_rb_timer, 21, 0.05, -1),
    fails("timer interval must be positive", uwsgi.add_rb_timer, 21, 0, 2),
    argerr(uwsgi.add_rb_timer, 21, 0.05, 1.5), argerr(uwsgi.add_rb_timer, 21)}, ";")
end)`,

	// Alarms and logs.
	"alarm/raises": `
uwsgi.register_rpc("t", function()
  return show(uwsgi.alarm("disk", "full: 99%")) .. " " .. show(uwsgi.alarm("count", 42))
end)`,
	"alarm/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.alarm, "disk"), argerr(uwsgi.alarm), argerr(uwsgi.alarm, {}, "m")}, ";")
end)`,
	"log/line": `
uwsgi.register_rpc("t", function()
  return show(uwsgi.log("hello", 42, 1.5, true, nil, "end"))
end)`,
	"log/no_arguments": `
uwsgi.register_rpc("t", function() return argerr(uwsgi.log) end)`,

	// Process and host information.
	"masterpid/pid": `
uwsgi.register_rpc("t", function()
  local pid = uwsgi.masterpid()
  return show(pid) .. " " .. type(pid) .. " " .. show(uwsgi.masterpid(1) == pid)
end)`,
	"worker_id/one": `
uwsgi.register_rpc("t", function()
  local id = uwsgi.worker_id()
  return show(id) .. " " .. type(id) .. " " .. show(uwsgi.worker_id(7) == id)
end)`,
	"mule_id/zero": `
uwsgi.register_rpc("t", function()
  local id = uwsgi.mule_id()
  return show(id) .. " " .. type(id) .. " " .. show(uwsgi.mule_id(7) == id)
end)`,
	"hostname/value": `
uwsgi.register_rpc("t", function() return show(uwsgi.hostname) .. " " .. type(uwsgi.hostname) end)`,
	"version/value": `
uwsgi.register_rpc("t", function() return show(uwsgi.version) .. " " .. type(uwsgi.version) end)`,
	"opt/socket": `
uwsgi.register_rpc("t", function()
  return show(uwsgi.opt.socket) .. " " .. show(uwsgi.opt.nosuch) .. " " .. type(uwsgi.opt)
end)`,
	"opt/copy": `
uwsgi.register_rpc("t", function()
  pcall(function() uwsgi.opt.socket = "changed" end)
  return show("done")
end)`,
	"setprocname/renames": `
uwsgi.register_rpc("t", function() return show(uwsgi.setprocname("sh-apitest")) end)`,
	"setprocname/truncates": `
uwsgi.register_rpc("t", function() return show(uwsgi.setprocname("sh-apitest-very-long-name")) end)`,
	"setprocname/bad_arguments": `
uwsgi.register_rpc("t", function()
  return argerr(uwsgi.setprocname) .. ";" .. argerr(uwsgi.setprocname, {})
end)`,

	// Caches.
	"cache_get/miss": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_get("nosuch"), (uwsgi.cache_get("nosuch", "other")))
end)`,
	"cache_get/hit": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("k", "v")
  uwsgi.cache_update(7, 42)
  uwsgi.cache_update("bin", "a\0b")
  local bin = uwsgi.cache_get("bin")
  return shows(uwsgi.cache_get("k"), uwsgi.cache_get(7), #bin, bin == "a\0b")
end)`,
	"cache_get/named": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("k", "o", 0, "other")
  return shows(uwsgi.cache_get("k"), (uwsgi.cache_get("k", "other")))
end)`,
	"cache_get/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_get), argerr(uwsgi.cache_get, {}), argerr(uwsgi.cache_get, "k", {}),
    show(uwsgi.cache_get("k", "nosuch")), fails("empty cache key", uwsgi.cache_get, "")}, ";")
end)`,
	"cache_get/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_get("k", "other@{{NODE_ADDR}}"), uwsgi.cache_get("nope", "other@{{NODE_ADDR}}"),
    (uwsgi.cache_get("d", "@{{NODE_ADDR}}")))
end)`,
	"cache_get/remote_unreachable": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_get("k", "other@{{DEAD_ADDR}}"))
end)`,
	"cache_set/new_and_existing": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_set("k", "v"), uwsgi.cache_set("k", "w"), (uwsgi.cache_get("k")))
end)`,
	"cache_set/expires": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_set("k", "v", 0.05)
  uwsgi.async_sleep(0.1)
  local b = uwsgi.cache_get("k")
  local c = uwsgi.cache_set("k", "w")
  return shows(a, b, c, (uwsgi.cache_get("k")))
end)`,
	"cache_set/too_large": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_set("big", string.rep("x", 70000)), uwsgi.cache_get("big"),
    (uwsgi.cache_set(string.rep("k", 3000), "v")))
end)`,
	"cache_set/named": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_set("k", "v", nil, "other")
  return shows(a, uwsgi.cache_get("k"), uwsgi.cache_get("k", "other"), (uwsgi.cache_set("k", "w", 0, "other")))
end)`,
	"cache_set/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_set), argerr(uwsgi.cache_set, "k"), argerr(uwsgi.cache_set, "k", {}),
    argerr(uwsgi.cache_set, "k", "v", "soon"), argerr(uwsgi.cache_set, "k", "v", -1),
    show(uwsgi.cache_set("k", "v", 0, "nosuch")),
    fails("empty cache key", uwsgi.cache_set, "", "v")}, ";")
end)`,
	"cache_set/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_set("k", "v", 60, "other@{{NODE_ADDR}}"), (uwsgi.cache_set("k", "w", 60, "other@{{NODE_ADDR}}")))
end)`,
	"cache_update/overwrites": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_update("k", "v"), uwsgi.cache_update("k", "w"), (uwsgi.cache_get("k")))
end)`,
	"cache_update/expires": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_update("k", "v", 0.05)
  local b = uwsgi.cache_update("k", "w")
  uwsgi.cache_update("e", "x", 0.05)
  uwsgi.async_sleep(0.1)
  return shows(a, b, uwsgi.cache_get("k"), (uwsgi.cache_get("e")))
end)`,
	"cache_update/named": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_update("k", "o", 0, "other"), uwsgi.cache_get("k"), (uwsgi.cache_get("k", "other")))
end)`,
	"cache_update/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_update, "k"), argerr(uwsgi.cache_update, "k", "v", "x"),
    show(uwsgi.cache_update("k", "v", 0, "nosuch")),
    show(uwsgi.cache_update("big", string.rep("x", 70000)))}, ";")
end)`,
	"cache_update/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_update("k", "v", 60, "other@{{NODE_ADDR}}"), (uwsgi.cache_update("k", "w", 60, "other@{{NODE_ADDR}}")))
end)`,
	"cache_del/existing_and_missing": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("k", "v")
  return shows(uwsgi.cache_del("k"), uwsgi.cache_get("k"), (uwsgi.cache_del("k")))
end)`,
	"cache_del/named": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("k", "v", 0, "other")
  return shows(uwsgi.cache_del("k"), uwsgi.cache_del("k", "other"), (uwsgi.cache_get("k", "other")))
end)`,
	"cache_del/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_del), fails("empty cache key", uwsgi.cache_del, ""),
    show(uwsgi.cache_del("k", "nosuch"))}, ";")
end)`,
	"cache_del/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_del("k", "@{{NODE_ADDR}}"), uwsgi.cache_del("k", "@{{NODE_ADDR}}"),
    (uwsgi.cache_del("k", "other@{{NODE_ADDR}}")))
end)`,
	"cache_exists/hit_and_miss": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("k", "v")
  return shows(uwsgi.cache_exists("k"), (uwsgi.cache_exists("nope")))
end)`,
	"cache_exists/expires": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_set("k", "v", 0.3)
  local b = uwsgi.cache_exists("k")
  uwsgi.async_sleep(0.4)
  return shows(a, b, (uwsgi.cache_exists("k")))
end)`,
	"cache_exists/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_exists), argerr(uwsgi.cache_exists, {}),
    show(uwsgi.cache_exists("k", "nosuch"))}, ";")
end)`,
	"cache_exists/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_exists("k", "other@{{NODE_ADDR}}"), uwsgi.cache_exists("nope", "other@{{NODE_ADDR}}"),
    (uwsgi.cache_exists("k", "@{{NODE_ADDR}}")))
end)`,
	"cache_clear/default": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("a", "1")
  uwsgi.cache_update("b", "2")
  uwsgi.cache_update("c", "3", 0, "other")
  local r = uwsgi.cache_clear()
  return shows(r, uwsgi.cache_get("a"), uwsgi.cache_get("b"), (uwsgi.cache_get("c", "other")))
end)`,
	"cache_clear/named": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("a", "1")
  uwsgi.cache_update("c", "3", 0, "other")
  local r = uwsgi.cache_clear("other")
  return shows(r, uwsgi.cache_get("a"), (uwsgi.cache_get("c", "other")))
end)`,
	"cache_clear/bad_arguments": `
uwsgi.register_rpc("t", function()
  return show(uwsgi.cache_clear("nosuch")) .. ";" .. argerr(uwsgi.cache_clear, {})
end)`,
	"cache_clear/remote": `
uwsgi.register_rpc("t", function() return show(uwsgi.cache_clear("other@{{NODE_ADDR}}")) end)`,
	"cache_inc/counts": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_inc("n")
  local b = uwsgi.cache_inc("n")
  local c = uwsgi.cache_inc("n", 10)
  return shows(a, b, c, (uwsgi.cache_num("n")))
end)`,
	"cache_inc/expires": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_inc("e", 1, 0.05)
  uwsgi.async_sleep(0.1)
  return shows(a, (uwsgi.cache_get("e")))
end)`,
	"cache_inc/keeps_expiry": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_inc("e", 1, 0.05)
  local a = uwsgi.cache_inc("e", 1)
  uwsgi.cache_inc("f")
  local b = uwsgi.cache_inc("f", 1, 0.05)
  uwsgi.async_sleep(0.1)
  return shows(a, b, uwsgi.cache_get("e"), (uwsgi.cache_num("f")))
end)`,
	"cache_inc/named": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_inc("n", 3, 0, "other"), uwsgi.cache_num("n"), (uwsgi.cache_num("n", "other")))
end)`,
	"cache_inc/not_a_counter": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("s", "abc")
  uwsgi.cache_update("d", "41")
  uwsgi.cache_update("big", "9223372036854775807")
  return shows(uwsgi.cache_inc("s"), uwsgi.cache_inc("d"), uwsgi.cache_inc("big"),
    uwsgi.cache_get("s"), (uwsgi.cache_get("big")))
end)`,
	"cache_inc/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_inc), argerr(uwsgi.cache_inc, "n", "x"), argerr(uwsgi.cache_inc, "n", 1, -1),
    show(uwsgi.cache_inc("n", 1, 0, "nosuch"))}, ";")
end)`,
	"cache_inc/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_inc("n", 5, 0, "other@{{NODE_ADDR}}"), uwsgi.cache_inc("n", 2, 0, "other@{{NODE_ADDR}}"),
    uwsgi.cache_num("n", "other@{{NODE_ADDR}}"), (uwsgi.cache_num("n")))
end)`,
	"cache_dec/counts": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_dec("n")
  local b = uwsgi.cache_dec("n", 5)
  local c = uwsgi.cache_num("n")
  uwsgi.cache_update("m", "10")
  return shows(a, b, c, (uwsgi.cache_dec("m", 6)))
end)`,
	"cache_dec/named": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_dec("n", 2, 0, "other"), uwsgi.cache_num("n"), (uwsgi.cache_num("n", "other")))
end)`,
	"cache_dec/bad_arguments": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("s", "abc")
  uwsgi.cache_update("min", "-9223372036854775808")
  return table.concat({show(uwsgi.cache_dec("s")), show(uwsgi.cache_dec("min")),
    argerr(uwsgi.cache_dec), argerr(uwsgi.cache_dec, "n", 1.5)}, ";")
end)`,
	"cache_mul/counts": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_mul("n")
  uwsgi.cache_inc("n", 3)
  local b = uwsgi.cache_mul("n")
  local c = uwsgi.cache_mul("n", 5)
  local d = uwsgi.cache_mul("n", -1)
  return shows(a, b, c, d, (uwsgi.cache_num("n")))
end)`,
	"cache_mul/named_and_remote": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_inc("n", 2, 0, "other")
  uwsgi.cache_inc("n", 5, 0, "other@{{NODE_ADDR}}")
  return shows(uwsgi.cache_mul("n", 4, 0, "other"), uwsgi.cache_num("n"),
    uwsgi.cache_mul("n", 3, 0, "other@{{NODE_ADDR}}"), (uwsgi.cache_num("n", "other@{{NODE_ADDR}}")))
end)`,
	"cache_mul/bad_arguments": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("big", "4611686018427387904")
  uwsgi.cache_update("s", "abc")
  return table.concat({show(uwsgi.cache_mul("big")), show(uwsgi.cache_mul("s")),
    argerr(uwsgi.cache_mul), argerr(uwsgi.cache_mul, "n", "x"), argerr(uwsgi.cache_mul, "n", 2, "soon")}, ";")
end)`,
	"cache_div/counts": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_div("n")
  uwsgi.cache_inc("n", 100)
  local b = uwsgi.cache_div("n")
  local c = uwsgi.cache_div("n", 3)
  local d = uwsgi.cache_div("n", -4)
  local e = uwsgi.cache_div("n", 0)
  return shows(a, b, c, d, e, (uwsgi.cache_num("n")))
end)`,
	"cache_div/named_and_remote": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_inc("n", 9, 0, "other")
  uwsgi.cache_inc("n", 20, 0, "other@{{NODE_ADDR}}")
  return shows(uwsgi.cache_div("n", 2, 0, "other"), uwsgi.cache_num("n"),
    uwsgi.cache_div("n", 3, 0, "other@{{NODE_ADDR}}"), (uwsgi.cache_num("n", "other@{{NODE_ADDR}}")))
end)`,
	"cache_div/bad_arguments": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("min", "-9223372036854775808")
  uwsgi.cache_update("s", "abc")
  return table.concat({show(uwsgi.cache_div("min", -1)), show(uwsgi.cache_div("s")),
    argerr(uwsgi.cache_div), argerr(uwsgi.cache_div, "n", 0.5)}, ";")
end)`,
	"cache_num/values": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_inc("n", 24)
  uwsgi.cache_update("d", "17")
  uwsgi.cache_update("s", "abc")
  return shows(uwsgi.cache_num("n"), uwsgi.cache_num("d"), uwsgi.cache_num("s"), uwsgi.cache_num("missing"),
    type(uwsgi.cache_num("n")))
end)`,
	"cache_num/named": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_inc("n", 3, 0, "other")
  return shows(uwsgi.cache_num("n"), (uwsgi.cache_num("n", "other")))
end)`,
	"cache_num/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_num("n", "other@{{NODE_ADDR}}"), uwsgi.cache_num("d", "@{{NODE_ADDR}}"),
    uwsgi.cache_num("s", "@{{NODE_ADDR}}"), (uwsgi.cache_num("missing", "@{{NODE_ADDR}}")))
end)`,
	"cache_num/remote_unreachable": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.cache_num("n", "other@{{DEAD_ADDR}}"))
end)`,
	"cache_num/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.cache_num), show(uwsgi.cache_num("n", "nosuch")),
    argerr(uwsgi.cache_num, "n", {})}, ";")
end)`,
	"cache_keys/order": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("a", "1")
  uwsgi.cache_update("b", "2")
  uwsgi.cache_update("c", "3")
  local before = uwsgi.cache_keys()
  uwsgi.cache_get("a")
  return shows(before, (uwsgi.cache_keys()))
end)`,
	"cache_keys/named": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.cache_keys()
  uwsgi.cache_update("x", "1", 0, "other")
  return shows(a, uwsgi.cache_keys("other"), (uwsgi.cache_keys()))
end)`,
	"cache_keys/expired": `
uwsgi.register_rpc("t", function()
  uwsgi.cache_update("k", "v", 0.05)
  uwsgi.cache_update("l", "v")
  uwsgi.async_sleep(0.1)
  return show(uwsgi.cache_keys())
end)`,
	"cache_keys/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({fails("local caches only", uwsgi.cache_keys, "other@{{NODE_ADDR}}"),
    fails("unknown cache", uwsgi.cache_keys, "nosuch"), argerr(uwsgi.cache_keys, {})}, ";")
end)`,

	// RPC.
	"register_rpc/registers": `
local a = uwsgi.register_rpc("f", function(x, y) return x .. "+" .. y end)
local b = uwsgi.register_rpc("g", function() return "g" end, 2)
uwsgi.register_rpc("t", function() return shows(a, b) end)`,
	"register_rpc/replace": `
uwsgi.register_rpc("f", function() return 1 end)
uwsgi.register_rpc("f", function() return 2 end)
uwsgi.register_rpc("t", function() return show(uwsgi.call("f")) end)`,
	"register_rpc/results": `
uwsgi.register_rpc("half", function() return 0.5 end)
uwsgi.register_rpc("three", function() return 3 end)
uwsgi.register_rpc("empty", function() return "" end)
uwsgi.register_rpc("table", function() return {1, 2} end)
uwsgi.register_rpc("t", function()
  return shows(uwsgi.call("half"), uwsgi.call("three"), uwsgi.call("empty"), (uwsgi.call("table")))
end)`,
	"register_rpc/load_errors": `
-- Registrations that fail while loading fail the same way in every VM.
local fn = function() end
local results = table.concat({argerr(uwsgi.register_rpc, "f", "notfn"),
  fails("invalid rpc function name", uwsgi.register_rpc, "", fn),
  argerr(uwsgi.register_signal, 256, "", fn),
  fails("invalid signal target", uwsgi.register_signal, 17, "nosuch", fn),
  argerr(uwsgi.add_timer, 20, -1),
  fails("timer interval must be positive", uwsgi.add_timer, 20, 0)}, ";")
uwsgi.register_rpc("t", function()
  uwsgi.async_sleep(0.1)
  return results
end)`,
	"register_rpc/bad_arguments": `
uwsgi.register_rpc("t", function()
  local fn = function() end
  return table.concat({argerr(uwsgi.register_rpc), argerr(uwsgi.register_rpc, "f"),
    argerr(uwsgi.register_rpc, "f", "notfn"),
    fails("invalid rpc function name", uwsgi.register_rpc, "", fn),
    fails("invalid rpc function name", uwsgi.register_rpc, string.rep("n", 256), fn)}, ";")
end)`,
	"call/local": `
uwsgi.register_rpc("add", function(a, b) return a + b end)
uwsgi.register_rpc("types", function(a, b) return type(a) .. type(b) end)
uwsgi.register_rpc("pair", function(a, b) return a .. "|" .. b end)
uwsgi.register_rpc("t", function()
  return shows(uwsgi.call("add", 1, 2), uwsgi.call("types", 1, "x"), (uwsgi.call("pair", 1.5, 10)))
end)`,
	"call/binary": `
uwsgi.register_rpc("len", function(a) return #a end)
uwsgi.register_rpc("same", function(a) return a end)
uwsgi.register_rpc("t", function()
  return shows(uwsgi.call("len", "a\0b"), uwsgi.call("same", "\0\255\1") == "\0\255\1")
end)`,
	"call/no_result": `
uwsgi.register_rpc("none", function() return nil end)
uwsgi.register_rpc("t", function() return shows(uwsgi.call("none"), (uwsgi.call("nosuch"))) end)`,
	"call/error": `
uwsgi.register_rpc("boom", function() error("kaput") end)
uwsgi.register_rpc("t", function() return fails("kaput", uwsgi.call, "boom") end)`,
	"call/nested": `
uwsgi.register_rpc("inner", function() return "in" end)
uwsgi.register_rpc("outer", function() return "out:" .. uwsgi.call("inner") end)
uwsgi.register_rpc("t", function() return show(uwsgi.call("outer")) end)`,
	"call/go_function": `
uwsgi.register_rpc("t", function() return shows(uwsgi.call("gofn", "a", 1), (uwsgi.call("gonil"))) end)`,
	"call/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.call), argerr(uwsgi.call, {}), argerr(uwsgi.call, "add", {})}, ";")
end)`,
	"rpc/local": `
uwsgi.register_rpc("add", function(a, b) return a + b end)
uwsgi.register_rpc("t", function() return shows(uwsgi.rpc(nil, "add", 1, 2), (uwsgi.rpc("", "add", 2, 3))) end)`,
	"rpc/remote": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.rpc("{{NODE_ADDR}}", "hello"), uwsgi.rpc("{{NODE_ADDR}}", "echo", "a", "b"),
    (uwsgi.rpc("{{NODE_ADDR}}", "nosuch")))
end)`,
	"rpc/unreachable": `
uwsgi.register_rpc("t", function() return fails("connection refused", uwsgi.rpc, "{{DEAD_ADDR}}", "hello") end)`,
	"rpc/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.rpc), argerr(uwsgi.rpc, nil), argerr(uwsgi.rpc, {}, "x"),
    argerr(uwsgi.rpc, nil, "add", {})}, ";")
end)`,

	// Signals.
	"register_signal/delivers": `
local r = uwsgi.register_signal(17, "", function(sig) uwsgi.cache_update("sig", tostring(sig) .. " " .. type(sig)) end)
uwsgi.register_rpc("t", function() return shows(r, (uwsgi.signal(17))) end)`,
	"register_signal/targets": `
uwsgi.register_rpc("t", function()
  local fn = function() end
  local out = {}
  for _, target in ipairs({"", "worker", "workers", "mule1", "spooler"}) do
    out[#out + 1] = show(uwsgi.register_signal(17, target, fn))
  end
  out[#out + 1] = show(uwsgi.register_signal(17, nil, fn))
  return table.concat(out, " ") .. ";" .. fails("invalid signal target", uwsgi.register_signal, 17, "nosuch", fn)
end)`,
	"register_signal/bad_arguments": `
uwsgi.register_rpc("t", function()
  local fn = function() end
  return table.concat({argerr(uwsgi.register_signal, 17, ""), argerr(uwsgi.register_signal, 256, "", fn),
    argerr(uwsgi.register_signal, 17, "", "notfn"), argerr(uwsgi.register_signal, "x", "", fn),
    argerr(uwsgi.register_signal, 17, {}, fn)}, ";")
end)`,
	"register_signal/handler_error": `
uwsgi.register_signal(18, "", function(sig) error("sig failed " .. sig) end)
uwsgi.register_rpc("t", function() return show("ok") end)`,
	"signal/unregistered": `
uwsgi.register_rpc("t", function() return show(uwsgi.signal(99)) end)`,
	"signal/remote": `
uwsgi.register_rpc("t", function() return show(uwsgi.signal(17, "{{NODE_ADDR}}")) end)`,
	"signal/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.signal), argerr(uwsgi.signal, 256), argerr(uwsgi.signal, 1, {}),
    fails("connection refused", uwsgi.signal, 1, "{{DEAD_ADDR}}")}, ";")
end)`,
	"register_rpc/during_call": `
uwsgi.register_rpc("t", function()
  local r = uwsgi.register_rpc("dyn", function(a) return "dyn " .. a end)
  return shows(r, uwsgi.call("dyn", "1"))
end)`,
	"register_rpc/vm_replaced": `
uwsgi.register_rpc("u", function() return show(uwsgi.call("dyn")) end)
uwsgi.register_rpc("t", function()
  uwsgi.register_rpc("dyn", function() return "ran" end)
  uwsgi.set_user_harakiri(0.05)
  while true do end -- interrupted: the VM is replaced
end)`,
	"register_signal/during_call": `
uwsgi.register_rpc("t", function()
  local r = uwsgi.register_signal(22, "", function(sig) uwsgi.cache_update("sig22", tostring(sig) .. " " .. type(sig)) end)
  uwsgi.signal(22)
  uwsgi.async_sleep(0.3) -- the VM that made the handler stays busy meanwhile
  return shows(r, uwsgi.cache_get("sig22"), uwsgi.signal_registered(22))
end)`,
	"register_signal/vm_replaced": `
uwsgi.register_rpc("u", function() return show(uwsgi.signal_registered(23)) end)
uwsgi.register_rpc("t", function()
  uwsgi.register_signal(23, "", function(sig) uwsgi.cache_update("sig23", "ran") end)
  uwsgi.set_user_harakiri(0.05)
  while true do end -- interrupted: the VM is replaced
end)`,
	"signal_registered/states": `
uwsgi.register_rpc("t", function()
  local before = uwsgi.signal_registered(40)
  uwsgi.register_signal(40, "", function() end)
  return shows(before, uwsgi.signal_registered(40), (uwsgi.signal_registered(41)))
end)`,
	"signal_registered/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.signal_registered), argerr(uwsgi.signal_registered, -1),
    argerr(uwsgi.signal_registered, "x")}, ";")
end)`,

	// Locks.
	"lock/unlock": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.lock()
  local b = uwsgi.unlock()
  local c = uwsgi.lock(5)
  return shows(a, b, c, (uwsgi.unlock(5)))
end)`,
	"lock/waits": `
uwsgi.register_rpc("t", function()
  uwsgi.lock(3)
  uwsgi.unlock(3)
  return show("locked")
end)`,
	"lock/outlives_call": `
uwsgi.register_rpc("t", function() return show(uwsgi.lock(6)) end)`,
	"lock/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({fails("no such lock", uwsgi.lock, 64), fails("no such lock", uwsgi.lock, -1),
    argerr(uwsgi.lock, "x"), argerr(uwsgi.lock, 1.5)}, ";")
end)`,
	"lock/harakiri": `
uwsgi.register_rpc("t", function()
  uwsgi.set_user_harakiri(0.05)
  uwsgi.lock(4)
  return "locked"
end)`,
	"unlock/not_locked": `
uwsgi.register_rpc("t", function()
  return table.concat({shows(uwsgi.unlock(), uwsgi.unlock(7), (uwsgi.unlock(7))),
    fails("no such lock", uwsgi.unlock, 1000), argerr(uwsgi.unlock, {})}, ";")
end)`,

	// Sleeping and time limits.
	"async_sleep/returns": `
uwsgi.register_rpc("t", function()
  return show(uwsgi.async_sleep(0.01)) .. " " .. show(uwsgi.async_sleep("0.01")) .. " " .. show(uwsgi.async_sleep(0))
end)`,
	"async_sleep/harakiri": `
uwsgi.register_rpc("t", function()
  uwsgi.set_user_harakiri(0.05)
  uwsgi.async_sleep(5)
  return "not interrupted"
end)`,
	"async_sleep/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.async_sleep), argerr(uwsgi.async_sleep, -1), argerr(uwsgi.async_sleep, "soon")}, ";")
end)`,
	"set_user_harakiri/busy_loop": `
uwsgi.register_rpc("t", function()
  uwsgi.set_user_harakiri(0.05)
  while true do end
end)`,
	"set_user_harakiri/reset": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.set_user_harakiri(0.3)
  local b = uwsgi.set_user_harakiri(0)
  uwsgi.async_sleep(0.4)
  return shows(a, b, "survived")
end)`,
	"set_user_harakiri/extend": `
uwsgi.register_rpc("t", function()
  uwsgi.set_user_harakiri(0.3)
  uwsgi.set_user_harakiri(2)
  uwsgi.async_sleep(0.4)
  return show("survived")
end)`,
	"set_user_harakiri/request": `
return function(env)
  uwsgi.set_user_harakiri(0.05)
  uwsgi.async_sleep(5)
  return reply("not interrupted")
end`,
	"set_user_harakiri/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.set_user_harakiri), argerr(uwsgi.set_user_harakiri, -1),
    argerr(uwsgi.set_user_harakiri, "x")}, ";")
end)`,

	// Connections made by the script.
	"async_connect/tcp": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  return type(fd) .. " " .. show(fd >= 3) .. " " .. show(uwsgi.is_connected(fd))
end)`,
	"async_connect/unix": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_UNIX}}")
  local n = uwsgi.send(fd, "unix")
  return shows(n, (recvn(fd, 4)))
end)`,
	"async_connect/distinct": `
uwsgi.register_rpc("t", function()
  local a = uwsgi.async_connect("{{ECHO_ADDR}}")
  local b = uwsgi.async_connect("{{ECHO_ADDR}}")
  return shows(a ~= b, uwsgi.is_connected(a), (uwsgi.is_connected(b)))
end)`,
	"async_connect/refused": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{DEAD_ADDR}}")
  return shows(fd, uwsgi.async_connect("no port here"), uwsgi.is_connected(fd)) .. ";" ..
    fails("no such file descriptor", uwsgi.send, fd, "x")
end)`,
	"async_connect/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.async_connect), argerr(uwsgi.async_connect, {})}, ";")
end)`,
	"send/dialed": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  local n = uwsgi.send(fd, "abc")
  local first = uwsgi.recv(fd, 3)
  return shows(n, first .. recvn(fd, 3 - #first))
end)`,
	"send/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({fails("no client connection", uwsgi.send, "x"), argerr(uwsgi.send),
    fails("no such file descriptor", uwsgi.send, 99, "x"), argerr(uwsgi.send, {}), argerr(uwsgi.send, 3, {})}, ";")
end)`,
	"recv/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({fails("no client connection", uwsgi.recv, 5), argerr(uwsgi.recv), argerr(uwsgi.recv, "x"),
    fails("no such file descriptor", uwsgi.recv, 99, 5), argerr(uwsgi.recv, 3, "x")}, ";")
end)`,
	"recv/harakiri": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  uwsgi.set_user_harakiri(0.05)
  uwsgi.recv(fd, 10)
  return "received"
end)`,
	"close/dialed": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  local r = uwsgi.close(fd)
  return shows(r, (uwsgi.is_connected(fd))) .. " " .. fails("no such file descriptor", uwsgi.close, fd)
end)`,
	"close/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.close), argerr(uwsgi.close, "x"), fails("no such file descriptor", uwsgi.close, 99)}, ";")
end)`,
	"is_connected/handles": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  local a = uwsgi.is_connected(fd)
  local b = uwsgi.is_connected(99)
  uwsgi.close(fd)
  return shows(a, b, (uwsgi.is_connected(fd))) .. ";" .. argerr(uwsgi.is_connected)
end)`,
	"wait_fd_read/bad_arguments": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  return table.concat({show(uwsgi.wait_fd_read(fd, 1)), fails("no such file descriptor", uwsgi.wait_fd_read, 99),
    argerr(uwsgi.wait_fd_read), argerr(uwsgi.wait_fd_read, "x"), argerr(uwsgi.wait_fd_read, fd, -1),
    argerr(uwsgi.wait_fd_read, fd, "soon")}, ";")
end)`,
	"wait_fd_write/ready": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  local w = uwsgi.wait_fd_write(fd, 1)
  local s = uwsgi.suspend()
  return shows(w, s, uwsgi.ready_fd() == fd)
end)`,
	"wait_fd_write/bad_arguments": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  return table.concat({fails("no such file descriptor", uwsgi.wait_fd_write, 99), argerr(uwsgi.wait_fd_write),
    argerr(uwsgi.wait_fd_write, fd, "soon")}, ";")
end)`,
	"suspend/nothing": `
uwsgi.register_rpc("t", function() return shows(uwsgi.suspend(), (uwsgi.ready_fd())) end)`,
	"suspend/harakiri": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  uwsgi.wait_fd_read(fd)
  uwsgi.set_user_harakiri(0.05)
  uwsgi.suspend()
  return "resumed"
end)`,
	"ready_fd/before_suspend": `
uwsgi.register_rpc("t", function() return show(uwsgi.ready_fd()) end)`,
	"ready_fd/ready": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  uwsgi.send(fd, "ping")
  local w = uwsgi.wait_fd_read(fd, 5)
  local s = uwsgi.suspend()
  return shows(w, s, uwsgi.ready_fd() == fd, recvn(fd, 4))
end)`,
	"ready_fd/timeout": `
uwsgi.register_rpc("t", function()
  local fd = uwsgi.async_connect("{{ECHO_ADDR}}")
  local w = uwsgi.wait_fd_read(fd, 0.05)
  local s = uwsgi.suspend()
  local r = uwsgi.ready_fd()
  local s2 = uwsgi.suspend()
  return shows(w, s, r, s2, (uwsgi.ready_fd()))
end)`,
	"ready_fd/two_fds": `
uwsgi.register_rpc("t", function()
  local quiet = uwsgi.async_connect("{{ECHO_ADDR}}")
  local busy = uwsgi.async_connect("{{ECHO_ADDR}}")
  uwsgi.send(busy, "x")
  uwsgi.wait_fd_read(quiet, 5)
  uwsgi.wait_fd_read(busy, 5)
  uwsgi.suspend()
  return show(uwsgi.ready_fd() == busy)
end)`,

	// The client connection of a request.
	"connection_fd/request": `
return function(env)
  local fd = uwsgi.connection_fd()
  return reply(type(fd) .. " " .. shows(fd >= 3, fd == uwsgi.connection_fd(), (uwsgi.is_connected(fd))))
end`,
	"connection_fd/no_connection": `
uwsgi.register_rpc("t", function() return fails("no client connection", uwsgi.connection_fd) end)`,
	"send/request": `
return function(env)
  local a = uwsgi.send("raw:")
  local b = uwsgi.send(uwsgi.connection_fd(), "more;")
  return reply(shows(a, b))
end`,
	"recv/request": `
return function(env)
  local a = uwsgi.recv(5)
  local b = uwsgi.recv(uwsgi.connection_fd(), 100)
  return reply(shows(a, b, (uwsgi.recv(0))))
end`,
	"recv/request_eof": `
return function(env)
  local a = uwsgi.recv(2)
  return reply(shows(a, (uwsgi.recv(10))))
end`,
	"ready_fd/request": `
return function(env)
  local fd = uwsgi.connection_fd()
  local w = uwsgi.wait_fd_read(fd, 5)
  uwsgi.suspend()
  return reply(shows(w, uwsgi.ready_fd() == fd, (uwsgi.recv(1))))
end`,
	"ready_fd/request_timeout": `
return function(env)
  uwsgi.wait_fd_read(uwsgi.connection_fd(), 0.05)
  uwsgi.suspend()
  return reply(show(uwsgi.ready_fd()))
end`,
	"disconnect/request": `
return function(env)
  uwsgi.send("partial")
  uwsgi.disconnect()
  uwsgi.cache_update("after", "yes")
  return reply("not sent")
end`,
	"disconnect/no_connection": `
uwsgi.register_rpc("t", function() return fails("no client connection", uwsgi.disconnect) end)`,
	"is_connected/after_disconnect": `
return function(env)
  local fd = uwsgi.connection_fd()
  uwsgi.send("bye")
  uwsgi.disconnect()
  uwsgi.cache_update("disconnected", tostring(uwsgi.is_connected(fd)))
  pcall(uwsgi.close, fd)
  uwsgi.cache_update("closed", tostring(uwsgi.is_connected(fd)))
  return reply("not sent")
end`,
	"close/connection": `
return function(env)
  uwsgi.send("bye")
  uwsgi.close(uwsgi.connection_fd())
  uwsgi.cache_update("after", "yes")
  return reply("not sent")
end`,
	// WebSockets.
	"websocket_handshake/echo": `
return function(env)
  local out = {show(uwsgi.websocket_handshake())}
  while true do
    local ok, msg = pcall(uwsgi.websocket_recv)
    if not ok then
      return reply(table.concat(out, " ") .. ";" .. fails("unable to receive websocket message", error, msg))
    end
    out[#out + 1] = show(msg)
    uwsgi.websocket_send("echo: " .. msg)
  end
end`,
	"websocket_handshake/arguments": `
return function(env)
  local before = uwsgi.call("open_long_calls")
  local a = uwsgi.websocket_handshake("dGhlIHNhbXBsZSBub25jZQ==", "http://example.com", "chat")
  local b = uwsgi.websocket_handshake()
  local c = uwsgi.websocket_handshake(nil, nil, "echo")
  return reply(shows(before, a, b, c, uwsgi.call("open_long_calls")))
end`,
	"websocket_handshake/no_upgrade": `
return function(env)
  return reply(table.concat({fails("did not ask for a websocket upgrade", uwsgi.websocket_handshake),
    fails("call websocket_handshake first", uwsgi.websocket_recv),
    fails("call websocket_handshake first", uwsgi.websocket_recv_nb),
    fails("call websocket_handshake first", uwsgi.websocket_send, "x"),
    fails("call websocket_handshake first", uwsgi.websocket_send_binary, "x")}, ";"))
end`,
	"websocket_handshake/no_request": `
uwsgi.register_rpc("t", function()
  return fails("did not ask for a websocket upgrade", uwsgi.websocket_handshake) .. ";" ..
    fails("call websocket_handshake first", uwsgi.websocket_recv)
end)`,
	"websocket_handshake/too_many": `
return function(env)
  return reply(fails("too many websockets", uwsgi.websocket_handshake))
end`,
	"websocket_handshake/too_many_uncaught": `
return function(env)
  uwsgi.websocket_handshake()
  return reply("upgraded")
end`,
	"websocket_recv/binary": `
local function hex(s)
  return (string.gsub(s, ".", function(c) return string.format("%02x", string.byte(c)) end))
end
return function(env)
  uwsgi.websocket_handshake()
  local text = uwsgi.websocket_recv()
  local bin = uwsgi.websocket_recv()
  uwsgi.websocket_send_binary(bin)
  uwsgi.websocket_send(text)
  return reply(hex(text) .. " " .. hex(bin))
end`,
	"websocket_recv_nb/with_and_without": `
return function(env)
  uwsgi.websocket_handshake()
  local a = uwsgi.websocket_recv_nb()
  local b = uwsgi.websocket_recv_nb()
  uwsgi.async_sleep(0.5)
  local c = uwsgi.websocket_recv_nb()
  return reply(shows(a, b, c, uwsgi.websocket_recv_nb()))
end`,
	"websocket_recv/closed": `
return function(env)
  uwsgi.websocket_handshake()
  local a = uwsgi.websocket_recv()
  return reply(show(a) .. " " .. table.concat({
    fails("unable to receive websocket message", uwsgi.websocket_recv),
    fails("unable to receive websocket message", uwsgi.websocket_recv_nb),
    fails("unable to send websocket message", uwsgi.websocket_send, "x"),
    fails("unable to send websocket binary message", uwsgi.websocket_send_binary, "x")}, ";"))
end`,
	"websocket_send/bad_arguments": `
return function(env)
  uwsgi.websocket_handshake()
  return reply(table.concat({argerr(uwsgi.websocket_send), argerr(uwsgi.websocket_send, {}),
    argerr(uwsgi.websocket_send_binary, true), argerr(uwsgi.websocket_handshake, {}),
    argerr(uwsgi.websocket_handshake, nil, {}), argerr(uwsgi.websocket_handshake, nil, nil, {})}, ";") ..
    " " .. show(uwsgi.websocket_send(42)))
end`,
	"websocket_recv/time_limit": `
return function(env)
  uwsgi.websocket_handshake()
  uwsgi.set_user_harakiri(0.25)
  local n = 0
  while pcall(uwsgi.websocket_recv) do n = n + 1 end
  return reply(shows("survived", n))
end`,
	"websocket_handshake/busy_loop": `
return function(env)
  uwsgi.set_user_harakiri(0.2)
  uwsgi.websocket_handshake()
  while true do end
end`,
}
