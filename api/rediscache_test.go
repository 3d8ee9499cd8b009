package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// redisServer is a redis-server started by a test on a free 127.0.0.1
// port, without persistence, and stopped by PID at the end.
type redisServer struct {
	Addr string
	cmd  *exec.Cmd
}

// startRedis starts redis-server on addr ("" picks a free port). Without
// the binary the test is skipped, or fails when the peers are required
// (SCRIPTHOST_PEERS=1, as `make test` sets).
func startRedis(t *testing.T, addr string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SCRIPTHOST_PEERS") != "" {
			t.Fatalf("redis-server not found: tests/install-peers.sh installs it")
		}
		t.Skip("needs redis-server: run make test")
	}
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &redisServer{Addr: addr, cmd: cmd}
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func (s *redisServer) URL() string { return "redis://" + s.Addr + "/0" }

// TestRedisCacheSameAsLocal runs one sequence of operations on a local
// cache and on a Redis-backed one and compares every result.
func TestRedisCacheSameAsLocal(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	local, err := NewCache(CacheConfig{Name: "c", MaxItemSize: 64, MaxKeySize: 16})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := NewCache(CacheConfig{Name: "c", MaxItemSize: 64, MaxKeySize: 16, Backend: srv.URL(), RequireBackend: true})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()

	type op struct {
		name string
		do   func(c *Cache) string
	}
	res := func(v any, err error) string {
		switch {
		case errors.Is(err, ErrNotFound):
			return "not found"
		case errors.Is(err, ErrExists):
			return "exists"
		case errors.Is(err, ErrNotNumber):
			return "not a number"
		case errors.Is(err, ErrOverflow):
			return "overflow"
		case errors.Is(err, ErrValueTooLarge):
			return "value too large"
		case errors.Is(err, ErrKeyTooLarge):
			return "key too large"
		case errors.Is(err, ErrEmptyKey):
			return "empty key"
		case err != nil:
			return "error: " + err.Error()
		}
		return fmt.Sprint(v)
	}
	get := func(key string) func(c *Cache) string {
		return func(c *Cache) string {
			it, err := c.Get(ctx, []byte(key))
			return res(string(it.Value), err)
		}
	}
	ops := []op{
		{"get missing", get("a")},
		{"set", func(c *Cache) string { return res("ok", c.Set(ctx, []byte("a"), []byte("1"), 0)) }},
		{"set again", func(c *Cache) string { return res("ok", c.Set(ctx, []byte("a"), []byte("2"), 0)) }},
		{"get", get("a")},
		{"update", func(c *Cache) string { return res("ok", c.Update(ctx, []byte("a"), []byte("bin\x00\xff"), 0)) }},
		{"get binary", get("a")},
		{"empty value", func(c *Cache) string { return res("ok", c.Update(ctx, []byte("e"), nil, 0)) }},
		{"get empty", get("e")},
		{"exists", func(c *Cache) string { return res(c.Exists(ctx, []byte("a"))) }},
		{"exists missing", func(c *Cache) string { return res(c.Exists(ctx, []byte("zz"))) }},
		{"inc missing", func(c *Cache) string { return res(c.Inc(ctx, []byte("n"), 5, 0)) }},
		{"dec", func(c *Cache) string { return res(c.Dec(ctx, []byte("n"), 7, 0)) }},
		{"mul", func(c *Cache) string { return res(c.Mul(ctx, []byte("n"), -21, 0)) }},
		{"div", func(c *Cache) string { return res(c.Div(ctx, []byte("n"), 4, 0)) }},
		{"get counter", get("n")},
		{"num", func(c *Cache) string { return res(c.Num(ctx, []byte("n"))) }},
		{"num missing", func(c *Cache) string { return res(c.Num(ctx, []byte("nn"))) }},
		{"num not a number", func(c *Cache) string { return res(c.Num(ctx, []byte("a"))) }},
		{"div by zero", func(c *Cache) string { return res(c.Div(ctx, []byte("n"), 0, 0)) }},
		{"mul missing", func(c *Cache) string { return res(c.Mul(ctx, []byte("m"), 3, 0)) }},
		{"inc not a number", func(c *Cache) string { return res(c.Inc(ctx, []byte("a"), 1, 0)) }},
		{"inc decimal", func(c *Cache) string {
			c.Update(ctx, []byte("d"), []byte("-41"), 0)
			return res(c.Dec(ctx, []byte("d"), 1, 0))
		}},
		{"get converted decimal", get("d")},
		{"inc max", func(c *Cache) string {
			c.Update(ctx, []byte("big"), []byte(strconv.FormatInt(1<<62, 10)), 0)
			return res(c.Inc(ctx, []byte("big"), 1<<62, 0))
		}},
		{"get after overflow", get("big")},
		{"counter key too large", func(c *Cache) string { return res(c.Inc(ctx, bytes.Repeat([]byte("k"), 17), 1, 0)) }},
		{"value too large", func(c *Cache) string { return res("ok", c.Update(ctx, []byte("k"), bytes.Repeat([]byte("x"), 65), 0)) }},
		{"key too large", func(c *Cache) string { return res("ok", c.Update(ctx, bytes.Repeat([]byte("k"), 17), nil, 0)) }},
		{"empty key", get("")},
		{"delete", func(c *Cache) string { return res("ok", c.Delete(ctx, []byte("a"))) }},
		{"delete again", func(c *Cache) string { return res("ok", c.Delete(ctx, []byte("a"))) }},
		{"keys", func(c *Cache) string {
			keys, err := c.Keys(ctx)
			set := map[string]bool{}
			for _, k := range keys {
				set[string(k)] = true
			}
			return res(fmt.Sprint(len(keys), set["e"], set["n"], set["big"]), err)
		}},
		{"clear", func(c *Cache) string { return res("ok", c.Clear(ctx)) }},
		{"get after clear", get("n")},
		{"len after clear", func(c *Cache) string { return strconv.Itoa(c.Len()) }},
	}
	for _, o := range ops {
		if got, want := o.do(remote), o.do(local); got != want {
			t.Errorf("%s: redis %q, local %q", o.name, got, want)
		}
	}
	if s := remote.Stats(); s.Hits == 0 || s.Misses == 0 {
		t.Errorf("redis cache stats %+v: hits and misses not counted", s)
	}
}

func TestRedisCacheExpiry(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	c, err := NewCache(CacheConfig{Backend: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := time.Now()
	if err := c.Update(ctx, []byte("k"), []byte("v"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(ctx, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if it.Expires.Before(before.Add(200*time.Millisecond)) || it.Expires.After(before.Add(2*time.Second)) {
		t.Errorf("Expires %v, want about 300 ms after %v", it.Expires, before)
	}
	if _, err := c.Inc(ctx, []byte("n"), 1, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// As in uWSGI, an existing counter keeps its expiry: none here, and
	// n's 300 ms above.
	c.Inc(ctx, []byte("forever"), 1, 0)
	if _, err := c.Mul(ctx, []byte("forever"), 5, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Inc(ctx, []byte("n"), 1, 0); got != 2 || err != nil {
		t.Fatalf("Inc(n) = %d, %v", got, err)
	}
	time.Sleep(500 * time.Millisecond)
	if n, err := c.Num(ctx, []byte("forever")); n != 5 || err != nil {
		t.Errorf("forever = %d, %v; want 5, kept without expiry", n, err)
	}
	for _, k := range []string{"k", "n"} {
		if _, err := c.Get(ctx, []byte(k)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s) after its ttl: %v, want ErrNotFound", k, err)
		}
	}
	// A set without ttl drops an old expiry, as locally.
	c.Update(ctx, []byte("p"), []byte("1"), 300*time.Millisecond)
	c.Update(ctx, []byte("p"), []byte("2"), 0)
	time.Sleep(500 * time.Millisecond)
	if it, err := c.Get(ctx, []byte("p")); err != nil || string(it.Value) != "2" || !it.Expires.IsZero() {
		t.Errorf("Get(p) = %q, %v, %v; want 2 with no expiry", it.Value, it.Expires, err)
	}
}

// TestRedisCacheSharedByNodes: two caches on one server (two nodes) see
// one set of items; another prefix is another cache.
func TestRedisCacheSharedByNodes(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	a, _ := NewCache(CacheConfig{Name: "s", Backend: srv.URL()})
	b, _ := NewCache(CacheConfig{Name: "s", Backend: srv.URL()})
	other, _ := NewCache(CacheConfig{Name: "s", Backend: srv.URL(), Prefix: "elsewhere*:"})
	for _, c := range []*Cache{a, b, other} {
		defer c.Close()
	}
	if err := a.Update(ctx, []byte("k"), []byte("from a"), 0); err != nil {
		t.Fatal(err)
	}
	if it, err := b.Get(ctx, []byte("k")); err != nil || string(it.Value) != "from a" {
		t.Errorf("node b: %q, %v", it.Value, err)
	}
	for range 10 {
		a.Inc(ctx, []byte("hits"), 1, 0)
		b.Inc(ctx, []byte("hits"), 1, 0)
	}
	if n, err := b.Inc(ctx, []byte("hits"), 0, 0); err != nil || n != 20 {
		t.Errorf("shared counter = %d, %v; want 20", n, err)
	}
	if _, err := other.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Errorf("another prefix sees the item: %v", err)
	}
	other.Update(ctx, []byte("x"), []byte("1"), 0)
	if err := other.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if n := a.Len(); n != 2 {
		t.Errorf("clearing another prefix left %d items here, want 2", n)
	}
}

// TestRedisCacheFaults: a server down at start, gone while serving and
// back: clear errors in bounded time, then the cache works again by
// itself.
func TestRedisCacheFaults(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	if _, err := NewCache(CacheConfig{Backend: "redis://127.0.0.1:1/0", RequireBackend: true}); !errors.Is(err, ErrCacheBackend) {
		t.Errorf("required backend down at start: %v, want ErrCacheBackend", err)
	}
	lazy, err := NewCache(CacheConfig{Backend: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatalf("backend down at start without require: %v", err)
	}
	if _, err := lazy.Get(ctx, []byte("k")); !errors.Is(err, ErrCacheBackend) {
		t.Errorf("Get with the backend down: %v, want ErrCacheBackend", err)
	}
	lazy.Close()

	c, err := NewCache(CacheConfig{Backend: srv.URL(), RequireBackend: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Update(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	start := time.Now()
	for _, call := range []func() error{
		func() error { _, err := c.Get(ctx, []byte("k")); return err },
		func() error { return c.Update(ctx, []byte("k"), []byte("v"), 0) },
		func() error { _, err := c.Inc(ctx, []byte("n"), 1, 0); return err },
		func() error { _, err := c.Keys(ctx); return err },
	} {
		if err := call(); !errors.Is(err, ErrCacheBackend) {
			t.Errorf("with the server gone: %v, want ErrCacheBackend", err)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("four calls to a gone server took %v", d)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(ErrHarakiri)
	if _, err := c.Get(cctx, []byte("k")); !errors.Is(err, ErrHarakiri) {
		t.Errorf("a cancelled call: %v, want its cause", err)
	}

	startRedis(t, srv.Addr) // back, empty
	var got error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = c.Update(ctx, []byte("k"), []byte("again"), 0); got == nil {
			break
		}
	}
	if got != nil {
		t.Fatalf("the cache did not come back with its server: %v", got)
	}
	if it, err := c.Get(ctx, []byte("k")); err != nil || string(it.Value) != "again" {
		t.Errorf("after the restart: %q, %v", it.Value, err)
	}
}

func TestParseCacheConfigBackend(t *testing.T) {
	cfg, err := ParseCacheConfig("name=shared,backend=redis://127.0.0.1:6379/2,prefix=app:,require=true")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backend != "redis://127.0.0.1:6379/2" || cfg.Prefix != "app:" || !cfg.RequireBackend {
		t.Errorf("parsed %+v", cfg)
	}
	for _, bad := range []string{"backend=redis://x:1,store=/tmp/j", "name=x,require=maybe", "backend=http://x"} {
		c, err := ParseCacheConfig(bad)
		if err == nil {
			_, err = NewCache(c)
		}
		if !errors.Is(err, ErrCacheConfig) {
			t.Errorf("%q: %v, want ErrCacheConfig", bad, err)
		}
	}
}

// TestRedisCounterExact checks the counter script against the local
// arithmetic (uwsgi.CounterOp.Apply) on the int64 values where doubles,
// carries, signs and overflow go wrong, and on random ones.
func TestRedisCounterExact(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	c, err := NewCache(CacheConfig{Backend: srv.URL(), RequireBackend: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	edges := []int64{0, 1, -1, 2, -2, 3, 7, -7, 10, 255, 256, 65535, 65536, -65536, 1<<31 - 1, -1 << 31, 1 << 32,
		1<<53 + 1, -(1<<53 + 1), 1<<62 + 12345, -1 << 62, math.MaxInt64, math.MaxInt64 - 1, math.MinInt64,
		math.MinInt64 + 1, 3037000499, 3037000500, -3037000500, 9007199254740993, 123456789012345678}
	rng := rand.New(rand.NewPCG(1, 2))
	values := slices.Clone(edges)
	for range 40 {
		values = append(values, int64(rng.Uint64()), int64(rng.Uint64()>>uint(rng.IntN(64))))
	}
	ops := []uwsgi.CounterOp{uwsgi.CounterInc, uwsgi.CounterDec, uwsgi.CounterMul, uwsgi.CounterDiv}
	check := func(n, operand int64) {
		for _, op := range ops {
			if err := c.Update(ctx, []byte("x"), uwsgi.AppendCounter(nil, n), 0); err != nil {
				t.Fatal(err)
			}
			want, ok := op.Apply(n, operand)
			got, err := c.Counter(ctx, op, []byte("x"), operand, 0)
			if ok && (err != nil || got != want) || !ok && !errors.Is(err, ErrOverflow) {
				t.Errorf("%d %v %d: redis %d, %v; want %d (ok %v)", n, op, operand, got, err, want, ok)
			}
		}
	}
	for _, n := range edges {
		for _, d := range edges {
			check(n, d)
		}
	}
	for i := range values {
		check(values[i], values[len(values)-1-i])
		check(values[i], int64(rng.IntN(1000))-500)
	}
	// Decimal values are parsed exactly, as strconv.ParseInt does.
	for _, s := range []string{"0", "-0", "+17", "9223372036854775807", "-9223372036854775808", "9007199254740993",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999", "0000000000000000000000042",
		"", "-", "+", " 1", "1 ", "1e3", "0x10", "1_000", "abc"} {
		if err := c.Update(ctx, []byte("d"), []byte(s), 0); err != nil {
			t.Fatal(err)
		}
		want, perr := strconv.ParseInt(s, 10, 64)
		if len(s) == 8 {
			want, perr = int64(binary.LittleEndian.Uint64([]byte(s))), nil
		}
		got, err := c.Inc(ctx, []byte("d"), 0, 0)
		if perr == nil && (err != nil || got != want) || perr != nil && !errors.Is(err, ErrNotNumber) {
			t.Errorf("Inc(%q, 0) = %d, %v; want %d (parse error %v)", s, got, err, want, perr)
		}
	}
}

// TestRedisCounterAtomic: increments from several nodes at once all count.
func TestRedisCounterAtomic(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	var nodes []*Cache
	for range 2 {
		c, err := NewCache(CacheConfig{Backend: srv.URL(), RequireBackend: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		nodes = append(nodes, c)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for range each {
				if _, err := nodes[i%2].Inc(ctx, []byte("n"), 1, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, err := nodes[0].Num(ctx, []byte("n")); n != workers*each || err != nil {
		t.Errorf("counter = %d, %v; want %d", n, err, workers*each)
	}
}
