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

// add is Inc and Dec: INCRBY is exact on int64 and refuses what is not a
// decimal integer or would overflow, as the local cache does; the expiry
// is set in the same transaction.
func (rc *redisCache) add(ctx context.Context, key []byte, delta int64, sub bool, ttl time.Duration) (int64, error) {
	if sub {
		if delta == -delta && delta != 0 { // math.MinInt64 cannot be negated
			return 0, fmt.Errorf("%w: %q", ErrOverflow, key)
		}
		delta = -delta
	}
	k := rc.key(key)
	var incr *redis.IntCmd
	_, err := rc.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.IncrBy(ctx, k, delta)
		if ttl > 0 {
			p.PExpire(ctx, k, redisTTL(ttl))
		} else {
			p.Persist(ctx, k)
		}
		return nil
	})
	if incr != nil {
		if ierr := incr.Err(); ierr != nil {
			msg := ierr.Error()
			switch {
			case strings.Contains(msg, "overflow"):
				return 0, fmt.Errorf("%w: %q", ErrOverflow, key)
			case strings.Contains(msg, "not an integer"):
				return 0, fmt.Errorf("%w: %q", ErrNotNumber, key)
			}
		}
	}
	if err != nil {
		return 0, rc.fail(ctx, err)
	}
	return incr.Val(), nil
}

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
