package js

import "github.com/dop251/goja"

// fetchSrc builds fetch, Response and Headers over uwsgi.http_request:
// the request runs while fetch is called (the call's interpreter waits
// for it, as with every uwsgi function), and the promise it returns is
// already settled. A failure (refused address, timeout, bad URL) rejects
// it with a TypeError, as fetch does. The body is text: arrayBuffer()
// gives its UTF-8 bytes.
const fetchSrc = `(function (httpRequest) {
  "use strict";
  const lower = (n) => String(n).toLowerCase();
  class Headers {
    constructor(init) {
      this._m = new Map();
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init) for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(k, v) { const n = lower(k); const p = this._m.get(n); this._m.set(n, p === undefined ? String(v) : p + ", " + v); }
    set(k, v) { this._m.set(lower(k), String(v)); }
    get(k) { const v = this._m.get(lower(k)); return v === undefined ? null : v; }
    has(k) { return this._m.has(lower(k)); }
    delete(k) { this._m.delete(lower(k)); }
    forEach(fn, self) { for (const [k, v] of this._m) fn.call(self, v, k, this); }
    entries() { return this._m.entries(); }
    keys() { return this._m.keys(); }
    values() { return this._m.values(); }
    [Symbol.iterator]() { return this._m.entries(); }
  }
  const utf8 = (s) => {
    const out = [];
    for (const ch of s) {
      let c = ch.codePointAt(0);
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | c >> 6, 0x80 | c & 63);
      else if (c < 0x10000) out.push(0xe0 | c >> 12, 0x80 | c >> 6 & 63, 0x80 | c & 63);
      else out.push(0xf0 | c >> 18, 0x80 | c >> 12 & 63, 0x80 | c >> 6 & 63, 0x80 | c & 63);
    }
    return new Uint8Array(out).buffer;
  };
  class Response {
    constructor(body, init) {
      init = init || {};
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || "";
      this.ok = this.status >= 200 && this.status < 300;
      this.headers = new Headers(init.headers);
      this.url = init.url || "";
      this._body = body == null ? "" : String(body);
      this.bodyUsed = false;
    }
    _take() {
      if (this.bodyUsed) return Promise.reject(new TypeError("body already used"));
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    text() { return this._take(); }
    json() { return this._take().then((s) => JSON.parse(s)); }
    arrayBuffer() { return this._take().then(utf8); }
  }
  function fetch(input, init) {
    init = init || {};
    return new Promise((resolve, reject) => {
      const url = String(input && input.url !== undefined ? input.url : input);
      const opts = {method: init.method || "GET"};
      if (init.body != null) opts.body = String(init.body);
      if (init.headers) {
        const h = new Headers(init.headers), pairs = [];
        h.forEach((v, k) => pairs.push([k, v]));
        opts.headers = pairs;
      }
      let r;
      try {
        r = httpRequest(url, opts);
      } catch (e) {
        reject(new TypeError("fetch failed: " + (e && e.message !== undefined ? e.message : e)));
        return;
      }
      resolve(new Response(r.body, {status: r.status, statusText: r.reason, headers: r.headers, url}));
    });
  }
  return {fetch, Response, Headers};
})`

// openFetch installs fetch, Response and Headers as globals.
func (v *vm) openFetch() {
	rt := v.rt
	factory, err := rt.RunString(fetchSrc)
	if err != nil {
		panic("js: fetch: " + err.Error()) // a constant that compiles
	}
	make, _ := goja.AssertFunction(factory)
	res, err := make(goja.Undefined(), v.uwsgi.Get("http_request"))
	if err != nil {
		panic("js: fetch: " + err.Error())
	}
	obj := res.(*goja.Object)
	for _, name := range []string{"fetch", "Response", "Headers"} {
		rt.GlobalObject().DefineDataProperty(name, obj.Get(name), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
}
