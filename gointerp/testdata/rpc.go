// RPC functions for the tests and benchmarks.
package main

import (
	"strings"

	"scripthost/uwsgi"
)

func init() {
	uwsgi.RegisterRpc("hello", func() string { return "Hello World" })
	uwsgi.RegisterRpc("echo", func(args ...string) string { return strings.Join(args, " ") })
	uwsgi.RegisterRpc("add", func(a, b int) int { return a + b })
	uwsgi.RegisterRpc("big", func(n int) string { return strings.Repeat("x", n) })
}
