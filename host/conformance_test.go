package host_test

// Byte-for-byte conformance with uWSGI 2.0.21: every captured request is
// replayed on a fresh connection and what comes back is compared with the
// capture, except where scripthost differs on purpose (documented per
// entry). The cache entries depend on one another and run in capture order.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// serverKind selects the limits a vector is replayed under.
type serverKind int

const (
	defaultServer serverKind = iota // DefaultLimits: payloads up to 65535
	uwsgiBuffer                     // MaxPacket 4096, uWSGI's default --buffer-size
	shortHeader                     // HeaderTimeout 200 ms instead of uWSGI's 4 s
	withSpooler                     // a spool directory, as uWSGI's --spooler
	wsEcho                          // a Lua-modifier app doing the captures' WebSocket echo
)

func (k serverKind) limits() host.Limits {
	switch k {
	case uwsgiBuffer:
		return host.Limits{MaxPacket: 4096}
	case shortHeader:
		return host.Limits{HeaderTimeout: 200 * time.Millisecond}
	}
	return host.Limits{}
}

func (k serverKind) String() string {
	return [...]string{"default", "maxpacket4096", "headertimeout200ms", "spooler", "wsecho"}[k]
}

// vectorCase is one replay. By default the response must equal
// NAME.resp.bin.
type vectorCase struct {
	name string
	srv  serverKind
	// ours, when set, replaces the capture: scripthost answers these bytes
	// on purpose; why says so.
	ours []byte
	why  string
	// check, when set, judges the response instead of a byte comparison.
	check func(t *testing.T, got, captured []byte)
	// noHalfClose leaves the write side open: the server must close on
	// its own.
	noHalfClose bool
	// skip: the vector has no request to replay.
	skip string
}

// dropped is the answer of a modifier1 that no handler claims: scripthost
// serves HTTP-style modifiers only once an engine is registered with
// Handle, and has no spooler.
func dropped(name string) vectorCase {
	return vectorCase{name: name, ours: []byte{}, why: "no handler registered for this modifier1: closed without a byte"}
}

var valueOne = []byte("value-one")

var vectorCases = []vectorCase{
	{name: "ping"},
	{name: "ping_mod2_1"},
	{name: "echo"},
	{name: "echo_with_trailing_body"},
	{name: "echo_empty"},

	{name: "rpc_hello"},
	{name: "rpc_hello_raw"},
	{name: "rpc_hellolua_args"},
	{name: "rpc_python"},
	{name: "rpc_python_str_return"},
	{name: "rpc_unknown_function"},
	{name: "rpc_empty_result"},
	{name: "rpc_empty_items_middle"},
	{name: "rpc_empty_item_leading"},
	{name: "rpc_trailing_empty_item", ours: []byte("args are foo bar"),
		why: "a trailing empty array item is skipped, not fatal (doc.go): hellolua(foo, bar) in raw mode"},
	{name: "rpc_empty_packet"},
	{name: "rpc_binary_args"},
	{name: "rpc_300_items_python"},
	{name: "rpc_httphello_raw"},
	{name: "rpc_mod2_4_request"},
	{name: "rpc_big_65535"},
	{name: "rpc_big_65536"},
	{name: "rpc_big_100000"},
	{name: "rpc_big_100000_raw"},
	{name: "rpc_mod2_5_request"},
	{name: "rpc_mod2_2_http"},
	{name: "rpc_mod2_2_http_accept"},
	{name: "rpc_mod2_2_http_unknown"},
	{name: "rpc_mod2_3_xmlrpc"},
	{name: "rpc_lua_error"},
	{name: "rpc_over_buffer_size", srv: uwsgiBuffer},
	{name: "rpc_over_buffer_size",
		ours: append([]byte{173, 0x94, 0x13, 0}, "argc=1|5000:"+strings.Repeat("x", 5000)...),
		why:  "payloads up to 65535 bytes are accepted by default: argdump(5000 x) answers"},

	{name: "signal_17"},
	{name: "signal_99_unregistered"},
	{name: "signal_17_no_master", ours: ackOK,
		why: "scripthost always delivers signals (it has no master-less mode): queued, ack 1"},

	{name: "spooler_enqueue", srv: withSpooler},
	{name: "spooler_no_spooler"},

	// The simple and dict cache commands do what uWSGI's plugin means to
	// do (doc.go, cache.go); capture order, they share the key k1.
	{name: "cache_set_simple"},
	{name: "cache_get_simple", ours: framed(uwsgi.ModCache, uwsgi.CacheSimpleGet, valueOne),
		why: "a real [111, len, 0] header instead of 4 bytes of a heap pointer"},
	{name: "cache_get_simple_again", ours: framed(uwsgi.ModCache, uwsgi.CacheSimpleGet, valueOne),
		why: "a real [111, len, 0] header instead of 4 bytes of a heap pointer"},
	{name: "cache_get_simple_missing"},
	{name: "cache_dict_key", ours: valueOne, why: "dict key lookups find the key (uWSGI looks up with length 0)"},
	{name: "cache_dict_get", ours: valueOne, why: "dict get lookups find the key (uWSGI always answers 404)"},
	{name: "cache_dict_get_missing"},
	{name: "cache_dict_key_missing"},
	{name: "cache_stream_get", ours: append([]byte{111, 0, 0, 1}, valueOne...),
		why: "the intended [111, 0, 1] + value instead of a heap pointer + value"},
	{name: "cache_stream_get_missing", ours: []byte{111, 0, 0, 0},
		why: "the intended [111, 0, 0] instead of a heap pointer"},
	{name: "cache_del_simple"},
	{name: "cache_get_after_del"},

	// The magic interface, in capture order (key mk).
	{name: "cache_magic_set"},
	{name: "cache_magic_get"},
	{name: "cache_magic_exists"},
	{name: "cache_magic_set_again"},
	{name: "cache_magic_update"},
	{name: "cache_magic_get_expires", check: checkExpires},
	{name: "cache_magic_del"},
	{name: "cache_magic_get_missing"},
	{name: "cache_magic_exists_missing"},
	{name: "cache_magic_unknown_cache"},
	{name: "cache_magic_clear"},

	// uWSGI as a client (key rk), captured after the above.
	{name: "client_rpc_hellolua"},
	{name: "client_rpc_big_100000"},
	{name: "client_rpc_unknown"},
	{name: "client_cache_magic_1"},
	{name: "client_cache_magic_2"},
	{name: "client_cache_magic_3"},
	{name: "client_cache_magic_4"},
	{name: "client_cache_magic_5"},
	{name: "client_signal"},

	// nginx in front: the RPC locations behave like uWSGI, except that
	// the documentation's example (trailing "") now works.
	{name: "nginx_rpc_doc_example",
		ours: []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\r\nhello from rpc, args: foo bar"),
		why:  "a trailing empty array item is skipped (doc.go): httphello(foo, bar) answers, nginx gets 200 instead of 502"},
	{name: "nginx_rpc_even_items"},
	{name: "nginx_rpc_modifier2_0"},
	{name: "nginx_rpc_modifier2_2"},
	dropped("nginx_get"),
	dropped("nginx_post"),
	dropped("nginx_post_chunked"),
	{name: "nginx_websocket", srv: wsEcho, check: checkWebSocketEcho},
	dropped("nginx_app_chunked"),
	{name: "nginx_vars_over_4096", srv: uwsgiBuffer},
	{name: "nginx_vars_over_65535", skip: "nginx refused to build the packet: nothing was sent upstream"},

	// HTTP-style requests: no engine is registered here.
	dropped("wsgi_mod0_get"),
	dropped("wsgi_mod0_post"),
	dropped("wsgi_mod0_post_split"),
	dropped("wsgi_mod0_no_server_protocol"),
	{name: "wsgi_mod0_empty"},
	{name: "wsgi_mod0_post_body_missing"},
	dropped("wsgi_mod0_modifier2_9"),
	dropped("lua_mod6_get"),
	dropped("lua_mod6_post"),
	{name: "lua_mod6_empty"},
	dropped("ws_lua"),
	dropped("mod30_remapped"),
	dropped("mod30_not_remapped"),
	dropped("symcall_mod18"),
	dropped("psgi_mod5_get"),
	dropped("cgi_mod9_get"),
	dropped("empty_value_last"),
	dropped("content_length_junk"),
	dropped("content_length_nonnumeric"),
	dropped("split_header_and_vars"),
	dropped("dup_keys_mod0"),
	dropped("dup_keys_mod6"),
	dropped("limit_vars_4096"),
	{name: "limit_vars_4097", srv: uwsgiBuffer},
	dropped("limit_128_vars"),
	{name: "limit_129_vars"},
	{name: "bad_zero_length_key"},
	{name: "bad_value_overflows"},
	{name: "slow_header_timeout", srv: shortHeader, noHalfClose: true},

	{name: "unsupported_mod5_psgi_not_loaded"},
	{name: "unsupported_mod7_rack_not_loaded"},
	{name: "unsupported_mod9_cgi_not_loaded"},
	{name: "unsupported_mod10_management"},
	{name: "unsupported_mod22_eval"},
	{name: "unsupported_mod24_v8_not_loaded"},
	{name: "unsupported_mod72_HTTP_raw", srv: uwsgiBuffer},
	{name: "unsupported_mod72_HTTP_raw"},
	{name: "unsupported_mod200_close_mark"},
	{name: "unsupported_mod255_generic_response"},
}

// captureWebSocketApp is what the captures' Lua app does on /ws: the
// handshake, then "echo:" and each of two messages.
func captureWebSocketApp(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	u, ok := api.UpgraderFrom(ctx)
	if !ok {
		return errors.New("no upgrade offered")
	}
	ws, err := u.Upgrade(ctx, "", "", "")
	if err != nil {
		return err
	}
	for range 2 {
		msg, _, err := ws.Recv(ctx)
		if err != nil {
			return err
		}
		if err := ws.Send(ctx, append([]byte("echo:"), msg...), false); err != nil {
			return err
		}
	}
	return nil
}

// checkWebSocketEcho: uWSGI's 101 and frames byte for byte; where uWSGI
// then drops the connection, the host closes it with a close frame
// (1000).
func checkWebSocketEcho(t *testing.T, got, captured []byte) {
	t.Helper()
	want := append(append([]byte(nil), captured...), 0x88, 0x02, 0x03, 0xe8)
	if !bytes.Equal(got, want) {
		t.Errorf("got %s, want the capture and a close 1000 %s", show(got), show(want))
	}
}

// checkExpires compares a magic get reply whose expires is an absolute
// time: the digits must be now+3600 (±5 s), everything else the capture.
func checkExpires(t *testing.T, got, captured []byte) {
	t.Helper()
	expires := func(b []byte) string {
		h, err := uwsgi.ParseHeader(b)
		if err != nil || len(b) < uwsgi.HeaderSize+int(h.Size) {
			t.Fatalf("reply % x is not a framed packet", b)
		}
		vars, err := uwsgi.ParseVars(nil, b[uwsgi.HeaderSize:uwsgi.HeaderSize+int(h.Size)], 0)
		if err != nil {
			t.Fatalf("reply dict: %v", err)
		}
		return vars.Get("expires")
	}
	gotExp, capExp := expires(got), expires(captured)
	n, err := strconv.ParseInt(gotExp, 10, 64)
	if err != nil {
		t.Fatalf("expires = %q, want a decimal Unix time", gotExp)
	}
	if want := time.Now().Unix() + 3600; n < want-5 || n > want+5 {
		t.Errorf("expires = %d, want now+3600 = %d (±5)", n, want)
	}
	patched := bytes.Replace(got, []byte(gotExp), []byte(capExp), 1)
	if !bytes.Equal(patched, captured) {
		t.Errorf("reply with the capture's expires = % x, want % x", patched, captured)
	}
}

// vectorNames lists the vectors present on disk.
func vectorNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatalf("reading the vectors: %v", err)
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range entries {
		name := e.Name()
		for _, suffix := range []string{".req.bin", ".resp.bin", ".client.txt"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && !seen[base] {
				seen[base] = true
				names = append(names, base)
			}
		}
	}
	return names
}

func TestConformanceTableComplete(t *testing.T) {
	inTable := map[string]bool{}
	for _, vc := range vectorCases {
		inTable[vc.name] = true
		if vc.skip != "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(vectorDir, vc.name+".req.bin")); err != nil {
			t.Errorf("table entry %s: %v", vc.name, err)
		}
	}
	names := vectorNames(t)
	for _, name := range names {
		if !inTable[name] {
			t.Errorf("vector %s has no entry in vectorCases", name)
		}
	}
	if len(names) < 117 {
		t.Errorf("found %d vectors, want the 117 of README.md", len(names))
	}
}

func TestConformance(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			servers := map[serverKind]*testServer{}
			for _, k := range []serverKind{defaultServer, uwsgiBuffer, shortHeader} {
				servers[k] = startServer(t, network, k.limits(), nil)
			}
			servers[withSpooler] = startServer(t, network, host.Limits{}, func(srv *host.Server) {
				sp, err := api.NewSpooler(api.SpoolerConfig{Dirs: []string{t.TempDir()}, Logger: quietLogger})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sp.Close(context.Background()) })
				srv.State.Spooler = sp
			})
			servers[wsEcho] = startServer(t, network, host.Limits{}, func(srv *host.Server) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "app.fake"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				rl := &host.Reloader{Server: srv, Dir: dir, Logger: quietLogger,
					Engines: []api.Engine{&fakeEngine{serve: captureWebSocketApp}}}
				if err := rl.Reload(context.Background(), false); err != nil {
					t.Fatal(err)
				}
			})
			for _, vc := range vectorCases {
				name := vc.name
				if vc.srv != defaultServer {
					name += "@" + vc.srv.String()
				}
				t.Run(name, func(t *testing.T) {
					if vc.skip != "" {
						t.Skip(vc.skip)
					}
					req, err := os.ReadFile(filepath.Join(vectorDir, vc.name+".req.bin"))
					if err != nil {
						t.Fatal(err)
					}
					captured, err := os.ReadFile(filepath.Join(vectorDir, vc.name+".resp.bin"))
					if err != nil {
						t.Fatal(err)
					}
					got := servers[vc.srv].exchange(t, req, !vc.noHalfClose)
					switch {
					case vc.check != nil:
						vc.check(t, got, captured)
					case vc.ours != nil:
						if !bytes.Equal(got, vc.ours) {
							t.Errorf("got %s, want %s (%s)", show(got), show(vc.ours), vc.why)
						}
					default:
						if !bytes.Equal(got, captured) {
							t.Errorf("got %s, want the capture %s", show(got), show(captured))
						}
					}
				})
			}
		})
	}
}
