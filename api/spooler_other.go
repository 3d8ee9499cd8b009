//go:build !unix

package api

import "os"

// lockJob only checks that the job is still there: without flock, two
// processes sharing a spool directory may both run a job (at least once
// still holds).
func lockJob(path string) (unlock func(), ok bool, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, false, err
	}
	return func() {}, true, nil
}
