package apitest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// Limits of one case.
const (
	// callTimeout is the harakiri of the call under test: a case that
	// hangs fails instead of hanging the suite.
	callTimeout = 10 * time.Second
	// loadTimeout bounds engine.Load.
	loadTimeout = 10 * time.Second
	// waitTimeout bounds every poll for an asynchronous side effect.
	waitTimeout = 5 * time.Second
)

// Case is one conformance check. See the package documentation for the
// protocol between the suite and the scripts.
type Case struct {
	// Name is "function/variant"; the function is one of Funcs.
	Name string
	// Funcs are the API functions the case covers.
	Funcs []string
	// Scripts maps an engine name ("lua", "js", "go") to the source of
	// the case's script. Cases() fills it from the per-language files.
	Scripts map[string]string
	// Want is the expected result (Request: everything the client
	// received). Placeholders are replaced.
	Want string
	// WantErr, when set, requires the call of "t" (or ServeRequest) to
	// fail with an error matching it; Want is then not used.
	WantErr error
	// Concurrent, when over 1, calls "t" that many times at once (the
	// script makes each call last long enough to overlap the others), so
	// that an engine with a pool of VMs serves them in different VMs;
	// every result must be Want.
	Concurrent int
	// Request makes the case serve a request to the app the script
	// returns, with a client connection, instead of calling "t".
	Request bool
	// Input is sent by the client after the request.
	Input string
	// CloseInput half-closes the client's side of the connection once
	// Input is sent, so that the script reads end of input.
	CloseInput bool
	// Disconnects marks Request cases whose script closes the client
	// connection: ServeRequest may then fail writing the response.
	Disconnects bool
	// WebSocket makes the request of a Request case ask for a WebSocket
	// upgrade (an Upgrader in its context).
	WebSocket *WebSocket
	// WantFrames is the expected Transcript of the Upgrader once the
	// call returned (placeholders are replaced); checked whenever the
	// case has an Upgrader.
	WantFrames string
	// Note is logged when the case fails: a known defect the case exposes
	// and where it is.
	Note string
	// Setup, when set, runs before the script is loaded; failing in it
	// ends the case.
	Setup func(f *Fixture)
	// Check, when set, runs after the result was compared with Want
	// (whether or not that failed), before the script is closed.
	Check func(f *Fixture)
}

// Fixture is the world of one case, for its Setup and Check hooks.
type Fixture struct {
	T             *testing.T         // the subtest of the case and engine
	Ctx           context.Context    // done when the case ends
	Engine        api.Engine         // the engine under test
	State         *api.State         // the host state the script sees, closed after the case
	Registrations *api.Registrations // the script's registrations, committed once it loaded
	Dir           string             // a temporary directory holding the script file
	Log           *LogRecorder       // every record of State's logger; printed when the case fails
	// Vars are the placeholder values of the case ("ECHO_ADDR": ...).
	Vars map[string]string
	// Node is the fake uWSGI node behind {{NODE_ADDR}}, or nil.
	Node *Node
	// Got is the result of the case: what "t" returned, or what the
	// client received for a Request case.
	Got string
	// Err is the error of the call of "t" (or of ServeRequest).
	Err error
	// Elapsed is how long the call (or ServeRequest) took.
	Elapsed time.Duration
	// Returned is when the call (or ServeRequest) returned.
	Returned time.Time
	// Data carries values from a case's Setup to its Check.
	Data map[string]any
	// Upgrader is the fake host side of a WebSocket case's request.
	Upgrader *Upgrader

	mu     sync.Mutex
	alarms []Alarm
}

// Alarm is one uwsgi.alarm received by the alarm sink.
type Alarm struct {
	// Name is the alarm the script raised, Msg its message.
	Name, Msg string
}

// Alarms returns the alarms raised so far.
func (f *Fixture) Alarms() []Alarm {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.alarms)
}

func (f *Fixture) alarm(name, msg string) {
	f.mu.Lock()
	f.alarms = append(f.alarms, Alarm{name, msg})
	f.mu.Unlock()
}

// CacheValue returns the value of key in the host's cache ("" is the
// default cache) and whether it exists.
func (f *Fixture) CacheValue(cache, key string) (string, bool) {
	c, err := f.State.Caches.Cache(cache)
	if err != nil {
		f.T.Fatalf("cache %q: %v", cache, err)
	}
	it, err := c.Get(f.Ctx, []byte(key))
	if err != nil {
		return "", false
	}
	return string(it.Value), true
}

// Eventually polls cond until it holds, failing the case after a few
// seconds; what says what was awaited.
func (f *Fixture) Eventually(what string, cond func() bool) bool {
	f.T.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			f.T.Errorf("gave up waiting for %s", what)
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// WaitCache waits until key holds want in the default cache.
func (f *Fixture) WaitCache(key, want string) bool {
	f.T.Helper()
	var got string
	ok := f.Eventually(fmt.Sprintf("cache %q = %q", key, want), func() bool {
		got, _ = f.CacheValue("", key)
		return got == want
	})
	if !ok {
		f.T.Logf("cache %q is %q", key, got)
	}
	return ok
}

// CacheInt returns the counter in key of the default cache (0 if absent
// or not a counter).
func (f *Fixture) CacheInt(key string) int {
	v, _ := f.CacheValue("", key)
	n, _ := uwsgi.ParseCounter([]byte(v))
	return int(n)
}

// languages holds every language's scripts, by engine name. A new engine
// adds its map here (and its file, cases_<lang>.go).
var languages = map[string]map[string]string{
	"lua": luaScripts,
	"go":  goScripts,
}

// Cases returns the case table with each case's Scripts filled in.
func Cases() []Case {
	cs := slices.Concat(cases(), spoolerCases(), outboundCases())
	for i := range cs {
		cs[i].Scripts = map[string]string{}
		for lang, scripts := range languages {
			if src, ok := scripts[cs[i].Name]; ok {
				cs[i].Scripts[lang] = languagePrelude[lang] + src
			}
		}
	}
	return cs
}

// languagePrelude is prepended to every script of a language: the
// helpers that render results as the package documentation says.
var languagePrelude = map[string]string{
	"lua": luaPrelude,
	"go":  goPrelude,
}

// Functions returns the names of the API functions, sorted.
func Functions() []string {
	var names []string
	for _, f := range api.Funcs() {
		names = append(names, f.Name)
	}
	return names
}

// Coverage maps every API function to the cases that cover it with a
// script for engine (an empty list when none does).
func Coverage(engine string) map[string][]string {
	cov := make(map[string][]string)
	for _, name := range Functions() {
		cov[name] = []string{}
	}
	for _, c := range Cases() {
		if _, ok := c.Scripts[engine]; !ok {
			continue
		}
		for _, fn := range c.Funcs {
			if _, known := cov[fn]; known {
				cov[fn] = append(cov[fn], c.Name)
			}
		}
	}
	return cov
}

// Uncovered returns the API functions no case with a script for engine
// covers.
func Uncovered(engine string) []string {
	var out []string
	cov := Coverage(engine)
	for _, name := range slices.Sorted(maps.Keys(cov)) {
		if len(cov[name]) == 0 {
			out = append(out, name)
		}
	}
	return out
}

// Run runs every case against engines made by newEngine, one fresh engine
// per case.
func Run(t *testing.T, newEngine func() api.Engine) {
	lang := newEngine().Name()
	known := make(map[string]bool)
	for _, name := range Functions() {
		known[name] = true
	}
	for _, fn := range Uncovered(lang) {
		t.Errorf("uwsgi.%s is covered by no case with a %s script", fn, lang)
	}
	for _, c := range Cases() {
		for _, fn := range c.Funcs {
			if !known[fn] {
				t.Errorf("case %s covers uwsgi.%s, which is not an API function", c.Name, fn)
			}
		}
		t.Run(c.Name, func(t *testing.T) {
			src, ok := c.Scripts[lang]
			if !ok {
				t.Skipf("no %s script for case %s", lang, c.Name)
			}
			runCase(t, newEngine(), c, src)
		})
	}
}

var placeholderRE = regexp.MustCompile(`\{\{([A-Za-z0-9_]*)\}\}`)

// placeholders lists the placeholders the suite knows.
var placeholders = []string{"ECHO_ADDR", "ECHO_UNIX", "NODE_ADDR", "DEAD_ADDR", "HTTP_URL", "PID", "VERSION"}

// usedPlaceholders returns the placeholder names in the texts.
func usedPlaceholders(texts ...string) []string {
	var names []string
	for _, s := range texts {
		for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	return names
}

// resolve starts what the case's placeholders need and records their
// values in f.Vars.
func (f *Fixture) resolve(names []string) {
	for _, name := range names {
		switch name {
		case "ECHO_ADDR":
			f.Vars[name] = startEcho(f.T, "tcp")
		case "ECHO_UNIX":
			f.Vars[name] = startEcho(f.T, "unix")
		case "NODE_ADDR":
			f.Node = StartNode(f.T)
			f.Vars[name] = f.Node.Addr
		case "HTTP_URL":
			f.Vars[name] = startHTTP(f.T)
		case "DEAD_ADDR":
			f.Vars[name] = deadAddr(f.T)
		case "PID":
			f.Vars[name] = strconv.Itoa(os.Getpid())
		case "VERSION":
			f.Vars[name] = api.Version
		default:
			f.T.Fatalf("unknown placeholder {{%s}}", name)
		}
	}
}

func (f *Fixture) expand(s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		return f.Vars[m[2:len(m)-2]]
	})
}

// runCase runs one case against one engine.
func runCase(t *testing.T, engine api.Engine, c Case, src string) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &Fixture{T: t, Ctx: ctx, Engine: engine, Dir: t.TempDir(), Log: &LogRecorder{}, Vars: map[string]string{}, Data: map[string]any{}}
	t.Cleanup(func() {
		if t.Failed() && c.Note != "" {
			t.Logf("NOTE: %s", c.Note)
		}
		if t.Failed() {
			t.Logf("script:\n%s", numbered(f.expand(src)))
			t.Logf("log:\n%s", f.Log)
		}
	})
	state, err := api.NewState(api.StateConfig{
		Caches:   []api.CacheConfig{{Name: "default"}, {Name: "other"}},
		Hostname: "testhost",
		Options:  map[string]string{"socket": "127.0.0.1:0"},
		Logger:   slog.New(f.Log),
	})
	if err != nil {
		t.Fatalf("NewState: %v", err)
	}
	state.Alarm = f.alarm
	f.State = state
	t.Cleanup(func() { state.Close() })
	f.Registrations = api.NewRegistrations(state, f.Dir)
	t.Cleanup(func() { f.Registrations.Close(context.Background()) })

	f.resolve(usedPlaceholders(src, c.Want))
	if c.Setup != nil {
		c.Setup(f)
		if t.Failed() {
			t.FailNow()
		}
	}

	// Signals and timers are served while the script runs, and stopped
	// (their handlers finished) before the program closes.
	serveCtx, stopServing := context.WithCancel(ctx)
	var serving sync.WaitGroup
	serving.Go(func() { state.Signals.Serve(serveCtx) })
	serving.Go(func() { state.Timers.Serve(serveCtx) })
	serving.Go(func() { state.Consumers.Serve(serveCtx) })
	defer func() {
		stopServing()
		serving.Wait()
	}()

	exts := engine.Extensions()
	if len(exts) == 0 {
		t.Fatalf("engine %s has no extensions", engine.Name())
	}
	file := "case" + exts[0]
	path := filepath.Join(f.Dir, file)
	source := []byte(f.expand(src))
	if err := os.WriteFile(path, source, 0o644); err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithTimeout(ctx, loadTimeout)
	prog, err := engine.Load(lctx, f.Registrations, []api.File{{Name: file, Path: path, Source: source}})
	lcancel()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The host makes a loaded generation's registrations live this way.
	if err := f.Registrations.Commit(nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	defer func() {
		stopServing()
		serving.Wait()
		if err := prog.Close(); err != nil {
			t.Errorf("Program.Close: %v", err)
		}
	}()

	want := f.expand(c.Want)
	if c.Request {
		app := prog.Apps()["case"]
		if app == nil {
			t.Fatalf("the script defined no app %q (apps: %v)", "case", slices.Sorted(maps.Keys(prog.Apps())))
		}
		f.Got, f.Err = f.serve(app, c)
		switch {
		case c.WantErr != nil && !errors.Is(f.Err, c.WantErr):
			t.Errorf("ServeRequest returned %v, want an error matching %v", f.Err, c.WantErr)
		case c.WantErr == nil && f.Err != nil && !c.Disconnects:
			t.Errorf("ServeRequest: %v", f.Err)
		}
	} else {
		res, err := f.call(c.Concurrent, want)
		f.Got, f.Err = string(res), err
		switch {
		case c.WantErr != nil && err == nil:
			t.Errorf("t() = %q, want an error matching %v", res, c.WantErr)
		case c.WantErr != nil && !errors.Is(err, c.WantErr):
			t.Errorf("t() failed with %v (%T), want an error matching %v", err, err, c.WantErr)
		case c.WantErr == nil && errors.Is(err, api.ErrNoSuchFunction):
			t.Errorf("the script registered no RPC function %q: %v", "t", err)
		case c.WantErr == nil && err != nil:
			t.Errorf("t() failed: %v", err)
		}
	}
	if c.WantErr == nil && (c.Request || f.Err == nil) && f.Got != want {
		t.Errorf("got  %q\nwant %q", f.Got, want)
	}
	if f.Upgrader != nil {
		if got, want := f.Upgrader.Transcript(), f.expand(c.WantFrames); got != want {
			t.Errorf("websocket transcript\ngot  %s\nwant %s", got, want)
		}
	}
	if c.Check != nil {
		c.Check(f)
	}
}

// call calls "t" and returns its result. With n > 1 it makes n calls at
// once, so that engines with several VMs serve them in different ones,
// and reports every result that differs from want; the first call's
// result is returned.
func (f *Fixture) call(n int, want string) ([]byte, error) {
	n = max(n, 1)
	type result struct {
		res []byte
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		wg.Go(func() {
			cctx, _, done := api.NewScope(f.Ctx, nil, callTimeout)
			defer done()
			res, err := f.State.RPC.Call(cctx, "t")
			results[i] = result{res, err}
		})
	}
	wg.Wait()
	f.Returned = time.Now()
	f.Elapsed = f.Returned.Sub(start)
	for i, r := range results[1:] {
		if r.err != nil || string(r.res) != want {
			f.T.Errorf("concurrent call %d of t() = %q, %v; want %q", i+2, r.res, r.err, want)
		}
	}
	return results[0].res, results[0].err
}

// Call calls the script's RPC function name as the suite calls "t": in a
// scope of its own with no client connection.
func (f *Fixture) Call(name string, args ...string) (string, error) {
	cctx, _, done := api.NewScope(f.Ctx, nil, callTimeout)
	defer done()
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	res, err := f.State.RPC.Call(cctx, name, bs...)
	return string(res), err
}

// numbered prefixes the lines of src with their numbers.
func numbered(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
