package js

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/dop251/goja"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// app is a JSGI 0.3 app, compatible with uWSGI's V8 plugin. The function
// is called with one request object:
//
//	method, scriptName, pathInfo, queryString   REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, QUERY_STRING
//	host          HTTP_HOST, else SERVER_NAME (as sent, port included)
//	port          SERVER_PORT as a number (0 when absent)
//	scheme        UWSGI_SCHEME, else HTTP_X_FORWARDED_PROTO, else "https" when HTTPS is on, else "http"
//	version       the HTTP version of SERVER_PROTOCOL, [1, 1]
//	headers       lower-cased names from the HTTP_* vars ("x-forwarded-for"), plus
//	              content-type and content-length from CONTENT_TYPE and CONTENT_LENGTH
//	              when not empty; a header sent more than once has its values joined
//	              with ", " (cookie: "; "), as RFC 9110 allows
//	remoteAddr    REMOTE_ADDR; remoteUser: REMOTE_USER, only when present
//	serverSoftware "scripthost/" + api.Version
//	env           every var, the last duplicate winning (built on first use)
//	jsgi          {version: [0, 3], multithread: false, multiprocess: false, runOnce: false,
//	              cgi: false, errors: {write, print, flush}} (errors log at level error); frozen
//	input         read(n): a string of up to n body bytes, null at the end; read() reads
//	              the rest; readBytes(n) and readBytes() the same as a Uint8Array.
//	              Strings are decoded as UTF-8, so read binary bodies with readBytes.
//
// The request object is made for the call; a script that keeps it finds
// its env undefined and its input at its end once the call returned. The
// app returns (or resolves a promise to) {status, headers, body}:
//
//	status   a number (200 becomes "200 OK", unknown codes "NNN Unknown") or a
//	         string starting with the three-digit code ("404 Not Found")
//	headers  an object; each value a string (or number), or an array of them for
//	         one header line each, in property order; names must be HTTP tokens and
//	         values may not hold CR, LF or NUL
//	body     a string or a Uint8Array or ArrayBuffer; an array of those (written
//	         in order); an object with forEach(write), such as JSGI's streams: each
//	         chunk passed to write is written and flushed at once, and forEach may
//	         return a promise (async streaming); an iterable (a generator), whose
//	         items may be promises, each written and flushed; a promise of any of
//	         these; null or undefined for no body
//
// goja has no Symbol.asyncIterator, so async iterables are not bodies; a
// generator yielding promises is. A null result means the app answered
// by itself (uwsgi.send): nothing more is written.
//
// An exception or a rejection is a *api.ScriptError; an undefined result or
// an invalid status, headers or body is a *api.ScriptError wrapping
// ErrBadResponse. Either is returned to the host (which answers 500 when
// the header was not sent yet, and logs it), never a crash, and the
// runtime stays usable. Status, headers and an array body are checked
// before the header is written, so that the 500 is still possible.
type app struct {
	p    *program
	name string
	file string
}

var _ api.App = (*app)(nil)

// ServeRequest runs the app for one request.
func (a *app) ServeRequest(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	v, ctx, release, err := a.p.acquire(ctx, nil)
	if err != nil {
		return err
	}
	defer release()
	return v.run(ctx, func() error { return a.serve(v, w, r) })
}

func (a *app) bad(format string, args ...any) error {
	return &api.ScriptError{Engine: errEngine, File: a.file, Msg: "app " + a.name + ": " + fmt.Sprintf(format, args...), Err: ErrBadResponse}
}

func (a *app) serve(v *vm, w api.ResponseWriter, r *api.Request) error {
	fn, ok := v.apps[a.name]
	if !ok {
		return fmt.Errorf("js: no app %q in this runtime", a.name)
	}
	prev := v.req
	cur := &request{vars: r.Vars, body: r.Body}
	v.req = cur
	defer func() { v.req = prev }()
	req := v.newRequest(cur)
	res, err := v.callJS(fn.fn, fn.this, req)
	if err != nil {
		return err
	}
	if res, err = v.await(res); err != nil {
		return err
	}
	switch {
	case goja.IsNull(res):
		return nil
	case goja.IsUndefined(res):
		return a.bad("returned undefined: return {status, headers, body}, or null after answering with uwsgi.send")
	}
	obj, ok := res.(*goja.Object)
	if !ok {
		return a.bad("returned a %s, want {status, headers, body}", typeName(res))
	}
	var (
		status  string
		headers []api.Header
		body    goja.Value
		perr    error
	)
	err = v.jsDo(func() {
		if status, perr = statusOf(obj.Get("status")); perr != nil {
			return
		}
		if headers, perr = headersOf(obj.Get("headers")); perr != nil {
			return
		}
		body = obj.Get("body")
	})
	if err != nil {
		return v.scriptError(err)
	}
	if perr != nil {
		return a.bad("%v", perr)
	}
	body, err = v.await(body)
	if err != nil {
		return err
	}
	// What can be checked before the header goes out is checked first,
	// so that a bad body still gets the host's clean 500.
	var chunks [][]byte
	var stream func() error
	switch b := body.(type) {
	case nil:
	case *goja.Object:
		if chunks, stream, err = a.bodyOf(v, w, b); err != nil {
			return err
		}
	default:
		if goja.IsUndefined(b) || goja.IsNull(b) {
			break
		}
		c, err := chunkOf(b)
		if err != nil {
			return a.bad("body: %v", err)
		}
		chunks = [][]byte{c}
	}
	if err := w.WriteHeader(status, headers); err != nil {
		return err
	}
	for _, c := range chunks {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	if stream != nil {
		return stream()
	}
	return nil
}

// bodyOf takes an object body apart: the chunks of bytes or an array,
// or the function that streams a forEach or iterable body.
func (a *app) bodyOf(v *vm, w api.ResponseWriter, obj *goja.Object) ([][]byte, func() error, error) {
	if b, ok := bytesOf(obj); ok {
		return [][]byte{b}, nil, nil
	}
	var (
		chunks   [][]byte
		berr     error
		forEach  goja.Callable
		iterator goja.Callable
	)
	err := v.jsDo(func() {
		if obj.ClassName() == "Array" {
			n := obj.Get("length").ToInteger()
			chunks = make([][]byte, 0, n)
			for i := int64(0); i < n; i++ {
				c, err := chunkOf(obj.Get(strconv.FormatInt(i, 10)))
				if err != nil {
					berr = a.bad("body[%d]: %v", i, err)
					return
				}
				chunks = append(chunks, c)
			}
			return
		}
		if fe, ok := goja.AssertFunction(obj.Get("forEach")); ok {
			forEach = fe
		} else if it, ok := goja.AssertFunction(obj.GetSymbol(goja.SymIterator)); ok {
			iterator = it
		} else {
			berr = a.bad("body must be a string, a Uint8Array, an array, an object with forEach or an iterable, got %s", typeName(obj))
		}
	})
	switch {
	case err != nil:
		return nil, nil, v.scriptError(err)
	case berr != nil:
		return nil, nil, berr
	case forEach != nil:
		return nil, func() error { return a.writeForEach(v, w, obj, forEach) }, nil
	case iterator != nil:
		return nil, func() error { return a.writeIterable(v, w, obj, iterator) }, nil
	}
	return chunks, nil, nil
}

// statusOf converts the status an app returned.
func statusOf(val goja.Value) (string, error) {
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return "", errors.New("no status")
	}
	switch x := val.Export().(type) {
	case int64:
		return statusLine(float64(x))
	case float64:
		return statusLine(x)
	case string:
		s := strings.TrimSpace(x)
		if len(s) < 3 || !isDigits(s[:3]) || (len(s) > 3 && s[3] != ' ') || strings.ContainsAny(s, "\r\n\x00") {
			return "", fmt.Errorf("invalid status %q: want a three-digit code and a reason, like \"404 Not Found\"", x)
		}
		return s, nil
	}
	return "", fmt.Errorf("status must be a number or a string, got %s", typeName(val))
}

func statusLine(f float64) (string, error) {
	if f != math.Trunc(f) || f < 100 || f > 999 {
		return "", fmt.Errorf("invalid status %v", f)
	}
	code := int(f)
	reason := http.StatusText(code)
	if reason == "" {
		reason = "Unknown"
	}
	return strconv.Itoa(code) + " " + reason, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// headersOf converts the headers an app returned, in property order. It
// runs where JavaScript can (getters).
func headersOf(val goja.Value) ([]api.Header, error) {
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return nil, nil
	}
	obj, ok := val.(*goja.Object)
	if !ok || obj.ClassName() == "Array" {
		return nil, fmt.Errorf("headers must be an object, got %s", typeName(val))
	}
	var hs []api.Header
	for _, name := range obj.Keys() {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("invalid header name %q", name)
		}
		hv := obj.Get(name)
		if list, ok := hv.(*goja.Object); ok && list.ClassName() == "Array" {
			n := list.Get("length").ToInteger()
			for i := int64(0); i < n; i++ {
				s, err := headerValue(name, list.Get(strconv.FormatInt(i, 10)))
				if err != nil {
					return nil, err
				}
				hs = append(hs, api.Header{Name: name, Value: s})
			}
			continue
		}
		s, err := headerValue(name, hv)
		if err != nil {
			return nil, err
		}
		hs = append(hs, api.Header{Name: name, Value: s})
	}
	return hs, nil
}

func headerValue(name string, val goja.Value) (string, error) {
	if _, ok := val.(*goja.Object); ok || val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return "", fmt.Errorf("header %s: value must be a string or an array of strings, got %s", name, typeName(val))
	}
	s := val.String()
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", fmt.Errorf("header %s: value holds CR, LF or NUL", name)
	}
	return s, nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// chunkOf converts a body chunk: a string (or number, boolean) as UTF-8,
// a Uint8Array or ArrayBuffer as its bytes (not copied).
func chunkOf(val goja.Value) ([]byte, error) {
	switch x := val.(type) {
	case *goja.Object:
		if b, ok := bytesOf(x); ok {
			return b, nil
		}
		return nil, fmt.Errorf("chunk must be a string or a Uint8Array, got %s", typeName(val))
	case *goja.Symbol:
		return nil, errors.New("chunk must be a string or a Uint8Array, got symbol")
	}
	if val == nil || goja.IsUndefined(val) || goja.IsNull(val) {
		return nil, fmt.Errorf("chunk must be a string or a Uint8Array, got %s", typeName(val))
	}
	return []byte(val.String()), nil
}

// writeChunk writes one streamed chunk and flushes it.
func writeChunk(w api.ResponseWriter, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}

func (a *app) writeForEach(v *vm, w api.ResponseWriter, body *goja.Object, forEach goja.Callable) error {
	var werr, berr error
	write := v.rt.ToValue(func(call goja.FunctionCall) goja.Value {
		if werr != nil || berr != nil {
			v.throw(v.errorCtor, "write after a failed write", werr)
		}
		b, err := chunkOf(call.Argument(0))
		if err != nil {
			berr = a.bad("body chunk: %v", err)
			v.throw(v.typeErrorCtor, "write: "+err.Error(), ErrBadResponse)
		}
		if err := writeChunk(w, b); err != nil {
			werr = err
			v.throw(v.errorCtor, "write: "+err.Error(), err)
		}
		return goja.Undefined()
	})
	res, err := v.callJS(forEach, body, write)
	if err == nil {
		_, err = v.await(res)
	}
	switch {
	case werr != nil:
		return werr
	case berr != nil:
		return berr
	}
	return err
}

func (a *app) writeIterable(v *vm, w api.ResponseWriter, body *goja.Object, iterFn goja.Callable) error {
	itv, err := v.callJS(iterFn, body)
	if err != nil {
		return err
	}
	it, ok := itv.(*goja.Object)
	if !ok {
		return a.bad("body: the iterator is not an object")
	}
	var next, ret goja.Callable
	if err := v.jsDo(func() {
		next, _ = goja.AssertFunction(it.Get("next"))
		ret, _ = goja.AssertFunction(it.Get("return"))
	}); err != nil {
		return v.scriptError(err)
	}
	if next == nil {
		return a.bad("body: the iterator has no next method")
	}
	stop := func() {
		if ret != nil {
			v.callJS(ret, it)
		}
	}
	for {
		res, err := v.callJS(next, it)
		if err != nil {
			return err
		}
		var done bool
		var item goja.Value
		if err := v.jsDo(func() {
			if r, ok := res.(*goja.Object); ok {
				done = r.Get("done").ToBoolean()
				item = r.Get("value")
			}
		}); err != nil {
			return v.scriptError(err)
		}
		if res == nil || item == nil && !done {
			return a.bad("body: the iterator's next returned a %s", typeName(res))
		}
		if done {
			return nil
		}
		if item, err = v.await(item); err != nil {
			stop()
			return err
		}
		b, err := chunkOf(item)
		if err != nil {
			stop()
			return a.bad("body chunk: %v", err)
		}
		if err := writeChunk(w, b); err != nil {
			stop()
			return err
		}
	}
}

// request is the request a runtime is serving: what the accessors and
// methods shared by request objects work on while the call lasts. A
// request object kept by the script past its call finds no request: its
// env is undefined and its input reads nothing.
type request struct {
	obj   *goja.Object // the request object
	input *goja.Object // its input
	vars  uwsgi.Vars
	body  io.Reader
}

// read reads up to n bytes (n < 0: the rest) but no more than limit;
// nil means the end of the body.
func (r *request) read(n, limit int) ([]byte, error) {
	if r.body == nil {
		return nil, nil
	}
	if n == 0 {
		return []byte{}, nil
	}
	all := n < 0
	if all || n > limit {
		n = limit + 1
	}
	b, err := io.ReadAll(io.LimitReader(r.body, int64(n)))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		if all {
			return nil, fmt.Errorf("%w: the body is over %d bytes; read it in parts", ErrStringTooLarge, limit)
		}
		// n was capped: keep the extra byte for the next read.
		r.body = io.MultiReader(bytes.NewReader(b[limit:]), r.body)
		b = b[:limit]
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// newRequest builds the request object of a call (see app).
func (v *vm) newRequest(cur *request) *goja.Object {
	rt := v.rt
	req := rt.NewObject()
	headers := rt.NewObject()
	type header struct{ name, value string }
	var hs []header
	var (
		method, scriptName, pathInfo, query, httpHost, serverName string
		serverPort, uwsgiScheme, forwardedProto, https            string
		remoteAddr, remoteUser, protocol, ctype, clen             string
		hasUser                                                   bool
	)
	for _, kv := range cur.vars {
		key := kv.Key
		switch string(key) {
		case "REQUEST_METHOD":
			method = string(kv.Value)
		case "SCRIPT_NAME":
			scriptName = string(kv.Value)
		case "PATH_INFO":
			pathInfo = string(kv.Value)
		case "QUERY_STRING":
			query = string(kv.Value)
		case "SERVER_NAME":
			serverName = string(kv.Value)
		case "SERVER_PORT":
			serverPort = string(kv.Value)
		case "UWSGI_SCHEME":
			uwsgiScheme = string(kv.Value)
		case "HTTPS":
			https = string(kv.Value)
		case "REMOTE_ADDR":
			remoteAddr = string(kv.Value)
		case "REMOTE_USER":
			remoteUser, hasUser = string(kv.Value), true
		case "SERVER_PROTOCOL":
			protocol = string(kv.Value)
		case "CONTENT_TYPE":
			ctype = string(kv.Value)
		case "CONTENT_LENGTH":
			clen = string(kv.Value)
		}
		if len(key) <= 5 || string(key[:5]) != "HTTP_" {
			continue
		}
		val := string(kv.Value)
		switch string(key) {
		case "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH":
			continue // CONTENT_TYPE and CONTENT_LENGTH say it
		case "HTTP_HOST":
			httpHost = val
		case "HTTP_X_FORWARDED_PROTO":
			forwardedProto = val
		}
		name := v.headerName(key)
		dup := false
		for i := range hs {
			if hs[i].name == name {
				sep := ", "
				if name == "cookie" {
					sep = "; "
				}
				hs[i].value += sep + val
				dup = true
				break
			}
		}
		if !dup {
			hs = append(hs, header{name, val})
		}
	}
	if ctype != "" {
		hs = append(hs, header{"content-type", ctype})
	}
	if clen != "" {
		hs = append(hs, header{"content-length", clen})
	}
	for _, h := range hs {
		headers.Set(h.name, h.value)
	}
	host := httpHost
	if host == "" {
		host = serverName
	}
	port, _ := strconv.Atoi(serverPort)
	scheme := "http"
	switch {
	case uwsgiScheme != "":
		scheme = uwsgiScheme
	case forwardedProto != "":
		scheme = forwardedProto
	case strings.EqualFold(https, "on") || https == "1":
		scheme = "https"
	}
	req.Set("method", method)
	req.Set("scriptName", scriptName)
	req.Set("pathInfo", pathInfo)
	req.Set("queryString", query)
	req.Set("host", host)
	req.Set("port", port)
	req.Set("scheme", scheme)
	if version := v.httpVersion(protocol); version != nil {
		req.Set("version", version)
	}
	req.Set("headers", headers)
	req.Set("remoteAddr", remoteAddr)
	if hasUser {
		req.Set("remoteUser", remoteUser)
	}
	req.Set("serverSoftware", serverSoftware)
	req.DefineAccessorProperty("env", v.envGetter, nil, goja.FLAG_TRUE, goja.FLAG_TRUE)
	req.Set("jsgi", v.jsgi)
	in := rt.CreateObject(v.inputProto)
	req.Set("input", in)
	cur.obj, cur.input = req, in
	return req
}

const serverSoftware = "scripthost/" + api.Version

// headerName is the header name of an HTTP_ var, remembered for the
// runtime's next requests (up to maxHeaderNames of them): most requests
// carry the same few headers.
func (v *vm) headerName(key []byte) string {
	if name, ok := v.headerNames[string(key)]; ok {
		return name
	}
	name := headerName(key[5:])
	if len(v.headerNames) < maxHeaderNames {
		if v.headerNames == nil {
			v.headerNames = map[string]string{}
		}
		v.headerNames[string(key)] = name
	}
	return name
}

const maxHeaderNames = 128

// headerName turns the rest of an HTTP_ var into a header name:
// "X_FORWARDED_FOR" is "x-forwarded-for".
func headerName(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case c == '_':
			c = '-'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return string(out)
}

// httpVersion is request.version for SERVER_PROTOCOL ("HTTP/1.1" is
// [1, 1]), nil when it does not parse; the arrays are frozen and shared.
func (v *vm) httpVersion(proto string) goja.Value {
	if a, ok := v.versions[proto]; ok {
		return a
	}
	rest, ok := strings.CutPrefix(proto, "HTTP/")
	if !ok || len(v.versions) > 8 {
		return nil
	}
	maj, min, _ := strings.Cut(rest, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if min == "" {
		b, err2 = 0, nil
	}
	if err1 != nil || err2 != nil {
		return nil
	}
	arr := v.rt.NewArray(a, b)
	v.freeze(arr, 0)
	v.versions[proto] = arr
	return arr
}

// openRequests makes what request objects share: the env accessor, which
// builds the env object on first use, and the prototype of request.input.
func (v *vm) openRequests() {
	rt := v.rt
	v.versions = map[string]goja.Value{}
	v.envGetter = rt.ToValue(func(call goja.FunctionCall) goja.Value {
		cur := v.req
		if cur == nil || call.This != cur.obj {
			return goja.Undefined()
		}
		env := rt.NewObject()
		for _, kv := range cur.vars {
			env.Set(string(kv.Key), string(kv.Value))
		}
		cur.obj.DefineDataProperty("env", env, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		return env
	})
	limit := v.eng.opts.MaxStringSize
	read := func(call goja.FunctionCall) []byte {
		cur := v.req
		if cur == nil || call.This != cur.input {
			return nil // a request that ended
		}
		n := -1
		if arg := call.Argument(0); !goja.IsUndefined(arg) && !goja.IsNull(arg) {
			f := arg.ToFloat()
			if math.IsNaN(f) || f < 0 {
				v.throw(v.rangeErrorCtor, "input.read: the count must be a number >= 0, got "+arg.String(), nil)
			}
			n = int(min(f, float64(limit)+1))
		}
		b, err := cur.read(n, limit)
		if err != nil {
			ctor := v.errorCtor
			if errors.Is(err, ErrStringTooLarge) {
				ctor = v.rangeErrorCtor
			}
			v.throw(ctor, "input.read: "+err.Error(), err)
		}
		// Bounded by MaxStringSize; charged so the call that reads big
		// bodies counts for the memory watchdog.
		v.allocate("input.read", float64(len(b)))
		return b
	}
	proto := rt.NewObject()
	proto.Set("read", func(call goja.FunctionCall) goja.Value {
		b := read(call)
		if b == nil {
			return goja.Null()
		}
		return rt.ToValue(string(b))
	})
	proto.Set("readBytes", func(call goja.FunctionCall) goja.Value {
		b := read(call)
		if b == nil {
			return goja.Null()
		}
		u8, err := v.uint8Array(b)
		if err != nil {
			panic(err)
		}
		return u8
	})
	v.freeze(proto, 0)
	v.inputProto = proto
}

// jsgiObject is request.jsgi, shared by the requests of a runtime and
// frozen.
func (v *vm) jsgiObject() *goja.Object {
	rt := v.rt
	errs := rt.NewObject()
	logLine := func(call goja.FunctionCall) goja.Value {
		s := strings.TrimRight(v.format(call.Arguments), "\n")
		if v.out != nil {
			v.out.Line(s)
		} else {
			v.log.Log(v.context(), slog.LevelError, s, "source", "script")
		}
		return goja.Undefined()
	}
	errs.Set("write", logLine)
	errs.Set("print", logLine)
	errs.Set("flush", func(goja.FunctionCall) goja.Value { return goja.Undefined() })
	j := rt.NewObject()
	j.Set("version", rt.NewArray(0, 3))
	j.Set("multithread", false)
	j.Set("multiprocess", false)
	j.Set("runOnce", false)
	j.Set("cgi", false)
	j.Set("errors", errs)
	v.freeze(j, 0)
	return j
}
