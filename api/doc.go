// Package api is scripthost's shared binding layer: the process-wide state
// that the server and every script engine use, modelled on uWSGI's API.
//
// It holds:
//
//   - Registry: RPC functions by name, shared by the wire protocol
//     (modifier1 173), uwsgi.call from scripts and plain Go code.
//   - Cache and Caches: named in-memory caches with uWSGI's set/update
//     semantics, TTLs and LRU eviction under item and byte bounds.
//   - Signals, Timers and Locks: uWSGI signals 0..255 with asynchronous
//     delivery, timers/rb-timers/cron raising them, numbered user locks.
//   - ChannelLayer, MemoryLayer and Consumers: the channels and groups of
//     Daphne's message standards (bounded queues with expiry), and the
//     scripts' consumers of them, run by a bounded set of goroutines.
//   - State: one value bundling all of the above for a host, plus pooled
//     clients for remote nodes.
//   - The binding layer: Funcs, the one table of script-visible functions
//     (uWSGI's API), the neutral Value set engines convert to, Callable for
//     script functions, Registrations (what a generation of scripts registered) and
//     Scope (one call's deadline, client connection and handles).
//   - WebSocket and Upgrader: the contract between the host's WebSocket
//     transport and uWSGI's websocket functions; LongCalls, the rules
//     that contain a call holding its interpreter for a socket's life
//     (detached from its pool through the context, DetachCall; bounded
//     in number; a time limit paused while it waits).
//   - Engine, Program and App: what a script engine provides.
//
// Everything hangs off values the caller creates; there are no package-level
// registries. Nothing here starts a goroutine on its own: the owner runs
// Signals.Serve, Timers.Serve and Consumers.Serve and calls Caches.Sweep
// (and MemoryLayer.Sweep) on its schedule.
//
// scripthost is a single process, so the parts of uWSGI that exist to share
// state between a master and its workers are not supported: signal targets
// (worker, mule, spooler, ...) are accepted but all mean "this process";
// caches live in memory only, with no persistence, no shared-memory blocks
// and no UDP replication (remote caches are reached with name@host:port).
package api
