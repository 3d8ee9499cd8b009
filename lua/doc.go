// Package lua is scripthost's Lua engine: .lua files of the scripts
// directory run on gopher-lua (a Lua 5.1 interpreter in Go) with the
// uWSGI API as the global table `uwsgi`, serve WSAPI apps (modifier1 6)
// the way uWSGI's Lua plugin does, and export RPC functions and signal
// handlers to the shared registry.
//
// # Generations, states and the pool
//
// Load compiles every file once into gopher-lua function prototypes and
// builds a pool of Options.PoolSize Lua states (LState) from them, all at
// once so that every error surfaces at load. A state is used by one call
// at a time; calls borrow one from the pool, waiting as long as their
// context allows and at most Options.PoolWait: then the call fails with
// ErrPoolBusy (wrapping vmpool.ErrBusy), counted in the State's
// Counters.PoolTimeouts and logged.
//
// Module-level code runs once per state, in file-name order, each file
// under the Registrations' load deadline (api.Registrations.FileContext: a file whose top
// level does not end in time fails the load, in the first state or in a
// replica built later, with a *api.ScriptError wrapping api.ErrLoadTimeout
// that names the file), and each
// file's result is also what require returns for it. Registrations happen
// once: the first state runs the files against the real api.Registrations, the
// others are replicas in which register_rpc, register_signal, add_timer,
// add_rb_timer and add_cron check their arguments and capture their
// function arguments but register nothing (they run against a scratch
// Registrations); every other uwsgi call runs normally in every state (a uwsgi.log
// at module level logs once per state, and uwsgi.signal_registered sees
// what the first state registered). Every
// function converted for the API during a load gets the next key (0, 1,
// ...), the same in every state, so a registered callback is (program,
// key) and runs in whichever state a call borrows. Module-level code must
// therefore be deterministic: a replica capturing other callbacks or apps
// than the first state fails the load (ErrNondeterministicLoad).
//
// A function converted after the load (passed to the API during a call)
// is a callback of the program if it was captured at load; any other (a
// closure made during a call, a function never passed to the API at load)
// lives in that one state: calling it borrows that very state, waiting
// while it serves other calls, and fails with ErrStateGone once the state
// has been replaced. A signal handler or RPC function of that kind is
// registered as long as its state lives: when the state is replaced or
// closed, the registration ends (uwsgi.signal_registered answers false,
// uwsgi.call of the name nil; one line is logged; see api.BoundCallable). A module first required during a call
// runs as part of that call, so its registrations are of the second kind.
// Two calls that each hold a state and wait for the other's can only end
// by their deadlines; register at load what must run anywhere.
//
// A call that calls back into the same program (uwsgi.call from Lua into
// a Lua RPC of the same files) runs in the state it already holds: the
// context carries the held state, so a pool of one cannot deadlock. Such a
// context must not be shared with other goroutines while the call runs.
//
// # Limits
//
// Every call runs with its context set on the state (gopher-lua checks it
// at every instruction): harakiri, cancellation and the memory watchdog
// (api.Memory, which cancels the call that allocated most with a cause
// wrapping api.ErrMemoryLimit) interrupt runaway code. The call stack
// holds Options.CallStackSize frames, the value stack grows to
// Options.RegistryMaxSize slots, and coroutines nest at most 100 deep.
//
// Strings a script sizes are checked before they are built: string.rep,
// string.format, string.gsub, string.char, string.upper/lower/reverse,
// table.concat, `..`, load(func) and env.input:read stay under
// Options.MaxStringSize (ErrStringTooLarge, which wraps
// api.ErrAllocTooLarge), and each allocation is charged to the running
// call (api.Charge) first, failing with api.ErrAllocTooLarge over the
// single-allocation cap or api.ErrMemoryLimit when the budget has no room.
// string.gsub and string.gmatch find their matches a few at a time (not
// all at once, as gopher-lua's do) and a long gsub can be interrupted.
// Tables are not charged: they grow a slot at a time, which the watchdog
// sees in the heap. A state whose call was interrupted, panicked or hit
// one of these limits is closed and replaced by a fresh replica, even if
// the script caught the error; a plain Lua error leaves the state usable
// (gopher-lua unwinds its stacks), unlike uWSGI's plugin, whose stack
// keeps the error and breaks later requests. Pattern matching
// (string.find, match, gmatch, gsub) is the engine's own, Lua 5.1's
// algorithm: repetitions loop instead of recursing per character, so
// long subjects work, recursion is bounded by the pattern's items
// ("pattern too complex" past 200, as Lua 5.2), and a backtracking search
// is interrupted at the call's deadline.
//
// # Isolation
//
// A call (a request, an RPC, a signal handler) leaves no trace in the
// globals or the standard library of the state it ran in.
// What the files did at load (globals, functions added to string, ...) is
// the same in every state and stays. During a call, a new global lives
// until the call ends and a changed or removed global is restored then;
// the tables string, table, math, os, coroutine, debug and uwsgi are
// read-only (a field assignment is an error that says so; raw writes are
// removed when the call ends); setfenv's changes are undone. pairs, next,
// rawget and rawset on _G and on those tables see the globals and
// libraries as the call sees them; getmetatable of them is nil and their
// metatables cannot be changed (getmetatable("") is a read-only table
// whose __index is string). Tables the files made (module tables,
// tables in globals) and module locals are the program's state and are
// shared by the calls a state serves, as in OpenResty; keep request data
// out of them, or in the cache. A metatable the files set on _G still
// answers reads of missing globals, but no longer sees writes.
//
// # Sandbox
//
// States open only: the base library without dofile, loadfile, module and
// _printregs (load and loadstring compile text through the engine;
// collectgarbage leaves collection to Go's GC and answers "count"); string,
// table, math, coroutine; os with clock, date, difftime and time only (no
// execute, exit, getenv, remove, rename, setenv, setlocale, tmpname); debug
// with traceback only. There is no io, no channel library and no C or
// file-path loader: require finds module "a.b" as a/b.lua or a/b/init.lua
// inside the scripts directory only (no absolute paths, no "..", no
// symlinks out of it), compiles it once per generation and runs it once
// per state (package.loaded is per state; package.preload works).
//
// # Lua 5.1 compatibility
//
// The reference is uWSGI's plugin on PUC Lua 5.1. Numbers convert to text
// like Lua 5.1 ("%.14g": tostring(0.1+0.2) is "0.3", 1e15+1 is "1e+15",
// 10/2 is "5") in tostring, print, `..` (the compiler turns concatenations
// into a call of the engine's own concat), string.format's %s (and %g
// defaults to precision 6 as in C), table.concat, RPC results and WSAPI
// bodies, and tonumber accepts what Lua 5.1's strtod does ("1e15").
// Remaining differences of gopher-lua: library functions that coerce
// a number to a string internally (a number passed as the string argument
// of string.* functions) use Go's shortest form; arithmetic on strings
// reads "010" as octal (8); error messages name functions without quotes and
// give errors raised by Go functions the calling Lua line; a `..` error
// says "attempt to concatenate a nil value" without the variable's name.
// And by design: integral numbers go to the API as integers, so uwsgi.cache_set(k,
// 1e15+1) stores "1000000000000001" where uWSGI stores "1e+15". Booleans
// returned by an RPC function are no result, as lua_tolstring makes them
// in uWSGI.
//
// # WSAPI
//
// An app is a file returning a function, or a table with a run function
// (like uWSGI's --lua), named after the file without ".lua". As in uWSGI's
// Lua plugin, it is called with a table env of the request vars, with
// env.input to read the body (input:read(n), read(), read("*a"),
// read("*l")), and returns a status (a number or a string), a headers
// table (string values, or lists of them for repeated headers) and a
// body: a string, a list of strings, or an iterator function whose chunks
// are written and flushed one at a time. A nil status means the app
// answered by itself (uwsgi.send).
package lua
