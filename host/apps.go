package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// Routes say which app serves an HTTP-style request. An app is picked by,
// in order: the request's UWSGI_APPID var (an app name); a mount point
// matching the start of PATH_INFO (SCRIPT_NAME becomes the mount point and
// PATH_INFO the rest, like uWSGI's --manage-script-name) or a mount point
// equal to SCRIPT_NAME; the app mapped to the request's modifier1; the
// default app of the engine whose modifier1 it is. Modifier1 0 (nginx's
// default) also falls back to the default app when only one engine has
// apps.
type Routes struct {
	Map    map[uwsgi.Modifier]string // modifier1 -> app name
	Mounts map[string]string         // path prefix -> app name
}

// ParseMap parses a --map value "MOD1=APP".
func ParseMap(s string) (uwsgi.Modifier, string, error) {
	mod, app, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(mod)
	if !ok || err != nil || n < 0 || n > 255 || app == "" {
		return 0, "", fmt.Errorf("host: bad mapping %q (want MODIFIER1=APP, e.g. 0=app)", s)
	}
	return uwsgi.Modifier(n), app, nil
}

// ParseMount parses a --mount value "/PATH=APP".
func ParseMount(s string) (string, string, error) {
	path, app, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(path, "/") || app == "" {
		return "", "", fmt.Errorf("host: bad mount %q (want /PATH=APP, e.g. /api=api)", s)
	}
	return strings.TrimRight(path, "/"), app, nil
}

// AppInfo is one app of a generation.
type AppInfo struct {
	Name   string  // the file's name without its extension: "hello" for hello.lua
	Engine string  // the engine's Name
	File   string  // the script file, relative to the scripts directory
	App    api.App // serves its requests
	mod    uwsgi.Modifier
}

// Generation is everything loaded from the scripts directory at once: the
// engines' programs, their apps and what they registered.
type Generation struct {
	ID            int64              // counts generations from 1 in this process
	Dir           string             // the scripts directory it was loaded from
	Registrations *api.Registrations // what its scripts registered
	Programs      []api.Program      // one per engine that had files
	Apps          []AppInfo          // engine by engine, by name within one
	Files         []string           // the script files, relative to Dir
	LoadedAt      time.Time          // when it was loaded

	// socketFile is the file whose consumers take WebSockets (see
	// addConsumerApps), "" when none.
	socketFile string

	wsMu   sync.Mutex
	wsOpen int           // open WebSockets served by the generation
	wsIdle chan struct{} // closed when wsOpen drops to 0, if waited for
}

var genCounter atomic.Int64

// LoadScripts loads every file of dir whose extension an engine claims,
// each engine getting its files in name order. Files in subdirectories are
// modules for require, not loaded on their own. The first broken script
// fails the whole load. What the scripts register is staged: it goes live
// when SetScripts installs the generation.
func LoadScripts(ctx context.Context, state *api.State, dir string, engines []api.Engine) (*Generation, error) {
	return loadScripts(ctx, state, dir, engines, 0)
}

// loadScripts is LoadScripts with a load timeout per file (0: the default).
func loadScripts(ctx context.Context, state *api.State, dir string, engines []api.Engine, loadTimeout time.Duration) (*Generation, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("host: scripts directory: %w", err)
	}
	env := api.NewRegistrations(state, dir)
	env.LoadTimeout = loadTimeout
	gen := &Generation{ID: genCounter.Add(1), Dir: dir, Registrations: env, LoadedAt: time.Now()}
	for _, eng := range engines {
		var files []api.File
		for _, e := range entries {
			if e.IsDir() || !slices.Contains(eng.Extensions(), filepath.Ext(e.Name())) || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			src, err := os.ReadFile(path)
			if err != nil {
				gen.Close(ctx)
				return nil, fmt.Errorf("host: reading script: %w", err)
			}
			files = append(files, api.File{Name: e.Name(), Path: path, Source: src})
		}
		if len(files) == 0 {
			continue
		}
		prog, err := eng.Load(ctx, env, files)
		if err != nil {
			gen.Close(ctx)
			return nil, err
		}
		for _, f := range files {
			gen.Files = append(gen.Files, f.Name)
		}
		gen.Programs = append(gen.Programs, prog)
		names := make([]string, 0)
		for name := range prog.Apps() {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			gen.Apps = append(gen.Apps, AppInfo{Name: name, Engine: eng.Name(), File: name + eng.Extensions()[0],
				App: prog.Apps()[name], mod: eng.Modifier()})
		}
	}
	addConsumerApps(gen, engines)
	return gen, nil
}

// Close stops the generation's timers, waits (until ctx is done) for the
// calls still running in it, then frees its programs. A generation that
// was never made live can be closed at once. A generation serving open
// WebSockets is freed only once they are closed, whatever ctx says: a
// reload never drops a socket.
func (g *Generation) Close(ctx context.Context) error {
	drainErr := g.Registrations.Close(ctx)
	if sockets := g.socketsClosed(); drainErr != nil {
		select {
		case <-sockets:
		default:
			// The calls still running include sockets: wait for them,
			// then give the others a moment more.
			<-sockets
			late, cancel := context.WithTimeout(context.Background(), time.Second)
			drainErr = g.Registrations.Close(late)
			cancel()
		}
	}
	var errs []error
	if drainErr != nil {
		errs = append(errs, fmt.Errorf("host: generation %d still had calls running: %w", g.ID, drainErr))
	}
	for _, p := range g.Programs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// router is an immutable lookup table built from a generation and Routes.
type router struct {
	gen      *Generation
	byName   map[string][]*AppInfo
	byMod    map[uwsgi.Modifier]*AppInfo
	fallback *AppInfo // modifier1 0 and the HTTP front
	mounts   []mount  // longest first
}

type mount struct {
	prefix string
	app    *AppInfo
}

// newRouter resolves routes against gen's apps; a route naming a missing
// app is an error.
func newRouter(gen *Generation, routes Routes) (*router, error) {
	r := &router{gen: gen, byName: map[string][]*AppInfo{}, byMod: map[uwsgi.Modifier]*AppInfo{}}
	perMod := map[uwsgi.Modifier][]*AppInfo{}
	for i := range gen.Apps {
		a := &gen.Apps[i]
		r.byName[a.Name] = append(r.byName[a.Name], a)
		perMod[a.mod] = append(perMod[a.mod], a)
	}
	// An engine's default app: the one named "app", else its only app.
	for mod, apps := range perMod {
		for _, a := range apps {
			if a.Name == "app" {
				r.byMod[mod] = a
			}
		}
		if r.byMod[mod] == nil && len(apps) == 1 {
			r.byMod[mod] = apps[0]
		}
	}
	if len(perMod) == 1 {
		for mod := range perMod {
			r.fallback = r.byMod[mod]
		}
	} else {
		for _, a := range gen.Apps {
			if a.Name == "app" && r.fallback == nil {
				r.fallback = r.pick(a.Name, 0)
			}
		}
	}
	for mod, name := range routes.Map {
		a := r.pick(name, mod)
		if a == nil {
			return nil, fmt.Errorf("host: --map %d=%s: no app named %q", mod, name, name)
		}
		r.byMod[mod] = a
		if mod == 0 {
			r.fallback = a
		}
	}
	for prefix, name := range routes.Mounts {
		a := r.pick(name, 0)
		if a == nil {
			return nil, fmt.Errorf("host: --mount %s=%s: no app named %q", prefix, name, name)
		}
		r.mounts = append(r.mounts, mount{prefix: prefix, app: a})
	}
	sort.Slice(r.mounts, func(i, j int) bool { return len(r.mounts[i].prefix) > len(r.mounts[j].prefix) })
	return r, nil
}

// claims reports whether requests of modifier mod are meant for apps
// (an engine's modifier, a mapped one, or 0 and 30 with a default app),
// so a missing app is an error rather than an unsupported modifier.
func (r *router) claims(mod uwsgi.Modifier) bool {
	if _, ok := r.byMod[mod]; ok {
		return true
	}
	for _, a := range r.gen.Apps {
		if a.mod == mod {
			return true
		}
	}
	return (mod == 0 || mod == uwsgi.ModWSGIStripped) && r.fallback != nil
}

// pick finds the app called name, preferring the engine of modifier mod
// when several engines define that name.
func (r *router) pick(name string, mod uwsgi.Modifier) *AppInfo {
	apps := r.byName[name]
	for _, a := range apps {
		if a.mod == mod {
			return a
		}
	}
	if len(apps) > 0 {
		return apps[0]
	}
	return nil
}

// route picks the app for a request and, for mounts and modifier1 30,
// rewrites SCRIPT_NAME/PATH_INFO in vars.
func (r *router) route(mod uwsgi.Modifier, vars uwsgi.Vars) (*AppInfo, uwsgi.Vars) {
	if id := vars.Get("UWSGI_APPID"); id != "" {
		if a := r.pick(id, mod); a != nil {
			return a, vars
		}
		for _, m := range r.mounts {
			if m.prefix == id {
				return m.app, vars
			}
		}
	}
	path := vars.Get("PATH_INFO")
	script := vars.Get("SCRIPT_NAME")
	for _, m := range r.mounts {
		if script == m.prefix && script != "" {
			return m.app, vars
		}
		if path == m.prefix || strings.HasPrefix(path, m.prefix+"/") {
			vars = append(vars, uwsgi.Var{Key: []byte("SCRIPT_NAME"), Value: []byte(m.prefix)},
				uwsgi.Var{Key: []byte("PATH_INFO"), Value: []byte(path[len(m.prefix):])})
			return m.app, vars
		}
	}
	if mod == uwsgi.ModWSGIStripped && script != "" && strings.HasPrefix(path, script) {
		vars = append(vars, uwsgi.Var{Key: []byte("PATH_INFO"), Value: []byte(path[len(script):])})
	}
	if a := r.byMod[mod]; a != nil {
		return a, vars
	}
	if mod == 0 || mod == uwsgi.ModWSGIStripped {
		return r.fallback, vars
	}
	return nil, vars
}

// SetScripts makes gen the generation that serves: its registrations
// replace those of the generation serving so far (in one step), then its
// apps take over new requests, with routes. Requests already running
// finish with the generation they started with. It returns the generation
// it replaced (nil the first time), which the caller closes to drain it.
func (s *Server) SetScripts(gen *Generation, routes Routes) (*Generation, error) {
	s.init()
	r, err := newRouter(gen, routes)
	if err != nil {
		return nil, err
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	old := s.router.Load()
	var prevEnv *api.Registrations
	if old != nil {
		prevEnv = old.gen.Registrations
	}
	if err := gen.Registrations.Commit(prevEnv); err != nil {
		return nil, err
	}
	s.router.Store(r)
	if old == nil {
		return nil, nil
	}
	return old.gen, nil
}

// acquireRouter returns the router serving now with its generation held
// open for one request; release it with r.gen.Registrations.Release. Nil when no
// scripts are loaded or the last generation was closed.
func (s *Server) acquireRouter() *router {
	for {
		rt := s.router.Load()
		if rt == nil {
			return nil
		}
		if rt.gen.Registrations.Acquire() {
			return rt
		}
		if s.router.Load() == rt {
			return nil // closed without a successor (shutting down)
		}
	}
}

// Generation returns the generation serving requests, or nil.
func (s *Server) Generation() *Generation {
	if r := s.router.Load(); r != nil {
		return r.gen
	}
	return nil
}

// serveApp serves an HTTP-style request with the app the routes pick.
func (s *Server) serveApp(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	if len(r.Payload) == 0 {
		s.log.Info("empty request", "modifier1", r.Modifier1, "remote", r.RemoteAddr)
		return Close
	}
	vars, err := r.Vars(r.c.vars[:0])
	if err != nil {
		s.log.Info("invalid request vars: dropped", "modifier1", r.Modifier1, "remote", r.RemoteAddr, "err", err)
		return Close
	}
	rt := s.acquireRouter()
	var app *AppInfo
	if rt != nil {
		defer rt.gen.Registrations.Release()
		app, vars = rt.route(r.Modifier1, vars)
	}
	r.c.vars = vars[:0]
	proto := vars.Get("SERVER_PROTOCOL")
	if app == nil && (rt == nil || !rt.claims(r.Modifier1)) {
		s.log.Warn("unavailable modifier requested", "modifier1", r.Modifier1, "remote", r.RemoteAddr)
		return Close
	}
	if app == nil {
		s.log.Warn("no app for request", "modifier1", r.Modifier1, "path", vars.Get("PATH_INFO"), "remote", r.RemoteAddr)
		writeAppError(w, proto, 500, "no application found for this request")
		return Close
	}
	n := uwsgi.ParseContentLength(mustLookup(vars, "CONTENT_LENGTH"))
	defer r.c.body.release()
	if !s.readBody(w, r, proto, n) {
		return Close
	}
	resp := newRawResponse(w, proto)
	ctx, _, done := api.NewScope(ctx, &clientConn{c: r.c}, s.lim.CallTimeout)
	defer done()
	var up *upgrader
	if isUpgrade(vars) {
		up = s.packetUpgrader(r.c, rt.gen, vars, resp)
		ctx = api.WithUpgrader(ctx, up)
	}
	req := &api.Request{Modifier1: r.Modifier1, Modifier2: r.Modifier2, Vars: vars, Body: &r.c.body}
	err = s.runApp(ctx, rt.gen, app, resp, req, up, func() (<-chan struct{}, func()) { return watchClient(r.c) })
	if errors.Is(err, errClientGone) {
		s.log.Info("client left before the consumer answered", "app", app.Name, "path", vars.Get("PATH_INFO"), "remote", r.RemoteAddr)
		return Close
	}
	if up != nil && up.Socket() != nil {
		failed := socketFailed(err)
		if failed {
			s.log.Error("app failed", "app", app.Name, "engine", app.Engine, "path", vars.Get("PATH_INFO"), "err", err)
		}
		up.finish(failed)
		return Close
	}
	if err != nil {
		if s.clientLeft(err, resp.err, nil) {
			s.log.Info("client left before the response was complete", "app", app.Name,
				"path", vars.Get("PATH_INFO"), "remote", r.RemoteAddr, "err", err)
			return Close
		}
		if errors.Is(err, api.ErrTooManyWebSockets) && !resp.HeaderSent() {
			s.log.Warn("websocket refused: too many open", "app", app.Name, "max", s.State.LongCalls.Max(), "remote", r.RemoteAddr)
			writeAppError(w, proto, 503, "Service Unavailable")
			return Close
		}
		s.log.Error("app failed", "app", app.Name, "engine", app.Engine, "path", vars.Get("PATH_INFO"), "err", err)
		if !resp.HeaderSent() {
			writeAppError(w, proto, 500, "Internal Server Error")
		}
	}
	return Close
}

// clientLeft reports whether an app's error only says that its client
// went away, which is no failure of the app: a write to the client
// failed (writeErr), the connection was reset or closed under it, or the
// client's context (clientCtx, nil when there is none) was cancelled
// while the server itself was not shutting down.
func (s *Server) clientLeft(err, writeErr error, clientCtx context.Context) bool {
	if writeErr != nil {
		return true
	}
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return true
	}
	return clientCtx != nil && clientCtx.Err() != nil && s.base.Err() == nil
}

// readBody reads the request body of n bytes into r.c.body before the app
// runs. It reports false, having answered or logged, when the request
// must end: a body over the limit (413), or a client too slow or gone.
func (s *Server) readBody(w *PacketWriter, r *Packet, proto string, n int64) bool {
	c := r.c
	if s.lim.MaxBody > 0 && n > s.lim.MaxBody {
		s.log.Warn("request body too large: refused", "content_length", n, "max", s.lim.MaxBody, "remote", r.RemoteAddr)
		writeAppError(w, proto, 413, "Request Entity Too Large")
		return false
	}
	if n == 0 {
		return true
	}
	if int64(c.br.Buffered()) >= n {
		// It came with the packet: read it where it is.
		mem, _ := c.br.Peek(int(n))
		c.body = requestBody{mem: mem, size: n, br: c.br, owed: int(n)}
		return true
	}
	src := bodySource{r: c.br, setDeadline: c.nc.SetReadDeadline, perRead: s.lim.BodyTimeout,
		until: time.Now().Add(s.lim.BodyDeadline)}
	err := c.body.fill(src, n, s.lim.BodyMemory, s.lim.MaxBody, s.BodyDir, c.bodyBuf)
	if c.body.file == nil && cap(c.body.mem) <= maxBodyScratch {
		c.bodyBuf = c.body.mem[:0]
	}
	if err != nil {
		s.logBodyError(err, n, r.RemoteAddr)
		return false
	}
	return true
}

// maxBodyScratch is the largest body buffer a connection keeps for its
// next request.
const maxBodyScratch = 64 << 10

func (s *Server) logBodyError(err error, n int64, remote net.Addr) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Warn("client too slow: request body not received in time; connection closed",
			"content_length", n, "body_timeout", s.lim.BodyTimeout, "body_deadline", s.lim.BodyDeadline, "remote", remote)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		s.log.Info("client left before sending the whole request body", "content_length", n, "remote", remote)
	default:
		s.log.Error("request body not read; connection closed", "content_length", n, "remote", remote, "err", err)
	}
}

func mustLookup(vs uwsgi.Vars, key string) []byte {
	v, _ := vs.Lookup(key)
	return v
}

// writeAppError answers a request whose app could not run.
func writeAppError(w *PacketWriter, proto string, code int, msg string) {
	w.WriteString(StatusLine(proto, code))
	w.WriteString("Content-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(msg)+1) + "\r\n\r\n")
	w.WriteString(msg + "\n")
}
