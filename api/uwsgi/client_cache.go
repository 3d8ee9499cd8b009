package uwsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// A CacheOption adjusts one cache call.
type CacheOption func(*cacheOptions)

type cacheOptions struct {
	cache   string
	expires int64
}

// InCache names the cache to use instead of the server's default one.
func InCache(name string) CacheOption {
	return func(o *cacheOptions) { o.cache = name }
}

// Expires sets the time to live of a value written by CacheSet or
// CacheUpdate, rounded up to whole seconds; zero or less means never.
func Expires(d time.Duration) CacheOption {
	return func(o *cacheOptions) {
		o.expires = 0
		if d > 0 {
			o.expires = int64((d + time.Second - 1) / time.Second)
		}
	}
}

// CacheGet returns the value of key. A missing key is ErrNotFound (a plain
// server says the same for an unknown cache).
func (c *Client) CacheGet(ctx context.Context, key string, opts ...CacheOption) ([]byte, error) {
	v, _, err := c.CacheGetItem(ctx, key, opts...)
	return v, err
}

// CacheGetItem returns the value of key and when it expires (the zero
// Time: never).
func (c *Client) CacheGetItem(ctx context.Context, key string, opts ...CacheOption) (value []byte, expires time.Time, err error) {
	rep, value, err := c.cache(ctx, CacheCmdGet, key, nil, opts, ErrNotFound)
	if err != nil {
		return nil, time.Time{}, err
	}
	if rep.Expires > 0 {
		expires = time.Unix(rep.Expires, 0)
	}
	return value, expires, nil
}

// CacheExists reports whether key is in the cache.
func (c *Client) CacheExists(ctx context.Context, key string, opts ...CacheOption) (bool, error) {
	_, _, err := c.cache(ctx, CacheCmdExists, key, nil, opts, ErrNotFound)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return false, err
}

// CacheSet stores value under key; like uWSGI it fails when the key
// exists (ErrExists from a scripthost server; from uWSGI, which gives no
// reason, ErrFailed). Use CacheUpdate to overwrite.
func (c *Client) CacheSet(ctx context.Context, key string, value []byte, opts ...CacheOption) error {
	silent := fmt.Errorf("%w: cache set of %.60q: the server closed the connection without a reply "+
		"(the key exists, the cache is unknown, or the value is empty or too large for the cache)", ErrFailed, key)
	_, _, err := c.cache(ctx, CacheCmdSet, key, value, opts, silent)
	return err
}

// CacheUpdate stores value under key, creating or overwriting it.
func (c *Client) CacheUpdate(ctx context.Context, key string, value []byte, opts ...CacheOption) error {
	silent := fmt.Errorf("%w: cache update of %.60q: the server closed the connection without a reply "+
		"(the cache is unknown, or the value is empty or too large for the cache)", ErrFailed, key)
	_, _, err := c.cache(ctx, CacheCmdUpdate, key, value, opts, silent)
	return err
}

// CacheDel removes key. A missing key is ErrNotFound.
func (c *Client) CacheDel(ctx context.Context, key string, opts ...CacheOption) error {
	_, _, err := c.cache(ctx, CacheCmdDel, key, nil, opts, ErrNotFound)
	return err
}

// CacheClear removes every item of the cache.
func (c *Client) CacheClear(ctx context.Context, opts ...CacheOption) error {
	silent := fmt.Errorf("%w: cache clear: the server closed the connection without a reply (unknown cache?)", ErrFailed)
	_, _, err := c.cache(ctx, CacheCmdClear, "", nil, opts, silent)
	return err
}

// CacheNum returns the counter stored under key (see ParseCounter). A
// missing key is ErrNotFound, a value that is not a counter
// ErrNotCounter; uWSGI's own cache_num returns 0 for both.
func (c *Client) CacheNum(ctx context.Context, key string, opts ...CacheOption) (int64, error) {
	v, err := c.CacheGet(ctx, key, opts...)
	if err != nil {
		return 0, err
	}
	n, ok := ParseCounter(v)
	if !ok {
		return 0, fmt.Errorf("%w: %.60q holds %d bytes", ErrNotCounter, key, len(v))
	}
	return n, nil
}

// CacheInc adds delta to the counter stored under key and returns the new
// value; see CacheCounter.
func (c *Client) CacheInc(ctx context.Context, key string, delta int64, opts ...CacheOption) (int64, error) {
	return c.CacheCounter(ctx, CounterInc, key, delta, opts...)
}

// CacheDec subtracts delta from the counter stored under key; see
// CacheCounter.
func (c *Client) CacheDec(ctx context.Context, key string, delta int64, opts ...CacheOption) (int64, error) {
	return c.CacheCounter(ctx, CounterDec, key, delta, opts...)
}

// CacheMul multiplies the counter stored under key by factor; see
// CacheCounter.
func (c *Client) CacheMul(ctx context.Context, key string, factor int64, opts ...CacheOption) (int64, error) {
	return c.CacheCounter(ctx, CounterMul, key, factor, opts...)
}

// CacheDiv divides the counter stored under key by divisor (0 gives 0, as
// in uWSGI); see CacheCounter.
func (c *Client) CacheDiv(ctx context.Context, key string, divisor int64, opts ...CacheOption) (int64, error) {
	return c.CacheCounter(ctx, CounterDiv, key, divisor, opts...)
}

// CacheCounter applies op with operand to the counter stored under key on
// the server and returns the new value, with uWSGI's semantics: the value
// is uWSGI's 8-byte integer (ParseCounter), a missing key counts as 0 and
// is created with the Expires option, an existing one keeps its expiry.
// A value that is not a counter is ErrNotCounter, a result outside int64
// ErrCounterOverflow; the item is then left as it was.
//
// The magic interface has no counter command, in uWSGI or in scripthost:
// the client reads the item (get) and writes the result (update, with the
// item's remaining time to live). That is what a counter needs, but it is
// not atomic: two clients updating the same key at once may lose one
// update. uWSGI's own remote cache_inc is worse: it sends an update
// whose value is the 8-byte delta, so the counter becomes the delta.
// Counters that many nodes update belong in one place they all use
// locally: a Redis-backed cache (backend=), or an RPC function on the
// node that owns the counter.
func (c *Client) CacheCounter(ctx context.Context, op CounterOp, key string, operand int64, opts ...CacheOption) (int64, error) {
	if op < CounterInc || op > CounterDiv {
		return 0, fmt.Errorf("uwsgi: cache counter: unknown operation %v", op)
	}
	var o cacheOptions
	for _, opt := range opts {
		opt(&o)
	}
	value, expires, err := c.CacheGetItem(ctx, key, opts...)
	var n int64
	switch {
	case errors.Is(err, ErrNotFound):
		// A new item: expires as the caller says.
	case err != nil:
		return 0, err
	default:
		var ok bool
		if n, ok = ParseCounter(value); !ok {
			return 0, fmt.Errorf("%w: %.60q holds %d bytes", ErrNotCounter, key, len(value))
		}
		// An existing item keeps its expiry (uWSGI's FIXEXPIRE), to the
		// second: the magic interface carries seconds from now, measured
		// here against the server's absolute expiry with this clock.
		o.expires = 0
		if !expires.IsZero() {
			o.expires = max(1, int64(time.Until(expires)+time.Second-1)/int64(time.Second))
		}
	}
	r, ok := op.Apply(n, operand)
	if !ok {
		return 0, fmt.Errorf("%w: %.60q: %d %v %d", ErrCounterOverflow, key, n, op, operand)
	}
	update := append(opts[:len(opts):len(opts)], func(co *cacheOptions) { co.expires = o.expires })
	if err := c.CacheUpdate(ctx, key, AppendCounter(nil, r), update...); err != nil {
		return 0, err
	}
	return r, nil
}

// cache runs one command of the magic interface (111/17).
func (c *Client) cache(ctx context.Context, cmd, key string, value []byte, opts []CacheOption, silent error) (CacheReply, []byte, error) {
	var o cacheOptions
	for _, opt := range opts {
		opt(&o)
	}
	if key == "" && cmd != CacheCmdClear {
		return CacheReply{}, nil, fmt.Errorf("uwsgi: cache %s: %w", cmd, ErrEmptyKey)
	}
	if int64(len(value)) > c.maxResult() {
		return CacheReply{}, nil, fmt.Errorf("uwsgi: cache %s of %d bytes: %w (max %d)", cmd, len(value), ErrTooLarge, c.maxResult())
	}
	req, err := AppendCacheRequest(nil, CacheRequest{Cmd: cmd, Key: []byte(key), Cache: o.cache, Expires: o.expires}, value)
	if err != nil {
		return CacheReply{}, nil, err
	}
	var rep CacheReply
	var val []byte
	err = c.exchange(ctx, req, silent, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != ModCache || h.Modifier2 != CacheMagic {
			return false, protocolError("reply %v to a cache %s", h, cmd)
		}
		block := make([]byte, h.Size)
		if _, err := io.ReadFull(cn.br, block); err != nil {
			return false, unexpected(err)
		}
		var err error
		if rep, err = ParseCacheReply(block); err != nil {
			return false, fmt.Errorf("%w: cache reply: %w", ErrProtocol, err)
		}
		switch rep.Status {
		case "ok":
		case "notfound":
			return true, ErrNotFound
		case "exists":
			return true, ErrExists
		default:
			return true, fmt.Errorf("%w: cache %s: status %.60q", ErrFailed, cmd, rep.Status)
		}
		if cmd != CacheCmdGet {
			return true, nil
		}
		if int64(rep.Size) > c.maxResult() {
			return false, fmt.Errorf("uwsgi: cache value of %d bytes: %w (max %d)", rep.Size, ErrTooLarge, c.maxResult())
		}
		// Grow with the bytes that arrive, not with the size announced.
		val, err = io.ReadAll(io.LimitReader(cn.br, int64(rep.Size)))
		if err != nil {
			return false, err
		}
		if len(val) < rep.Size {
			return false, io.ErrUnexpectedEOF
		}
		return true, nil
	})
	return rep, val, err
}
