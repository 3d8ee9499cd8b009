//go:build !unix

package api

import "os"

// Without flock, a journal is assumed to have one process at a time: the
// supervisor's children do not overlap there (graceful restarts need
// unix), and a store= file shared by two servers is a configuration error.

func tryLockExclusive(*os.File) bool { return true }

func lockShared(*os.File) error { return nil }
