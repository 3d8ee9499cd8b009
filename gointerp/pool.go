package gointerp

import (
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/vmpool"
)

// newPool returns the pool of a file's interpreters (see package vmpool):
// it grows on demand up to max, the callers building them, and a call
// waits at most wait for one; one that waited in vain is counted in c.
func newPool(max int, wait time.Duration, c *api.Counters) *vmpool.Pool[*vm] {
	pl := vmpool.New(max, func(v *vm) bool { return v.gone.Load() }, (*vm).close, ErrClosed, ErrVMGone)
	pl.MaxWait, pl.Counters = wait, c
	return pl
}
