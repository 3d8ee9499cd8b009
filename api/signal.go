package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Signals.
const (
	DefaultSignalQueue      = 256
	DefaultSignalTimeout    = 30 * time.Second
	DefaultSignalConcurrent = 2
	DefaultSignalInterval   = 10 * time.Millisecond
)

// Signal errors. ErrSignalQueueFull and ErrSignalsStopped are what a host
// answers with status 0 to a signal packet.
var (
	ErrSignalQueueFull = errors.New("api: signal queue full")
	ErrSignalsStopped  = errors.New("api: signals stopped")
	ErrSignalsServing  = errors.New("api: signals already serving")
	ErrNoSignalHandler = errors.New("api: no handler for signal")
	ErrSignalTarget    = errors.New("api: invalid signal target")
	ErrSignalPanic     = errors.New("api: signal handler panicked")
)

// SignalHandler handles uWSGI signal num. Its ctx is cancelled when the
// handler's timeout passes or the delivery loop stops.
type SignalHandler func(ctx context.Context, num uint8) error

type signalEntry struct {
	target string
	fn     SignalHandler
}

// Serve's lifecycle, guarded by Signals.mu.
const (
	signalsIdle = iota
	signalsServing
	signalsStopped
)

// Signals holds handlers for uWSGI signals 0..255 and delivers raised
// signals asynchronously, as uWSGI's master does for modifier1 110.
//
// Raise only enqueues; the owner runs Serve in a goroutine of its own to
// deliver. Raise is accepted whenever the queue has room, also before Serve
// starts (the signals wait for it), and fails with ErrSignalsStopped once
// Serve is stopping, so a host can answer the signal packet honestly.
//
// A storm coalesces, as uWSGI's bounded signal queue bounds one: a signal
// is pending at most once, and a raise of a pending signal is merged into
// it (counted in Counters.SignalsCoalesced). The handler of a signal runs
// at most once at a time; raised while it runs, the signal is delivered
// again after the run, and no sooner than MinInterval after it, so that a
// handler raising its own signal gets a bounded share of the machine.
// Handlers of different signals run concurrently, at most MaxConcurrent at
// a time.
//
// Create one with NewSignals. The exported fields must be set before Serve
// is called.
type Signals struct {
	// HandlerTimeout bounds each asynchronous delivery;
	// zero means DefaultSignalTimeout.
	HandlerTimeout time.Duration
	// MaxConcurrent bounds the handlers running at once;
	// zero means DefaultSignalConcurrent.
	MaxConcurrent int
	// MinInterval is the least time between the end of a handler's run
	// and its next run for a signal raised meanwhile; zero means
	// DefaultSignalInterval.
	MinInterval time.Duration
	// Counters, when set, count the coalesced raises.
	Counters *Counters
	// Logger receives handler errors, panics and signals raised without
	// a handler (uWSGI logs "error managing signal N"); nil means
	// slog.Default().
	Logger *slog.Logger

	// Handlers are read on every delivery and replaced rarely, so each
	// slot is an atomic pointer instead of a map under a lock.
	handlers [256]atomic.Pointer[signalEntry]
	queue    chan uint8

	mu    sync.RWMutex // guards state; Raise sends on queue under RLock
	state int

	// Per signal: raised and not started yet, or running; and the timer
	// of a delivery held back by MinInterval.
	numMu   sync.Mutex
	pending [256]bool
	running [256]bool
	later   [256]*time.Timer
}

// NewSignals returns a Signals whose queue holds up to queue raised but
// undelivered signals; queue <= 0 means DefaultSignalQueue.
func NewSignals(queue int) *Signals {
	if queue <= 0 {
		queue = DefaultSignalQueue
	}
	return &Signals{queue: make(chan uint8, queue)}
}

// Register sets the handler for signal num, replacing any previous one.
// target is uWSGI's register_signal target: "", "worker", "workers",
// "active-workers", "worker<N>", "mule", "mules", "mule<N>", "spooler" or
// "spoolers". scripthost is a single process, so every target means "run in
// this process"; targets are checked only so that scripts written for
// uWSGI keep working and typos are caught.
func (s *Signals) Register(num uint8, target string, h SignalHandler) error {
	_, err := s.register(num, target, h)
	return err
}

// register is Register returning the registration, for unregisterEntry.
func (s *Signals) register(num uint8, target string, h SignalHandler) (*signalEntry, error) {
	if !validSignalTarget(target) {
		return nil, fmt.Errorf("%w: %q for signal %d", ErrSignalTarget, target, num)
	}
	if h == nil {
		return nil, fmt.Errorf("api: register signal %d: %w", num, ErrNilFunc)
	}
	e := &signalEntry{target: target, fn: h}
	s.handlers[num].Store(e)
	return e, nil
}

// unregisterEntry removes num's handler if it is still the registration
// e, and reports whether it was.
func (s *Signals) unregisterEntry(num uint8, e *signalEntry) bool {
	return e != nil && s.handlers[num].CompareAndSwap(e, nil)
}

// BoundCallable is a Callable that exists in one interpreter only: a
// function an engine converted during a call, which the other
// interpreters of its program do not have (functions converted while the
// files load exist in every one). Calling it borrows that interpreter,
// waiting while it serves another call. Gone is closed once the
// interpreter was replaced or closed: the function cannot be called any
// more.
//
// A signal handler or RPC function registered with such a function
// (uwsgi.register_signal or register_rpc during a call) is registered as
// long as its interpreter lives: when Gone closes, the registration ends
// (signal_registered answers false, the RPC name is unknown), and
// SignalEndedMsg or RPCEndedMsg is logged once.
type BoundCallable interface {
	Callable
	Gone() <-chan struct{}
}

// RPCEndedMsg is logged, with the function's name, when an RPC function's
// registration ends because the interpreter of its function is gone (see
// BoundCallable).
const RPCEndedMsg = "rpc function unregistered: the interpreter that made it is gone"

// SignalEndedMsg is logged, with the signal number, when a signal
// handler's registration ends because the interpreter of its function is
// gone (see BoundCallable).
const SignalEndedMsg = "signal handler unregistered: the interpreter that made it is gone"

func validSignalTarget(t string) bool {
	switch t {
	case "", "worker", "workers", "active-workers", "mule", "mules", "spooler", "spoolers":
		return true
	}
	for _, kind := range []string{"worker", "mule"} {
		if id, ok := strings.CutPrefix(t, kind); ok {
			_, err := strconv.ParseUint(id, 10, 16)
			return err == nil
		}
	}
	return false
}

// Unregister removes the handler for num and reports whether there was one.
func (s *Signals) Unregister(num uint8) bool {
	return s.handlers[num].Swap(nil) != nil
}

// Registered reports whether num has a handler.
func (s *Signals) Registered(num uint8) bool {
	return s.handlers[num].Load() != nil
}

// Raise queues num for delivery by Serve without waiting; a num already
// pending absorbs it. Like uWSGI, it accepts a signal that has no handler;
// the missing handler is logged at delivery. A full queue gives
// ErrSignalQueueFull, a stopped Serve ErrSignalsStopped.
func (s *Signals) Raise(num uint8) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.state == signalsStopped {
		return ErrSignalsStopped
	}
	s.numMu.Lock()
	defer s.numMu.Unlock()
	switch {
	case s.pending[num]:
		if s.Counters != nil {
			s.Counters.SignalsCoalesced.Add(1)
		}
		return nil
	case s.running[num]:
		s.pending[num] = true // queued when the run ends
		return nil
	}
	select {
	case s.queue <- num:
		s.pending[num] = true
		return nil
	default:
		return fmt.Errorf("%w: signal %d", ErrSignalQueueFull, num)
	}
}

// start marks num as running (it left the queue).
func (s *Signals) start(num uint8) {
	s.numMu.Lock()
	s.pending[num], s.running[num] = false, true
	s.numMu.Unlock()
}

// finish ends a run of num and queues num again, after interval, when it
// was raised meanwhile.
func (s *Signals) finish(num uint8, interval time.Duration) {
	s.numMu.Lock()
	defer s.numMu.Unlock()
	s.running[num] = false
	if !s.pending[num] {
		return
	}
	if t := s.later[num]; t != nil {
		t.Reset(interval)
		return
	}
	s.later[num] = time.AfterFunc(interval, func() { s.requeue(num) })
}

// requeue queues a pending num whose interval passed.
func (s *Signals) requeue(num uint8) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.numMu.Lock()
	defer s.numMu.Unlock()
	if s.state == signalsStopped || !s.pending[num] {
		return
	}
	select {
	case s.queue <- num:
	default:
		s.pending[num] = false
		s.logger().Error("signal dropped: queue full", "signal", num)
	}
}

// stopLater stops the held-back deliveries; Serve is stopping.
func (s *Signals) stopLater() (held int) {
	s.numMu.Lock()
	defer s.numMu.Unlock()
	for num, t := range s.later {
		if t != nil && t.Stop() {
			held++
		}
		s.later[num] = nil
	}
	return held
}

// RaiseSync runs the handler for num in the calling goroutine under ctx
// and returns its error; no handler gives ErrNoSignalHandler and a panic a
// *PanicError wrapping ErrSignalPanic. It works whether or not Serve runs.
func (s *Signals) RaiseSync(ctx context.Context, num uint8) error {
	e := s.handlers[num].Load()
	if e == nil {
		return fmt.Errorf("%w: %d", ErrNoSignalHandler, num)
	}
	return runSignal(ctx, num, e.fn)
}

func runSignal(ctx context.Context, num uint8, fn SignalHandler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Func: "signal " + strconv.Itoa(int(num)), Value: v, Stack: debug.Stack(), kind: ErrSignalPanic}
		}
	}()
	return fn(ctx, num)
}

// Serve delivers raised signals until ctx is done, then stops accepting
// new ones, cancels the context of the handlers still running, waits for
// them and returns nil. Signals still queued at that point are dropped and
// logged. Serve runs once: a second call returns ErrSignalsServing while
// the first runs and ErrSignalsStopped after it returned.
func (s *Signals) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case signalsServing:
		s.mu.Unlock()
		return ErrSignalsServing
	case signalsStopped:
		s.mu.Unlock()
		return ErrSignalsStopped
	}
	s.state = signalsServing
	s.mu.Unlock()

	log := s.logger()
	timeout := s.HandlerTimeout
	if timeout <= 0 {
		timeout = DefaultSignalTimeout
	}
	limit := s.MaxConcurrent
	if limit <= 0 {
		limit = DefaultSignalConcurrent
	}
	interval := s.MinInterval
	if interval <= 0 {
		interval = DefaultSignalInterval
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	dropped := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case num := <-s.queue:
			s.start(num)
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				dropped++
				break loop
			}
			wg.Go(func() {
				defer func() { <-slots }()
				s.deliver(ctx, num, timeout, log)
				s.finish(num, interval)
			})
		}
	}

	// Once the state is stopped no Raise can send (it sends under RLock),
	// so after this the queue only shrinks.
	s.mu.Lock()
	s.state = signalsStopped
	s.mu.Unlock()
	wg.Wait()
	dropped += len(s.queue) + s.stopLater()
	if dropped > 0 {
		log.Warn("signals dropped at shutdown", "count", dropped)
	}
	return nil
}

func (s *Signals) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Signals) deliver(ctx context.Context, num uint8, timeout time.Duration, log *slog.Logger) {
	e := s.handlers[num].Load()
	if e == nil {
		log.Error("no handler for signal", "signal", num)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := runSignal(ctx, num, e.fn)
	if err == nil {
		return
	}
	if pe, ok := errors.AsType[*PanicError](err); ok {
		log.Error("signal handler panicked", "signal", num, "target", e.target,
			"panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		return
	}
	log.Error("signal handler failed", "signal", num, "target", e.target, "err", err)
}
