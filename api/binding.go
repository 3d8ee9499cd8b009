package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Func is one entry of the uWSGI API as every script language sees it.
// Exactly one of Call and Value is set: Value for the API's attributes
// (uwsgi.version, uwsgi.hostname, uwsgi.opt), Call for functions. Engines
// expose the table as it is, converting values to and from the neutral
// Value set; no engine writes an API function of its own.
type Func struct {
	Name   string // uWSGI's name, "cache_get"
	Params string // the parameters as documented, e.g. "key[, cache]"
	Doc    string // one line saying what it does
	// Registers marks the functions that register something with the
	// host (a function, a timer). An engine whose replica interpreters
	// run the files again calls them there against a ScratchEnv, so that
	// they check their arguments and answer as in the first interpreter
	// but register nothing twice.
	Registers bool
	// Call runs the function for the calling generation's env; nil for
	// an attribute. Engines call it through Invoke.
	Call func(ctx context.Context, env *Registrations, args Args) (Value, error)
	// Value returns the attribute's value for env; nil for a function.
	Value func(env *Registrations) Value
}

// Funcs returns the uWSGI API table, sorted by name. The slice is a copy.
func Funcs() []Func { return slices.Clone(funcs) }

// funcs is the one table, joined from the areas' parts (each kept in the
// file of its area) and sorted by name.
var funcs = joinFuncs(coreFuncs, spoolerFuncs, outboundFuncs, websocketFuncs, channelFuncs)

func joinFuncs(parts ...[]Func) []Func {
	var all []Func
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.SortFunc(all, func(a, b Func) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(all); i++ {
		if all[i].Name == all[i-1].Name {
			panic("api: uwsgi." + all[i].Name + " is in the table twice")
		}
	}
	return all
}

// Invoke calls table function f with args, recovering a panic into an error.
func (f Func) Invoke(ctx context.Context, env *Registrations, vals []Value) (v Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("api: uwsgi.%s panicked: %v", f.Name, p)
		}
	}()
	return f.Call(ctx, env, Args{Func: f.Name, Vals: vals})
}

// The remote cache syntax: "name@node", node an address as
// uwsgi.SplitAddr takes it. As in uWSGI, the first '@' ends the name, so
// "name@@abstract" is a cache on an abstract socket.
func splitCacheName(s string) (name, node string) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// cacheArg resolves the optional cache argument at index i: a local cache,
// or the name and client of a remote one. A local name no cache has gives
// an error wrapping ErrUnknownCache, which most functions answer with
// noCache.
func cacheArg(env *Registrations, a Args, i int) (*Cache, string, *uwsgi.Client, error) {
	s, err := a.OptString(i, "")
	if err != nil {
		return nil, "", nil, err
	}
	name, node := splitCacheName(s)
	if node != "" {
		return nil, name, env.State.Node(node), nil
	}
	c, err := env.State.Caches.Cache(name)
	return c, name, nil, err
}

// cacheKeyArgs reads what most cache functions start with: the key (#1)
// and the optional cache (#2).
func cacheKeyArgs(env *Registrations, a Args) (key []byte, c *Cache, name string, node *uwsgi.Client, err error) {
	if key, err = a.Bytes(0); err != nil {
		return nil, nil, "", nil, err
	}
	c, name, node, err = cacheArg(env, a, 1)
	return key, c, name, node, err
}

// noCache answers err: uWSGI answers a local cache name it does not know
// as a failed operation (nil; cache_num's 0 is none), not an error, so
// ErrUnknownCache gives none; other errors (bad arguments) stand.
func noCache(err error, none Value) (Value, error) {
	if errors.Is(err, ErrUnknownCache) {
		return none, nil
	}
	return nil, err
}

// goneOf returns the channel that closes when fn's interpreter is gone,
// for a function made during a call (a BoundCallable), else nil.
func goneOf(fn Callable) <-chan struct{} {
	if b, isBound := fn.(BoundCallable); isBound {
		return b.Gone()
	}
	return nil
}

// ok is what uWSGI's bindings return for success: true.
var ok Value = true

func notFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, uwsgi.ErrNotFound) || errors.Is(err, uwsgi.ErrNoResult)
}

// handleArg reads send/recv's optional leading fd (send([fd,] data)),
// which is there when more than n arguments were given. It returns the fd
// (-1: the client connection) and the index of the next argument.
func handleArg(a Args, n int) (fd, next int, err error) {
	if a.Len() > n {
		f, err := a.Int(0)
		if err != nil {
			return 0, 0, err
		}
		if f < 0 { // async_connect's -1: not the client connection
			return 0, 0, fmt.Errorf("%w: %d", ErrBadHandle, f)
		}
		return int(f), 1, nil
	}
	return -1, 0, nil
}

// coreFuncs are the functions of uWSGI's API list (RPC, caches, signals,
// timers, locks, I/O).
var coreFuncs = []Func{
	{Name: "add_cron", Registers: true, Params: "signum, minute, hour, day, month, weekday",
		Doc: "raise signum when the time matches (-1 any, -N every N)",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			num, err := a.Signal(0)
			if err != nil {
				return nil, err
			}
			var f [5]int
			for i := range f {
				v, err := a.Int(i + 1)
				if err != nil {
					return nil, err
				}
				f[i] = int(v)
			}
			return ok, env.AddCron(num, Cron{Minute: f[0], Hour: f[1], Day: f[2], Month: f[3], Weekday: f[4]})
		}},
	{Name: "add_rb_timer", Registers: true, Params: "signum, seconds[, iterations]",
		Doc: "raise signum every seconds, iterations times (0 or absent: forever)",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			num, err := a.Signal(0)
			if err != nil {
				return nil, err
			}
			every, err := a.Seconds(1)
			if err != nil {
				return nil, err
			}
			iter, err := a.OptInt(2, 0)
			if err != nil {
				return nil, err
			}
			return ok, env.AddTimer(num, every, int(iter))
		}},
	{Name: "add_timer", Registers: true, Params: "signum, seconds", Doc: "raise signum every seconds",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			num, err := a.Signal(0)
			if err != nil {
				return nil, err
			}
			every, err := a.Seconds(1)
			if err != nil {
				return nil, err
			}
			return ok, env.AddTimer(num, every, 0)
		}},
	{Name: "alarm", Params: "alarm, msg", Doc: "raise the named alarm with a message (sent to the host's alarm sink)",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			name, err := a.String(0)
			if err != nil {
				return nil, err
			}
			msg, err := a.String(1)
			if err != nil {
				return nil, err
			}
			env.State.RaiseAlarm(name, msg)
			return nil, nil
		}},
	{Name: "async_connect", Params: "addr", Doc: "connect to host:port or a unix socket; returns a file descriptor, -1 if the connection fails",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			addr, err := a.String(0)
			if err != nil {
				return nil, err
			}
			fd, err := scopeOrErr(ctx).Connect(ctx, addr)
			switch {
			case err == nil:
				return int64(fd), nil
			case errors.Is(err, ErrNoCall):
				return nil, err
			case ctx.Err() != nil: // interrupted, not refused
				return nil, context.Cause(ctx)
			}
			// uWSGI's uwsgi_connect logs the failure and returns -1
			// (refused, unreachable, an address that does not parse).
			env.Logger.Warn("async_connect failed", "addr", addr, "err", err)
			return int64(-1), nil
		}},
	{Name: "async_sleep", Params: "seconds", Doc: "sleep without holding a CPU (ends early if the call is interrupted)",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			d, err := a.Seconds(0)
			if err != nil {
				return nil, err
			}
			// A long call's limit counts only the time it runs.
			resume := ScopeOf(ctx).pauseLimit()
			defer resume(false)
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil, nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}},
	{Name: "cache_clear", Params: "[cache]", Doc: "remove every item of the cache; true, nil for a cache this host does not have",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			c, name, node, err := cacheArg(env, a, 0)
			if err != nil {
				return noCache(err, nil)
			}
			if node != nil {
				return okOrNil(node.CacheClear(ctx, uwsgi.InCache(name)))
			}
			return ok, c.Clear(ctx)
		}},
	{Name: "cache_dec", Params: "key[, delta[, expires[, cache]]]", Doc: "subtract delta (default 1) from a counter; the new value (see cache_inc)",
		Call: cacheCounterCall(uwsgi.CounterDec)},
	{Name: "cache_del", Params: "key[, cache]", Doc: "delete an item; nil if it did not exist",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			key, c, name, node, err := cacheKeyArgs(env, a)
			if err != nil {
				return noCache(err, nil)
			}
			if node != nil {
				return okOrNil(node.CacheDel(ctx, string(key), uwsgi.InCache(name)))
			}
			return okOrNil(c.Delete(ctx, key))
		}},
	{Name: "cache_div", Params: "key[, divisor[, expires[, cache]]]", Doc: "divide a counter by divisor (default 2), truncating; by 0 gives 0, as in uWSGI; the new value (see cache_inc)",
		Call: cacheCounterCall(uwsgi.CounterDiv)},
	{Name: "cache_exists", Params: "key[, cache]", Doc: "true if the item exists, else nil",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			key, c, name, node, err := cacheKeyArgs(env, a)
			if err != nil {
				return noCache(err, nil)
			}
			var found bool
			if node != nil {
				found, err = node.CacheExists(ctx, string(key), uwsgi.InCache(name))
			} else {
				found, err = c.Exists(ctx, key)
			}
			if err != nil || !found {
				return nil, err
			}
			return ok, nil
		}},
	{Name: "cache_get", Params: "key[, cache]", Doc: "the item's value, nil if missing; cache may be name@host:port; every cache function answers an unknown local cache like a missing item (nil, cache_num 0), as uWSGI does",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			key, c, name, node, err := cacheKeyArgs(env, a)
			if err != nil {
				return noCache(err, nil)
			}
			var v []byte
			if node != nil {
				v, err = node.CacheGet(ctx, string(key), uwsgi.InCache(name))
			} else {
				var it Item
				it, err = c.Get(ctx, key)
				v = it.Value
			}
			if notFound(err) {
				return nil, nil
			}
			if err != nil && node != nil {
				// uWSGI returns not_defined when the item cannot be had.
				env.Logger.Warn("cache_get from a remote node failed", "cache", a.Vals[1], "err", err)
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return string(v), nil
		}},
	{Name: "cache_inc", Params: "key[, delta[, expires[, cache]]]",
		Doc: "add delta (default 1) to a counter, uWSGI's 8-byte integer (a missing item counts as 0 and gets expires; " +
			"an existing one keeps its expiry); the new value, nil if the item holds no counter or the result overflows",
		Call: cacheCounterCall(uwsgi.CounterInc)},
	{Name: "cache_keys", Params: "[cache]", Doc: "the keys of the cache's live items, most recently used first; an unknown cache raises (uWSGI's ValueError)",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			c, _, node, err := cacheArg(env, a, 0)
			if err != nil {
				return nil, err
			}
			if node != nil {
				return nil, errors.New("api: cache_keys works on local caches only")
			}
			keys, err := c.Keys(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]Value, len(keys))
			for i, k := range keys {
				out[i] = string(k)
			}
			return out, nil
		}},
	{Name: "cache_mul", Params: "key[, factor[, expires[, cache]]]", Doc: "multiply a counter by factor (default 2); the new value (see cache_inc)",
		Call: cacheCounterCall(uwsgi.CounterMul)},
	{Name: "cache_num", Params: "key[, cache]", Doc: "the counter stored under key; 0 if it is missing or holds no counter, as in uWSGI",
		Call: cacheNum},
	{Name: "cache_set", Params: "key, value[, expires[, cache]]", Doc: "store an item unless it exists; true, or nil on failure",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			return cacheStore(ctx, env, a, false)
		}},
	{Name: "cache_update", Params: "key, value[, expires[, cache]]", Doc: "store or overwrite an item; true, or nil on failure",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			return cacheStore(ctx, env, a, true)
		}},
	{Name: "call", Params: "name, args...", Doc: "call an RPC function of this host, in any language; nil when it gives no result",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			name, err := a.String(0)
			if err != nil {
				return nil, err
			}
			return callNode(ctx, env, "", name, a, 1)
		}},
	{Name: "close", Params: "fd", Doc: "close a file descriptor from async_connect (or the client connection)",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			fd, err := a.Int(0)
			if err != nil {
				return nil, err
			}
			return nil, scopeOrErr(ctx).CloseFD(int(fd))
		}},
	{Name: "connection_fd", Params: "", Doc: "the file descriptor of the client connection",
		Call: func(ctx context.Context, _ *Registrations, _ Args) (Value, error) {
			fd, err := scopeOrErr(ctx).ConnectionFD()
			return int64(fd), err
		}},
	{Name: "disconnect", Params: "", Doc: "close the client connection; the handler goes on",
		Call: func(ctx context.Context, _ *Registrations, _ Args) (Value, error) {
			return nil, scopeOrErr(ctx).Disconnect()
		}},
	{Name: "hostname", Params: "", Doc: "the server's hostname",
		Value: func(env *Registrations) Value { return env.State.Hostname }},
	{Name: "is_connected", Params: "fd", Doc: "true if the file descriptor is an open connection",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			fd, err := a.Int(0)
			if err != nil {
				return nil, err
			}
			return scopeOrErr(ctx).IsConnected(int(fd)), nil
		}},
	{Name: "lock", Params: "[num]", Doc: "acquire user lock num (default 0), waiting for it",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			n, err := a.OptInt(0, 0)
			if err != nil {
				return nil, err
			}
			return nil, env.State.Locks.Lock(ctx, int(n))
		}},
	{Name: "log", Params: "msg...", Doc: "write a line to the host's log: the values joined with spaces",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			if a.Len() == 0 { // uWSGI's log takes one argument
				return nil, &ArgError{Func: a.Func, Index: 0, Msg: "value expected, got no value"}
			}
			parts := make([]string, len(a.Vals))
			for i, v := range a.Vals {
				parts[i] = FormatValue(v)
			}
			env.Logger.Info(strings.Join(parts, " "), "source", "script")
			return nil, nil
		}},
	{Name: "masterpid", Params: "", Doc: "the pid of the host process (there is no separate master)",
		Call: func(context.Context, *Registrations, Args) (Value, error) { return int64(os.Getpid()), nil }},
	{Name: "mule_id", Params: "", Doc: "0: scripthost has no mules",
		Call: func(context.Context, *Registrations, Args) (Value, error) { return int64(0), nil }},
	{Name: "opt", Params: "", Doc: "the host's options (read-only)",
		Value: func(env *Registrations) Value {
			m := make(map[string]Value, len(env.State.Options))
			for k, v := range env.State.Options {
				m[k] = v
			}
			return m
		}},
	{Name: "ready_fd", Params: "", Doc: "after suspend: the file descriptor that became ready, or -1 on timeout",
		Call: func(ctx context.Context, _ *Registrations, _ Args) (Value, error) {
			return int64(ScopeOf(ctx).ReadyFD()), nil
		}},
	{Name: "recv", Params: "[fd,] len", Doc: "read at most len bytes (from the client by default); nil at end of stream",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			fd, at, err := handleArg(a, 1)
			if err != nil {
				return nil, err
			}
			n, err := a.Int(at)
			if err != nil {
				return nil, err
			}
			b, err := scopeOrErr(ctx).Recv(ctx, fd, int(min(n, 1<<24)))
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return string(b), nil
		}},
	{Name: "register_rpc", Registers: true, Params: "name, func[, argc]", Doc: "export func as an RPC function (argc is accepted and ignored, as in uWSGI)",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			name, err := a.String(0)
			if err != nil {
				return nil, err
			}
			fn, err := a.Callable(1)
			if err != nil {
				return nil, err
			}
			// A function made during a call lives in one interpreter: the
			// registration ends with it.
			return ok, env.RegisterBoundRPC(name, RPCFromCallable(fn), goneOf(fn))
		}},
	{Name: "register_signal", Registers: true, Params: "signum, target, func", Doc: "run func when signum is raised (target: \"\", worker, workers, mule, spooler, ...: all mean this process)",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			num, err := a.Signal(0)
			if err != nil {
				return nil, err
			}
			target, err := a.OptString(1, "")
			if err != nil {
				return nil, err
			}
			fn, err := a.Callable(2)
			if err != nil {
				return nil, err
			}
			h := func(ctx context.Context, n uint8) error {
				ctx, done := callContext(ctx, 0)
				defer done()
				_, err := fn.Call(ctx, []Value{int64(n)})
				return err
			}
			return ok, env.RegisterBoundSignal(num, target, h, goneOf(fn))
		}},
	{Name: "rpc", Params: "node, name, args...", Doc: "call an RPC function on node (host:port, or nil/\"\" for this host); nil when it gives no result",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			node, err := a.OptString(0, "")
			if err != nil {
				return nil, err
			}
			name, err := a.String(1)
			if err != nil {
				return nil, err
			}
			return callNode(ctx, env, node, name, a, 2)
		}},
	{Name: "send", Params: "[fd,] data", Doc: "write data (to the client by default); returns the bytes written",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			fd, at, err := handleArg(a, 1)
			if err != nil {
				return nil, err
			}
			data, err := a.Bytes(at)
			if err != nil {
				return nil, err
			}
			n, err := scopeOrErr(ctx).Send(ctx, fd, data)
			return int64(n), err
		}},
	{Name: "set_user_harakiri", Params: "seconds", Doc: "interrupt the running call after seconds from now (0: back to the host's limit)",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) {
			d, err := a.Seconds(0)
			if err != nil {
				return nil, err
			}
			s := ScopeOf(ctx)
			if s == nil {
				return nil, errors.New("api: set_user_harakiri outside a call")
			}
			s.SetHarakiri(d)
			return nil, nil
		}},
	{Name: "setprocname", Params: "name", Doc: "set the process name shown by ps (Linux: at most 15 bytes)",
		Call: func(_ context.Context, _ *Registrations, a Args) (Value, error) {
			name, err := a.String(0)
			if err != nil {
				return nil, err
			}
			return nil, setProcName(name)
		}},
	{Name: "signal", Params: "signum[, node]", Doc: "raise signum here, or on node (host:port)",
		Call: func(ctx context.Context, env *Registrations, a Args) (Value, error) {
			num, err := a.Signal(0)
			if err != nil {
				return nil, err
			}
			node, err := a.OptString(1, "")
			if err != nil {
				return nil, err
			}
			if node != "" {
				return nil, env.State.Node(node).Signal(ctx, num)
			}
			return nil, env.State.Signals.Raise(num)
		}},
	{Name: "signal_registered", Params: "signum", Doc: "true if a handler is registered for signum",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			num, err := a.Signal(0)
			if err != nil {
				return nil, err
			}
			return env.SignalRegistered(num), nil
		}},
	{Name: "suspend", Params: "", Doc: "wait for what wait_fd_read/wait_fd_write registered, or let other work run",
		Call: func(ctx context.Context, _ *Registrations, _ Args) (Value, error) {
			s := ScopeOf(ctx)
			if s == nil {
				runtime.Gosched()
				return nil, nil
			}
			return nil, s.Suspend(ctx)
		}},
	{Name: "unlock", Params: "[num]", Doc: "release user lock num (default 0); a lock not held stays free",
		Call: func(_ context.Context, env *Registrations, a Args) (Value, error) {
			n, err := a.OptInt(0, 0)
			if err != nil {
				return nil, err
			}
			if err := env.State.Locks.Unlock(int(n)); !errors.Is(err, ErrNotLocked) {
				return nil, err
			}
			return nil, nil // uWSGI's unlock of a free lock does nothing
		}},
	{Name: "version", Params: "", Doc: "the scripthost version",
		Value: func(env *Registrations) Value { return env.State.Version }},
	{Name: "wait_fd_read", Params: "fd[, timeout]", Doc: "make the next suspend wait until fd is readable (timeout in seconds)",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) { return waitFD(ctx, a, false) }},
	{Name: "wait_fd_write", Params: "fd[, timeout]", Doc: "make the next suspend wait until fd is writable (timeout in seconds)",
		Call: func(ctx context.Context, _ *Registrations, a Args) (Value, error) { return waitFD(ctx, a, true) }},
	{Name: "worker_id", Params: "", Doc: "1: the host is one process serving every request",
		Call: func(context.Context, *Registrations, Args) (Value, error) { return int64(1), nil }},
}

// scopeOrErr returns the call's scope; a nil *Scope answers every method
// with an error, so functions that need a call fail cleanly outside one.
func scopeOrErr(ctx context.Context) *Scope { return ScopeOf(ctx) }

func okOrNil(err error) (Value, error) {
	if err == nil {
		return ok, nil
	}
	if notFound(err) || errors.Is(err, ErrExists) || errors.Is(err, uwsgi.ErrExists) || errors.Is(err, uwsgi.ErrFailed) {
		return nil, nil
	}
	return nil, err
}

// writeArgs reads the arguments the cache writers share after the key and
// value: the time to live in seconds (#3, optional) and the cache (#4,
// optional).
func writeArgs(env *Registrations, a Args) (ttl time.Duration, c *Cache, name string, node *uwsgi.Client, err error) {
	if a.Has(2) {
		if ttl, err = a.Seconds(2); err != nil {
			return
		}
	}
	c, name, node, err = cacheArg(env, a, 3)
	return
}

func cacheStore(ctx context.Context, env *Registrations, a Args, update bool) (Value, error) {
	key, err := a.Bytes(0)
	if err != nil {
		return nil, err
	}
	val, err := a.Bytes(1)
	if err != nil {
		return nil, err
	}
	ttl, c, name, node, err := writeArgs(env, a)
	if err != nil {
		return noCache(err, nil)
	}
	if node != nil {
		opts := []uwsgi.CacheOption{uwsgi.InCache(name), uwsgi.Expires(ttl)}
		if update {
			return okOrNil(node.CacheUpdate(ctx, string(key), val, opts...))
		}
		return okOrNil(node.CacheSet(ctx, string(key), val, opts...))
	}
	if update {
		err = c.Update(ctx, key, val, ttl)
	} else {
		err = c.Set(ctx, key, val, ttl)
	}
	if errors.Is(err, ErrExists) || errors.Is(err, ErrValueTooLarge) || errors.Is(err, ErrKeyTooLarge) {
		return nil, nil // uWSGI returns nil when the item cannot be stored
	}
	return okOrNil(err)
}

// cacheCounterCall returns the Call of the cache function of op.
func cacheCounterCall(op uwsgi.CounterOp) func(context.Context, *Registrations, Args) (Value, error) {
	return func(ctx context.Context, env *Registrations, a Args) (Value, error) {
		return cacheCounter(ctx, env, a, op)
	}
}

// cacheCounter is cache_inc, cache_dec, cache_mul and cache_div: key,
// operand (uWSGI's default when absent), expires of a new item, cache. A
// remote cache is updated by the client's read and write (not atomic; see
// uwsgi.Client.CacheCounter). An item that holds no counter, a result
// outside int64 and an item too large for the cache give nil, as uWSGI
// gives None when it cannot store; the first two are logged.
func cacheCounter(ctx context.Context, env *Registrations, a Args, op uwsgi.CounterOp) (Value, error) {
	key, err := a.Bytes(0)
	if err != nil {
		return nil, err
	}
	operand, err := a.OptInt(1, op.DefaultOperand())
	if err != nil {
		return nil, err
	}
	ttl, c, name, node, err := writeArgs(env, a)
	if err != nil {
		return noCache(err, nil)
	}
	var n int64
	if node != nil {
		n, err = node.CacheCounter(ctx, op, string(key), operand, uwsgi.InCache(name), uwsgi.Expires(ttl))
	} else {
		n, err = c.Counter(ctx, op, key, operand, ttl)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, ErrNotNumber), errors.Is(err, ErrOverflow),
		errors.Is(err, uwsgi.ErrNotCounter), errors.Is(err, uwsgi.ErrCounterOverflow):
		env.Logger.Warn("cache_"+op.String()+" left the item as it was", "key", string(key), "err", err)
		return nil, nil
	case errors.Is(err, ErrValueTooLarge), errors.Is(err, ErrKeyTooLarge):
		return nil, nil
	}
	return okOrNil(err)
}

// cacheNum is cache_num: like uWSGI's, 0 when the item is missing or holds
// something else (a remote node that cannot be reached is logged).
func cacheNum(ctx context.Context, env *Registrations, a Args) (Value, error) {
	key, c, name, node, err := cacheKeyArgs(env, a)
	if err != nil {
		return noCache(err, int64(0))
	}
	var n int64
	if node != nil {
		n, err = node.CacheNum(ctx, string(key), uwsgi.InCache(name))
	} else {
		n, err = c.Num(ctx, key)
	}
	switch {
	case err == nil:
		return n, nil
	case notFound(err), errors.Is(err, ErrNotNumber), errors.Is(err, uwsgi.ErrNotCounter):
		return int64(0), nil
	case node != nil:
		env.Logger.Warn("cache_num from a remote node failed", "cache", a.Vals[1], "err", err)
		return int64(0), nil
	}
	return nil, err
}

// MaxSelfRPCDepth bounds uwsgi.rpc calls to this host's own listeners
// nested in one another: they run in-process, like uwsgi.call, instead of
// waiting over the network for an interpreter their caller holds.
const MaxSelfRPCDepth = 16

// ErrRPCDepth: uwsgi.rpc to this host nested deeper than MaxSelfRPCDepth.
var ErrRPCDepth = errors.New("api: rpc to this host nested too deep")

type localNodeKey struct{}
type selfRPCDepthKey struct{}

// WithLocalNode returns ctx carrying isLocal, which tells whether a node
// address of uwsgi.rpc is one of this host's own listeners; calls to
// those run in-process.
func WithLocalNode(ctx context.Context, isLocal func(node string) bool) context.Context {
	return context.WithValue(ctx, localNodeKey{}, isLocal)
}

// isLocalNode reports whether ctx's host listens on node.
func isLocalNode(ctx context.Context, node string) bool {
	f, _ := ctx.Value(localNodeKey{}).(func(string) bool)
	return f != nil && f(node)
}

// callNode calls name with a's values from index first on, locally when
// node is empty or this host. No result (unknown function, nil, error
// raised by a script elsewhere) is nil, as uWSGI returns None; the
// function's own error is raised when it is local.
func callNode(ctx context.Context, env *Registrations, node, name string, a Args, first int) (Value, error) {
	args, err := a.Rest(first)
	if err != nil {
		return nil, err
	}
	var res []byte
	if node != "" && isLocalNode(ctx, node) {
		depth, _ := ctx.Value(selfRPCDepthKey{}).(int)
		if depth >= MaxSelfRPCDepth {
			return nil, fmt.Errorf("%w: %q called on %s more than %d deep", ErrRPCDepth, name, node, MaxSelfRPCDepth)
		}
		ctx = context.WithValue(ctx, selfRPCDepthKey{}, depth+1)
		node = ""
	}
	if node == "" {
		fn, ok := env.LookupRPC(name)
		if !ok {
			return nil, nil
		}
		res, err = callRPC(ctx, name, fn, args)
		if errors.Is(err, ErrNoResult) || errors.Is(err, ErrNoSuchFunction) {
			return nil, nil
		}
	} else {
		res, err = env.State.Node(node).Call(ctx, name, args...)
		if errors.Is(err, uwsgi.ErrNoResult) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return string(res), nil
}

func waitFD(ctx context.Context, a Args, write bool) (Value, error) {
	fd, err := a.Int(0)
	if err != nil {
		return nil, err
	}
	var timeout time.Duration
	if a.Has(1) {
		if timeout, err = a.Seconds(1); err != nil {
			return nil, err
		}
	}
	return ok, scopeOrErr(ctx).WaitFD(int(fd), write, timeout)
}

// setProcName renames the process as ps shows it.
func setProcName(name string) error {
	if len(name) > 15 {
		name = name[:15]
	}
	if err := os.WriteFile("/proc/self/comm", []byte(name), 0); err != nil {
		return fmt.Errorf("api: setprocname: %w", err)
	}
	return nil
}
