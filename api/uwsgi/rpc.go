package uwsgi

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// largeKey is the one var of a large RPC response's header block.
const largeKey = "CONTENT_LENGTH"

// AppendRPCRequest appends an RPC request packet ([173, size, m2] + array of
// the function name and its arguments) to dst.
func AppendRPCRequest[T ~string | ~[]byte](dst []byte, m2 uint8, fn string, args ...T) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := AppendArray(dst, fn)
	if err != nil {
		return dst[:start], fmt.Errorf("uwsgi: function name: %w", err)
	}
	if dst, err = AppendArray(dst, args...); err != nil {
		return dst[:start], fmt.Errorf("uwsgi: argument: %w", err)
	}
	size := len(dst) - start - HeaderSize
	if size > MaxSize {
		return dst[:start], fmt.Errorf("uwsgi: RPC request of %d bytes: %w (max %d)", size, ErrTooLarge, MaxSize)
	}
	Header{Modifier1: ModRPC, Size: uint16(size), Modifier2: m2}.Append(dst[start:start])
	return dst, nil
}

// AppendRPCHeader appends the framing that precedes an n-byte RPC result
// (request modifier2 0): [173, n, 0] when n <= MaxSize, otherwise the
// "64-bit" form [173, D, 5] + a vars block holding CONTENT_LENGTH=n. The
// result bytes follow; they are not copied here so large results can be
// written straight from the caller's buffer.
func AppendRPCHeader(dst []byte, n int) []byte {
	if n <= MaxSize {
		return Header{Modifier1: ModRPC, Size: uint16(n), Modifier2: RPCFramed}.Append(dst)
	}
	var num [20]byte
	digits := strconv.AppendInt(num[:0], int64(n), 10)
	dsize := 2 + len(largeKey) + 2 + len(digits)
	dst = Header{Modifier1: ModRPC, Size: uint16(dsize), Modifier2: RPCLarge}.Append(dst)
	dst, _ = AppendVar(dst, largeKey, digits)
	return dst
}

// ReadRPCResult reads the result of a framed RPC response whose header h
// was already read from r: h.Size bytes, or for modifier2 5 the vars block
// and then CONTENT_LENGTH bytes. A result over max bytes is ErrTooLarge and
// is not read.
func ReadRPCResult(r io.Reader, h Header, max int64) ([]byte, error) {
	n := int64(h.Size)
	if h.Modifier2 == RPCLarge {
		block := make([]byte, h.Size)
		if _, err := io.ReadFull(r, block); err != nil {
			return nil, unexpected(err)
		}
		var ok bool
		if n, ok = LargeLength(block); !ok {
			return nil, formatErr("rpc response", HeaderSize, ErrMalformed)
		}
	}
	if n > max {
		return nil, fmt.Errorf("uwsgi: RPC result of %d bytes: %w (max %d)", n, ErrTooLarge, max)
	}
	return readN(r, n)
}

// readN reads exactly n bytes. Memory grows with the bytes that actually
// arrive, so a peer announcing a huge length and sending little cannot
// make the reader allocate it all up front.
func readN(r io.Reader, n int64) ([]byte, error) {
	const step = 1 << 20
	if n <= step {
		out := make([]byte, n)
		if _, err := io.ReadFull(r, out); err != nil {
			return nil, unexpected(err)
		}
		return out, nil
	}
	var buf bytes.Buffer
	buf.Grow(step)
	if got, err := io.CopyN(&buf, r, n); err != nil || got != n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// LargeLength returns the CONTENT_LENGTH of a large RPC response's vars
// block; it must be a plain decimal number.
func LargeLength(block []byte) (int64, bool) {
	var n int64 = -1
	err := EachVar(block, func(k, v []byte) bool {
		if string(k) == largeKey {
			n = -1
			if !isDecimal(v) {
				return false
			}
			x, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return false
			}
			n = x
		}
		return true
	})
	return n, err == nil && n >= 0
}

// isDecimal reports whether v is a plain decimal number: digits only, no
// sign, no leading zero (except "0" itself).
func isDecimal(v []byte) bool {
	if len(v) == 0 || len(v) > 1 && v[0] == '0' {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
