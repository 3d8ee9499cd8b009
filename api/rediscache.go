package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// ErrCacheBackend wraps every failure to reach a cache's backend (Redis
// down, slow or refusing): the call fails, the host goes on, and the
// client reconnects by itself once the backend is back.
var ErrCacheBackend = errors.New("api: cache backend unavailable")

// Bounds of every wait for Redis: a slow or gone server fails a call
// within about a second instead of holding it (and its interpreter).
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = time.Second
	redisPoolTimeout = 2 * time.Second
	redisScanCount   = 1000
)

// redisCache keeps a Cache's items in Redis, so that every node using the
// same server and prefix sees one cache. Each item is a Redis string under
// prefix+key with Redis's own expiry; Redis expires items itself, so
// there is nothing to sweep. MaxItems and MaxBytes are not enforced here:
// Redis's maxmemory and eviction policy bound it.
type redisCache struct {
	client *redis.Client
	prefix string
	hits   atomic.Uint64
	misses atomic.Uint64
}

// newRedisCache connects (lazily: go-redis dials on first use) to the
// server of cfg.Backend ("redis://[:password@]host:port[/db]" or
// rediss://). With cfg.RequireBackend a server that does not answer a
// PING now is an error; otherwise it is logged and calls fail until the
// server is back.
func newRedisCache(cfg CacheConfig) (*redisCache, error) {
	opts, err := redis.ParseURL(cfg.Backend)
	if err != nil {
		return nil, fmt.Errorf("%w: cache %q: backend %q: %v", ErrCacheConfig, cfg.Name, cfg.Backend, err)
	}
	opts.DialTimeout = redisDialTimeout
	opts.ReadTimeout, opts.WriteTimeout = redisIOTimeout, redisIOTimeout
	opts.PoolTimeout = redisPoolTimeout
	opts.MaxRetries = 1
	opts.ContextTimeoutEnabled = true
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "scripthost:cache:" + cfg.Name + ":"
	}
	rc := &redisCache{client: redis.NewClient(opts), prefix: prefix}
	ctx, cancel := context.WithTimeout(context.Background(), redisDialTimeout+redisIOTimeout)
	defer cancel()
	if err := rc.client.Ping(ctx).Err(); err != nil {
		if cfg.RequireBackend {
			rc.client.Close()
			return nil, fmt.Errorf("cache %q: %w: %s: %v", cfg.Name, ErrCacheBackend, opts.Addr, err)
		}
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("cache backend unreachable at start; its calls fail until it answers",
			"cache", cfg.Name, "backend", opts.Addr, "err", err)
	}
	return rc, nil
}

// fail turns a client error into one wrapping ErrCacheBackend; a
// cancelled call keeps its context's cause.
func (rc *redisCache) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%w: %v", ErrCacheBackend, err)
}

func (rc *redisCache) key(k []byte) string { return rc.prefix + string(k) }

func (rc *redisCache) get(ctx context.Context, key []byte) (Item, error) {
	k := rc.key(key)
	var value *redis.StringCmd
	var expires *redis.DurationCmd
	_, err := rc.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		value = p.Get(ctx, k)
		expires = p.PExpireTime(ctx, k)
		return nil
	})
	if errors.Is(err, redis.Nil) || errors.Is(value.Err(), redis.Nil) {
		rc.misses.Add(1)
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, rc.fail(ctx, err)
	}
	rc.hits.Add(1)
	v, _ := value.Bytes()
	var at time.Time
	if d := expires.Val(); d > 0 {
		at = time.UnixMilli(d.Milliseconds())
	}
	return Item{Value: v, Expires: at}, nil
}

func (rc *redisCache) exists(ctx context.Context, key []byte) (bool, error) {
	n, err := rc.client.Exists(ctx, rc.key(key)).Result()
	if err != nil {
		return false, rc.fail(ctx, err)
	}
	return n > 0, nil
}

func (rc *redisCache) set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ok, err := rc.client.SetNX(ctx, rc.key(key), value, redisTTL(ttl)).Result()
	if err != nil {
		return rc.fail(ctx, err)
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrExists, key)
	}
	return nil
}

func (rc *redisCache) update(ctx context.Context, key, value []byte, ttl time.Duration) error {
	// SET without KEEPTTL drops an old expiry, as a local update does.
	if err := rc.client.Set(ctx, rc.key(key), value, redisTTL(ttl)).Err(); err != nil {
		return rc.fail(ctx, err)
	}
	return nil
}

func (rc *redisCache) delete(ctx context.Context, key []byte) error {
	n, err := rc.client.Del(ctx, rc.key(key)).Result()
	if err != nil {
		return rc.fail(ctx, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// counter is Cache.Counter: one server-side script reads the item, computes
// and stores the result, so it is atomic across every node using the
// server. Redis's Lua numbers are doubles, exact only to 2^53, and INCRBY
// keeps decimal text, not uWSGI's 8-byte form, so the script computes on
// the bytes: 16-bit limbs, exact on int64 for all four operations, with
// the same results, errors and expiry rules as the local cache.
func (rc *redisCache) counter(ctx context.Context, op uwsgi.CounterOp, key []byte, operand int64, ttl time.Duration) (int64, error) {
	v, err := redisCounterScript.Run(ctx, rc.client, []string{rc.key(key)},
		op.String(), uwsgi.AppendCounter(nil, operand), redisTTL(ttl).Milliseconds()).Text()
	if err != nil {
		// Redis puts "ERR " before the script's error replies.
		msg := strings.TrimPrefix(err.Error(), "ERR ")
		if size, ok := strings.CutPrefix(msg, "NOTCOUNTER "); ok {
			return 0, fmt.Errorf("%w: %q holds %s bytes", ErrNotNumber, key, size)
		}
		if msg == "OVERFLOW" {
			return 0, fmt.Errorf("%w: %q: %v %d", ErrOverflow, key, op, operand)
		}
		return 0, rc.fail(ctx, err)
	}
	if len(v) != uwsgi.CounterSize {
		return 0, fmt.Errorf("%w: the counter script returned %d bytes", ErrCacheBackend, len(v))
	}
	n, _ := uwsgi.ParseCounter([]byte(v))
	return n, nil
}

// redisCounterScript: KEYS[1] is the item; ARGV[1] the operation (inc,
// dec, mul, div), ARGV[2] the operand (8 bytes, little-endian), ARGV[3]
// the time to live in milliseconds of an item it creates (0: none). It
// returns the new counter (8 bytes) or fails with NOTCOUNTER or OVERFLOW.
// Numbers are 4 limbs of 16 bits, least significant first, in two's
// complement; every intermediate value stays below 2^35.
var redisCounterScript = redis.NewScript(`
local B = 65536
local function fromBytes(s)
  local b = {string.byte(s, 1, 8)}
  return {b[1] + b[2] * 256, b[3] + b[4] * 256, b[5] + b[6] * 256, b[7] + b[8] * 256}
end
local function toBytes(x)
  local t = {}
  for i = 1, 4 do
    t[2 * i - 1] = x[i] % 256
    t[2 * i] = math.floor(x[i] / 256)
  end
  return string.char(unpack(t))
end
local function isNeg(x) return x[4] >= 32768 end
local function isZero(x) return x[1] == 0 and x[2] == 0 and x[3] == 0 and x[4] == 0 end
local function add(a, b) -- modulo 2^64
  local r, c = {}, 0
  for i = 1, 4 do
    local s = a[i] + b[i] + c
    r[i] = s % B
    c = math.floor(s / B)
  end
  return r
end
local function neg(a)
  local r = {}
  for i = 1, 4 do r[i] = B - 1 - a[i] end
  return add(r, {1, 0, 0, 0})
end
local function abs(a)
  if isNeg(a) then return neg(a) end
  return a
end
local function cmp(a, b) -- unsigned
  for i = 4, 1, -1 do
    if a[i] ~= b[i] then
      if a[i] < b[i] then return -1 end
      return 1
    end
  end
  return 0
end
local MIN = {0, 0, 0, 32768}
-- signed turns a magnitude and a sign into an int64, nil when out of range.
local function signed(m, negative)
  if negative then
    if cmp(m, MIN) > 0 then return nil end
    return neg(m)
  end
  if isNeg(m) then return nil end
  return m
end
local function mulU(a, b) -- unsigned; nil at 2^64 or more
  local r = {0, 0, 0, 0, 0, 0, 0, 0}
  for i = 1, 4 do
    local c = 0
    for j = 1, 4 do
      local s = r[i + j - 1] + a[i] * b[j] + c
      r[i + j - 1] = s % B
      c = math.floor(s / B)
    end
    r[i + 4] = c
  end
  if r[5] + r[6] + r[7] + r[8] > 0 then return nil end
  return {r[1], r[2], r[3], r[4]}
end
local function shl1(a, bit)
  local r, c = {}, bit
  for i = 1, 4 do
    local s = a[i] * 2 + c
    r[i] = s % B
    c = math.floor(s / B)
  end
  return r
end
local function divU(a, b) -- unsigned, b > 0: bit by bit
  local q, r = {0, 0, 0, 0}, {0, 0, 0, 0}
  for i = 4, 1, -1 do
    for p = 15, 0, -1 do
      r = shl1(r, math.floor(a[i] / 2 ^ p) % 2)
      q = shl1(q, 0)
      if cmp(r, b) >= 0 then
        r = add(r, neg(b))
        q[1] = q[1] + 1
      end
    end
  end
  return q
end
local function parseDecimal(s) -- strconv.ParseInt(s, 10, 64)
  local sign, digits = string.match(s, "^([+-]?)([0-9]+)$")
  if not digits then return nil end
  local m = {0, 0, 0, 0}
  for k = 1, #digits do
    local c = string.byte(digits, k) - 48
    for i = 1, 4 do
      local v = m[i] * 10 + c
      m[i] = v % B
      c = math.floor(v / B)
    end
    if c ~= 0 then return nil end
  end
  return signed(m, sign == "-")
end

local cur = redis.call("GET", KEYS[1])
local n = {0, 0, 0, 0}
if cur then
  if #cur == 8 then n = fromBytes(cur) else n = parseDecimal(cur) end
  if not n then return redis.error_reply("NOTCOUNTER " .. #cur) end
end
local op, d = ARGV[1], fromBytes(ARGV[2])
local r
if op == "inc" then
  r = add(n, d)
  if isNeg(n) == isNeg(d) and isNeg(r) ~= isNeg(n) then r = nil end
elseif op == "dec" then
  r = add(n, neg(d))
  if isNeg(n) ~= isNeg(d) and isNeg(r) ~= isNeg(n) then r = nil end
elseif op == "mul" then
  if isZero(n) or isZero(d) then
    r = {0, 0, 0, 0}
  else
    local m = mulU(abs(n), abs(d))
    if m then r = signed(m, isNeg(n) ~= isNeg(d)) end
  end
elseif op == "div" then
  if isZero(d) then
    r = {0, 0, 0, 0}
  else
    r = signed(divU(abs(n), abs(d)), isNeg(n) ~= isNeg(d))
  end
else
  return redis.error_reply("ERR unknown counter operation " .. op)
end
if not r then return redis.error_reply("OVERFLOW") end
local v = toBytes(r)
if cur then
  redis.call("SET", KEYS[1], v, "KEEPTTL")
elseif tonumber(ARGV[3]) > 0 then
  redis.call("SET", KEYS[1], v, "PX", ARGV[3])
else
  redis.call("SET", KEYS[1], v)
end
return v
`)

// scan calls fn with the batches of this cache's Redis keys.
func (rc *redisCache) scan(ctx context.Context, fn func(keys []string) error) error {
	match := redisGlobEscape(rc.prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := rc.client.Scan(ctx, cursor, match, redisScanCount).Result()
		if err != nil {
			return rc.fail(ctx, err)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

func (rc *redisCache) keys(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := rc.scan(ctx, func(keys []string) error {
		for _, k := range keys {
			out = append(out, []byte(strings.TrimPrefix(k, rc.prefix)))
		}
		return nil
	})
	return out, err
}

func (rc *redisCache) clear(ctx context.Context) error {
	return rc.scan(ctx, func(keys []string) error {
		if err := rc.client.Unlink(ctx, keys...).Err(); err != nil {
			return rc.fail(ctx, err)
		}
		return nil
	})
}

// len counts this cache's keys (a scan: for status pages and tests).
func (rc *redisCache) len(ctx context.Context) (int, error) {
	n := 0
	err := rc.scan(ctx, func(keys []string) error { n += len(keys); return nil })
	return n, err
}

func (rc *redisCache) close() error { return rc.client.Close() }

// redisTTL is Redis's expiry for ttl: 0 means none; below a millisecond
// rounds up so that a short ttl does not mean "forever".
func redisTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return max(ttl, time.Millisecond)
}

// redisGlobEscape escapes the glob characters of SCAN's MATCH.
func redisGlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
