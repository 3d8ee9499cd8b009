package gointerp

import (
	"context"
	"testing"
)

// BenchmarkRPCHello calls testdata/rpc.go's hello through the registry,
// as an RPC packet does.
func BenchmarkRPCHello(b *testing.B) {
	f := newFixture(b)
	f.mustLoad(Options{}, files("rpc.go", readTestdata(b, "rpc.go"))...)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := f.state.RPC.Call(ctx, "hello")
			if err != nil || string(res) != "Hello World" {
				b.Errorf("hello: %q, %v", res, err)
				return
			}
		}
	})
}

// BenchmarkAppHello serves testdata/app.go's /hello with a discarding
// writer.
func BenchmarkAppHello(b *testing.B) {
	f := newFixture(b)
	_, p := f.mustLoad(Options{}, files("app.go", readTestdata(b, "app.go"))...)
	app := p.Apps()["app"]
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := request("", "REQUEST_METHOD=GET", "REQUEST_URI=/hello", "PATH_INFO=/hello", "QUERY_STRING=",
				"SERVER_PROTOCOL=HTTP/1.1", "HTTP_HOST=localhost", "REMOTE_ADDR=127.0.0.1")
			var w discardWriter
			if err := app.ServeRequest(ctx, &w, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRPCGlobals calls an RPC of a file with ten package-level
// variables, which the engine restores after every call.
func BenchmarkRPCGlobals(b *testing.B) {
	f := newFixture(b)
	f.mustLoad(Options{}, files("g.go", `package main

import "scripthost/uwsgi"

var (
	a, b, c, d int
	s, t       = "s", "t"
	m          = map[string]int{}
	l          []string
	p          *int
	x          any
)

func init() {
	uwsgi.RegisterRpc("set", func() string { a++; s = "u"; return "ok" })
}
`)...)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, err := f.state.RPC.Call(ctx, "set"); err != nil || string(res) != "ok" {
				b.Errorf("set: %q, %v", res, err)
				return
			}
		}
	})
}
