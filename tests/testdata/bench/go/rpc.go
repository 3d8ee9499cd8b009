// The RPC functions of the reference rpc.lua, in Go, for the benchmark
// (hello, echo, big).
package main

import (
	"strings"

	"scripthost/uwsgi"
)

var bigN, bigS = -1, ""

func main() {
	uwsgi.RegisterRpc("hello", func() string { return "Hello World" })
	uwsgi.RegisterRpc("echo", func(args ...string) string { return strings.Join(args, " ") })
	uwsgi.RegisterRpc("big", func(n int) string {
		if n < 0 {
			n = 0
		}
		if n != bigN {
			bigN, bigS = n, strings.Repeat("x", n)
		}
		return bigS
	})
}
