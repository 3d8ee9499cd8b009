package uwsgi

import (
	"encoding/binary"
	"fmt"
)

// EachItem calls fn for every non-empty item of a uwsgi array, in order,
// without copying, until fn returns false. Empty items are skipped anywhere,
// also as the last item: uWSGI 2.0.21 rejects a trailing empty item, but
// skipping it makes the RPC documentation's nginx example work and no valid
// client sends one. A length that runs past the end (including one or two
// stray bytes) is ErrTruncated.
func EachItem(b []byte, fn func(item []byte) bool) error {
	pos := 0
	for pos < len(b) {
		if len(b)-pos < 2 {
			return formatErr("array", pos, ErrTruncated)
		}
		n := int(binary.LittleEndian.Uint16(b[pos:]))
		start := pos + 2
		if len(b)-start < n {
			return formatErr("array", pos, ErrTruncated)
		}
		end := start + n
		if n > 0 && !fn(b[start:end:end]) {
			return nil
		}
		pos = end
	}
	return nil
}

// ParseArray appends the non-empty items of b to dst, at most max of them
// (max > 0); like uWSGI, items past max are ignored (not validated). The
// items alias b. On error dst is returned unchanged.
func ParseArray(dst [][]byte, b []byte, max int) ([][]byte, error) {
	start := len(dst)
	err := EachItem(b, func(item []byte) bool {
		dst = append(dst, item)
		return max <= 0 || len(dst)-start < max
	})
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// AppendArray appends the encoded array of items to dst. Every item must be
// 1..65535 bytes: an empty item would be dropped by a scripthost server and
// make uWSGI reject the request, so it is ErrEmptyItem.
// On error dst is returned unchanged.
func AppendArray[T ~string | ~[]byte](dst []byte, items ...T) ([]byte, error) {
	start := len(dst)
	for i, it := range items {
		if len(it) == 0 {
			return dst[:start], fmt.Errorf("uwsgi: item %d: %w", i, ErrEmptyItem)
		}
		if len(it) > MaxSize {
			return dst[:start], fmt.Errorf("uwsgi: item %d of %d bytes: %w (max %d)", i, len(it), ErrTooLarge, MaxSize)
		}
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(it)))
		dst = append(dst, it...)
	}
	return dst, nil
}
