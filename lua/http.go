package lua

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// restyHTTPSrc is require("resty.http"): lua-resty-http's shape over
// uwsgi.http_request. http.new() gives a client whose request_uri(uri,
// params) and request(params) (params: url, method, headers, body) return
// a response {status, reason, headers, body}, or nil and the error, as
// lua-resty-http does; http.request{...} works without a client too.
const restyHTTPSrc = `
local http_request = ...
local M = {_VERSION = "scripthost"}
local client = {__index = M}

local function send(url, params)
  if type(url) ~= "string" then return nil, "url must be a string" end
  local ok, res = pcall(http_request, url, {method = params.method, headers = params.headers, body = params.body})
  if not ok then return nil, tostring(res) end
  return res
end

function M.new() return setmetatable({}, client) end

function M.request_uri(self, uri, params)
  if self ~= M and getmetatable(self) ~= client then uri, params = self, uri end
  return send(uri, params or {})
end

function M.request(self, params)
  if self ~= M and getmetatable(self) ~= client then params = self end
  params = params or {}
  return send(params.url, params)
end

function M.set_timeout() end -- the call's deadline and --outbound-timeout bound every request
function M.close() return 1 end
function M.set_keepalive() return 1 end
return M
`

// openRestyHTTP installs require("resty.http").
func (v *vm) openRestyHTTP(L *lua.LState) {
	fn, err := L.Load(strings.NewReader(restyHTTPSrc), "=resty.http")
	if err != nil {
		panic("lua: resty.http: " + err.Error()) // a constant that compiles
	}
	uw, _ := L.GetGlobal("uwsgi").(*lua.LTable)
	var req lua.LValue = lua.LNil
	if uw != nil {
		req = uw.RawGetString("http_request")
	}
	L.Push(fn)
	L.Push(req)
	L.Call(1, 1)
	m := L.Get(-1)
	L.Pop(1)
	v.loaded.RawSetString("resty.http", m)
}
