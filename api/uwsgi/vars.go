package uwsgi

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Var is one key/value pair of a vars block. Decoders return slices into
// the block they were given.
type Var struct {
	// Key is the var's name (never empty on the wire), Value its value
	// (may be empty).
	Key, Value []byte
}

// Vars is a decoded vars block, in wire order, duplicates kept.
type Vars []Var

// EachVar calls fn for every pair of a vars block, in order, without
// copying or allocating, until fn returns false. It fails on a zero-length
// key (ErrEmptyKey) and on a length that runs past the block (ErrTruncated),
// including a key with no room for its value length; pairs before the fault
// have been passed to fn. An empty value is fine, also as the last pair.
func EachVar(block []byte, fn func(key, value []byte) bool) error {
	pos := 0
	for pos < len(block) {
		if len(block)-pos < 2 {
			return formatErr("vars", pos, ErrTruncated)
		}
		klen := int(binary.LittleEndian.Uint16(block[pos:]))
		if klen == 0 {
			return formatErr("vars", pos, ErrEmptyKey)
		}
		kstart := pos + 2
		if len(block)-kstart < klen+2 {
			return formatErr("vars", pos, ErrTruncated)
		}
		vpos := kstart + klen
		vlen := int(binary.LittleEndian.Uint16(block[vpos:]))
		vstart := vpos + 2
		if len(block)-vstart < vlen {
			return formatErr("vars", vpos, ErrTruncated)
		}
		end := vstart + vlen
		if !fn(block[kstart:vpos:vpos], block[vstart:end:end]) {
			return nil
		}
		pos = end
	}
	return nil
}

// ParseVars appends the pairs of block to dst and returns it; with a dst of
// enough capacity it does not allocate. More than max pairs (max > 0) is
// ErrTooMany. On error dst is returned unchanged.
func ParseVars(dst Vars, block []byte, max int) (Vars, error) {
	start := len(dst)
	over := false
	err := EachVar(block, func(k, v []byte) bool {
		if max > 0 && len(dst)-start >= max {
			over = true
			return false
		}
		dst = append(dst, Var{Key: k, Value: v})
		return true
	})
	if err == nil && over {
		err = fmt.Errorf("uwsgi: vars block with more than %d pairs: %w", max, ErrTooMany)
	}
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// Lookup returns the value of key; with duplicates the last one wins, as in
// uWSGI's Lua and Python environments.
func (vs Vars) Lookup(key string) ([]byte, bool) {
	for i := len(vs) - 1; i >= 0; i-- {
		if string(vs[i].Key) == key {
			return vs[i].Value, true
		}
	}
	return nil, false
}

// Get returns the value of key as a string, "" when absent.
func (vs Vars) Get(key string) string {
	v, _ := vs.Lookup(key)
	return string(v)
}

// Map returns the vars as a map, the last duplicate winning.
func (vs Vars) Map() map[string]string {
	m := make(map[string]string, len(vs))
	for _, v := range vs {
		m[string(v.Key)] = string(v.Value)
	}
	return m
}

// Size returns the encoded size of the block.
func (vs Vars) Size() int {
	n := 0
	for _, v := range vs {
		n += 4 + len(v.Key) + len(v.Value)
	}
	return n
}

// Append appends the encoded block to dst. Keys must be 1..65535 bytes and
// values at most 65535 bytes; on error dst is returned unchanged.
func (vs Vars) Append(dst []byte) ([]byte, error) {
	start := len(dst)
	for _, v := range vs {
		var err error
		if dst, err = AppendVar(dst, v.Key, v.Value); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// Add appends a pair to the list (a convenience for building requests).
func (vs Vars) Add(key, value string) Vars {
	return append(vs, Var{Key: []byte(key), Value: []byte(value)})
}

// AppendVar appends one encoded pair to dst. The key must be 1..65535
// bytes and the value at most 65535.
func AppendVar[K, V ~string | ~[]byte](dst []byte, key K, value V) ([]byte, error) {
	if len(key) == 0 {
		return dst, ErrEmptyKey
	}
	if len(key) > MaxSize || len(value) > MaxSize {
		return dst, fmt.Errorf("uwsgi: var %.40q: %w", key, ErrTooLarge)
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...), nil
}

// ParseContentLength reads a CONTENT_LENGTH value the way uWSGI does: the
// longest prefix of ASCII digits ("7xyz" is 7; "", "abc" are 0). Values that
// overflow an int64 saturate at math.MaxInt64, which any limit rejects.
func ParseContentLength(v []byte) int64 {
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return math.MaxInt64
		}
		n = n*10 + d
	}
	return n
}
