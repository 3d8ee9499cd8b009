package lua

import "github.com/scripthost/scripthost/api/vmpool"

// newPool returns the pool of a program's states (see package vmpool):
// filled at load, a discarded state replaced by its caller.
func newPool() *vmpool.Pool[*vm] {
	return vmpool.New(0, func(v *vm) bool { return v.gone.Load() }, (*vm).close, ErrClosed, ErrStateGone)
}
