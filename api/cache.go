package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// Defaults applied to zero fields of a CacheConfig. They follow uWSGI's
// cache2 defaults where uWSGI has one.
const (
	DefaultCacheName     = "default"
	DefaultCacheItems    = 1000
	DefaultCacheItemSize = 65536 // uWSGI's blocksize
	DefaultCacheKeySize  = 2048  // uWSGI's keysize
)

// cacheExpiredScan is how many of the coldest items makeRoom checks for
// expiry before it evicts live ones: enough to catch most expired items
// without turning an insert into a scan.
const cacheExpiredScan = 16

// Cache errors. Misses return ErrNotFound itself, unwrapped, because a
// miss is the common case and should not allocate.
var (
	ErrNotFound       = errors.New("api: cache item not found")
	ErrExists         = errors.New("api: cache item exists") // Set on a live item
	ErrEmptyKey       = errors.New("api: empty cache key")
	ErrKeyTooLarge    = errors.New("api: cache key too large")
	ErrValueTooLarge  = errors.New("api: cache value too large")
	ErrNotNumber      = errors.New("api: cache value is not a counter") // neither uWSGI's 8-byte integer nor a decimal
	ErrOverflow       = errors.New("api: cache counter overflow")
	ErrUnknownCache   = errors.New("api: unknown cache")
	ErrDuplicateCache = errors.New("api: duplicate cache name")
	ErrCacheConfig    = errors.New("api: invalid cache config")
)

// CacheConfig describes one cache. Zero fields take the defaults noted on
// each field.
type CacheConfig struct {
	// Name selects the cache (the "cache" var of the magic protocol);
	// default DefaultCacheName.
	Name string
	// MaxItems bounds the number of items; default DefaultCacheItems.
	MaxItems int
	// MaxItemSize bounds one value in bytes, like uWSGI's blocksize;
	// default DefaultCacheItemSize.
	MaxItemSize int
	// MaxKeySize bounds one key in bytes; default DefaultCacheKeySize.
	MaxKeySize int
	// MaxBytes bounds the sum of key and value lengths of all items.
	// The default, MaxItems*MaxItemSize, is what uWSGI preallocates for
	// the same settings (64 MiB with all defaults). It must be at least
	// MaxItemSize.
	MaxBytes int64
	// Store is the path of the cache's journal (uWSGI's store=): the
	// contents are replayed from it at start and every mutation is
	// appended to it, so they survive a crash or a restart of the whole
	// server. "" keeps the cache in memory only.
	Store string
	// Backend, when set, keeps the items in a Redis server instead of this
	// process ("redis://[:password@]host:port[/db]", or rediss:// for
	// TLS), so that every node using it sees one cache. MaxItems and
	// MaxBytes are then Redis's to enforce (maxmemory); MaxItemSize and
	// MaxKeySize still apply. It excludes Store.
	Backend string
	// Prefix is put before every key in Redis (default
	// "scripthost:cache:NAME:"), so that several caches and programs can
	// share a server.
	Prefix string
	// RequireBackend makes a backend that does not answer at start an
	// error; by default the cache starts, logs it, and its calls fail
	// with ErrCacheBackend until the server answers.
	RequireBackend bool
	// Logger receives journal problems (damage dropped at replay, failed
	// writes); nil means slog.Default().
	Logger *slog.Logger
}

// withDefaults fills zero fields and rejects values that cannot work.
func (cfg CacheConfig) withDefaults() (CacheConfig, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultCacheName
	}
	if cfg.MaxItems == 0 {
		cfg.MaxItems = DefaultCacheItems
	}
	if cfg.MaxItemSize == 0 {
		cfg.MaxItemSize = DefaultCacheItemSize
	}
	if cfg.MaxKeySize == 0 {
		cfg.MaxKeySize = DefaultCacheKeySize
	}
	if cfg.MaxItems < 0 || cfg.MaxItemSize < 0 || cfg.MaxKeySize < 0 || cfg.MaxBytes < 0 {
		return cfg, fmt.Errorf("%w: cache %q: negative limit", ErrCacheConfig, cfg.Name)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = int64(cfg.MaxItems) * int64(cfg.MaxItemSize)
	}
	if cfg.Backend != "" && cfg.Store != "" {
		return cfg, fmt.Errorf("%w: cache %q: store= and backend= exclude each other", ErrCacheConfig, cfg.Name)
	}
	if cfg.MaxBytes < int64(cfg.MaxItemSize) {
		return cfg, fmt.Errorf("%w: cache %q: maxbytes %d is smaller than blocksize %d",
			ErrCacheConfig, cfg.Name, cfg.MaxBytes, cfg.MaxItemSize)
	}
	return cfg, nil
}

// Item is a cached value as returned by Cache.Get.
type Item struct {
	Value   []byte    // a copy owned by the caller
	Expires time.Time // zero means the item never expires
}

// CacheStats is a snapshot of a cache's counters.
type CacheStats struct {
	Items     int    // items stored, including expired ones not yet removed
	Bytes     int64  // sum of key and value lengths of the stored items
	Hits      uint64 // Get calls that found a live item
	Misses    uint64 // Get calls that did not
	Evictions uint64 // live items dropped to make room
	Expired   uint64 // expired items removed (lazily, by Sweep or to make room)
}

// entry is one cached item and its node in the LRU list; the list is
// intrusive so that every operation is O(1) without extra allocations.
type entry struct {
	key        string
	value      []byte
	expires    time.Time
	prev, next *entry
}

func (e *entry) expiredAt(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

func (e *entry) size() int64 { return int64(len(e.key) + len(e.value)) }

// Cache is an in-memory cache with uWSGI's semantics (those of its cache
// subsystem and of the cache magic interface, modifier1 111):
// Set fails on a live item, Update creates or overwrites, keys and values
// are binary. Keys must not be empty; unlike uWSGI's magic set, empty values
// are allowed. Expired items are removed when touched, when room is needed
// and by Sweep; the cache starts no goroutine. When an addition would exceed
// MaxItems or MaxBytes, expired items near the cold end are dropped first,
// then the least recently used items (Get, Exists, Update and the counter
// methods count as use). Values are copied in and out, so callers may
// reuse buffers.
//
// Every method takes a context so that a remote backend can honour it
// later; the in-memory cache never blocks and ignores it. A Cache is safe
// for concurrent use.
type Cache struct {
	cfg CacheConfig
	now func() time.Time // injectable clock for tests

	mu    sync.Mutex
	items map[string]*entry
	root  entry // sentinel: root.next is the most, root.prev the least recently used
	bytes int64
	stats CacheStats
	// journal is nil unless cfg.Store is set; see cachestore.go.
	journal *journal
	// remote holds the items when cfg.Backend is set: every method then
	// goes to it after checking sizes (rediscache.go).
	remote *redisCache
}

// NewCache returns a cache configured by cfg: empty, or with the live
// items of its journal when cfg.Store is set (see Close). A journal that
// cannot be opened or is not one gives an error wrapping ErrJournal.
func NewCache(cfg CacheConfig) (*Cache, error) {
	return newCache(cfg, time.Now)
}

func newCache(cfg CacheConfig, now func() time.Time) (*Cache, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, now: now, items: make(map[string]*entry)}
	c.root.next, c.root.prev = &c.root, &c.root
	if cfg.Backend != "" {
		if c.remote, err = newRedisCache(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Store != "" {
		if err := c.attachJournal(); err != nil {
			return nil, fmt.Errorf("cache %q: %w", cfg.Name, err)
		}
	}
	return c, nil
}

// Name returns the cache's name.
func (c *Cache) Name() string { return c.cfg.Name }

// Config returns the configuration with defaults applied.
func (c *Cache) Config() CacheConfig { return c.cfg }

// Len returns the number of stored items, including expired items not yet
// removed; call Sweep first for an exact count of live items.
func (c *Cache) Len() int {
	if c.remote != nil {
		n, _ := c.remote.len(context.Background())
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Items, s.Bytes = len(c.items), c.bytes
	if c.remote != nil {
		s.Hits, s.Misses = c.remote.hits.Load(), c.remote.misses.Load()
	}
	return s
}

func (c *Cache) checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(key) > c.cfg.MaxKeySize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrKeyTooLarge, len(key), c.cfg.MaxKeySize)
	}
	return nil
}

func (c *Cache) checkItem(key, value []byte) error {
	if err := c.checkKey(key); err != nil {
		return err
	}
	if len(value) > c.cfg.MaxItemSize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrValueTooLarge, len(value), c.cfg.MaxItemSize)
	}
	if n := int64(len(key) + len(value)); n > c.cfg.MaxBytes {
		return fmt.Errorf("%w: key and value are %d bytes, cache holds %d", ErrValueTooLarge, n, c.cfg.MaxBytes)
	}
	return nil
}

// live returns the live entry for key, removing it if it has expired.
// The caller holds c.mu.
func (c *Cache) live(key []byte, now time.Time) *entry {
	e := c.items[string(key)]
	if e == nil {
		return nil
	}
	if e.expiredAt(now) {
		c.remove(e)
		c.stats.Expired++
		return nil
	}
	return e
}

// Get returns a copy of the live item stored under key, or ErrNotFound.
func (c *Cache) Get(ctx context.Context, key []byte) (Item, error) {
	if err := c.checkKey(key); err != nil {
		return Item{}, err
	}
	if c.remote != nil {
		return c.remote.get(ctx, key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.live(key, c.now())
	if e == nil {
		c.stats.Misses++
		return Item{}, ErrNotFound
	}
	c.stats.Hits++
	c.touch(e)
	v := make([]byte, len(e.value))
	copy(v, e.value)
	return Item{Value: v, Expires: e.expires}, nil
}

// Exists reports whether a live item is stored under key.
func (c *Cache) Exists(ctx context.Context, key []byte) (bool, error) {
	if err := c.checkKey(key); err != nil {
		return false, err
	}
	if c.remote != nil {
		return c.remote.exists(ctx, key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.live(key, c.now())
	if e == nil {
		return false, nil
	}
	c.touch(e)
	return true, nil
}

// Set stores value under key unless a live item is already there, in
// which case it returns ErrExists (uWSGI's cache_set). ttl <= 0 means the
// item never expires.
func (c *Cache) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if err := c.checkItem(key, value); err != nil {
		return err
	}
	if c.remote != nil {
		return c.remote.set(ctx, key, value, ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.live(key, now) != nil {
		return fmt.Errorf("%w: %q", ErrExists, key)
	}
	e := c.insert(string(key), cloneBytes(value), expiry(now, ttl), now)
	c.record(opPut, e.key, e.value, e.expires)
	return nil
}

// Update stores value under key, creating or overwriting the item
// (uWSGI's cache_update). ttl <= 0 means the item never expires.
func (c *Cache) Update(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if err := c.checkItem(key, value); err != nil {
		return err
	}
	if c.remote != nil {
		return c.remote.update(ctx, key, value, ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	e := c.put(string(key), cloneBytes(value), expiry(now, ttl), now)
	c.record(opPut, e.key, e.value, e.expires)
	return nil
}

// Delete removes the item stored under key, or returns ErrNotFound if
// there is no live item.
func (c *Cache) Delete(ctx context.Context, key []byte) error {
	if err := c.checkKey(key); err != nil {
		return err
	}
	if c.remote != nil {
		return c.remote.delete(ctx, key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.live(key, c.now())
	if e == nil {
		return ErrNotFound
	}
	c.remove(e)
	c.record(opDelete, e.key, nil, time.Time{})
	return nil
}

// Clear removes every item. The counters are kept.
func (c *Cache) Clear(ctx context.Context) error {
	if c.remote != nil {
		return c.remote.clear(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearItems()
	c.record(opClear, "", nil, time.Time{})
	return nil
}

func (c *Cache) clearItems() {
	clear(c.items)
	c.root.next, c.root.prev = &c.root, &c.root
	c.bytes = 0
}

// Keys returns copies of the keys of all live items, most recently used
// first. Listing does not count as use.
func (c *Cache) Keys(ctx context.Context) ([][]byte, error) {
	if c.remote != nil {
		return c.remote.keys(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	keys := make([][]byte, 0, len(c.items))
	for e := c.root.next; e != &c.root; e = e.next {
		if !e.expiredAt(now) {
			keys = append(keys, []byte(e.key))
		}
	}
	return keys, nil
}

// Counters: Inc, Dec, Mul, Div and Num are uWSGI's cache_inc, cache_dec,
// cache_mul, cache_div and cache_num. A counter is stored as uWSGI stores
// it, the 8 bytes of a little-endian int64 (uwsgi.AppendCounter), so that
// uWSGI nodes and scripthost read and update each other's counters. A
// value of another length that is an ASCII decimal int64 (what earlier
// versions of scripthost stored, or cache_update(key, "10")) is read as
// that number and rewritten in the 8-byte form; anything else gives
// ErrNotNumber and is left as it is. A missing item counts as 0 and is
// created with the expiry ttl (<= 0: never); an existing item keeps its
// expiry, as uWSGI's math operations do. A result outside int64 gives
// ErrOverflow (uWSGI's C arithmetic wraps around) and changes nothing.
//
// The cache protocol has no counter command: a uWSGI node's remote
// cache_inc (cache_dec, ...) arrives as a plain update whose value is the
// 8-byte delta, which is how uWSGI's client sends it. It is stored as
// sent, so the counter becomes the delta, as on a uWSGI server: nothing in
// the packet tells it from an update. scripthost's own remote counter
// operations read and write instead (uwsgi.Client.CacheCounter).

// Inc adds delta to the counter stored under key and returns the new
// value.
func (c *Cache) Inc(ctx context.Context, key []byte, delta int64, ttl time.Duration) (int64, error) {
	return c.Counter(ctx, uwsgi.CounterInc, key, delta, ttl)
}

// Dec subtracts delta from the counter stored under key and returns the
// new value.
func (c *Cache) Dec(ctx context.Context, key []byte, delta int64, ttl time.Duration) (int64, error) {
	return c.Counter(ctx, uwsgi.CounterDec, key, delta, ttl)
}

// Mul multiplies the counter stored under key by factor and returns the
// new value (0 for a missing key).
func (c *Cache) Mul(ctx context.Context, key []byte, factor int64, ttl time.Duration) (int64, error) {
	return c.Counter(ctx, uwsgi.CounterMul, key, factor, ttl)
}

// Div divides the counter stored under key by divisor, truncating, and
// returns the new value; dividing by 0 gives 0, as in uWSGI.
func (c *Cache) Div(ctx context.Context, key []byte, divisor int64, ttl time.Duration) (int64, error) {
	return c.Counter(ctx, uwsgi.CounterDiv, key, divisor, ttl)
}

// Counter applies op with operand to the counter stored under key and
// returns the new value; Inc, Dec, Mul and Div call it.
func (c *Cache) Counter(ctx context.Context, op uwsgi.CounterOp, key []byte, operand int64, ttl time.Duration) (int64, error) {
	if op < uwsgi.CounterInc || op > uwsgi.CounterDiv {
		return 0, fmt.Errorf("api: unknown cache counter operation %v", op)
	}
	if err := c.checkItem(key, make([]byte, uwsgi.CounterSize)); err != nil {
		return 0, err
	}
	if c.remote != nil {
		return c.remote.counter(ctx, op, key, operand, ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var n int64
	expires := expiry(now, ttl)
	if e := c.live(key, now); e != nil {
		var ok bool
		if n, ok = uwsgi.ParseCounter(e.value); !ok {
			return 0, fmt.Errorf("%w: %q holds %d bytes", ErrNotNumber, key, len(e.value))
		}
		expires = e.expires
	}
	r, ok := op.Apply(n, operand)
	if !ok {
		return 0, fmt.Errorf("%w: %q: %d %v %d", ErrOverflow, key, n, op, operand)
	}
	e := c.put(string(key), uwsgi.AppendCounter(make([]byte, 0, uwsgi.CounterSize), r), expires, now)
	c.record(opPut, e.key, e.value, e.expires)
	return r, nil
}

// Num returns the counter stored under key: ErrNotFound when there is no
// live item, ErrNotNumber when it holds something else (uWSGI's cache_num
// returns 0 for both). Like Get it counts as use and as a hit or a miss.
func (c *Cache) Num(ctx context.Context, key []byte) (int64, error) {
	it, err := c.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	n, ok := uwsgi.ParseCounter(it.Value)
	if !ok {
		return 0, fmt.Errorf("%w: %q holds %d bytes", ErrNotNumber, key, len(it.Value))
	}
	return n, nil
}

// Sweep removes every item expired at now and returns how many it
// removed. The owner calls it periodically so that items nobody touches
// again do not hold memory until evicted.
func (c *Cache) Sweep(now time.Time) int {
	if c.remote != nil {
		return 0 // Redis expires items itself
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for e := c.root.next; e != &c.root; {
		next := e.next
		if e.expiredAt(now) {
			c.remove(e)
			n++
		}
		e = next
	}
	c.stats.Expired += uint64(n)
	return n
}

// put stores an item, replacing any existing one, and returns it. The
// caller holds c.mu and has validated the sizes.
func (c *Cache) put(key string, value []byte, expires, now time.Time) *entry {
	if e := c.items[key]; e != nil {
		// Take the old item out first so that makeRoom neither counts
		// its bytes nor evicts it while it is being replaced.
		c.remove(e)
	}
	return c.insert(key, value, expires, now)
}

// insert adds a new item as the most recently used one, making room
// first, and returns it. The caller holds c.mu and knows key is absent.
func (c *Cache) insert(key string, value []byte, expires, now time.Time) *entry {
	e := &entry{key: key, value: value, expires: expires}
	c.makeRoom(e.size(), now)
	c.items[key] = e
	c.bytes += e.size()
	c.pushFront(e)
	return e
}

// makeRoom removes items until one more item of need bytes fits. Expired
// items are dropped first, but only those among the few coldest, so that
// making room stays O(1); otherwise the least recently used item goes.
func (c *Cache) makeRoom(need int64, now time.Time) {
	fits := func() bool {
		return len(c.items) < c.cfg.MaxItems && c.bytes+need <= c.cfg.MaxBytes
	}
	if fits() {
		return
	}
	e := c.root.prev
	for i := 0; i < cacheExpiredScan && e != &c.root; i++ {
		prev := e.prev
		if e.expiredAt(now) {
			c.remove(e)
			c.stats.Expired++
		}
		e = prev
	}
	for !fits() && len(c.items) > 0 {
		c.remove(c.root.prev)
		c.stats.Evictions++
	}
}

func (c *Cache) remove(e *entry) {
	c.unlink(e)
	delete(c.items, e.key)
	c.bytes -= e.size()
}

func (c *Cache) touch(e *entry) {
	c.unlink(e)
	c.pushFront(e)
}

func (c *Cache) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *Cache) pushFront(e *entry) {
	e.prev, e.next = &c.root, c.root.next
	c.root.next.prev = e
	c.root.next = e
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// cloneBytes copies b, keeping an empty value non-nil so that it reads
// back as an empty value rather than a missing one.
func cloneBytes(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// Caches is a named set of caches; the first one is the default, used when
// a request names no cache (as uWSGI does). Create one with NewCaches; the
// set is fixed after creation, so it needs no lock.
type Caches struct {
	byName map[string]*Cache
	names  []string // configuration order; names[0] is the default
}

// NewCaches creates one cache per config, in order. With no configs it
// creates a single cache named DefaultCacheName with default limits.
// Duplicate names give an error wrapping ErrDuplicateCache.
func NewCaches(configs ...CacheConfig) (*Caches, error) {
	if len(configs) == 0 {
		configs = []CacheConfig{{}}
	}
	cs := &Caches{byName: make(map[string]*Cache, len(configs))}
	for _, cfg := range configs {
		if cfg.Name == "" {
			cfg.Name = DefaultCacheName
		}
		// Checked before NewCache, which opens the journal.
		if _, dup := cs.byName[cfg.Name]; dup {
			cs.Close()
			return nil, fmt.Errorf("%w: %q", ErrDuplicateCache, cfg.Name)
		}
		c, err := NewCache(cfg)
		if err != nil {
			cs.Close()
			return nil, err
		}
		cs.byName[c.Name()] = c
		cs.names = append(cs.names, c.Name())
	}
	return cs, nil
}

// Cache returns the cache called name; "" means the default cache. An
// unknown name gives an error wrapping ErrUnknownCache.
func (cs *Caches) Cache(name string) (*Cache, error) {
	if name == "" {
		return cs.Default(), nil
	}
	c, ok := cs.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCache, name)
	}
	return c, nil
}

// Default returns the first configured cache.
func (cs *Caches) Default() *Cache { return cs.byName[cs.names[0]] }

// Names returns the cache names in configuration order, the default first.
func (cs *Caches) Names() []string { return append([]string(nil), cs.names...) }

// Close closes every cache's journal (see Cache.Close) and returns the
// first error.
func (cs *Caches) Close() error {
	var first error
	for _, name := range cs.names {
		if err := cs.byName[name].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Sweep removes expired items from every cache and returns the total.
func (cs *Caches) Sweep(now time.Time) int {
	n := 0
	for _, name := range cs.names {
		n += cs.byName[name].Sweep(now)
	}
	return n
}

// ParseCacheConfig parses a cache spec in the style of uWSGI's --cache2
// option: comma-separated key=value pairs, for example
//
//	name=sessions,items=1000,blocksize=64K,keysize=2048,maxbytes=64M
//
// Keys: name; items (or max_items, maxitems); blocksize (or block_size);
// keysize (or key_size, max_key_size); maxbytes (or max_bytes); store (the
// journal file, see CacheConfig.Store); backend (a redis:// URL, see
// CacheConfig.Backend), prefix and require (true: the backend must answer
// at start). Sizes accept a K, M or G suffix
// (powers of 1024). Omitted keys stay zero so that NewCache applies the
// defaults; other uWSGI keys (hash, ...) are rejected rather than silently
// ignored.
func ParseCacheConfig(s string) (CacheConfig, error) {
	var cfg CacheConfig
	if strings.TrimSpace(s) == "" {
		return cfg, fmt.Errorf("%w: empty spec", ErrCacheConfig)
	}
	seen := make(map[string]bool)
	for field := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(field, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return cfg, fmt.Errorf("%w: %q: want key=value, got %q", ErrCacheConfig, s, field)
		}
		canon, known := cacheSpecKeys[k]
		if !known {
			return cfg, fmt.Errorf("%w: %q: unknown key %q", ErrCacheConfig, s, k)
		}
		if seen[canon] {
			return cfg, fmt.Errorf("%w: %q: %s given twice", ErrCacheConfig, s, canon)
		}
		seen[canon] = true
		switch canon {
		case "name":
			cfg.Name = v
			continue
		case "store":
			cfg.Store = v
			continue
		case "backend":
			cfg.Backend = v
			continue
		case "prefix":
			cfg.Prefix = v
			continue
		case "require":
			switch v {
			case "1", "true", "yes":
				cfg.RequireBackend = true
			case "0", "false", "no":
			default:
				return cfg, fmt.Errorf("%w: %q: require: want true or false, got %q", ErrCacheConfig, s, v)
			}
			continue
		}
		n, err := parseSize(v)
		if err != nil {
			return cfg, fmt.Errorf("%w: %q: %s: %v", ErrCacheConfig, s, k, err)
		}
		switch canon {
		case "items":
			cfg.MaxItems, err = toInt(n)
		case "blocksize":
			cfg.MaxItemSize, err = toInt(n)
		case "keysize":
			cfg.MaxKeySize, err = toInt(n)
		case "maxbytes":
			cfg.MaxBytes = n
		}
		if err != nil {
			return cfg, fmt.Errorf("%w: %q: %s: %v", ErrCacheConfig, s, k, err)
		}
	}
	return cfg, nil
}

// cacheSpecKeys maps accepted spellings (uWSGI's included) to one name.
var cacheSpecKeys = map[string]string{
	"name":         "name",
	"items":        "items",
	"max_items":    "items",
	"maxitems":     "items",
	"blocksize":    "blocksize",
	"block_size":   "blocksize",
	"keysize":      "keysize",
	"key_size":     "keysize",
	"max_key_size": "keysize",
	"maxbytes":     "maxbytes",
	"max_bytes":    "maxbytes",
	"store":        "store",
	"backend":      "backend",
	"prefix":       "prefix",
	"require":      "require",
}

// parseSize parses a positive decimal with an optional K, M or G suffix.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	switch v[len(v)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	digits := v
	if mult != 1 {
		digits = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || strings.HasPrefix(digits, "+") {
		return 0, fmt.Errorf("%q is not a positive size", v)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

func toInt(n int64) (int, error) {
	if n > math.MaxInt {
		return 0, fmt.Errorf("%d is too large", n)
	}
	return int(n), nil
}
