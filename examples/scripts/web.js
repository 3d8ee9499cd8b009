// The JavaScript twin of app.lua: the same note board as a JSGI app
// (modifier1 24), sharing the cache and the RPC registry with the Lua app.
//
//   GET  /                     a greeting
//   GET  /hello?name=NAME      "Hello, NAME!" (from JS), plus the Lua RPC's answer
//   POST /notes   (form: text=...)   stores a note, returns its id (413 when
//                                    it is too large for the cache)
//   GET  /notes?id=N           returns note N, 404 if unknown
//   GET  /stats                requests served, notes stored, timer ticks
//   GET  /stream               a body sent in three chunks, after an await
//
// RPC functions: js_hello([name]), js_notes() (how many notes exist).
// A timer raises signal 31 every 10 seconds; its handler counts ticks.
// Counters are uWSGI's (cache_inc/cache_num); cache_inc and cache_update
// return null when they could not store anything, which the app checks.
const { parse, respond } = require('./lib/web');

function greet(name) {
  return 'Hello, ' + (name || 'world') + '!';
}

uwsgi.register_rpc('js_hello', greet);
uwsgi.register_rpc('js_notes', () => String(uwsgi.cache_num('notes')));

uwsgi.register_signal(31, '', () => { uwsgi.cache_inc('js_ticks'); });
uwsgi.add_timer(31, 10);

module.exports = async function (req) {
  uwsgi.cache_inc('requests');
  const q = parse(req.queryString);
  switch (req.pathInfo) {
    case '/':
      return respond(200, 'scripthost JavaScript example: try /hello?name=you, /notes, /stats, /stream\n');
    case '/hello':
      // uwsgi.call reaches the Lua app's RPC function in the same process.
      return respond(200, greet(q.name) + ' (Lua says: ' + uwsgi.call('hello', q.name || 'world') + ')\n');
    case '/notes':
      if (req.method === 'POST') {
        const form = parse(req.input.read() || '');
        if (!form.text) return respond(400, 'missing text\n');
        const id = uwsgi.cache_inc('notes');
        if (id === null) return respond(500, 'cannot number the note\n');
        if (uwsgi.cache_update('note:' + id, form.text) === null) {
          return respond(413, 'note too large for the cache\n');
        }
        return respond(201, id + '\n');
      } else {
        const text = q.id && uwsgi.cache_get('note:' + q.id);
        return text === null || !text ? respond(404, 'no such note\n') : respond(200, text + '\n');
      }
    case '/stats':
      return respond(200, ['requests', 'notes', 'js_ticks']
        .map((k) => k + '=' + uwsgi.cache_num(k)).join(' ') + '\n');
    case '/stream':
      await new Promise((resolve) => setTimeout(resolve, 10));
      return {
        status: 200,
        headers: { 'Content-Type': 'text/plain' },
        body: { forEach(write) { for (let i = 1; i <= 3; i++) write('chunk ' + i + '\n'); } },
      };
  }
  return respond(404, 'not found\n');
};
