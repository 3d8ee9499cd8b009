-- A WebSocket echo server on uWSGI's websocket API, as in uWSGI's
-- WebSocket documentation: answer the handshake, then send back every
-- message until the peer closes. It runs unmodified on uWSGI's Lua plugin
--
--   uwsgi --plugin lua --http-socket :8080 --http-socket-modifier1 6 --lua echo.lua
--
-- and on scripthost (the app is "echo", Lua's modifier1 is 6):
--
--   scripthost serve --scripts examples/websocket-echo --http 127.0.0.1:8080
--
-- websocket_recv waits for the next message and raises an error once the
-- socket is closed; Lua strings hold text and binary messages alike, so
-- everything is echoed as text, as uWSGI does.
local function echo(env)
  uwsgi.websocket_handshake()
  while true do
    local ok, msg = pcall(uwsgi.websocket_recv)
    if not ok then
      break -- the peer closed the socket
    end
    uwsgi.websocket_send(msg)
  end
end

return echo
