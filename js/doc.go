// Package js is scripthost's JavaScript engine: .js files of the scripts
// directory run on goja (an ECMAScript 5.1+ interpreter in Go, with most
// of ES2015+) as CommonJS modules, with the uWSGI API as the global
// object `uwsgi`; they serve JSGI apps (modifier1 24) the way uWSGI's V8
// plugin did, without its defects, and export RPC functions and signal
// handlers to the shared registry.
//
// # Generations, runtimes and the pool
//
// Load compiles every file once (goja Programs are shared by runtimes)
// and builds a pool of Options.PoolSize runtimes from them at once, so
// that every error surfaces at load. A runtime is used by one call at a
// time; calls borrow one from the pool, waiting as long as their context
// allows, at most Options.PoolWait.
//
// Each file runs once per runtime, in file-name order, as a CommonJS
// module; a file a require already ran is not run again. Registrations
// happen once: the first runtime runs the files against the real api.Registrations,
// the others are replicas in which register_rpc, register_signal,
// add_timer, add_rb_timer and add_cron check their arguments and capture
// their function arguments but register nothing (they run against a
// scratch Registrations, so they succeed and fail as in the first runtime); every
// other uwsgi call runs normally in every runtime (a module-level
// uwsgi.log logs once per runtime). Every function converted for the API
// during a load gets the next key (0, 1, ...), the same in every runtime,
// so a registered callback is (program, key) and runs in whichever
// runtime a call borrows. Module-level code must therefore be
// deterministic: a replica capturing other callbacks or apps than the
// first runtime fails the load (ErrNondeterministicLoad).
//
// A function first passed to the API after the load (a closure registered
// by a request, a module-level function never passed at load, anything
// registered by a module first required during a call) was not captured
// by the other runtimes: it is pinned to the runtime that made it, as a
// function a uWSGI worker registers exists in that worker only. Calling
// it borrows that very runtime, waiting while it serves other calls; once
// that runtime is discarded (see Limits) or its program closed, the call
// fails with ErrRuntimeGone, and a signal handler or RPC function pinned
// to it is unregistered (one line is logged; see api.BoundCallable). Two calls that
// each hold a runtime and wait for the other's end only by their
// deadlines; register at load what must run anywhere. Functions made by
// Eval cannot be registered.
//
// A call that calls back into the same program (uwsgi.call from JS into
// a JS RPC of the same files) runs in the runtime it already holds: the
// context carries the held runtime, so a pool of one cannot deadlock.
// Such a context must not be shared with other goroutines while the call
// runs.
//
// # State between calls
//
// Modules run in strict mode: assigning an undeclared variable (`leaked
// = 1` in a handler) throws a ReferenceError instead of creating a
// global. Once the files have loaded in a runtime (the first one and
// every replica), the runtime is hardened: every intrinsic
// reachable from globalThis (constructors, prototypes, Math, JSON,
// Reflect, console, the timers, uwsgi, accessor functions) and the
// prototypes of iterators, generators and async functions are frozen, and
// so is globalThis. A call's `globalThis.x = 1`, `Object.prototype.y =
// 2` or `Array.prototype.push = f` throws a TypeError, so no call leaves
// a changed built-in or a new global to a later one. Assigning
// toString, toLocaleString, valueOf, constructor, name or message on an
// object that inherits them from a frozen prototype works as before
// (they are accessors whose setter defines the property on the object:
// the "override mistake" of frozen prototypes is avoided for them);
// assigning any other inherited built-in property (`arr.push = f`,
// `date.toJSON = f`) throws: define it with Object.defineProperty.
//
// What persists by design is module state: each runtime of the pool runs
// the files once, so module-level variables start the same in every
// runtime, but a call that changes them (a counter, an object in a
// module variable) changes that runtime only, and later calls see it
// there. State meant to be shared belongs in uwsgi.cache_*. Request
// objects, JSGI inputs and timers are per call. Eval runtimes are fresh
// per Eval and not hardened.
//
// # Limits
//
// Every call watches its context (context.AfterFunc calls the runtime's
// Interrupt): harakiri, cancellation and the memory watchdog (which
// cancels the call that allocated most with a cause wrapping
// api.ErrMemoryLimit) stop runaway code, and blocking uwsgi functions
// watch the context themselves. The call stack holds
// Options.MaxCallStackSize frames. Each file's top level runs under
// api.Registrations.FileContext: one that does not end within Registrations.LoadTimeout fails
// the load with a *api.ScriptError naming the file and wrapping
// api.ErrLoadTimeout (the host counts it; a replacement built later is
// counted in api.Counters.LoadTimeouts here).
//
// goja allocates in native code harakiri cannot interrupt, and a Go
// allocation the machine cannot hold kills the process, so every
// built-in that allocates a size the script picks is guarded: it reads
// the size once, charges it to the call with
// api.Charge and only then runs, on arguments converted once (a valueOf
// or a length getter cannot answer differently the second time). Refused
// charges (over the allocation cap, or no room in the memory budget)
// throw a RangeError whose cause is the api error (errors.Is works on the
// call's error), and the runtime is discarded after the call. Guarded:
// ArrayBuffer and every typed array constructor (from a length, an
// array-like, an iterable, another typed array; also through
// subclasses, species and TypedArray.from; they stay proxies of the
// originals with the same name, length, prototype and instanceof),
// Array.from, Array.prototype.map, sort, toSorted and fill, the
// iterators of arrays and typed arrays (spreading, for-of, new Set and
// Array.from copy what they yield), Function.prototype.apply,
// Reflect.apply and Reflect.construct. The string builders
// (String.prototype.repeat, padStart, padEnd, concat, Array.prototype.join
// with the length of every element, %TypedArray%.prototype.join,
// JSON.stringify) also throw a RangeError wrapping ErrStringTooLarge
// beyond Options.MaxStringSize characters, and charge two bytes per
// character. JSON.stringify watches the context and refuses nesting
// deeper than 10000, as JSON.parse and join do, so native recursion
// cannot overflow the Go stack. sort, fill and the array iterators refuse
// (TypeError) a Proxy or an array-like whose length is an accessor.
// new Array(n) is not guarded: goja keeps it sparse.
//
// A runtime whose call was interrupted (also when its context merely
// ended during the call), panicked, overflowed its stack or was refused
// an allocation is discarded and replaced by a fresh replica; a plain
// exception (also ErrStringTooLarge) leaves it usable.
//
// Not covered: string concatenation with + and template literals (each
// step is interruptible; a loop growing strings or arrays is stopped by
// harakiri or the memory watchdog), String.prototype.replace and
// replaceAll with a replacement that multiplies the text, native loops
// that only take time (Array.prototype.concat, forEach or indexOf over
// an array-like of length 2**53-1), and regular expressions that need
// backtracking (backreferences, lookaround), which goja runs in regexp2:
// such a match does not see the call's deadline and is bounded by
// Options.RegexpMatchTimeout instead.
//
// A call waits at most Options.PoolWait for a free runtime; then it fails
// with an error wrapping ErrPoolBusy and vmpool.ErrBusy, counted in
// api.Counters.PoolTimeouts and logged.
//
// # Sandbox
//
// A runtime has the ECMAScript built-ins, console (log, info, debug,
// warn, error, trace: lines for the logger), setTimeout, setInterval,
// clearTimeout, clearInterval, queueMicrotask, the uwsgi object, and
// CommonJS: module, exports, require, __filename and __dirname (names
// relative to the scripts directory). There is no process object and no
// file or network access beyond the uwsgi API, and goja's loading of
// source maps named by comments is off. require resolves "./x" and
// "../x" from the requiring module and other names from the scripts
// directory, to x.js or x/index.js inside the directory only (no
// absolute paths, no "..", no symbolic links out of it; no .json, no
// node_modules), compiles each file once per program and runs it once
// per runtime (the module cache is per runtime). require("uwsgi") is the
// uwsgi object.
//
// # Values
//
// undefined and null are the API's nil; numbers are integers when
// integral and within 2**53, else floats; strings, booleans, arrays and
// objects (their own enumerable string keys) convert as themselves; a
// Uint8Array or ArrayBuffer is bytes; functions are callables; symbols
// and promises do not convert. RPC functions get strings and return a value converted
// with String() (so 0.1+0.2 is "0.30000000000000004"), sent as its UTF-8
// bytes; null, undefined, objects and arrays are no result; a Uint8Array
// or ArrayBuffer is sent as its bytes. A function may return a promise
// (be async): the call runs the event loop (promise jobs and timers)
// until it settles.
// Strings from the API reach scripts decoded as UTF-8: bytes that are
// not UTF-8 become U+FFFD, so binary data is safe only as a Uint8Array
// (input.readBytes, RPC results, API arguments, and what the API gives as
// bytes: binary WebSocket messages of uwsgi.websocket_recv).
//
// # JSGI
//
// A file whose module.exports is a function, or an object with an app
// function (JSGI's exports.app), defines an app named after the file
// without ".js". As in uWSGI's V8 plugin (JSGI 0.3), it is called with a
// request object (method, scriptName, pathInfo, queryString, host, port,
// scheme, version, headers with lower-case names, remoteAddr, env, jsgi,
// and input to read the body) and returns, or resolves a promise to,
// {status, headers, body}: the status a number or a string, the headers
// an object, the body a string, bytes, an array of those, an object with
// forEach(write) or an iterable, each chunk written and flushed at once.
// A null result means the app answered by itself (uwsgi.send).
package js
