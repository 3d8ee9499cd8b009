package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

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
}

func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveConfig) {
	cfg := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := host.DefaultLimits
	fs.Var(&cfg.sockets, "socket", "uwsgi listener: host:port or a unix socket path (repeatable; default 127.0.0.1:3031)")
	fs.Var(&cfg.https, "http", "plain HTTP/1.1 listener serving the scripts' apps without nginx, host:port (repeatable)")
	fs.StringVar(&cfg.scripts, "scripts", "scripts", "scripts directory: every .lua file in it is loaded")
	fs.Var(&cfg.maps, "map", "serve modifier1 MOD with app APP: MOD=APP, e.g. 0=app for nginx's default modifier (repeatable)")
	fs.Var(&cfg.mounts, "mount", "serve requests under a path with an app: /PATH=APP; SCRIPT_NAME becomes /PATH (repeatable)")
	fs.Var(&cfg.caches, "cache", "a cache, uWSGI --cache2 style: name=NAME,items=N,blocksize=BYTES,keysize=BYTES,maxbytes=SIZE (repeatable; the first is the default cache; default name=default)")
	fs.IntVar(&cfg.limits.MaxPacket, "max-packet", d.MaxPacket, "largest packet payload (vars block, RPC array) accepted, bytes (uWSGI's buffer-size)")
	fs.IntVar(&cfg.limits.MaxVars, "max-vars", d.MaxVars, "most key/value pairs in a request's vars block")
	fs.IntVar(&cfg.limits.MaxConns, "max-conns", d.MaxConns, "most connections served at once; more wait in the listen backlog")
	fs.IntVar(&cfg.limits.MaxRPCArgs, "max-rpc-args", d.MaxRPCArgs, "most arguments passed to an RPC function (at most 254)")
	fs.DurationVar(&cfg.limits.HeaderTimeout, "header-timeout", d.HeaderTimeout, "time allowed to receive a packet (uWSGI's socket-timeout)")
	fs.DurationVar(&cfg.limits.IdleTimeout, "idle-timeout", d.IdleTimeout, "time a kept connection may wait for its next packet")
	fs.DurationVar(&cfg.limits.BodyTimeout, "body-timeout", d.BodyTimeout, "time allowed for each read of a request body")
	fs.DurationVar(&cfg.limits.WriteTimeout, "write-timeout", d.WriteTimeout, "time allowed for each write to a client")
	fs.DurationVar(&cfg.limits.CallTimeout, "call-timeout", d.CallTimeout, "deadline of each request and RPC call (uWSGI's harakiri)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long to let requests in flight finish")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.warning, "warning", "", "message carried by ping replies (at most 80 bytes)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: scripthost serve [--socket ADDR]... [flags]\n\nServe the uwsgi protocol: RPC (173), ping (100), echo (101), signals (110),\ncache (111) and the close mark (200); other modifiers are dropped like uWSGI does.\n\nExample:\n  scripthost serve --socket 127.0.0.1:3031 --socket /run/scripthost.sock\n\nFlags:\n")
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
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("scripthost stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the server until ctx is done, then drains it. ready, when not
// nil, receives the listeners' addresses once they accept (for tests).
func serve(ctx context.Context, cfg *serveConfig, log *slog.Logger, ready chan<- []net.Addr) error {
	var caches []api.CacheConfig
	for _, c := range cfg.caches {
		cc, err := api.ParseCacheConfig(c)
		if err != nil {
			return fmt.Errorf("--cache %q: %w", c, err)
		}
		caches = append(caches, cc)
	}
	state, err := api.NewState(api.StateConfig{Caches: caches, Logger: log})
	if err != nil {
		return err
	}
	srv := host.NewServer(state)
	srv.Logger = log
	srv.Limits = cfg.limits
	srv.Warning = cfg.warning
	defer state.Close()

	gen, err := loadScripts(ctx, cfg, state, srv, log)
	if err != nil {
		return err
	}
	if gen != nil {
		defer gen.Close(context.Background())
	}

	sockets := cfg.sockets
	if len(sockets) == 0 {
		sockets = listFlag{"127.0.0.1:3031"}
	}
	var listeners []net.Listener
	var addrs []net.Addr
	for _, addr := range sockets {
		l, err := host.Listen(addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr())
	}
	var httpServers []*http.Server
	for _, addr := range cfg.https {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("--http %s: %w", addr, err)
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr())
		httpServers = append(httpServers, srv.NewHTTPServer(&host.HTTPFront{Server: srv}))
	}
	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	uwsgiCount := len(listeners) - len(httpServers)
	for i, l := range listeners {
		wg.Add(1)
		if i < uwsgiCount {
			log.Info("listening", "protocol", "uwsgi", "addr", l.Addr().String(), "network", l.Addr().Network())
			go func() {
				defer wg.Done()
				if err := srv.Serve(l); err != nil && !errors.Is(err, host.ErrServerClosed) {
					errc <- fmt.Errorf("serving %s: %w", l.Addr(), err)
				}
			}()
			continue
		}
		hs := httpServers[i-uwsgiCount]
		log.Info("listening", "protocol", "http", "addr", "http://"+l.Addr().String()+"/")
		go func() {
			defer wg.Done()
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving HTTP on %s: %w", l.Addr(), err)
			}
		}()
	}
	if ready != nil {
		ready <- addrs
	}
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	for _, hs := range httpServers {
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown timeout; closing them", "err", err)
		srv.Close()
	}
	wg.Wait()
	return serveErr
}

// loadScripts loads the scripts directory and routes its apps. A missing
// default directory is fine (the host then serves RPC, cache and signals
// only); a missing directory that was asked for, or a broken script, is an
// error, so the host never starts half-loaded.
func loadScripts(ctx context.Context, cfg *serveConfig, state *api.State, srv *host.Server, log *slog.Logger) (*host.Generation, error) {
	routes := host.Routes{Map: map[uwsgi.Modifier]string{}, Mounts: map[string]string{}}
	for _, m := range cfg.maps {
		mod, app, err := host.ParseMap(m)
		if err != nil {
			return nil, err
		}
		routes.Map[mod] = app
	}
	for _, m := range cfg.mounts {
		path, app, err := host.ParseMount(m)
		if err != nil {
			return nil, err
		}
		routes.Mounts[path] = app
	}
	if _, err := os.Stat(cfg.scripts); err != nil {
		if !cfg.scriptsSet && errors.Is(err, os.ErrNotExist) {
			log.Info("no scripts directory; serving RPC, cache and signals only", "dir", cfg.scripts)
			return nil, nil
		}
		return nil, fmt.Errorf("--scripts: %w", err)
	}
	gen, err := host.LoadScripts(ctx, state, cfg.scripts, engines(log))
	if err != nil {
		return nil, err
	}
	if _, err := srv.SetScripts(gen, routes); err != nil {
		gen.Close(ctx)
		return nil, err
	}
	var apps []string
	for _, a := range gen.Apps {
		apps = append(apps, a.Name+" ("+a.Engine+")")
	}
	log.Info("scripts loaded", "dir", cfg.scripts, "apps", apps, "rpc", gen.Env.RPCNames())
	return gen, nil
}
