package api

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Version is scripthost's version, reported to scripts by uwsgi.version.
const Version = "0.1.0"

// State is everything a host shares with its script engines. The host
// creates one with NewState, runs Signals.Serve in a goroutine it owns
// and calls Caches.Sweep periodically; State itself starts nothing.
type State struct {
	RPC     *Registry // the RPC functions by name, for uwsgi.call and other nodes' RPC packets
	Caches  *Caches   // the caches scripts use (cache_get, ...); the host sweeps them
	Signals *Signals  // the signal handlers and their queue; the host runs Serve
	Locks   *Locks    // uwsgi.lock's numbered locks
	Timers  *Timers   // the timers and cron entries raising signals; the host runs Serve
	// Memory is the scripts' memory budget; the host runs its Serve.
	Memory *Memory
	// Counters count containment events (pool waits, load timeouts, ...).
	Counters *Counters
	// Channels is the channel layer (Daphne's message standards).
	Channels ChannelLayer
	// Consumers are the scripts' consumers of the layer's channels; the
	// host runs Consumers.Serve.
	Consumers *Consumers
	Version   string // uwsgi.version (the Version constant)
	Hostname  string // uwsgi.hostname (StateConfig.Hostname, else os.Hostname)
	// Options are the host's configuration as scripts see it (uwsgi.opt).
	// Treat them as read-only once the host serves.
	Options map[string]string
	// Logger is the host's logger, given to every part NewState builds
	// and to the generations' Registrations; never nil after NewState.
	Logger *slog.Logger
	// Outbound is the scripts' HTTP client (http_request).
	Outbound *Outbound
	// Spooler runs the spool jobs; nil when the host has no spool
	// directory. The host sets it before the scripts load.
	Spooler *Spooler
	// Alarm receives uwsgi.alarm(name, msg) from scripts; nil logs the
	// alarm at error level.
	Alarm func(name, msg string)
	// LongCalls bounds the calls that hold their interpreter for long
	// (WebSockets).
	LongCalls *LongCalls

	nodesMu sync.Mutex
	nodes   map[string]*uwsgi.Client
}

// StateConfig configures NewState; zero fields take the defaults of the
// constructors they feed.
type StateConfig struct {
	MaxRPC      int           // NewRegistry's maxFuncs
	Caches      []CacheConfig // NewCaches's configs; none means one "default" cache
	SignalQueue int           // NewSignals's queue
	Locks       int           // NewLocks's n
	// MemoryLimit is the scripts' memory budget in bytes (NewMemory's
	// limit; <= 0: none).
	MemoryLimit int64
	// MaxLongCalls bounds the WebSockets open at once (NewLongCalls's
	// max: 0 is DefaultMaxLongCalls, negative no bound).
	MaxLongCalls int
	// Hostname overrides os.Hostname, for tests and for hosts that
	// advertise a name other than the machine's.
	Hostname string
	Options  map[string]string // copied
	// Outbound configures the scripts' HTTP client.
	Outbound OutboundConfig
	Logger   *slog.Logger // nil means slog.Default()
	// Channels configures the in-process channel layer made when
	// ChannelLayer is nil.
	Channels ChannelConfig
	// ChannelLayer, when set, is the channel layer to use instead (a
	// shared one); State.Close closes it.
	ChannelLayer ChannelLayer
}

// NewState builds a State from cfg. It fails only on an invalid cache
// configuration or a cache journal that cannot be used.
func NewState(cfg StateConfig) (*State, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cacheConfigs := slices.Clone(cfg.Caches)
	for i := range cacheConfigs {
		if cacheConfigs[i].Logger == nil {
			cacheConfigs[i].Logger = logger
		}
	}
	caches, err := NewCaches(cacheConfigs...)
	if err != nil {
		return nil, err
	}
	host := cfg.Hostname
	if host == "" {
		// A missing hostname is cosmetic (scripts print it), so it
		// must not stop the host from starting.
		if host, err = os.Hostname(); err != nil || host == "" {
			host = "localhost"
		}
	}
	options := maps.Clone(cfg.Options)
	if options == nil {
		options = map[string]string{}
	}
	outbound, err := NewOutbound(cfg.Outbound)
	if err != nil {
		caches.Close()
		return nil, err
	}
	memory := NewMemory(cfg.MemoryLimit)
	memory.Logger = logger
	signals := NewSignals(cfg.SignalQueue)
	signals.Logger = logger
	counters := &Counters{}
	signals.Counters = counters
	timers := NewTimers(signals)
	timers.Logger = logger
	layer := cfg.ChannelLayer
	if layer == nil {
		layer = NewMemoryLayer(cfg.Channels)
	}
	consumers := NewConsumers(layer)
	consumers.Logger = logger
	return &State{
		Outbound:  outbound,
		Channels:  layer,
		Consumers: consumers,
		Timers:    timers,
		Memory:    memory,
		Counters:  counters,
		RPC:       NewRegistry(cfg.MaxRPC),
		Caches:    caches,
		Signals:   signals,
		Locks:     NewLocks(cfg.Locks),
		Version:   Version,
		Hostname:  host,
		Options:   options,
		Logger:    logger,

		LongCalls: NewLongCalls(cfg.MaxLongCalls),
	}, nil
}

// Node returns the client for a remote uwsgi node ("host:port" or a unix
// socket path), shared by every caller so its connections are pooled.
func (s *State) Node(addr string) *uwsgi.Client {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if s.nodes == nil {
		s.nodes = make(map[string]*uwsgi.Client)
	}
	c, ok := s.nodes[addr]
	if !ok {
		c = uwsgi.NewClient(addr)
		s.nodes[addr] = c
	}
	return c
}

// RaiseAlarm delivers an alarm to the sink.
func (s *State) RaiseAlarm(name, msg string) {
	if s.Alarm != nil {
		s.Alarm(name, msg)
		return
	}
	s.Logger.Error("alarm", "alarm", name, "msg", msg)
}

// Close stops the spooler, releases the node clients' and the outbound
// client's pooled connections, closes the channel layer and the caches'
// journals.
func (s *State) Close() error {
	if s.Spooler != nil {
		// Normally closed already, after its jobs finished (Spooler.Close
		// is idempotent); this bounds the wait on error paths.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Spooler.Close(ctx)
		cancel()
	}
	if s.Outbound != nil {
		s.Outbound.Close()
	}
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	for _, c := range s.nodes {
		c.Close()
	}
	s.nodes = nil
	return errors.Join(s.Channels.Close(), s.Caches.Close())
}
