package tests

import "syscall"

// becomeSubreaper makes this test binary the reaper of orphaned
// descendants. Best effort.
func becomeSubreaper() {
	const prSetChildSubreaper = 36
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}
