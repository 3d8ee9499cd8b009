package lua

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	lua "github.com/yuin/gopher-lua"

	"github.com/scripthost/scripthost/api"
)

// app is a WSAPI app, compatible with uWSGI's Lua plugin: the function
// is called with one table, env, holding every request var as a string
// (the last duplicate winning; CONTENT_TYPE defaults to "") and
// env.input, whose input:read(n) reads up to n body bytes (nil at the
// end); read() and read("*a") read the rest, read("*l") a line.
//
// It returns a status (a number, 200 becoming "200 OK" and unknown codes
// "NNN Unknown", or a string used as it is), a headers table (string
// values, or lists of strings for repeated headers, in table order) and
// a body: a string, a list of strings, or an iterator function called
// until it returns nil; a coroutine.wrap iterator also ends when its
// coroutine is dead, which is how uWSGI's loop ends. Each chunk is written
// and flushed at once. A nil status means the app answered by itself
// (uwsgi.send): nothing more is written.
//
// An error before the header was written is returned and the host answers
// 500; an error later is returned as well, and the host, since the header
// went out, logs it and ends the response. The state stays usable either
// way.
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
	body := &bodyReader{r: r.Body}
	env := v.newEnv(r, body)
	prevInput, prevBody := v.input, v.body // a request served within a call
	v.input, v.body = nil, body
	defer func() { v.input, v.body = prevInput, prevBody }()

	rets, err := v.call(ctx, v.apps[a.name], []lua.LValue{env}, 3)
	if err != nil {
		return err
	}
	if rets[0] == lua.LNil {
		return nil
	}
	status, err := statusOf(rets[0])
	if err != nil {
		return a.error(err)
	}
	headers, err := headersOf(rets[1])
	if err != nil {
		return a.error(err)
	}
	if err := w.WriteHeader(status, headers); err != nil {
		return err
	}
	return a.writeBody(ctx, v, w, rets[2])
}

func (a *app) error(err error) error {
	return &api.ScriptError{Engine: errEngine, File: a.file, Msg: "app " + a.name + ": " + err.Error()}
}

func (a *app) writeBody(ctx context.Context, v *vm, w api.ResponseWriter, body lua.LValue) error {
	if err := a.body(ctx, v, w, body); err != nil {
		return err
	}
	return w.Flush() // the header, if the body was empty
}

// body writes and flushes each chunk of the body.
func (a *app) body(ctx context.Context, v *vm, w api.ResponseWriter, body lua.LValue) error {
	write := func(chunk lua.LValue) error {
		s, ok := stringOf(chunk)
		if !ok || s == "" { // like uWSGI, which skips what lua_tolstring refuses
			return nil
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return w.Flush()
	}
	switch b := body.(type) {
	case *lua.LNilType:
		return nil
	case lua.LString, lua.LNumber:
		return write(b)
	case *lua.LTable:
		for i := 1; i <= b.Len(); i++ {
			if err := write(b.RawGetInt(i)); err != nil {
				return err
			}
		}
		return nil
	case *lua.LFunction:
		for {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if v.deadCoroutine(b) {
				return nil
			}
			rets, err := v.call(ctx, b, nil, 1)
			if err != nil {
				return err
			}
			if rets[0] == lua.LNil {
				return nil
			}
			if err := write(rets[0]); err != nil {
				return err
			}
		}
	}
	return a.error(fmt.Errorf("body must be a string, a table or a function, got %s", body.Type()))
}

// statusOf converts the status an app returned.
func statusOf(lv lua.LValue) (string, error) {
	switch x := lv.(type) {
	case lua.LString:
		return string(x), nil
	case lua.LNumber:
		code := int(x)
		if float64(code) != float64(x) || code < 100 || code > 999 {
			return "", fmt.Errorf("invalid status %s", formatNumber(x))
		}
		reason := http.StatusText(code)
		if reason == "" {
			reason = "Unknown"
		}
		return strconv.Itoa(code) + " " + reason, nil
	}
	return "", fmt.Errorf("status must be a number or a string, got %s", lv.Type())
}

// headersOf converts the headers table an app returned, in its order.
func headersOf(lv lua.LValue) ([]api.Header, error) {
	if lv == lua.LNil {
		return nil, nil
	}
	t, ok := lv.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("headers must be a table, got %s", lv.Type())
	}
	var hs []api.Header
	for k, val := t.Next(lua.LNil); k != lua.LNil; k, val = t.Next(k) {
		name, ok := k.(lua.LString)
		if !ok {
			return nil, fmt.Errorf("header name must be a string, got %s", k.Type())
		}
		if list, ok := val.(*lua.LTable); ok {
			for i := 1; i <= list.Len(); i++ {
				s, ok := stringOf(list.RawGetInt(i))
				if !ok {
					return nil, fmt.Errorf("header %s: values must be strings", name)
				}
				hs = append(hs, api.Header{Name: string(name), Value: s})
			}
			continue
		}
		s, ok := stringOf(val)
		if !ok {
			return nil, fmt.Errorf("header %s: value must be a string, got %s", name, val.Type())
		}
		hs = append(hs, api.Header{Name: string(name), Value: s})
	}
	return hs, nil
}

// bodyReader is the request body behind env.input.
type bodyReader struct {
	r  io.Reader
	br *bufio.Reader
}

func (b *bodyReader) reader() *bufio.Reader {
	if b.br == nil {
		b.br = bufio.NewReader(b.r)
	}
	return b.br
}

// inputRead is env.input:read([n | "*a" | "*l"]).
func (v *vm) inputRead(L *lua.LState) int {
	if L.Get(1) != v.input || v.body == nil || v.body.r == nil {
		L.Push(lua.LNil) // the input of a request that is over
		return 1
	}
	limit := v.eng.opts.MaxStringSize
	br := v.body.reader()
	switch arg := L.Get(2).(type) {
	case *lua.LNilType:
		return v.readAll(L, br, limit, true)
	case lua.LString:
		switch arg {
		case "*a", "*all", "a":
			return v.readAll(L, br, limit, false)
		case "*l", "*line", "l":
			if line, ok := v.readLine(L, br, limit); ok {
				L.Push(lua.LString(line))
			} else {
				L.Push(lua.LNil)
			}
			return 1
		}
		L.ArgError(2, "invalid format")
	case lua.LNumber:
		n := float64(arg)
		if n <= 0 {
			L.Push(lua.LString(""))
			return 1
		}
		data := v.readCharged(L, br, int(min(n, float64(limit))))
		if len(data) == 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(data))
		return 1
	default:
		L.TypeError(2, lua.LTNumber)
	}
	return 0
}

// readAll reads the rest of the body; nilAtEnd answers nil instead of ""
// when nothing is left.
func (v *vm) readAll(L *lua.LState, br *bufio.Reader, limit int, nilAtEnd bool) int {
	data := v.readCharged(L, br, limit+1)
	if len(data) > limit {
		v.limit(L, "input:read: body over the string size limit", ErrStringTooLarge)
	}
	if len(data) == 0 && nilAtEnd {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(data))
	return 1
}
