package api

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Env is what the scripts of one generation see and change: the shared
// state and the scripts directory, plus a record of what they registered
// (RPC functions, signal handlers, timers) so the host can tell what a
// generation owns and remove it when the generation is replaced.
type Env struct {
	State *State
	// Dir is the scripts directory; require and friends resolve inside it.
	Dir    string
	Logger *slog.Logger

	mu      sync.Mutex
	rpcs    map[string]bool
	signals map[uint8]bool
	timers  []TimerID
	closed  bool
}

// NewEnv returns an environment for scripts of dir over state.
func NewEnv(state *State, dir string) *Env {
	log := state.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Env{State: state, Dir: dir, Logger: log, rpcs: map[string]bool{}, signals: map[uint8]bool{}}
}

// RegisterRPC registers an RPC function and records it.
func (e *Env) RegisterRPC(name string, fn RPCFunc) error {
	if err := e.State.RPC.Register(name, fn); err != nil {
		return err
	}
	e.mu.Lock()
	e.rpcs[name] = true
	e.mu.Unlock()
	return nil
}

// RegisterSignal registers a signal handler and records it.
func (e *Env) RegisterSignal(num uint8, target string, h SignalHandler) error {
	if err := e.State.Signals.Register(num, target, h); err != nil {
		return err
	}
	e.mu.Lock()
	e.signals[num] = true
	e.mu.Unlock()
	return nil
}

// AddTimer adds a timer (iterations 0 = forever) and records it.
func (e *Env) AddTimer(num uint8, every time.Duration, iterations int) error {
	id, err := e.State.Timers.AddTimer(num, every, iterations)
	return e.recordTimer(id, err)
}

// AddCron adds a cron entry and records it.
func (e *Env) AddCron(num uint8, c Cron) error {
	id, err := e.State.Timers.AddCron(num, c)
	return e.recordTimer(id, err)
}

func (e *Env) recordTimer(id TimerID, err error) error {
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.State.Timers.Remove(id)
		return nil
	}
	e.timers = append(e.timers, id)
	return nil
}

// RPCNames returns the RPC functions this generation registered, sorted.
func (e *Env) RPCNames() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, 0, len(e.rpcs))
	for n := range e.rpcs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// SignalNums returns the signals this generation registered handlers for.
func (e *Env) SignalNums() []uint8 {
	e.mu.Lock()
	defer e.mu.Unlock()
	nums := make([]uint8, 0, len(e.signals))
	for n := range e.signals {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums
}

// Close stops the generation's timers. (Its RPC functions and signal
// handlers stay registered until a new generation replaces them.)
func (e *Env) Close() {
	e.mu.Lock()
	ids := e.timers
	e.timers = nil
	e.closed = true
	e.mu.Unlock()
	for _, id := range ids {
		e.State.Timers.Remove(id)
	}
}

// callContext gives a callback (signal handler, RPC) its own scope.
func callContext(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	ctx, _, done := NewScope(ctx, nil, timeout)
	return ctx, done
}
