package lua

import (
	"time"

	"github.com/scripthost/scripthost/api/vmpool"
)

// newPool returns the pool of a program's states (see package vmpool):
// filled at load, a discarded state replaced by its caller; a call waits
// at most maxWait for a state.
func newPool(maxWait time.Duration) *vmpool.Pool[*vm] {
	pl := vmpool.New(0, func(v *vm) bool { return v.gone.Load() }, (*vm).close, ErrClosed, ErrStateGone)
	pl.MaxWait = maxWait
	return pl
}
