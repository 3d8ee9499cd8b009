package scripthost_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// httpConsumers answer http.request in each language with what they saw
// of the request message.
var httpConsumers = map[string]string{
	"lua": `
local function pairs_(l)
  local out = {}
  for i, p in ipairs(l) do out[i] = p[1] .. "=" .. p[2] end
  return "[" .. table.concat(out, ",") .. "]"
end
uwsgi.register_consumer("http.request", function(msg)
  if msg.path_info == "/fail" then error("consumer failed on purpose") end
  local body = table.concat({msg.method, msg.path, msg.path_info, pairs_(msg.GET), pairs_(msg.POST),
    msg.COOKIES.a, msg.META.REQUEST_METHOD, msg.channel}, " ")
  uwsgi.channel_send(msg.response_channel, {status_code = 201, content_type = "text/plain",
    headers = {["X-Lang"] = "lua"}, content = body})
end)`,
	"js": `
const pairs = (l) => "[" + l.map((p) => p[0] + "=" + p[1]).join(",") + "]";
uwsgi.register_consumer("http.request", (msg) => {
  if (msg.path_info === "/fail") throw new Error("consumer failed on purpose");
  const body = [msg.method, msg.path, msg.path_info, pairs(msg.GET), pairs(msg.POST),
    msg.COOKIES.a, msg.META.REQUEST_METHOD, msg.channel].join(" ");
  uwsgi.channel_send(msg.response_channel, {status_code: 201, content_type: "text/plain",
    headers: {"X-Lang": "js"}, content: body});
});`,
	"go": `package main

import (
	"errors"
	"strings"

	"scripthost/uwsgi"
)

func pairs(v any) string {
	l, _ := v.([]any)
	var out []string
	for _, p := range l {
		pp := p.([]any)
		out = append(out, pp[0].(string)+"="+pp[1].(string))
	}
	return "[" + strings.Join(out, ",") + "]"
}

func main() {
	uwsgi.RegisterConsumer("http.request", func(msg map[string]any) error {
		if msg["path_info"] == "/fail" {
			return errors.New("consumer failed on purpose")
		}
		cookies := msg["COOKIES"].(map[string]any)
		meta := msg["META"].(map[string]any)
		body := strings.Join([]string{msg["method"].(string), msg["path"].(string), msg["path_info"].(string),
			pairs(msg["GET"]), pairs(msg["POST"]), cookies["a"].(string), meta["REQUEST_METHOD"].(string),
			msg["channel"].(string)}, " ")
		uwsgi.ChannelSend(msg["response_channel"], map[string]any{"status_code": 201, "content_type": "text/plain",
			"headers": map[string]any{"X-Lang": "go"}, "content": body})
		return nil
	})
}
`,
}

var extOf = map[string]string{"lua": ".lua", "js": ".js", "go": ".go"}

// A request routed to a file whose consumer serves http.request, over a
// real loopback socket: uwsgi packet in, the consumer's HTTP response
// out; the file is mounted (--mount /shop=shop) and is the default app.
func TestHTTPConsumer(t *testing.T) {
	for lang, src := range httpConsumers {
		t.Run(lang, func(t *testing.T) {
			dir := scriptsDir(t, map[string]string{"shop" + extOf[lang]: src})
			h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true},
				Routes: host.Routes{Mounts: map[string]string{"/shop": "shop"}}})
			addr, _ := serve(t, h.Serve)
			c := uwsgi.NewClient(addr)
			defer c.Close()

			req, _ := http.NewRequest("POST", "http://localhost/shop/items?x=1&y=a%20b", strings.NewReader("p=q&r=s"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", "a=b; c=d")
			status, hdr, body := do(t, c, req)
			want := "POST /shop/items /items [x=1,y=a b] [p=q,r=s] b POST http.request"
			if status != 201 || body != want || hdr.Get("X-Lang") != lang || hdr.Get("Content-Type") != "text/plain" {
				t.Errorf("got %d %q (X-Lang %q, Content-Type %q), want 201 %q", status, body,
					hdr.Get("X-Lang"), hdr.Get("Content-Type"), want)
			}

			// Not mounted: the consumer's file is the default app.
			req, _ = http.NewRequest("GET", "http://localhost/other", nil)
			req.Header.Set("Cookie", "a=z")
			if status, _, body := do(t, c, req); status != 201 || body != "GET /other /other [] [] z GET http.request" {
				t.Errorf("default route: got %d %q", status, body)
			}

			// A consumer that fails answers 500.
			req, _ = http.NewRequest("GET", "http://localhost/fail", nil)
			req.Header.Set("Cookie", "a=z")
			if status, _, _ := do(t, c, req); status != 500 {
				t.Errorf("failing consumer: status %d, want 500", status)
			}
		})
	}
}

// After a reload, requests reach the new generation's consumer.
func TestHTTPConsumerReload(t *testing.T) {
	consumer := func(v string) string {
		return `uwsgi.register_consumer("http.request", function(msg)
  uwsgi.channel_send(msg.response_channel, {content = "v` + v + `"})
end)`
	}
	dir := scriptsDir(t, map[string]string{"app.lua": consumer("1")})
	h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true}})
	addr, _ := serve(t, h.Serve)
	c := uwsgi.NewClient(addr)
	defer c.Close()
	get := func() string {
		req, _ := http.NewRequest("GET", "http://localhost/", nil)
		status, hdr, body := do(t, c, req)
		if status != 200 || hdr.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("status %d, Content-Type %q; want 200 and the default type", status, hdr.Get("Content-Type"))
		}
		return body
	}
	if got := get(); got != "v1" {
		t.Fatalf("before the reload: %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.lua"), []byte(consumer("2")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "v2" {
		t.Errorf("after the reload: %q, want the new consumer's v2", got)
	}
}

func do(t *testing.T, c *uwsgi.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Do(ctxTimeout(t), 0, 0, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// A client that leaves before the consumer answers sends http.disconnect
// with the request's keys; UWSGI_APPID picks the consumer's route.
func TestHTTPConsumerDisconnect(t *testing.T) {
	dir := scriptsDir(t, map[string]string{
		"app.lua": `return function(env) return 200, {}, coroutine.wrap(function() coroutine.yield("app") end) end`,
		"slow.lua": `
uwsgi.register_consumer("http.request", function(msg)
  uwsgi.cache_update("seen", msg.path_info)
end)
uwsgi.register_consumer("http.disconnect", function(msg)
  uwsgi.cache_update("gone", msg.method .. " " .. msg.path_info .. " " .. msg.channel)
end)`,
	})
	h := newHost(t, scripthost.Config{Scripts: dir, Watch: scripthost.Watch{Disabled: true}})
	addr, _ := serve(t, h.Serve)
	req, _ := http.NewRequest("GET", "http://localhost/wait", nil)
	packet, err := uwsgi.BuildRequest(0, 0, req, uwsgi.Vars{{Key: []byte("UWSGI_APPID"), Value: []byte("slow")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(packet); err != nil {
		t.Fatal(err)
	}
	cache, _ := h.Cache("")
	waitItem := func(key, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			it, err := cache.Get(ctxTimeout(t), []byte(key))
			if err == nil && string(it.Value) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache %s = %q (%v), want %q", key, it.Value, err, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitItem("seen", "/wait")
	conn.Close()
	waitItem("gone", "GET /wait http.disconnect")
}

func TestChannelConfig(t *testing.T) {
	h := newHost(t, scripthost.Config{Channels: api.ChannelConfig{Capacity: 2, Expiry: time.Second}, ConsumerWorkers: 3})
	l := h.State().Channels.(*api.MemoryLayer)
	if c := l.Config(); c.Capacity != 2 || c.Expiry != time.Second || c.GroupExpiry != api.DefaultGroupExpiry {
		t.Errorf("layer config %+v", c)
	}
	if w := h.State().Consumers.Workers; w != 3 {
		t.Errorf("consumer workers %d, want 3", w)
	}
	if got := h.State().Options["channel-capacity"]; got != "2" {
		t.Errorf("opt channel-capacity = %q", got)
	}
}
