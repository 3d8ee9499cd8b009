package uwsgi_test

// The vectors in testdata/vectors are bytes captured from uWSGI 2.0.21 and
// nginx 1.22.1 (testdata/vectors/README.md says how each was made). Every
// one of them has an entry in vecTable; TestVectorTableComplete fails when a
// capture is added without one.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api/uwsgi"
)

const vecDir = "testdata/vectors"

// vecCount is the number of vectors README.md lists.
const vecCount = 117

// uWSGI 2.0.21's defaults: --buffer-size 4096, 128 vars (--max-vars 64),
// 255 RPC array items; the simple cache set reads at most 3 items.
const (
	vecBufferSize = 4096
	vecMaxVars    = 128
	vecMaxRPC     = 255
	vecMaxSet     = 3
)

// vecMaxResult bounds ReadRPCResult in these tests.
const vecMaxResult = 1 << 20

// respKind is what a vector's response holds.
type respKind int

const (
	respNone  respKind = iota // nothing: the server closed without a byte
	respRPC                   // a framed RPC result (16-bit or modifier2 5 form)
	respPing                  // a pong [100, 0, 1]
	respAck                   // a generic response [255, 0, ack]
	respCache                 // a cache magic reply (+ value)
	respEcho                  // the request's payload, without a header
	respHTTP                  // raw HTTP
	respRaw                   // raw bytes: a raw RPC result, a simple cache get
)

// vecWant is what one vector must decode to. Zero fields are expectations
// too: a field that does not apply to the vector's payload must stay zero.
type vecWant struct {
	noReq bool         // only nginx's side exists: nothing was sent upstream
	hdr   uwsgi.Header // the request header
	tail  int          // bytes after the packet (body, frames, cache value)
	body  string       // when set, those bytes
	big   bool         // payload over uWSGI's --buffer-size: ErrTooLarge at 4096, fine at 65535
	short bool         // the capture ends inside the packet (header or payload)

	err   error               // error of the payload's decoder
	vars  int                 // vars blocks: pairs EachVar delivers (before a fault)
	get   map[string]string   // vars blocks: values by key, last duplicate winning
	cl    int64               // HTTP-style requests: ParseContentLength(CONTENT_LENGTH)
	uri   string              // HTTP-style requests: RequestURI(vars), when set
	items []string            // arrays: what ParseArray returns
	cache *uwsgi.CacheRequest // cache magic requests
	raw   string              // raw payloads (ping, echo, signal, simple cache keys, ...)
	exact bool                // arrays and cache requests: our encoder rebuilds the packet byte for byte

	resp    respKind
	result  string           // respRPC, respRaw: the result bytes
	garbage int              // respRaw: leading non-deterministic bytes (uWSGI's heap pointer)
	status  string           // respHTTP: the status line
	ack     uint8            // respAck: modifier2
	reply   uwsgi.CacheReply // respCache: the status dict
	value   string           // respCache: the bytes after the dict
	client  string           // nginx_*: status line of nginx's answer to its client
}

// vecBig is what app.lua's big(n) returns.
func vecBig(n int) string {
	return strings.Repeat("0123456789", n/10+1)[:n]
}

// vecDigitArgs returns the items of rpc_300_items_python as ParseArray keeps
// them: the function name and 254 single-digit arguments.
func vecDigitArgs() []string {
	items := []string{"pyhello"}
	for i := range vecMaxRPC - 1 {
		items = append(items, strconv.Itoa(i%10))
	}
	return items
}

// vecDigitResult is pyhello's answer to those arguments.
func vecDigitResult() string {
	return "py:" + strings.Join(vecDigitArgs()[1:], ",")
}

func vecHdr(m1 uwsgi.Modifier, size uint16, m2 uint8) uwsgi.Header {
	return uwsgi.Header{Modifier1: m1, Size: size, Modifier2: m2}
}

var (
	vecOK        = uwsgi.CacheReply{Status: "ok"}
	vecHelloItem = []string{"hello"}
)

var vecTable = map[string]vecWant{
	// Malformed vars blocks.
	"bad_value_overflows": {hdr: vecHdr(uwsgi.ModWSGI, 21, 0), err: uwsgi.ErrTruncated, vars: 1},
	"bad_zero_length_key": {hdr: vecHdr(uwsgi.ModWSGI, 26, 0), err: uwsgi.ErrEmptyKey, vars: 1},

	// Cache: simple commands (raw key), dict commands (vars), magic (17).
	"cache_del_simple":         {hdr: vecHdr(uwsgi.ModCache, 2, uwsgi.CacheSimpleDel), raw: "k1"},
	"cache_get_after_del":      {hdr: vecHdr(uwsgi.ModCache, 2, uwsgi.CacheSimpleGet), raw: "k1"},
	"cache_get_simple":         {hdr: vecHdr(uwsgi.ModCache, 2, uwsgi.CacheSimpleGet), raw: "k1", resp: respRaw, garbage: 4, result: "value-one"},
	"cache_get_simple_again":   {hdr: vecHdr(uwsgi.ModCache, 2, uwsgi.CacheSimpleGet), raw: "k1", resp: respRaw, garbage: 4, result: "value-one"},
	"cache_get_simple_missing": {hdr: vecHdr(uwsgi.ModCache, 5, uwsgi.CacheSimpleGet), raw: "nokey"},
	"cache_stream_get":         {hdr: vecHdr(uwsgi.ModCache, 2, uwsgi.CacheStream), raw: "k1", resp: respRaw, garbage: 4, result: "value-one"},
	"cache_stream_get_missing": {hdr: vecHdr(uwsgi.ModCache, 5, uwsgi.CacheStream), raw: "nokey", resp: respRaw, garbage: 4},
	"cache_set_simple": {hdr: vecHdr(uwsgi.ModCache, 15, uwsgi.CacheSimpleSet),
		items: []string{"k1", "value-one"}, exact: true},
	"cache_dict_get": {hdr: vecHdr(uwsgi.ModCache, 36, uwsgi.CacheDictGet), vars: 2,
		get: map[string]string{"get": "k1", "SERVER_PROTOCOL": "HTTP/1.1"}, resp: respHTTP, status: "HTTP/1.0 404 Not Found"},
	"cache_dict_get_missing": {hdr: vecHdr(uwsgi.ModCache, 39, uwsgi.CacheDictGet), vars: 2,
		get: map[string]string{"get": "nokey"}, resp: respHTTP, status: "HTTP/1.0 404 Not Found"},
	"cache_dict_key":         {hdr: vecHdr(uwsgi.ModCache, 9, uwsgi.CacheDictKey), vars: 1, get: map[string]string{"key": "k1"}},
	"cache_dict_key_missing": {hdr: vecHdr(uwsgi.ModCache, 12, uwsgi.CacheDictKey), vars: 1, get: map[string]string{"key": "nokey"}},
	"cache_magic_clear": {hdr: vecHdr(uwsgi.ModCache, 12, uwsgi.CacheMagic), vars: 1,
		cache: &uwsgi.CacheRequest{Cmd: "clear"}, exact: true, resp: respCache, reply: vecOK},
	"cache_magic_del": {hdr: vecHdr(uwsgi.ModCache, 19, uwsgi.CacheMagic), vars: 2,
		cache: &uwsgi.CacheRequest{Cmd: "del", Key: []byte("mk")}, exact: true, resp: respCache, reply: vecOK},
	"cache_magic_exists": {hdr: vecHdr(uwsgi.ModCache, 22, uwsgi.CacheMagic), vars: 2,
		cache: &uwsgi.CacheRequest{Cmd: "exists", Key: []byte("mk")}, exact: true, resp: respCache, reply: vecOK},
	"cache_magic_exists_missing": {hdr: vecHdr(uwsgi.ModCache, 22, uwsgi.CacheMagic), vars: 2,
		cache: &uwsgi.CacheRequest{Cmd: "exists", Key: []byte("mk")}, exact: true},
	"cache_magic_get": {hdr: vecHdr(uwsgi.ModCache, 19, uwsgi.CacheMagic), vars: 2,
		cache: &uwsgi.CacheRequest{Cmd: "get", Key: []byte("mk")}, exact: true,
		resp: respCache, reply: uwsgi.CacheReply{Status: "ok", Size: 5}, value: "HELLO"},
	"cache_magic_get_expires": {hdr: vecHdr(uwsgi.ModCache, 19, uwsgi.CacheMagic), vars: 2,
		cache: &uwsgi.CacheRequest{Cmd: "get", Key: []byte("mk")}, exact: true,
		resp: respCache, reply: uwsgi.CacheReply{Status: "ok", Size: 3, Expires: 1795318955}, value: "XYZ"},
	"cache_magic_get_missing": {hdr: vecHdr(uwsgi.ModCache, 19, uwsgi.CacheMagic), vars: 2,
		cache: &uwsgi.CacheRequest{Cmd: "get", Key: []byte("mk")}, exact: true},
	// uWSGI's test client sent expires=0 explicitly; AppendCacheRequest
	// leaves a zero expires out, so this one is only equal in meaning.
	"cache_magic_set": {hdr: vecHdr(uwsgi.ModCache, 40, uwsgi.CacheMagic), tail: 5, body: "HELLO", vars: 4,
		cache: &uwsgi.CacheRequest{Cmd: "set", Key: []byte("mk"), Size: 5}, resp: respCache, reply: vecOK},
	"cache_magic_set_again": {hdr: vecHdr(uwsgi.ModCache, 28, uwsgi.CacheMagic), tail: 3, body: "XYZ", vars: 3,
		cache: &uwsgi.CacheRequest{Cmd: "set", Key: []byte("mk"), Size: 3}, exact: true},
	"cache_magic_unknown_cache": {hdr: vecHdr(uwsgi.ModCache, 39, uwsgi.CacheMagic), vars: 3,
		cache: &uwsgi.CacheRequest{Cmd: "get", Key: []byte("mk"), Cache: "nosuchcache"}, exact: true},
	"cache_magic_update": {hdr: vecHdr(uwsgi.ModCache, 46, uwsgi.CacheMagic), tail: 3, body: "XYZ", vars: 4,
		cache: &uwsgi.CacheRequest{Cmd: "update", Key: []byte("mk"), Size: 3, Expires: 3600}, exact: true,
		resp: respCache, reply: vecOK},
	// uWSGI's own client sends size twice (last wins).
	"client_cache_magic_1": {hdr: vecHdr(uwsgi.ModCache, 55, uwsgi.CacheMagic), tail: 12, body: "remote-value", vars: 5,
		cache: &uwsgi.CacheRequest{Cmd: "set", Key: []byte("rk"), Size: 12, Cache: "default"},
		resp:  respCache, reply: vecOK},
	"client_cache_magic_2": {hdr: vecHdr(uwsgi.ModCache, 35, uwsgi.CacheMagic), vars: 3,
		cache: &uwsgi.CacheRequest{Cmd: "get", Key: []byte("rk"), Cache: "default"}, exact: true,
		resp: respCache, reply: uwsgi.CacheReply{Status: "ok", Size: 12}, value: "remote-value"},
	"client_cache_magic_3": {hdr: vecHdr(uwsgi.ModCache, 38, uwsgi.CacheMagic), vars: 3,
		cache: &uwsgi.CacheRequest{Cmd: "exists", Key: []byte("rk"), Cache: "default"}, exact: true,
		resp: respCache, reply: vecOK},
	"client_cache_magic_4": {hdr: vecHdr(uwsgi.ModCache, 35, uwsgi.CacheMagic), vars: 3,
		cache: &uwsgi.CacheRequest{Cmd: "del", Key: []byte("rk"), Cache: "default"}, exact: true,
		resp: respCache, reply: vecOK},
	"client_cache_magic_5": {hdr: vecHdr(uwsgi.ModCache, 35, uwsgi.CacheMagic), vars: 3,
		cache: &uwsgi.CacheRequest{Cmd: "get", Key: []byte("rk"), Cache: "default"}, exact: true},

	// HTTP-style requests.
	"cgi_mod9_get": {hdr: vecHdr(uwsgi.ModCGI, 273, 0), vars: 12,
		get: map[string]string{"PATH_INFO": "/hello.sh/extra", "REQUEST_METHOD": "GET"},
		uri: "http://localhost/hello.sh/extra", resp: respHTTP, status: "HTTP/1.1 201 Created"},
	"psgi_mod5_get": {hdr: vecHdr(uwsgi.ModPSGI, 273, 0), vars: 12,
		get: map[string]string{"PATH_INFO": "/hello.sh/extra"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"content_length_junk": {hdr: vecHdr(uwsgi.ModWSGI, 105, 0), tail: 12, body: "1234567EXTRA", vars: 5,
		get: map[string]string{"CONTENT_LENGTH": "7xyz"}, cl: 7, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"content_length_nonnumeric": {hdr: vecHdr(uwsgi.ModWSGI, 104, 0), tail: 7, body: "1234567", vars: 5,
		get: map[string]string{"CONTENT_LENGTH": "abc"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"dup_keys_mod0": {hdr: vecHdr(uwsgi.ModWSGI, 117, 0), vars: 6,
		get: map[string]string{"HTTP_COOKIE": "b=2"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"dup_keys_mod6": {hdr: vecHdr(uwsgi.ModLua, 117, 0), vars: 6,
		get: map[string]string{"HTTP_COOKIE": "b=2"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"empty_value_last": {hdr: vecHdr(uwsgi.ModWSGI, 92, 0), vars: 5,
		get: map[string]string{"X_EMPTY": "", "PATH_INFO": "/env"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"limit_128_vars": {hdr: vecHdr(uwsgi.ModWSGI, 1194, 0), vars: 128,
		get: map[string]string{"V123": "x"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"limit_129_vars": {hdr: vecHdr(uwsgi.ModWSGI, 1203, 0), vars: 129, err: uwsgi.ErrTooMany},
	"limit_vars_4096": {hdr: vecHdr(uwsgi.ModWSGI, 4096, 0), vars: 16,
		get: map[string]string{"QUERY_STRING": "a=1"}, uri: "http://localhost/?a=1", resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"limit_vars_4097": {hdr: vecHdr(uwsgi.ModWSGI, 4097, 0), big: true, vars: 16, get: map[string]string{"QUERY_STRING": "a=1"}},
	"lua_mod6_empty":  {hdr: vecHdr(uwsgi.ModLua, 0, 0)},
	"lua_mod6_get": {hdr: vecHdr(uwsgi.ModLua, 329, 0), vars: 15,
		get: map[string]string{"PATH_INFO": "/env", "QUERY_STRING": "a=1"}, uri: "http://localhost/env?a=1",
		resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"lua_mod6_post": {hdr: vecHdr(uwsgi.ModLua, 337, 0), tail: 11, body: "hello world", vars: 15,
		get: map[string]string{"REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/plain"}, cl: 11,
		resp: respHTTP, status: "HTTP/1.1 200 OK"},
	// RequestURI joins SCRIPT_NAME and PATH_INFO as CGI says; uWSGI's
	// modifier1 30 would strip SCRIPT_NAME from PATH_INFO first (not under
	// Python 3, see PROTOCOL.md section 8.1).
	"mod30_not_remapped": {hdr: vecHdr(uwsgi.ModWSGIStripped, 352, 0), vars: 16,
		get: map[string]string{"SCRIPT_NAME": "/app", "PATH_INFO": "/app/env"}, uri: "http://localhost/app/app/env?a=1",
		resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"mod30_remapped": {hdr: vecHdr(uwsgi.ModWSGIStripped, 352, 0), vars: 16,
		get: map[string]string{"SCRIPT_NAME": "/app"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"nginx_app_chunked": {hdr: vecHdr(uwsgi.ModWSGI, 358, 0), vars: 16,
		get: map[string]string{"PATH_INFO": "/py/chunked", "HTTP_HOST": "127.0.0.1"}, uri: "http://127.0.0.1/py/chunked",
		resp: respHTTP, status: "HTTP/1.1 200 OK", client: "HTTP/1.1 200 OK"},
	"nginx_get": {hdr: vecHdr(uwsgi.ModWSGI, 443, 0), vars: 20,
		get: map[string]string{"PATH_INFO": "/py/env", "QUERY_STRING": "x=1", "HTTP_COOKIE": "b=2", "CONTENT_TYPE": "", "CONTENT_LENGTH": ""},
		uri: "http://localhost/py/env?x=1", resp: respHTTP, status: "HTTP/1.1 200 OK", client: "HTTP/1.1 200 OK"},
	"nginx_post": {hdr: vecHdr(uwsgi.ModWSGI, 470, 0), tail: 7, body: "a=1&b=2", vars: 18,
		get: map[string]string{"CONTENT_LENGTH": "7", "HTTP_CONTENT_LENGTH": "7"}, cl: 7,
		resp: respHTTP, status: "HTTP/1.1 200 OK", client: "HTTP/1.1 200 OK"},
	"nginx_post_chunked": {hdr: vecHdr(uwsgi.ModLua, 436, 0), tail: 11, body: "hello world", vars: 18,
		get: map[string]string{"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "11"}, cl: 11,
		resp: respHTTP, status: "HTTP/1.1 200 OK", client: "HTTP/1.1 200 OK"},
	"nginx_vars_over_4096": {hdr: vecHdr(uwsgi.ModWSGI, 5335, 0), big: true, vars: 16,
		get: map[string]string{"PATH_INFO": "/py/"}, client: "HTTP/1.1 502 Bad Gateway"},
	"nginx_vars_over_65535": {noReq: true, client: "HTTP/1.1 500 Internal Server Error"},
	"nginx_websocket": {hdr: vecHdr(uwsgi.ModLua, 427, 0), tail: 22, vars: 18,
		get:  map[string]string{"HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ=="},
		resp: respHTTP, status: "HTTP/1.1 101 Web Socket Protocol Handshake", client: "HTTP/1.1 101 Web Socket Protocol Handshake"},
	"split_header_and_vars": {hdr: vecHdr(uwsgi.ModWSGI, 81, 0), vars: 4,
		get: map[string]string{"PATH_INFO": "/env"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"symcall_mod18":                    {hdr: vecHdr(uwsgi.ModSymcall, 329, 0), vars: 15, resp: respHTTP, status: "HTTP/1.0 404 Not Found"},
	"unsupported_mod24_v8_not_loaded":  {hdr: vecHdr(uwsgi.ModV8, 329, 0), vars: 15},
	"unsupported_mod5_psgi_not_loaded": {hdr: vecHdr(uwsgi.ModPSGI, 329, 0), vars: 15},
	"unsupported_mod7_rack_not_loaded": {hdr: vecHdr(uwsgi.ModRack, 329, 0), vars: 15},
	"unsupported_mod9_cgi_not_loaded":  {hdr: vecHdr(uwsgi.ModCGI, 329, 0), vars: 15},
	"ws_lua": {hdr: vecHdr(uwsgi.ModLua, 253, 0), tail: 28, vars: 10,
		get: map[string]string{"HTTP_UPGRADE": "websocket", "REQUEST_URI": "/ws"}, uri: "http://localhost/ws",
		resp: respHTTP, status: "HTTP/1.1 101 Web Socket Protocol Handshake"},
	"wsgi_mod0_empty": {hdr: vecHdr(uwsgi.ModWSGI, 0, 0)},
	"wsgi_mod0_get": {hdr: vecHdr(uwsgi.ModWSGI, 329, 0), vars: 15,
		get: map[string]string{"PATH_INFO": "/env", "REQUEST_URI": "/env?a=1"}, uri: "http://localhost/env?a=1",
		resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"wsgi_mod0_modifier2_9": {hdr: vecHdr(uwsgi.ModWSGI, 81, 9), vars: 4, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"wsgi_mod0_no_server_protocol": {hdr: vecHdr(uwsgi.ModWSGI, 299, 0), vars: 14,
		get: map[string]string{"PATH_INFO": "/"}, resp: respHTTP, status: "HTTP/1.0 200 OK"},
	"wsgi_mod0_post": {hdr: vecHdr(uwsgi.ModWSGI, 360, 0), tail: 14, body: "name=value&x=1", vars: 15, cl: 14,
		resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"wsgi_mod0_post_body_missing": {hdr: vecHdr(uwsgi.ModWSGI, 360, 0), vars: 15, cl: 14},
	"wsgi_mod0_post_split": {hdr: vecHdr(uwsgi.ModWSGI, 360, 0), tail: 14, body: "name=value&x=1", vars: 15, cl: 14,
		resp: respHTTP, status: "HTTP/1.1 200 OK"},

	// RPC (modifier1 173). Arrays are parsed with a maximum of 255 items.
	"client_rpc_big_100000": {hdr: vecHdr(uwsgi.ModRPC, 13, 0), items: []string{"big", "100000"}, exact: true,
		resp: respRPC, result: vecBig(100000)},
	"client_rpc_hellolua": {hdr: vecHdr(uwsgi.ModRPC, 16, 0), items: []string{"hellolua", "x", "y"}, exact: true,
		resp: respRPC, result: "args are x y"},
	"client_rpc_unknown": {hdr: vecHdr(uwsgi.ModRPC, 6, 0), items: []string{"nope"}, exact: true},
	// The RPC documentation's nginx example: our lenient parser skips the
	// trailing empty item that makes uWSGI 2.0.21 drop the request.
	"nginx_rpc_doc_example": {hdr: vecHdr(uwsgi.ModRPC, 23, uwsgi.RPCRaw), items: []string{"httphello", "foo", "bar"},
		client: "HTTP/1.1 502 Bad Gateway"},
	"nginx_rpc_even_items": {hdr: vecHdr(uwsgi.ModRPC, 26, uwsgi.RPCRaw), items: []string{"httphello", "foo", "bar", "baz"}, exact: true,
		resp: respHTTP, status: "HTTP/1.0 200 OK", client: "HTTP/1.1 200 OK"},
	"nginx_rpc_modifier2_0": {hdr: vecHdr(uwsgi.ModRPC, 25, uwsgi.RPCFramed), items: []string{"hellolua", "foo", "bar", "baz"}, exact: true,
		resp: respRPC, result: "args are foo bar", client: "HTTP/1.1 502 Bad Gateway"},
	"nginx_rpc_modifier2_2": {hdr: vecHdr(uwsgi.ModRPC, 103, uwsgi.RPCHTTP), vars: 4,
		get: map[string]string{"PATH_INFO": "/hellolua/foo/bar"}, resp: respHTTP, status: "HTTP/1.1 200 OK", client: "HTTP/1.1 200 OK"},
	"rpc_300_items_python": {hdr: vecHdr(uwsgi.ModRPC, 909, 0), items: vecDigitArgs(), resp: respRPC, result: vecDigitResult()},
	"rpc_big_100000": {hdr: vecHdr(uwsgi.ModRPC, 13, 0), items: []string{"big", "100000"}, exact: true,
		resp: respRPC, result: vecBig(100000)},
	"rpc_big_100000_raw": {hdr: vecHdr(uwsgi.ModRPC, 13, uwsgi.RPCRaw), items: []string{"big", "100000"}, exact: true,
		resp: respRaw, result: vecBig(100000)},
	"rpc_big_65535": {hdr: vecHdr(uwsgi.ModRPC, 12, 0), items: []string{"big", "65535"}, exact: true,
		resp: respRPC, result: vecBig(65535)},
	"rpc_big_65536": {hdr: vecHdr(uwsgi.ModRPC, 12, 0), items: []string{"big", "65536"}, exact: true,
		resp: respRPC, result: vecBig(65536)},
	"rpc_binary_args": {hdr: vecHdr(uwsgi.ModRPC, 316, 0), items: []string{"argdump", "\x00\x01\xff", strings.Repeat("x", 300)}, exact: true,
		resp: respRPC, result: "argc=2|3:\x00\x01\xff|300:" + strings.Repeat("x", 300)},
	"rpc_empty_item_leading": {hdr: vecHdr(uwsgi.ModRPC, 9, 0), items: vecHelloItem, resp: respRPC, result: "Hello World"},
	"rpc_empty_items_middle": {hdr: vecHdr(uwsgi.ModRPC, 19, 0), items: []string{"argdump", "a", "b"},
		resp: respRPC, result: "argc=2|1:a|1:b"},
	// An empty array is valid for the codec; uWSGI drops it ("Empty RPC request").
	"rpc_empty_packet":      {hdr: vecHdr(uwsgi.ModRPC, 0, 0), items: []string{}},
	"rpc_empty_result":      {hdr: vecHdr(uwsgi.ModRPC, 7, 0), items: []string{"empty"}, exact: true},
	"rpc_hello":             {hdr: vecHdr(uwsgi.ModRPC, 7, 0), items: vecHelloItem, exact: true, resp: respRPC, result: "Hello World"},
	"rpc_hello_raw":         {hdr: vecHdr(uwsgi.ModRPC, 7, uwsgi.RPCRaw), items: vecHelloItem, exact: true, resp: respRaw, result: "Hello World"},
	"rpc_hellolua_args":     {hdr: vecHdr(uwsgi.ModRPC, 20, 0), items: []string{"hellolua", "foo", "bar"}, exact: true, resp: respRPC, result: "args are foo bar"},
	"rpc_httphello_raw":     {hdr: vecHdr(uwsgi.ModRPC, 26, uwsgi.RPCRaw), items: []string{"httphello", "foo", "bar", "baz"}, exact: true, resp: respHTTP, status: "HTTP/1.0 200 OK"},
	"rpc_lua_error":         {hdr: vecHdr(uwsgi.ModRPC, 6, 0), items: []string{"boom"}, exact: true},
	"rpc_mod2_4_request":    {hdr: vecHdr(uwsgi.ModRPC, 7, 4), items: vecHelloItem, exact: true, resp: respRaw, result: "Hello World"},
	"rpc_mod2_5_request":    {hdr: vecHdr(uwsgi.ModRPC, 7, 5), items: vecHelloItem, exact: true, resp: respRaw, result: "Hello World"},
	"rpc_over_buffer_size":  {hdr: vecHdr(uwsgi.ModRPC, 5011, 0), big: true, items: []string{"argdump", strings.Repeat("x", 5000)}, exact: true},
	"rpc_python":            {hdr: vecHdr(uwsgi.ModRPC, 15, 0), items: []string{"pyhello", "a", "b"}, exact: true, resp: respRPC, result: "py:a,b"},
	"rpc_python_str_return": {hdr: vecHdr(uwsgi.ModRPC, 7, 0), items: []string{"pystr"}, exact: true},
	// Documented deviation: uWSGI 2.0.21 rejects a trailing empty item, we skip it.
	"rpc_trailing_empty_item": {hdr: vecHdr(uwsgi.ModRPC, 22, uwsgi.RPCRaw), items: []string{"hellolua", "foo", "bar"}},
	"rpc_unknown_function":    {hdr: vecHdr(uwsgi.ModRPC, 6, 0), items: []string{"nope"}, exact: true},
	"rpc_mod2_2_http": {hdr: vecHdr(uwsgi.ModRPC, 57, uwsgi.RPCHTTP), vars: 2,
		get: map[string]string{"PATH_INFO": "/hellolua/foo/bar", "SERVER_PROTOCOL": "HTTP/1.1"}, resp: respHTTP, status: "HTTP/1.1 200 OK"},
	"rpc_mod2_2_http_accept": {hdr: vecHdr(uwsgi.ModRPC, 44, uwsgi.RPCHTTP), vars: 2,
		get: map[string]string{"HTTP_ACCEPT": "text/plain"}, resp: respHTTP, status: "HTTP/1.0 200 OK"},
	"rpc_mod2_2_http_unknown": {hdr: vecHdr(uwsgi.ModRPC, 20, uwsgi.RPCHTTP), vars: 1,
		get: map[string]string{"PATH_INFO": "/nope/x"}, resp: respHTTP, status: "HTTP/1.0 404 Not Found"},
	"rpc_mod2_3_xmlrpc": {hdr: vecHdr(uwsgi.ModRPC, 48, uwsgi.RPCXML), tail: 192, vars: 2,
		get: map[string]string{"CONTENT_LENGTH": "192"}, resp: respHTTP, status: "HTTP/1.0 500 Internal Server Error"},

	// Signals, spooler, ping, echo, unknown modifiers.
	"client_signal":          {hdr: vecHdr(uwsgi.ModSignal, 0, 17), resp: respAck, ack: uwsgi.ResponseOK},
	"signal_17":              {hdr: vecHdr(uwsgi.ModSignal, 0, 17), resp: respAck, ack: uwsgi.ResponseOK},
	"signal_17_no_master":    {hdr: vecHdr(uwsgi.ModSignal, 0, 17), resp: respAck, ack: uwsgi.ResponseFailed},
	"signal_99_unregistered": {hdr: vecHdr(uwsgi.ModSignal, 0, 99), resp: respAck, ack: uwsgi.ResponseOK},
	"spooler_enqueue": {hdr: vecHdr(uwsgi.ModSpooler, 21, 0), vars: 2,
		get: map[string]string{"task": "demo", "arg": "42"}, resp: respAck, ack: uwsgi.ResponseOK},
	"spooler_no_spooler": {hdr: vecHdr(uwsgi.ModSpooler, 12, 0), vars: 1,
		get: map[string]string{"task": "demo"}, resp: respAck, ack: uwsgi.ResponseFailed},
	"ping":                                {hdr: vecHdr(uwsgi.ModPing, 0, uwsgi.PingRequest), resp: respPing},
	"ping_mod2_1":                         {hdr: vecHdr(uwsgi.ModPing, 0, uwsgi.PingPong), resp: respPing},
	"echo":                                {hdr: vecHdr(uwsgi.ModEcho, 14, 0), raw: "\x05\x00hello\x05\x00world", resp: respEcho},
	"echo_empty":                          {hdr: vecHdr(uwsgi.ModEcho, 0, 0), resp: respEcho},
	"echo_with_trailing_body":             {hdr: vecHdr(uwsgi.ModEcho, 3, 0), tail: 9, body: "BODYBYTES", raw: "abc", resp: respEcho},
	"slow_header_timeout":                 {short: true},
	"unsupported_mod10_management":        {hdr: vecHdr(uwsgi.ModManagement, 0, 0)},
	"unsupported_mod200_close_mark":       {hdr: uwsgi.CloseMark},
	"unsupported_mod22_eval":              {hdr: vecHdr(uwsgi.ModEval, 0, 0)},
	"unsupported_mod255_generic_response": {hdr: vecHdr(uwsgi.ModResponse, 0, 0)},
	// "HTTP/1.1 200 OK\r\n\r\n" read as a header announces 21588 bytes.
	"unsupported_mod72_HTTP_raw": {hdr: vecHdr(uwsgi.ModHTTPResponse, 21588, 'P'), big: true, short: true},
}

// payloadKind says how a request's payload is decoded.
type payloadKind int

const (
	kindRaw   payloadKind = iota // not decoded
	kindVars                     // ParseVars
	kindArray                    // ParseArray
	kindCache                    // ParseCacheRequest
)

// vecKind picks the payload decoder from the header, as a server does.
func vecKind(h uwsgi.Header) (kind payloadKind, maxItems int) {
	switch {
	case h.Modifier1.IsRequest(), h.Modifier1 == uwsgi.ModSpooler:
		return kindVars, 0
	case h.Modifier1 == uwsgi.ModRPC:
		if h.Modifier2 == uwsgi.RPCHTTP || h.Modifier2 == uwsgi.RPCXML {
			return kindVars, 0
		}
		return kindArray, vecMaxRPC
	case h.Modifier1 == uwsgi.ModCache:
		switch h.Modifier2 {
		case uwsgi.CacheMagic:
			return kindCache, 0
		case uwsgi.CacheSimpleSet:
			return kindArray, vecMaxSet
		case uwsgi.CacheDictKey, uwsgi.CacheDictGet:
			return kindVars, 0
		}
	}
	return kindRaw, 0
}

func vecFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vecDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vecExists(name string) bool {
	_, err := os.Stat(filepath.Join(vecDir, name))
	return err == nil
}

func vecNames() []string {
	names := make([]string, 0, len(vecTable))
	for name := range vecTable {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func vecStrs(items [][]byte) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it)
	}
	return out
}

func TestVectorTableComplete(t *testing.T) {
	entries, err := os.ReadDir(vecDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for _, e := range entries {
		if e.Name() == "README.md" {
			continue
		}
		name, suffix, _ := strings.Cut(e.Name(), ".")
		switch suffix {
		case "req.bin", "resp.bin", "client.txt":
		default:
			t.Errorf("unexpected file %s in %s", e.Name(), vecDir)
			continue
		}
		if _, ok := vecTable[name]; !ok {
			t.Errorf("vector file %s has no entry in vecTable", e.Name())
		}
		seen[name] = true
	}
	for _, name := range vecNames() {
		w := vecTable[name]
		if !seen[name] {
			t.Errorf("vecTable entry %s has no file in %s", name, vecDir)
			continue
		}
		for _, f := range []struct {
			suffix string
			want   bool
		}{{".req.bin", !w.noReq}, {".resp.bin", !w.noReq}, {".client.txt", w.client != ""}} {
			if got := vecExists(name + f.suffix); got != f.want {
				t.Errorf("%s%s exists = %v, want %v", name, f.suffix, got, f.want)
			}
		}
	}
	if len(seen) != vecCount {
		t.Errorf("%d vectors in %s, want %d", len(seen), vecDir, vecCount)
	}
}

func TestVectorRequests(t *testing.T) {
	for _, name := range vecNames() {
		w := vecTable[name]
		if w.noReq {
			continue
		}
		t.Run(name, func(t *testing.T) {
			b := vecFile(t, name+".req.bin")
			payload, rest, ok := vecPacket(t, b, w)
			if !ok {
				return
			}
			if len(rest) != w.tail {
				t.Errorf("%d bytes after the packet, want %d", len(rest), w.tail)
			}
			if w.body != "" && string(rest) != w.body {
				t.Errorf("bytes after the packet = %q, want %q", rest, w.body)
			}
			kind, maxItems := vecKind(w.hdr)
			vecCheckFields(t, w, kind)
			switch kind {
			case kindVars:
				vecCheckVars(t, w, payload)
			case kindArray:
				vecCheckArray(t, w, b[:uwsgi.HeaderSize+len(payload)], payload, maxItems)
			case kindCache:
				vecCheckCache(t, w, b, payload, rest)
			case kindRaw:
				if string(payload) != w.raw {
					t.Errorf("payload = %q, want %q", payload, w.raw)
				}
				got, err := uwsgi.AppendPacket(nil, w.hdr.Modifier1, w.hdr.Modifier2, payload)
				if err != nil || !bytes.Equal(got, b[:uwsgi.HeaderSize+len(payload)]) {
					t.Errorf("AppendPacket(%v) = %x, %v, want %x", w.hdr, got, err, b[:uwsgi.HeaderSize+len(payload)])
				}
			}
		})
	}
}

// vecPacket checks the packet layer (ParseHeader, Extract, ReadPacket) with
// uWSGI's default buffer size and with the protocol's maximum, and returns
// the payload and the bytes after it.
func vecPacket(t *testing.T, b []byte, w vecWant) (payload, rest []byte, ok bool) {
	t.Helper()
	h, err := uwsgi.ParseHeader(b)
	if len(b) < uwsgi.HeaderSize {
		if !w.short || !errors.Is(err, uwsgi.ErrTruncated) {
			t.Errorf("ParseHeader(%x) = %v, %v; want ErrTruncated", b, h, err)
		}
	} else if err != nil || h != w.hdr {
		t.Errorf("ParseHeader(%x) = %v, %v; want %v", b[:uwsgi.HeaderSize], h, err, w.hdr)
	}
	total := uwsgi.HeaderSize + int(w.hdr.Size)
	for _, max := range []int{vecBufferSize, uwsgi.MaxSize} {
		p, n, need, err := uwsgi.Extract(b, max)
		rp, rerr := uwsgi.ReadPacket(bytes.NewReader(b), nil, max)
		switch {
		case len(b) < uwsgi.HeaderSize:
			if n != 0 || need != uwsgi.HeaderSize-len(b) || err != nil {
				t.Errorf("Extract(%x, %d) = n %d, need %d, %v; want 0, %d, nil", b, max, n, need, err, uwsgi.HeaderSize-len(b))
			}
			if !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Errorf("ReadPacket(%x, %d) = %v, want %v", b, max, rerr, io.ErrUnexpectedEOF)
			}
		case w.big && max < int(w.hdr.Size):
			if n != 0 || !errors.Is(err, uwsgi.ErrTooLarge) {
				t.Errorf("Extract(max %d) = n %d, %v; want 0, ErrTooLarge", max, n, err)
			}
			if !errors.Is(rerr, uwsgi.ErrTooLarge) || rp.Header != w.hdr {
				t.Errorf("ReadPacket(max %d) = %v, %v; want %v, ErrTooLarge", max, rp.Header, rerr, w.hdr)
			}
		case w.short:
			if n != 0 || need != total-len(b) || err != nil {
				t.Errorf("Extract(max %d) = n %d, need %d, %v; want 0, %d, nil", max, n, need, err, total-len(b))
			}
			if !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Errorf("ReadPacket(max %d) = %v, want %v", max, rerr, io.ErrUnexpectedEOF)
			}
		default:
			if err != nil || n != total || need != 0 || p.Header != w.hdr || !bytes.Equal(p.Payload, b[uwsgi.HeaderSize:total]) {
				t.Errorf("Extract(max %d) = %v, n %d, need %d, %v; want %v, %d, 0, nil", max, p.Header, n, need, err, w.hdr, total)
			}
			if rerr != nil || rp.Header != w.hdr || !bytes.Equal(rp.Payload, b[uwsgi.HeaderSize:total]) {
				t.Errorf("ReadPacket(max %d) = %v, %v; want %v", max, rp.Header, rerr, w.hdr)
			}
		}
	}
	if w.short || len(b) < total {
		if !w.short {
			t.Errorf("capture of %d bytes ends inside a %d-byte packet", len(b), total)
		}
		return nil, nil, false
	}
	return b[uwsgi.HeaderSize:total], b[total:], true
}

// vecCheckFields fails when the table sets expectations that the payload's
// kind cannot check: they would be silently ignored.
func vecCheckFields(t *testing.T, w vecWant, kind payloadKind) {
	t.Helper()
	if kind != kindVars && kind != kindCache && w.vars != 0 {
		t.Errorf("table: vars set for a %v payload", w.hdr)
	}
	if kind != kindVars && (w.get != nil || w.uri != "" || w.cl != 0) {
		t.Errorf("table: get/uri/cl set for a %v payload", w.hdr)
	}
	if kind != kindArray && w.items != nil {
		t.Errorf("table: items set for a %v payload", w.hdr)
	}
	if kind != kindCache && w.cache != nil {
		t.Errorf("table: cache set for a %v payload", w.hdr)
	}
	if kind != kindRaw && w.raw != "" {
		t.Errorf("table: raw set for a %v payload", w.hdr)
	}
	if (kind == kindCache) != (w.cache != nil) {
		t.Errorf("table: cache request missing for %v", w.hdr)
	}
	if kind == kindArray && w.items == nil {
		t.Errorf("table: items missing for %v", w.hdr)
	}
}

func vecCheckVars(t *testing.T, w vecWant, payload []byte) {
	t.Helper()
	pairs := 0
	eachErr := uwsgi.EachVar(payload, func(k, v []byte) bool { pairs++; return true })
	if pairs != w.vars {
		t.Errorf("EachVar delivered %d pairs, want %d", pairs, w.vars)
	}
	vs, err := uwsgi.ParseVars(nil, payload, vecMaxVars)
	if !errors.Is(err, w.err) || (err == nil) != (w.err == nil) {
		t.Fatalf("ParseVars(max %d) = %v, want %v", vecMaxVars, err, w.err)
	}
	if err != nil {
		if len(vs) != 0 {
			t.Errorf("ParseVars returned %d pairs with its error, want 0", len(vs))
		}
		if errors.Is(err, uwsgi.ErrTooMany) {
			if eachErr != nil {
				t.Errorf("EachVar = %v, want nil (only the count is over)", eachErr)
			}
			if all, err := uwsgi.ParseVars(nil, payload, 0); err != nil || len(all) != w.vars {
				t.Errorf("ParseVars(max 0) = %d pairs, %v; want %d, nil", len(all), err, w.vars)
			}
			return
		}
		var fe *uwsgi.FormatError
		if !errors.Is(eachErr, w.err) || !errors.As(eachErr, &fe) || fe.What != "vars" {
			t.Errorf("EachVar = %v, want a vars *FormatError wrapping %v", eachErr, w.err)
		}
		return
	}
	if len(vs) != w.vars {
		t.Errorf("ParseVars = %d pairs, want %d", len(vs), w.vars)
	}
	for k, want := range w.get {
		if got, ok := vs.Lookup(k); !ok || string(got) != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q, true", k, got, ok, want)
		}
	}
	if got, err := vs.Append(nil); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("Vars.Append of the parsed vars = %x, %v; want the payload %x", got, err, payload)
	}
	if got := vs.Size(); got != len(payload) {
		t.Errorf("Vars.Size() = %d, want %d", got, len(payload))
	}
	if w.hdr.Modifier1.IsRequest() {
		v, _ := vs.Lookup("CONTENT_LENGTH")
		if got := uwsgi.ParseContentLength(v); got != w.cl {
			t.Errorf("ParseContentLength(%q) = %d, want %d", v, got, w.cl)
		}
	}
	if w.uri != "" {
		if got := uwsgi.RequestURI(vs); got != w.uri {
			t.Errorf("RequestURI = %q, want %q", got, w.uri)
		}
	}
}

func vecCheckArray(t *testing.T, w vecWant, packet, payload []byte, maxItems int) {
	t.Helper()
	items, err := uwsgi.ParseArray(nil, payload, maxItems)
	if err != nil {
		t.Fatalf("ParseArray(max %d) = %v", maxItems, err)
	}
	if got := vecStrs(items); !slices.Equal(got, w.items) {
		t.Errorf("ParseArray(max %d) = %d items %.80q, want %d items %.80q", maxItems, len(got), got, len(w.items), w.items)
	}
	if len(items) == 0 {
		return
	}
	var rebuilt []byte
	if w.hdr.Modifier1 == uwsgi.ModRPC {
		rebuilt, err = uwsgi.AppendRPCRequest(nil, w.hdr.Modifier2, string(items[0]), items[1:]...)
	} else {
		var arr []byte
		if arr, err = uwsgi.AppendArray(nil, items...); err == nil {
			rebuilt, err = uwsgi.AppendPacket(nil, w.hdr.Modifier1, w.hdr.Modifier2, arr)
		}
	}
	if err != nil {
		t.Fatalf("rebuilding the request: %v", err)
	}
	if got := bytes.Equal(rebuilt, packet); got != w.exact {
		t.Errorf("rebuilt request == capture is %v, want %v (rebuilt %.64x)", got, w.exact, rebuilt)
	}
}

func vecCheckCache(t *testing.T, w vecWant, b, payload, rest []byte) {
	t.Helper()
	pairs := 0
	if err := uwsgi.EachVar(payload, func(k, v []byte) bool { pairs++; return true }); err != nil || pairs != w.vars {
		t.Errorf("EachVar = %d pairs, %v; want %d, nil", pairs, err, w.vars)
	}
	req, err := uwsgi.ParseCacheRequest(payload)
	if err != nil {
		t.Fatalf("ParseCacheRequest = %v", err)
	}
	want := *w.cache
	if req.Cmd != want.Cmd || !bytes.Equal(req.Key, want.Key) || req.Cache != want.Cache ||
		req.Expires != want.Expires || req.Size != want.Size {
		t.Errorf("ParseCacheRequest = %+v, want %+v", req, want)
	}
	if req.Size > len(rest) {
		t.Fatalf("size %d but only %d bytes follow", req.Size, len(rest))
	}
	value := rest[:req.Size]
	rebuilt, err := uwsgi.AppendCacheRequest(nil, req, value)
	if err != nil {
		t.Fatalf("AppendCacheRequest(%+v) = %v", req, err)
	}
	if got := bytes.Equal(rebuilt, b); got != w.exact {
		t.Errorf("AppendCacheRequest(%+v) == capture is %v, want %v (rebuilt %x)", req, got, w.exact, rebuilt)
	}
	// Byte-identical or not, the rebuilt packet means the same.
	p, n, _, err := uwsgi.Extract(rebuilt, uwsgi.MaxSize)
	if err != nil || n == 0 {
		t.Fatalf("Extract(rebuilt) = n %d, %v", n, err)
	}
	again, err := uwsgi.ParseCacheRequest(p.Payload)
	if err != nil || again.Cmd != req.Cmd || !bytes.Equal(again.Key, req.Key) || again.Cache != req.Cache ||
		again.Expires != req.Expires || again.Size != req.Size || !bytes.Equal(rebuilt[n:], value) {
		t.Errorf("ParseCacheRequest(rebuilt) = %+v, %v; want %+v", again, err, req)
	}
}

func TestVectorResponses(t *testing.T) {
	for _, name := range vecNames() {
		w := vecTable[name]
		t.Run(name, func(t *testing.T) {
			if w.client != "" {
				line, _, _ := bytes.Cut(vecFile(t, name+".client.txt"), []byte("\r\n"))
				if string(line) != w.client {
					t.Errorf("nginx answered %q, want %q", line, w.client)
				}
			}
			if w.noReq {
				return
			}
			resp := vecFile(t, name+".resp.bin")
			switch w.resp {
			case respNone:
				if len(resp) != 0 {
					t.Errorf("response of %d bytes, want none", len(resp))
				}
			case respRPC:
				vecCheckRPCResult(t, w, resp)
			case respPing, respAck:
				vecCheckShortFrame(t, w, resp)
			case respCache:
				vecCheckCacheReply(t, w, resp)
			case respEcho:
				req := vecFile(t, name+".req.bin")
				if want := req[uwsgi.HeaderSize : uwsgi.HeaderSize+int(w.hdr.Size)]; !bytes.Equal(resp, want) {
					t.Errorf("echo = %q, want the request payload %q", resp, want)
				}
			case respHTTP:
				line, _, _ := strings.Cut(string(resp), "\r\n")
				if line != w.status {
					t.Errorf("status line = %q, want %q", line, w.status)
				}
				// PROTOCOL.md section 7.4: "HTTP" read as a header.
				if h, err := uwsgi.ParseHeader(resp); err != nil || h != vecHdr(uwsgi.ModHTTPResponse, 21588, 'P') {
					t.Errorf("ParseHeader(%q) = %v, %v; want [72, 21588, 80]", resp[:4], h, err)
				}
			case respRaw:
				if len(resp) < w.garbage || string(resp[w.garbage:]) != w.result {
					t.Errorf("raw response = %d bytes %.40q, want %d garbage bytes + %d bytes %.40q",
						len(resp), resp, w.garbage, len(w.result), w.result)
				}
			}
		})
	}
}

func vecCheckRPCResult(t *testing.T, w vecWant, resp []byte) {
	t.Helper()
	r := bytes.NewReader(resp)
	h, err := uwsgi.ReadHeader(r)
	if err != nil {
		t.Fatalf("ReadHeader = %v", err)
	}
	wantM2 := uwsgi.RPCFramed
	if len(w.result) > uwsgi.MaxSize {
		wantM2 = uwsgi.RPCLarge
	}
	if h.Modifier1 != uwsgi.ModRPC || h.Modifier2 != wantM2 {
		t.Errorf("response header = %v, want modifier1 173, modifier2 %d", h, wantM2)
	}
	result, err := uwsgi.ReadRPCResult(r, h, vecMaxResult)
	if err != nil {
		t.Fatalf("ReadRPCResult = %v", err)
	}
	if len(result) != len(w.result) || string(result) != w.result {
		t.Errorf("ReadRPCResult = %d bytes %.40q, want %d bytes %.40q", len(result), result, len(w.result), w.result)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left after the result", r.Len())
	}
	rebuilt := append(uwsgi.AppendRPCHeader(nil, len(result)), result...)
	if !bytes.Equal(rebuilt, resp) {
		t.Errorf("AppendRPCHeader(%d) + result = %.64x..., want %.64x...", len(result), rebuilt, resp)
	}
}

func vecCheckShortFrame(t *testing.T, w vecWant, resp []byte) {
	t.Helper()
	want := vecHdr(uwsgi.ModPing, 0, uwsgi.PingPong)
	if w.resp == respAck {
		want = vecHdr(uwsgi.ModResponse, 0, w.ack)
	}
	p, n, _, err := uwsgi.Extract(resp, uwsgi.MaxSize)
	if err != nil || n != len(resp) || p.Header != want {
		t.Errorf("Extract(%x) = %v, n %d, %v; want %v, %d, nil", resp, p.Header, n, err, want, len(resp))
	}
	if uwsgi.IsErrorFrame(p.Header) {
		t.Errorf("IsErrorFrame(%v) = true, want false", p.Header)
	}
	if got, _ := uwsgi.AppendPacket(nil, want.Modifier1, want.Modifier2, nil); !bytes.Equal(got, resp) {
		t.Errorf("AppendPacket(%v) = %x, want %x", want, got, resp)
	}
}

func vecCheckCacheReply(t *testing.T, w vecWant, resp []byte) {
	t.Helper()
	p, n, _, err := uwsgi.Extract(resp, uwsgi.MaxSize)
	if err != nil || n == 0 {
		t.Fatalf("Extract(%x) = n %d, %v", resp, n, err)
	}
	if p.Modifier1 != uwsgi.ModCache || p.Modifier2 != uwsgi.CacheMagic {
		t.Errorf("reply header = %v, want [cache(111), _, 17]", p.Header)
	}
	rep, err := uwsgi.ParseCacheReply(p.Payload)
	if err != nil || rep != w.reply {
		t.Errorf("ParseCacheReply(%q) = %+v, %v; want %+v", p.Payload, rep, err, w.reply)
	}
	value := resp[n:]
	if string(value) != w.value || len(value) != rep.Size {
		t.Errorf("value after the reply = %q, want %q (size %d)", value, w.value, rep.Size)
	}
	get := w.cache.Cmd == uwsgi.CacheCmdGet
	if got := uwsgi.AppendCacheReply(nil, get, value, rep.Expires); !bytes.Equal(got, resp) {
		t.Errorf("AppendCacheReply(get %v, %q, %d) = %x, want %x", get, value, rep.Expires, got, resp)
	}
}

// TestVectorSplitDelivery feeds every request to Extract and ReadPacket in
// pieces, as a slow network delivers it (split_header_and_vars did 2 + 18 + 65).
func TestVectorSplitDelivery(t *testing.T) {
	for _, name := range vecNames() {
		w := vecTable[name]
		if w.noReq || w.short || w.big {
			continue
		}
		b := vecFile(t, name+".req.bin")
		total := uwsgi.HeaderSize + int(w.hdr.Size)
		for _, cut := range []int{1, 2, 3, uwsgi.HeaderSize, uwsgi.HeaderSize + 1, total - 1} {
			if cut <= 0 || cut >= total {
				continue
			}
			if _, n, need, err := uwsgi.Extract(b[:cut], vecBufferSize); n != 0 || need <= 0 || err != nil {
				t.Errorf("%s: Extract(first %d bytes) = n %d, need %d, %v; want 0, >0, nil", name, cut, n, need, err)
			}
		}
		r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(b[:2]), bytes.NewReader(b[2:min(20, len(b))]),
			bytes.NewReader(b[min(20, len(b)):])), 16)
		p, err := uwsgi.ReadPacket(r, nil, vecBufferSize)
		if err != nil || p.Header != w.hdr || !bytes.Equal(p.Payload, b[uwsgi.HeaderSize:total]) {
			t.Errorf("%s: ReadPacket(split) = %v, %v; want %v", name, p.Header, err, w.hdr)
		}
		if rest, _ := io.ReadAll(r); !bytes.Equal(rest, b[total:]) {
			t.Errorf("%s: ReadPacket consumed into the body: %d bytes left, want %d", name, len(rest), len(b)-total)
		}
	}
}
