//go:build !linux && !freebsd

package main

import "syscall"

// servingProcAttr: this system cannot signal a child when its parent
// dies, so a serving process may outlive a supervisor that is killed.
func servingProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
