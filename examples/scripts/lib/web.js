// Small helpers for JSGI apps: query/form parsing and responses, loaded
// with require('./lib/web').
function unescape(s) {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

// parse('a=1&b=x%20y') -> {a: '1', b: 'x y'}
exports.parse = function (qs) {
  const out = {};
  for (const pair of (qs || '').split('&')) {
    if (!pair) continue;
    const i = pair.indexOf('=');
    const k = i < 0 ? pair : pair.slice(0, i);
    if (k) out[unescape(k)] = i < 0 ? '' : unescape(pair.slice(i + 1));
  }
  return out;
};

// utf8Length counts the bytes of s in UTF-8 (for Content-Length).
function utf8Length(s) {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

// respond(status, body[, content type]) builds a JSGI response.
exports.respond = function (status, body, type) {
  return {
    status,
    headers: {
      'Content-Type': type || 'text/plain; charset=utf-8',
      'Content-Length': String(utf8Length(body)),
    },
    body: [body],
  };
};
