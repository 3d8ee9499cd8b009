-- A chat room: the page at / connects to the WebSocket at /ws; every
-- text message a client sends is broadcast to every connected client.
--
--   scripthost serve --scripts examples/chat --http 127.0.0.1:8080
--
-- The page is this file's app. The WebSockets of the same route are the
-- consumers': the host holds each socket without an interpreter, and
-- runs a consumer only when something happens on it. Each socket's
-- reply channel joins the group "chat" while it is open.

uwsgi.register_consumer("websocket.connect", function(msg)
  uwsgi.group_add("chat", msg.reply_channel)
end)

uwsgi.register_consumer("websocket.receive", function(msg)
  if not msg.binary then
    uwsgi.group_send("chat", {content = msg.content})
  end
end)

uwsgi.register_consumer("websocket.disconnect", function(msg)
  uwsgi.group_discard("chat", msg.reply_channel)
end)

local page = [[<!doctype html>
<html>
<head><meta charset="utf-8"><title>scripthost chat</title></head>
<body>
<h1>Chat</h1>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" autofocus> <button>Send</button></form>
<script>
const log = document.getElementById("log");
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/ws");
function line(s) {
  const li = document.createElement("li");
  li.textContent = s;
  log.appendChild(li);
}
// ?say=TEXT sends TEXT once connected (a link that greets the room).
ws.onopen = () => {
  const say = new URLSearchParams(location.search).get("say");
  if (say) ws.send(say);
};
ws.onmessage = (e) => line(e.data);
ws.onclose = (e) => line("(closed " + e.code + ")");
document.getElementById("say").onsubmit = (e) => {
  e.preventDefault();
  const text = document.getElementById("text");
  if (text.value !== "") ws.send(text.value);
  text.value = "";
};
</script>
</body>
</html>
]]

return function(env)
  if env.PATH_INFO ~= "/" and env.PATH_INFO ~= "" then
    return 404, {["Content-Type"] = "text/plain"}, coroutine.wrap(function() coroutine.yield("not found\n") end)
  end
  return 200, {["Content-Type"] = "text/html; charset=utf-8"}, coroutine.wrap(function() coroutine.yield(page) end)
end
