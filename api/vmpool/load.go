package vmpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/scripthost/scripthost/api"
)

// The load sequence every engine shares: the first interpreter runs the
// files against the generation's Registrations and registers for real; replicas
// run them again against an api.ScratchEnv and must capture the same
// callbacks (a registered callback is found by its key in whichever
// interpreter a call borrows) and define the same apps.

// DefaultWait is how long a call waits for a free interpreter unless the
// engine's options say otherwise.
const DefaultWait = 5 * time.Second

// DefaultSize is the number of interpreters of a pool unless the engine's
// options say otherwise: two per CPU, at least 4. Calls that wait in API
// functions (sleep, recv, rpc) hold an interpreter without using a
// processor, and the CPUs count rather than GOMAXPROCS, which may be 1
// when the engine is made. Each costs memory that the collector walks,
// which showed in every request's cost at four per CPU.
func DefaultSize() int { return max(4, 2*runtime.NumCPU()) }

// ReplicaTimeout bounds building one replica after the load: a
// replacement for a discarded interpreter, or one more for a growing pool.
const ReplicaTimeout = 30 * time.Second

// Shape is what running the files made in one interpreter: the callbacks
// it captured, keyed 0 to Callbacks-1, and the names of the apps it
// defined, sorted.
type Shape struct {
	Callbacks int      // distinct script functions the files passed to the API while loading (RPC functions, handlers, ...)
	Apps      []string // the names of the apps the files returned, sorted
}

// Check returns nil when a replica's shape got is s, else an error
// wrapping errNondeterministic (the engine's) that gives both.
func (s Shape) Check(got Shape, errNondeterministic error) error {
	if got.Callbacks == s.Callbacks && slices.Equal(got.Apps, s.Apps) {
		return nil
	}
	return fmt.Errorf("%w: %d callbacks and apps %v, want %d and %v",
		errNondeterministic, got.Callbacks, got.Apps, s.Callbacks, s.Apps)
}

// Fill fills a pool that its owner fills (max 0) at load: first, the
// interpreter that registered, and replicas made by replica until there
// are n. If one cannot be made, Fill closes first and the replicas made
// and returns the error. first goes on top of the idle interpreters, so
// that the first call runs where the registrations happened.
func (pl *Pool[V]) Fill(ctx context.Context, n int, first V, replica func(context.Context) (V, error)) error {
	vms := []V{first}
	for len(vms) < n {
		v, err := replica(ctx)
		if err != nil {
			for _, v := range vms {
				pl.closeVM(v)
			}
			return err
		}
		vms = append(vms, v)
	}
	for _, v := range slices.Backward(vms) {
		pl.Put(v)
	}
	return nil
}

// Rebuild makes a replica with replica after the load: under life, the
// generation's lifetime (a call's context would lend the files its
// values and its deadline), within ReplicaTimeout. A file that ran past
// its load deadline is counted in c.LoadTimeouts (c may be nil): the host
// counts only the loads it asks for.
func Rebuild[V any](life context.Context, c *api.Counters, replica func(context.Context) (V, error)) (V, error) {
	ctx, cancel := context.WithTimeout(life, ReplicaTimeout)
	defer cancel()
	v, err := replica(ctx)
	if c != nil && errors.Is(err, api.ErrLoadTimeout) {
		c.LoadTimeouts.Add(1)
	}
	return v, err
}
