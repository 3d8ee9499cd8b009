package apitest

// The JavaScript scripts of the cases register themselves here, so that
// adding the language takes this file only. (The file is not named
// cases_js.go: the _js suffix would make it a GOOS=js file.)
func init() {
	languages["js"] = jsScripts
	languagePrelude["js"] = jsPrelude
}

// jsPrelude renders results as the package documentation says; it is
// prepended to every JavaScript script. Scripts are CommonJS modules in
// strict mode: function cases register "t" at module level, request
// cases set module.exports to a JSGI app. Lua's type names are kept
// where a Want shows them ("table" for an object).
const jsPrelude = `// apitest prelude
function show(v) {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "string") return '"' + v + '"';
  if (Array.isArray(v)) return "[" + v.map(show).join(",") + "]";
  return String(v);
}
function shows(...vs) { return vs.map(show).join(" "); }
function type(v) {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "object") return "table";
  return typeof v;
}
function message(e) {
  return String(e !== null && typeof e === "object" && "message" in e ? e.message : e);
}
function argerr(f, ...args) {
  try { f(...args); } catch (e) {
    const m = /bad argument #\d+ to uwsgi\.\w+/.exec(message(e));
    return m ? m[0] : "other error: " + message(e);
  }
  return "no error";
}
function fails(text, f, ...args) {
  try { f(...args); } catch (e) {
    return message(e).includes(text) ? "failed" : "other error: " + message(e);
  }
  return "no error";
}
function reply(body) { return {status: 200, headers: {}, body: [body]}; }
function recvn(fd, n) {
  let got = "";
  while (got.length < n) {
    const s = uwsgi.recv(fd, n - got.length);
    if (s === null) break;
    got += s;
  }
  return got;
}
// case
`

// jsScripts are the JavaScript scripts of the cases, by case name.
var jsScripts = map[string]string{
	// Cron and timers.
	"add_cron/registers": `
uwsgi.register_rpc("t", () => shows(uwsgi.add_cron(30, -1, -1, -1, -1, -1),
  uwsgi.add_cron(30, 0, 3, -1, -1, 0),
  uwsgi.add_cron(30, -5, -1, 1, 12, 7)));`,
	"add_cron/out_of_range": `
const bad = (...a) => fails("cron field out of range", uwsgi.add_cron, 30, ...a);
uwsgi.register_rpc("t", () => [bad(60, -1, -1, -1, -1), bad(-1, 24, -1, -1, -1), bad(-1, -1, 0, -1, -1),
  bad(-1, -1, -1, 13, -1), bad(-1, -1, -1, -1, 8), bad(-61, -1, -1, -1, -1)].join(" "));`,
	"add_cron/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.add_cron, 30, 0, 0, 1, 1),
  argerr(uwsgi.add_cron, 256, 0, 0, 1, 1, 0),
  argerr(uwsgi.add_cron, 30, "noon", 0, 1, 1, 0),
  argerr(uwsgi.add_cron, 30, 0, 1.5, 1, 1, 0)].join(";"));`,
	"add_timer/fires": `
uwsgi.register_signal(20, "", (sig) => { uwsgi.cache_inc("ticks"); });
uwsgi.register_rpc("t", () => show(uwsgi.add_timer(20, 0.05)));`,
	"add_timer/bad_arguments": `
uwsgi.register_rpc("t", () => [fails("timer interval must be positive", uwsgi.add_timer, 20, 0),
  argerr(uwsgi.add_timer, 20, -1), argerr(uwsgi.add_timer, 20), argerr(uwsgi.add_timer, "x", 1)].join(";"));`,
	"add_rb_timer/iterations": `
uwsgi.register_signal(21, "", (sig) => { uwsgi.cache_inc("rb"); });
uwsgi.register_rpc("t", () => show(uwsgi.add_rb_timer(21, 0.05, 2)));`,
	"add_rb_timer/forever": `
uwsgi.register_signal(21, "", (sig) => { uwsgi.cache_inc("rb"); });
uwsgi.register_rpc("t", () => show(uwsgi.add_rb_timer(21, 0.05)));`,
	"add_rb_timer/bad_arguments": `
uwsgi.register_rpc("t", () => [fails("iterations must not be negative", uwsgi.add_rb_timer, 21, 0.05, -1),
  fails("timer interval must be positive", uwsgi.add_rb_timer, 21, 0, 2),
  argerr(uwsgi.add_rb_timer, 21, 0.05, 1.5), argerr(uwsgi.add_rb_timer, 21)].join(";"));`,

	// Alarms and logs.
	"alarm/raises": `
uwsgi.register_rpc("t", () => show(uwsgi.alarm("disk", "full: 99%")) + " " + show(uwsgi.alarm("count", 42)));`,
	"alarm/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.alarm, "disk"), argerr(uwsgi.alarm), argerr(uwsgi.alarm, {}, "m")].join(";"));`,
	"log/line": `
uwsgi.register_rpc("t", () => show(uwsgi.log("hello", 42, 1.5, true, null, "end")));`,
	"log/no_arguments": `
uwsgi.register_rpc("t", () => argerr(uwsgi.log));`,

	// Process and host information.
	"masterpid/pid": `
uwsgi.register_rpc("t", () => {
  const pid = uwsgi.masterpid();
  return show(pid) + " " + type(pid) + " " + show(uwsgi.masterpid(1) === pid);
});`,
	"worker_id/one": `
uwsgi.register_rpc("t", () => {
  const id = uwsgi.worker_id();
  return show(id) + " " + type(id) + " " + show(uwsgi.worker_id(7) === id);
});`,
	"mule_id/zero": `
uwsgi.register_rpc("t", () => {
  const id = uwsgi.mule_id();
  return show(id) + " " + type(id) + " " + show(uwsgi.mule_id(7) === id);
});`,
	"hostname/value": `
uwsgi.register_rpc("t", () => show(uwsgi.hostname) + " " + type(uwsgi.hostname));`,
	"version/value": `
uwsgi.register_rpc("t", () => show(uwsgi.version) + " " + type(uwsgi.version));`,
	"opt/socket": `
uwsgi.register_rpc("t", () => show(uwsgi.opt.socket) + " " + show(uwsgi.opt.nosuch) + " " + type(uwsgi.opt));`,
	"opt/copy": `
uwsgi.register_rpc("t", () => {
  try { uwsgi.opt.socket = "changed"; } catch (e) { /* frozen */ }
  return show("done");
});`,
	"setprocname/renames": `
uwsgi.register_rpc("t", () => show(uwsgi.setprocname("sh-apitest")));`,
	"setprocname/truncates": `
uwsgi.register_rpc("t", () => show(uwsgi.setprocname("sh-apitest-very-long-name")));`,
	"setprocname/bad_arguments": `
uwsgi.register_rpc("t", () => argerr(uwsgi.setprocname) + ";" + argerr(uwsgi.setprocname, {}));`,

	// Caches.
	"cache_get/miss": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_get("nosuch"), uwsgi.cache_get("nosuch", "other")));`,
	"cache_get/hit": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("k", "v");
  uwsgi.cache_update(7, 42);
  uwsgi.cache_update("bin", "a\0b");
  const bin = uwsgi.cache_get("bin");
  return shows(uwsgi.cache_get("k"), uwsgi.cache_get(7), bin.length, bin === "a\0b");
});`,
	"cache_get/named": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("k", "o", 0, "other");
  return shows(uwsgi.cache_get("k"), uwsgi.cache_get("k", "other"));
});`,
	"cache_get/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_get), argerr(uwsgi.cache_get, {}), argerr(uwsgi.cache_get, "k", {}),
  show(uwsgi.cache_get("k", "nosuch")), fails("empty cache key", uwsgi.cache_get, "")].join(";"));`,
	"cache_get/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_get("k", "other@{{NODE_ADDR}}"), uwsgi.cache_get("nope", "other@{{NODE_ADDR}}"),
  uwsgi.cache_get("d", "@{{NODE_ADDR}}")));`,
	"cache_get/remote_unreachable": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_get("k", "other@{{DEAD_ADDR}}")));`,
	"cache_set/new_and_existing": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_set("k", "v"), uwsgi.cache_set("k", "w"), uwsgi.cache_get("k")));`,
	"cache_set/expires": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_set("k", "v", 0.05);
  uwsgi.async_sleep(0.1);
  const b = uwsgi.cache_get("k");
  const c = uwsgi.cache_set("k", "w");
  return shows(a, b, c, uwsgi.cache_get("k"));
});`,
	"cache_set/too_large": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_set("big", "x".repeat(70000)), uwsgi.cache_get("big"),
  uwsgi.cache_set("k".repeat(3000), "v")));`,
	"cache_set/named": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_set("k", "v", null, "other");
  return shows(a, uwsgi.cache_get("k"), uwsgi.cache_get("k", "other"), uwsgi.cache_set("k", "w", 0, "other"));
});`,
	"cache_set/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_set), argerr(uwsgi.cache_set, "k"), argerr(uwsgi.cache_set, "k", {}),
  argerr(uwsgi.cache_set, "k", "v", "soon"), argerr(uwsgi.cache_set, "k", "v", -1),
  show(uwsgi.cache_set("k", "v", 0, "nosuch")),
  fails("empty cache key", uwsgi.cache_set, "", "v")].join(";"));`,
	"cache_set/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_set("k", "v", 60, "other@{{NODE_ADDR}}"),
  uwsgi.cache_set("k", "w", 60, "other@{{NODE_ADDR}}")));`,
	"cache_update/overwrites": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_update("k", "v"), uwsgi.cache_update("k", "w"), uwsgi.cache_get("k")));`,
	"cache_update/expires": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_update("k", "v", 0.05);
  const b = uwsgi.cache_update("k", "w");
  uwsgi.cache_update("e", "x", 0.05);
  uwsgi.async_sleep(0.1);
  return shows(a, b, uwsgi.cache_get("k"), uwsgi.cache_get("e"));
});`,
	"cache_update/named": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_update("k", "o", 0, "other"), uwsgi.cache_get("k"), uwsgi.cache_get("k", "other")));`,
	"cache_update/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_update, "k"), argerr(uwsgi.cache_update, "k", "v", "x"),
  show(uwsgi.cache_update("k", "v", 0, "nosuch")),
  show(uwsgi.cache_update("big", "x".repeat(70000)))].join(";"));`,
	"cache_update/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_update("k", "v", 60, "other@{{NODE_ADDR}}"),
  uwsgi.cache_update("k", "w", 60, "other@{{NODE_ADDR}}")));`,
	"cache_del/existing_and_missing": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("k", "v");
  return shows(uwsgi.cache_del("k"), uwsgi.cache_get("k"), uwsgi.cache_del("k"));
});`,
	"cache_del/named": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("k", "v", 0, "other");
  return shows(uwsgi.cache_del("k"), uwsgi.cache_del("k", "other"), uwsgi.cache_get("k", "other"));
});`,
	"cache_del/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_del), fails("empty cache key", uwsgi.cache_del, ""),
  show(uwsgi.cache_del("k", "nosuch"))].join(";"));`,
	"cache_del/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_del("k", "@{{NODE_ADDR}}"), uwsgi.cache_del("k", "@{{NODE_ADDR}}"),
  uwsgi.cache_del("k", "other@{{NODE_ADDR}}")));`,
	"cache_exists/hit_and_miss": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("k", "v");
  return shows(uwsgi.cache_exists("k"), uwsgi.cache_exists("nope"));
});`,
	"cache_exists/expires": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_set("k", "v", 0.05);
  const b = uwsgi.cache_exists("k");
  uwsgi.async_sleep(0.1);
  return shows(a, b, uwsgi.cache_exists("k"));
});`,
	"cache_exists/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_exists), argerr(uwsgi.cache_exists, {}),
  show(uwsgi.cache_exists("k", "nosuch"))].join(";"));`,
	"cache_exists/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_exists("k", "other@{{NODE_ADDR}}"), uwsgi.cache_exists("nope", "other@{{NODE_ADDR}}"),
  uwsgi.cache_exists("k", "@{{NODE_ADDR}}")));`,
	"cache_clear/default": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("a", "1");
  uwsgi.cache_update("b", "2");
  uwsgi.cache_update("c", "3", 0, "other");
  const r = uwsgi.cache_clear();
  return shows(r, uwsgi.cache_get("a"), uwsgi.cache_get("b"), uwsgi.cache_get("c", "other"));
});`,
	"cache_clear/named": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("a", "1");
  uwsgi.cache_update("c", "3", 0, "other");
  const r = uwsgi.cache_clear("other");
  return shows(r, uwsgi.cache_get("a"), uwsgi.cache_get("c", "other"));
});`,
	"cache_clear/bad_arguments": `
uwsgi.register_rpc("t", () => show(uwsgi.cache_clear("nosuch")) + ";" + argerr(uwsgi.cache_clear, {}));`,
	"cache_clear/remote": `
uwsgi.register_rpc("t", () => show(uwsgi.cache_clear("other@{{NODE_ADDR}}")));`,
	"cache_inc/counts": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_inc("n");
  const b = uwsgi.cache_inc("n");
  const c = uwsgi.cache_inc("n", 10);
  return shows(a, b, c, uwsgi.cache_num("n"));
});`,
	"cache_inc/expires": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_inc("e", 1, 0.05);
  uwsgi.async_sleep(0.1);
  return shows(a, uwsgi.cache_get("e"));
});`,
	"cache_inc/keeps_expiry": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_inc("e", 1, 0.05);
  const a = uwsgi.cache_inc("e", 1);
  uwsgi.cache_inc("f");
  const b = uwsgi.cache_inc("f", 1, 0.05);
  uwsgi.async_sleep(0.1);
  return shows(a, b, uwsgi.cache_get("e"), uwsgi.cache_num("f"));
});`,
	"cache_inc/named": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_inc("n", 3, 0, "other"), uwsgi.cache_num("n"), uwsgi.cache_num("n", "other")));`,
	"cache_inc/not_a_counter": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("s", "abc");
  uwsgi.cache_update("d", "41");
  uwsgi.cache_update("big", "9223372036854775807");
  return shows(uwsgi.cache_inc("s"), uwsgi.cache_inc("d"), uwsgi.cache_inc("big"),
    uwsgi.cache_get("s"), uwsgi.cache_get("big"));
});`,
	"cache_inc/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_inc), argerr(uwsgi.cache_inc, "n", "x"), argerr(uwsgi.cache_inc, "n", 1, -1),
  show(uwsgi.cache_inc("n", 1, 0, "nosuch"))].join(";"));`,
	"cache_inc/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_inc("n", 5, 0, "other@{{NODE_ADDR}}"), uwsgi.cache_inc("n", 2, 0, "other@{{NODE_ADDR}}"),
  uwsgi.cache_num("n", "other@{{NODE_ADDR}}"), uwsgi.cache_num("n")));`,
	"cache_dec/counts": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_dec("n");
  const b = uwsgi.cache_dec("n", 5);
  const c = uwsgi.cache_num("n");
  uwsgi.cache_update("m", "10");
  return shows(a, b, c, uwsgi.cache_dec("m", 6));
});`,
	"cache_dec/named": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_dec("n", 2, 0, "other"), uwsgi.cache_num("n"), uwsgi.cache_num("n", "other")));`,
	"cache_dec/bad_arguments": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("s", "abc");
  uwsgi.cache_update("min", "-9223372036854775808");
  return [show(uwsgi.cache_dec("s")), show(uwsgi.cache_dec("min")),
    argerr(uwsgi.cache_dec), argerr(uwsgi.cache_dec, "n", 1.5)].join(";");
});`,
	"cache_mul/counts": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_mul("n");
  uwsgi.cache_inc("n", 3);
  const b = uwsgi.cache_mul("n");
  const c = uwsgi.cache_mul("n", 5);
  const d = uwsgi.cache_mul("n", -1);
  return shows(a, b, c, d, uwsgi.cache_num("n"));
});`,
	"cache_mul/named_and_remote": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_inc("n", 2, 0, "other");
  uwsgi.cache_inc("n", 5, 0, "other@{{NODE_ADDR}}");
  return shows(uwsgi.cache_mul("n", 4, 0, "other"), uwsgi.cache_num("n"),
    uwsgi.cache_mul("n", 3, 0, "other@{{NODE_ADDR}}"), uwsgi.cache_num("n", "other@{{NODE_ADDR}}"));
});`,
	"cache_mul/bad_arguments": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("big", "4611686018427387904");
  uwsgi.cache_update("s", "abc");
  return [show(uwsgi.cache_mul("big")), show(uwsgi.cache_mul("s")),
    argerr(uwsgi.cache_mul), argerr(uwsgi.cache_mul, "n", "x"), argerr(uwsgi.cache_mul, "n", 2, "soon")].join(";");
});`,
	"cache_div/counts": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_div("n");
  uwsgi.cache_inc("n", 100);
  const b = uwsgi.cache_div("n");
  const c = uwsgi.cache_div("n", 3);
  const d = uwsgi.cache_div("n", -4);
  const e = uwsgi.cache_div("n", 0);
  return shows(a, b, c, d, e, uwsgi.cache_num("n"));
});`,
	"cache_div/named_and_remote": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_inc("n", 9, 0, "other");
  uwsgi.cache_inc("n", 20, 0, "other@{{NODE_ADDR}}");
  return shows(uwsgi.cache_div("n", 2, 0, "other"), uwsgi.cache_num("n"),
    uwsgi.cache_div("n", 3, 0, "other@{{NODE_ADDR}}"), uwsgi.cache_num("n", "other@{{NODE_ADDR}}"));
});`,
	"cache_div/bad_arguments": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("min", "-9223372036854775808");
  uwsgi.cache_update("s", "abc");
  return [show(uwsgi.cache_div("min", -1)), show(uwsgi.cache_div("s")),
    argerr(uwsgi.cache_div), argerr(uwsgi.cache_div, "n", 0.5)].join(";");
});`,
	"cache_num/values": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_inc("n", 24);
  uwsgi.cache_update("d", "17");
  uwsgi.cache_update("s", "abc");
  return shows(uwsgi.cache_num("n"), uwsgi.cache_num("d"), uwsgi.cache_num("s"), uwsgi.cache_num("missing"),
    type(uwsgi.cache_num("n")));
});`,
	"cache_num/named": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_inc("n", 3, 0, "other");
  return shows(uwsgi.cache_num("n"), uwsgi.cache_num("n", "other"));
});`,
	"cache_num/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_num("n", "other@{{NODE_ADDR}}"), uwsgi.cache_num("d", "@{{NODE_ADDR}}"),
  uwsgi.cache_num("s", "@{{NODE_ADDR}}"), uwsgi.cache_num("missing", "@{{NODE_ADDR}}")));`,
	"cache_num/remote_unreachable": `
uwsgi.register_rpc("t", () => shows(uwsgi.cache_num("n", "other@{{DEAD_ADDR}}")));`,
	"cache_num/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.cache_num), show(uwsgi.cache_num("n", "nosuch")),
  argerr(uwsgi.cache_num, "n", {})].join(";"));`,
	"cache_keys/order": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("a", "1");
  uwsgi.cache_update("b", "2");
  uwsgi.cache_update("c", "3");
  const before = uwsgi.cache_keys();
  uwsgi.cache_get("a");
  return shows(before, uwsgi.cache_keys());
});`,
	"cache_keys/named": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.cache_keys();
  uwsgi.cache_update("x", "1", 0, "other");
  return shows(a, uwsgi.cache_keys("other"), uwsgi.cache_keys());
});`,
	"cache_keys/expired": `
uwsgi.register_rpc("t", () => {
  uwsgi.cache_update("k", "v", 0.05);
  uwsgi.cache_update("l", "v");
  uwsgi.async_sleep(0.1);
  return show(uwsgi.cache_keys());
});`,
	"cache_keys/bad_arguments": `
uwsgi.register_rpc("t", () => [fails("local caches only", uwsgi.cache_keys, "other@{{NODE_ADDR}}"),
  fails("unknown cache", uwsgi.cache_keys, "nosuch"), argerr(uwsgi.cache_keys, {})].join(";"));`,

	// RPC. RPC arguments are strings: "add" converts them to numbers, as
	// Lua's + does by itself.
	"register_rpc/registers": `
const a = uwsgi.register_rpc("f", (x, y) => x + "+" + y);
const b = uwsgi.register_rpc("g", () => "g", 2);
uwsgi.register_rpc("t", () => shows(a, b));`,
	"register_rpc/replace": `
uwsgi.register_rpc("f", () => 1);
uwsgi.register_rpc("f", () => 2);
uwsgi.register_rpc("t", () => show(uwsgi.call("f")));`,
	"register_rpc/results": `
uwsgi.register_rpc("half", () => 0.5);
uwsgi.register_rpc("three", () => 3);
uwsgi.register_rpc("empty", () => "");
uwsgi.register_rpc("table", () => [1, 2]);
uwsgi.register_rpc("t", () => shows(uwsgi.call("half"), uwsgi.call("three"), uwsgi.call("empty"), uwsgi.call("table")));`,
	"register_rpc/load_errors": `
// Registrations that fail while loading fail the same way in every runtime.
const fn = () => {};
const results = [argerr(uwsgi.register_rpc, "f", "notfn"),
  fails("invalid rpc function name", uwsgi.register_rpc, "", fn),
  argerr(uwsgi.register_signal, 256, "", fn),
  fails("invalid signal target", uwsgi.register_signal, 17, "nosuch", fn),
  argerr(uwsgi.add_timer, 20, -1),
  fails("timer interval must be positive", uwsgi.add_timer, 20, 0)].join(";");
uwsgi.register_rpc("t", () => {
  uwsgi.async_sleep(0.1);
  return results;
});`,
	"register_rpc/bad_arguments": `
const fn = () => {};
uwsgi.register_rpc("t", () => [argerr(uwsgi.register_rpc), argerr(uwsgi.register_rpc, "f"),
  argerr(uwsgi.register_rpc, "f", "notfn"),
  fails("invalid rpc function name", uwsgi.register_rpc, "", fn),
  fails("invalid rpc function name", uwsgi.register_rpc, "n".repeat(256), fn)].join(";"));`,
	"call/local": `
uwsgi.register_rpc("add", (a, b) => Number(a) + Number(b));
uwsgi.register_rpc("types", (a, b) => typeof a + typeof b);
uwsgi.register_rpc("pair", (a, b) => a + "|" + b);
uwsgi.register_rpc("t", () => shows(uwsgi.call("add", 1, 2), uwsgi.call("types", 1, "x"), uwsgi.call("pair", 1.5, 10)));`,
	// JavaScript strings are text: "\xff" is U+00FF, which travels as
	// UTF-8 and comes back the same. (Raw bytes go in as a Uint8Array.)
	"call/binary": `
uwsgi.register_rpc("len", (a) => a.length);
uwsgi.register_rpc("same", (a) => a);
uwsgi.register_rpc("t", () => shows(uwsgi.call("len", "a\0b"), uwsgi.call("same", "\0\xff\x01") === "\0\xff\x01"));`,
	"call/no_result": `
uwsgi.register_rpc("none", () => null);
uwsgi.register_rpc("t", () => shows(uwsgi.call("none"), uwsgi.call("nosuch")));`,
	"call/error": `
uwsgi.register_rpc("boom", () => { throw new Error("kaput"); });
uwsgi.register_rpc("t", () => fails("kaput", uwsgi.call, "boom"));`,
	"call/nested": `
uwsgi.register_rpc("inner", () => "in");
uwsgi.register_rpc("outer", () => "out:" + uwsgi.call("inner"));
uwsgi.register_rpc("t", () => show(uwsgi.call("outer")));`,
	"call/go_function": `
uwsgi.register_rpc("t", () => shows(uwsgi.call("gofn", "a", 1), uwsgi.call("gonil")));`,
	"call/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.call), argerr(uwsgi.call, {}), argerr(uwsgi.call, "add", {})].join(";"));`,
	"rpc/local": `
uwsgi.register_rpc("add", (a, b) => Number(a) + Number(b));
uwsgi.register_rpc("t", () => shows(uwsgi.rpc(null, "add", 1, 2), uwsgi.rpc("", "add", 2, 3)));`,
	"rpc/remote": `
uwsgi.register_rpc("t", () => shows(uwsgi.rpc("{{NODE_ADDR}}", "hello"), uwsgi.rpc("{{NODE_ADDR}}", "echo", "a", "b"),
  uwsgi.rpc("{{NODE_ADDR}}", "nosuch")));`,
	"rpc/unreachable": `
uwsgi.register_rpc("t", () => fails("connection refused", uwsgi.rpc, "{{DEAD_ADDR}}", "hello"));`,
	"rpc/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.rpc), argerr(uwsgi.rpc, null), argerr(uwsgi.rpc, {}, "x"),
  argerr(uwsgi.rpc, null, "add", {})].join(";"));`,

	// Signals.
	"register_signal/delivers": `
const r = uwsgi.register_signal(17, "", (sig) => { uwsgi.cache_update("sig", String(sig) + " " + type(sig)); });
uwsgi.register_rpc("t", () => shows(r, uwsgi.signal(17)));`,
	"register_signal/targets": `
const fn = () => {};
uwsgi.register_rpc("t", () => {
  const out = [];
  for (const target of ["", "worker", "workers", "mule1", "spooler"]) {
    out.push(show(uwsgi.register_signal(17, target, fn)));
  }
  out.push(show(uwsgi.register_signal(17, null, fn)));
  return out.join(" ") + ";" + fails("invalid signal target", uwsgi.register_signal, 17, "nosuch", fn);
});`,
	"register_signal/bad_arguments": `
const fn = () => {};
uwsgi.register_rpc("t", () => [argerr(uwsgi.register_signal, 17, ""), argerr(uwsgi.register_signal, 256, "", fn),
  argerr(uwsgi.register_signal, 17, "", "notfn"), argerr(uwsgi.register_signal, "x", "", fn),
  argerr(uwsgi.register_signal, 17, {}, fn)].join(";"));`,
	"register_signal/handler_error": `
uwsgi.register_signal(18, "", (sig) => { throw new Error("sig failed " + sig); });
uwsgi.register_rpc("t", () => show("ok"));`,
	"signal/unregistered": `
uwsgi.register_rpc("t", () => show(uwsgi.signal(99)));`,
	"signal/remote": `
uwsgi.register_rpc("t", () => show(uwsgi.signal(17, "{{NODE_ADDR}}")));`,
	"signal/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.signal), argerr(uwsgi.signal, 256), argerr(uwsgi.signal, 1, {}),
  fails("connection refused", uwsgi.signal, 1, "{{DEAD_ADDR}}")].join(";"));`,
	"register_rpc/during_call": `
uwsgi.register_rpc("t", () => {
  const r = uwsgi.register_rpc("dyn", (a) => "dyn " + a);
  return shows(r, uwsgi.call("dyn", "1"));
});`,
	"register_rpc/vm_replaced": `
uwsgi.register_rpc("u", () => show(uwsgi.call("dyn")));
uwsgi.register_rpc("t", () => {
  uwsgi.register_rpc("dyn", () => "ran");
  uwsgi.set_user_harakiri(0.05);
  for (;;) {} // interrupted: the runtime is replaced
});`,
	"register_signal/during_call": `
uwsgi.register_rpc("t", () => {
  const r = uwsgi.register_signal(22, "", (sig) => { uwsgi.cache_update("sig22", String(sig) + " " + type(sig)); });
  uwsgi.signal(22);
  uwsgi.async_sleep(0.3); // the runtime that made the handler stays busy meanwhile
  return shows(r, uwsgi.cache_get("sig22"), uwsgi.signal_registered(22));
});`,
	"register_signal/vm_replaced": `
uwsgi.register_rpc("u", () => show(uwsgi.signal_registered(23)));
uwsgi.register_rpc("t", () => {
  uwsgi.register_signal(23, "", (sig) => { uwsgi.cache_update("sig23", "ran"); });
  uwsgi.set_user_harakiri(0.05);
  for (;;) {} // interrupted: the runtime is replaced
});`,
	"signal_registered/states": `
uwsgi.register_rpc("t", () => {
  const before = uwsgi.signal_registered(40);
  uwsgi.register_signal(40, "", () => {});
  return shows(before, uwsgi.signal_registered(40), uwsgi.signal_registered(41));
});`,
	"signal_registered/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.signal_registered), argerr(uwsgi.signal_registered, -1),
  argerr(uwsgi.signal_registered, "x")].join(";"));`,

	// Locks.
	"lock/unlock": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.lock();
  const b = uwsgi.unlock();
  const c = uwsgi.lock(5);
  return shows(a, b, c, uwsgi.unlock(5));
});`,
	"lock/waits": `
uwsgi.register_rpc("t", () => {
  uwsgi.lock(3);
  uwsgi.unlock(3);
  return show("locked");
});`,
	"lock/outlives_call": `
uwsgi.register_rpc("t", () => show(uwsgi.lock(6)));`,
	"lock/bad_arguments": `
uwsgi.register_rpc("t", () => [fails("no such lock", uwsgi.lock, 64), fails("no such lock", uwsgi.lock, -1),
  argerr(uwsgi.lock, "x"), argerr(uwsgi.lock, 1.5)].join(";"));`,
	"lock/harakiri": `
uwsgi.register_rpc("t", () => {
  uwsgi.set_user_harakiri(0.05);
  uwsgi.lock(4);
  return "locked";
});`,
	"unlock/not_locked": `
uwsgi.register_rpc("t", () => [shows(uwsgi.unlock(), uwsgi.unlock(7), uwsgi.unlock(7)),
  fails("no such lock", uwsgi.unlock, 1000), argerr(uwsgi.unlock, {})].join(";"));`,

	// Sleeping and time limits.
	"async_sleep/returns": `
uwsgi.register_rpc("t", () => show(uwsgi.async_sleep(0.01)) + " " + show(uwsgi.async_sleep("0.01")) + " " + show(uwsgi.async_sleep(0)));`,
	"async_sleep/harakiri": `
uwsgi.register_rpc("t", () => {
  uwsgi.set_user_harakiri(0.05);
  uwsgi.async_sleep(5);
  return "not interrupted";
});`,
	"async_sleep/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.async_sleep), argerr(uwsgi.async_sleep, -1), argerr(uwsgi.async_sleep, "soon")].join(";"));`,
	"set_user_harakiri/busy_loop": `
uwsgi.register_rpc("t", () => {
  uwsgi.set_user_harakiri(0.05);
  for (;;) {}
});`,
	"set_user_harakiri/reset": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.set_user_harakiri(0.05);
  const b = uwsgi.set_user_harakiri(0);
  uwsgi.async_sleep(0.1);
  return shows(a, b, "survived");
});`,
	"set_user_harakiri/extend": `
uwsgi.register_rpc("t", () => {
  uwsgi.set_user_harakiri(0.05);
  uwsgi.set_user_harakiri(2);
  uwsgi.async_sleep(0.1);
  return show("survived");
});`,
	"set_user_harakiri/request": `
module.exports = function (req) {
  uwsgi.set_user_harakiri(0.05);
  uwsgi.async_sleep(5);
  return reply("not interrupted");
};`,
	"set_user_harakiri/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.set_user_harakiri), argerr(uwsgi.set_user_harakiri, -1),
  argerr(uwsgi.set_user_harakiri, "x")].join(";"));`,

	// Connections made by the script.
	"async_connect/tcp": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  return type(fd) + " " + show(fd >= 3) + " " + show(uwsgi.is_connected(fd));
});`,
	"async_connect/unix": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_UNIX}}");
  const n = uwsgi.send(fd, "unix");
  return shows(n, recvn(fd, 4));
});`,
	"async_connect/distinct": `
uwsgi.register_rpc("t", () => {
  const a = uwsgi.async_connect("{{ECHO_ADDR}}");
  const b = uwsgi.async_connect("{{ECHO_ADDR}}");
  return shows(a !== b, uwsgi.is_connected(a), uwsgi.is_connected(b));
});`,
	"async_connect/refused": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{DEAD_ADDR}}");
  return shows(fd, uwsgi.async_connect("no port here"), uwsgi.is_connected(fd)) + ";" +
    fails("no such file descriptor", uwsgi.send, fd, "x");
});`,
	"async_connect/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.async_connect), argerr(uwsgi.async_connect, {})].join(";"));`,
	"send/dialed": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  const n = uwsgi.send(fd, "abc");
  const first = uwsgi.recv(fd, 3);
  return shows(n, first + recvn(fd, 3 - first.length));
});`,
	"send/bad_arguments": `
uwsgi.register_rpc("t", () => [fails("no client connection", uwsgi.send, "x"), argerr(uwsgi.send),
  fails("no such file descriptor", uwsgi.send, 99, "x"), argerr(uwsgi.send, {}), argerr(uwsgi.send, 3, {})].join(";"));`,
	"recv/bad_arguments": `
uwsgi.register_rpc("t", () => [fails("no client connection", uwsgi.recv, 5), argerr(uwsgi.recv), argerr(uwsgi.recv, "x"),
  fails("no such file descriptor", uwsgi.recv, 99, 5), argerr(uwsgi.recv, 3, "x")].join(";"));`,
	"recv/harakiri": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  uwsgi.set_user_harakiri(0.05);
  uwsgi.recv(fd, 10);
  return "received";
});`,
	"close/dialed": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  const r = uwsgi.close(fd);
  return shows(r, uwsgi.is_connected(fd)) + " " + fails("no such file descriptor", uwsgi.close, fd);
});`,
	"close/bad_arguments": `
uwsgi.register_rpc("t", () => [argerr(uwsgi.close), argerr(uwsgi.close, "x"), fails("no such file descriptor", uwsgi.close, 99)].join(";"));`,
	"is_connected/handles": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  const a = uwsgi.is_connected(fd);
  const b = uwsgi.is_connected(99);
  uwsgi.close(fd);
  return shows(a, b, uwsgi.is_connected(fd)) + ";" + argerr(uwsgi.is_connected);
});`,
	"wait_fd_read/bad_arguments": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  return [show(uwsgi.wait_fd_read(fd, 1)), fails("no such file descriptor", uwsgi.wait_fd_read, 99),
    argerr(uwsgi.wait_fd_read), argerr(uwsgi.wait_fd_read, "x"), argerr(uwsgi.wait_fd_read, fd, -1),
    argerr(uwsgi.wait_fd_read, fd, "soon")].join(";");
});`,
	"wait_fd_write/ready": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  const w = uwsgi.wait_fd_write(fd, 1);
  const s = uwsgi.suspend();
  return shows(w, s, uwsgi.ready_fd() === fd);
});`,
	"wait_fd_write/bad_arguments": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  return [fails("no such file descriptor", uwsgi.wait_fd_write, 99), argerr(uwsgi.wait_fd_write),
    argerr(uwsgi.wait_fd_write, fd, "soon")].join(";");
});`,
	"suspend/nothing": `
uwsgi.register_rpc("t", () => shows(uwsgi.suspend(), uwsgi.ready_fd()));`,
	"suspend/harakiri": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  uwsgi.wait_fd_read(fd);
  uwsgi.set_user_harakiri(0.05);
  uwsgi.suspend();
  return "resumed";
});`,
	"ready_fd/before_suspend": `
uwsgi.register_rpc("t", () => show(uwsgi.ready_fd()));`,
	"ready_fd/ready": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  uwsgi.send(fd, "ping");
  const w = uwsgi.wait_fd_read(fd, 5);
  const s = uwsgi.suspend();
  return shows(w, s, uwsgi.ready_fd() === fd, recvn(fd, 4));
});`,
	"ready_fd/timeout": `
uwsgi.register_rpc("t", () => {
  const fd = uwsgi.async_connect("{{ECHO_ADDR}}");
  const w = uwsgi.wait_fd_read(fd, 0.05);
  const s = uwsgi.suspend();
  const r = uwsgi.ready_fd();
  const s2 = uwsgi.suspend();
  return shows(w, s, r, s2, uwsgi.ready_fd());
});`,
	"ready_fd/two_fds": `
uwsgi.register_rpc("t", () => {
  const quiet = uwsgi.async_connect("{{ECHO_ADDR}}");
  const busy = uwsgi.async_connect("{{ECHO_ADDR}}");
  uwsgi.send(busy, "x");
  uwsgi.wait_fd_read(quiet, 5);
  uwsgi.wait_fd_read(busy, 5);
  uwsgi.suspend();
  return show(uwsgi.ready_fd() === busy);
});`,

	// The client connection of a request: the scripts are JSGI apps.
	"connection_fd/request": `
module.exports = function (req) {
  const fd = uwsgi.connection_fd();
  return reply(type(fd) + " " + shows(fd >= 3, fd === uwsgi.connection_fd(), uwsgi.is_connected(fd)));
};`,
	"connection_fd/no_connection": `
uwsgi.register_rpc("t", () => fails("no client connection", uwsgi.connection_fd));`,
	"send/request": `
module.exports = function (req) {
  const a = uwsgi.send("raw:");
  const b = uwsgi.send(uwsgi.connection_fd(), "more;");
  return reply(shows(a, b));
};`,
	"recv/request": `
module.exports = function (req) {
  const a = uwsgi.recv(5);
  const b = uwsgi.recv(uwsgi.connection_fd(), 100);
  return reply(shows(a, b, uwsgi.recv(0)));
};`,
	"recv/request_eof": `
module.exports = function (req) {
  const a = uwsgi.recv(2);
  return reply(shows(a, uwsgi.recv(10)));
};`,
	"ready_fd/request": `
module.exports = function (req) {
  const fd = uwsgi.connection_fd();
  const w = uwsgi.wait_fd_read(fd, 5);
  uwsgi.suspend();
  return reply(shows(w, uwsgi.ready_fd() === fd, uwsgi.recv(1)));
};`,
	"ready_fd/request_timeout": `
module.exports = function (req) {
  uwsgi.wait_fd_read(uwsgi.connection_fd(), 0.05);
  uwsgi.suspend();
  return reply(show(uwsgi.ready_fd()));
};`,
	"disconnect/request": `
module.exports = function (req) {
  uwsgi.send("partial");
  uwsgi.disconnect();
  uwsgi.cache_update("after", "yes");
  return reply("not sent");
};`,
	"disconnect/no_connection": `
uwsgi.register_rpc("t", () => fails("no client connection", uwsgi.disconnect));`,
	"is_connected/after_disconnect": `
module.exports = function (req) {
  const fd = uwsgi.connection_fd();
  uwsgi.send("bye");
  uwsgi.disconnect();
  uwsgi.cache_update("disconnected", String(uwsgi.is_connected(fd)));
  try { uwsgi.close(fd); } catch (e) { /* already closed */ }
  uwsgi.cache_update("closed", String(uwsgi.is_connected(fd)));
  return reply("not sent");
};`,
	"close/connection": `
module.exports = function (req) {
  uwsgi.send("bye");
  uwsgi.close(uwsgi.connection_fd());
  uwsgi.cache_update("after", "yes");
  return reply("not sent");
};`,
	// WebSockets.
	"websocket_handshake/echo": `
module.exports = function (req) {
  const out = [show(uwsgi.websocket_handshake())];
  for (;;) {
    let msg;
    try {
      msg = uwsgi.websocket_recv();
    } catch (e) {
      return reply(out.join(" ") + ";" + fails("unable to receive websocket message", () => { throw e; }));
    }
    out.push(show(msg));
    uwsgi.websocket_send("echo: " + msg);
  }
};`,
	"websocket_handshake/arguments": `
module.exports = function (req) {
  const before = uwsgi.call("open_long_calls");
  const a = uwsgi.websocket_handshake("dGhlIHNhbXBsZSBub25jZQ==", "http://example.com", "chat");
  const b = uwsgi.websocket_handshake();
  const c = uwsgi.websocket_handshake(null, null, "echo");
  return reply(shows(before, a, b, c, uwsgi.call("open_long_calls")));
};`,
	"websocket_handshake/no_upgrade": `
module.exports = function (req) {
  return reply([fails("did not ask for a websocket upgrade", uwsgi.websocket_handshake),
    fails("call websocket_handshake first", uwsgi.websocket_recv),
    fails("call websocket_handshake first", uwsgi.websocket_recv_nb),
    fails("call websocket_handshake first", uwsgi.websocket_send, "x"),
    fails("call websocket_handshake first", uwsgi.websocket_send_binary, "x")].join(";"));
};`,
	"websocket_handshake/no_request": `
uwsgi.register_rpc("t", () => fails("did not ask for a websocket upgrade", uwsgi.websocket_handshake) + ";" +
  fails("call websocket_handshake first", uwsgi.websocket_recv));`,
	"websocket_handshake/too_many": `
module.exports = function (req) {
  return reply(fails("too many websockets", uwsgi.websocket_handshake));
};`,
	"websocket_handshake/too_many_uncaught": `
module.exports = function (req) {
  uwsgi.websocket_handshake();
  return reply("upgraded");
};`,
	"websocket_recv/binary": `
function hex(m) {
  const bytes = typeof m === "string" ? Array.from(m, (c) => c.charCodeAt(0)) : Array.from(m);
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join("");
}
module.exports = function (req) {
  uwsgi.websocket_handshake();
  const text = uwsgi.websocket_recv();
  const bin = uwsgi.websocket_recv();
  if (typeof text !== "string" || !(bin instanceof Uint8Array)) {
    return reply("text is " + typeof text + ", binary is " + Object.prototype.toString.call(bin));
  }
  uwsgi.websocket_send_binary(bin);
  uwsgi.websocket_send(text);
  return reply(hex(text) + " " + hex(bin));
};`,
	"websocket_recv_nb/with_and_without": `
module.exports = function (req) {
  uwsgi.websocket_handshake();
  const a = uwsgi.websocket_recv_nb();
  const b = uwsgi.websocket_recv_nb();
  uwsgi.async_sleep(0.5);
  const c = uwsgi.websocket_recv_nb();
  return reply(shows(a, b, c, uwsgi.websocket_recv_nb()));
};`,
	"websocket_recv/closed": `
module.exports = function (req) {
  uwsgi.websocket_handshake();
  const a = uwsgi.websocket_recv();
  return reply(show(a) + " " + [
    fails("unable to receive websocket message", uwsgi.websocket_recv),
    fails("unable to receive websocket message", uwsgi.websocket_recv_nb),
    fails("unable to send websocket message", uwsgi.websocket_send, "x"),
    fails("unable to send websocket binary message", uwsgi.websocket_send_binary, "x")].join(";"));
};`,
	"websocket_send/bad_arguments": `
module.exports = function (req) {
  uwsgi.websocket_handshake();
  return reply([argerr(uwsgi.websocket_send), argerr(uwsgi.websocket_send, {}),
    argerr(uwsgi.websocket_send_binary, true), argerr(uwsgi.websocket_handshake, {}),
    argerr(uwsgi.websocket_handshake, null, {}), argerr(uwsgi.websocket_handshake, null, null, {})].join(";") +
    " " + show(uwsgi.websocket_send(42)));
};`,
	"websocket_recv/time_limit": `
module.exports = function (req) {
  uwsgi.websocket_handshake();
  uwsgi.set_user_harakiri(0.25);
  let n = 0;
  for (;;) {
    try { uwsgi.websocket_recv(); } catch (e) { break; }
    n++;
  }
  return reply(shows("survived", n));
};`,
	"websocket_handshake/busy_loop": `
module.exports = function (req) {
  uwsgi.set_user_harakiri(0.2);
  uwsgi.websocket_handshake();
  for (;;) {}
};`,
}
