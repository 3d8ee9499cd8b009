package lua

import (
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

// newPool returns the pool of a program's states (see package vmpool):
// filled at load, a discarded state replaced by its caller; a call waits
// at most maxWait for a state, and one that waited in vain is counted in
// c.
func newPool(maxWait time.Duration, c *api.Counters) *vmpool.Pool[*vm] {
	pl := vmpool.New(0, func(v *vm) bool { return v.gone.Load() }, (*vm).close, ErrClosed, ErrStateGone)
	pl.MaxWait, pl.Counters = maxWait, c
	return pl
}
