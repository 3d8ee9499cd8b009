package uwsgi

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

func cacheGetOp(key string, opts ...CacheOption) func(context.Context, *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		v, err := c.CacheGet(ctx, key, opts...)
		return string(v), err
	}
}

func cacheExistsOp(key string, opts ...CacheOption) func(context.Context, *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		ok, err := c.CacheExists(ctx, key, opts...)
		return strconv.FormatBool(ok), err
	}
}

func cacheSetOp(key, value string, opts ...CacheOption) func(context.Context, *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		return "", c.CacheSet(ctx, key, []byte(value), opts...)
	}
}

func cacheUpdateOp(key, value string, opts ...CacheOption) func(context.Context, *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		return "", c.CacheUpdate(ctx, key, []byte(value), opts...)
	}
}

func cacheDelOp(key string, opts ...CacheOption) func(context.Context, *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		return "", c.CacheDel(ctx, key, opts...)
	}
}

func cacheClearOp(opts ...CacheOption) func(context.Context, *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		return "", c.CacheClear(ctx, opts...)
	}
}

// TestClientCache runs one sequence of cache calls against both kinds of
// server; only the errors for failed writes differ (uWSGI gives no reason).
func TestClientCache(t *testing.T) {
	big := string(fakeBig(1 << 20))
	other := InCache("other")
	for _, ext := range []bool{false, true} {
		setAgainErr, unknownSetErr := ErrFailed, ErrFailed
		if ext {
			setAgainErr, unknownSetErr = ErrExists, ErrNotFound
		}
		ops := []clientOp{
			{name: "get missing", run: cacheGetOp("k"), wantErr: []error{ErrNotFound}},
			{name: "exists missing", run: cacheExistsOp("k"), want: "false"},
			{name: "del missing", run: cacheDelOp("k"), wantErr: []error{ErrNotFound}},
			{name: "set", run: cacheSetOp("k", "v1")},
			{name: "set again", run: cacheSetOp("k", "v2"), wantErr: []error{setAgainErr}},
			{name: "get", run: cacheGetOp("k"), want: "v1"},
			{name: "exists", run: cacheExistsOp("k"), want: "true"},
			{name: "update", run: cacheUpdateOp("k", "v2")},
			{name: "get updated", run: cacheGetOp("k"), want: "v2"},
			{name: "binary key", run: cacheUpdateOp("\x00k\xff", "\r\n\x00")},
			{name: "get binary", run: cacheGetOp("\x00k\xff"), want: "\r\n\x00"},
			{name: "update 1 MiB", run: cacheUpdateOp("big", big)},
			{name: "get 1 MiB", run: cacheGetOp("big"), want: big},
			{name: "set other cache", run: cacheSetOp("o", "ov", other)},
			{name: "get other from default", run: cacheGetOp("o"), wantErr: []error{ErrNotFound}},
			{name: "get other", run: cacheGetOp("o", other), want: "ov"},
			{name: "get named default", run: cacheGetOp("k", InCache("default")), want: "v2"},
			{name: "clear other", run: cacheClearOp(other)},
			{name: "get other cleared", run: cacheGetOp("o", other), wantErr: []error{ErrNotFound}},
			{name: "default kept", run: cacheGetOp("k"), want: "v2"},
			{name: "del", run: cacheDelOp("k")},
			{name: "get deleted", run: cacheGetOp("k"), wantErr: []error{ErrNotFound}},
			{name: "get unknown cache", run: cacheGetOp("k", InCache("nope")), wantErr: []error{ErrNotFound}},
			{name: "set unknown cache", run: cacheSetOp("k", "v", InCache("nope")), wantErr: []error{unknownSetErr}},
			{name: "exists unknown cache", run: cacheExistsOp("k", InCache("nope")), want: "false"},
			{name: "clear", run: cacheClearOp()},
			{name: "get cleared", run: cacheGetOp("big"), wantErr: []error{ErrNotFound}},
			{name: "empty key", run: cacheGetOp(""), wantErr: []error{ErrEmptyKey}},
		}
		t.Run("ext="+strconv.FormatBool(ext), func(t *testing.T) {
			s := newFakeServer(t, "tcp", ext, newFakeBackend().serve)
			runOps(t, newTestClient(t, s), ops)
		})
	}
}

func TestClientCacheExpires(t *testing.T) {
	for _, ext := range []bool{false, true} {
		t.Run("ext="+strconv.FormatBool(ext), func(t *testing.T) {
			s := newFakeServer(t, "tcp", ext, newFakeBackend().serve)
			c := newTestClient(t, s)
			ctx := testCtx(t)
			before := time.Now().Add(time.Hour).Truncate(time.Second)
			if err := c.CacheUpdate(ctx, "e", []byte("x"), Expires(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := c.CacheUpdate(ctx, "n", []byte("y")); err != nil {
				t.Fatal(err)
			}
			v, exp, err := c.CacheGetItem(ctx, "e")
			if err != nil || string(v) != "x" || exp.Before(before) {
				t.Errorf("CacheGetItem(e) = %q, %v, %v; want x, an expiry after %v", v, exp, err, before)
			}
			v, exp, err = c.CacheGetItem(ctx, "n")
			if err != nil || string(v) != "y" || !exp.IsZero() {
				t.Errorf("CacheGetItem(n) = %q, %v, %v; want y, no expiry", v, exp, err)
			}
		})
	}
}

func TestClientCacheMaxResult(t *testing.T) {
	s := newFakeServer(t, "tcp", true, newFakeBackend().serve)
	c := newTestClient(t, s)
	c.MaxResult = 4
	runOps(t, c, []clientOp{
		{name: "update at limit", run: cacheUpdateOp("a", "1234")},
		{name: "update over", run: cacheUpdateOp("b", "12345"), wantErr: []error{ErrTooLarge}},
		{name: "get at limit", run: cacheGetOp("a"), want: "1234"},
	})
	c.MaxResult = 3
	runOps(t, c, []clientOp{{name: "get over", run: cacheGetOp("a"), wantErr: []error{ErrTooLarge}}})
}

func TestExpiresOption(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {-time.Second, 0}, {time.Nanosecond, 1}, {time.Second, 1},
		{1500 * time.Millisecond, 2}, {time.Hour, 3600},
	}
	for _, tt := range tests {
		var o cacheOptions
		Expires(tt.d)(&o)
		if o.expires != tt.want {
			t.Errorf("Expires(%v) = %d s, want %d", tt.d, o.expires, tt.want)
		}
	}
}

// TestClientCacheStatus covers replies whose status is not "ok", which
// uWSGI documents but never sends.
func TestClientCacheStatus(t *testing.T) {
	reply := func(status string) []byte {
		block, _ := AppendVar(nil, "status", status)
		p, _ := AppendPacket(nil, ModCache, CacheMagic, block)
		return p
	}
	tests := []struct {
		status string
		want   error
	}{
		{"notfound", ErrNotFound},
		{"exists", ErrExists},
		{"error", ErrFailed},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			s := newFakeServer(t, "tcp", true, func(*fakeRequest) fakeReply { return fakeReply{Bytes: reply(tt.status)} })
			c := newTestClient(t, s)
			for range 2 {
				if _, err := c.CacheGet(testCtx(t), "k"); !errors.Is(err, tt.want) {
					t.Errorf("error %v, want %v", err, tt.want)
				}
			}
			if n := s.dials.Load(); n != 1 {
				t.Errorf("%d connections, want 1 (the reply was consumed whole)", n)
			}
		})
	}
}
