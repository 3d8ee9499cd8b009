package uwsgi

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func TestCounterCodec(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 24, math.MaxInt64, math.MinInt64} {
		b := AppendCounter([]byte("x"), n)
		if len(b) != 1+CounterSize {
			t.Fatalf("AppendCounter(%d) appended %d bytes", n, len(b)-1)
		}
		if got, ok := ParseCounter(b[1:]); !ok || got != n {
			t.Errorf("ParseCounter(AppendCounter(%d)) = %d, %v", n, got, ok)
		}
	}
	// What uWSGI's cache_inc(key, 24) leaves: the int64 in little-endian.
	if got := string(AppendCounter(nil, 24)); got != "\x18\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("AppendCounter(24) = %q", got)
	}
	tests := []struct {
		v    string
		want int64
		ok   bool
	}{
		{"24", 24, true}, {"-7", -7, true}, {"+5", 5, true}, {"0", 0, true},
		{"9223372036854775807", math.MaxInt64, true}, {"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"", 0, false}, {"abc", 0, false}, {" 1", 0, false}, {"1.5", 0, false},
		{"12345678", 0x3837363534333231, true}, // 8 bytes: always uWSGI's binary form
		{"\xff\xff\xff\xff\xff\xff\xff\xff", -1, true},
	}
	for _, tt := range tests {
		if got, ok := ParseCounter([]byte(tt.v)); ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("ParseCounter(%q) = %d, %v, want %d, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

// TestCounterApply compares every operation with exact arithmetic.
func TestCounterApply(t *testing.T) {
	edges := []int64{0, 1, -1, 2, -2, 3, -3, 1 << 31, 3037000499, 3037000500, -3037000500, 1 << 62,
		math.MaxInt64, math.MaxInt64 - 1, math.MinInt64, math.MinInt64 + 1}
	rng := rand.New(rand.NewPCG(3, 4))
	values := append([]int64(nil), edges...)
	for range 200 {
		values = append(values, int64(rng.Uint64()>>uint(rng.IntN(64))), -int64(rng.Uint64()>>uint(1+rng.IntN(63))))
	}
	minI, maxI := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	for _, n := range values {
		for _, d := range edges {
			for _, op := range []CounterOp{CounterInc, CounterDec, CounterMul, CounterDiv} {
				x, y, want := big.NewInt(n), big.NewInt(d), new(big.Int)
				switch op {
				case CounterInc:
					want.Add(x, y)
				case CounterDec:
					want.Sub(x, y)
				case CounterMul:
					want.Mul(x, y)
				case CounterDiv:
					if d != 0 {
						want.Quo(x, y) // truncated, as C and Go divide
					}
				}
				fits := want.Cmp(minI) >= 0 && want.Cmp(maxI) <= 0
				got, ok := op.Apply(n, d)
				if ok != fits || (ok && got != want.Int64()) {
					t.Fatalf("%d %v %d = %d, %v; want %v (fits %v)", n, op, d, got, ok, want, fits)
				}
			}
		}
	}
	if _, ok := CounterOp(0).Apply(1, 1); ok {
		t.Error("operation 0 applied")
	}
	for op, want := range map[CounterOp]int64{CounterInc: 1, CounterDec: 1, CounterMul: 2, CounterDiv: 2} {
		if got := op.DefaultOperand(); got != want {
			t.Errorf("%v.DefaultOperand() = %d, want %d", op, got, want)
		}
	}
	if got := CounterOp(9).String(); got != "CounterOp(9)" {
		t.Errorf("CounterOp(9).String() = %q", got)
	}
}

func cacheNumOp(key string, opts ...CacheOption) func(ctx context.Context, c *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		n, err := c.CacheNum(ctx, key, opts...)
		return strconv.FormatInt(n, 10), err
	}
}

func cacheCounterOp(op CounterOp, key string, operand int64, opts ...CacheOption) func(ctx context.Context, c *Client) (string, error) {
	return func(ctx context.Context, c *Client) (string, error) {
		n, err := c.CacheCounter(ctx, op, key, operand, opts...)
		return strconv.FormatInt(n, 10), err
	}
}

// TestClientCacheCounters: the client's counters read and write uWSGI's
// 8-byte form through get and update, against both kinds of server.
func TestClientCacheCounters(t *testing.T) {
	other := InCache("other")
	for _, ext := range []bool{false, true} {
		ops := []clientOp{
			{name: "num missing", run: cacheNumOp("n"), wantErr: []error{ErrNotFound}},
			{name: "inc missing", run: cacheCounterOp(CounterInc, "n", 5), want: "5"},
			{name: "stored as uWSGI's int64", run: cacheGetOp("n"), want: "\x05\x00\x00\x00\x00\x00\x00\x00"},
			{name: "dec", run: cacheCounterOp(CounterDec, "n", 8), want: "-3"},
			{name: "mul", run: cacheCounterOp(CounterMul, "n", -4), want: "12"},
			{name: "div", run: cacheCounterOp(CounterDiv, "n", 5), want: "2"},
			{name: "div by zero", run: cacheCounterOp(CounterDiv, "n", 0), want: "0"},
			{name: "num", run: cacheNumOp("n"), want: "0"},
			{name: "decimal", run: cacheUpdateOp("d", "41")},
			{name: "inc decimal", run: cacheCounterOp(CounterInc, "d", 1), want: "42"},
			{name: "decimal rewritten", run: cacheGetOp("d"), want: "*\x00\x00\x00\x00\x00\x00\x00"},
			{name: "text", run: cacheUpdateOp("t", "abc")},
			{name: "inc text", run: cacheCounterOp(CounterInc, "t", 1), wantErr: []error{ErrNotCounter}},
			{name: "num text", run: cacheNumOp("t"), wantErr: []error{ErrNotCounter}},
			{name: "text kept", run: cacheGetOp("t"), want: "abc"},
			{name: "max", run: cacheUpdateOp("m", string(AppendCounter(nil, math.MaxInt64)))},
			{name: "overflow", run: cacheCounterOp(CounterInc, "m", 1), wantErr: []error{ErrCounterOverflow}},
			{name: "max kept", run: cacheNumOp("m"), want: strconv.FormatInt(math.MaxInt64, 10)},
			{name: "other cache", run: cacheCounterOp(CounterInc, "n", 7, other), want: "7"},
			{name: "default untouched", run: cacheNumOp("n"), want: "0"},
			{name: "bad operation", run: cacheCounterOp(0, "n", 1), wantErr: []error{}},
			{name: "empty key", run: cacheCounterOp(CounterInc, "", 1), wantErr: []error{ErrEmptyKey}},
		}
		t.Run("ext="+strconv.FormatBool(ext), func(t *testing.T) {
			s := newFakeServer(t, "tcp", ext, newFakeBackend().serve)
			c := newTestClient(t, s)
			runOps(t, c, ops)
			ctx := testCtx(t)
			for _, call := range []struct {
				f    func(context.Context, string, int64, ...CacheOption) (int64, error)
				arg  int64
				want int64
			}{{c.CacheInc, 10, 10}, {c.CacheMul, 3, 30}, {c.CacheDec, 3, 27}, {c.CacheDiv, 2, 13}} {
				if got, err := call.f(ctx, "named", call.arg); got != call.want || err != nil {
					t.Errorf("named method with %d: %d, %v, want %d", call.arg, got, err, call.want)
				}
			}
		})
	}
}

// TestClientCacheCounterExpiry: a new counter gets the Expires option, an
// existing one keeps its own expiry (uWSGI's FIXEXPIRE), to the second.
func TestClientCacheCounterExpiry(t *testing.T) {
	s := newFakeServer(t, "tcp", false, newFakeBackend().serve)
	c := newTestClient(t, s)
	ctx := testCtx(t)
	if _, err := c.CacheInc(ctx, "e", 1, Expires(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, first, err := c.CacheGetItem(ctx, "e")
	if err != nil || first.IsZero() {
		t.Fatalf("CacheGetItem(e) = %v, %v; want an expiry", first, err)
	}
	if _, err := c.CacheInc(ctx, "e", 1, Expires(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, exp, err := c.CacheGetItem(ctx, "e"); err != nil || exp.Sub(first).Abs() > time.Second {
		t.Errorf("after a second inc: expiry %v, %v; want %v kept", exp, err, first)
	}
	c.CacheInc(ctx, "forever", 1)
	if _, err := c.CacheInc(ctx, "forever", 1, Expires(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, exp, err := c.CacheGetItem(ctx, "forever"); err != nil || !exp.IsZero() || string(v) != string(AppendCounter(nil, 2)) {
		t.Errorf("forever = %q, %v, %v; want 2 without expiry", v, exp, err)
	}
	if _, err := c.CacheCounter(ctx, CounterInc, "x", 1, InCache("nope")); err == nil || errors.Is(err, ErrNotCounter) {
		t.Errorf("a counter in an unknown cache: %v, want the server's refusal", err)
	}
}
