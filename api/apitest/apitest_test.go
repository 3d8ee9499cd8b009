package apitest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

func TestCaseTable(t *testing.T) {
	known := make(map[string]bool)
	for _, name := range Functions() {
		known[name] = true
	}
	seen := make(map[string]bool)
	for _, c := range Cases() {
		if seen[c.Name] {
			t.Errorf("case %s: duplicate name", c.Name)
		}
		seen[c.Name] = true
		fn, variant, ok := strings.Cut(c.Name, "/")
		if !ok || variant == "" || !slices.Contains(c.Funcs, fn) {
			t.Errorf("case %s: the name is not function/variant with the function among Funcs %v", c.Name, c.Funcs)
		}
		for _, f := range c.Funcs {
			if !known[f] {
				t.Errorf("case %s: uwsgi.%s is not an API function", c.Name, f)
			}
		}
		if (c.Want == "") == (c.WantErr == nil) {
			t.Errorf("case %s: exactly one of Want and WantErr must be set", c.Name)
		}
		if !c.Request && (c.Input != "" || c.CloseInput || c.Disconnects) {
			t.Errorf("case %s: Input, CloseInput and Disconnects are for Request cases", c.Name)
		}
		for _, p := range usedPlaceholders(c.Want) {
			if !slices.Contains(placeholders, p) {
				t.Errorf("case %s: unknown placeholder {{%s}} in Want", c.Name, p)
			}
		}
	}
	for lang, scripts := range languages {
		for name, src := range scripts {
			if !seen[name] {
				t.Errorf("%s script %q belongs to no case", lang, name)
			}
			for _, p := range usedPlaceholders(src) {
				if !slices.Contains(placeholders, p) {
					t.Errorf("%s script %s: unknown placeholder {{%s}}", lang, name, p)
				}
			}
		}
		if p := usedPlaceholders(languagePrelude[lang]); len(p) > 0 {
			t.Errorf("the %s prelude uses placeholders %v", lang, p)
		}
	}
}

// Lua is the reference language: every case has a Lua script, and the
// script uses every function the case claims to cover.
func TestLuaScripts(t *testing.T) {
	for _, c := range cases() {
		src, ok := luaScripts[c.Name]
		if !ok {
			t.Errorf("no lua script for case %s", c.Name)
			continue
		}
		for _, fn := range c.Funcs {
			if !strings.Contains(src, "uwsgi."+fn) {
				t.Errorf("case %s covers uwsgi.%s, but its lua script does not use it", c.Name, fn)
			}
		}
		returnsApp := strings.Contains(src, "\nreturn function(env)")
		registersT := strings.Contains(src, `uwsgi.register_rpc("t", `)
		if c.Request && (!returnsApp || registersT) {
			t.Errorf("case %s: a Request case's lua script must return an app and not register t", c.Name)
		}
		if !c.Request && (returnsApp || !registersT) {
			t.Errorf("case %s: the lua script must register t and not return an app", c.Name)
		}
	}
}

func TestCoverage(t *testing.T) {
	if got := Uncovered("lua"); len(got) > 0 {
		t.Errorf("functions no lua case covers: %v", got)
	}
	funcs := Functions()
	if len(funcs) != len(api.Funcs()) || !slices.IsSorted(funcs) {
		t.Errorf("Functions() = %v", funcs)
	}
	cov := Coverage("lua")
	if len(cov) != len(funcs) {
		t.Errorf("Coverage has %d functions, want %d", len(cov), len(funcs))
	}
	if !slices.Contains(cov["cache_get"], "cache_get/miss") {
		t.Errorf("Coverage(lua)[cache_get] = %v, want it to hold cache_get/miss", cov["cache_get"])
	}
	if got := Uncovered("cobol"); !slices.Equal(got, funcs) {
		t.Errorf("Uncovered(cobol) = %v, want every function", got)
	}
	for name, cs := range Coverage("cobol") {
		if cs == nil || len(cs) > 0 {
			t.Errorf("Coverage(cobol)[%s] = %#v, want an empty list", name, cs)
		}
	}
}

func TestNode(t *testing.T) {
	n := StartNode(t)
	c := uwsgi.NewClient(n.Addr)
	defer c.Close()
	ctx := context.Background()
	if got, err := c.CallString(ctx, "hello"); got != "Hello World" || err != nil {
		t.Errorf("hello() = %q, %v", got, err)
	}
	if got, err := c.CallString(ctx, "echo", "a", "b"); got != "a b" || err != nil {
		t.Errorf("echo(a, b) = %q, %v", got, err)
	}
	if _, err := c.CallString(ctx, "nosuch"); !errors.Is(err, uwsgi.ErrNoResult) {
		t.Errorf("nosuch() error %v, want ErrNoResult", err)
	}
	if err := c.Signal(ctx, 17); err != nil {
		t.Errorf("Signal(17): %v", err)
	}
	if got := n.Signals(); !slices.Equal(got, []uint8{17}) {
		t.Errorf("signals %v", got)
	}
	if err := c.CacheSet(ctx, "k", []byte("v"), uwsgi.InCache("other"), uwsgi.Expires(time.Minute)); err != nil {
		t.Errorf("CacheSet: %v", err)
	}
	if err := c.CacheSet(ctx, "k", []byte("v"), uwsgi.InCache("other")); !errors.Is(err, uwsgi.ErrFailed) {
		t.Errorf("second CacheSet: %v, want ErrFailed", err)
	}
	if got, err := c.CacheGet(ctx, "k", uwsgi.InCache("other")); string(got) != "v" || err != nil {
		t.Errorf("CacheGet = %q, %v", got, err)
	}
	if _, err := c.CacheGet(ctx, "k"); !errors.Is(err, uwsgi.ErrNotFound) {
		t.Errorf("CacheGet from the default cache: %v, want ErrNotFound", err)
	}
	if ok, err := c.CacheExists(ctx, "k", uwsgi.InCache("other")); !ok || err != nil {
		t.Errorf("CacheExists = %v, %v", ok, err)
	}
	if err := c.CacheUpdate(ctx, "k", []byte("w"), uwsgi.InCache("other")); err != nil {
		t.Errorf("CacheUpdate: %v", err)
	}
	if err := c.CacheDel(ctx, "k", uwsgi.InCache("other")); err != nil {
		t.Errorf("CacheDel: %v", err)
	}
	if err := c.CacheDel(ctx, "k", uwsgi.InCache("other")); !errors.Is(err, uwsgi.ErrNotFound) {
		t.Errorf("second CacheDel: %v, want ErrNotFound", err)
	}
	if err := c.CacheUpdate(ctx, "x", []byte("1")); err != nil {
		t.Errorf("CacheUpdate: %v", err)
	}
	if err := c.CacheClear(ctx); err != nil || n.Cache("").Len() != 0 {
		t.Errorf("CacheClear: %v, %d items left", err, n.Cache("").Len())
	}
	if got := n.Calls(); !slices.Equal(got, []string{"hello", "echo a b", "nosuch"}) {
		t.Errorf("calls %q", got)
	}
}

func TestEcho(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		addr := startEcho(t, network)
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitTimeout))
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("%s echo: %q, %v", network, buf, err)
		}
		c.Close()
	}
	if _, err := net.Dial("tcp", deadAddr(t)); err == nil {
		t.Errorf("dialing the dead address succeeded")
	}
}

func TestStatus(t *testing.T) {
	for in, want := range map[string]string{
		"": "200 OK", "200": "200 OK", "404": "404 Not Found", "299": "299 Unknown",
		"404 Gone Fishing": "404 Gone Fishing",
	} {
		if got := Status(in); got != want {
			t.Errorf("Status(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResponseWriter(t *testing.T) {
	srv, cli, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	conn := NewConn(srv)
	w := NewResponseWriter(conn, "HTTP/1.0")
	if err := w.WriteHeader("201", []api.Header{{Name: "X-A", Value: "1"}, {Name: "X-A", Value: "2"}}); err != nil {
		t.Fatal(err)
	}
	if w.HeaderSent() {
		t.Errorf("header sent before the first write")
	}
	io.WriteString(w, "body")
	if err := w.WriteHeader("500", nil); !errors.Is(err, errHeaderSent) {
		t.Errorf("second WriteHeader: %v", err)
	}
	conn.Close()
	got, _ := io.ReadAll(cli)
	if want := "HTTP/1.0 201 Created\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLogRecorder(t *testing.T) {
	var l LogRecorder
	log := slog.New(&l).With("a", 1).WithGroup("g")
	log.Warn("msg", "b", "x")
	r, ok := l.Find("msg")
	if !ok || r.Attrs["a"] != "1" || r.Attrs["g.b"] != "x" || r.Level.String() != "WARN" {
		t.Errorf("record %+v, %v", r, ok)
	}
	if !strings.Contains(l.String(), `WARN "msg" a="1" g.b="x"`) {
		t.Errorf("String() = %q", l.String())
	}
}

// The harness itself, driven by a fake engine whose "scripts" are Go
// functions calling the API table the way an engine's adapter does.

type fakeEngine struct{}

func (fakeEngine) Name() string             { return "fake" }
func (fakeEngine) Extensions() []string     { return []string{".fake"} }
func (fakeEngine) Modifier() uwsgi.Modifier { return uwsgi.ModGo }

// fakeScripts map a case name to its Go "script": it gets the words of
// the source after the case name (with placeholders replaced) and either
// registers "t" or returns an app.
var fakeScripts = map[string]func(env *api.Registrations, args []string) api.App{
	"alarm/raises": fakeT(func(ctx context.Context, env *api.Registrations, _ []string) (string, error) {
		a, _ := invoke(ctx, env, "alarm", "disk", "full: 99%")
		b, _ := invoke(ctx, env, "alarm", "count", int64(42))
		return api.FormatValue(a) + " " + api.FormatValue(b), nil
	}),
	"add_rb_timer/iterations": func(env *api.Registrations, args []string) api.App {
		handler := callable(func(ctx context.Context, _ []api.Value) (api.Value, error) {
			return invoke(ctx, env, "cache_inc", "rb")
		})
		invoke(context.Background(), env, "register_signal", int64(21), "", handler)
		return fakeT(func(ctx context.Context, env *api.Registrations, _ []string) (string, error) {
			v, err := invoke(ctx, env, "add_rb_timer", int64(21), 0.05, int64(2))
			return api.FormatValue(v), err
		})(env, args)
	},
	"rpc/remote": fakeT(func(ctx context.Context, env *api.Registrations, args []string) (string, error) {
		a, _ := invoke(ctx, env, "rpc", args[0], "hello")
		b, _ := invoke(ctx, env, "rpc", args[0], "echo", "a", "b")
		c, _ := invoke(ctx, env, "rpc", args[0], "nosuch")
		return `"` + a.(string) + `" "` + b.(string) + `" ` + api.FormatValue(c), nil
	}),
	"async_sleep/harakiri": fakeT(func(ctx context.Context, env *api.Registrations, _ []string) (string, error) {
		invoke(ctx, env, "set_user_harakiri", 0.05)
		_, err := invoke(ctx, env, "async_sleep", int64(5))
		return "not interrupted", err
	}),
	"send/request": fakeApp(func(ctx context.Context, env *api.Registrations, w api.ResponseWriter) error {
		a, _ := invoke(ctx, env, "send", "raw:")
		fd, _ := invoke(ctx, env, "connection_fd")
		b, _ := invoke(ctx, env, "send", fd, "more;")
		_, err := io.WriteString(w, api.FormatValue(a)+" "+api.FormatValue(b))
		return err
	}),
	"ready_fd/request": fakeApp(func(ctx context.Context, env *api.Registrations, w api.ResponseWriter) error {
		fd, _ := invoke(ctx, env, "connection_fd")
		wv, _ := invoke(ctx, env, "wait_fd_read", fd, int64(5))
		invoke(ctx, env, "suspend")
		ready, _ := invoke(ctx, env, "ready_fd")
		data, _ := invoke(ctx, env, "recv", int64(1))
		_, err := io.WriteString(w, api.FormatValue(wv)+" "+api.FormatValue(ready == fd)+` "`+data.(string)+`"`)
		return err
	}),
	"disconnect/request": fakeApp(func(ctx context.Context, env *api.Registrations, w api.ResponseWriter) error {
		invoke(ctx, env, "send", "partial")
		invoke(ctx, env, "disconnect")
		invoke(ctx, env, "cache_update", "after", "yes")
		if _, err := io.WriteString(w, "not sent"); err != nil {
			return err
		}
		return w.Flush()
	}),
}

func invoke(ctx context.Context, env *api.Registrations, name string, args ...api.Value) (api.Value, error) {
	for _, f := range api.Funcs() {
		if f.Name == name {
			return f.Invoke(ctx, env, args)
		}
	}
	panic("no API function " + name)
}

type callable func(ctx context.Context, args []api.Value) (api.Value, error)

func (c callable) Call(ctx context.Context, args []api.Value) (api.Value, error) { return c(ctx, args) }

func fakeT(fn func(ctx context.Context, env *api.Registrations, args []string) (string, error)) func(*api.Registrations, []string) api.App {
	return func(env *api.Registrations, args []string) api.App {
		env.RegisterRPC("t", func(ctx context.Context, _ [][]byte) ([]byte, error) {
			s, err := fn(ctx, env, args)
			return []byte(s), err
		})
		return nil
	}
}

type appFunc func(ctx context.Context, w api.ResponseWriter, r *api.Request) error

func (f appFunc) ServeRequest(ctx context.Context, w api.ResponseWriter, r *api.Request) error {
	return f(ctx, w, r)
}

func fakeApp(fn func(ctx context.Context, env *api.Registrations, w api.ResponseWriter) error) func(*api.Registrations, []string) api.App {
	return func(env *api.Registrations, _ []string) api.App {
		return appFunc(func(ctx context.Context, w api.ResponseWriter, _ *api.Request) error { return fn(ctx, env, w) })
	}
}

type fakeProgram struct{ apps map[string]api.App }

func (p fakeProgram) Apps() map[string]api.App { return p.apps }
func (fakeProgram) Close() error               { return nil }

func (fakeEngine) Load(_ context.Context, env *api.Registrations, files []api.File) (api.Program, error) {
	words := strings.Fields(string(files[0].Source))
	script := fakeScripts[words[0]]
	if script == nil {
		return nil, errors.New("no fake script " + words[0])
	}
	p := fakeProgram{apps: map[string]api.App{}}
	if app := script(env, words[1:]); app != nil {
		p.apps[strings.TrimSuffix(files[0].Name, ".fake")] = app
	}
	return p, nil
}

// fakeSources are the sources the suite writes for the fake engine: the
// case name and the placeholders its script needs.
var fakeSources = map[string]string{
	"rpc/remote": "rpc/remote {{NODE_ADDR}}",
}

func TestHarness(t *testing.T) {
	byName := make(map[string]Case)
	for _, c := range cases() {
		byName[c.Name] = c
	}
	for name := range fakeScripts {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("no case %s", name)
		}
		src := fakeSources[name]
		if src == "" {
			src = name
		}
		t.Run(name, func(t *testing.T) { runCase(t, fakeEngine{}, c, src) })
	}
}
