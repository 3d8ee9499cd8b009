package uwsgi_test

// Fuzz targets for every decoder. Each is seeded with the captured vectors
// (whole files and their payloads) and a few handmade edge cases; the seed
// corpus runs in plain `go test`. The properties: no panic, errors are the
// documented sentinels, returned slices lie inside the input (capacity
// included, so an append cannot overwrite the caller's next bytes), and what
// decodes re-encodes to something that decodes the same.

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// fuzzMaxResult bounds ReadRPCResult (the 100000-byte vectors fit).
const fuzzMaxResult = 1 << 17

// fuzzVectorFiles returns the contents of every .bin vector.
func fuzzVectorFiles(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join(vecDir, "*.bin"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no vectors in %s: %v", vecDir, err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// fuzzPayloads returns the payload of every vector file that holds a whole
// packet, and the bytes that follow it (bodies, cache values).
func fuzzPayloads(f *testing.F) [][]byte {
	var out [][]byte
	for _, b := range fuzzVectorFiles(f) {
		p, n, _, err := uwsgi.Extract(b, uwsgi.MaxSize)
		if err != nil || n == 0 {
			continue
		}
		out = append(out, p.Payload)
		if n < len(b) && len(b)-n <= uwsgi.MaxSize {
			out = append(out, b[n:])
		}
	}
	return out
}

// within reports whether s, capacity included, lies inside in.
func within(in, s []byte) bool {
	if cap(s) == 0 {
		return true
	}
	if cap(in) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(in)))
	hi := lo + uintptr(len(in))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(cap(s)) <= hi
}

// fuzzIn copies data into a buffer with spare capacity, so a decoder that
// forgets to cut the capacity of what it returns is caught by within.
func fuzzIn(data []byte) []byte {
	buf := make([]byte, len(data), len(data)+16)
	copy(buf, data)
	return buf
}

func FuzzExtract(f *testing.F) {
	for _, b := range fuzzVectorFiles(f) {
		f.Add(b, uint16(4096))
		f.Add(b, uint16(uwsgi.MaxSize))
	}
	f.Add([]byte(twoPackets), uint16(0))
	f.Add([]byte("\xad\x07"), uint16(7))
	f.Add([]byte("\x00\x00\x00\x00"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		in := fuzzIn(data)
		p, n, need, err := uwsgi.Extract(in, int(max))
		if len(in) < uwsgi.HeaderSize {
			if n != 0 || need != uwsgi.HeaderSize-len(in) || err != nil {
				t.Fatalf("Extract(%x) = n %d, need %d, %v", in, n, need, err)
			}
			return
		}
		size := int(in[1]) | int(in[2])<<8
		total := uwsgi.HeaderSize + size
		switch {
		case size > int(max):
			if n != 0 || !errors.Is(err, uwsgi.ErrTooLarge) {
				t.Fatalf("Extract(size %d, max %d) = n %d, %v; want ErrTooLarge", size, max, n, err)
			}
		case len(in) < total:
			if n != 0 || need != total-len(in) || err != nil {
				t.Fatalf("Extract(%d of %d bytes) = n %d, need %d, %v", len(in), total, n, need, err)
			}
		default:
			if n != total || need != 0 || err != nil || !bytes.Equal(p.Payload, in[uwsgi.HeaderSize:total]) {
				t.Fatalf("Extract(%d bytes, size %d) = n %d, need %d, %v", len(in), size, n, need, err)
			}
			if !within(in[:total], p.Payload) {
				t.Fatalf("Extract payload (cap %d) reaches past the packet", cap(p.Payload))
			}
			if h, _ := uwsgi.ParseHeader(in); p.Header != h || !bytes.Equal(h.Append(nil), in[:uwsgi.HeaderSize]) {
				t.Fatalf("Extract header %v, ParseHeader %v, input %x", p.Header, h, in[:uwsgi.HeaderSize])
			}
		}
	})
}

func FuzzReadPacket(f *testing.F) {
	for _, b := range fuzzVectorFiles(f) {
		f.Add(b, uint16(4096))
	}
	f.Add([]byte(twoPackets), uint16(uwsgi.MaxSize))
	f.Add([]byte(""), uint16(0))
	f.Add([]byte("\x65\x03\x00\x00ab"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		r := bytes.NewReader(data)
		buf := make([]byte, 0, 16)
		p, err := uwsgi.ReadPacket(r, buf, int(max))
		switch {
		case len(data) == 0:
			if err != io.EOF {
				t.Fatalf("ReadPacket(empty) = %v, want io.EOF", err)
			}
			return
		case len(data) < uwsgi.HeaderSize:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("ReadPacket(%x) = %v, want io.ErrUnexpectedEOF", data, err)
			}
			return
		}
		size := int(data[1]) | int(data[2])<<8
		switch {
		case size > int(max):
			if !errors.Is(err, uwsgi.ErrTooLarge) || r.Len() != len(data)-uwsgi.HeaderSize {
				t.Fatalf("ReadPacket(size %d, max %d) = %v, %d bytes left; want ErrTooLarge before the payload", size, max, err, r.Len())
			}
		case len(data) < uwsgi.HeaderSize+size:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("ReadPacket(%d of %d bytes) = %v, want io.ErrUnexpectedEOF", len(data), uwsgi.HeaderSize+size, err)
			}
		default:
			if err != nil || !bytes.Equal(p.Payload, data[uwsgi.HeaderSize:uwsgi.HeaderSize+size]) {
				t.Fatalf("ReadPacket = %v, %d payload bytes; want %d", err, len(p.Payload), size)
			}
			if r.Len() != len(data)-uwsgi.HeaderSize-size {
				t.Fatalf("ReadPacket left %d bytes, want %d", r.Len(), len(data)-uwsgi.HeaderSize-size)
			}
			if size > 0 && size <= cap(buf) && &p.Payload[0] != &buf[:1][0] {
				t.Fatalf("ReadPacket did not reuse a buffer of capacity %d for %d bytes", cap(buf), size)
			}
		}
	})
}

func FuzzEachVar(f *testing.F) {
	for _, p := range fuzzPayloads(f) {
		f.Add(p)
	}
	f.Add([]byte(""))
	f.Add([]byte("\x01\x00a\x00\x00"))
	f.Add([]byte("\x01\x00a"))
	f.Add([]byte("\x00\x00\x00\x00"))
	f.Add([]byte("\x01\x00a\x01\x00b\x05"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzIn(data)
		var seen uwsgi.Vars
		err := uwsgi.EachVar(in, func(k, v []byte) bool {
			if len(k) == 0 || !within(in, k) || !within(in, v) {
				t.Fatalf("EachVar pair %q=%q: empty key or outside the input", k, v)
			}
			seen = append(seen, uwsgi.Var{Key: k, Value: v})
			return true
		})
		// The pairs delivered re-encode to a prefix of the block: all of it
		// without an error, what comes before the fault with one.
		enc, aerr := seen.Append(nil)
		if aerr != nil || !bytes.HasPrefix(in, enc) {
			t.Fatalf("re-encoded pairs %x (%v) are not a prefix of %x", enc, aerr, in)
		}
		if seen.Size() != len(enc) {
			t.Fatalf("Size() = %d, encoded %d bytes", seen.Size(), len(enc))
		}
		vs, perr := uwsgi.ParseVars(nil, in, 0)
		if (err == nil) != (perr == nil) || (err != nil && !errors.Is(perr, errors.Unwrap(err))) {
			t.Fatalf("EachVar = %v, ParseVars = %v", err, perr)
		}
		if err != nil {
			var fe *uwsgi.FormatError
			if !errors.As(err, &fe) || fe.What != "vars" || fe.Offset < len(enc) || fe.Offset >= len(in) ||
				!(errors.Is(err, uwsgi.ErrTruncated) || errors.Is(err, uwsgi.ErrEmptyKey)) {
				t.Fatalf("EachVar error %#v, want a vars *FormatError (ErrTruncated or ErrEmptyKey) in [%d, %d)", err, len(enc), len(in))
			}
			if len(vs) != 0 {
				t.Fatalf("ParseVars returned %d pairs with an error", len(vs))
			}
			return
		}
		// Round trip: the parsed vars re-encode to the same bytes.
		if !bytes.Equal(enc, in) || len(vs) != len(seen) {
			t.Fatalf("re-encoded %x, want %x", enc, in)
		}
		if got, err := vs.Append(nil); err != nil || !bytes.Equal(got, in) {
			t.Fatalf("ParseVars(%x).Append = %x, %v", in, got, err)
		}
		if len(vs) > 1 { // max 0 is no limit
			if _, err := uwsgi.ParseVars(nil, in, len(vs)-1); !errors.Is(err, uwsgi.ErrTooMany) {
				t.Fatalf("ParseVars(%d pairs, max %d) = %v, want ErrTooMany", len(vs), len(vs)-1, err)
			}
		}
		// Lookup agrees with Map: the last duplicate wins in both.
		m := vs.Map()
		for k, v := range m {
			if got, ok := vs.Lookup(k); !ok || string(got) != v {
				t.Fatalf("Lookup(%q) = %q, %v; Map says %q", k, got, ok, v)
			}
		}
	})
}

func FuzzParseArray(f *testing.F) {
	for _, p := range fuzzPayloads(f) {
		f.Add(p, uint8(255))
	}
	f.Add([]byte("\x05\x00hello\x00\x00"), uint8(0))
	f.Add([]byte("\x05\x00hello\x03"), uint8(1))
	f.Add([]byte("\x00\x00\x00\x00\x01\x00a"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		in := fuzzIn(data)
		items, err := uwsgi.ParseArray(nil, in, int(max))
		if err != nil {
			var fe *uwsgi.FormatError
			if !errors.Is(err, uwsgi.ErrTruncated) || !errors.As(err, &fe) || fe.What != "array" || fe.Offset >= len(in) {
				t.Fatalf("ParseArray error %#v, want an array *FormatError wrapping ErrTruncated", err)
			}
			if len(items) != 0 {
				t.Fatalf("ParseArray returned %d items with an error", len(items))
			}
			return
		}
		if max > 0 && len(items) > int(max) {
			t.Fatalf("ParseArray(max %d) = %d items", max, len(items))
		}
		for i, it := range items {
			if len(it) == 0 || !within(in, it) {
				t.Fatalf("item %d (%d bytes, cap %d) is empty or outside the input", i, len(it), cap(it))
			}
		}
		enc, err := uwsgi.AppendArray(nil, items...)
		if err != nil {
			t.Fatalf("AppendArray(parsed items) = %v", err)
		}
		again, err := uwsgi.ParseArray(nil, enc, 0)
		if err != nil || !slices.EqualFunc(again, items, bytes.Equal) {
			t.Fatalf("ParseArray(AppendArray(items)) = %d items, %v; want %d", len(again), err, len(items))
		}
		if max == 0 && len(enc) > len(in) {
			t.Fatalf("re-encoding grew the array from %d to %d bytes", len(in), len(enc))
		}
		// EachItem sees the same items when not cut short by max.
		if max == 0 {
			var each [][]byte
			if err := uwsgi.EachItem(in, func(it []byte) bool { each = append(each, it); return true }); err != nil ||
				!slices.EqualFunc(each, items, bytes.Equal) {
				t.Fatalf("EachItem = %d items, %v; ParseArray %d", len(each), err, len(items))
			}
		}
	})
}

func FuzzParseCacheRequest(f *testing.F) {
	for _, p := range fuzzPayloads(f) {
		f.Add(p)
	}
	for _, kv := range [][]string{
		{"cmd", "set", "key", "k", "size", "1", "size", "2", "expires", ""},
		{"cmd", "clear", "key", ""},
		{"cmd", "update", "key", "k", "size", "2147483647", "expires", "9223372036854775807"},
	} {
		var vs uwsgi.Vars
		for i := 0; i < len(kv); i += 2 {
			vs = vs.Add(kv[i], kv[i+1])
		}
		b, _ := vs.Append(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzIn(data)
		req, err := uwsgi.ParseCacheRequest(in)
		if err != nil {
			if !errors.Is(err, uwsgi.ErrMalformed) && !errors.Is(err, uwsgi.ErrTruncated) && !errors.Is(err, uwsgi.ErrEmptyKey) {
				t.Fatalf("ParseCacheRequest error %v is none of ErrMalformed, ErrTruncated, ErrEmptyKey", err)
			}
			return
		}
		switch req.Cmd {
		case "get", "exists", "del", "clear":
			if req.Size != 0 || req.Expires != 0 {
				t.Fatalf("ParseCacheRequest(%s) = size %d, expires %d; want 0, 0", req.Cmd, req.Size, req.Expires)
			}
		case "set", "update":
			if req.Size < 0 || req.Size > math.MaxInt32 || req.Expires < 0 {
				t.Fatalf("ParseCacheRequest = size %d, expires %d", req.Size, req.Expires)
			}
		default:
			t.Fatalf("ParseCacheRequest accepted cmd %q", req.Cmd)
		}
		if !within(in, req.Key) {
			t.Fatalf("Key (cap %d) is outside the input", cap(req.Key))
		}
		if req.Size > 1<<16 {
			return
		}
		value := bytes.Repeat([]byte{'v'}, req.Size)
		enc, err := uwsgi.AppendCacheRequest(nil, req, value)
		if err != nil {
			if !errors.Is(err, uwsgi.ErrTooLarge) {
				t.Fatalf("AppendCacheRequest(%+v) = %v", req, err)
			}
			return
		}
		p, n, _, err := uwsgi.Extract(enc, uwsgi.MaxSize)
		if err != nil || n == 0 || !bytes.Equal(enc[n:], value) {
			t.Fatalf("Extract(AppendCacheRequest) = n %d, %v", n, err)
		}
		again, err := uwsgi.ParseCacheRequest(p.Payload)
		if err != nil || !cacheReqEqual(again, req) {
			t.Fatalf("ParseCacheRequest(AppendCacheRequest(%+v)) = %+v, %v", req, again, err)
		}
	})
}

func FuzzParseCacheReply(f *testing.F) {
	for _, p := range fuzzPayloads(f) {
		f.Add(p)
	}
	f.Add([]byte("\x06\x00status\x02\x00ok\x04\x00size\x01\x005"))
	f.Add([]byte("\x06\x00status\x08\x00notfound"))
	f.Add([]byte("\x06\x00status\x02\x00ok\x07\x00expires\x02\x00-1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := uwsgi.ParseCacheReply(data)
		if err != nil {
			if !errors.Is(err, uwsgi.ErrMalformed) && !errors.Is(err, uwsgi.ErrTruncated) && !errors.Is(err, uwsgi.ErrEmptyKey) {
				t.Fatalf("ParseCacheReply error %v is none of ErrMalformed, ErrTruncated, ErrEmptyKey", err)
			}
			return
		}
		if rep.Status == "" || rep.Size < 0 || rep.Size > math.MaxInt32 {
			t.Fatalf("ParseCacheReply = %+v", rep)
		}
		if rep.Status != "ok" || rep.Expires < 0 || rep.Size > 1<<16 {
			return
		}
		value := bytes.Repeat([]byte{'v'}, rep.Size)
		enc := uwsgi.AppendCacheReply(nil, true, value, rep.Expires)
		p, n, _, err := uwsgi.Extract(enc, uwsgi.MaxSize)
		if err != nil || n == 0 || !bytes.Equal(enc[n:], value) {
			t.Fatalf("Extract(AppendCacheReply) = n %d, %v", n, err)
		}
		again, err := uwsgi.ParseCacheReply(p.Payload)
		if err != nil || again != rep {
			t.Fatalf("ParseCacheReply(AppendCacheReply(%+v)) = %+v, %v", rep, again, err)
		}
	})
}

func FuzzReadRPCResult(f *testing.F) {
	for _, b := range fuzzVectorFiles(f) {
		f.Add(b)
	}
	f.Add([]byte("\xad\x17\x00\x05\x0e\x00CONTENT_LENGTH\x05\x00655"))
	f.Add([]byte("\xad\x06\x00\x05\x01\x00X\x01\x005"))
	f.Add([]byte("\xad\x00\x00\x05"))
	f.Add([]byte("\xad\x05\x00\x00Hel"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := uwsgi.ParseHeader(data)
		if err != nil {
			return
		}
		rest := data[uwsgi.HeaderSize:]
		r := bytes.NewReader(rest)
		got, err := uwsgi.ReadRPCResult(r, h, fuzzMaxResult)

		// What the result must be, computed from the bytes.
		start, n := 0, int64(h.Size)
		var wantErr error
		if h.Modifier2 == uwsgi.RPCLarge {
			start = int(h.Size)
			switch l, ok := uwsgi.LargeLength(rest[:min(len(rest), start)]); {
			case len(rest) < start:
				wantErr = io.ErrUnexpectedEOF
			case !ok:
				wantErr = uwsgi.ErrMalformed
			default:
				n = l
			}
		}
		if wantErr == nil {
			switch {
			case n > fuzzMaxResult:
				wantErr = uwsgi.ErrTooLarge
			case int64(len(rest)-start) < n:
				wantErr = io.ErrUnexpectedEOF
			}
		}
		if !errorIs(err, wantErr) {
			t.Fatalf("ReadRPCResult(%v, %d bytes) = %v, want %v", h, len(rest), err, wantErr)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("ReadRPCResult returned %d bytes with an error", len(got))
			}
			return
		}
		if !bytes.Equal(got, rest[start:start+int(n)]) || r.Len() != len(rest)-start-int(n) {
			t.Fatalf("ReadRPCResult = %d bytes, %d left; want %d, %d", len(got), r.Len(), n, len(rest)-start-int(n))
		}
		// The result re-encodes to a response that reads back the same.
		enc := append(uwsgi.AppendRPCHeader(nil, len(got)), got...)
		r2 := bytes.NewReader(enc)
		h2, err := uwsgi.ReadHeader(r2)
		if err != nil {
			t.Fatal(err)
		}
		again, err := uwsgi.ReadRPCResult(r2, h2, fuzzMaxResult)
		if err != nil || !bytes.Equal(again, got) || r2.Len() != 0 {
			t.Fatalf("ReadRPCResult(AppendRPCHeader(%d) + result) = %d bytes, %v", len(got), len(again), err)
		}
	})
}

func FuzzLargeLength(f *testing.F) {
	for _, p := range fuzzPayloads(f) {
		f.Add(p)
	}
	f.Add([]byte("\x0e\x00CONTENT_LENGTH\x05\x0065536"))
	f.Add([]byte("\x0e\x00CONTENT_LENGTH\x13\x009223372036854775807"))
	f.Add([]byte("\x0e\x00CONTENT_LENGTH\x02\x00-1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, ok := uwsgi.LargeLength(data)
		if !ok {
			return
		}
		if n < 0 {
			t.Fatalf("LargeLength = %d, true", n)
		}
		// The block is well formed and its last CONTENT_LENGTH says n.
		var last []byte
		found := false
		if err := uwsgi.EachVar(data, func(k, v []byte) bool {
			if string(k) == "CONTENT_LENGTH" {
				last, found = v, true
			}
			return true
		}); err != nil || !found {
			t.Fatalf("LargeLength accepted a block with EachVar error %v, CONTENT_LENGTH found %v", err, found)
		}
		if v, err := strconv.ParseInt(string(last), 10, 64); err != nil || v != n {
			t.Fatalf("LargeLength = %d, CONTENT_LENGTH is %q", n, last)
		}
		// AppendRPCHeader writes n back in the form LargeLength reads.
		if n > uwsgi.MaxSize {
			p, _, _, err := uwsgi.Extract(uwsgi.AppendRPCHeader(nil, int(n)), uwsgi.MaxSize)
			if got, ok := uwsgi.LargeLength(p.Payload); err != nil || !ok || got != n {
				t.Fatalf("LargeLength(AppendRPCHeader(%d)) = %d, %v, %v", n, got, ok, err)
			}
		}
	})
}

func FuzzParseContentLength(f *testing.F) {
	for _, p := range fuzzPayloads(f) {
		_ = uwsgi.EachVar(p, func(k, v []byte) bool {
			if string(k) == "CONTENT_LENGTH" {
				f.Add(string(v))
			}
			return true
		})
	}
	for _, s := range []string{"", "7xyz", "abc", "9223372036854775807", "9223372036854775808", "00000000000000000000001", "-1", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := uwsgi.ParseContentLength([]byte(s))
		digits := s[:len(s)-len(strings.TrimLeft(s, "0123456789"))]
		want := int64(0)
		if digits != "" {
			v, err := strconv.ParseInt(digits, 10, 64)
			switch {
			case err == nil:
				want = v
			case errors.Is(err, strconv.ErrRange):
				want = math.MaxInt64
			default:
				t.Fatalf("ParseInt(%q) = %v", digits, err)
			}
		}
		if got != want {
			t.Fatalf("ParseContentLength(%q) = %d, want %d", s, got, want)
		}
	})
}
