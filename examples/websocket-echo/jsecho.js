// The JavaScript twin of echo.lua, a JSGI app (modifier1 24): text
// messages come as strings and are sent back as text, binary ones come
// as a Uint8Array and are sent back as binary.
module.exports = function (req) {
  uwsgi.websocket_handshake();
  for (;;) {
    let msg;
    try {
      msg = uwsgi.websocket_recv();
    } catch (e) {
      return null; // the peer closed the socket
    }
    if (msg instanceof Uint8Array) {
      uwsgi.websocket_send_binary(msg);
    } else {
      uwsgi.websocket_send(msg);
    }
  }
};
