-- Small helpers for WSAPI apps: query/form parsing and responses.
-- Loaded with require("lib.web"); files in subdirectories are modules,
-- not apps.
local web = {}

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- parse("a=1&b=x%20y") -> {a = "1", b = "x y"}
function web.parse(qs)
  local out = {}
  for pair in string.gmatch(qs or "", "[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k and k ~= "" then out[unescape(k)] = unescape(v) end
  end
  return out
end

-- body(env) reads the whole request body (CONTENT_LENGTH bytes).
function web.body(env)
  local n = tonumber(env.CONTENT_LENGTH) or 0
  if n <= 0 then return "" end
  return env.input:read(n) or ""
end

-- respond(status, body[, content type]) returns WSAPI's three values.
function web.respond(status, body, ctype)
  return status, {
    ["Content-Type"] = ctype or "text/plain; charset=utf-8",
    ["Content-Length"] = tostring(#body),
  }, body
end

return web
