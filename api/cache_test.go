package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// fakeClock is a settable clock for Cache.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCache(t testing.TB, cfg CacheConfig) (*Cache, *fakeClock) {
	t.Helper()
	c, err := NewCache(cfg)
	if err != nil {
		t.Fatalf("NewCache(%+v) = %v", cfg, err)
	}
	clock := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.now = clock.Now
	return c, clock
}

// keyStrings returns c's live keys as strings, most recently used first.
func keyStrings(t *testing.T, c *Cache) []string {
	t.Helper()
	keys, err := c.Keys(context.Background())
	if err != nil {
		t.Fatalf("Keys() = %v", err)
	}
	var s []string
	for _, k := range keys {
		s = append(s, string(k))
	}
	return s
}

func mustSet(t *testing.T, c *Cache, key, value string, ttl time.Duration) {
	t.Helper()
	if err := c.Set(context.Background(), []byte(key), []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q, %q) = %v", key, value, err)
	}
}

func getString(c *Cache, key string) (string, error) {
	it, err := c.Get(context.Background(), []byte(key))
	return string(it.Value), err
}

func TestCacheDefaults(t *testing.T) {
	c, err := NewCache(CacheConfig{})
	if err != nil {
		t.Fatalf("NewCache({}) = %v", err)
	}
	want := CacheConfig{Name: "default", MaxItems: 1000, MaxItemSize: 65536, MaxKeySize: 2048, MaxBytes: 1000 * 65536}
	if got := c.Config(); got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
}

func TestCacheConfigInvalid(t *testing.T) {
	for _, cfg := range []CacheConfig{
		{MaxItems: -1},
		{MaxItemSize: -1},
		{MaxKeySize: -1},
		{MaxBytes: -1},
		{MaxItemSize: 100, MaxBytes: 99},
	} {
		if _, err := NewCache(cfg); !errors.Is(err, ErrCacheConfig) {
			t.Errorf("NewCache(%+v) = %v, want %v", cfg, err, ErrCacheConfig)
		}
	}
}

func TestCacheSetUpdate(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{})
	steps := []struct {
		op      string // "set" or "update"
		value   string
		wantErr error
		want    string // value read back afterwards
	}{
		{"set", "one", nil, "one"},
		{"set", "two", ErrExists, "one"},
		{"update", "three", nil, "three"},
		{"set", "four", ErrExists, "three"},
		{"update", "", nil, ""},
	}
	for _, s := range steps {
		var err error
		if s.op == "set" {
			err = c.Set(ctx, []byte("k"), []byte(s.value), 0)
		} else {
			err = c.Update(ctx, []byte("k"), []byte(s.value), 0)
		}
		if !errors.Is(err, s.wantErr) {
			t.Errorf("%s(k, %q) = %v, want %v", s.op, s.value, err, s.wantErr)
		}
		if got, err := getString(c, "k"); err != nil || got != s.want {
			t.Errorf("after %s(k, %q): Get(k) = %q, %v, want %q, nil", s.op, s.value, got, err, s.want)
		}
	}
	if err := c.Update(ctx, []byte("new"), []byte("v"), 0); err != nil {
		t.Errorf("Update(new) = %v, want nil (update creates)", err)
	}
}

func TestCacheEmptyValue(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{})
	mustSet(t, c, "k", "", 0)
	it, err := c.Get(ctx, []byte("k"))
	if err != nil || it.Value == nil || len(it.Value) != 0 {
		t.Errorf("Get(k) = %#v, %v, want an empty non-nil value", it.Value, err)
	}
}

func TestCacheLimits(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{MaxKeySize: 4, MaxItemSize: 8})
	tests := []struct {
		key, value string
		wantErr    error
	}{
		{"", "v", ErrEmptyKey},
		{"abcd", "v", nil},
		{"abcde", "v", ErrKeyTooLarge},
		{"k1", "12345678", nil},
		{"k2", "123456789", ErrValueTooLarge},
	}
	for _, tt := range tests {
		if err := c.Set(ctx, []byte(tt.key), []byte(tt.value), 0); !errors.Is(err, tt.wantErr) {
			t.Errorf("Set(%q, %q) = %v, want %v", tt.key, tt.value, err, tt.wantErr)
		}
		if err := c.Update(ctx, []byte(tt.key), []byte(tt.value), 0); !errors.Is(err, tt.wantErr) {
			t.Errorf("Update(%q, %q) = %v, want %v", tt.key, tt.value, err, tt.wantErr)
		}
	}
	for _, key := range []string{"", "abcde"} {
		want := ErrEmptyKey
		if key != "" {
			want = ErrKeyTooLarge
		}
		if _, err := c.Get(ctx, []byte(key)); !errors.Is(err, want) {
			t.Errorf("Get(%q) = %v, want %v", key, err, want)
		}
		if _, err := c.Exists(ctx, []byte(key)); !errors.Is(err, want) {
			t.Errorf("Exists(%q) = %v, want %v", key, err, want)
		}
		if err := c.Delete(ctx, []byte(key)); !errors.Is(err, want) {
			t.Errorf("Delete(%q) = %v, want %v", key, err, want)
		}
		if _, err := c.Inc(ctx, []byte(key), 1, 0); !errors.Is(err, want) {
			t.Errorf("Inc(%q) = %v, want %v", key, err, want)
		}
	}
}

func TestCacheCopies(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{})
	key, value := []byte("key"), []byte("value")
	if err := c.Set(ctx, key, value, 0); err != nil {
		t.Fatal(err)
	}
	copy(key, "xxx")
	copy(value, "XXXXX")
	it, err := c.Get(ctx, []byte("key"))
	if err != nil || string(it.Value) != "value" {
		t.Fatalf("Get(key) after caller reused buffers = %q, %v, want %q, nil", it.Value, err, "value")
	}
	copy(it.Value, "YYYYY")
	if got, _ := getString(c, "key"); got != "value" {
		t.Errorf("Get(key) after caller changed the result = %q, want %q", got, "value")
	}
}

func TestCacheTTL(t *testing.T) {
	ctx := context.Background()
	c, clock := newTestCache(t, CacheConfig{})
	start := clock.Now()
	mustSet(t, c, "k", "v", 10*time.Second)
	mustSet(t, c, "forever", "v", 0)
	if err := c.Update(ctx, []byte("neg"), []byte("v"), -time.Second); err != nil {
		t.Fatal(err)
	}

	clock.Advance(9 * time.Second)
	it, err := c.Get(ctx, []byte("k"))
	if err != nil || !it.Expires.Equal(start.Add(10*time.Second)) {
		t.Errorf("Get(k) at 9s = expires %v, %v, want %v, nil", it.Expires, err, start.Add(10*time.Second))
	}
	if err := c.Set(ctx, []byte("k"), []byte("v2"), 0); !errors.Is(err, ErrExists) {
		t.Errorf("Set(k) on live item = %v, want %v", err, ErrExists)
	}

	clock.Advance(time.Second) // exactly at the expiry time
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(k) at 10s = %v, want %v", err, ErrNotFound)
	}
	if ok, err := c.Exists(ctx, []byte("k")); ok || err != nil {
		t.Errorf("Exists(k) at 10s = %v, %v, want false, nil", ok, err)
	}
	for _, key := range []string{"forever", "neg"} {
		it, err := c.Get(ctx, []byte(key))
		if err != nil || !it.Expires.IsZero() {
			t.Errorf("Get(%q) = expires %v, %v, want zero time, nil", key, it.Expires, err)
		}
	}
	// An expired item does not block Set.
	if err := c.Set(ctx, []byte("k"), []byte("v2"), time.Second); err != nil {
		t.Errorf("Set(k) after expiry = %v, want nil", err)
	}
	clock.Advance(time.Second)
	if err := c.Delete(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(k) of expired item = %v, want %v", err, ErrNotFound)
	}
	if got, want := keyStrings(t, c), []string{"neg", "forever"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
}

func TestCacheEvictMaxItems(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{MaxItems: 3})
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, c, k, k, 0)
	}
	// Every kind of use refreshes an item.
	c.Get(ctx, []byte("a"))
	c.Exists(ctx, []byte("b"))
	if got, want := keyStrings(t, c), []string{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Keys() = %q, want %q", got, want)
	}
	mustSet(t, c, "d", "d", 0) // evicts c
	c.Update(ctx, []byte("a"), []byte("A"), 0)
	mustSet(t, c, "e", "e", 0) // evicts b
	if _, err := c.Inc(ctx, []byte("n"), 1, 0); err != nil {
		t.Fatal(err) // evicts d
	}
	if got, want := keyStrings(t, c), []string{"n", "e", "a"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	if got := c.Stats().Evictions; got != 3 {
		t.Errorf("Stats().Evictions = %d, want 3", got)
	}
}

func TestCacheEvictMaxBytes(t *testing.T) {
	ctx := context.Background()
	// Each item below is a 2-byte key and an 8-byte value: three fit.
	c, _ := newTestCache(t, CacheConfig{MaxItems: 100, MaxItemSize: 20, MaxBytes: 30})
	for _, k := range []string{"k1", "k2", "k3"} {
		mustSet(t, c, k, "12345678", 0)
	}
	if got := c.Stats().Bytes; got != 30 {
		t.Errorf("Stats().Bytes = %d, want 30", got)
	}
	c.Get(ctx, []byte("k1"))
	mustSet(t, c, "k4", "12345678", 0) // evicts k2
	if got, want := keyStrings(t, c), []string{"k4", "k1", "k3"}; !slices.Equal(got, want) {
		t.Fatalf("Keys() = %q, want %q", got, want)
	}
	// Growing an item makes room by evicting others, never itself.
	if err := c.Update(ctx, []byte("k3"), []byte("123456789012345678"), 0); err != nil {
		t.Fatalf("Update(k3) = %v", err)
	}
	if got, want := keyStrings(t, c), []string{"k3", "k4"}; !slices.Equal(got, want) {
		t.Errorf("Keys() after growing k3 = %q, want %q", got, want)
	}
	if got := c.Stats().Bytes; got != 30 {
		t.Errorf("Stats().Bytes = %d, want 30", got)
	}
	// A key and value that together exceed the whole cache are refused.
	if err := c.Set(ctx, []byte("long-key-123"), []byte("12345678901234567890"), 0); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("Set(item larger than the cache) = %v, want %v", err, ErrValueTooLarge)
	}
}

func TestCacheEvictPrefersExpired(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{MaxItems: 3})
	mustSet(t, c, "a", "a", 0)
	mustSet(t, c, "x", "x", time.Second)
	mustSet(t, c, "b", "b", 0)
	clock.Advance(time.Second)
	mustSet(t, c, "c", "c", 0) // drops expired x, not least recently used a
	if got, want := keyStrings(t, c), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	if s := c.Stats(); s.Evictions != 0 || s.Expired != 1 {
		t.Errorf("Stats() = %+v, want 0 evictions and 1 expired", s)
	}
}

// counterString is the stored form of counter n: uWSGI's 8 bytes.
func counterString(n int64) string { return string(uwsgi.AppendCounter(nil, n)) }

func TestCacheCounters(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{MaxItemSize: 20})
	mustSet(t, c, "text", "abc", 0)
	mustSet(t, c, "empty", "", 0)
	mustSet(t, c, "spaced", " 1", 0)
	mustSet(t, c, "decimal", "41", 0) // what earlier versions stored
	mustSet(t, c, "negdecimal", "-9223372036854775808", 0)
	mustSet(t, c, "digits", "12345678", 0) // 8 bytes: uWSGI's binary form
	mustSet(t, c, "max", counterString(math.MaxInt64), 0)
	mustSet(t, c, "min", counterString(math.MinInt64), 0)
	mustSet(t, c, "nine", "123456789", 0)
	const (
		inc = uwsgi.CounterInc
		dec = uwsgi.CounterDec
		mul = uwsgi.CounterMul
		div = uwsgi.CounterDiv
	)
	tests := []struct {
		op      uwsgi.CounterOp
		key     string
		operand int64
		want    int64
		wantErr error
	}{
		{inc, "n", 5, 5, nil},
		{inc, "n", 1, 6, nil},
		{dec, "n", 10, -4, nil},
		{inc, "n", -1, -5, nil},
		{mul, "n", 3, -15, nil},
		{div, "n", 2, -7, nil}, // truncated, as C does
		{div, "n", -7, 1, nil},
		{div, "n", 0, 0, nil}, // uWSGI: division by zero gives 0
		{dec, "m", 3, -3, nil},
		{mul, "mul missing", 5, 0, nil}, // a missing item is 0
		{div, "div missing", 5, 0, nil},
		{inc, "decimal", 1, 42, nil},
		{dec, "negdecimal", -1, math.MinInt64 + 1, nil},
		{inc, "digits", 0, 0x3837363534333231, nil},
		{inc, "nine", 1, 123456790, nil},
		{inc, "text", 1, 0, ErrNotNumber},
		{inc, "empty", 1, 0, ErrNotNumber},
		{inc, "spaced", 1, 0, ErrNotNumber},
		{inc, "max", 1, 0, ErrOverflow},
		{dec, "max", -1, 0, ErrOverflow},
		{mul, "max", 2, 0, ErrOverflow},
		{mul, "max", -1, -math.MaxInt64, nil},
		{mul, "max", -1, math.MaxInt64, nil},
		{inc, "max", 0, math.MaxInt64, nil},
		{dec, "min", 1, 0, ErrOverflow},
		{inc, "min", -1, 0, ErrOverflow},
		{mul, "min", -1, 0, ErrOverflow},
		{div, "min", -1, 0, ErrOverflow},
		{div, "min", 1, math.MinInt64, nil},
		{dec, "min", math.MinInt64, 0, nil},
	}
	for _, tt := range tests {
		got, err := c.Counter(ctx, tt.op, []byte(tt.key), tt.operand, 0)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("%v(%q, %d) = %d, %v, want %d, %v", tt.op, tt.key, tt.operand, got, err, tt.want, tt.wantErr)
		}
	}
	// Results are stored as uWSGI's 8 bytes; failures leave values alone.
	for key, want := range map[string]string{"n": counterString(0), "m": counterString(-3),
		"decimal": counterString(42), "text": "abc", "min": counterString(0), "max": counterString(math.MaxInt64),
		"mul missing": counterString(0)} {
		if got, err := getString(c, key); err != nil || got != want {
			t.Errorf("Get(%q) = %q, %v, want %q, nil", key, got, err, want)
		}
	}
	// The named methods are the operations.
	for _, call := range []struct {
		f    func(context.Context, []byte, int64, time.Duration) (int64, error)
		want int64
	}{{c.Inc, 10}, {c.Mul, 30}, {c.Dec, 27}, {c.Div, 9}} {
		operand := map[int64]int64{10: 10, 30: 3, 27: 3, 9: 3}[call.want]
		if got, err := call.f(ctx, []byte("named"), operand, 0); got != call.want || err != nil {
			t.Errorf("named method: %d, %v, want %d", got, err, call.want)
		}
	}
	if _, err := c.Counter(ctx, 0, []byte("n"), 1, 0); err == nil {
		t.Error("Counter with operation 0 succeeded")
	}
}

func TestCacheNum(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{})
	mustSet(t, c, "n", counterString(-7), 0)
	mustSet(t, c, "decimal", "12", 0)
	mustSet(t, c, "text", "abc", 0)
	for _, tt := range []struct {
		key     string
		want    int64
		wantErr error
	}{{"n", -7, nil}, {"decimal", 12, nil}, {"text", 0, ErrNotNumber}, {"missing", 0, ErrNotFound}} {
		if got, err := c.Num(ctx, []byte(tt.key)); got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("Num(%q) = %d, %v, want %d, %v", tt.key, got, err, tt.want, tt.wantErr)
		}
	}
	if s := c.Stats(); s.Hits != 3 || s.Misses != 1 {
		t.Errorf("Stats() = %+v, want 3 hits and 1 miss", s)
	}
}

// TestCacheCounterExpiry: as in uWSGI, the expiry given applies to the item
// a counter operation creates; an existing item keeps its own.
func TestCacheCounterExpiry(t *testing.T) {
	ctx := context.Background()
	c, clock := newTestCache(t, CacheConfig{})
	if _, err := c.Inc(ctx, []byte("n"), 1, time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Inc(ctx, []byte("n"), 1, 0); got != 2 || err != nil {
		t.Fatalf("Inc(n) = %d, %v", got, err)
	}
	c.Inc(ctx, []byte("forever"), 1, 0)
	c.Mul(ctx, []byte("forever"), 3, time.Second)
	clock.Advance(time.Second)
	if _, err := c.Get(ctx, []byte("n")); !errors.Is(err, ErrNotFound) {
		t.Errorf("n after the expiry of its first Inc: %v, want ErrNotFound", err)
	}
	if got, err := c.Num(ctx, []byte("forever")); got != 3 || err != nil {
		t.Errorf("forever = %d, %v, want 3 (no expiry)", got, err)
	}
	if got, err := c.Inc(ctx, []byte("n"), 1, 0); got != 1 || err != nil {
		t.Errorf("Inc(n) after expiry = %d, %v, want 1", got, err)
	}
}

func TestCacheCounterSize(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{MaxItemSize: 7})
	if _, err := c.Inc(ctx, []byte("n"), 1, 0); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("Inc with 7-byte items = %v, want %v", err, ErrValueTooLarge)
	}
}

func TestCacheDeleteClear(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{})
	mustSet(t, c, "a", "1", 0)
	mustSet(t, c, "b", "2", 0)
	if err := c.Delete(ctx, []byte("a")); err != nil {
		t.Errorf("Delete(a) = %v, want nil", err)
	}
	if err := c.Delete(ctx, []byte("a")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(a) again = %v, want %v", err, ErrNotFound)
	}
	if err := c.Clear(ctx); err != nil {
		t.Fatalf("Clear() = %v", err)
	}
	if s := c.Stats(); s.Items != 0 || s.Bytes != 0 || c.Len() != 0 {
		t.Errorf("after Clear: Stats() = %+v, Len() = %d, want no items and bytes", s, c.Len())
	}
	mustSet(t, c, "a", "again", 0)
	if got, _ := getString(c, "a"); got != "again" {
		t.Errorf("Get(a) after Clear and Set = %q, want %q", got, "again")
	}
}

func TestCacheSweep(t *testing.T) {
	c, clock := newTestCache(t, CacheConfig{})
	mustSet(t, c, "keep", "v", 0)
	mustSet(t, c, "long", "v", time.Hour)
	for i := range 3 {
		mustSet(t, c, fmt.Sprint("short", i), "v", time.Minute)
	}
	if n := c.Sweep(clock.Now()); n != 0 {
		t.Errorf("Sweep(now) = %d, want 0", n)
	}
	if n := c.Sweep(clock.Now().Add(time.Minute)); n != 3 {
		t.Errorf("Sweep(now+1m) = %d, want 3", n)
	}
	if got := c.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	if got := c.Stats().Expired; got != 3 {
		t.Errorf("Stats().Expired = %d, want 3", got)
	}
}

func TestCacheStats(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{})
	mustSet(t, c, "k", "value", 0)
	c.Get(ctx, []byte("k"))
	c.Get(ctx, []byte("k"))
	c.Get(ctx, []byte("missing"))
	want := CacheStats{Items: 1, Bytes: 6, Hits: 2, Misses: 1}
	if got := c.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, CacheConfig{MaxItems: 16})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := []byte(fmt.Sprint("k", (w+i)%32))
				switch i % 5 {
				case 0:
					c.Set(ctx, key, key, time.Second)
				case 1:
					c.Update(ctx, key, key, 0)
				case 2:
					c.Get(ctx, key)
				case 3:
					c.Inc(ctx, []byte("counter"), 1, 0)
				case 4:
					c.Delete(ctx, key)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 16 {
		t.Errorf("Len() = %d, want at most 16", n)
	}
}

func TestCaches(t *testing.T) {
	cs, err := NewCaches(CacheConfig{Name: "main"}, CacheConfig{Name: "sessions", MaxItems: 5})
	if err != nil {
		t.Fatalf("NewCaches = %v", err)
	}
	if got, want := cs.Names(), []string{"main", "sessions"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got := cs.Default().Name(); got != "main" {
		t.Errorf("Default().Name() = %q, want %q", got, "main")
	}
	for _, tt := range []struct{ name, want string }{{"", "main"}, {"main", "main"}, {"sessions", "sessions"}} {
		c, err := cs.Cache(tt.name)
		if err != nil || c.Name() != tt.want {
			t.Errorf("Cache(%q) = %v, want cache %q", tt.name, err, tt.want)
		}
	}
	_, err = cs.Cache("nosuch")
	if !errors.Is(err, ErrUnknownCache) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("Cache(nosuch) = %v, want %v naming the cache", err, ErrUnknownCache)
	}

	now := time.Now()
	for _, name := range cs.Names() {
		c, _ := cs.Cache(name)
		c.Set(context.Background(), []byte("k"), []byte("v"), time.Second)
	}
	if n := cs.Sweep(now.Add(time.Minute)); n != 2 {
		t.Errorf("Sweep() = %d, want 2", n)
	}
}

func TestNewCachesDefaultAndErrors(t *testing.T) {
	cs, err := NewCaches()
	if err != nil {
		t.Fatalf("NewCaches() = %v", err)
	}
	if got := cs.Names(); !slices.Equal(got, []string{"default"}) {
		t.Errorf("NewCaches().Names() = %q, want [default]", got)
	}
	if _, err := NewCaches(CacheConfig{Name: "a"}, CacheConfig{Name: "a"}); !errors.Is(err, ErrDuplicateCache) {
		t.Errorf("NewCaches(a, a) = %v, want %v", err, ErrDuplicateCache)
	}
	// An empty name means "default", so it collides with an explicit one.
	if _, err := NewCaches(CacheConfig{}, CacheConfig{Name: "default"}); !errors.Is(err, ErrDuplicateCache) {
		t.Errorf("NewCaches({}, default) = %v, want %v", err, ErrDuplicateCache)
	}
	if _, err := NewCaches(CacheConfig{MaxItems: -1}); !errors.Is(err, ErrCacheConfig) {
		t.Errorf("NewCaches(items -1) = %v, want %v", err, ErrCacheConfig)
	}
}

func TestParseCacheConfig(t *testing.T) {
	tests := []struct {
		spec string
		want CacheConfig
	}{
		{"name=default,items=1000,blocksize=65536,keysize=2048,maxbytes=64M",
			CacheConfig{Name: "default", MaxItems: 1000, MaxItemSize: 65536, MaxKeySize: 2048, MaxBytes: 64 << 20}},
		{"name=s", CacheConfig{Name: "s"}},
		{"items=10", CacheConfig{MaxItems: 10}},
		{" name = s , max_items=2k , block_size=1K,max_key_size=1,max_bytes=1g ",
			CacheConfig{Name: "s", MaxItems: 2048, MaxItemSize: 1024, MaxKeySize: 1, MaxBytes: 1 << 30}},
		{"maxitems=3,key_size=4,blocksize=1m,maxbytes=8G",
			CacheConfig{MaxItems: 3, MaxKeySize: 4, MaxItemSize: 1 << 20, MaxBytes: 8 << 30}},
	}
	for _, tt := range tests {
		got, err := ParseCacheConfig(tt.spec)
		if err != nil || got != tt.want {
			t.Errorf("ParseCacheConfig(%q) = %+v, %v, want %+v, nil", tt.spec, got, err, tt.want)
		}
	}
}

func TestParseCacheConfigErrors(t *testing.T) {
	for _, tt := range []struct{ spec, wantInMsg string }{
		{"", "empty"},
		{"name", "key=value"},
		{"name=", "key=value"},
		{"=x", "key=value"},
		{"name=a,,items=1", "key=value"},
		{"hash=murmur2", `unknown key "hash"`},
		{"items=ten", "items"},
		{"items=0", "items"},
		{"items=-5", "items"},
		{"items=+5", "items"},
		{"blocksize=1T", "blocksize"},
		{"blocksize=K", "blocksize"},
		{"maxbytes=9999999999G", "too large"},
		{"items=1,max_items=2", "twice"},
	} {
		_, err := ParseCacheConfig(tt.spec)
		if !errors.Is(err, ErrCacheConfig) || !strings.Contains(err.Error(), tt.wantInMsg) {
			t.Errorf("ParseCacheConfig(%q) = %v, want %v mentioning %q", tt.spec, err, ErrCacheConfig, tt.wantInMsg)
		}
	}
}

func BenchmarkCacheGet(b *testing.B) {
	ctx := context.Background()
	c, _ := newTestCache(b, CacheConfig{})
	value := bytes.Repeat([]byte("v"), 128)
	for i := range 1000 {
		c.Update(ctx, []byte(fmt.Sprint("key", i)), value, 0)
	}
	key := []byte("key500")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
