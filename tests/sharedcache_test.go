package tests

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// startRedisPeer starts redis-server on a free 127.0.0.1 port without
// persistence and stops it by PID when the test ends; it returns the
// server's redis:// URL.
func startRedisPeer(t *testing.T) string {
	t.Helper()
	bin := requireBinary(t, "redis-server")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	console, err := os.CreateTemp(t.TempDir(), "redis-*.log")
	if err != nil {
		t.Fatal(err)
	}
	console.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	child, err := startChild("redis", cmd, console.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.stop(t, []stopStep{{sig: 15, grace: 5 * time.Second}}, false) })
	for deadline := time.Now().Add(10 * time.Second); !canDial("tcp", addr); time.Sleep(20 * time.Millisecond) {
		if child.exited() || time.Now().After(deadline) {
			t.Fatalf("redis-server did not come up on %s\n%s", addr, tailFile(console.Name(), 20))
		}
	}
	return "redis://" + addr + "/0"
}

// TestSharedCacheAcrossNodes: two scripthost nodes with a Redis-backed
// cache see one cache, through cache packets and through scripts of any
// language.
func TestSharedCacheAcrossNodes(t *testing.T) {
	url := startRedisPeer(t)
	scripts := map[string][]byte{
		"c.lua": []byte(`uwsgi.register_rpc("lua_get", function(k) return uwsgi.cache_get(k) end)
uwsgi.register_rpc("lua_inc", function(k) return tostring(uwsgi.cache_inc(k, 1)) end)
uwsgi.register_rpc("lua_num", function(k) return tostring(uwsgi.cache_num(k)) end)`),
		"c.js": []byte(`uwsgi.register_rpc('js_set', (k, v) => { uwsgi.cache_update(k, v); return 'ok'; });`),
	}
	spec := "name=default,backend=" + url + ",require=true"
	a := startScripthost(t, scripts, false, "--cache", spec)
	b := startScripthost(t, scripts, false, "--cache", spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cb := uwsgi.NewClient(a.Addr), uwsgi.NewClient(b.Addr)
	defer ca.Close()
	defer cb.Close()

	if err := ca.CacheUpdate(ctx, "packet", []byte("set by a packet on node a")); err != nil {
		t.Fatal(err)
	}
	if got, err := cb.CallString(ctx, "lua_get", "packet"); err != nil || got != "set by a packet on node a" {
		t.Errorf("node b's Lua reads %q, %v", got, err)
	}
	if _, err := cb.CallString(ctx, "js_set", "script", "set by JS on node b"); err != nil {
		t.Fatal(err)
	}
	if got, err := ca.CacheGet(ctx, "script"); err != nil || string(got) != "set by JS on node b" {
		t.Errorf("node a's cache packet reads %q, %v", got, err)
	}
	for range 5 {
		ca.CallString(ctx, "lua_inc", "hits")
		cb.CallString(ctx, "lua_inc", "hits")
	}
	if got, err := ca.CallString(ctx, "lua_num", "hits"); err != nil || got != "10" {
		t.Errorf("a counter increased 5 times on each node reads %q, %v; want 10", got, err)
	}
}
