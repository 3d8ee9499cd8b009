package gointerp

import "github.com/scripthost/scripthost/api/vmpool"

// newPool returns the pool of a file's interpreters (see package vmpool):
// it grows on demand up to max, the callers building them.
func newPool(max int) *vmpool.Pool[*vm] {
	return vmpool.New(max, func(v *vm) bool { return v.gone.Load() }, (*vm).close, ErrClosed, ErrVMGone)
}
