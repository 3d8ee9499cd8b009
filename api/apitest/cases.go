package apitest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// cases is the language-neutral case table; the scripts are in
// cases_<lang>.go under the same names.
func cases() []Case {
	return append([]Case{
		// Cron and timers.
		{Name: "add_cron/registers", Funcs: fns("add_cron"), Want: "true true true", Check: timers(3)},
		{Name: "add_cron/out_of_range", Funcs: fns("add_cron"),
			Want: "failed failed failed failed failed failed", Check: timers(0)},
		{Name: "add_cron/bad_arguments", Funcs: fns("add_cron"), Check: timers(0),
			Want: "bad argument #6 to uwsgi.add_cron;bad argument #1 to uwsgi.add_cron;" +
				"bad argument #2 to uwsgi.add_cron;bad argument #3 to uwsgi.add_cron"},
		{Name: "add_timer/fires", Funcs: fns("add_timer", "register_signal", "cache_inc"), Want: "true",
			Check: func(f *Fixture) {
				f.Eventually("signal 20 raised twice by the timer", func() bool { return f.CacheInt("ticks") >= 2 })
				timers(1)(f)
			}},
		{Name: "add_timer/bad_arguments", Funcs: fns("add_timer"), Check: timers(0),
			Want: "failed;bad argument #2 to uwsgi.add_timer;bad argument #2 to uwsgi.add_timer;bad argument #1 to uwsgi.add_timer"},
		{Name: "add_rb_timer/iterations", Funcs: fns("add_rb_timer", "register_signal", "cache_inc"), Want: "true",
			Check: func(f *Fixture) {
				f.Eventually("two ticks and the timer gone", func() bool {
					return f.CacheInt("rb") == 2 && f.State.Timers.Len() == 0
				})
				time.Sleep(200 * time.Millisecond) // four more intervals
				if n := f.CacheInt("rb"); n != 2 {
					f.T.Errorf("the timer with 2 iterations fired %d times", n)
				}
			}},
		{Name: "add_rb_timer/forever", Funcs: fns("add_rb_timer", "register_signal"), Want: "true",
			Check: func(f *Fixture) {
				f.Eventually("three ticks", func() bool { return f.CacheInt("rb") >= 3 })
				timers(1)(f)
			}},
		{Name: "add_rb_timer/bad_arguments", Funcs: fns("add_rb_timer"), Check: timers(0),
			Want: "failed;failed;bad argument #3 to uwsgi.add_rb_timer;bad argument #2 to uwsgi.add_rb_timer"},

		// Alarms and logs.
		{Name: "alarm/raises", Funcs: fns("alarm"), Want: "nil nil",
			Check: func(f *Fixture) {
				want := []Alarm{{"disk", "full: 99%"}, {"count", "42"}}
				if got := f.Alarms(); !slices.Equal(got, want) {
					f.T.Errorf("alarms %q, want %q", got, want)
				}
			}},
		{Name: "alarm/bad_arguments", Funcs: fns("alarm"), Check: noAlarms,
			Want: "bad argument #2 to uwsgi.alarm;bad argument #1 to uwsgi.alarm;bad argument #1 to uwsgi.alarm"},
		{Name: "log/line", Funcs: fns("log"), Want: "nil", Check: logged("hello 42 1.5 true nil end")},
		{Name: "log/no_arguments", Funcs: fns("log"), Want: "bad argument #1 to uwsgi.log",
			Check: func(f *Fixture) { noRecord(f, "") }},

		// Process and host information.
		{Name: "masterpid/pid", Funcs: fns("masterpid"), Want: "{{PID}} number true"},
		{Name: "worker_id/one", Funcs: fns("worker_id"), Want: "1 number true"},
		{Name: "mule_id/zero", Funcs: fns("mule_id"), Want: "0 number true"},
		{Name: "hostname/value", Funcs: fns("hostname"), Want: `"testhost" string`},
		{Name: "version/value", Funcs: fns("version"), Want: `"{{VERSION}}" string`},
		{Name: "opt/socket", Funcs: fns("opt"), Want: `"127.0.0.1:0" nil table`},
		{Name: "opt/copy", Funcs: fns("opt"), Want: `"done"`,
			Check: func(f *Fixture) {
				if got := f.State.Options["socket"]; got != "127.0.0.1:0" {
					f.T.Errorf("a script changed the host's option socket to %q", got)
				}
			}},
		{Name: "setprocname/renames", Funcs: fns("setprocname"), Want: "nil",
			Setup: saveProcName, Check: procNameIs("sh-apitest")},
		{Name: "setprocname/truncates", Funcs: fns("setprocname"), Want: "nil",
			Setup: saveProcName, Check: procNameIs("sh-apitest-very")},
		{Name: "setprocname/bad_arguments", Funcs: fns("setprocname"),
			Want: "bad argument #1 to uwsgi.setprocname;bad argument #1 to uwsgi.setprocname"},

		// Caches.
		{Name: "cache_get/miss", Funcs: fns("cache_get"), Want: "nil nil"},
		{Name: "cache_get/hit", Funcs: fns("cache_get", "cache_update"), Want: `"v" "42" 3 true`},
		{Name: "cache_get/named", Funcs: fns("cache_get", "cache_update"), Want: `nil "o"`},
		{Name: "cache_get/bad_arguments", Funcs: fns("cache_get"),
			Want: "bad argument #1 to uwsgi.cache_get;bad argument #1 to uwsgi.cache_get;" +
				"bad argument #2 to uwsgi.cache_get;nil;failed",
			Note: "an unknown local cache gives nil, as in uWSGI"},
		{Name: "cache_get/remote", Funcs: fns("cache_get"), Want: `"remote value" nil "dv"`,
			Setup: nodeItems("other", "k", "remote value", "", "d", "dv")},
		{Name: "cache_get/remote_unreachable", Funcs: fns("cache_get"), Want: "nil",
			Note: "uWSGI returns not_defined when a remote cache cannot be reached; the failure is logged"},
		{Name: "cache_set/new_and_existing", Funcs: fns("cache_set"), Want: `true nil "v"`},
		{Name: "cache_set/expires", Funcs: fns("cache_set", "async_sleep"), Want: `true nil true "w"`},
		{Name: "cache_set/too_large", Funcs: fns("cache_set"), Want: "nil nil nil"},
		{Name: "cache_set/named", Funcs: fns("cache_set"), Want: `true nil "v" nil`},
		{Name: "cache_set/bad_arguments", Funcs: fns("cache_set"),
			Want: "bad argument #1 to uwsgi.cache_set;bad argument #2 to uwsgi.cache_set;bad argument #2 to uwsgi.cache_set;" +
				"bad argument #3 to uwsgi.cache_set;bad argument #3 to uwsgi.cache_set;nil;failed"},
		{Name: "cache_set/remote", Funcs: fns("cache_set"), Want: "true nil",
			Check: nodeItemIs("other", "k", "v", true)},
		{Name: "cache_update/overwrites", Funcs: fns("cache_update"), Want: `true true "w"`},
		{Name: "cache_update/expires", Funcs: fns("cache_update", "async_sleep"), Want: `true true "w" nil`},
		{Name: "cache_update/named", Funcs: fns("cache_update"), Want: `true nil "o"`},
		{Name: "cache_update/bad_arguments", Funcs: fns("cache_update"),
			Want: "bad argument #2 to uwsgi.cache_update;bad argument #3 to uwsgi.cache_update;nil;nil"},
		{Name: "cache_update/remote", Funcs: fns("cache_update"), Want: "true true",
			Check: nodeItemIs("other", "k", "w", true)},
		{Name: "cache_del/existing_and_missing", Funcs: fns("cache_del"), Want: "true nil nil"},
		{Name: "cache_del/named", Funcs: fns("cache_del"), Want: "nil true nil"},
		{Name: "cache_del/bad_arguments", Funcs: fns("cache_del"),
			Want: "bad argument #1 to uwsgi.cache_del;failed;nil"},
		{Name: "cache_del/remote", Funcs: fns("cache_del"), Want: "true nil true",
			Setup: nodeItems("", "k", "v", "other", "k", "o"),
			Check: func(f *Fixture) {
				for _, name := range []string{"", "other"} {
					if n := f.Node.Cache(name).Len(); n != 0 {
						f.T.Errorf("node cache %q holds %d items after the deletes", name, n)
					}
				}
			}},
		{Name: "cache_exists/hit_and_miss", Funcs: fns("cache_exists"), Want: "true nil"},
		{Name: "cache_exists/expires", Funcs: fns("cache_exists", "cache_set"), Want: "true true nil"},
		{Name: "cache_exists/bad_arguments", Funcs: fns("cache_exists"),
			Want: "bad argument #1 to uwsgi.cache_exists;bad argument #1 to uwsgi.cache_exists;nil"},
		{Name: "cache_exists/remote", Funcs: fns("cache_exists"), Want: "true nil nil",
			Setup: nodeItems("other", "k", "v")},
		{Name: "cache_clear/default", Funcs: fns("cache_clear"), Want: `true nil nil "3"`},
		{Name: "cache_clear/named", Funcs: fns("cache_clear"), Want: `true "1" nil`},
		{Name: "cache_clear/bad_arguments", Funcs: fns("cache_clear"),
			Want: "nil;bad argument #1 to uwsgi.cache_clear"},
		{Name: "cache_clear/remote", Funcs: fns("cache_clear"), Want: "true",
			Setup: nodeItems("other", "x", "1", "", "y", "2"),
			Check: func(f *Fixture) {
				if n := f.Node.Cache("other").Len(); n != 0 {
					f.T.Errorf("node cache other holds %d items after the clear", n)
				}
				if n := f.Node.Cache("").Len(); n != 1 {
					f.T.Errorf("node cache default holds %d items, want 1 (not cleared)", n)
				}
			}},
		// Counters are uWSGI's: an 8-byte little-endian int64 (see api.Cache.Counter).
		{Name: "cache_inc/counts", Funcs: fns("cache_inc", "cache_num"), Want: "1 2 12 12",
			Check: cacheIs("n", counter(12))},
		{Name: "cache_inc/expires", Funcs: fns("cache_inc", "async_sleep"), Want: "1 nil"},
		{Name: "cache_inc/keeps_expiry", Funcs: fns("cache_inc", "cache_num", "async_sleep"), Want: "2 2 nil 2",
			Note: "uWSGI's math operations set the expiry of the item they create only (UWSGI_CACHE_FLAG_FIXEXPIRE)"},
		{Name: "cache_inc/named", Funcs: fns("cache_inc", "cache_num"), Want: "3 0 3"},
		{Name: "cache_inc/not_a_counter", Funcs: fns("cache_inc", "cache_update"), Want: `nil 42 nil "abc" "9223372036854775807"`,
			Check: func(f *Fixture) {
				cacheIs("d", counter(42))(f)
				if _, ok := f.Log.Find("cache_inc left the item as it was"); !ok {
					f.T.Error("no log record for the item that holds no counter")
				}
			}},
		{Name: "cache_inc/bad_arguments", Funcs: fns("cache_inc"),
			Want: "bad argument #1 to uwsgi.cache_inc;bad argument #2 to uwsgi.cache_inc;" +
				"bad argument #3 to uwsgi.cache_inc;nil"},
		{Name: "cache_inc/remote", Funcs: fns("cache_inc", "cache_num"), Want: "5 7 7 0",
			Check: nodeItemIs("other", "n", counter(7), false)},
		{Name: "cache_dec/counts", Funcs: fns("cache_dec", "cache_num"), Want: "-1 -6 -6 4",
			Check: cacheIs("m", counter(4))},
		{Name: "cache_dec/named", Funcs: fns("cache_dec", "cache_num"), Want: "-2 0 -2"},
		{Name: "cache_dec/bad_arguments", Funcs: fns("cache_dec"),
			Want: "nil;nil;bad argument #1 to uwsgi.cache_dec;bad argument #2 to uwsgi.cache_dec"},
		{Name: "cache_mul/counts", Funcs: fns("cache_mul", "cache_inc", "cache_num"), Want: "0 6 30 -30 -30",
			Check: cacheIs("n", counter(-30))},
		{Name: "cache_mul/named_and_remote", Funcs: fns("cache_mul", "cache_inc", "cache_num"), Want: "8 0 15 15",
			Check: nodeItemIs("other", "n", counter(15), false)},
		{Name: "cache_mul/bad_arguments", Funcs: fns("cache_mul"),
			Want: "nil;nil;bad argument #1 to uwsgi.cache_mul;bad argument #2 to uwsgi.cache_mul;bad argument #3 to uwsgi.cache_mul"},
		{Name: "cache_div/counts", Funcs: fns("cache_div", "cache_inc", "cache_num"), Want: "0 50 16 -4 0 0",
			Note: "uWSGI's cache_div by 0 stores 0"},
		{Name: "cache_div/named_and_remote", Funcs: fns("cache_div", "cache_inc", "cache_num"), Want: "4 0 6 6",
			Check: nodeItemIs("other", "n", counter(6), false)},
		{Name: "cache_div/bad_arguments", Funcs: fns("cache_div"),
			Want: "nil;nil;bad argument #1 to uwsgi.cache_div;bad argument #2 to uwsgi.cache_div"},
		{Name: "cache_num/values", Funcs: fns("cache_num", "cache_inc", "cache_update"), Want: `24 17 0 0 "number"`},
		{Name: "cache_num/named", Funcs: fns("cache_num", "cache_inc"), Want: "0 3"},
		{Name: "cache_num/remote", Funcs: fns("cache_num"), Want: "24 5 0 0",
			Setup: nodeItems("other", "n", counter(24), "", "d", "5", "", "s", "abc")},
		{Name: "cache_num/remote_unreachable", Funcs: fns("cache_num"), Want: "0",
			Note: "uWSGI's cache_num returns 0 when the item cannot be had; the failure is logged"},
		{Name: "cache_num/bad_arguments", Funcs: fns("cache_num"),
			Want: "bad argument #1 to uwsgi.cache_num;0;bad argument #2 to uwsgi.cache_num"},
		{Name: "cache_keys/order", Funcs: fns("cache_keys"), Want: `["c","b","a"] ["a","c","b"]`},
		{Name: "cache_keys/named", Funcs: fns("cache_keys"), Want: `[] ["x"] []`},
		{Name: "cache_keys/expired", Funcs: fns("cache_keys"), Want: `["l"]`},
		{Name: "cache_keys/bad_arguments", Funcs: fns("cache_keys"),
			Want: "failed;failed;bad argument #1 to uwsgi.cache_keys",
			Note: "an unknown cache raises, as in uWSGI's Python binding (ValueError)"},

		// RPC.
		{Name: "register_rpc/registers", Funcs: fns("register_rpc"), Want: "true true",
			Check: func(f *Fixture) {
				for _, names := range [][]string{f.State.RPC.Names(), f.Registrations.RPCNames()} {
					if !slices.Equal(names, []string{"f", "g", "t"}) {
						f.T.Errorf("registered RPC functions %q, want f, g, t", names)
					}
				}
				res, err := f.State.RPC.Call(f.Ctx, "f", []byte("a"), []byte("b"))
				if string(res) != "a+b" || err != nil {
					f.T.Errorf("Go call of the script's f(a, b) = %q, %v; want \"a+b\"", res, err)
				}
			}},
		{Name: "register_rpc/replace", Funcs: fns("register_rpc", "call"), Want: `"2"`},
		// A function registered during a call lives in the VM that made it,
		// as a signal handler made then does (register_signal/during_call):
		// calls wait for that VM, and the registration ends when it is
		// replaced.
		{Name: "register_rpc/during_call", Funcs: fns("register_rpc", "call"), Want: `true "dyn 1"`,
			Check: func(f *Fixture) {
				if got, err := f.Call("dyn", "2"); got != "dyn 2" || err != nil {
					f.T.Errorf("dyn(2) after the call that registered it = %q, %v; want \"dyn 2\"", got, err)
				}
				noRecord(f, rpcEndedMsg)
			}},
		{Name: "register_rpc/vm_replaced", Funcs: fns("register_rpc", "call", "set_user_harakiri"),
			WantErr: api.ErrHarakiri, Check: func(f *Fixture) {
				f.Eventually("dyn unregistered with the VM that made it", func() bool {
					_, mine := f.Registrations.LookupRPC("dyn")
					_, shared := f.State.RPC.Lookup("dyn")
					return !mine && !shared
				})
				if got, err := f.Call("u"); got != "nil" || err != nil {
					f.T.Errorf("call(dyn) from a script after its VM was replaced = %q, %v; want nil", got, err)
				}
				if n := f.Log.Count(rpcEndedMsg); n != 1 {
					f.T.Errorf("%d log records %q, want 1", n, rpcEndedMsg)
				}
				if r, _ := f.Log.Find(rpcEndedMsg); r.Attrs["rpc"] != "dyn" {
					f.T.Errorf("log record %q names %q, want dyn", rpcEndedMsg, r.Attrs["rpc"])
				}
			}},
		{Name: "register_rpc/results", Funcs: fns("register_rpc", "call"), Want: `"0.5" "3" "" nil`},
		{Name: "register_rpc/load_errors", Funcs: fns("register_rpc", "register_signal", "add_timer"), Concurrent: 4,
			Want: "bad argument #2 to uwsgi.register_rpc;failed;bad argument #1 to uwsgi.register_signal;failed;" +
				"bad argument #2 to uwsgi.add_timer;failed", Check: timers(0)},
		{Name: "register_rpc/bad_arguments", Funcs: fns("register_rpc"),
			Want: "bad argument #1 to uwsgi.register_rpc;bad argument #2 to uwsgi.register_rpc;" +
				"bad argument #2 to uwsgi.register_rpc;failed;failed"},
		{Name: "call/local", Funcs: fns("call", "register_rpc"), Want: `"3" "stringstring" "1.5|10"`},
		{Name: "call/binary", Funcs: fns("call"), Want: `"3" true`},
		{Name: "call/no_result", Funcs: fns("call"), Want: "nil nil"},
		{Name: "call/error", Funcs: fns("call"), Want: "failed"},
		{Name: "call/nested", Funcs: fns("call"), Want: `"out:in"`},
		{Name: "call/go_function", Funcs: fns("call"), Want: `"a+1" nil`,
			Setup: func(f *Fixture) {
				f.State.RPC.Register("gofn", func(_ context.Context, args [][]byte) ([]byte, error) {
					parts := make([]string, len(args))
					for i, a := range args {
						parts[i] = string(a)
					}
					return []byte(strings.Join(parts, "+")), nil
				})
				f.State.RPC.Register("gonil", func(context.Context, [][]byte) ([]byte, error) {
					return nil, api.ErrNoResult
				})
			}},
		{Name: "call/bad_arguments", Funcs: fns("call"),
			Want: "bad argument #1 to uwsgi.call;bad argument #1 to uwsgi.call;bad argument #2 to uwsgi.call"},
		{Name: "rpc/local", Funcs: fns("rpc"), Want: `"3" "5"`},
		{Name: "rpc/remote", Funcs: fns("rpc"), Want: `"Hello World" "a b" nil`,
			Check: func(f *Fixture) {
				want := []string{"hello", "echo a b", "nosuch"}
				if got := f.Node.Calls(); !slices.Equal(got, want) {
					f.T.Errorf("the node received calls %q, want %q", got, want)
				}
			}},
		{Name: "rpc/unreachable", Funcs: fns("rpc"), Want: "failed"},
		{Name: "rpc/bad_arguments", Funcs: fns("rpc"),
			Note: "api defect: rpc passes its arguments after the first to the next step as a new Args " +
				"(Args{Vals: a.Vals[1:]}), so argument errors past the first name the wrong position " +
				"(api/binding.go: rpc and callNode)",
			Want: "bad argument #2 to uwsgi.rpc;bad argument #2 to uwsgi.rpc;bad argument #1 to uwsgi.rpc;bad argument #3 to uwsgi.rpc"},

		// Signals.
		{Name: "register_signal/delivers", Funcs: fns("register_signal", "signal"), Want: "true nil",
			Check: func(f *Fixture) { f.WaitCache("sig", "17 number") }},
		{Name: "register_signal/targets", Funcs: fns("register_signal"), Want: "true true true true true true;failed",
			Check: func(f *Fixture) {
				if got := f.Registrations.SignalNums(); !slices.Equal(got, []uint8{17}) {
					f.T.Errorf("signals registered by the generation %v, want [17]", got)
				}
			}},
		{Name: "register_signal/bad_arguments", Funcs: fns("register_signal"),
			Want: "bad argument #3 to uwsgi.register_signal;bad argument #1 to uwsgi.register_signal;" +
				"bad argument #3 to uwsgi.register_signal;bad argument #1 to uwsgi.register_signal;bad argument #2 to uwsgi.register_signal"},
		{Name: "register_signal/handler_error", Funcs: fns("register_signal"), Want: `"ok"`,
			Check: func(f *Fixture) {
				err := f.State.Signals.RaiseSync(f.Ctx, 18)
				if err == nil || !strings.Contains(err.Error(), "sig failed 18") {
					f.T.Errorf("RaiseSync(18) = %v, want the handler's error \"sig failed 18\"", err)
				}
			}},
		{Name: "signal/unregistered", Funcs: fns("signal"), Want: "nil",
			Check: func(f *Fixture) {
				f.Eventually(`"no handler for signal" 99 logged`, func() bool {
					r, ok := f.Log.Find("no handler for signal")
					return ok && r.Attrs["signal"] == "99"
				})
			}},
		{Name: "signal/remote", Funcs: fns("signal"), Want: "nil",
			Check: func(f *Fixture) {
				if got := f.Node.Signals(); !slices.Equal(got, []uint8{17}) {
					f.T.Errorf("the node received signals %v, want [17]", got)
				}
			}},
		{Name: "signal/bad_arguments", Funcs: fns("signal"),
			Want: "bad argument #1 to uwsgi.signal;bad argument #1 to uwsgi.signal;bad argument #2 to uwsgi.signal;failed"},
		// A handler made during a call lives in the VM that made it (no
		// other VM has it): it runs there, waiting while that VM serves
		// the call, and its registration ends when that VM is replaced.
		{Name: "register_signal/during_call", Funcs: fns("register_signal", "signal", "signal_registered", "async_sleep"),
			Want: "true nil true", Check: func(f *Fixture) {
				f.WaitCache("sig22", "22 number")
				noRecord(f, "signal handler failed")
				noRecord(f, signalEndedMsg)
			}},
		{Name: "register_signal/vm_replaced", Funcs: fns("register_signal", "signal_registered", "set_user_harakiri"),
			WantErr: api.ErrHarakiri, Check: func(f *Fixture) {
				f.Eventually("signal 23 unregistered with the VM that made its handler", func() bool {
					return !f.Registrations.SignalRegistered(23) && !f.State.Signals.Registered(23)
				})
				if got, err := f.Call("u"); got != "false" || err != nil {
					f.T.Errorf("signal_registered(23) from a script after its handler's VM was replaced = %q, %v; want false", got, err)
				}
				// The signal now has no handler: raised, it is logged as such,
				// once, and nothing tries to run the gone function.
				if err := f.State.Signals.Raise(23); err != nil {
					f.T.Fatal(err)
				}
				f.Eventually(`"no handler for signal" 23 logged`, func() bool {
					r, ok := f.Log.Find("no handler for signal")
					return ok && r.Attrs["signal"] == "23"
				})
				noRecord(f, "signal handler failed")
				if n := f.Log.Count(signalEndedMsg); n != 1 {
					f.T.Errorf("%d log records %q, want 1", n, signalEndedMsg)
				}
				if r, _ := f.Log.Find(signalEndedMsg); r.Attrs["signal"] != "23" {
					f.T.Errorf("log record %q names signal %q, want 23", signalEndedMsg, r.Attrs["signal"])
				}
			}},
		{Name: "signal_registered/states", Funcs: fns("signal_registered"), Want: "false true false"},
		{Name: "signal_registered/bad_arguments", Funcs: fns("signal_registered"),
			Want: "bad argument #1 to uwsgi.signal_registered;bad argument #1 to uwsgi.signal_registered;bad argument #1 to uwsgi.signal_registered"},

		// Locks.
		{Name: "lock/unlock", Funcs: fns("lock", "unlock"), Want: "nil nil nil nil",
			Check: func(f *Fixture) {
				for _, n := range []int{0, 5} {
					if ok, _ := f.State.Locks.TryLock(n); !ok {
						f.T.Errorf("lock %d is still held", n)
					}
				}
			}},
		{Name: "lock/waits", Funcs: fns("lock", "unlock"), Want: `"locked"`,
			Setup: func(f *Fixture) {
				if err := f.State.Locks.Lock(f.Ctx, 3); err != nil {
					f.T.Fatal(err)
				}
				released := make(chan time.Time, 1)
				f.Data["released"] = released
				tm := time.AfterFunc(100*time.Millisecond, func() {
					released <- time.Now()
					f.State.Locks.Unlock(3)
				})
				f.T.Cleanup(func() { tm.Stop() })
			},
			Check: func(f *Fixture) {
				select {
				case at := <-f.Data["released"].(chan time.Time):
					if f.Returned.Before(at) {
						f.T.Errorf("lock(3) returned at %v, before the holder released the lock at %v", f.Returned, at)
					}
				default:
					f.T.Errorf("lock(3) returned before the holder released the lock")
				}
				if ok, _ := f.State.Locks.TryLock(3); !ok {
					f.T.Errorf("lock 3 is still held")
				}
			}},
		{Name: "lock/outlives_call", Funcs: fns("lock"), Want: "nil",
			Check: func(f *Fixture) {
				if ok, _ := f.State.Locks.TryLock(6); ok {
					f.T.Errorf("lock 6 was released when the call that took it ended")
				}
				f.State.Locks.Unlock(6)
			}},
		{Name: "lock/bad_arguments", Funcs: fns("lock"),
			Want: "failed;failed;bad argument #1 to uwsgi.lock;bad argument #1 to uwsgi.lock"},
		{Name: "lock/harakiri", Funcs: fns("lock", "set_user_harakiri"), WantErr: api.ErrHarakiri, Check: prompt,
			Setup: func(f *Fixture) {
				if err := f.State.Locks.Lock(f.Ctx, 4); err != nil {
					f.T.Fatal(err)
				}
			}},
		// uWSGI's unlock of a lock nobody holds does nothing; a lock
		// number out of range is an error ("Invalid lock number").
		{Name: "unlock/not_locked", Funcs: fns("unlock"),
			Want: "nil nil nil;failed;bad argument #1 to uwsgi.unlock",
			Check: func(f *Fixture) {
				for _, n := range []int{0, 7} {
					if ok, _ := f.State.Locks.TryLock(n); !ok {
						f.T.Errorf("lock %d is held after unlocking it while free", n)
					}
				}
			}},

		// Sleeping and time limits.
		{Name: "async_sleep/returns", Funcs: fns("async_sleep"), Want: "nil nil nil"},
		{Name: "async_sleep/harakiri", Funcs: fns("async_sleep", "set_user_harakiri"), WantErr: api.ErrHarakiri, Check: prompt},
		{Name: "async_sleep/bad_arguments", Funcs: fns("async_sleep"),
			Want: "bad argument #1 to uwsgi.async_sleep;bad argument #1 to uwsgi.async_sleep;bad argument #1 to uwsgi.async_sleep"},
		{Name: "set_user_harakiri/busy_loop", Funcs: fns("set_user_harakiri"), WantErr: api.ErrHarakiri, Check: prompt},
		{Name: "set_user_harakiri/reset", Funcs: fns("set_user_harakiri"), Want: `nil nil "survived"`},
		{Name: "set_user_harakiri/extend", Funcs: fns("set_user_harakiri"), Want: `"survived"`},
		{Name: "set_user_harakiri/request", Funcs: fns("set_user_harakiri", "async_sleep"), Request: true,
			WantErr: api.ErrHarakiri, Check: prompt},
		{Name: "set_user_harakiri/bad_arguments", Funcs: fns("set_user_harakiri"),
			Want: "bad argument #1 to uwsgi.set_user_harakiri;bad argument #1 to uwsgi.set_user_harakiri;bad argument #1 to uwsgi.set_user_harakiri"},

		// Connections made by the script.
		{Name: "async_connect/tcp", Funcs: fns("async_connect", "is_connected"), Want: "number true true"},
		{Name: "async_connect/unix", Funcs: fns("async_connect", "send"), Want: `4 "unix"`},
		{Name: "async_connect/distinct", Funcs: fns("async_connect"), Want: "true true true"},
		// uWSGI's async_connect returns -1 when the connection fails.
		{Name: "async_connect/refused", Funcs: fns("async_connect", "is_connected", "send"),
			Want: "-1 -1 false;failed", Check: func(f *Fixture) {
				if n := f.Log.Count("async_connect failed"); n != 2 {
					f.T.Errorf("%d log records \"async_connect failed\", want 2", n)
				}
			}},
		{Name: "async_connect/bad_arguments", Funcs: fns("async_connect"),
			Want: "bad argument #1 to uwsgi.async_connect;bad argument #1 to uwsgi.async_connect"},
		{Name: "send/dialed", Funcs: fns("send", "recv", "async_connect"), Want: `3 "abc"`},
		{Name: "send/bad_arguments", Funcs: fns("send"),
			Note: "api defect: send passes its arguments after the first to the next step as a new Args " +
				"(Args{Vals: a.Vals[1:]}), so argument errors past the first name the wrong position " +
				"(api/binding.go: handleArg)",
			Want: "failed;bad argument #1 to uwsgi.send;failed;bad argument #1 to uwsgi.send;bad argument #2 to uwsgi.send"},
		{Name: "recv/bad_arguments", Funcs: fns("recv"),
			Note: "api defect: recv passes its arguments after the first to the next step as a new Args " +
				"(Args{Vals: a.Vals[1:]}), so argument errors past the first name the wrong position " +
				"(api/binding.go: handleArg)",
			Want: "failed;bad argument #1 to uwsgi.recv;bad argument #1 to uwsgi.recv;failed;bad argument #2 to uwsgi.recv"},
		{Name: "recv/harakiri", Funcs: fns("recv", "set_user_harakiri"), WantErr: api.ErrHarakiri, Check: prompt},
		{Name: "close/dialed", Funcs: fns("close", "is_connected"), Want: "nil false failed"},
		{Name: "close/bad_arguments", Funcs: fns("close"),
			Want: "bad argument #1 to uwsgi.close;bad argument #1 to uwsgi.close;failed"},
		{Name: "is_connected/handles", Funcs: fns("is_connected"), Want: "true false false;bad argument #1 to uwsgi.is_connected"},
		{Name: "wait_fd_read/bad_arguments", Funcs: fns("wait_fd_read"),
			Want: "true;failed;bad argument #1 to uwsgi.wait_fd_read;bad argument #1 to uwsgi.wait_fd_read;" +
				"bad argument #2 to uwsgi.wait_fd_read;bad argument #2 to uwsgi.wait_fd_read"},
		{Name: "wait_fd_write/ready", Funcs: fns("wait_fd_write", "suspend", "ready_fd"), Want: "true nil true"},
		{Name: "wait_fd_write/bad_arguments", Funcs: fns("wait_fd_write"),
			Want: "failed;bad argument #1 to uwsgi.wait_fd_write;bad argument #2 to uwsgi.wait_fd_write"},
		{Name: "suspend/nothing", Funcs: fns("suspend", "ready_fd"), Want: "nil -1"},
		{Name: "suspend/harakiri", Funcs: fns("suspend", "wait_fd_read", "set_user_harakiri"), WantErr: api.ErrHarakiri, Check: prompt},
		{Name: "ready_fd/before_suspend", Funcs: fns("ready_fd"), Want: "-1"},
		{Name: "ready_fd/ready", Funcs: fns("ready_fd", "wait_fd_read", "suspend", "send"), Want: `true nil true "ping"`},
		{Name: "ready_fd/timeout", Funcs: fns("ready_fd", "wait_fd_read", "suspend"), Want: "true nil -1 nil -1"},
		{Name: "ready_fd/two_fds", Funcs: fns("ready_fd", "wait_fd_read", "suspend"), Want: "true"},

		// The client connection of a request.
		{Name: "connection_fd/request", Funcs: fns("connection_fd", "is_connected"), Request: true,
			Want: resp("number true true true")},
		{Name: "connection_fd/no_connection", Funcs: fns("connection_fd"), Want: "failed"},
		{Name: "send/request", Funcs: fns("send", "connection_fd"), Request: true,
			Want: "raw:more;" + resp("4 5")},
		{Name: "recv/request", Funcs: fns("recv", "connection_fd"), Request: true, Input: "hello world",
			Want: resp(`"hello" " world" ""`)},
		{Name: "recv/request_eof", Funcs: fns("recv"), Request: true, Input: "ab", CloseInput: true,
			Want: resp(`"ab" nil`)},
		{Name: "ready_fd/request", Funcs: fns("ready_fd", "wait_fd_read", "suspend", "connection_fd", "recv"),
			Request: true, Input: "x", Want: resp(`true true "x"`)},
		{Name: "ready_fd/request_timeout", Funcs: fns("ready_fd", "wait_fd_read", "suspend"), Request: true,
			Want: resp("-1")},
		{Name: "disconnect/request", Funcs: fns("disconnect", "send"), Request: true, Disconnects: true,
			Want: "partial", Check: cacheIs("after", "yes")},
		{Name: "disconnect/no_connection", Funcs: fns("disconnect"), Want: "failed"},
		{Name: "is_connected/after_disconnect", Funcs: fns("is_connected", "disconnect", "close"), Request: true,
			Disconnects: true, Want: "bye", Check: func(f *Fixture) {
				cacheIs("disconnected", "false")(f)
				cacheIs("closed", "false")(f)
			},
			Note: "api defect: Scope.IsConnected answers true for the client connection's handle after " +
				"disconnect/close (api/scope.go: lookup finds connFD whatever the state of the connection), " +
				"while is_connected's Doc says \"true if the file descriptor is an open connection\""},
		{Name: "close/connection", Funcs: fns("close", "connection_fd"), Request: true, Disconnects: true,
			Want: "bye", Check: cacheIs("after", "yes")},

		// WebSockets: the request's context carries a fake Upgrader.
		{Name: "websocket_handshake/echo", Funcs: fns("websocket_handshake", "websocket_recv", "websocket_send"), Request: true,
			WebSocket:  &WebSocket{Messages: []Message{Text("hello"), Text("world")}, Close: true},
			Want:       resp(`nil "hello" "world";failed`),
			WantFrames: `upgrade("","","") text:"echo: hello" text:"echo: world"`, Check: longCallsOpen(0)},
		{Name: "websocket_handshake/arguments", Funcs: fns("websocket_handshake", "call"), Request: true,
			WebSocket: &WebSocket{}, Setup: registerOpenLongCalls,
			Want: resp(`"0" nil nil nil "1"`),
			WantFrames: `upgrade("dGhlIHNhbXBsZSBub25jZQ==","http://example.com","chat") upgrade("","","") ` +
				`upgrade("","","echo")`, Check: longCallsOpen(0)},
		{Name: "websocket_handshake/no_upgrade", Request: true,
			Funcs: fns("websocket_handshake", "websocket_recv", "websocket_recv_nb", "websocket_send", "websocket_send_binary"),
			Want:  resp("failed;failed;failed;failed;failed")},
		{Name: "websocket_handshake/no_request", Funcs: fns("websocket_handshake", "websocket_recv"), Want: "failed;failed"},
		{Name: "websocket_handshake/too_many", Funcs: fns("websocket_handshake"), Request: true,
			WebSocket: &WebSocket{}, Setup: fillLongCalls, Want: resp("failed"), Check: longCallsOpen(1)},
		{Name: "websocket_handshake/too_many_uncaught", Funcs: fns("websocket_handshake"), Request: true,
			WebSocket: &WebSocket{}, Setup: fillLongCalls, WantErr: api.ErrTooManyWebSockets, Check: longCallsOpen(1)},
		{Name: "websocket_recv/binary", Funcs: fns("websocket_recv", "websocket_send_binary", "websocket_send"), Request: true,
			WebSocket:  &WebSocket{Messages: []Message{Text("t"), Binary("b\x00\xff")}},
			Want:       resp("74 6200ff"),
			WantFrames: `upgrade("","","") binary:"b\x00\xff" text:"t"`},
		{Name: "websocket_recv_nb/with_and_without", Funcs: fns("websocket_recv_nb", "async_sleep"), Request: true,
			WebSocket:  &WebSocket{Messages: []Message{Text("a"), {Data: "b", After: 150 * time.Millisecond}}},
			Want:       resp(`"a" "" "b" ""`),
			WantFrames: `upgrade("","","")`},
		{Name: "websocket_recv/closed", Request: true,
			Funcs:      fns("websocket_recv", "websocket_recv_nb", "websocket_send", "websocket_send_binary"),
			WebSocket:  &WebSocket{Messages: []Message{Text("a")}, Close: true},
			Want:       resp(`"a" failed;failed;failed;failed`),
			WantFrames: `upgrade("","","")`},
		{Name: "websocket_send/bad_arguments", Request: true,
			Funcs:     fns("websocket_send", "websocket_send_binary", "websocket_handshake"),
			WebSocket: &WebSocket{},
			Want: resp("bad argument #1 to uwsgi.websocket_send;bad argument #1 to uwsgi.websocket_send;" +
				"bad argument #1 to uwsgi.websocket_send_binary;bad argument #1 to uwsgi.websocket_handshake;" +
				"bad argument #2 to uwsgi.websocket_handshake;bad argument #3 to uwsgi.websocket_handshake nil"),
			WantFrames: `upgrade("","","") text:"42"`},
		// Time blocked in websocket_recv does not count against the limit.
		{Name: "websocket_recv/time_limit", Funcs: fns("websocket_recv", "set_user_harakiri"), Request: true,
			WebSocket:  &WebSocket{Messages: paced(4, 150*time.Millisecond), Close: true},
			Want:       resp(`"survived" 4`),
			WantFrames: `upgrade("","","")`},
		// Time spent running after the handshake does: the limit set before
		// it holds, although the host lifts it for the socket's life.
		{Name: "websocket_handshake/busy_loop", Funcs: fns("websocket_handshake", "set_user_harakiri"), Request: true,
			WebSocket: &WebSocket{}, WantErr: api.ErrHarakiri, WantFrames: `upgrade("","","")`, Check: prompt},
	}, channelCases()...)
}

// paced is n text messages "1".."n", each after the one before.
func paced(n int, every time.Duration) []Message {
	ms := make([]Message, n)
	for i := range ms {
		ms[i] = Message{Data: strconv.Itoa(i + 1), After: every}
	}
	return ms
}

// fillLongCalls leaves the host room for no WebSocket.
func fillLongCalls(f *Fixture) {
	f.State.LongCalls = api.NewLongCalls(1)
	if err := f.State.LongCalls.Take(); err != nil {
		f.T.Fatal(err)
	}
}

// registerOpenLongCalls registers the RPC function "open_long_calls": how
// many WebSockets the host has open.
func registerOpenLongCalls(f *Fixture) {
	err := f.State.RPC.Register("open_long_calls", func(context.Context, [][]byte) ([]byte, error) {
		return []byte(strconv.Itoa(f.State.LongCalls.Open())), nil
	})
	if err != nil {
		f.T.Fatal(err)
	}
}

// longCallsOpen checks the WebSockets open once the call returned.
func longCallsOpen(n int) func(*Fixture) {
	return func(f *Fixture) {
		if got := f.State.LongCalls.Open(); got != n {
			f.T.Errorf("%d long calls open after the call, want %d", got, n)
		}
	}
}

func fns(names ...string) []string { return names }

// signalEndedMsg is what the host logs when a signal handler's
// registration ends with the VM that made the handler.
const signalEndedMsg = api.SignalEndedMsg

// rpcEndedMsg is its counterpart for RPC functions.
const rpcEndedMsg = api.RPCEndedMsg

// noRecord checks that nothing logged msg.
func noRecord(f *Fixture, msg string) {
	f.T.Helper()
	if r, ok := f.Log.Find(msg); ok {
		f.T.Errorf("unexpected log record %q %v", msg, r.Attrs)
	}
}

// timers checks the number of timer and cron entries.
func timers(n int) func(*Fixture) {
	return func(f *Fixture) {
		f.T.Helper()
		if got := f.State.Timers.Len(); got != n {
			f.T.Errorf("%d timers registered, want %d", got, n)
		}
	}
}

func noAlarms(f *Fixture) {
	if got := f.Alarms(); len(got) > 0 {
		f.T.Errorf("alarms raised: %q", got)
	}
}

// logged checks that a script logged msg at level Info.
func logged(msg string) func(*Fixture) {
	return func(f *Fixture) {
		r, ok := f.Log.Find(msg)
		if !ok {
			f.T.Errorf("no log record %q", msg)
			return
		}
		if r.Level != slog.LevelInfo || r.Attrs["source"] != "script" {
			f.T.Errorf("log record %q has level %v and source %q, want INFO and script", msg, r.Level, r.Attrs["source"])
		}
	}
}

// prompt checks that a call meant to be interrupted after 50 ms did not
// run its course (5 s, or forever).
func prompt(f *Fixture) {
	if f.Elapsed > 4*time.Second {
		f.T.Errorf("the call was interrupted only after %v", f.Elapsed)
	}
}

// cacheIs checks a value the script stored in the default cache before
// it returned.
func cacheIs(key, want string) func(*Fixture) {
	return func(f *Fixture) {
		if got, ok := f.CacheValue("", key); got != want {
			f.T.Errorf("cache %q = %q (exists: %v), want %q", key, got, ok, want)
		}
	}
}

// counter is the stored form of counter n: uWSGI's 8-byte int64.
func counter(n int64) string { return string(uwsgi.AppendCounter(nil, n)) }

// nodeItems stores items in the node's caches: (cache, key, value)
// triples.
func nodeItems(kv ...string) func(*Fixture) {
	return func(f *Fixture) {
		for i := 0; i+2 < len(kv); i += 3 {
			if err := f.Node.Cache(kv[i]).Update(f.Ctx, []byte(kv[i+1]), []byte(kv[i+2]), 0); err != nil {
				f.T.Fatal(err)
			}
		}
	}
}

// nodeItemIs checks an item of the node's cache and whether it expires.
func nodeItemIs(cache, key, want string, expires bool) func(*Fixture) {
	return func(f *Fixture) {
		it, err := f.Node.Cache(cache).Get(f.Ctx, []byte(key))
		if err != nil {
			f.T.Errorf("node cache %q item %q: %v", cache, key, err)
			return
		}
		if string(it.Value) != want || it.Expires.IsZero() == expires {
			f.T.Errorf("node cache %q item %q = %q expiring at %v, want %q (expires: %v)",
				cache, key, it.Value, it.Expires, want, expires)
		}
	}
}

const procComm = "/proc/self/comm"

func procName() (string, error) {
	b, err := os.ReadFile(procComm)
	return strings.TrimSuffix(string(b), "\n"), err
}

// saveProcName restores the process name when the case ends.
func saveProcName(f *Fixture) {
	name, err := procName()
	if errors.Is(err, os.ErrNotExist) {
		f.T.Skipf("no %s on this system", procComm)
	}
	if err != nil {
		f.T.Fatal(err)
	}
	f.T.Cleanup(func() {
		if err := os.WriteFile(procComm, []byte(name), 0); err != nil {
			f.T.Errorf("restoring the process name %q: %v", name, err)
		}
	})
}

func procNameIs(want string) func(*Fixture) {
	return func(f *Fixture) {
		if got, err := procName(); got != want || err != nil {
			f.T.Errorf("process name %q (%v), want %q", got, err, want)
		}
	}
}
