package uwsgi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// The commands of the cache magic interface (modifier1 111, modifier2 17).
const (
	CacheCmdGet    = "get"
	CacheCmdExists = "exists"
	CacheCmdSet    = "set"
	CacheCmdUpdate = "update"
	CacheCmdDel    = "del"
	CacheCmdClear  = "clear"
)

// CacheRequest is a cache magic request. On the wire it is a vars block
// (cmd, key, size, expires, cache) followed, for set and update, by the
// value's bytes.
type CacheRequest struct {
	Cmd     string // one of the CacheCmd commands
	Key     []byte // the item's key (clear takes none); ParseCacheRequest's aliases the block
	Cache   string // "" is the server's default cache
	Expires int64  // set/update: time to live in seconds, 0 = never
	Size    int    // set/update: length of the value that follows the packet
}

// AppendCacheRequest appends the packet of req to dst, and the value for
// set and update (whose length then sets Size).
func AppendCacheRequest(dst []byte, req CacheRequest, value []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	var err error
	add := func(k string, v []byte) {
		if err == nil {
			dst, err = AppendVar(dst, k, v)
		}
	}
	add("cmd", []byte(req.Cmd))
	if len(req.Key) > 0 || req.Cmd != CacheCmdClear {
		add("key", req.Key)
	}
	withValue := req.Cmd == CacheCmdSet || req.Cmd == CacheCmdUpdate
	if withValue {
		add("size", strconv.AppendInt(nil, int64(len(value)), 10))
		if req.Expires > 0 {
			add("expires", strconv.AppendInt(nil, req.Expires, 10))
		}
	}
	if req.Cache != "" {
		add("cache", []byte(req.Cache))
	}
	if err != nil {
		return dst[:start], err
	}
	size := len(dst) - start - HeaderSize
	if size > MaxSize {
		return dst[:start], fmt.Errorf("uwsgi: cache request of %d bytes: %w", size, ErrTooLarge)
	}
	Header{Modifier1: ModCache, Size: uint16(size), Modifier2: CacheMagic}.Append(dst[start:start])
	if withValue {
		dst = append(dst, value...)
	}
	return dst, nil
}

// ParseCacheRequest decodes the vars block of a cache magic request.
// Unknown keys are ignored and the last duplicate wins, as in uWSGI; a
// missing or unknown cmd, or a size/expires that is not a decimal number,
// is ErrMalformed. Key aliases block.
func ParseCacheRequest(block []byte) (CacheRequest, error) {
	var req CacheRequest
	var size, expires []byte
	var haveSize bool
	err := EachVar(block, func(k, v []byte) bool {
		switch string(k) {
		case "cmd":
			req.Cmd = string(v)
		case "key":
			req.Key = v
		case "size":
			size, haveSize = v, true
		case "expires":
			expires = v
		case "cache":
			req.Cache = string(v)
		}
		return true
	})
	if err != nil {
		return CacheRequest{}, err
	}
	switch req.Cmd {
	case CacheCmdGet, CacheCmdExists, CacheCmdDel, CacheCmdClear:
	case CacheCmdSet, CacheCmdUpdate:
		if !haveSize {
			return CacheRequest{}, fmt.Errorf("uwsgi: cache %s without size: %w", req.Cmd, ErrMalformed)
		}
		n, err := strconv.ParseUint(string(size), 10, 31)
		if err != nil {
			return CacheRequest{}, fmt.Errorf("uwsgi: cache size %q: %w", size, ErrMalformed)
		}
		req.Size = int(n)
		if len(expires) > 0 {
			e, err := strconv.ParseInt(string(expires), 10, 64)
			if err != nil || e < 0 {
				return CacheRequest{}, fmt.Errorf("uwsgi: cache expires %q: %w", expires, ErrMalformed)
			}
			req.Expires = e
		}
	default:
		return CacheRequest{}, fmt.Errorf("uwsgi: cache command %q: %w", req.Cmd, ErrMalformed)
	}
	return req, nil
}

// CacheReply is the status dictionary of a successful cache magic reply.
type CacheReply struct {
	Status  string // "ok"
	Size    int    // get: length of the value that follows
	Expires int64  // get: absolute Unix time of expiry, 0 = never
}

// AppendCacheReply appends a successful reply ([111, D, 17] + status dict)
// to dst; for get, pass the value, which is appended after the dict, and its
// absolute expiry (0 = none).
func AppendCacheReply(dst []byte, get bool, value []byte, expires int64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, _ = AppendVar(dst, "status", "ok")
	if get {
		dst, _ = AppendVar(dst, "size", strconv.AppendInt(nil, int64(len(value)), 10))
		if expires > 0 {
			dst, _ = AppendVar(dst, "expires", strconv.AppendInt(nil, expires, 10))
		}
	}
	size := len(dst) - start - HeaderSize
	Header{Modifier1: ModCache, Size: uint16(size), Modifier2: CacheMagic}.Append(dst[start:start])
	if get {
		dst = append(dst, value...)
	}
	return dst
}

// ParseCacheReply decodes the status dict of a cache magic reply. A status
// other than "ok" is returned as is for the caller to judge.
func ParseCacheReply(block []byte) (CacheReply, error) {
	var rep CacheReply
	var bad error
	err := EachVar(block, func(k, v []byte) bool {
		switch string(k) {
		case "status":
			rep.Status = string(v)
		case "size":
			n, err := strconv.ParseUint(string(v), 10, 31)
			if err != nil {
				bad = fmt.Errorf("uwsgi: cache reply size %q: %w", v, ErrMalformed)
				return false
			}
			rep.Size = int(n)
		case "expires":
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				bad = fmt.Errorf("uwsgi: cache reply expires %q: %w", v, ErrMalformed)
				return false
			}
			rep.Expires = n
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err == nil && rep.Status == "" {
		err = fmt.Errorf("uwsgi: cache reply without status: %w", ErrMalformed)
	}
	return rep, err
}

// Counters. uWSGI's cache_inc, cache_dec, cache_mul and cache_div keep a
// counter as the C int64 itself: 8 bytes in the machine's order, which is
// little-endian on every platform uWSGI is built for in practice (x86-64,
// arm64). scripthost stores its counters the same way, so that a uWSGI
// node and a scripthost node read each other's counters (uWSGI's
// cache_num; cache_get then returns the 8 raw bytes).

// CounterSize is the length of a counter value.
const CounterSize = 8

// Counter errors.
var (
	// ErrNotCounter: the item holds neither an 8-byte counter nor a
	// decimal integer.
	ErrNotCounter = errors.New("uwsgi: cache value is not a counter")
	// ErrCounterOverflow: the result does not fit in an int64 (uWSGI's C
	// arithmetic wraps around there, or traps on MinInt64 / -1; the
	// counter is left as it was instead).
	ErrCounterOverflow = errors.New("uwsgi: cache counter overflow")
)

// AppendCounter appends n as a counter value (8 bytes, little-endian).
func AppendCounter(dst []byte, n int64) []byte {
	return binary.LittleEndian.AppendUint64(dst, uint64(n))
}

// ParseCounter reads a counter value. Exactly 8 bytes are uWSGI's int64,
// whatever they hold. Any other value is read as an ASCII decimal int64
// (strconv.ParseInt's syntax: an optional sign and digits) when it is
// one: what earlier scripthost versions stored, and what
// cache_update(key, 10) stores; the next cache_inc rewrites it in the
// 8-byte form. Note that an 8-character decimal ("12345678") is 8 bytes,
// so it is read as uWSGI's binary form. ok is false for anything else.
func ParseCounter(v []byte) (n int64, ok bool) {
	if len(v) == CounterSize {
		return int64(binary.LittleEndian.Uint64(v)), true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// CounterOp is one of uWSGI's cache math operations.
type CounterOp uint8

// The counter operations, as uWSGI's UWSGI_CACHE_FLAG_INC, _DEC, _MUL and
// _DIV compute them.
const (
	CounterInc CounterOp = iota + 1 // n + operand
	CounterDec                      // n - operand
	CounterMul                      // n * operand
	CounterDiv                      // n / operand, truncated; 0 when operand is 0
)

var counterOpNames = [...]string{CounterInc: "inc", CounterDec: "dec", CounterMul: "mul", CounterDiv: "div"}

// String returns "inc", "dec", "mul" or "div".
func (op CounterOp) String() string {
	if op >= CounterInc && op <= CounterDiv {
		return counterOpNames[op]
	}
	return "CounterOp(" + strconv.Itoa(int(op)) + ")"
}

// DefaultOperand is the operand of uWSGI's bindings when none is given:
// 1 for inc and dec, 2 for mul and div.
func (op CounterOp) DefaultOperand() int64 {
	if op == CounterMul || op == CounterDiv {
		return 2
	}
	return 1
}

// Apply returns n op operand as uWSGI computes it, except that a result
// outside int64 gives ok false instead of wrapping around. Dividing by
// zero gives 0, as in uWSGI. A missing item counts as n = 0 (uWSGI's
// math_initial default), so mul and div of a missing key give 0.
func (op CounterOp) Apply(n, operand int64) (result int64, ok bool) {
	switch op {
	case CounterInc:
		r := n + operand
		return r, (r > n) == (operand > 0)
	case CounterDec:
		r := n - operand
		return r, (r < n) == (operand > 0)
	case CounterMul:
		if n == 0 || operand == 0 {
			return 0, true
		}
		if (n == -1 && operand == math.MinInt64) || (operand == -1 && n == math.MinInt64) {
			return 0, false
		}
		r := n * operand
		return r, r/operand == n
	case CounterDiv:
		if operand == 0 {
			return 0, true
		}
		if n == math.MinInt64 && operand == -1 {
			return 0, false
		}
		return n / operand, true
	}
	return 0, false
}
