package apitest

// goPrelude renders results as the package documentation says; it is
// prepended to every Go script, so it holds the package clause and every
// import the cases use. The uwsgi functions return (value, error): val
// keeps the value, argerr and fails render the error, and fails is
// curried (fails("text")(uwsgi.F(...))) because Go passes a call's two
// results only as a whole argument list.
const goPrelude = `// apitest prelude
package main

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"scripthost/uwsgi"
)

var (
	_ = errors.New
	_ = time.Second
)

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return "\"" + x + "\""
	case []byte:
		return "\"" + string(x) + "\""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

func shows(vs ...any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = show(v)
	}
	return strings.Join(parts, " ")
}

// typ names a value's type as Lua's type() does.
func typ(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "boolean"
	case int64, float64, int:
		return "number"
	case string, []byte:
		return "string"
	case []any, map[string]interface{}: // yaegi's type switch misses map[string]any
		return "table"
	}
	return "function"
}

func val(v any, _ error) any { return v }

// answer shows a result, or the error raised instead of one.
func answer(v any, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return show(v)
}

var argerrRE = regexp.MustCompile("bad argument #[0-9]+ to uwsgi\\.[A-Za-z0-9_]+")

func argerr(_ any, err error) string {
	if err == nil {
		return "no error"
	}
	if m := argerrRE.FindString(err.Error()); m != "" {
		return m
	}
	return "other error: " + err.Error()
}

func fails(text string) func(any, error) string {
	return func(_ any, err error) string {
		if err == nil {
			return "no error"
		}
		if strings.Contains(err.Error(), text) {
			return "failed"
		}
		return "other error: " + err.Error()
	}
}

// reply streams body, as the other languages' reply does (flushed, so
// that the response, like theirs, carries no Content-Length).
func reply(w http.ResponseWriter, body string) {
	w.Write([]byte(body))
	w.(http.Flusher).Flush()
}

func recvn(fd any, n int) string {
	got := ""
	for len(got) < n {
		s, err := uwsgi.Recv(fd, n-len(got))
		if err != nil || s == nil {
			break
		}
		got += s.(string)
	}
	return got
}

// case
`

// goScripts are the Go scripts of the cases, by case name.
var goScripts = map[string]string{
	// Cron and timers.
	"add_cron/registers": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.AddCron(30, -1, -1, -1, -1, -1)),
			val(uwsgi.AddCron(30, 0, 3, -1, -1, 0)),
			val(uwsgi.AddCron(30, -5, -1, 1, 12, 7)))
	})
}`,
	"add_cron/out_of_range": `
func bad(fields ...any) string {
	return fails("cron field out of range")(uwsgi.AddCron(append([]any{30}, fields...)...))
}

func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{bad(60, -1, -1, -1, -1), bad(-1, 24, -1, -1, -1), bad(-1, -1, 0, -1, -1),
			bad(-1, -1, -1, 13, -1), bad(-1, -1, -1, -1, 8), bad(-61, -1, -1, -1, -1)}, " ")
	})
}`,
	"add_cron/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.AddCron(30, 0, 0, 1, 1)),
			argerr(uwsgi.AddCron(256, 0, 0, 1, 1, 0)),
			argerr(uwsgi.AddCron(30, "noon", 0, 1, 1, 0)),
			argerr(uwsgi.AddCron(30, 0, 1.5, 1, 1, 0))}, ";")
	})
}`,
	"add_timer/fires": `
func init() {
	uwsgi.RegisterSignal(20, "", func(sig int) { uwsgi.CacheInc("ticks") })
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.AddTimer(20, 50*time.Millisecond))) })
}`,
	"add_timer/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{fails("timer interval must be positive")(uwsgi.AddTimer(20, 0)),
			argerr(uwsgi.AddTimer(20, -1)), argerr(uwsgi.AddTimer(20)), argerr(uwsgi.AddTimer("x", 1))}, ";")
	})
}`,
	"add_rb_timer/iterations": `
func init() {
	uwsgi.RegisterSignal(21, "", func(sig int) { uwsgi.CacheInc("rb") })
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.AddRbTimer(21, 0.05, 2))) })
}`,
	"add_rb_timer/forever": `
func init() {
	uwsgi.RegisterSignal(21, "", func(sig int) { uwsgi.CacheInc("rb") })
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.AddRbTimer(21, 0.05))) })
}`,
	"add_rb_timer/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{fails("iterations must not be negative")(uwsgi.AddRbTimer(21, 0.05, -1)),
			fails("timer interval must be positive")(uwsgi.AddRbTimer(21, 0, 2)),
			argerr(uwsgi.AddRbTimer(21, 0.05, 1.5)), argerr(uwsgi.AddRbTimer(21))}, ";")
	})
}`,

	// Alarms and logs.
	"alarm/raises": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return show(val(uwsgi.Alarm("disk", "full: 99%"))) + " " + show(val(uwsgi.Alarm("count", 42)))
	})
}`,
	"alarm/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.Alarm("disk")), argerr(uwsgi.Alarm()), argerr(uwsgi.Alarm([]any{}, "m"))}, ";")
	})
}`,
	"log/line": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Log("hello", 42, 1.5, true, nil, "end"))) })
}`,
	"log/no_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return argerr(uwsgi.Log()) })
}`,

	// Process and host information.
	"masterpid/pid": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		pid, _ := uwsgi.Masterpid()
		return show(pid) + " " + typ(pid) + " " + show(val(uwsgi.Masterpid(1)) == pid)
	})
}`,
	"worker_id/one": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		id, _ := uwsgi.WorkerId()
		return show(id) + " " + typ(id) + " " + show(val(uwsgi.WorkerId(7)) == id)
	})
}`,
	"mule_id/zero": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		id, _ := uwsgi.MuleId()
		return show(id) + " " + typ(id) + " " + show(val(uwsgi.MuleId(7)) == id)
	})
}`,
	"hostname/value": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(uwsgi.Hostname()) + " " + typ(uwsgi.Hostname()) })
}`,
	"version/value": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(uwsgi.Version()) + " " + typ(uwsgi.Version()) })
}`,
	"opt/socket": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		opt := uwsgi.Opt()
		return show(opt["socket"]) + " " + show(opt["nosuch"]) + " " + typ(opt)
	})
}`,
	"opt/copy": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.Opt()["socket"] = "changed"
		return show("done")
	})
}`,
	"setprocname/renames": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Setprocname("sh-apitest"))) })
}`,
	"setprocname/truncates": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Setprocname("sh-apitest-very-long-name"))) })
}`,
	"setprocname/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return argerr(uwsgi.Setprocname()) + ";" + argerr(uwsgi.Setprocname([]any{}))
	})
}`,

	// Caches.
	"cache_get/miss": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheGet("nosuch")), val(uwsgi.CacheGet("nosuch", "other")))
	})
}`,
	"cache_get/hit": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("k", "v")
		uwsgi.CacheUpdate(7, 42)
		uwsgi.CacheUpdate("bin", "a\x00b")
		bin, _ := uwsgi.CacheGet("bin")
		return shows(val(uwsgi.CacheGet("k")), val(uwsgi.CacheGet(7)), len(bin.(string)), bin == "a\x00b")
	})
}`,
	"cache_get/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("k", "o", 0, "other")
		return shows(val(uwsgi.CacheGet("k")), val(uwsgi.CacheGet("k", "other")))
	})
}`,
	"cache_get/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheGet()), argerr(uwsgi.CacheGet([]any{})), argerr(uwsgi.CacheGet("k", []any{})),
			answer(uwsgi.CacheGet("k", "nosuch")), fails("empty cache key")(uwsgi.CacheGet(""))}, ";")
	})
}`,
	"cache_get/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheGet("k", "other@{{NODE_ADDR}}")), val(uwsgi.CacheGet("nope", "other@{{NODE_ADDR}}")),
			val(uwsgi.CacheGet("d", "@{{NODE_ADDR}}")))
	})
}`,
	"cache_get/remote_unreachable": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return shows(val(uwsgi.CacheGet("k", "other@{{DEAD_ADDR}}"))) })
}`,
	"cache_set/new_and_existing": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheSet("k", "v")), val(uwsgi.CacheSet("k", "w")), val(uwsgi.CacheGet("k")))
	})
}`,
	"cache_set/expires": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheSet("k", "v", 50*time.Millisecond)
		uwsgi.AsyncSleep(0.1)
		b, _ := uwsgi.CacheGet("k")
		c, _ := uwsgi.CacheSet("k", "w")
		return shows(a, b, c, val(uwsgi.CacheGet("k")))
	})
}`,
	"cache_set/too_large": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheSet("big", strings.Repeat("x", 70000))), val(uwsgi.CacheGet("big")),
			val(uwsgi.CacheSet(strings.Repeat("k", 3000), "v")))
	})
}`,
	"cache_set/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheSet("k", "v", nil, "other")
		return shows(a, val(uwsgi.CacheGet("k")), val(uwsgi.CacheGet("k", "other")), val(uwsgi.CacheSet("k", "w", 0, "other")))
	})
}`,
	"cache_set/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheSet()), argerr(uwsgi.CacheSet("k")), argerr(uwsgi.CacheSet("k", []any{})),
			argerr(uwsgi.CacheSet("k", "v", "soon")), argerr(uwsgi.CacheSet("k", "v", -1)),
			answer(uwsgi.CacheSet("k", "v", 0, "nosuch")),
			fails("empty cache key")(uwsgi.CacheSet("", "v"))}, ";")
	})
}`,
	"cache_set/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheSet("k", "v", 60, "other@{{NODE_ADDR}}")), val(uwsgi.CacheSet("k", "w", 60, "other@{{NODE_ADDR}}")))
	})
}`,
	"cache_update/overwrites": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheUpdate("k", "v")), val(uwsgi.CacheUpdate("k", "w")), val(uwsgi.CacheGet("k")))
	})
}`,
	"cache_update/expires": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheUpdate("k", "v", 0.05)
		b, _ := uwsgi.CacheUpdate("k", "w")
		uwsgi.CacheUpdate("e", "x", 0.05)
		uwsgi.AsyncSleep(0.1)
		return shows(a, b, val(uwsgi.CacheGet("k")), val(uwsgi.CacheGet("e")))
	})
}`,
	"cache_update/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheUpdate("k", "o", 0, "other")), val(uwsgi.CacheGet("k")), val(uwsgi.CacheGet("k", "other")))
	})
}`,
	"cache_update/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheUpdate("k")), argerr(uwsgi.CacheUpdate("k", "v", "x")),
			answer(uwsgi.CacheUpdate("k", "v", 0, "nosuch")),
			show(val(uwsgi.CacheUpdate("big", strings.Repeat("x", 70000))))}, ";")
	})
}`,
	"cache_update/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheUpdate("k", "v", 60, "other@{{NODE_ADDR}}")), val(uwsgi.CacheUpdate("k", "w", 60, "other@{{NODE_ADDR}}")))
	})
}`,
	"cache_del/existing_and_missing": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("k", "v")
		return shows(val(uwsgi.CacheDel("k")), val(uwsgi.CacheGet("k")), val(uwsgi.CacheDel("k")))
	})
}`,
	"cache_del/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("k", "v", 0, "other")
		return shows(val(uwsgi.CacheDel("k")), val(uwsgi.CacheDel("k", "other")), val(uwsgi.CacheGet("k", "other")))
	})
}`,
	"cache_del/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheDel()), fails("empty cache key")(uwsgi.CacheDel("")),
			answer(uwsgi.CacheDel("k", "nosuch"))}, ";")
	})
}`,
	"cache_del/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheDel("k", "@{{NODE_ADDR}}")), val(uwsgi.CacheDel("k", "@{{NODE_ADDR}}")),
			val(uwsgi.CacheDel("k", "other@{{NODE_ADDR}}")))
	})
}`,
	"cache_exists/hit_and_miss": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("k", "v")
		return shows(val(uwsgi.CacheExists("k")), val(uwsgi.CacheExists("nope")))
	})
}`,
	"cache_exists/expires": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheSet("k", "v", 0.3)
		b, _ := uwsgi.CacheExists("k")
		uwsgi.AsyncSleep(0.4)
		return shows(a, b, val(uwsgi.CacheExists("k")))
	})
}`,
	"cache_exists/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheExists()), argerr(uwsgi.CacheExists([]any{})),
			answer(uwsgi.CacheExists("k", "nosuch"))}, ";")
	})
}`,
	"cache_exists/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheExists("k", "other@{{NODE_ADDR}}")), val(uwsgi.CacheExists("nope", "other@{{NODE_ADDR}}")),
			val(uwsgi.CacheExists("k", "@{{NODE_ADDR}}")))
	})
}`,
	"cache_clear/default": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("a", "1")
		uwsgi.CacheUpdate("b", "2")
		uwsgi.CacheUpdate("c", "3", 0, "other")
		r, _ := uwsgi.CacheClear()
		return shows(r, val(uwsgi.CacheGet("a")), val(uwsgi.CacheGet("b")), val(uwsgi.CacheGet("c", "other")))
	})
}`,
	"cache_clear/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("a", "1")
		uwsgi.CacheUpdate("c", "3", 0, "other")
		r, _ := uwsgi.CacheClear("other")
		return shows(r, val(uwsgi.CacheGet("a")), val(uwsgi.CacheGet("c", "other")))
	})
}`,
	"cache_clear/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return answer(uwsgi.CacheClear("nosuch")) + ";" + argerr(uwsgi.CacheClear([]any{}))
	})
}`,
	"cache_clear/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.CacheClear("other@{{NODE_ADDR}}"))) })
}`,
	"cache_inc/counts": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheInc("n")
		b, _ := uwsgi.CacheInc("n")
		c, _ := uwsgi.CacheInc("n", 10)
		return shows(a, b, c, val(uwsgi.CacheNum("n")))
	})
}`,
	"cache_inc/expires": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheInc("e", 1, 0.05)
		uwsgi.AsyncSleep(0.1)
		return shows(a, val(uwsgi.CacheGet("e")))
	})
}`,
	"cache_inc/keeps_expiry": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheInc("e", 1, 0.05)
		a, _ := uwsgi.CacheInc("e", 1)
		uwsgi.CacheInc("f")
		b, _ := uwsgi.CacheInc("f", 1, 0.05)
		uwsgi.AsyncSleep(0.1)
		return shows(a, b, val(uwsgi.CacheGet("e")), val(uwsgi.CacheNum("f")))
	})
}`,
	"cache_inc/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheInc("n", 3, 0, "other")), val(uwsgi.CacheNum("n")), val(uwsgi.CacheNum("n", "other")))
	})
}`,
	"cache_inc/not_a_counter": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("s", "abc")
		uwsgi.CacheUpdate("d", "41")
		uwsgi.CacheUpdate("big", "9223372036854775807")
		return shows(val(uwsgi.CacheInc("s")), val(uwsgi.CacheInc("d")), val(uwsgi.CacheInc("big")),
			val(uwsgi.CacheGet("s")), val(uwsgi.CacheGet("big")))
	})
}`,
	"cache_inc/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheInc()), argerr(uwsgi.CacheInc("n", "x")), argerr(uwsgi.CacheInc("n", 1, -1)),
			answer(uwsgi.CacheInc("n", 1, 0, "nosuch"))}, ";")
	})
}`,
	"cache_inc/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheInc("n", 5, 0, "other@{{NODE_ADDR}}")), val(uwsgi.CacheInc("n", 2, 0, "other@{{NODE_ADDR}}")),
			val(uwsgi.CacheNum("n", "other@{{NODE_ADDR}}")), val(uwsgi.CacheNum("n")))
	})
}`,
	"cache_dec/counts": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheDec("n")
		b, _ := uwsgi.CacheDec("n", 5)
		c, _ := uwsgi.CacheNum("n")
		uwsgi.CacheUpdate("m", "10")
		return shows(a, b, c, val(uwsgi.CacheDec("m", 6)))
	})
}`,
	"cache_dec/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheDec("n", 2, 0, "other")), val(uwsgi.CacheNum("n")), val(uwsgi.CacheNum("n", "other")))
	})
}`,
	"cache_dec/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("s", "abc")
		uwsgi.CacheUpdate("min", "-9223372036854775808")
		return strings.Join([]string{show(val(uwsgi.CacheDec("s"))), show(val(uwsgi.CacheDec("min"))),
			argerr(uwsgi.CacheDec()), argerr(uwsgi.CacheDec("n", 1.5))}, ";")
	})
}`,
	"cache_mul/counts": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheMul("n")
		uwsgi.CacheInc("n", 3)
		b, _ := uwsgi.CacheMul("n")
		c, _ := uwsgi.CacheMul("n", 5)
		d, _ := uwsgi.CacheMul("n", -1)
		return shows(a, b, c, d, val(uwsgi.CacheNum("n")))
	})
}`,
	"cache_mul/named_and_remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheInc("n", 2, 0, "other")
		uwsgi.CacheInc("n", 5, 0, "other@{{NODE_ADDR}}")
		return shows(val(uwsgi.CacheMul("n", 4, 0, "other")), val(uwsgi.CacheNum("n")),
			val(uwsgi.CacheMul("n", 3, 0, "other@{{NODE_ADDR}}")), val(uwsgi.CacheNum("n", "other@{{NODE_ADDR}}")))
	})
}`,
	"cache_mul/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("big", "4611686018427387904")
		uwsgi.CacheUpdate("s", "abc")
		return strings.Join([]string{show(val(uwsgi.CacheMul("big"))), show(val(uwsgi.CacheMul("s"))),
			argerr(uwsgi.CacheMul()), argerr(uwsgi.CacheMul("n", "x")), argerr(uwsgi.CacheMul("n", 2, "soon"))}, ";")
	})
}`,
	"cache_div/counts": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheDiv("n")
		uwsgi.CacheInc("n", 100)
		b, _ := uwsgi.CacheDiv("n")
		c, _ := uwsgi.CacheDiv("n", 3)
		d, _ := uwsgi.CacheDiv("n", -4)
		e, _ := uwsgi.CacheDiv("n", 0)
		return shows(a, b, c, d, e, val(uwsgi.CacheNum("n")))
	})
}`,
	"cache_div/named_and_remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheInc("n", 9, 0, "other")
		uwsgi.CacheInc("n", 20, 0, "other@{{NODE_ADDR}}")
		return shows(val(uwsgi.CacheDiv("n", 2, 0, "other")), val(uwsgi.CacheNum("n")),
			val(uwsgi.CacheDiv("n", 3, 0, "other@{{NODE_ADDR}}")), val(uwsgi.CacheNum("n", "other@{{NODE_ADDR}}")))
	})
}`,
	"cache_div/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("min", "-9223372036854775808")
		uwsgi.CacheUpdate("s", "abc")
		return strings.Join([]string{show(val(uwsgi.CacheDiv("min", -1))), show(val(uwsgi.CacheDiv("s"))),
			argerr(uwsgi.CacheDiv()), argerr(uwsgi.CacheDiv("n", 0.5))}, ";")
	})
}`,
	"cache_num/values": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheInc("n", 24)
		uwsgi.CacheUpdate("d", "17")
		uwsgi.CacheUpdate("s", "abc")
		return shows(val(uwsgi.CacheNum("n")), val(uwsgi.CacheNum("d")), val(uwsgi.CacheNum("s")),
			val(uwsgi.CacheNum("missing")), typ(val(uwsgi.CacheNum("n"))))
	})
}`,
	"cache_num/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheInc("n", 3, 0, "other")
		return shows(val(uwsgi.CacheNum("n")), val(uwsgi.CacheNum("n", "other")))
	})
}`,
	"cache_num/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.CacheNum("n", "other@{{NODE_ADDR}}")), val(uwsgi.CacheNum("d", "@{{NODE_ADDR}}")),
			val(uwsgi.CacheNum("s", "@{{NODE_ADDR}}")), val(uwsgi.CacheNum("missing", "@{{NODE_ADDR}}")))
	})
}`,
	"cache_num/remote_unreachable": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return shows(val(uwsgi.CacheNum("n", "other@{{DEAD_ADDR}}"))) })
}`,
	"cache_num/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.CacheNum()), answer(uwsgi.CacheNum("n", "nosuch")),
			argerr(uwsgi.CacheNum("n", []any{}))}, ";")
	})
}`,
	"cache_keys/order": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("a", "1")
		uwsgi.CacheUpdate("b", "2")
		uwsgi.CacheUpdate("c", "3")
		before, _ := uwsgi.CacheKeys()
		uwsgi.CacheGet("a")
		return shows(before, val(uwsgi.CacheKeys()))
	})
}`,
	"cache_keys/named": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.CacheKeys()
		uwsgi.CacheUpdate("x", "1", 0, "other")
		return shows(a, val(uwsgi.CacheKeys("other")), val(uwsgi.CacheKeys()))
	})
}`,
	"cache_keys/expired": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.CacheUpdate("k", "v", 0.05)
		uwsgi.CacheUpdate("l", "v")
		uwsgi.AsyncSleep(0.1)
		return show(val(uwsgi.CacheKeys()))
	})
}`,
	"cache_keys/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{fails("local caches only")(uwsgi.CacheKeys("other@{{NODE_ADDR}}")),
			fails("unknown cache")(uwsgi.CacheKeys("nosuch")), argerr(uwsgi.CacheKeys([]any{}))}, ";")
	})
}`,

	// RPC.
	"register_rpc/registers": `
var a, _ = uwsgi.RegisterRpc("f", func(x, y string) string { return x + "+" + y })
var b, _ = uwsgi.RegisterRpc("g", func() string { return "g" }, 2)

func init() {
	uwsgi.RegisterRpc("t", func() string { return shows(a, b) })
}`,
	"register_rpc/replace": `
func init() {
	uwsgi.RegisterRpc("f", func() int { return 1 })
	uwsgi.RegisterRpc("f", func() int { return 2 })
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Call("f"))) })
}`,
	"register_rpc/results": `
func init() {
	uwsgi.RegisterRpc("half", func() float64 { return 0.5 })
	uwsgi.RegisterRpc("three", func() int { return 3 })
	uwsgi.RegisterRpc("empty", func() string { return "" })
	uwsgi.RegisterRpc("table", func() []int { return []int{1, 2} })
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.Call("half")), val(uwsgi.Call("three")), val(uwsgi.Call("empty")), val(uwsgi.Call("table")))
	})
}`,
	"register_rpc/load_errors": `
// Registrations that fail while loading fail the same way in every interpreter.
var fn = func() {}

var results = strings.Join([]string{argerr(uwsgi.RegisterRpc("f", "notfn")),
	fails("invalid rpc function name")(uwsgi.RegisterRpc("", fn)),
	argerr(uwsgi.RegisterSignal(256, "", fn)),
	fails("invalid signal target")(uwsgi.RegisterSignal(17, "nosuch", fn)),
	argerr(uwsgi.AddTimer(20, -1)),
	fails("timer interval must be positive")(uwsgi.AddTimer(20, 0))}, ";")

func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.AsyncSleep(0.1)
		return results
	})
}`,
	"register_rpc/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fn := func() {}
		return strings.Join([]string{argerr(uwsgi.RegisterRpc()), argerr(uwsgi.RegisterRpc("f")),
			argerr(uwsgi.RegisterRpc("f", "notfn")),
			fails("invalid rpc function name")(uwsgi.RegisterRpc("", fn)),
			fails("invalid rpc function name")(uwsgi.RegisterRpc(strings.Repeat("n", 256), fn))}, ";")
	})
}`,
	"call/local": `
func init() {
	uwsgi.RegisterRpc("add", func(a, b int) int { return a + b })
	uwsgi.RegisterRpc("types", func(a, b any) string { return typ(a) + typ(b) })
	uwsgi.RegisterRpc("pair", func(a, b string) string { return a + "|" + b })
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.Call("add", 1, 2)), val(uwsgi.Call("types", 1, "x")), val(uwsgi.Call("pair", 1.5, 10)))
	})
}`,
	"call/binary": `
func init() {
	uwsgi.RegisterRpc("len", func(a string) int { return len(a) })
	uwsgi.RegisterRpc("same", func(a []byte) []byte { return a })
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.Call("len", "a\x00b")), val(uwsgi.Call("same", "\x00\xff\x01")) == "\x00\xff\x01")
	})
}`,
	"call/no_result": `
func init() {
	uwsgi.RegisterRpc("none", func() any { return nil })
	uwsgi.RegisterRpc("t", func() string { return shows(val(uwsgi.Call("none")), val(uwsgi.Call("nosuch"))) })
}`,
	"call/error": `
func init() {
	uwsgi.RegisterRpc("boom", func() (string, error) { return "", errors.New("kaput") })
	uwsgi.RegisterRpc("t", func() string { return fails("kaput")(uwsgi.Call("boom")) })
}`,
	"call/nested": `
func init() {
	uwsgi.RegisterRpc("inner", func() string { return "in" })
	uwsgi.RegisterRpc("outer", func() string { return "out:" + val(uwsgi.Call("inner")).(string) })
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Call("outer"))) })
}`,
	"call/go_function": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return shows(val(uwsgi.Call("gofn", "a", 1)), val(uwsgi.Call("gonil"))) })
}`,
	"call/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.Call()), argerr(uwsgi.Call([]any{})), argerr(uwsgi.Call("add", []any{}))}, ";")
	})
}`,
	"rpc/local": `
func init() {
	uwsgi.RegisterRpc("add", func(a, b int) int { return a + b })
	uwsgi.RegisterRpc("t", func() string { return shows(val(uwsgi.Rpc(nil, "add", 1, 2)), val(uwsgi.Rpc("", "add", 2, 3))) })
}`,
	"rpc/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return shows(val(uwsgi.Rpc("{{NODE_ADDR}}", "hello")), val(uwsgi.Rpc("{{NODE_ADDR}}", "echo", "a", "b")),
			val(uwsgi.Rpc("{{NODE_ADDR}}", "nosuch")))
	})
}`,
	"rpc/unreachable": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return fails("connection refused")(uwsgi.Rpc("{{DEAD_ADDR}}", "hello")) })
}`,
	"rpc/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.Rpc()), argerr(uwsgi.Rpc(nil)), argerr(uwsgi.Rpc([]any{}, "x")),
			argerr(uwsgi.Rpc(nil, "add", []any{}))}, ";")
	})
}`,

	// Signals.
	"register_signal/delivers": `
var r, _ = uwsgi.RegisterSignal(17, "", func(sig any) { uwsgi.CacheUpdate("sig", fmt.Sprint(sig)+" "+typ(sig)) })

func init() {
	uwsgi.RegisterRpc("t", func() string { return shows(r, val(uwsgi.Signal(17))) })
}`,
	"register_signal/targets": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fn := func() {}
		var out []string
		for _, target := range []string{"", "worker", "workers", "mule1", "spooler"} {
			out = append(out, show(val(uwsgi.RegisterSignal(17, target, fn))))
		}
		out = append(out, show(val(uwsgi.RegisterSignal(17, nil, fn))))
		return strings.Join(out, " ") + ";" + fails("invalid signal target")(uwsgi.RegisterSignal(17, "nosuch", fn))
	})
}`,
	"register_signal/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fn := func() {}
		return strings.Join([]string{argerr(uwsgi.RegisterSignal(17, "")), argerr(uwsgi.RegisterSignal(256, "", fn)),
			argerr(uwsgi.RegisterSignal(17, "", "notfn")), argerr(uwsgi.RegisterSignal("x", "", fn)),
			argerr(uwsgi.RegisterSignal(17, []any{}, fn))}, ";")
	})
}`,
	"register_signal/handler_error": `
func init() {
	uwsgi.RegisterSignal(18, "", func(sig int) error { return fmt.Errorf("sig failed %d", sig) })
	uwsgi.RegisterRpc("t", func() string { return show("ok") })
}`,
	"signal/unregistered": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Signal(99))) })
}`,
	"signal/remote": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Signal(17, "{{NODE_ADDR}}"))) })
}`,
	"signal/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.Signal()), argerr(uwsgi.Signal(256)), argerr(uwsgi.Signal(1, []any{})),
			fails("connection refused")(uwsgi.Signal(1, "{{DEAD_ADDR}}"))}, ";")
	})
}`,
	"register_rpc/during_call": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		r, _ := uwsgi.RegisterRpc("dyn", func(a string) string { return "dyn " + a })
		return shows(r, val(uwsgi.Call("dyn", "1")))
	})
}`,
	"register_rpc/vm_replaced": `
func init() {
	uwsgi.RegisterRpc("u", func() string { return show(val(uwsgi.Call("dyn"))) })
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.RegisterRpc("dyn", func() string { return "ran" })
		uwsgi.SetUserHarakiri(0.05)
		for {
		} // interrupted: the interpreter is replaced
	})
}`,
	"register_signal/during_call": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		r, _ := uwsgi.RegisterSignal(22, "", func(sig any) { uwsgi.CacheUpdate("sig22", fmt.Sprint(sig)+" "+typ(sig)) })
		uwsgi.Signal(22)
		uwsgi.AsyncSleep(0.3) // the interpreter that made the handler stays busy meanwhile
		return shows(r, val(uwsgi.CacheGet("sig22")), val(uwsgi.SignalRegistered(22)))
	})
}`,
	"register_signal/vm_replaced": `
func init() {
	uwsgi.RegisterRpc("u", func() string { return show(val(uwsgi.SignalRegistered(23))) })
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.RegisterSignal(23, "", func(sig any) { uwsgi.CacheUpdate("sig23", "ran") })
		uwsgi.SetUserHarakiri(0.05)
		for {
		} // interrupted: the interpreter is replaced
	})
}`,
	"signal_registered/states": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		before, _ := uwsgi.SignalRegistered(40)
		uwsgi.RegisterSignal(40, "", func() {})
		return shows(before, val(uwsgi.SignalRegistered(40)), val(uwsgi.SignalRegistered(41)))
	})
}`,
	"signal_registered/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.SignalRegistered()), argerr(uwsgi.SignalRegistered(-1)),
			argerr(uwsgi.SignalRegistered("x"))}, ";")
	})
}`,

	// Locks.
	"lock/unlock": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.Lock()
		b, _ := uwsgi.Unlock()
		c, _ := uwsgi.Lock(5)
		return shows(a, b, c, val(uwsgi.Unlock(5)))
	})
}`,
	"lock/waits": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.Lock(3)
		uwsgi.Unlock(3)
		return show("locked")
	})
}`,
	"lock/outlives_call": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.Lock(6))) })
}`,
	"lock/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{fails("no such lock")(uwsgi.Lock(64)), fails("no such lock")(uwsgi.Lock(-1)),
			argerr(uwsgi.Lock("x")), argerr(uwsgi.Lock(1.5))}, ";")
	})
}`,
	"lock/harakiri": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.SetUserHarakiri(0.05)
		uwsgi.Lock(4)
		return "locked"
	})
}`,
	"unlock/not_locked": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{shows(val(uwsgi.Unlock()), val(uwsgi.Unlock(7)), val(uwsgi.Unlock(7))),
			fails("no such lock")(uwsgi.Unlock(1000)), argerr(uwsgi.Unlock([]any{}))}, ";")
	})
}`,

	// Sleeping and time limits.
	"async_sleep/returns": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return show(val(uwsgi.AsyncSleep(0.01))) + " " + show(val(uwsgi.AsyncSleep("0.01"))) + " " + show(val(uwsgi.AsyncSleep(0)))
	})
}`,
	"async_sleep/harakiri": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.SetUserHarakiri(0.05)
		uwsgi.AsyncSleep(5)
		return "not interrupted"
	})
}`,
	"async_sleep/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.AsyncSleep()), argerr(uwsgi.AsyncSleep(-1)), argerr(uwsgi.AsyncSleep("soon"))}, ";")
	})
}`,
	"set_user_harakiri/busy_loop": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.SetUserHarakiri(0.05)
		for {
		}
	})
}`,
	"set_user_harakiri/reset": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.SetUserHarakiri(0.3)
		b, _ := uwsgi.SetUserHarakiri(0)
		uwsgi.AsyncSleep(0.4)
		return shows(a, b, "survived")
	})
}`,
	"set_user_harakiri/extend": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		uwsgi.SetUserHarakiri(0.3)
		uwsgi.SetUserHarakiri(2)
		uwsgi.AsyncSleep(0.4)
		return show("survived")
	})
}`,
	"set_user_harakiri/request": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.SetUserHarakiri(0.05)
	uwsgi.AsyncSleep(5)
	reply(w, "not interrupted")
}`,
	"set_user_harakiri/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.SetUserHarakiri()), argerr(uwsgi.SetUserHarakiri(-1)),
			argerr(uwsgi.SetUserHarakiri("x"))}, ";")
	})
}`,

	// Connections made by the script.
	"async_connect/tcp": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		return typ(fd) + " " + show(fd.(int64) >= 3) + " " + show(val(uwsgi.IsConnected(fd)))
	})
}`,
	"async_connect/unix": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_UNIX}}")
		n, _ := uwsgi.Send(fd, "unix")
		return shows(n, recvn(fd, 4))
	})
}`,
	"async_connect/distinct": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		a, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		b, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		return shows(a != b, val(uwsgi.IsConnected(a)), val(uwsgi.IsConnected(b)))
	})
}`,
	"async_connect/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.AsyncConnect()), argerr(uwsgi.AsyncConnect([]any{}))}, ";")
	})
}`,
	"async_connect/refused": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{DEAD_ADDR}}")
		return shows(fd, val(uwsgi.AsyncConnect("no port here")), val(uwsgi.IsConnected(fd))) + ";" +
			fails("no such file descriptor")(uwsgi.Send(fd, "x"))
	})
}`,
	"send/dialed": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		n, _ := uwsgi.Send(fd, "abc")
		first := val(uwsgi.Recv(fd, 3)).(string)
		return shows(n, first+recvn(fd, 3-len(first)))
	})
}`,
	"send/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{fails("no client connection")(uwsgi.Send("x")), argerr(uwsgi.Send()),
			fails("no such file descriptor")(uwsgi.Send(99, "x")), argerr(uwsgi.Send([]any{})), argerr(uwsgi.Send(3, []any{}))}, ";")
	})
}`,
	"recv/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{fails("no client connection")(uwsgi.Recv(5)), argerr(uwsgi.Recv()), argerr(uwsgi.Recv("x")),
			fails("no such file descriptor")(uwsgi.Recv(99, 5)), argerr(uwsgi.Recv(3, "x"))}, ";")
	})
}`,
	"recv/harakiri": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		uwsgi.SetUserHarakiri(0.05)
		uwsgi.Recv(fd, 10)
		return "received"
	})
}`,
	"close/dialed": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		r, _ := uwsgi.Close(fd)
		return shows(r, val(uwsgi.IsConnected(fd))) + " " + fails("no such file descriptor")(uwsgi.Close(fd))
	})
}`,
	"close/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return strings.Join([]string{argerr(uwsgi.Close()), argerr(uwsgi.Close("x")), fails("no such file descriptor")(uwsgi.Close(99))}, ";")
	})
}`,
	"is_connected/handles": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		a, _ := uwsgi.IsConnected(fd)
		b, _ := uwsgi.IsConnected(99)
		uwsgi.Close(fd)
		return shows(a, b, val(uwsgi.IsConnected(fd))) + ";" + argerr(uwsgi.IsConnected())
	})
}`,
	"wait_fd_read/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		return strings.Join([]string{show(val(uwsgi.WaitFdRead(fd, 1))), fails("no such file descriptor")(uwsgi.WaitFdRead(99)),
			argerr(uwsgi.WaitFdRead()), argerr(uwsgi.WaitFdRead("x")), argerr(uwsgi.WaitFdRead(fd, -1)),
			argerr(uwsgi.WaitFdRead(fd, "soon"))}, ";")
	})
}`,
	"wait_fd_write/ready": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		w, _ := uwsgi.WaitFdWrite(fd, 1)
		s, _ := uwsgi.Suspend()
		return shows(w, s, val(uwsgi.ReadyFd()) == fd)
	})
}`,
	"wait_fd_write/bad_arguments": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		return strings.Join([]string{fails("no such file descriptor")(uwsgi.WaitFdWrite(99)), argerr(uwsgi.WaitFdWrite()),
			argerr(uwsgi.WaitFdWrite(fd, "soon"))}, ";")
	})
}`,
	"suspend/nothing": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return shows(val(uwsgi.Suspend()), val(uwsgi.ReadyFd())) })
}`,
	"suspend/harakiri": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		uwsgi.WaitFdRead(fd)
		uwsgi.SetUserHarakiri(0.05)
		uwsgi.Suspend()
		return "resumed"
	})
}`,
	"ready_fd/before_suspend": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return show(val(uwsgi.ReadyFd())) })
}`,
	"ready_fd/ready": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		uwsgi.Send(fd, "ping")
		w, _ := uwsgi.WaitFdRead(fd, 5)
		s, _ := uwsgi.Suspend()
		return shows(w, s, val(uwsgi.ReadyFd()) == fd, recvn(fd, 4))
	})
}`,
	"ready_fd/timeout": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		fd, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		w, _ := uwsgi.WaitFdRead(fd, 0.05)
		s, _ := uwsgi.Suspend()
		r, _ := uwsgi.ReadyFd()
		s2, _ := uwsgi.Suspend()
		return shows(w, s, r, s2, val(uwsgi.ReadyFd()))
	})
}`,
	"ready_fd/two_fds": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		quiet, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		busy, _ := uwsgi.AsyncConnect("{{ECHO_ADDR}}")
		uwsgi.Send(busy, "x")
		uwsgi.WaitFdRead(quiet, 5)
		uwsgi.WaitFdRead(busy, 5)
		uwsgi.Suspend()
		return show(val(uwsgi.ReadyFd()) == busy)
	})
}`,

	// The client connection of a request.
	"connection_fd/request": `
func Handler(w http.ResponseWriter, r *http.Request) {
	fd, _ := uwsgi.ConnectionFd()
	reply(w, typ(fd)+" "+shows(fd.(int64) >= 3, fd == val(uwsgi.ConnectionFd()), val(uwsgi.IsConnected(fd))))
}`,
	"connection_fd/no_connection": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return fails("no client connection")(uwsgi.ConnectionFd()) })
}`,
	"send/request": `
func Handler(w http.ResponseWriter, r *http.Request) {
	a, _ := uwsgi.Send("raw:")
	b, _ := uwsgi.Send(val(uwsgi.ConnectionFd()), "more;")
	reply(w, shows(a, b))
}`,
	"recv/request": `
func Handler(w http.ResponseWriter, r *http.Request) {
	a, _ := uwsgi.Recv(5)
	b, _ := uwsgi.Recv(val(uwsgi.ConnectionFd()), 100)
	reply(w, shows(a, b, val(uwsgi.Recv(0))))
}`,
	"recv/request_eof": `
func Handler(w http.ResponseWriter, r *http.Request) {
	a, _ := uwsgi.Recv(2)
	reply(w, shows(a, val(uwsgi.Recv(10))))
}`,
	"ready_fd/request": `
func Handler(w http.ResponseWriter, r *http.Request) {
	fd, _ := uwsgi.ConnectionFd()
	ok, _ := uwsgi.WaitFdRead(fd, 5)
	uwsgi.Suspend()
	reply(w, shows(ok, val(uwsgi.ReadyFd()) == fd, val(uwsgi.Recv(1))))
}`,
	"ready_fd/request_timeout": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WaitFdRead(val(uwsgi.ConnectionFd()), 0.05)
	uwsgi.Suspend()
	reply(w, show(val(uwsgi.ReadyFd())))
}`,
	"disconnect/request": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.Send("partial")
	uwsgi.Disconnect()
	uwsgi.CacheUpdate("after", "yes")
	reply(w, "not sent")
}`,
	"disconnect/no_connection": `
func init() {
	uwsgi.RegisterRpc("t", func() string { return fails("no client connection")(uwsgi.Disconnect()) })
}`,
	"is_connected/after_disconnect": `
func Handler(w http.ResponseWriter, r *http.Request) {
	fd, _ := uwsgi.ConnectionFd()
	uwsgi.Send("bye")
	uwsgi.Disconnect()
	uwsgi.CacheUpdate("disconnected", fmt.Sprint(val(uwsgi.IsConnected(fd))))
	uwsgi.Close(fd)
	uwsgi.CacheUpdate("closed", fmt.Sprint(val(uwsgi.IsConnected(fd))))
	reply(w, "not sent")
}`,
	"close/connection": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.Send("bye")
	uwsgi.Close(val(uwsgi.ConnectionFd()))
	uwsgi.CacheUpdate("after", "yes")
	reply(w, "not sent")
}`,
	// WebSockets.
	"websocket_handshake/echo": `
func Handler(w http.ResponseWriter, r *http.Request) {
	out := []string{show(val(uwsgi.WebsocketHandshake()))}
	for {
		msg, err := uwsgi.WebsocketRecv()
		if err != nil {
			reply(w, strings.Join(out, " ")+";"+fails("unable to receive websocket message")(msg, err))
			return
		}
		out = append(out, show(msg))
		uwsgi.WebsocketSend("echo: " + msg.(string))
	}
}`,
	"websocket_handshake/arguments": `
func Handler(w http.ResponseWriter, r *http.Request) {
	before := val(uwsgi.Call("open_long_calls"))
	a := val(uwsgi.WebsocketHandshake("dGhlIHNhbXBsZSBub25jZQ==", "http://example.com", "chat"))
	b := val(uwsgi.WebsocketHandshake())
	c := val(uwsgi.WebsocketHandshake(nil, nil, "echo"))
	reply(w, shows(before, a, b, c, val(uwsgi.Call("open_long_calls"))))
}`,
	"websocket_handshake/no_upgrade": `
func Handler(w http.ResponseWriter, r *http.Request) {
	first := "call websocket_handshake first"
	reply(w, strings.Join([]string{fails("did not ask for a websocket upgrade")(uwsgi.WebsocketHandshake()),
		fails(first)(uwsgi.WebsocketRecv()), fails(first)(uwsgi.WebsocketRecvNb()),
		fails(first)(uwsgi.WebsocketSend("x")), fails(first)(uwsgi.WebsocketSendBinary("x"))}, ";"))
}`,
	"websocket_handshake/no_request": `
func init() {
	uwsgi.RegisterRpc("t", func() string {
		return fails("did not ask for a websocket upgrade")(uwsgi.WebsocketHandshake()) + ";" +
			fails("call websocket_handshake first")(uwsgi.WebsocketRecv())
	})
}`,
	"websocket_handshake/too_many": `
func Handler(w http.ResponseWriter, r *http.Request) {
	reply(w, fails("too many websockets")(uwsgi.WebsocketHandshake()))
}`,
	"websocket_handshake/too_many_uncaught": `
func Handler(w http.ResponseWriter, r *http.Request) {
	if _, err := uwsgi.WebsocketHandshake(); err != nil {
		panic(err)
	}
	reply(w, "upgraded")
}`,
	"websocket_recv/binary": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WebsocketHandshake()
	text, _ := uwsgi.WebsocketRecv()
	bin, _ := uwsgi.WebsocketRecv()
	if _, ok := text.(string); !ok {
		reply(w, fmt.Sprintf("text is %T", text))
		return
	}
	if _, ok := bin.([]byte); !ok {
		reply(w, fmt.Sprintf("binary is %T", bin))
		return
	}
	uwsgi.WebsocketSendBinary(bin)
	uwsgi.WebsocketSend(text)
	reply(w, fmt.Sprintf("%x %x", text, bin))
}`,
	"websocket_recv_nb/with_and_without": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WebsocketHandshake()
	a := val(uwsgi.WebsocketRecvNb())
	b := val(uwsgi.WebsocketRecvNb())
	uwsgi.AsyncSleep(0.5)
	c := val(uwsgi.WebsocketRecvNb())
	reply(w, shows(a, b, c, val(uwsgi.WebsocketRecvNb())))
}`,
	"websocket_recv/closed": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WebsocketHandshake()
	a := val(uwsgi.WebsocketRecv())
	reply(w, show(a)+" "+strings.Join([]string{
		fails("unable to receive websocket message")(uwsgi.WebsocketRecv()),
		fails("unable to receive websocket message")(uwsgi.WebsocketRecvNb()),
		fails("unable to send websocket message")(uwsgi.WebsocketSend("x")),
		fails("unable to send websocket binary message")(uwsgi.WebsocketSendBinary("x"))}, ";"))
}`,
	"websocket_send/bad_arguments": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WebsocketHandshake()
	m := map[string]any{}
	reply(w, strings.Join([]string{argerr(uwsgi.WebsocketSend()), argerr(uwsgi.WebsocketSend(m)),
		argerr(uwsgi.WebsocketSendBinary(true)), argerr(uwsgi.WebsocketHandshake(m)),
		argerr(uwsgi.WebsocketHandshake(nil, m)), argerr(uwsgi.WebsocketHandshake(nil, nil, m))}, ";")+
		" "+show(val(uwsgi.WebsocketSend(42))))
}`,
	"websocket_recv/time_limit": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.WebsocketHandshake()
	uwsgi.SetUserHarakiri(0.25)
	n := 0
	for {
		if _, err := uwsgi.WebsocketRecv(); err != nil {
			break
		}
		n++
	}
	reply(w, shows("survived", n))
}`,
	"websocket_handshake/busy_loop": `
func Handler(w http.ResponseWriter, r *http.Request) {
	uwsgi.SetUserHarakiri(0.2)
	uwsgi.WebsocketHandshake()
	for {
	}
}`,
}
