package lua

import (
	"context"
	"testing"
)

// BenchmarkRPCHello calls rpc.lua's hello through the registry, as an
// RPC packet does.
func BenchmarkRPCHello(b *testing.B) {
	f := newFixture(b, map[string]string{"rpc.lua": readTestdata(b, "rpc.lua")})
	_, _ = f.mustLoad(Options{})
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

// BenchmarkWSAPIHello serves app.lua's /hello with a discarding writer.
func BenchmarkWSAPIHello(b *testing.B) {
	f := newFixture(b, map[string]string{"app.lua": readTestdata(b, "app.lua")})
	_, p := f.mustLoad(Options{})
	app := p.Apps()["app"]
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := request("", "REQUEST_METHOD=GET", "PATH_INFO=/hello", "QUERY_STRING=", "SERVER_PROTOCOL=HTTP/1.1",
				"HTTP_HOST=localhost", "REMOTE_ADDR=127.0.0.1")
			var w discardWriter
			if err := app.ServeRequest(ctx, &w, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
