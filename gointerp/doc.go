// Package gointerp is scripthost's Go engine: .go files of the scripts
// directory are interpreted by yaegi (github.com/traefik/yaegi) with the
// uWSGI API as the importable package "scripthost/uwsgi", serve
// net/http Handlers as apps (modifier1 11), and export RPC functions and
// signal handlers to the shared registry.
//
// # Files
//
// Every file is a program of its own, `package main` (other package
// names are refused): files do not see each other's identifiers; they
// share through the API (uwsgi.Call, caches). At load, as in a Go
// program, the file's package-level variables are initialized, its init
// functions run, then its main function if it has one; that is where a
// file registers, with uwsgi.RegisterRpc, uwsgi.RegisterSignal,
// uwsgi.AddTimer and friends:
//
//	package main
//
//	import "scripthost/uwsgi"
//
//	func init() {
//		uwsgi.RegisterRpc("hello", func() string { return "Hello World" })
//	}
//
// A file that declares a function
//
//	func Handler(w http.ResponseWriter, r *http.Request)
//
// or a package-level variable Handler holding an http.Handler (an
// http.HandlerFunc, an *http.ServeMux, a value of a type of the file with
// a ServeHTTP method) is an app, named after the file without ".go"
// ("app.go" is app "app"). The request's vars become an *http.Request
// (method, URL.Path from PATH_INFO, query, headers from the HTTP_* vars,
// RemoteAddr, the body, the call's context), and the ResponseWriter
// writes through the host's: status and header on the first Write,
// Flush or WriteHeader, then the body.
//
// # The uwsgi package
//
// The package is generated from api.Funcs(), the table every language
// shares: each function is a func(args ...any) (any, error) named by
// GoName ("cache_get" is uwsgi.CacheGet, "register_rpc"
// uwsgi.RegisterRpc), each attribute a function returning its value
// (uwsgi.Version() string, uwsgi.Hostname() string, uwsgi.Opt()
// map[string]any). Arguments and results convert between the API's
// values and Go's: numbers are int64 or float64 (a time.Duration is seconds), strings and
// []byte, []any lists and map[string]any maps, functions. Errors are
// returned, never panicked; argument errors keep api's text ("bad
// argument #2 to uwsgi.cache_set").
//
// A function given to the API (an RPC, a signal handler) may have any
// signature: the API's values are converted to its parameters (RPC
// arguments are strings, so func(a, b int) int adds "1" and "2"), and its
// first result is its value, a last result of type error its error.
//
// # Interpreters, pools and calls
//
// A yaegi interpreter runs one call at a time, its compiled code cannot
// be shared with another interpreter, and its cancellation is per
// execution (function literals keep the cancellation channel of the
// execution that made them). So each interpreter runs its file in one
// long execution: the engine adds a generated main to the file that runs
// the file's own main (renamed) and then serves calls handed to it one at
// a time, in its goroutine. Each file has a pool of such interpreters,
// Options.PoolSize at most, built on demand (a build compiles the file,
// a few milliseconds): the first at load (it registers for real), the
// others (replicas) when calls find every interpreter busy. A replica
// runs the file again but its registrations only check their arguments
// and capture their functions (they go to a scratch Registrations); every function
// converted while a file loads gets the next key (0, 1, ...), the same in
// every interpreter of the file, so a registered callback is (file, key)
// and runs in whichever interpreter a call borrows. Loading must
// therefore be deterministic: a replica making another number of
// functions fails (ErrNondeterministicLoad).
//
// Calls do not share state through package-level variables: after every
// call (RPC, signal handler, request) the engine gives each variable of
// the file back the value the load (initializers, init, main) left it
// with, so a call sees the same variables whichever interpreter serves
// it. The restore is shallow: what a call changes inside a map, a slice's
// elements or a struct behind a pointer stays changed in that
// interpreter only (module-level state, per interpreter, like Lua's
// globals per state), and a lazy initialization in a call (a sync.Once)
// runs again in the next one. State that calls share goes through the
// API: the cache (uwsgi.CacheUpdate, uwsgi.CacheGet), RPCs of other
// files.
//
// A function converted during a call lives in that one interpreter:
// calling it borrows that very interpreter (waiting while it serves other
// calls) and fails with ErrVMGone once it was discarded; a signal handler
// or RPC function made so is unregistered then (one line is logged; see
// api.BoundCallable). A call that calls back into its own file
// (uwsgi.Call of an RPC of the same file) runs in the interpreter it
// holds, on the same stack, so a pool of one cannot deadlock; the context
// carries what the call holds and must not be shared with other
// goroutines while the call runs.
//
// # Containment
//
// Every call runs under its context (harakiri, cancellation). When the
// context ends first, the interpreter is stopped: yaegi checks for it at
// every step of interpreted code, so busy loops (for {}) stop, and wakes
// blocked channel operations and selects (select {}, <-time.After(...));
// time.Sleep is the engine's own and returns; the API's blocking
// functions (AsyncSleep, Lock, Recv, Suspend, Call, Rpc) watch the
// context. The call returns the context's cause (api.ErrHarakiri) in a
// *api.ScriptError, and the interpreter is discarded and replaced on demand.
// A script that ignores an API error after its context ended still fails
// its call with the cause, and a Handler's writes after that are refused.
//
// What cannot be stopped: a script blocked in a library call nothing
// wakes (locking a sync.Mutex it already holds, sync.WaitGroup.Wait,
// sync.Cond.Wait) or stuck in one long library computation (a huge
// regexp): the call returns after stopGrace (0.5 s) all the same, the
// interpreter is abandoned (its API calls, response writes and body
// reads fail from then on) and its goroutine stays blocked until the
// library call returns, forever for a self-deadlock.
//
// Memory: every allocation whose size a script gives is charged with
// api.Charge to the running call before it is made: make of a slice, map
// or channel (length or capacity times the element size), append when
// it grows the slice, strings.Repeat, bytes.Repeat, strings and bytes
// Replace, ReplaceAll and Join, strings.NewReplacer's Replace,
// bufio.NewReaderSize and NewWriterSize, and the growth of
// strings.Builder and bytes.Buffer (Grow, writes, ReadFrom; the types are
// the engine's, with the same methods; json.Compact, Indent and
// HTMLEscape take them). The engine rewrites make and append calls into
// calls of its guards (a make or append the script declares itself is
// its own; an append to a slice that is not a variable, field or element
// is not checked). An allocation over the cap (api.DefaultMaxAlloc, or a
// quarter of the memory budget) or over what the budget has left is not
// made: the script panics with the api error, and the call fails with a
// *api.ScriptError wrapping it (errors.Is(err, api.ErrAllocTooLarge) or
// api.ErrMemoryLimit), even if the script recovers the panic; the
// interpreter is discarded. Without the guards make([]byte, 1<<40)
// would end the process ("fatal error: runtime: out of memory" cannot be
// recovered). Smaller allocations add up to what the call was charged:
// the memory watchdog (api.Memory.Serve) interrupts the call charged
// most when the heap nears the budget; it fails with the cause, which
// wraps api.ErrMemoryLimit. Builder and Buffer growths under 64 KiB are
// left to the watchdog, and those made while a file loads are checked
// against the cap only (the methods find their call through the
// goroutine serving it). An array type over the cap (var a
// [1 << 40]byte) fails the load, or the Eval, with a *api.ScriptError
// wrapping api.ErrAllocTooLarge. Not guarded: regexp's replacements,
// io.ReadAll, appends to a slice that is not a variable: the watchdog is
// their bound.
//
// Loading has a deadline: the top level of each file (initializers, init
// functions, main) runs under api.Registrations.FileContext, in the first
// interpreter and in every replica; one that does not finish within
// Registrations.LoadTimeout fails the load (or the replica's build, and the call
// that wanted it) with a *api.ScriptError naming the file and wrapping
// api.ErrLoadTimeout; a replica's is counted in Counters.LoadTimeouts
// (the host counts the loads it asks for).
//
// The pool is bounded: a call that finds all Options.PoolSize
// interpreters of its file busy waits at most Options.PoolWait, then
// fails with an error wrapping ErrPoolBusy and vmpool.ErrBusy.
//
// yaegi runs interpreted calls on the Go stack, and a Go stack overflow
// ends the process, so the engine puts a check at the start of every
// function body (a call of the engine, some 0.2 µs): past some 100,000 Go
// frames (about 50,000 nested calls, 50 MB of stack) the interpreter is
// stopped and the call fails with ErrStackOverflow.
//
// A panic in a script fails its call with a *api.ScriptError wrapping
// ErrPanic, with a position in the file (yaegi places some runtime errors
// at the failing function's first statement); the interpreter is
// discarded; the host goes on.
//
// # Sandbox
//
// Files may import "scripthost/uwsgi" and the packages of
// Options.AllowedPackages (DefaultAllowedPackages: computation, text,
// encoding, hashing, time, sync and net/http's types), nothing else: an
// import of another package fails the load with a *api.ScriptError naming it
// and wrapping ErrForbiddenImport. Whatever the list, net/http has no
// clients, servers, file serving or global mux, and time.AfterFunc,
// context.AfterFunc and log.Default are removed. go statements are
// refused (ErrForbidden): a goroutine would run script code outside any
// call and outlive it. Names starting with __scripthost are the engine's.
// Scripts' os.Args is the file name, their environment empty, their stdin
// empty; fmt.Print* and println output and the log package's go to the
// host's log, line by line, with the file's name. Source is never read
// from disk: the interpreter's source filesystem is empty.
//
// # Eval
//
// Eval (modifier1 22 with modifier2 11) runs code in a fresh interpreter
// where uwsgi and every allowed package are imported under their names
// (except names two allowed packages share: import math/rand or
// crypto/rand explicitly). The code is statements and declarations,
// evaluated chunk by chunk as a REPL does (import declarations included):
// lines are gathered until they parse. The result is the value of the
// last statement if it is an expression (the first value of a call with
// several), nil otherwise; values without an API counterpart are rendered
// with fmt's %v. The output is what the code printed, 1 MiB at most.
//
// # yaegi
//
// The interpreter is yaegi v0.16.1, whose standard library symbols are
// those of Go 1.22 (it builds and runs with Go 1.26). Known gaps that
// scripts meet: range over an integer (Go 1.22) is not supported; a type
// switch case map[string]any does not match the API's maps (write
// map[string]interface{}, or index the map); the generic functions of
// the standard library are those yaegi ships as source (slices without
// its sorting functions, for which sort serves; maps; cmp). Runtime
// panics are positioned at a statement of the failing function, not
// always the failing one.
package gointerp
