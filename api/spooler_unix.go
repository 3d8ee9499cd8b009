//go:build unix

package api

import (
	"errors"
	"os"
	"syscall"
)

// lockJob takes the job file's lock, so that two processes sharing a spool
// directory (the old and the new one of a re-exec) do not run a job at the
// same time: ok is false when another holds it.
func lockJob(path string) (unlock func(), ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}
