//go:build !race

package host

import (
	"syscall"
	"unsafe"
)

const rawIOLong = 64 << 10

// rawIO reads or writes once (trap is SYS_READ or SYS_WRITE). The socket
// is non-blocking, so the call never waits: it is made without telling
// the scheduler (RawSyscall), which saves the scheduler's bookkeeping and
// keeps the background monitor from taking the processor away meanwhile.
// Only a call on more than rawIOLong bytes tells it: copying (and, on
// loopback, delivering) a megabyte takes hundreds of microseconds, during
// which other goroutines should have the processor.
// Race-detector builds use rawio_race.go instead.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	call := syscall.RawSyscall
	if len(p) > rawIOLong {
		call = syscall.Syscall
	}
	for {
		r, _, e := call(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
		switch e {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}
