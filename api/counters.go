package api

import "sync/atomic"

// Counters count the containment events an operator wants to see: each
// also gives a log line where it happens. The status packet, stats and
// metrics read them.
type Counters struct {
	// PoolTimeouts: calls that found no free interpreter within the
	// pool's wait.
	PoolTimeouts atomic.Int64
	// LoadTimeouts: script files that did not finish loading in time.
	LoadTimeouts atomic.Int64
	// SignalsCoalesced: raised signals merged into a delivery of the same
	// signal that was already pending.
	SignalsCoalesced atomic.Int64
	// Restarts: serving processes the supervisor started after one died
	// (the supervisor hands the count to the process it starts).
	Restarts atomic.Int64
}
