package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// ErrGenerationClosed is returned for calls into a generation that has
// been replaced and drained.
var ErrGenerationClosed = errors.New("api: script generation closed")

// ErrFuncGone is the registration of a function whose interpreter is
// already gone (see BoundCallable).
var ErrFuncGone = errors.New("api: the interpreter of this function is gone")

// Registrations is what the scripts of one generation see and change: the shared
// state and the scripts directory, plus what they registered (RPC
// functions, signal handlers, timers).
//
// While the generation loads, registrations are staged in the Registrations: the
// running generation keeps serving untouched, and a load that fails leaves
// no trace. Commit makes them live in one step, replacing what the previous
// generation registered; registrations made after that (by a script at
// run time) apply at once. Calls into the generation's functions hold it
// open (Acquire/Release) so that Close can drain it; a call that reaches a
// generation already closed is passed on to the function now registered
// under the same name.
type Registrations struct {
	// State is the host state the generation's scripts share with every
	// other generation.
	State *State
	// Dir is the scripts directory; require and friends resolve inside it.
	Dir string
	// Logger receives the scripts' uwsgi.log lines and the warnings of
	// their API calls, and is the engines' default (EngineLogger).
	// NewRegistrations sets the State's, or slog.Default(); it must not
	// be nil.
	Logger *slog.Logger
	// LoadTimeout bounds the top level of each file, in the first VM and
	// in every replica built later (0: DefaultLoadTimeout). Engines run
	// a file under FileContext.
	LoadTimeout time.Duration

	mu   sync.Mutex
	live bool
	rpcs map[string]RPCFunc // as registered by scripts (not wrapped)
	// rpcStops holds the stop channel of each RPC function bound to an
	// interpreter (see RegisterBoundRPC).
	rpcStops map[string]chan struct{}
	// superseded: a later generation committed, so every name in the
	// RPC registry is its business now.
	superseded bool
	signals    map[uint8]stagedSignal
	timers     []stagedTimer
	ids        []TimerID
	// consumers are the channel consumers, by channel.
	consumers map[string]consumerEntry
	// spoolers are the spooler functions by the file that registered
	// them ("": at run time).
	spoolers map[string]SpoolFunc

	active  sync.WaitGroup
	gate    sync.RWMutex // held for reading by Acquire; Close takes it to stop new calls
	closed  bool
	drained chan struct{}
}

type stagedSignal struct {
	target string
	h      SignalHandler
	entry  *signalEntry // its registration in State.Signals once live
	// stop, set for a handler bound to one interpreter, is closed when
	// another registration replaces this one: it ends the wait for the
	// interpreter's end (RegisterBoundSignal).
	stop chan struct{}
}

type stagedTimer struct {
	num        uint8
	every      time.Duration
	iterations int
	cron       *Cron
}

// DefaultLoadTimeout is Registrations.LoadTimeout's default.
const DefaultLoadTimeout = 10 * time.Second

// ErrLoadTimeout is the cause of a file's load that ran past
// Registrations.LoadTimeout: the load fails like a syntax error in that file.
var ErrLoadTimeout = errors.New("api: loading took too long")

// FileContext returns the context in which an engine runs the top level
// of file: cancelled with ErrLoadTimeout after the load timeout.
func (e *Registrations) FileContext(ctx context.Context, file string) (context.Context, context.CancelFunc) {
	d := e.LoadTimeout
	if d <= 0 {
		d = DefaultLoadTimeout
	}
	ctx = context.WithValue(ctx, loadingFileKey{}, file)
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w: %s did not finish loading within %v", ErrLoadTimeout, file, d))
}

type loadingFileKey struct{}

// LoadingFile is the file whose top level ctx runs (see FileContext), ""
// outside a load.
func LoadingFile(ctx context.Context) string {
	f, _ := ctx.Value(loadingFileKey{}).(string)
	return f
}

// NewRegistrations returns an environment for scripts of dir over state.
func NewRegistrations(state *State, dir string) *Registrations {
	log := state.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Registrations{State: state, Dir: dir, Logger: log, rpcs: map[string]RPCFunc{},
		signals: map[uint8]stagedSignal{}, spoolers: map[string]SpoolFunc{}, consumers: map[string]consumerEntry{},
		drained: make(chan struct{})}
}

// RegisterRPC registers an RPC function of this generation.
func (e *Registrations) RegisterRPC(name string, fn RPCFunc) error {
	return e.registerRPC(name, fn, nil)
}

// RegisterBoundRPC registers an RPC function of this generation that can
// run only while gone is open, as RegisterBoundSignal does a signal
// handler: when gone closes, the registration ends unless another one
// replaced it meanwhile, the name is unknown from then on (uwsgi.call
// answers nil), and RPCEndedMsg is logged once. A nil gone registers for
// good, as RegisterRPC does.
func (e *Registrations) RegisterBoundRPC(name string, fn RPCFunc, gone <-chan struct{}) error {
	return bindRegistration(gone, "register rpc "+name,
		func(stop chan struct{}) error { return e.registerRPC(name, fn, stop) },
		func(stop chan struct{}) { e.endBoundRPC(name, stop) })
}

func (e *Registrations) registerRPC(name string, fn RPCFunc, stop chan struct{}) error {
	if len(name) == 0 || len(name) > MaxRPCName {
		return errors.Join(ErrRPCName, errors.New("api: RPC names are 1 to 255 bytes"))
	}
	if fn == nil {
		return ErrNilFunc
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rpcs[name] = fn
	if old := e.rpcStops[name]; old != nil {
		close(old)
	}
	if stop != nil {
		if e.rpcStops == nil {
			e.rpcStops = make(map[string]chan struct{})
		}
		e.rpcStops[name] = stop
	} else {
		delete(e.rpcStops, name)
	}
	if e.live {
		return e.State.RPC.Register(name, e.guardRPC(name, fn))
	}
	return nil
}

// endBoundRPC ends the registration of name made with stop, if it is
// still in place, since the interpreter of its function is gone.
func (e *Registrations) endBoundRPC(name string, stop chan struct{}) {
	e.mu.Lock()
	if e.rpcStops[name] != stop {
		e.mu.Unlock()
		return // replaced meanwhile
	}
	delete(e.rpcs, name)
	delete(e.rpcStops, name)
	// Holding e.mu: a successor's Commit marks e superseded under it
	// before it registers its own functions, so this never removes one
	// of theirs.
	live := e.live && !e.superseded
	if live {
		e.State.RPC.Unregister(name)
	}
	e.mu.Unlock()
	if live && !e.isClosed() {
		e.Logger.Warn(RPCEndedMsg, "rpc", name)
	}
}

// RegisterConsumer registers the consumer of channel for this
// generation; file names the script that registered it ("" when
// unknown), which ties an http.request or websocket.* consumer to the
// route of that file.
func (e *Registrations) RegisterConsumer(channel, file string, fn ConsumerFunc) error {
	if err := CheckChannelName(channel); err != nil {
		return err
	}
	if fn == nil {
		return ErrNilFunc
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, replaces := e.consumers[channel]; !replaces && len(e.consumers) >= MaxConsumers {
		return fmt.Errorf("%w: %d channels have consumers", ErrTooManyConsumers, len(e.consumers))
	}
	ce := consumerEntry{fn: fn, file: file}
	e.consumers[channel] = ce
	if e.live {
		e.State.Consumers.update(nil, map[string]consumerEntry{channel: e.guardConsumer(channel, ce)})
	}
	return nil
}

// ConsumerFile returns the file that registered this generation's
// consumer of channel, and whether there is one.
func (e *Registrations) ConsumerFile(channel string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.consumers[channel]
	return c.file, ok
}

// ConsumerChannels returns the channels this generation registered
// consumers for, sorted.
func (e *Registrations) ConsumerChannels() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.consumers))
}

// guardConsumer wraps a consumer so calls hold the generation open, and
// a message arriving after it closed goes to the consumer registered for
// channel now.
func (e *Registrations) guardConsumer(channel string, ce consumerEntry) consumerEntry {
	fn := ce.fn
	ce.fn = func(ctx context.Context, msg map[string]Value) error {
		if !e.Acquire() {
			if ctx.Value(forwardedKey{}) != nil {
				return ErrGenerationClosed
			}
			cur, _, ok := e.State.Consumers.Lookup(channel)
			if !ok {
				return ErrGenerationClosed
			}
			return cur(context.WithValue(ctx, forwardedKey{}, true), msg)
		}
		defer e.Release()
		return fn(ctx, msg)
	}
	return ce
}

// RegisterSignal registers a signal handler of this generation.
func (e *Registrations) RegisterSignal(num uint8, target string, h SignalHandler) error {
	return e.registerSignal(num, target, h, nil)
}

// RegisterBoundSignal registers a signal handler of this generation that
// can run only while gone is open: it calls a function that lives in one
// interpreter (a BoundCallable). When gone closes, the registration ends,
// unless another one replaced it meanwhile: the signal has no handler any
// more, SignalRegistered reports false, and SignalEndedMsg is logged once
// (not when the generation itself is closing). A nil gone registers for
// good, as RegisterSignal does.
func (e *Registrations) RegisterBoundSignal(num uint8, target string, h SignalHandler, gone <-chan struct{}) error {
	return bindRegistration(gone, fmt.Sprintf("register signal %d", num),
		func(stop chan struct{}) error { return e.registerSignal(num, target, h, stop) },
		func(stop chan struct{}) { e.endBoundSignal(num, stop) })
}

// bindRegistration registers a function that lives in one interpreter
// until gone (its BoundCallable.Gone) closes: register makes the
// registration with a stop channel, which the registration replacing it
// later closes; end undoes it if gone closes first. With a nil gone,
// register gets a nil stop and the registration lasts.
func bindRegistration(gone <-chan struct{}, what string, register func(stop chan struct{}) error, end func(stop chan struct{})) error {
	if gone == nil {
		return register(nil)
	}
	select {
	case <-gone:
		return fmt.Errorf("api: %s: %w", what, ErrFuncGone)
	default:
	}
	stop := make(chan struct{})
	if err := register(stop); err != nil {
		return err
	}
	go func() {
		select {
		case <-gone:
			end(stop)
		case <-stop:
		}
	}()
	return nil
}

func (e *Registrations) registerSignal(num uint8, target string, h SignalHandler, stop chan struct{}) error {
	if !validSignalTarget(target) {
		return errors.Join(ErrSignalTarget, errors.New("api: signal target "+target))
	}
	if h == nil {
		return ErrNilFunc
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := stagedSignal{target: target, h: h, stop: stop}
	if e.live {
		entry, err := e.State.Signals.register(num, target, e.guardSignal(num, h))
		if err != nil {
			return err
		}
		s.entry = entry
	}
	if old, ok := e.signals[num]; ok && old.stop != nil {
		close(old.stop)
	}
	e.signals[num] = s
	return nil
}

// endBoundSignal ends the registration of num made with stop, if it is
// still in place, since the interpreter of its handler is gone.
func (e *Registrations) endBoundSignal(num uint8, stop chan struct{}) {
	e.mu.Lock()
	s, ok := e.signals[num]
	if !ok || s.stop != stop {
		e.mu.Unlock()
		return // replaced meanwhile
	}
	delete(e.signals, num)
	e.mu.Unlock()
	// Not in State.Signals any more when a later generation replaced it.
	if !e.State.Signals.unregisterEntry(num, s.entry) && s.entry != nil {
		return
	}
	if !e.isClosed() {
		e.Logger.Warn(SignalEndedMsg, "signal", num, "target", s.target)
	}
}

// RegisterSpooler makes fn the spooler function of file (the last one a
// file registers counts; "" for run-time registrations). The host asks
// the functions in file name order until one takes the job.
func (e *Registrations) RegisterSpooler(file string, fn SpoolFunc) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spoolers[file] = e.guardSpooler(fn)
	if e.live {
		e.publishSpoolersLocked()
	}
	return nil
}

// publishSpoolersLocked hands the generation's spooler functions to the
// spooler, in file name order.
func (e *Registrations) publishSpoolersLocked() {
	if e.State.Spooler == nil {
		return
	}
	files := slices.Sorted(maps.Keys(e.spoolers))
	fns := make([]SpoolFunc, len(files))
	for i, f := range files {
		fns[i] = e.spoolers[f]
	}
	e.State.Spooler.SetFuncs(fns)
}

// guardSpooler holds the generation open while fn runs; a job that reaches
// a closed generation is handed back (ErrGenerationClosed) to run with the
// functions registered now.
func (e *Registrations) guardSpooler(fn SpoolFunc) SpoolFunc {
	return func(ctx context.Context, job map[string]Value) (int, error) {
		if !e.Acquire() {
			return 0, ErrGenerationClosed
		}
		defer e.Release()
		return fn(ctx, job)
	}
}

func (e *Registrations) isClosed() bool {
	e.gate.RLock()
	defer e.gate.RUnlock()
	return e.closed
}

// AddTimer adds a timer (iterations 0 = forever) of this generation.
func (e *Registrations) AddTimer(num uint8, every time.Duration, iterations int) error {
	if every <= 0 {
		return ErrTimerInterval
	}
	if iterations < 0 {
		return errors.New("api: timer iterations must not be negative")
	}
	return e.addTimer(stagedTimer{num: num, every: every, iterations: iterations})
}

// AddCron adds a cron entry of this generation.
func (e *Registrations) AddCron(num uint8, c Cron) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return e.addTimer(stagedTimer{num: num, cron: &c})
}

func (e *Registrations) addTimer(t stagedTimer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrGenerationClosed
	}
	if !e.live {
		e.timers = append(e.timers, t)
		return nil
	}
	id, err := e.startTimer(t)
	if err == nil {
		e.ids = append(e.ids, id)
	}
	return err
}

func (e *Registrations) startTimer(t stagedTimer) (TimerID, error) {
	if t.cron != nil {
		return e.State.Timers.AddCron(t.num, *t.cron)
	}
	return e.State.Timers.AddTimer(t.num, t.every, t.iterations)
}

// LookupRPC finds an RPC function as this generation's scripts see it:
// their own registrations first (also before Commit), then the shared
// registry.
func (e *Registrations) LookupRPC(name string) (RPCFunc, bool) {
	e.mu.Lock()
	fn, ok := e.rpcs[name]
	e.mu.Unlock()
	if ok {
		return fn, true
	}
	return e.State.RPC.Lookup(name)
}

// SignalRegistered reports whether signal num has a handler, counting
// this generation's staged ones.
func (e *Registrations) SignalRegistered(num uint8) bool {
	e.mu.Lock()
	_, ok := e.signals[num]
	e.mu.Unlock()
	return ok || e.State.Signals.Registered(num)
}

// Commit makes this generation's registrations live, replacing those of
// prev (nil for the first generation): prev's RPC functions that this
// generation does not define disappear, the others are replaced, in one
// step; signal handlers likewise; this generation's timers start and
// prev's stop. Call prev.Close afterwards to drain and free it.
func (e *Registrations) Commit(prev *Registrations) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live {
		return errors.New("api: generation already committed")
	}
	add := make(map[string]RPCFunc, len(e.rpcs))
	for name, fn := range e.rpcs {
		add[name] = e.guardRPC(name, fn)
	}
	var remove, removeConsumers []string
	var oldSignals map[uint8]stagedSignal
	if prev != nil {
		prev.mu.Lock()
		for name := range prev.rpcs {
			if _, kept := e.rpcs[name]; !kept {
				remove = append(remove, name)
			}
		}
		for ch := range prev.consumers {
			if _, kept := e.consumers[ch]; !kept {
				removeConsumers = append(removeConsumers, ch)
			}
		}
		oldSignals = maps.Clone(prev.signals)
		prev.superseded = true
		prev.mu.Unlock()
	}
	if err := e.State.RPC.Update(remove, add); err != nil {
		if prev != nil {
			prev.mu.Lock()
			prev.superseded = false
			prev.mu.Unlock()
		}
		return err
	}
	addConsumers := make(map[string]consumerEntry, len(e.consumers))
	for ch, ce := range e.consumers {
		addConsumers[ch] = e.guardConsumer(ch, ce)
	}
	e.State.Consumers.update(removeConsumers, addConsumers)
	for num := range oldSignals {
		if _, kept := e.signals[num]; !kept {
			e.State.Signals.Unregister(num)
		}
	}
	for num, s := range e.signals {
		entry, err := e.State.Signals.register(num, s.target, e.guardSignal(num, s.h))
		if err != nil {
			return err
		}
		s.entry = entry
		e.signals[num] = s
	}
	if prev != nil {
		prev.stopTimers()
	}
	for _, t := range e.timers {
		id, err := e.startTimer(t)
		if err != nil {
			return err
		}
		e.ids = append(e.ids, id)
	}
	e.timers = nil
	e.publishSpoolersLocked()
	e.live = true
	return nil
}

// guardRPC wraps fn so calls hold the generation open, and calls arriving
// after it closed go to the function registered under name now.
func (e *Registrations) guardRPC(name string, fn RPCFunc) RPCFunc {
	return func(ctx context.Context, args [][]byte) ([]byte, error) {
		if !e.Acquire() {
			// Forward once: the registry may still hold this generation's
			// own function (it was closed without a successor).
			if ctx.Value(forwardedKey{}) != nil {
				return nil, ErrGenerationClosed
			}
			cur, ok := e.State.RPC.Lookup(name)
			if !ok {
				return nil, ErrNoSuchFunction
			}
			return cur(context.WithValue(ctx, forwardedKey{}, true), args)
		}
		defer e.Release()
		return fn(ctx, args)
	}
}

type forwardedKey struct{}

func (e *Registrations) guardSignal(num uint8, h SignalHandler) SignalHandler {
	return func(ctx context.Context, n uint8) error {
		if !e.Acquire() { // replaced after the delivery found it: pass it on once to the handler registered now
			if ctx.Value(forwardedKey{}) == nil && e.State.Signals.Registered(n) {
				return e.State.Signals.RaiseSync(context.WithValue(ctx, forwardedKey{}, true), n)
			}
			return nil
		}
		defer e.Release()
		return h(ctx, n)
	}
}

// Acquire holds the generation open for a call; it reports false once the
// generation is closing.
func (e *Registrations) Acquire() bool {
	e.gate.RLock()
	defer e.gate.RUnlock()
	if e.closed {
		return false
	}
	e.active.Add(1)
	return true
}

// Release ends a call started with Acquire.
func (e *Registrations) Release() { e.active.Done() }

// RPCNames returns the RPC functions this generation registered, sorted.
func (e *Registrations) RPCNames() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.rpcs))
}

// SignalNums returns the signals this generation registered handlers for.
func (e *Registrations) SignalNums() []uint8 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.signals))
}

// TimerCount returns the number of timers and cron entries this
// generation runs (or will run once committed).
func (e *Registrations) TimerCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.timers) + len(e.ids)
}

func (e *Registrations) stopTimers() {
	e.mu.Lock()
	ids := e.ids
	e.ids = nil
	e.timers = nil
	e.mu.Unlock()
	for _, id := range ids {
		e.State.Timers.Remove(id)
	}
}

// Close stops the generation's timers, refuses new calls and waits until
// the calls in flight have finished or ctx is done. It does not touch the
// shared registries: Commit of the next generation does.
func (e *Registrations) Close(ctx context.Context) error {
	e.stopTimers()
	e.gate.Lock()
	first := !e.closed
	e.closed = true
	e.gate.Unlock()
	if first {
		go func() { e.active.Wait(); close(e.drained) }()
	}
	select {
	case <-e.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// callContext gives a callback (signal handler, RPC) its own scope.
func callContext(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	ctx, _, done := NewScope(ctx, nil, timeout)
	return ctx, done
}

// ScratchRegistrations is where a replica interpreter's registrations go while it
// runs the files again: Registrations of its own over a State of its own, never
// committed, so that the functions marked Func.Registers check their
// arguments and answer as they did in the first interpreter, which
// registered for real, without registering twice. The zero value is
// ready; Close it once the replica has loaded.
type ScratchRegistrations struct {
	env *Registrations
}

// For returns the scratch For standing in for of, made at the first call.
func (s *ScratchRegistrations) For(of *Registrations) (*Registrations, error) {
	if s.env == nil {
		st, err := NewState(StateConfig{Hostname: of.State.Hostname, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		s.env = NewRegistrations(st, of.Dir)
	}
	return s.env, nil
}

// Close stops what the scratch Registrations started (timers) and frees its State.
func (s *ScratchRegistrations) Close() {
	if s.env == nil {
		return
	}
	s.env.Close(context.Background())
	s.env.State.Close()
	s.env = nil
}

// Counters returns the containment counters of the Registrations' State, or nil.
func (e *Registrations) Counters() *Counters {
	if e == nil || e.State == nil {
		return nil
	}
	return e.State.Counters
}
