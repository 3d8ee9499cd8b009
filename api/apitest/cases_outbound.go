package apitest

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The outbound HTTP client's cases, against a local server.

func init() {
	maps.Copy(luaScripts, outboundLua)
	maps.Copy(jsScripts, outboundJS)
	maps.Copy(goScripts, outboundGo)
}

func outboundCases() []Case {
	return []Case{
		{Name: "http_request/get", Funcs: fns("http_request"), Want: `200 "hello" "yes" "text/plain"`},
		{Name: "http_request/post", Funcs: fns("http_request"), Want: `201 "POST a=1 tok"`},
		{Name: "http_request/refused", Funcs: fns("http_request"), Want: `"failed" "failed"`},
		{Name: "http_request/bad_arguments", Funcs: fns("http_request"),
			Want: "bad argument #1 to uwsgi.http_request;bad argument #2 to uwsgi.http_request;" +
				"bad argument #2 to uwsgi.http_request;failed"},
	}
}

// startHTTP starts the server of {{HTTP_URL}}: /hello, and /echo, which
// answers 201 with the method, the body and the Authorization header.
func startHTTP(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hello":
			w.Header().Set("X-Test", "yes")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "%s %s %s", r.Method, body, r.Header.Get("Authorization"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var outboundLua = map[string]string{
	"http_request/get": `
uwsgi.register_rpc("t", function()
  local r = uwsgi.http_request("{{HTTP_URL}}/hello")
  return shows(r.status, r.body, r.headers["x-test"], r.headers["content-type"])
end)`,
	"http_request/post": `
local http = require("resty.http")
uwsgi.register_rpc("t", function()
  local httpc = http.new()
  local r, err = httpc:request_uri("{{HTTP_URL}}/echo", {method = "POST", body = "a=1", headers = {Authorization = "tok"}})
  if not r then return err end
  local r2 = http.request{url = "{{HTTP_URL}}/echo", method = "POST", body = "a=1", headers = {Authorization = "tok"}}
  if r2.body ~= r.body then return "request and request_uri differ" end
  local none, why = http.request{url = "http://127.0.0.1:1/"}
  if none ~= nil or not string.find(why, "refused", 1, true) then return "no error: " .. tostring(why) end
  return shows(r.status, r.body)
end)`,
	"http_request/refused": `
uwsgi.register_rpc("t", function()
  return shows(fails("not allowed", uwsgi.http_request, "http://169.254.169.254/latest/meta-data/"),
    fails("connection refused", uwsgi.http_request, "http://127.0.0.1:1/"))
end)`,
	"http_request/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.http_request), argerr(uwsgi.http_request, "http://x/", "opts"),
    argerr(uwsgi.http_request, "http://x/", {bogus = 1}), fails("want http or https", uwsgi.http_request, "ftp://x/")}, ";")
end)`,
}

var outboundJS = map[string]string{
	"http_request/get": `
uwsgi.register_rpc("t", async () => {
  const r = await fetch("{{HTTP_URL}}/hello");
  return shows(r.status, await r.text(), r.headers.get("X-Test"), r.headers.get("content-type"));
});`,
	"http_request/post": `
uwsgi.register_rpc("t", async () => {
  const r = await fetch("{{HTTP_URL}}/echo", {method: "POST", body: "a=1", headers: {Authorization: "tok"}});
  return shows(r.status, await r.text());
});`,
	"http_request/refused": `
uwsgi.register_rpc("t", async () => {
  const out = [];
  for (const [url, text] of [["http://169.254.169.254/latest/meta-data/", "not allowed"], ["http://127.0.0.1:1/", "connection refused"]]) {
    try { await fetch(url); out.push("no error"); } catch (e) { out.push(e instanceof TypeError && e.message.includes(text) ? "failed" : "other error: " + e); }
  }
  return shows(...out);
});`,
	"http_request/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.http_request), argerr(uwsgi.http_request, "http://x/", "opts"),
  argerr(uwsgi.http_request, "http://x/", {bogus: 1}), fails("want http or https", uwsgi.http_request, "ftp://x/")].join(";"));`,
}

var outboundGo = map[string]string{
	"http_request/get": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		v, err := uwsgi.HttpRequest("{{HTTP_URL}}/hello")
		if err != nil {
			return err.Error()
		}
		r := v.(map[string]any)
		h := r["headers"].(map[string]any)
		return shows(r["status"], r["body"], h["x-test"], h["content-type"])
	})
}`,
	"http_request/post": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		v, err := uwsgi.HttpRequest("{{HTTP_URL}}/echo", map[string]any{"method": "POST", "body": "a=1",
			"headers": map[string]string{"Authorization": "tok"}})
		if err != nil {
			return err.Error()
		}
		r := v.(map[string]any)
		return shows(r["status"], r["body"])
	})
}`,
	"http_request/refused": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(fails("not allowed")(uwsgi.HttpRequest("http://169.254.169.254/latest/meta-data/")),
			fails("connection refused")(uwsgi.HttpRequest("http://127.0.0.1:1/")))
	})
}`,
	"http_request/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.HttpRequest()), argerr(uwsgi.HttpRequest("http://x/", "opts")),
			argerr(uwsgi.HttpRequest("http://x/", map[string]any{"bogus": 1})),
			fails("want http or https")(uwsgi.HttpRequest("ftp://x/"))}, ";")
	})
}`,
}
