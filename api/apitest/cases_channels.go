package apitest

import (
	"context"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
)

// channelCases are the cases of the channel functions (consumers,
// channels, groups); their scripts are in the maps below, merged into
// each language's table.
func channelCases() []Case {
	return []Case{
		{Name: "register_consumer/delivers", Funcs: fns("register_consumer", "channel_send", "cache_update"), Want: "true",
			Check: func(f *Fixture) {
				f.WaitCache("got", `"x" 3 ["a","b"] true "work"`)
				file, ok := f.Registrations.ConsumerFile("work")
				if want := "case" + f.Engine.Extensions()[0]; !ok || file != want {
					f.T.Errorf("consumer of work registered by %q (%v), want %q", file, ok, want)
				}
			}},
		{Name: "register_consumer/replace", Funcs: fns("register_consumer", "channel_send", "cache_update"), Want: "true true true",
			Check: func(f *Fixture) { f.WaitCache("got", "second") }},
		{Name: "register_consumer/consumer_error", Funcs: fns("register_consumer", "channel_send"), Want: "true",
			Check: func(f *Fixture) {
				f.Eventually("the consumer's failure logged", func() bool { _, ok := f.Log.Find("consumer failed"); return ok })
			}},
		{Name: "register_consumer/bad_arguments", Funcs: fns("register_consumer"),
			Want: "bad argument #1 to uwsgi.register_consumer;bad argument #1 to uwsgi.register_consumer;" +
				"bad argument #2 to uwsgi.register_consumer"},
		{Name: "channel_send/full", Funcs: fns("channel_send"), Want: "100 nil nil",
			Note: "a full channel (capacity 100) and a message over 1 MiB are runtime conditions: nil, as cache_set answers"},
		{Name: "channel_send/bad_arguments", Funcs: fns("channel_send"),
			Want: "bad argument #1 to uwsgi.channel_send;bad argument #1 to uwsgi.channel_send;" +
				"bad argument #2 to uwsgi.channel_send;bad argument #2 to uwsgi.channel_send"},
		{Name: "new_channel/names", Funcs: fns("new_channel"), Want: "true true true;bad argument #1 to uwsgi.new_channel"},
		{Name: "group_send/members", Funcs: fns("group_add", "group_discard", "group_send"), Want: "true true true true true true",
			Check: func(f *Fixture) {
				for _, want := range []struct{ ch, texts string }{{"client!a", "one two"}, {"client!b", "one"}} {
					var got []string
					for {
						ctx, cancel := context.WithTimeout(f.Ctx, 50*time.Millisecond)
						m, err := f.State.Channels.Receive(ctx, want.ch)
						cancel()
						if err != nil {
							break
						}
						got = append(got, api.FormatValue(m["text"]))
					}
					if s := strings.Join(got, " "); s != want.texts {
						f.T.Errorf("%s received %q, want %q", want.ch, s, want.texts)
					}
				}
			}},
		{Name: "group_add/bad_arguments", Funcs: fns("group_add", "group_discard", "group_send"),
			Want: "bad argument #1 to uwsgi.group_add;bad argument #2 to uwsgi.group_add;" +
				"bad argument #1 to uwsgi.group_discard;bad argument #2 to uwsgi.group_send"},
	}
}

func init() {
	for lang, scripts := range map[string]map[string]string{"lua": luaChannelScripts, "js": jsChannelScripts, "go": goChannelScripts} {
		for name, src := range scripts {
			languageScripts(lang)[name] = src
		}
	}
}

// languageScripts returns the script table of lang (the JavaScript one
// registers itself in an init of its own file).
func languageScripts(lang string) map[string]string {
	switch lang {
	case "lua":
		return luaScripts
	case "js":
		return jsScripts
	}
	return goScripts
}

var luaChannelScripts = map[string]string{
	"register_consumer/delivers": `
uwsgi.register_consumer("work", function(msg)
  uwsgi.cache_update("got", shows(msg.v, msg.n, msg.list, msg.m.k, msg.channel))
end)
uwsgi.register_rpc("t", function()
  return show(uwsgi.channel_send("work", {v = "x", n = 3, list = {"a", "b"}, m = {k = true}}))
end)`,
	"register_consumer/replace": `
local first = uwsgi.register_consumer("work", function(msg) uwsgi.cache_update("got", "first") end)
local second = uwsgi.register_consumer("work", function(msg) uwsgi.cache_update("got", msg.v) end)
uwsgi.register_rpc("t", function() return shows(first, second, uwsgi.channel_send("work", {v = "second"})) end)`,
	"register_consumer/consumer_error": `
uwsgi.register_consumer("work", function(msg) error("consumer broke") end)
uwsgi.register_rpc("t", function() return show(uwsgi.channel_send("work", {})) end)`,
	"register_consumer/bad_arguments": `
local fn = function() end
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.register_consumer, "no spaces", fn), argerr(uwsgi.register_consumer, {}, fn),
    argerr(uwsgi.register_consumer, "work", "notfn")}, ";")
end)`,
	"channel_send/full": `
uwsgi.register_rpc("t", function()
  local n = 0
  for i = 1, 101 do
    if uwsgi.channel_send("nobody.reads", {i = i}) then n = n + 1 end
  end
  return shows(n, uwsgi.channel_send("nobody.reads", {}), uwsgi.channel_send("big", {s = string.rep("x", 2 * 1024 * 1024)}))
end)`,
	"channel_send/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.channel_send, "a b", {}), argerr(uwsgi.channel_send, string.rep("c", 201), {}),
    argerr(uwsgi.channel_send, "c", "text"), argerr(uwsgi.channel_send, "c", {f = function() end})}, ";")
end)`,
	"new_channel/names": `
uwsgi.register_rpc("t", function()
  local a, b = uwsgi.new_channel(), uwsgi.new_channel("http.response")
  return shows(a:sub(1, 9) == "specific!", b:sub(1, 14) == "http.response!", a ~= uwsgi.new_channel()) ..
    ";" .. argerr(uwsgi.new_channel, "a!b")
end)`,
	"group_send/members": `
uwsgi.register_rpc("t", function()
  return shows(uwsgi.group_add("room", "client!a"), uwsgi.group_add("room", "client!b"),
    uwsgi.group_send("room", {text = "one"}), uwsgi.group_discard("room", "client!b"),
    uwsgi.group_discard("room", "never!added"), uwsgi.group_send("room", {text = "two"}))
end)`,
	"group_add/bad_arguments": `
uwsgi.register_rpc("t", function()
  return table.concat({argerr(uwsgi.group_add, "room!1", "c"), argerr(uwsgi.group_add, "room", "c d"),
    argerr(uwsgi.group_discard, "", "c"), argerr(uwsgi.group_send, "room", 5)}, ";")
end)`,
}

var jsChannelScripts = map[string]string{
	"register_consumer/delivers": `
uwsgi.register_consumer("work", (msg) => {
  uwsgi.cache_update("got", shows(msg.v, msg.n, msg.list, msg.m.k, msg.channel));
});
uwsgi.register_rpc("t", () => show(uwsgi.channel_send("work", {v: "x", n: 3, list: ["a", "b"], m: {k: true}})));`,
	"register_consumer/replace": `
const first = uwsgi.register_consumer("work", (msg) => { uwsgi.cache_update("got", "first"); });
const second = uwsgi.register_consumer("work", (msg) => { uwsgi.cache_update("got", msg.v); });
uwsgi.register_rpc("t", () => shows(first, second, uwsgi.channel_send("work", {v: "second"})));`,
	"register_consumer/consumer_error": `
uwsgi.register_consumer("work", (msg) => { throw new Error("consumer broke"); });
uwsgi.register_rpc("t", () => show(uwsgi.channel_send("work", {})));`,
	"register_consumer/bad_arguments": `
const fn = () => {};
uwsgi.register_rpc("t", () => [argerr(uwsgi.register_consumer, "no spaces", fn), argerr(uwsgi.register_consumer, {}, fn),
  argerr(uwsgi.register_consumer, "work", "notfn")].join(";"));`,
	"channel_send/full": `
uwsgi.register_rpc("t", () => {
  let n = 0;
  for (let i = 1; i <= 101; i++) {
    if (uwsgi.channel_send("nobody.reads", {i: i})) n++;
  }
  return shows(n, uwsgi.channel_send("nobody.reads", {}), uwsgi.channel_send("big", {s: "x".repeat(2 * 1024 * 1024)}));
});`,
	"channel_send/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.channel_send, "a b", {}), argerr(uwsgi.channel_send, "c".repeat(201), {}),
  argerr(uwsgi.channel_send, "c", "text"), argerr(uwsgi.channel_send, "c", {f: () => {}})].join(";"));`,
	"new_channel/names": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.new_channel(), b = uwsgi.new_channel("http.response");
  return shows(a.startsWith("specific!"), b.startsWith("http.response!"), a !== uwsgi.new_channel()) +
    ";" + argerr(uwsgi.new_channel, "a!b");
});`,
	"group_send/members": `
uwsgi.register_rpc("t", () => shows(uwsgi.group_add("room", "client!a"), uwsgi.group_add("room", "client!b"),
  uwsgi.group_send("room", {text: "one"}), uwsgi.group_discard("room", "client!b"),
  uwsgi.group_discard("room", "never!added"), uwsgi.group_send("room", {text: "two"})));`,
	"group_add/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.group_add, "room!1", "c"), argerr(uwsgi.group_add, "room", "c d"),
  argerr(uwsgi.group_discard, "", "c"), argerr(uwsgi.group_send, "room", 5)].join(";"));`,
}

var goChannelScripts = map[string]string{
	"register_consumer/delivers": `
func init() {
	uwsgi.RegisterConsumer("work", func(msg map[string]any) {
		m := msg["m"].(map[string]any)
		uwsgi.CacheUpdate("got", shows(msg["v"], msg["n"], msg["list"], m["k"], msg["channel"]))
	})
	uwsgi.RegisterRpc("t", func() string {
		return show(val(uwsgi.ChannelSend("work", map[string]any{"v": "x", "n": 3, "list": []any{"a", "b"}, "m": map[string]any{"k": true}})))
	})
}`,
	"register_consumer/replace": `
func init() {
	first := val(uwsgi.RegisterConsumer("work", func(msg map[string]any) { uwsgi.CacheUpdate("got", "first") }))
	second := val(uwsgi.RegisterConsumer("work", func(msg map[string]any) { uwsgi.CacheUpdate("got", msg["v"]) }))
	uwsgi.RegisterRpc("t", func() string {
		return shows(first, second, val(uwsgi.ChannelSend("work", map[string]any{"v": "second"})))
	})
}`,
	"register_consumer/consumer_error": `
func init() {
	uwsgi.RegisterConsumer("work", func(msg map[string]any) error { return errors.New("consumer broke") })
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.ChannelSend("work", map[string]any{}))) })
}`,
	"register_consumer/bad_arguments": `
func init() {
	fn := func(msg map[string]any) {}
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.RegisterConsumer("no spaces", fn)), argerr(uwsgi.RegisterConsumer([]any{}, fn)),
			argerr(uwsgi.RegisterConsumer("work", "notfn"))}, ";")
	})
}`,
	"channel_send/full": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		n := 0
		for i := 1; i <= 101; i++ {
			if v, _ := uwsgi.ChannelSend("nobody.reads", map[string]any{"i": i}); v != nil {
				n++
			}
		}
		return shows(n, val(uwsgi.ChannelSend("nobody.reads", map[string]any{})),
			val(uwsgi.ChannelSend("big", map[string]any{"s": strings.Repeat("x", 2*1024*1024)})))
	})
}`,
	"channel_send/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.ChannelSend("a b", map[string]any{})),
			argerr(uwsgi.ChannelSend(strings.Repeat("c", 201), map[string]any{})),
			argerr(uwsgi.ChannelSend("c", "text")), argerr(uwsgi.ChannelSend("c", map[string]any{"f": func() {}}))}, ";")
	})
}`,
	"new_channel/names": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a := val(uwsgi.NewChannel()).(string)
		b := val(uwsgi.NewChannel("http.response")).(string)
		return shows(strings.HasPrefix(a, "specific!"), strings.HasPrefix(b, "http.response!"), a != val(uwsgi.NewChannel()).(string)) +
			";" + argerr(uwsgi.NewChannel("a!b"))
	})
}`,
	"group_send/members": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.GroupAdd("room", "client!a")), val(uwsgi.GroupAdd("room", "client!b")),
			val(uwsgi.GroupSend("room", map[string]any{"text": "one"})), val(uwsgi.GroupDiscard("room", "client!b")),
			val(uwsgi.GroupDiscard("room", "never!added")), val(uwsgi.GroupSend("room", map[string]any{"text": "two"})))
	})
}`,
	"group_add/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.GroupAdd("room!1", "c")), argerr(uwsgi.GroupAdd("room", "c d")),
			argerr(uwsgi.GroupDiscard("", "c")), argerr(uwsgi.GroupSend("room", 5))}, ";")
	})
}`,
}
