-- The example app: a tiny note board behind the uwsgi protocol.
--
--   GET  /                     a greeting
--   GET  /hello?name=NAME      "Hello, NAME!"
--   POST /notes   (form: text=...)   stores a note in the cache, returns its id
--                              (413 when it is too large for the cache)
--   GET  /notes?id=N           returns note N, 404 if unknown
--   GET  /stats                requests served, notes stored, timer ticks
--   GET  /stream               a body sent in three chunks
--
-- RPC functions (callable from Go, nginx, uWSGI or other scripts):
--   hello([name])              "Hello, NAME!"
--   note(id)                   the text of note id
--
-- A timer raises signal 30 every 10 seconds; its handler counts ticks in
-- the cache, which /stats shows. The counters are uWSGI's (cache_inc
-- stores an 8-byte integer, cache_num reads it), so a uWSGI node can
-- share them: uwsgi.cache_num('requests', 'default@HOST:PORT') in Python.
-- Every cache call's result is checked: cache_inc and cache_update return
-- nil when they could not store anything.
local web = require("lib.web")

local function greet(name)
  if name == nil or name == "" then name = "world" end
  return "Hello, " .. name .. "!"
end

uwsgi.register_rpc("hello", greet)
uwsgi.register_rpc("note", function(id)
  return uwsgi.cache_get("note:" .. id)
end)

uwsgi.register_signal(30, "", function(sig)
  uwsgi.cache_inc("ticks")
end)
uwsgi.add_timer(30, 10)

local function stats()
  return string.format("requests=%d notes=%d ticks=%d\n",
    uwsgi.cache_num("requests"), uwsgi.cache_num("notes"), uwsgi.cache_num("ticks"))
end

return function(env)
  -- nil when "requests" holds something else: the request is served anyway
  -- (the failure is in the log).
  uwsgi.cache_inc("requests")
  local path, method = env.PATH_INFO or "/", env.REQUEST_METHOD
  local q = web.parse(env.QUERY_STRING)
  if path == "/" then
    return web.respond(200, "scripthost example: try /hello?name=you, /notes, /stats, /stream\n")
  elseif path == "/hello" then
    return web.respond(200, greet(q.name) .. "\n")
  elseif path == "/notes" and method == "POST" then
    local form = web.parse(web.body(env))
    if not form.text or form.text == "" then
      return web.respond(400, "missing text\n")
    end
    local id = uwsgi.cache_inc("notes")
    if not id then return web.respond(500, "cannot number the note\n") end
    if not uwsgi.cache_update("note:" .. id, form.text) then
      return web.respond(413, "note too large for the cache\n")
    end
    return web.respond(201, id .. "\n")
  elseif path == "/notes" then
    local text = q.id and uwsgi.cache_get("note:" .. q.id)
    if not text then return web.respond(404, "no such note\n") end
    return web.respond(200, text .. "\n")
  elseif path == "/stats" then
    return web.respond(200, stats())
  elseif path == "/stream" then
    return 200, {["Content-Type"] = "text/plain"}, coroutine.wrap(function()
      for i = 1, 3 do coroutine.yield("chunk " .. i .. "\n") end
    end)
  end
  return web.respond(404, "not found\n")
end
