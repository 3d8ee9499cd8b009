package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
)

// Limits of uWSGI's RPC subsystem.
const (
	// MaxRPCName is the longest function name in bytes; uWSGI refuses
	// to register longer names.
	MaxRPCName = 255
	// MaxRPCArgs is the most arguments a call carries: a uwsgi array
	// holds at most 255 items and the first one is the function name.
	MaxRPCArgs = 254
)

// DefaultMaxRPC is the number of functions a Registry holds when
// NewRegistry is given 0. uWSGI's --rpc-max defaults to 64, which is
// tight once several script files each export a few functions.
const DefaultMaxRPC = 1024

var (
	// ErrNoResult is returned by an RPCFunc that has no result (a Lua
	// nil or a script error in uWSGI terms). On the wire it closes the
	// connection without a byte, which differs from an empty result only
	// inside the process.
	ErrNoResult = errors.New("api: rpc function returned no result")

	// Errors of Register and Call; the returned errors wrap them with the
	// function name and the limit that was hit.
	ErrRPCName        = errors.New("api: invalid rpc function name") // empty, or longer than uWSGI allows
	ErrNilFunc        = errors.New("api: nil function")              // Register was given no function
	ErrTooManyRPC     = errors.New("api: too many rpc functions")    // the registry's limit
	ErrNoSuchFunction = errors.New("api: no such rpc function")      // Call of a name never registered
	ErrTooManyArgs    = errors.New("api: too many rpc arguments")    // more than uWSGI's 254
	ErrRPCPanic       = errors.New("api: rpc function panicked")     // a Go function's panic, recovered
)

// RPCFunc is a function callable by RPC. uWSGI RPC is typeless, so the
// arguments and the result are byte strings. Returning ErrNoResult signals
// "no result"; an empty slice is a valid, empty result. The args slices are
// owned by the caller and may be reused once the function returns, so a
// function must copy anything it keeps. Callers only read the result, so a
// function may return memory it keeps (a cached value, StringBytes of a
// string) without copying it.
type RPCFunc func(ctx context.Context, args [][]byte) ([]byte, error)

// PanicError reports a panic recovered from a registered RPC function or
// signal handler, so that a faulty script or Go callback never brings the
// host down. It matches ErrRPCPanic or ErrSignalPanic with errors.Is and
// keeps the stack, because the panic site is what the operator needs.
type PanicError struct {
	Func  string // the RPC name, or "signal N"
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the time of the panic

	kind error
}

// Error says which function panicked and with what.
func (e *PanicError) Error() string {
	return fmt.Sprintf("%v: %s: %v", e.kind, e.Func, e.Value)
}

// Unwrap returns ErrRPCPanic or ErrSignalPanic.
func (e *PanicError) Unwrap() error { return e.kind }

// Registry maps RPC names to functions. Lookups are the hot path (every
// RPC packet and every uwsgi.call) while registrations are rare (script
// load), so readers load an immutable map through an atomic pointer and
// never lock; writers copy the map, change the copy and publish it.
//
// Use NewRegistry; the zero value is an empty registry with the default
// limit. A Registry is safe for concurrent use.
type Registry struct {
	mu    sync.Mutex // serializes writers; readers never take it
	funcs atomic.Pointer[map[string]RPCFunc]
	max   int
}

// NewRegistry returns an empty registry that holds at most maxFuncs
// distinct names; maxFuncs <= 0 means DefaultMaxRPC.
func NewRegistry(maxFuncs int) *Registry {
	r := &Registry{max: maxFuncs}
	r.funcs.Store(&map[string]RPCFunc{})
	return r
}

func (r *Registry) limit() int {
	if r.max <= 0 {
		return DefaultMaxRPC
	}
	return r.max
}

func (r *Registry) load() map[string]RPCFunc {
	if m := r.funcs.Load(); m != nil {
		return *m
	}
	return nil
}

// Register makes fn callable as name, replacing any function registered
// under the same name (as uWSGI does, so a reloaded script takes over its
// names). The name must be 1..MaxRPCName bytes and is matched exactly.
func (r *Registry) Register(name string, fn RPCFunc) error {
	if len(name) == 0 || len(name) > MaxRPCName {
		return fmt.Errorf("%w: %q is %d bytes, want 1..%d", ErrRPCName, name, len(name), MaxRPCName)
	}
	if fn == nil {
		return fmt.Errorf("api: register rpc %q: %w", name, ErrNilFunc)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	if _, replace := old[name]; !replace && len(old) >= r.limit() {
		return fmt.Errorf("%w: cannot register %q, limit is %d", ErrTooManyRPC, name, r.limit())
	}
	m := make(map[string]RPCFunc, len(old)+1)
	maps.Copy(m, old)
	m[name] = fn
	r.funcs.Store(&m)
	return nil
}

// Unregister removes name and reports whether it was registered. Calls
// already running keep the function they looked up.
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	if _, ok := old[name]; !ok {
		return false
	}
	m := maps.Clone(old)
	delete(m, name)
	r.funcs.Store(&m)
	return true
}

// Lookup returns the function registered as name.
func (r *Registry) Lookup(name string) (RPCFunc, bool) {
	fn, ok := r.load()[name]
	return fn, ok
}

// LookupBytes is Lookup for a name straight out of a packet buffer. It does
// not allocate: the compiler turns m[string(b)] into a lookup without a copy.
func (r *Registry) LookupBytes(name []byte) (RPCFunc, bool) {
	fn, ok := r.load()[string(name)]
	return fn, ok
}

// Call calls the function registered as name. An unknown name gives an
// error wrapping ErrNoSuchFunction, more than MaxRPCArgs arguments
// ErrTooManyArgs, and a panic in the function a *PanicError wrapping
// ErrRPCPanic. Otherwise the function's own result and error are returned
// unchanged, so errors.Is(err, ErrNoResult) works.
func (r *Registry) Call(ctx context.Context, name string, args ...[]byte) ([]byte, error) {
	fn, ok := r.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchFunction, name)
	}
	return callRPC(ctx, name, fn, args)
}

// CallBytes is Call for a name and arguments taken from a packet (a uwsgi
// array), avoiding the string conversion of the name on the hot path.
func (r *Registry) CallBytes(ctx context.Context, name []byte, args [][]byte) ([]byte, error) {
	fn, ok := r.LookupBytes(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchFunction, name)
	}
	return callRPC(ctx, string(name), fn, args)
}

func callRPC(ctx context.Context, name string, fn RPCFunc, args [][]byte) (res []byte, err error) {
	if len(args) > MaxRPCArgs {
		return nil, fmt.Errorf("%w: %q called with %d, max %d", ErrTooManyArgs, name, len(args), MaxRPCArgs)
	}
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, &PanicError{Func: name, Value: v, Stack: debug.Stack(), kind: ErrRPCPanic}
		}
	}()
	return fn(ctx, args)
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(r.load()))
}

// Len returns the number of registered functions.
func (r *Registry) Len() int { return len(r.load()) }

// Update removes the names in remove and registers the functions in add,
// as one change: a concurrent lookup sees either the old set or the new
// one, never a mix. Names are checked as Register checks them; on error
// nothing changes.
func (r *Registry) Update(remove []string, add map[string]RPCFunc) error {
	for name, fn := range add {
		if len(name) == 0 || len(name) > MaxRPCName {
			return fmt.Errorf("%w: %q is %d bytes, want 1..%d", ErrRPCName, name, len(name), MaxRPCName)
		}
		if fn == nil {
			return fmt.Errorf("api: register rpc %q: %w", name, ErrNilFunc)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := maps.Clone(r.load())
	if m == nil {
		m = map[string]RPCFunc{}
	}
	for _, name := range remove {
		delete(m, name)
	}
	maps.Copy(m, add)
	if len(m) > r.limit() {
		return fmt.Errorf("%w: %d functions, limit is %d", ErrTooManyRPC, len(m), r.limit())
	}
	r.funcs.Store(&m)
	return nil
}
