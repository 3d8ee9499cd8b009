package js

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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

// BenchmarkFetch calls a local HTTP server with fetch from an RPC, and
// BenchmarkPlainGoClient does the same requests with Go's own client: the
// outbound path's cost over a plain client.
func BenchmarkFetch(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") }))
	defer srv.Close()
	w := newWorld(b, map[string]string{"a.js": `
uwsgi.register_rpc("get", async (url) => { const r = await fetch(url); return await r.text(); });`})
	w.load(Options{})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := w.state.RPC.Call(ctx, "get", []byte(srv.URL))
			if err != nil || string(res) != "pong" {
				b.Fatalf("get() = %q, %v", res, err)
			}
		}
	})
}

func BenchmarkPlainGoClient(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") }))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "pong" {
				b.Fatalf("body %q", body)
			}
		}
	})
}
