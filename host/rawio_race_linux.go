//go:build race

package host

import "syscall"

// rawIO is rawio.go's, through the syscall package's functions, which tell
// the race detector that data written to a socket happens before it is
// read at the other end (RawSyscall would hide that and make it report
// races between goroutines that synchronise through a connection).
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	for {
		var n int
		var err error
		if trap == syscall.SYS_WRITE {
			n, err = syscall.Write(fd, p)
		} else {
			n, err = syscall.Read(fd, p)
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}
