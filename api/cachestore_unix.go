//go:build unix

package api

import (
	"os"
	"syscall"
)

// Journal locks are flock(2) locks: they belong to the open file, so a
// process that dies releases them, and a rename does not carry them over.

func tryLockExclusive(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

// lockShared takes (or converts an exclusive lock to) a shared lock,
// waiting while another process holds the file exclusively.
func lockShared(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
		if err != syscall.EINTR {
			return err
		}
	}
}
