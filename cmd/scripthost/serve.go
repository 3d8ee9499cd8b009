package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scripthost/scripthost"
	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type serveConfig struct {
	sockets         listFlag
	opsSockets      listFlag
	evalSockets     listFlag
	evalKey         string
	evalTimeout     time.Duration
	watch           bool
	debounce        time.Duration
	rescan          time.Duration
	https           listFlag
	scripts         string
	scriptsSet      bool
	maps            listFlag
	mounts          listFlag
	caches          listFlag
	limits          host.Limits
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
	warning         string
	procs           string
	supervise       bool
	// containment
	bodyDir       string
	bodyMemory    sizeFlag
	maxBody       sizeFlag
	wsMaxMessage  sizeFlag
	wsSendQueue   sizeFlag
	signalTimeout time.Duration
	spooler       spoolerFlags
	outbound      listFlag
	outboundTime  time.Duration
	outboundMax   sizeFlag
	channels      api.ChannelConfig
	consumers     int
	loadTimeout   time.Duration
	memoryLimit   sizeFlag
	maxWebSockets int
	pools         poolConfig
}

// sizeFlag is a byte size flag: a number with an optional K, M, G or T.
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }
func (f *sizeFlag) Set(v string) error {
	n, err := api.ParseSize(v)
	*f = sizeFlag(n)
	return err
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	cfg := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := host.DefaultLimits
	fs.Var(&cfg.sockets, "socket", "uwsgi listener: host:port or a unix socket path (repeatable; default 127.0.0.1:3031)")
	fs.Var(&cfg.https, "http", "plain HTTP/1.1 listener serving the scripts' apps without nginx, host:port (repeatable)")
	fs.Var(&cfg.opsSockets, "ops-socket", "operations listener for reload and status requests (modifier1 97, 98, 99): a unix socket path (created with mode 0600) or host:port (repeatable)")
	fs.Var(&cfg.evalSockets, "eval-socket", "operations listener that also serves raw code evaluation (modifier1 22; off without this flag): a unix socket path (created with mode 0600) or host:port (repeatable)")
	fs.StringVar(&cfg.evalKey, "eval-key", "", "file holding the key every eval request must be signed with (HMAC-SHA256, at least 16 bytes; one trailing newline is ignored)")
	fs.DurationVar(&cfg.evalTimeout, "eval-timeout", host.DefaultEvalTimeout, "time limit of each eval")
	fs.StringVar(&cfg.scripts, "scripts", "scripts", "scripts directory: every .lua and .js file in it is loaded")
	fs.BoolVar(&cfg.watch, "watch", true, "reload the scripts when the directory changes")
	fs.DurationVar(&cfg.debounce, "watch-debounce", 200*time.Millisecond, "quiet time after a change before reloading (editors save in bursts)")
	fs.DurationVar(&cfg.rescan, "watch-rescan", 5*time.Second, "how often to rescan the directory in case change events were missed")
	fs.Var(&cfg.maps, "map", "serve modifier1 MOD with app APP: MOD=APP, e.g. 0=app for nginx's default modifier (repeatable)")
	fs.Var(&cfg.mounts, "mount", "serve requests under a path with an app: /PATH=APP; SCRIPT_NAME becomes /PATH (repeatable)")
	fs.Var(&cfg.caches, "cache", "a cache, uWSGI --cache2 style: name=NAME,items=N,blocksize=BYTES,keysize=BYTES,maxbytes=SIZE, store=FILE (a journal), backend=redis://HOST:PORT/DB (shared by every node on it; prefix=, require=true) (repeatable; the first is the default cache; default name=default)")
	fs.IntVar(&cfg.limits.MaxPacket, "max-packet", d.MaxPacket, "largest packet payload (vars block, RPC array) accepted, bytes (uWSGI's buffer-size)")
	fs.IntVar(&cfg.limits.MaxVars, "max-vars", d.MaxVars, "most key/value pairs in a request's vars block")
	fs.IntVar(&cfg.limits.MaxConns, "max-conns", d.MaxConns, "most connections served at once; more wait in the listen backlog")
	fs.IntVar(&cfg.limits.MaxRPCArgs, "max-rpc-args", d.MaxRPCArgs, "most arguments passed to an RPC function (at most 254)")
	fs.DurationVar(&cfg.limits.HeaderTimeout, "header-timeout", d.HeaderTimeout, "time allowed to receive a packet (uWSGI's socket-timeout)")
	fs.DurationVar(&cfg.limits.IdleTimeout, "idle-timeout", d.IdleTimeout, "time a kept connection may wait for its next packet")
	fs.DurationVar(&cfg.limits.BodyTimeout, "body-timeout", d.BodyTimeout, "time allowed for each read of a request body")
	fs.DurationVar(&cfg.limits.BodyDeadline, "body-deadline", d.BodyDeadline, "time allowed for a whole request body; it is read before the app runs, and a client slower than this is disconnected")
	cfg.bodyMemory, cfg.maxBody = sizeFlag(d.BodyMemory), sizeFlag(d.MaxBody)
	fs.Var(&cfg.bodyMemory, "body-memory", "largest request body held in memory (SIZE: bytes, or with K, M, G); larger ones go to an unlinked temporary file")
	fs.Var(&cfg.maxBody, "max-body", "largest request body accepted, SIZE; larger ones get 413 (0: no limit; uWSGI's limit-post)")
	fs.StringVar(&cfg.bodyDir, "body-dir", "", "directory for request bodies over --body-memory (default: the system's temporary directory)")
	fs.DurationVar(&cfg.signalTimeout, "signal-timeout", api.DefaultSignalTimeout, "time limit of each signal handler run")
	fs.Var(&cfg.outbound, "outbound-allow", "what scripts' HTTP requests (fetch, resty.http, http_request) may reach: a host name, *.domain, an IP address or a CIDR prefix (repeatable; default: everything but link-local and cloud metadata addresses)")
	fs.DurationVar(&cfg.outboundTime, "outbound-timeout", api.DefaultOutboundTimeout, "time limit of each HTTP request of a script (the call's deadline also applies)")
	fs.Var(&cfg.outboundMax, "outbound-max-response", "largest response body a script's HTTP request accepts, SIZE (default 16M)")
	fs.Var(&cfg.spooler.dirs, "spooler", "spool directory: jobs of uwsgi.spool and of spool packets (modifier1 17) are stored there durably and run by the scripts' spooler functions (repeatable; the first is the default)")
	fs.IntVar(&cfg.spooler.workers, "spooler-workers", api.DefaultSpoolWorkers, "spool jobs run at once, over all spool directories")
	fs.DurationVar(&cfg.spooler.frequency, "spooler-frequency", api.DefaultSpoolFrequency, "how often spool directories are scanned for jobs whose time came, and how long a job answered with SPOOL_RETRY waits")
	fs.IntVar(&cfg.spooler.maxAttempts, "spooler-max-attempts", api.DefaultSpoolMaxAttempts, "failures (errors) of a spool job before it moves to the directory's failed/ folder")
	fs.DurationVar(&cfg.spooler.backoff, "spooler-backoff", api.DefaultSpoolBackoff, "wait after a spool job's first failure, doubling with each")
	fs.DurationVar(&cfg.spooler.timeout, "spooler-harakiri", time.Minute, "time limit of each spool job run (0: none)")
	fs.BoolVar(&cfg.spooler.opsOnly, "spooler-ops-only", false, "take spool packets (modifier1 17) only on operations listeners")
	fs.IntVar(&cfg.channels.Capacity, "channel-capacity", api.DefaultChannelCapacity, "messages a channel holds before channel_send answers nil (channel full)")
	fs.DurationVar(&cfg.channels.Expiry, "channel-expiry", api.DefaultChannelExpiry, "how long a channel message waits to be received before it is dropped")
	fs.DurationVar(&cfg.channels.GroupExpiry, "group-expiry", api.DefaultGroupExpiry, "how long a channel stays in a group after group_add")
	fs.IntVar(&cfg.consumers, "consumer-workers", api.DefaultConsumerWorkers, "consumer calls run at once, over all channels")
	fs.DurationVar(&cfg.loadTimeout, "load-timeout", api.DefaultLoadTimeout, "time limit of each script file's top level at load; a file over it fails the reload and the old scripts keep serving")
	cfg.memoryLimit = sizeFlag(api.DefaultMemoryLimit())
	fs.Var(&cfg.memoryLimit, "memory-limit", "memory budget of the scripts, SIZE (default: three quarters of the machine's or cgroup's memory; 0: none); near it, the call that allocated most is interrupted")
	fs.IntVar(&cfg.maxWebSockets, "max-websockets", api.DefaultMaxLongCalls, "WebSockets open at once; past it websocket_handshake fails and the request gets 503 (0: no limit). A socket's interpreter leaves its pool, which makes another for the other requests")
	fs.IntVar(&cfg.pools.lua, "lua-pool", 0, "Lua states per program (0: the engine's default)")
	fs.IntVar(&cfg.pools.js, "js-pool", 0, "JavaScript runtimes per program (0: the engine's default)")
	fs.IntVar(&cfg.pools.goInterp, "go-pool", 0, "Go interpreters per file (0: the engine's default)")
	fs.DurationVar(&cfg.pools.wait, "pool-wait", 5*time.Second, "longest wait of a call for a free interpreter before it fails")
	fs.DurationVar(&cfg.limits.WriteTimeout, "write-timeout", d.WriteTimeout, "time allowed for each write to a client")
	fs.DurationVar(&cfg.limits.CallTimeout, "call-timeout", d.CallTimeout, "deadline of each request and RPC call (uWSGI's harakiri)")
	cfg.wsMaxMessage, cfg.wsSendQueue = sizeFlag(d.WebSocketMaxMessage), sizeFlag(d.WebSocketSendQueue)
	fs.Var(&cfg.wsMaxMessage, "websocket-max-message", "largest WebSocket message received, SIZE (uWSGI's websockets-max-size); a larger one closes the socket with 1009")
	fs.Var(&cfg.wsSendQueue, "websocket-send-queue", "bytes of messages a WebSocket holds for a peer that reads slower than its script sends, SIZE; a send over it closes the socket with 1008 (one message always fits)")
	fs.DurationVar(&cfg.limits.WebSocketPing, "websocket-ping", d.WebSocketPing, "how often each WebSocket's peer is pinged (0: never)")
	fs.DurationVar(&cfg.limits.WebSocketPongTimeout, "websocket-pong-timeout", d.WebSocketPongTimeout, "time a WebSocket's peer has to answer a ping before it is dropped")
	fs.DurationVar(&cfg.limits.WebSocketTimeout, "websocket-timeout", d.WebSocketTimeout, "longest life of a request's call from its WebSocket handshake on (the socket lives as long as the call); --call-timeout still bounds the time its script runs, not counting its waits for messages")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long to let requests in flight finish")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.warning, "warning", "", "message carried by ping replies (at most 80 bytes)")
	fs.BoolVar(&cfg.supervise, "supervise", true, "serve from a child process that a small parent holding the sockets replaces when it dies; the caches survive in journals (false: serve from this process)")
	fs.StringVar(&cfg.procs, "procs", "auto", "processors running Go code (GOMAXPROCS): a number, or auto for one while the server needs less than a core and the runtime's default (every core the container's CPU quota allows, kept up to date) once it is busy (a GOMAXPROCS environment variable overrides auto)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: scripthost serve [--socket ADDR]... [--scripts DIR] [flags]\n\nServe the scripts directory's Lua and JavaScript apps and RPC functions over\nthe uwsgi protocol (and plain HTTP with --http), with RPC (173), ping (100),\necho (101), signals (110), cache (111), spool jobs (17, with --spooler) and the\nclose mark (200). The scripts\nare reloaded when they change. Other modifiers are dropped like uWSGI does.\n\nContainment: request bodies are read whole before an app runs (--body-timeout,\n--body-deadline, --body-memory, --max-body); calls and handlers have deadlines\n(--call-timeout, --signal-timeout, --load-timeout); the scripts share a memory\nbudget (--memory-limit) and bounded interpreter pools (--lua-pool, --js-pool,\n--go-pool, --pool-wait). A signal raised while pending is merged into it.\n\nWebSockets: a request that asks for an upgrade (through nginx uwsgi_pass, or\n--http) becomes a WebSocket when its script calls websocket_handshake; the\nhost answers pings, pings the peer (--websocket-ping, --websocket-pong-timeout),\nchecks UTF-8 and sizes (--websocket-max-message) and bounds what waits for a\nslow peer (--websocket-send-queue). The call lives as long as the socket\n(--websocket-timeout); at most --max-websockets are open at once; shutdown\ncloses sockets with 1001.\n\nExamples:\n  scripthost serve --scripts ./scripts --socket 127.0.0.1:3031\n  scripthost serve --scripts ./scripts --http 127.0.0.1:8080 --ops-socket /run/scripthost-ops.sock\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, cfg
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q (text or json)", format)
}

func cmdServe(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs, cfg := serveFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fs.Visit(func(f *flag.Flag) { cfg.scriptsSet = cfg.scriptsSet || f.Name == "scripts" })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scripthost serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "scripthost serve: %v\n", err)
		return 2
	}
	procs, err := parseProcs(cfg.procs)
	if err != nil {
		fmt.Fprintf(stderr, "scripthost serve: %v\n", err)
		return 2
	}
	if cfg.supervise && supervisedBy() == 0 {
		return supervise(ctx, cfg, log)
	}
	if sup := supervisedBy(); sup != 0 {
		log.Info("serving under a supervisor", "pid", os.Getpid(), "supervisor", sup, "restarts", supervisedRestarts())
	}
	setProcs(ctx, procs, log)
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("scripthost stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the server until ctx is done, then drains it. ready, when not
// nil, receives the listeners' addresses once they accept (for tests).
func serve(ctx context.Context, cfg *serveConfig, log *slog.Logger, ready chan<- []net.Addr) error {
	h, haveScripts, err := newHost(cfg, log)
	if err != nil {
		return err
	}

	// Signals are taken before the first request can be answered: a
	// client that saw this process serve may signal it at once (an
	// unhandled SIGUSR2 would be lost).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	ls, err := openListeners(cfg, h, log)
	if err != nil {
		h.Close()
		return err
	}
	errc := make(chan error, len(ls.all))
	var wg sync.WaitGroup
	for _, l := range ls.all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.serve(); !errors.Is(err, scripthost.ErrServerClosed) {
				errc <- fmt.Errorf("serving %s: %w", l.l.Addr(), err)
			}
		}()
	}
	if ready != nil {
		var addrs []net.Addr
		for _, l := range ls.all {
			addrs = append(addrs, l.l.Addr())
		}
		ready <- addrs
	}
	signalReady()

	// Reloads run outside the signal loop, so that a reload whose script
	// hangs leaves HUP, USR2 and TERM handled.
	rctx, stopReloads := context.WithCancel(ctx)
	defer stopReloads()
	var reloads sync.WaitGroup
	reloadReq := make(chan struct{}, 1)
	if haveScripts {
		reloads.Go(func() { reloadLoop(rctx, h, reloadReq) })
	}
	var serveErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case serveErr = <-errc:
			break wait
		case sig := <-sigs:
			if ctx.Err() != nil {
				break wait // SIGTERM came too: it wins, whatever was queued with it
			}
			if sig == syscall.SIGHUP {
				if haveScripts {
					requestReload(reloadReq, log)
				}
				continue
			}
			log.Info("graceful restart requested")
			if err := restart(ctx, ls.listeners(), cfg.shutdownTimeout, log); err != nil {
				log.Error("restart failed; this process keeps serving", "err", err)
				continue
			}
			log.Info("the new process serves; draining this one", "timeout", cfg.shutdownTimeout)
			break wait
		}
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	stopReloads()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown timeout; closing them", "err", err)
		h.Close()
	}
	wg.Wait()
	waitReloads(&reloads, cfg.shutdownTimeout, log)
	return serveErr
}

// newHost builds the host the flags describe, its caches journaled when a
// supervisor keeps them and its restart count the one the supervisor
// handed over. haveScripts is false when there is no scripts directory
// to load.
func newHost(cfg *serveConfig, log *slog.Logger) (h *scripthost.Host, haveScripts bool, err error) {
	hc, err := hostConfig(cfg, log)
	if err != nil {
		return nil, false, err
	}
	if h, err = scripthost.New(hc); err != nil {
		return nil, false, err
	}
	h.State().Counters.Restarts.Store(supervisedRestarts())
	return h, hc.Scripts != "", nil
}

// hostConfig turns the serve flags into the host's configuration.
func hostConfig(cfg *serveConfig, log *slog.Logger) (scripthost.Config, error) {
	hc := scripthost.Config{
		Watch:   scripthost.Watch{Disabled: !cfg.watch, Debounce: cfg.debounce, Rescan: cfg.rescan},
		Engines: engines(cfg.pools),
		Limits:  cfg.limits,
		Containment: scripthost.Containment{
			MemoryLimit:   int64(cfg.memoryLimit),
			PoolWait:      cfg.pools.wait,
			LoadTimeout:   cfg.loadTimeout,
			SignalTimeout: cfg.signalTimeout,
			DrainTimeout:  cfg.shutdownTimeout,
			MaxWebSockets: cfg.maxWebSockets,
		},
		BodyDir: cfg.bodyDir,
		Warning: cfg.warning,
		Logger:  log,
	}
	if hc.Containment.MemoryLimit == 0 {
		hc.Containment.MemoryLimit = -1 // --memory-limit 0: no budget
	}
	if hc.Containment.MaxWebSockets == 0 {
		hc.Containment.MaxWebSockets = -1 // --max-websockets 0: no limit
	}
	hc.Limits.BodyMemory, hc.Limits.MaxBody = int64(cfg.bodyMemory), int64(cfg.maxBody)
	hc.Limits.WebSocketMaxMessage, hc.Limits.WebSocketSendQueue = int64(cfg.wsMaxMessage), int(cfg.wsSendQueue)
	if hc.Limits.WebSocketPing == 0 {
		hc.Limits.WebSocketPing = -1 // --websocket-ping 0: never
	}
	hc.Spooler, hc.SpoolOpsOnly = cfg.spooler.config(), cfg.spooler.opsOnly
	hc.Outbound = api.OutboundConfig{Allow: cfg.outbound, Timeout: cfg.outboundTime, MaxResponse: int64(cfg.outboundMax)}
	hc.Channels, hc.ConsumerWorkers = cfg.channels, cfg.consumers
	var err error
	if hc.Routes, err = parseRoutes(cfg); err != nil {
		return hc, err
	}
	for _, c := range cfg.caches {
		cc, err := api.ParseCacheConfig(c)
		if err != nil {
			return hc, fmt.Errorf("--cache %q: %w", c, err)
		}
		hc.Caches = append(hc.Caches, cc)
	}
	hc.Caches = journalCaches(hc.Caches)
	if hc.Eval, err = evalConfig(cfg); err != nil {
		return hc, err
	}
	haveScripts, err := scriptsDir(cfg, log)
	if err != nil {
		return hc, err
	}
	if haveScripts {
		hc.Scripts = cfg.scripts
	}
	return hc, nil
}

// requestReload asks the reload loop for a reload; one asked for during a
// reload runs after it, and several asked for meanwhile are one.
func requestReload(req chan<- struct{}, log *slog.Logger) {
	select {
	case req <- struct{}{}:
	default:
		log.Info("reload already scheduled")
	}
}

// reloadLoop reloads on each request until ctx is done.
func reloadLoop(ctx context.Context, h *scripthost.Host, req <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-req:
			h.Reload(ctx) // a failure is logged and kept in the status
		}
	}
}

// waitReloads waits for a reload under way to end, at most timeout: one
// whose script does not stop must not keep the process from exiting.
func waitReloads(reloads *sync.WaitGroup, timeout time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() { reloads.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		log.Warn("a scripts reload still runs at the shutdown timeout; exiting without it")
	}
}

// parseRoutes reads --map and --mount.
func parseRoutes(cfg *serveConfig) (host.Routes, error) {
	routes := host.Routes{Map: map[uwsgi.Modifier]string{}, Mounts: map[string]string{}}
	for _, m := range cfg.maps {
		mod, app, err := host.ParseMap(m)
		if err != nil {
			return routes, err
		}
		routes.Map[mod] = app
	}
	for _, m := range cfg.mounts {
		path, app, err := host.ParseMount(m)
		if err != nil {
			return routes, err
		}
		routes.Mounts[path] = app
	}
	return routes, nil
}

// scriptsDir reports whether there is a scripts directory to load. A
// missing default directory is fine (the host then serves RPC, cache and
// signals only); a missing directory that was asked for is an error, as is
// a broken script later, so the host never starts half-loaded.
func scriptsDir(cfg *serveConfig, log *slog.Logger) (bool, error) {
	if _, err := os.Stat(cfg.scripts); err != nil {
		if !cfg.scriptsSet && errors.Is(err, os.ErrNotExist) {
			log.Info("no scripts directory; serving RPC, cache and signals only", "dir", cfg.scripts)
			return false, nil
		}
		return false, fmt.Errorf("--scripts: %w", err)
	}
	return true, nil
}

// listener is one open listener and how it is served.
type listener struct {
	l     net.Listener
	serve func() error
}

type listenerSet struct{ all []*listener }

func (ls *listenerSet) listeners() []net.Listener {
	var out []net.Listener
	for _, l := range ls.all {
		out = append(out, l.l)
	}
	return out
}

// openListeners opens (or takes over from a restarting parent) every
// configured listener: uwsgi sockets, operations sockets and HTTP fronts.
func openListeners(cfg *serveConfig, h *scripthost.Host, log *slog.Logger) (*listenerSet, error) {
	in, err := takeInherited(log)
	if err != nil {
		return nil, err
	}
	ls := &listenerSet{}
	fail := func(err error) (*listenerSet, error) {
		for _, l := range ls.all {
			l.l.Close()
		}
		for _, l := range in.rest() {
			l.Close()
		}
		return nil, err
	}
	add := func(l net.Listener, protocol string, serve func(net.Listener) error) {
		log.Info("listening", "protocol", protocol, "addr", l.Addr().String(), "network", l.Addr().Network())
		ls.all = append(ls.all, &listener{l: l, serve: func() error { return serve(l) }})
	}
	sockets := cfg.sockets
	if len(sockets) == 0 && len(in.byAddr) == 0 {
		sockets = listFlag{"127.0.0.1:3031"}
	}
	for _, addr := range sockets {
		l, err := in.listen(addr, 0)
		if err != nil {
			return fail(err)
		}
		add(l, "uwsgi", h.Serve)
	}
	for _, addr := range cfg.opsSockets {
		l, err := in.listen(addr, 0o600)
		if err != nil {
			return fail(fmt.Errorf("--ops-socket %s: %w", addr, err))
		}
		add(l, "uwsgi operations", h.ServeOps)
	}
	for _, addr := range cfg.evalSockets {
		l, err := in.listen(addr, 0o600)
		if err != nil {
			return fail(fmt.Errorf("--eval-socket %s: %w", addr, err))
		}
		add(l, "uwsgi operations with eval", h.ServeEval)
	}
	for _, addr := range cfg.https {
		l, err := in.listen(addr, 0)
		if err != nil {
			return fail(fmt.Errorf("--http %s: %w", addr, err))
		}
		log.Info("listening", "protocol", "http", "addr", "http://"+l.Addr().String()+"/")
		ls.all = append(ls.all, &listener{l: l, serve: func() error { return h.ServePlainHTTP(l) }})
	}
	// Inherited sockets that match no flag (systemd socket activation
	// without --socket) serve the uwsgi protocol.
	for _, l := range in.rest() {
		add(l, "uwsgi", h.Serve)
	}
	return ls, nil
}

// evalConfig returns the configuration of raw code evaluation on the
// --eval-socket listeners (with every engine that can evaluate), or nil
// without them.
func evalConfig(cfg *serveConfig) (*host.EvalConfig, error) {
	if len(cfg.evalSockets) == 0 {
		if cfg.evalKey != "" {
			return nil, errors.New("--eval-key needs --eval-socket")
		}
		return nil, nil
	}
	ec := &host.EvalConfig{Timeout: cfg.evalTimeout}
	if cfg.evalKey != "" {
		key, err := readKeyFile(cfg.evalKey)
		if err != nil {
			return nil, fmt.Errorf("--eval-key: %w", err)
		}
		ec.Key = key
	}
	return ec, nil
}

// spoolerFlags are serve's --spooler flags.
type spoolerFlags struct {
	dirs               listFlag
	workers            int
	frequency, backoff time.Duration
	timeout            time.Duration
	maxAttempts        int
	opsOnly            bool
}

// config is the spooler's configuration, nil without a directory.
func (f spoolerFlags) config() *api.SpoolerConfig {
	if len(f.dirs) == 0 {
		return nil
	}
	return &api.SpoolerConfig{Dirs: f.dirs, Workers: f.workers, Frequency: f.frequency,
		MaxAttempts: f.maxAttempts, Backoff: f.backoff, Timeout: f.timeout}
}
