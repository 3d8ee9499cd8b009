package js

import (
	"context"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
)

func BenchmarkRPCHello(b *testing.B) {
	w := newWorld(b, map[string]string{"a.js": `uwsgi.register_rpc("hello", () => "Hello World");`})
	w.load(Options{})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := w.state.RPC.Call(ctx, "hello")
			if err != nil || string(res) != "Hello World" {
				b.Fatalf("hello() = %q, %v", res, err)
			}
		}
	})
}

func BenchmarkJSGIHello(b *testing.B) {
	w := newWorld(b, map[string]string{"hello.js": `
module.exports = (req) => ({status: 200, headers: {"Content-Type": "text/plain"}, body: ["Hello World"]});`})
	p := w.load(Options{})
	app := p.Apps()["hello"]
	vars := nginxVars()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := &recorder{}
		body := strings.NewReader("")
		for pb.Next() {
			rec.body.Reset()
			rec.pending.Reset()
			rec.chunks, rec.sent = rec.chunks[:0], false
			body.Reset("")
			if err := app.ServeRequest(ctx, rec, &api.Request{Vars: vars, Body: body}); err != nil || rec.body.String() != "Hello World" {
				b.Fatalf("ServeRequest: %q, %v", rec.body.String(), err)
			}
		}
	})
}
