package js

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

func TestJSGI(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		status  string
		headers []api.Header
		body    string
		chunks  []string // what each flush sent, when checked
		err     error    // errors.Is
		msg     string   // a substring of the error
	}{
		{name: "sync", src: `module.exports = (req) => ({status: 200, headers: {"Content-Type": "text/plain"}, body: "hello"});`,
			status: "200 OK", headers: []api.Header{{Name: "Content-Type", Value: "text/plain"}}, body: "hello"},
		{name: "array body", src: `module.exports = () => ({status: 201, headers: {}, body: ["a", new Uint8Array([98, 99]), "d"]});`,
			status: "201 Created", body: "abcd"},
		{name: "status string", src: `module.exports = () => ({status: "404 Gone Fishing", body: ["no"]});`,
			status: "404 Gone Fishing", body: "no"},
		{name: "unknown status code", src: `module.exports = () => ({status: 299, body: []});`, status: "299 Unknown"},
		{name: "repeated headers", src: `module.exports = () => ({status: 200, headers: {"Set-Cookie": ["a=1", "b=2"], "X-N": 3}, body: []});`,
			status: "200 OK", headers: []api.Header{{Name: "Set-Cookie", Value: "a=1"}, {Name: "Set-Cookie", Value: "b=2"}, {Name: "X-N", Value: "3"}}},
		{name: "no body", src: `module.exports = () => ({status: 204, headers: {}});`, status: "204 No Content"},
		{name: "bytes body", src: `module.exports = () => ({status: 200, body: new Uint8Array([0, 255])});`,
			status: "200 OK", body: "\x00\xff"},
		{name: "forEach streaming", src: `module.exports = () => ({status: 200, headers: {}, body: {
  forEach(write) { write("one "); write("two "); write(new Uint8Array([51])); }
}});`, status: "200 OK", body: "one two 3", chunks: []string{"one ", "two ", "3"}},
		{name: "async forEach", src: `module.exports = () => ({status: 200, body: {
  async forEach(write) {
    write("a");
    await new Promise((r) => setTimeout(r, 5));
    write("b");
  }
}});`, status: "200 OK", body: "ab", chunks: []string{"a", "b"}},
		{name: "generator body", src: `module.exports = () => ({status: 200, body: (function* () {
  yield "x";
  yield Promise.resolve("y");
  yield new Uint8Array([122]);
})()});`, status: "200 OK", body: "xyz", chunks: []string{"x", "y", "z"}},
		{name: "async handler", src: `module.exports = async (req) => {
  await new Promise((r) => setTimeout(r, 10));
  return {status: 200, headers: {}, body: ["waited"]};
};`, status: "200 OK", body: "waited"},
		{name: "promise body", src: `module.exports = () => ({status: 200, body: Promise.resolve(["p"])});`,
			status: "200 OK", body: "p"},
		{name: "JSGI exports.app", src: `exports.greeting = "hi";
exports.app = function (req) { return {status: 200, headers: {}, body: [this.greeting]}; };`,
			status: "200 OK", body: "hi"},
		{name: "null: answered by itself", src: `module.exports = () => null;`},

		{name: "rejection", src: `module.exports = async () => {
  await null;
  throw new Error("async failure");
};`, msg: "js: app.js:3:9: Error: async failure"},
		{name: "exception", src: `module.exports = () => { throw new RangeError("sync failure"); };`,
			msg: "js: app.js:1:32: RangeError: sync failure"},
		{name: "undefined", src: `module.exports = () => {};`, err: ErrBadResponse, msg: "returned undefined"},
		{name: "not an object", src: `module.exports = () => "text";`, err: ErrBadResponse, msg: "returned a string"},
		{name: "no status", src: `module.exports = () => ({body: []});`, err: ErrBadResponse, msg: "no status"},
		{name: "bad status number", src: `module.exports = () => ({status: 42, body: []});`, err: ErrBadResponse, msg: "invalid status 42"},
		{name: "bad status string", src: `module.exports = () => ({status: "OK", body: []});`, err: ErrBadResponse, msg: "invalid status"},
		{name: "status with CRLF", src: `module.exports = () => ({status: "200 OK\r\nX: y", body: []});`, err: ErrBadResponse},
		{name: "status object", src: `module.exports = () => ({status: {}, body: []});`, err: ErrBadResponse},
		{name: "headers not an object", src: `module.exports = () => ({status: 200, headers: "x", body: []});`,
			err: ErrBadResponse, msg: "headers must be an object"},
		{name: "header name", src: `module.exports = () => ({status: 200, headers: {"Bad Name": "x"}, body: []});`,
			err: ErrBadResponse, msg: "invalid header name"},
		{name: "header injection", src: `module.exports = () => ({status: 200, headers: {"X": "a\r\nEvil: 1"}, body: []});`,
			err: ErrBadResponse, msg: "CR, LF or NUL"},
		{name: "header value object", src: `module.exports = () => ({status: 200, headers: {"X": {}}, body: []});`,
			err: ErrBadResponse},
		{name: "header value null", src: `module.exports = () => ({status: 200, headers: {"X": null}, body: []});`,
			err: ErrBadResponse},
		{name: "body object", src: `module.exports = () => ({status: 200, body: {a: 1}});`, err: ErrBadResponse, msg: "body must be"},
		{name: "body chunk object", src: `module.exports = () => ({status: 200, body: ["a", {}]});`,
			err: ErrBadResponse, msg: "body[1]"},
		{name: "forEach throws", src: `module.exports = () => ({status: 200, body: {forEach(write) { write("a"); throw new Error("stream broke"); }}});`,
			msg: "stream broke", body: "a"},
		{name: "forEach bad chunk", src: `module.exports = () => ({status: 200, body: {forEach(write) { write(null); }}});`,
			err: ErrBadResponse},
		{name: "getter throws", src: `module.exports = () => ({status: 200, get body() { throw new Error("getter"); }});`,
			msg: "Error: getter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, map[string]string{"app.js": tt.src, "ok.js": `module.exports = () => ({status: 200, body: "ok"});`})
			p := w.load(Options{PoolSize: 1})
			rec, err := w.serve(context.Background(), p, "app", nginxVars(), "")
			switch {
			case tt.err == nil && tt.msg == "":
				if err != nil {
					t.Fatalf("ServeRequest: %v", err)
				}
			case err == nil:
				t.Fatalf("ServeRequest succeeded, want an error")
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("error %v, want one matching %v", err, tt.err)
			case !strings.Contains(err.Error(), tt.msg):
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			failed := tt.err != nil || tt.msg != ""
			switch {
			case failed && tt.body == "" && rec.HeaderSent():
				t.Errorf("the header was sent before the error: the host cannot answer 500")
			case failed && rec.body.String() != tt.body:
				t.Errorf("body %q, want %q", rec.body.String(), tt.body)
			case !failed && (rec.status != tt.status || !slices.Equal(rec.headers, tt.headers) || rec.body.String() != tt.body):
				t.Errorf("response %q %q %q, want %q %q %q", rec.status, rec.headers, rec.body.String(), tt.status, tt.headers, tt.body)
			}
			if tt.chunks != nil && !slices.Equal(rec.chunks, tt.chunks) {
				t.Errorf("flushed chunks %q, want %q", rec.chunks, tt.chunks)
			}
			// The runtime serves on.
			rec, err = w.serve(context.Background(), p, "ok", nginxVars(), "")
			if err != nil || rec.body.String() != "ok" {
				t.Errorf("next request: %q, %v", rec.body.String(), err)
			}
		})
	}
}

func TestJSGIWriteError(t *testing.T) {
	w := newWorld(t, map[string]string{"app.js": `
let caught = "";
module.exports = (req) => {
  if (req.pathInfo === "/caught") return {status: 200, body: [caught]};
  return {status: 200, body: {forEach(write) {
    write("first");
    try { write("second"); } catch (e) { caught = e.message; throw e; }
  }}};
};`})
	p := w.load(Options{PoolSize: 1})
	a := p.Apps()["app"]
	rec := &recorder{failAt: 8}
	err := a.ServeRequest(context.Background(), rec, &api.Request{Vars: nginxVars(), Body: strings.NewReader("")})
	if !errors.Is(err, errWriteFailed) {
		t.Fatalf("ServeRequest: %v, want the writer's error", err)
	}
	vars := nginxVars()
	vars[5].Value = []byte("/caught") // PATH_INFO
	rec, err = w.serve(context.Background(), p, "app", vars, "")
	if err != nil || !strings.Contains(rec.body.String(), "test: write failed") {
		t.Errorf("the script saw %q (%v), want the write error", rec.body.String(), err)
	}
}

func TestRequestObject(t *testing.T) {
	w := newWorld(t, map[string]string{"app.js": `
module.exports = (req) => {
  const seen = {};
  for (const k of Object.keys(req)) {
    if (k !== "input" && k !== "jsgi") seen[k] = req[k];
  }
  seen.jsgi = {version: req.jsgi.version, multithread: req.jsgi.multithread, multiprocess: req.jsgi.multiprocess,
    runOnce: req.jsgi.runOnce, frozen: Object.isFrozen(req.jsgi), errors: typeof req.jsgi.errors.write};
  seen.inputRead = typeof req.input.read;
  return {status: 200, headers: {}, body: [JSON.stringify(seen)]};
};`})
	p := w.load(Options{PoolSize: 1})
	rec, err := w.serve(context.Background(), p, "app", nginxVars("REMOTE_USER", "alice"), "hello world")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.body.String())
	}
	env := got["env"].(map[string]any)
	delete(got, "env")
	want := map[string]any{
		"method": "POST", "scriptName": "/app", "pathInfo": "/x/y", "queryString": "a=1&b=2",
		"host": "example.org:8080", "port": 8080.0, "scheme": "http", "version": []any{1.0, 1.0},
		"headers": map[string]any{
			"host": "example.org:8080", "user-agent": "curl/8.5.0", "accept": "*/*",
			"x-forwarded-for": "1.2.3.4, 5.6.7.8", "cookie": "a=1; b=2",
			"content-type": "text/plain", "content-length": "11",
		},
		"remoteAddr": "10.0.0.7", "remoteUser": "alice", "serverSoftware": "scripthost/" + api.Version,
		"jsgi": map[string]any{"version": []any{0.0, 3.0}, "multithread": false, "multiprocess": false,
			"runOnce": false, "frozen": true, "errors": "function"},
		"inputRead": "function",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request\n got  %v\n want %v", got, want)
	}
	if env["REQUEST_URI"] != "/app/x/y?a=1&b=2" || env["HTTP_COOKIE"] != "b=2" || len(env) != 20 {
		t.Errorf("env %v: want every var, the last duplicate winning", env)
	}

	for _, tt := range []struct {
		vars []string
		want string
	}{
		{nil, "http"},
		{[]string{"HTTPS", "on"}, "https"},
		{[]string{"HTTPS", "on", "HTTP_X_FORWARDED_PROTO", "ws"}, "ws"},
		{[]string{"HTTPS", "on", "HTTP_X_FORWARDED_PROTO", "ws", "UWSGI_SCHEME", "https"}, "https"},
	} {
		rec, err := w.serve(context.Background(), p, "app", nginxVars(tt.vars...), "")
		if err != nil || !strings.Contains(rec.body.String(), `"scheme":"`+tt.want+`"`) {
			t.Errorf("vars %q: scheme in %s (%v), want %s", tt.vars, rec.body.String(), err, tt.want)
		}
	}
}

func TestRequestHostFallback(t *testing.T) {
	w := newWorld(t, map[string]string{"app.js": `module.exports = (req) => ({status: 200, body: [req.host, " ", String(req.port), " ", String("remoteUser" in req)]});`})
	p := w.load(Options{PoolSize: 1})
	var vars = nginxVars()
	vars = slices.DeleteFunc(vars, func(v uwsgi.Var) bool { return string(v.Key) == "HTTP_HOST" || string(v.Key) == "SERVER_PORT" })
	rec, err := w.serve(context.Background(), p, "app", vars, "")
	if err != nil || rec.body.String() != "example.org 0 false" {
		t.Errorf("body %q, %v; want SERVER_NAME, port 0, no remoteUser", rec.body.String(), err)
	}
}

func TestInput(t *testing.T) {
	w := newWorld(t, map[string]string{"app.js": `
let kept;
module.exports = (req) => {
  if (req.pathInfo === "/later") return {status: 200, body: [String(kept.read())]};
  kept = req.input;
  const out = [];
  if (req.pathInfo === "/bytes") {
    const b = req.input.readBytes(2);
    out.push(b.constructor.name, String(b.length), String(b[0]), String(b[1]), String(req.input.readBytes()));
    out.push(String(req.input.readBytes()));
  } else {
    out.push(req.input.read(5), req.input.read(1), req.input.read(0), req.input.read(), String(req.input.read()));
  }
  return {status: 200, body: [out.join("|")]};
};`})
	p := w.load(Options{PoolSize: 1})
	rec, err := w.serve(context.Background(), p, "app", nginxVars(), "hello world")
	if want := "hello| ||world|null"; err != nil || rec.body.String() != want {
		t.Errorf("body %q, %v; want %q", rec.body.String(), err, want)
	}
	vars := nginxVars()
	vars[5].Value = []byte("/bytes")
	rec, err = w.serve(context.Background(), p, "app", vars, "\xff\x00z")
	if want := "Uint8Array|2|255|0|122|null"; err != nil || rec.body.String() != want {
		t.Errorf("body %q, %v; want %q", rec.body.String(), err, want)
	}
	// An input kept by the script reads nothing once its request ended.
	vars[5].Value = []byte("/later")
	rec, err = w.serve(context.Background(), p, "app", vars, "new body")
	if err != nil || rec.body.String() != "null" {
		t.Errorf("old input read %q, %v; want null", rec.body.String(), err)
	}
}

func TestInputLimit(t *testing.T) {
	w := newWorld(t, map[string]string{"app.js": `
module.exports = (req) => {
  if (req.pathInfo === "/part") return {status: 200, body: [req.input.read(1e9), "|", req.input.read()]};
  return {status: 200, body: [req.input.read()]};
};`})
	p := w.load(Options{PoolSize: 1, MaxStringSize: 8})
	_, err := w.serve(context.Background(), p, "app", nginxVars(), "0123456789")
	if !errors.Is(err, ErrStringTooLarge) {
		t.Errorf("reading a body over the limit: %v, want ErrStringTooLarge", err)
	}
	vars := nginxVars()
	vars[5].Value = []byte("/part")
	rec, err := w.serve(context.Background(), p, "app", vars, "0123456789")
	if err != nil || rec.body.String() != "01234567|89" {
		t.Errorf("body %q, %v; want the body read in parts", rec.body.String(), err)
	}
}

func TestRequestNotShared(t *testing.T) {
	w := newWorld(t, map[string]string{"app.js": `
let previous = null;
module.exports = (req) => {
  const same = previous === req || (previous !== null && previous.headers === req.headers);
  previous = req;
  req.headers.injected = "x";
  return {status: 200, body: [String(same), " ", String(req.headers.injected === "x" && previous === req)]};
};`})
	p := w.load(Options{PoolSize: 1})
	for range 2 {
		rec, err := w.serve(context.Background(), p, "app", nginxVars(), "")
		if err != nil || rec.body.String() != "false true" {
			t.Errorf("body %q, %v", rec.body.String(), err)
		}
	}
}
