package api

import (
	"log/slog"
	"maps"
	"os"
)

// Version is scripthost's version, reported to scripts by uwsgi.version.
const Version = "0.1.0"

// State is everything a host shares with its script engines. The host
// creates one with NewState, runs Signals.Serve in a goroutine it owns
// and calls Caches.Sweep periodically; State itself starts nothing.
type State struct {
	RPC      *Registry
	Caches   *Caches
	Signals  *Signals
	Locks    *Locks
	Version  string
	Hostname string
	// Options are the host's configuration as scripts see it (uwsgi.opt).
	// Treat them as read-only once the host serves.
	Options map[string]string
	Logger  *slog.Logger
}

// StateConfig configures NewState; zero fields take the defaults of the
// constructors they feed.
type StateConfig struct {
	MaxRPC      int           // NewRegistry's maxFuncs
	Caches      []CacheConfig // NewCaches's configs; none means one "default" cache
	SignalQueue int           // NewSignals's queue
	Locks       int           // NewLocks's n
	// Hostname overrides os.Hostname, for tests and for hosts that
	// advertise a name other than the machine's.
	Hostname string
	Options  map[string]string // copied
	Logger   *slog.Logger      // nil means slog.Default()
}

// NewState builds a State from cfg. It fails only on an invalid cache
// configuration.
func NewState(cfg StateConfig) (*State, error) {
	caches, err := NewCaches(cfg.Caches...)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
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
	signals := NewSignals(cfg.SignalQueue)
	signals.Logger = logger
	return &State{
		RPC:      NewRegistry(cfg.MaxRPC),
		Caches:   caches,
		Signals:  signals,
		Locks:    NewLocks(cfg.Locks),
		Version:  Version,
		Hostname: host,
		Options:  options,
		Logger:   logger,
	}, nil
}
