//go:build linux || freebsd

package main

import "syscall"

// servingProcAttr makes a serving process stop when its supervisor dies:
// it would hold the sockets with nobody to replace it.
func servingProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
