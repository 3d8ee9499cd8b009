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

// nginxVars are the vars nginx sends with Debian's uwsgi_params for a
// GET /hello with a Host header only.
var nginxVars = []string{"QUERY_STRING=", "REQUEST_METHOD=GET", "CONTENT_TYPE=", "CONTENT_LENGTH=",
	"REQUEST_URI=/hello", "PATH_INFO=/hello", "DOCUMENT_ROOT=/usr/share/nginx/html", "SERVER_PROTOCOL=HTTP/1.1",
	"REQUEST_SCHEME=http", "REMOTE_ADDR=127.0.0.1", "REMOTE_PORT=51234", "SERVER_PORT=8080",
	"SERVER_NAME=localhost", "HTTP_HOST=127.0.0.1:8080"}

// BenchmarkWSAPIHello serves app.lua's /hello, as nginx asks for it, with
// a discarding writer.
func BenchmarkWSAPIHello(b *testing.B) {
	f := newFixture(b, map[string]string{"app.lua": readTestdata(b, "app.lua")})
	_, p := f.mustLoad(Options{})
	app := p.Apps()["app"]
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := request("", nginxVars...)
			var w discardWriter
			if err := app.ServeRequest(ctx, &w, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
