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
	DefaultSignalConcurrent = 8
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
// signals asynchronously, as uWSGI's master does for modifier1 110
// (PROTOCOL.md section 11).
//
// Raise only enqueues; the owner runs Serve in a goroutine of its own to
// deliver. Raise is accepted whenever the queue has room, also before Serve
// starts (the signals wait for it), and fails with ErrSignalsStopped once
// Serve is stopping, so a host can answer the signal packet honestly.
//
// Handlers of any signals, including the same signal raised twice, may run
// concurrently, at most MaxConcurrent at a time; a handler that must not
// overlap with itself has to serialize itself.
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
	if !validSignalTarget(target) {
		return fmt.Errorf("%w: %q for signal %d", ErrSignalTarget, target, num)
	}
	if h == nil {
		return fmt.Errorf("api: register signal %d: %w", num, ErrNilFunc)
	}
	s.handlers[num].Store(&signalEntry{target: target, fn: h})
	return nil
}

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

// Raise queues num for delivery by Serve without waiting. Like uWSGI, it
// accepts a signal that has no handler; the missing handler is logged at
// delivery. A full queue gives ErrSignalQueueFull, a stopped Serve
// ErrSignalsStopped.
func (s *Signals) Raise(num uint8) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.state == signalsStopped {
		return ErrSignalsStopped
	}
	select {
	case s.queue <- num:
		return nil
	default:
		return fmt.Errorf("%w: signal %d", ErrSignalQueueFull, num)
	}
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
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	dropped := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case num := <-s.queue:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				dropped++
				break loop
			}
			wg.Go(func() {
				defer func() { <-slots }()
				s.deliver(ctx, num, timeout, log)
			})
		}
	}

	// Once the state is stopped no Raise can send (it sends under RLock),
	// so after this the queue only shrinks.
	s.mu.Lock()
	s.state = signalsStopped
	s.mu.Unlock()
	wg.Wait()
	dropped += len(s.queue)
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
