package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// A long call is a request that holds its interpreter for as long as its
// client stays: a script that made a WebSocket handshake and loops on
// websocket_recv. Three rules keep such calls from starving the others:
//
//   - its interpreters leave their pools' counts (DetachCall), so that
//     the pools make others for the short calls;
//   - a host runs at most LongCalls.Max of them; past that the handshake
//     fails with ErrTooManyWebSockets, before anything is answered, and
//     the host answers 503;
//   - its time limit counts only the time it runs: time blocked in
//     websocket_recv (and in async_sleep once the call is long) does not
//     count, and each message received gives the call its full limit
//     (the host's, or what set_user_harakiri set last) again.

// DefaultMaxLongCalls is how many long calls a host runs at once unless
// configured otherwise.
const DefaultMaxLongCalls = 256

// ErrTooManyWebSockets is websocket_handshake's error when the host runs
// as many long calls as it may.
var ErrTooManyWebSockets = errors.New("api: too many websockets open, try again later")

// LongCalls counts a host's long calls against their bound. It is safe
// for concurrent use.
type LongCalls struct {
	max  int64 // <= 0: no bound
	open atomic.Int64
}

// NewLongCalls returns a count bounded by max (0: DefaultMaxLongCalls;
// negative: no bound).
func NewLongCalls(max int) *LongCalls {
	if max == 0 {
		max = DefaultMaxLongCalls
	}
	return &LongCalls{max: int64(max)}
}

// Max returns the bound (0: none).
func (l *LongCalls) Max() int { return int(max(l.max, 0)) }

// Open returns how many long calls run.
func (l *LongCalls) Open() int { return int(l.open.Load()) }

// Take counts one more long call, or fails with ErrTooManyWebSockets.
func (l *LongCalls) Take() error {
	if l == nil {
		return nil
	}
	if n := l.open.Add(1); l.max > 0 && n > l.max {
		l.open.Add(-1)
		return fmt.Errorf("%w (%d open)", ErrTooManyWebSockets, l.max)
	}
	return nil
}

// Give counts one long call less.
func (l *LongCalls) Give() {
	if l != nil {
		l.open.Add(-1)
	}
}

type detachKey struct{}

// detacher is one interpreter a call holds, innermost first.
type detacher struct {
	detach func()
	once   sync.Once
	outer  *detacher
}

// WithDetach returns ctx under which DetachCall runs detach once, after
// what ctx registered already. An engine marks this way the interpreter
// it lends a call from its pool (vmpool.Pool.Lend), so that the binding
// can ask whichever engine runs a call to let its interpreter go.
func WithDetach(ctx context.Context, detach func()) context.Context {
	outer, _ := ctx.Value(detachKey{}).(*detacher)
	return context.WithValue(ctx, detachKey{}, &detacher{detach: detach, outer: outer})
}

// DetachCall takes every interpreter the call of ctx holds (a script
// that called another through uwsgi.call holds two) out of its pool's
// count: the call is going to hold them for long.
func DetachCall(ctx context.Context) {
	for d, _ := ctx.Value(detachKey{}).(*detacher); d != nil; d = d.outer {
		d.once.Do(d.detach)
	}
}
