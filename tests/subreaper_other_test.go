//go:build !linux

package tests

// becomeSubreaper: only Linux lets a process adopt its orphaned
// descendants; elsewhere init reaps them.
func becomeSubreaper() {}
