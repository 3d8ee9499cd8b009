package scripthost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/gointerp"
	"github.com/scripthost/scripthost/host"
	"github.com/scripthost/scripthost/js"
	"github.com/scripthost/scripthost/lua"
)

// ErrServerClosed is returned by the Serve methods after Shutdown or Close.
var ErrServerClosed = host.ErrServerClosed

// Config configures New. The zero value serves no scripts, only Go
// functions (Host.Register), the default cache and signals, all with the
// defaults.
type Config struct {
	// Scripts is the scripts directory; empty: none. Every .lua, .js and
	// .go file in it is loaded by New (a broken one fails New), and
	// loaded again when the directory changes (see Watch).
	Scripts string
	// Watch says how changes to Scripts are followed.
	Watch Watch
	// Routes pick the app of each request (scripthost serve's --map and
	// --mount).
	Routes host.Routes
	// Caches are the caches; the first is the default one. None: one
	// cache named api.DefaultCacheName with api's defaults.
	Caches []api.CacheConfig
	// Functions are Go RPC functions registered before the scripts load,
	// so the scripts can call them from their top level. A script that
	// registers the same name replaces the Go function.
	Functions map[string]api.RPCFunc
	// Channels configures the in-process channel layer (capacity,
	// expiry, group expiry, size bounds); zero fields take api's
	// defaults.
	Channels api.ChannelConfig
	// ConsumerWorkers bounds the consumer calls run at once, over all
	// channels (0: api.DefaultConsumerWorkers).
	ConsumerWorkers int
	// Engines choose and configure the script engines.
	Engines Engines
	// Limits bound what one client can make the server do; zero fields
	// take host.DefaultLimits.
	Limits host.Limits
	// Containment bounds what the scripts can make the process do.
	Containment Containment
	// Eval, when not nil, enables raw code evaluation (modifier1 22) on
	// the listeners served with ServeEval. Nil Evaluators means every
	// engine that can evaluate.
	Eval *host.EvalConfig
	// BodyDir is where request bodies over Limits.BodyMemory are spilled
	// (unlinked at once); empty means os.TempDir().
	BodyDir string
	// Warning is the message ping replies carry (at most 80 bytes).
	Warning string
	// Outbound bounds the scripts' HTTP client (http_request, fetch,
	// resty.http): allowed addresses, time limit, response size.
	Outbound api.OutboundConfig
	// Spooler, when not nil, runs spool jobs (uwsgi.spool and modifier1
	// 17 packets) from its directories with the scripts' spooler
	// functions. Its Logger defaults to Logger.
	Spooler *api.SpoolerConfig
	// SpoolOpsOnly takes spool packets only on operations listeners.
	SpoolOpsOnly bool
	// Logger receives the host's, the engines' and the scripts' logs;
	// nil means slog.Default().
	Logger *slog.Logger
	// Options are added to what scripts see as uwsgi.opt, which holds
	// the configuration's other fields under the names of scripthost
	// serve's flags (see scriptOptions); a caller adds what Config does
	// not hold, such as the listeners ("socket").
	Options map[string]string
}

// Watch configures reloading when the scripts directory changes.
type Watch struct {
	// Disabled turns watching off: the scripts are then reloaded only by
	// Reload and by reload requests on operations listeners.
	Disabled bool
	// Debounce is the quiet time after a change before reloading
	// (default 200 ms: editors save in bursts).
	Debounce time.Duration
	// Rescan is how often the directory is compared with what was
	// loaded, in case change events were missed (default 5 s).
	Rescan time.Duration
}

// Engines choose the script engines and their options. A nil field
// leaves its engine out, except that the zero Engines means all three
// with their default options. A zero Logger or PoolWait in an engine's
// options takes Config.Logger or Containment.PoolWait.
type Engines struct {
	Lua *lua.Options      // .lua files, modifier1 6 (gopher-lua)
	JS  *js.Options       // .js files, modifier1 24 (goja)
	Go  *gointerp.Options // .go files, modifier1 11 (yaegi)
}

// Containment bounds the scripts. Zero fields take the defaults, which
// are those of scripthost serve.
type Containment struct {
	// MemoryLimit is the scripts' memory budget in bytes: near it, the
	// call that allocated most is interrupted. 0 means
	// api.DefaultMemoryLimit() (three quarters of the machine's or the
	// cgroup's memory); a negative value means no budget.
	MemoryLimit int64
	// PoolWait is the longest wait of a call for a free interpreter
	// before it fails (default: each engine's, 5 s).
	PoolWait time.Duration
	// LoadTimeout bounds the top level of each script file at load
	// (default api.DefaultLoadTimeout); a file over it fails the load.
	LoadTimeout time.Duration
	// SignalTimeout bounds each signal handler run (default
	// api.DefaultSignalTimeout).
	SignalTimeout time.Duration
	// MaxWebSockets bounds the WebSockets open at once (each holds an
	// interpreter out of its pool): past it websocket_handshake fails
	// and the request gets 503. 0 means api.DefaultMaxLongCalls; a
	// negative value means no bound.
	MaxWebSockets int
	// DrainTimeout bounds how long a replaced generation of scripts may
	// finish its calls before it is freed anyway, and how long Close
	// waits for the last one (default 30 s).
	DrainTimeout time.Duration
}

const defaultDrainTimeout = 30 * time.Second

// Host serves a scripts directory and Go functions over the uwsgi
// protocol (and plain HTTP with ServePlainHTTP). Make one with New; its
// methods are safe for concurrent use.
type Host struct {
	state    *api.State
	srv      *host.Server
	reloader *host.Reloader
	watch    Watch
	drain    time.Duration
	scripts  bool

	watchCtx  context.Context // done once the host stops
	stopWatch context.CancelFunc
	watching  sync.WaitGroup

	mu      sync.Mutex // guards what follows and the start of the watch
	watched bool       // the watch was started
	https   map[*http.Server]struct{}

	released    atomic.Bool
	releaseOnce sync.Once
	releaseErr  error
}

// New builds a host from cfg and loads its scripts; nothing is served
// until a Serve method is called. It fails on an invalid configuration,
// a missing scripts directory or a script that does not load.
func New(cfg Config) (*Host, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	memory := cfg.Containment.MemoryLimit
	if memory == 0 {
		memory = api.DefaultMemoryLimit()
	}
	state, err := api.NewState(api.StateConfig{Caches: cfg.Caches, Logger: log, MemoryLimit: max(memory, 0),
		MaxLongCalls: cfg.Containment.MaxWebSockets, Options: scriptOptions(cfg), Outbound: cfg.Outbound,
		Channels: cfg.Channels})
	if err != nil {
		return nil, fmt.Errorf("scripthost: %w", err)
	}
	state.Signals.HandlerTimeout = cfg.Containment.SignalTimeout
	state.Consumers.Workers = cfg.ConsumerWorkers
	for _, name := range slices.Sorted(maps.Keys(cfg.Functions)) {
		if err := state.RPC.Register(name, cfg.Functions[name]); err != nil {
			state.Close()
			return nil, fmt.Errorf("scripthost: %w", err)
		}
	}

	if cfg.Spooler != nil {
		sc := *cfg.Spooler
		if sc.Logger == nil {
			sc.Logger = log
		}
		if sc.Hostname == "" {
			sc.Hostname = state.Hostname
		}
		if state.Spooler, err = api.NewSpooler(sc); err != nil {
			state.Close()
			return nil, fmt.Errorf("scripthost: %w", err)
		}
	}

	srv := host.NewServer(state)
	srv.Logger = log
	srv.SpoolOpsOnly = cfg.SpoolOpsOnly
	srv.Limits = cfg.Limits
	srv.BodyDir = cfg.BodyDir
	srv.Warning = cfg.Warning
	engines := cfg.Engines.build(log, cfg.Containment.PoolWait)
	if cfg.Eval != nil {
		if err := enableEval(srv, *cfg.Eval, engines); err != nil {
			state.Close()
			return nil, fmt.Errorf("scripthost: %w", err)
		}
	}
	drain := cfg.Containment.DrainTimeout
	if drain <= 0 {
		drain = defaultDrainTimeout
	}
	h := &Host{state: state, srv: srv, watch: cfg.Watch, drain: drain, scripts: cfg.Scripts != "",
		https: map[*http.Server]struct{}{}}
	h.reloader = &host.Reloader{Server: srv, Dir: cfg.Scripts, Engines: engines, Routes: cfg.Routes,
		Logger: log, DrainTimeout: drain, LoadTimeout: cfg.Containment.LoadTimeout}
	srv.HandleReloads(h.reloader)
	h.watchCtx, h.stopWatch = context.WithCancel(context.Background())
	if h.scripts {
		if err := h.load(); err != nil {
			state.Close()
			return nil, err
		}
	}
	return h, nil
}

// scriptOptions is uwsgi.opt: the options the host was given, under the
// names of scripthost serve's flags, as uWSGI's Python plugin gives the
// options uWSGI was started with. Fields left zero (defaults) and those
// of several values (caches, routes) are left out; cfg.Options is added.
func scriptOptions(cfg Config) map[string]string {
	opts := map[string]string{}
	num := func(name string, n int64) {
		if n != 0 {
			opts[name] = strconv.FormatInt(n, 10)
		}
	}
	dur := func(name string, d time.Duration) {
		if d != 0 {
			opts[name] = d.String()
		}
	}
	str := func(name, s string) {
		if s != "" {
			opts[name] = s
		}
	}
	str("scripts", cfg.Scripts)
	if cfg.Scripts != "" {
		opts["watch"] = strconv.FormatBool(!cfg.Watch.Disabled)
	}
	dur("watch-debounce", cfg.Watch.Debounce)
	dur("watch-rescan", cfg.Watch.Rescan)
	l := cfg.Limits
	num("max-packet", int64(l.MaxPacket))
	num("max-vars", int64(l.MaxVars))
	num("max-conns", int64(l.MaxConns))
	num("max-rpc-args", int64(l.MaxRPCArgs))
	dur("header-timeout", l.HeaderTimeout)
	dur("idle-timeout", l.IdleTimeout)
	dur("body-timeout", l.BodyTimeout)
	dur("body-deadline", l.BodyDeadline)
	num("body-memory", l.BodyMemory)
	num("max-body", l.MaxBody)
	dur("write-timeout", l.WriteTimeout)
	dur("call-timeout", l.CallTimeout)
	c := cfg.Containment
	num("memory-limit", max(c.MemoryLimit, 0)) // negative: none, serve's 0
	if c.MemoryLimit < 0 {
		opts["memory-limit"] = "0"
	}
	dur("pool-wait", c.PoolWait)
	num("max-websockets", int64(max(c.MaxWebSockets, 0))) // negative: none, serve's 0
	if c.MaxWebSockets < 0 {
		opts["max-websockets"] = "0"
	}
	dur("load-timeout", c.LoadTimeout)
	dur("signal-timeout", c.SignalTimeout)
	dur("shutdown-timeout", c.DrainTimeout)
	if e := cfg.Engines; e.Lua != nil {
		num("lua-pool", int64(e.Lua.PoolSize))
	}
	if e := cfg.Engines; e.JS != nil {
		num("js-pool", int64(e.JS.PoolSize))
	}
	if e := cfg.Engines; e.Go != nil {
		num("go-pool", int64(e.Go.PoolSize))
	}
	num("channel-capacity", int64(cfg.Channels.Capacity))
	dur("channel-expiry", cfg.Channels.Expiry)
	dur("group-expiry", cfg.Channels.GroupExpiry)
	num("consumer-workers", int64(cfg.ConsumerWorkers))
	str("body-dir", cfg.BodyDir)
	str("warning", cfg.Warning)
	maps.Copy(opts, cfg.Options)
	return opts
}

// load loads the scripts for the first time: a host never starts with
// part of them.
func (h *Host) load() error {
	if _, err := os.Stat(h.reloader.Dir); err != nil {
		return fmt.Errorf("scripthost: scripts directory: %w", err)
	}
	return h.reloader.Reload(context.Background(), false)
}

// build returns the engines e enables, in the order their files load.
func (e Engines) build(log *slog.Logger, poolWait time.Duration) []api.Engine {
	if e == (Engines{}) {
		e = Engines{Lua: &lua.Options{}, JS: &js.Options{}, Go: &gointerp.Options{}}
	}
	var engines []api.Engine
	if e.Lua != nil {
		o := *e.Lua
		o.Logger, o.PoolWait = cmp.Or(o.Logger, log), cmp.Or(o.PoolWait, poolWait)
		engines = append(engines, lua.New(o))
	}
	if e.JS != nil {
		o := *e.JS
		o.Logger, o.PoolWait = cmp.Or(o.Logger, log), cmp.Or(o.PoolWait, poolWait)
		engines = append(engines, js.New(o))
	}
	if e.Go != nil {
		o := *e.Go
		o.Logger, o.PoolWait = cmp.Or(o.Logger, log), cmp.Or(o.PoolWait, poolWait)
		engines = append(engines, gointerp.New(o))
	}
	return engines
}

// enableEval turns raw code evaluation on, by default with every engine
// that can evaluate.
func enableEval(srv *host.Server, ec host.EvalConfig, engines []api.Engine) error {
	if ec.Evaluators == nil {
		ec.Evaluators = map[uwsgi.Modifier]api.Evaluator{}
		for _, e := range engines {
			if ev, ok := e.(api.Evaluator); ok {
				ec.Evaluators[e.Modifier()] = ev
			}
		}
	}
	return srv.EnableEval(ec)
}

// State returns the state the host shares with its scripts: the RPC
// registry, the caches, signals, timers, the memory budget and the
// containment counters.
func (h *Host) State() *api.State { return h.state }

// Register makes fn callable as an RPC function named name, by scripts
// (uwsgi.call) and clients alike, replacing any function of that name.
func (h *Host) Register(name string, fn api.RPCFunc) error {
	return h.state.RPC.Register(name, fn)
}

// Call calls the RPC function name (a script's or a Go one) in this
// process, as uwsgi.call does.
func (h *Host) Call(ctx context.Context, name string, args ...[]byte) ([]byte, error) {
	return h.state.RPC.Call(h.srv.Context(ctx), name, args...)
}

// Cache returns the named cache, or the default one for "".
func (h *Host) Cache(name string) (*api.Cache, error) {
	if name == "" {
		return h.state.Caches.Default(), nil
	}
	return h.state.Caches.Cache(name)
}

// Reload loads the scripts directory into a new generation and swaps it
// in; on failure the serving generation stays. ctx bounds the wait for a
// reload already under way.
func (h *Host) Reload(ctx context.Context) error {
	if !h.scripts {
		return errors.New("scripthost: no scripts directory to reload")
	}
	if h.released.Load() {
		return ErrServerClosed
	}
	return h.reloader.Reload(ctx, false)
}

// Status says which generation of scripts serves and how the last reload
// went.
func (h *Host) Status() host.ReloadStatus { return h.reloader.Status() }

// Serve serves the uwsgi protocol on l until Shutdown or Close; it then
// returns ErrServerClosed. Serve takes ownership of l.
func (h *Host) Serve(l net.Listener) error {
	h.startWatch()
	return h.srv.Serve(l)
}

// ListenAndServe listens on addr, "host:port" or a unix socket path (see
// host.Listen), and serves it with Serve.
func (h *Host) ListenAndServe(addr string) error {
	l, err := host.Listen(addr)
	if err != nil {
		return err
	}
	return h.Serve(l)
}

// ServeOps is Serve for an operations listener, which also takes the
// operator's reload and status requests (modifier1 97, 98, 99). Give it a
// unix socket only the operator can reach.
func (h *Host) ServeOps(l net.Listener) error {
	h.startWatch()
	return h.srv.ServeOps(l)
}

// ServeEval is ServeOps for a listener that also runs raw code (modifier1
// 22); Config.Eval must have enabled it.
func (h *Host) ServeEval(l net.Listener) error {
	h.startWatch()
	return h.srv.ServeEval(l)
}

// ServePlainHTTP serves the scripts' apps over plain HTTP/1.1 on l, for
// trying them without nginx, until Shutdown or Close; it then returns
// ErrServerClosed.
func (h *Host) ServePlainHTTP(l net.Listener) error {
	hs := h.srv.NewHTTPServer(&host.HTTPFront{Server: h.srv})
	h.mu.Lock()
	if h.watchCtx.Err() != nil {
		h.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	h.https[hs] = struct{}{}
	h.mu.Unlock()
	h.startWatch()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		err = ErrServerClosed
	}
	return err
}

// startWatch starts following the scripts directory once the host serves.
func (h *Host) startWatch() {
	if !h.scripts || h.watch.Disabled {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watched || h.watchCtx.Err() != nil {
		return // started, or the host stopped before it served
	}
	h.watched = true
	h.watching.Go(func() {
		if err := h.reloader.Watch(h.watchCtx, h.watch.Debounce, h.watch.Rescan); err != nil {
			h.srv.Logger.Error("watching the scripts directory stopped", "err", err)
		}
	})
}

// plainHTTP returns the plain HTTP servers, taken from the host once it
// stops.
func (h *Host) plainHTTP() []*http.Server {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopWatch()
	servers := slices.Collect(maps.Keys(h.https))
	clear(h.https)
	return servers
}

// Shutdown stops accepting, waits until the requests in flight have
// finished, then frees the scripts and the state, all within ctx. When
// ctx ends first, its error is returned and Close ends what remains.
func (h *Host) Shutdown(ctx context.Context) error {
	for _, hs := range h.plainHTTP() {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		return err
	}
	return h.release(ctx)
}

// Close closes every listener and connection at once (requests in flight
// see their context cancelled), then frees the scripts, waiting at most
// Containment.DrainTimeout for their calls to end, and the state.
func (h *Host) Close() error {
	for _, hs := range h.plainHTTP() {
		hs.Close()
	}
	h.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), h.drain)
	defer cancel()
	return h.release(ctx)
}

// release stops the watch and frees the generations of scripts and the
// state, once.
func (h *Host) release(ctx context.Context) error {
	h.releaseOnce.Do(func() {
		h.released.Store(true)
		watched := make(chan struct{})
		go func() { h.watching.Wait(); close(watched) }()
		select {
		case <-watched:
		case <-ctx.Done():
			h.srv.Logger.Warn("a scripts reload still runs; freeing the scripts without it")
		}
		var spoolErr error
		if h.state.Spooler != nil {
			// Running jobs finish first: they hold their generation.
			spoolErr = h.state.Spooler.Close(ctx)
		}
		h.releaseErr = errors.Join(spoolErr, h.reloader.Close(ctx), h.state.Close())
	})
	return h.releaseErr
}
