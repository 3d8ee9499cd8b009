// Package api is scripthost's shared binding layer: the process-wide state
// that the server and every script engine use, modelled on uWSGI's API.
//
// This part of the package holds that state:
//
//   - Registry: RPC functions by name, shared by the wire protocol
//     (modifier1 173), uwsgi.call from scripts and plain Go code.
//   - Cache and Caches: named in-memory caches with uWSGI's set/update
//     semantics, TTLs and LRU eviction under item and byte bounds.
//   - Signals: uWSGI signals 0..255 with asynchronous delivery.
//   - Locks: numbered user locks (uwsgi.lock / uwsgi.unlock).
//   - State: one value bundling all of the above for a host.
//
// Everything hangs off values the caller creates; there are no package-level
// registries. Nothing here starts a goroutine on its own: the owner runs
// Signals.Serve and calls Caches.Sweep on its own schedule.
//
// scripthost is a single process, so the parts of uWSGI that exist to share
// state between a master and its workers are not supported: signal targets
// (worker, mule, spooler, ...) are accepted but all mean "this process";
// caches live in memory only, with no persistence (cache2 store=), no
// shared-memory blocks, no UDP replication and no remote (name@host) caches.
// Timers, cron, the spooler and connection I/O are not implemented here yet.
package api
