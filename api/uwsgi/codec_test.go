package uwsgi_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// errorIs reports whether err matches want, where a nil want means no error.
func errorIs(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

// formatOffset returns the offset of the *FormatError in err's chain, or -1.
func formatOffset(err error) int {
	var fe *uwsgi.FormatError
	if errors.As(err, &fe) {
		return fe.Offset
	}
	return -1
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in      string
		want    uwsgi.Header
		wantErr error
	}{
		{"", uwsgi.Header{}, uwsgi.ErrTruncated},
		{"\xad", uwsgi.Header{}, uwsgi.ErrTruncated},
		{"\xad\x07\x00", uwsgi.Header{}, uwsgi.ErrTruncated},
		{"\x00\x49\x01\x00", uwsgi.Header{Modifier1: uwsgi.ModWSGI, Size: 329}, nil},
		{"\xad\x07\x00\x00\x05\x00hello", uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}, nil},
		{"\xad\xff\xff\x05", uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 65535, Modifier2: 5}, nil},
		{"\x6e\x00\x00\x11", uwsgi.Header{Modifier1: uwsgi.ModSignal, Modifier2: 17}, nil},
		{"\x00\x01\x10\x00", uwsgi.Header{Size: 4097}, nil},
		{"HTTP", uwsgi.Header{Modifier1: uwsgi.ModHTTPResponse, Size: 21588, Modifier2: 'P'}, nil},
		{"\xff\xff\xff\xff", uwsgi.Header{Modifier1: 255, Size: 65535, Modifier2: 255}, nil},
	}
	for _, tt := range tests {
		got, err := uwsgi.ParseHeader([]byte(tt.in))
		if got != tt.want || !errorIs(err, tt.wantErr) {
			t.Errorf("ParseHeader(%x) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if tt.wantErr != nil {
			var fe *uwsgi.FormatError
			if !errors.As(err, &fe) || fe.What != "header" || fe.Offset != len(tt.in) {
				t.Errorf("ParseHeader(%x) error = %#v, want a header *FormatError at %d", tt.in, err, len(tt.in))
			}
			continue
		}
		enc := tt.want.Bytes()
		if !bytes.Equal(enc[:], []byte(tt.in[:uwsgi.HeaderSize])) {
			t.Errorf("%v.Bytes() = %x, want %x", tt.want, enc, tt.in[:uwsgi.HeaderSize])
		}
		if got := tt.want.Append([]byte("pre")); string(got) != "pre"+tt.in[:uwsgi.HeaderSize] {
			t.Errorf("%v.Append(pre) = %x, want %x", tt.want, got, "pre"+tt.in[:uwsgi.HeaderSize])
		}
	}
}

func TestHeaderString(t *testing.T) {
	tests := []struct {
		h    uwsgi.Header
		want string
	}{
		{uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}, "[rpc(173), 7, 0]"},
		{uwsgi.Header{Modifier1: uwsgi.ModWSGI, Size: 329}, "[wsgi(0), 329, 0]"},
		{uwsgi.Header{Modifier1: uwsgi.ModResponse, Modifier2: 1}, "[response(255), 0, 1]"},
		{uwsgi.Header{Modifier1: 1, Size: 65535, Modifier2: 255}, "[1, 65535, 255]"},
	}
	for _, tt := range tests {
		if got := tt.h.String(); got != tt.want {
			t.Errorf("Header%+v.String() = %q, want %q", tt.h, got, tt.want)
		}
	}
}

func TestAppendPacket(t *testing.T) {
	tests := []struct {
		m1      uwsgi.Modifier
		m2      uint8
		payload []byte
		want    []byte // nil: compare only the header and the length
		wantErr error
	}{
		{uwsgi.ModPing, 0, nil, []byte("\x64\x00\x00\x00"), nil},
		{uwsgi.ModEcho, 0, []byte("abc"), []byte("\x65\x03\x00\x00abc"), nil},
		{uwsgi.ModRPC, 1, []byte("\x05\x00hello"), []byte("\xad\x07\x00\x01\x05\x00hello"), nil},
		{uwsgi.ModCache, 17, bytes.Repeat([]byte("v"), 256), nil, nil},
		{uwsgi.ModEcho, 0, bytes.Repeat([]byte("v"), uwsgi.MaxSize), nil, nil},
		{uwsgi.ModEcho, 0, bytes.Repeat([]byte("v"), uwsgi.MaxSize+1), nil, uwsgi.ErrTooLarge},
	}
	for _, tt := range tests {
		dst := []byte("pre")
		got, err := uwsgi.AppendPacket(dst, tt.m1, tt.m2, tt.payload)
		if !errorIs(err, tt.wantErr) {
			t.Errorf("AppendPacket(%v, %d, %d bytes) error = %v, want %v", tt.m1, tt.m2, len(tt.payload), err, tt.wantErr)
			continue
		}
		if err != nil {
			if string(got) != "pre" {
				t.Errorf("AppendPacket(%d bytes) on error = %q, want dst unchanged", len(tt.payload), got)
			}
			continue
		}
		if !bytes.HasPrefix(got, []byte("pre")) {
			t.Fatalf("AppendPacket dropped dst: %.16x", got)
		}
		got = got[3:]
		if tt.want != nil && !bytes.Equal(got, tt.want) {
			t.Errorf("AppendPacket(%v, %d, %q) = %x, want %x", tt.m1, tt.m2, tt.payload, got, tt.want)
		}
		h, _ := uwsgi.ParseHeader(got)
		wantH := uwsgi.Header{Modifier1: tt.m1, Size: uint16(len(tt.payload)), Modifier2: tt.m2}
		if h != wantH || len(got) != uwsgi.HeaderSize+len(tt.payload) || !bytes.Equal(got[uwsgi.HeaderSize:], tt.payload) {
			t.Errorf("AppendPacket(%d bytes) = header %v, %d bytes; want %v, %d", len(tt.payload), h, len(got), wantH, uwsgi.HeaderSize+len(tt.payload))
		}
	}
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		in      string
		want    uwsgi.Header
		wantErr error
	}{
		{"", uwsgi.Header{}, io.EOF},
		{"\x64", uwsgi.Header{}, io.ErrUnexpectedEOF},
		{"\x64\x00\x00", uwsgi.Header{}, io.ErrUnexpectedEOF},
		{"\x64\x00\x00\x01", uwsgi.Header{Modifier1: uwsgi.ModPing, Modifier2: 1}, nil},
		{"\x64\x00\x00\x01rest", uwsgi.Header{Modifier1: uwsgi.ModPing, Modifier2: 1}, nil},
	}
	for _, tt := range tests {
		r := strings.NewReader(tt.in)
		got, err := uwsgi.ReadHeader(iotest.OneByteReader(r))
		if got != tt.want || !errorIs(err, tt.wantErr) {
			t.Errorf("ReadHeader(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && r.Len() != len(tt.in)-uwsgi.HeaderSize {
			t.Errorf("ReadHeader(%q) left %d bytes, want %d", tt.in, r.Len(), len(tt.in)-uwsgi.HeaderSize)
		}
	}
}

func TestReadPacket(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    uwsgi.Header
		payload string
		left    int // bytes the reader must still hold
		wantErr error
	}{
		{"eof", "", 4096, uwsgi.Header{}, "", 0, io.EOF},
		{"partial header 1", "\xad", 4096, uwsgi.Header{}, "", 0, io.ErrUnexpectedEOF},
		{"partial header 3", "\xad\x07\x00", 4096, uwsgi.Header{}, "", 0, io.ErrUnexpectedEOF},
		{"no payload", "\xad\x07\x00\x00", 4096, uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}, "", 0, io.ErrUnexpectedEOF},
		{"partial payload", "\xad\x07\x00\x00\x05\x00he", 4096, uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}, "", 0, io.ErrUnexpectedEOF},
		{"whole", "\xad\x07\x00\x00\x05\x00hello", 4096, uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}, "\x05\x00hello", 0, nil},
		{"body left", "\x65\x03\x00\x00abcBODY", 4096, uwsgi.Header{Modifier1: uwsgi.ModEcho, Size: 3}, "abc", 4, nil},
		{"empty", "\x64\x00\x00\x00\x64", 4096, uwsgi.Header{Modifier1: uwsgi.ModPing}, "", 1, nil},
		{"size equals max", "\x65\x03\x00\x00abc", 3, uwsgi.Header{Modifier1: uwsgi.ModEcho, Size: 3}, "abc", 0, nil},
		// Rejected after the header: the payload stays unread.
		{"too large", "\x65\x03\x00\x00abc", 2, uwsgi.Header{Modifier1: uwsgi.ModEcho, Size: 3}, "", 3, uwsgi.ErrTooLarge},
		{"too large, nothing sent", "\x00\x01\x10\x00", 4096, uwsgi.Header{Size: 4097}, "", 0, uwsgi.ErrTooLarge},
	}
	for _, tt := range tests {
		for _, slow := range []bool{false, true} {
			r := strings.NewReader(tt.in)
			var src io.Reader = r
			if slow {
				src = iotest.OneByteReader(r)
			}
			p, err := uwsgi.ReadPacket(src, nil, tt.max)
			if !errorIs(err, tt.wantErr) || p.Header != tt.want || string(p.Payload) != tt.payload {
				t.Errorf("%s: ReadPacket(%q, max %d) = %v %q, %v; want %v %q, %v",
					tt.name, tt.in, tt.max, p.Header, p.Payload, err, tt.want, tt.payload, tt.wantErr)
			}
			if r.Len() != tt.left {
				t.Errorf("%s: ReadPacket left %d bytes unread, want %d", tt.name, r.Len(), tt.left)
			}
		}
	}
}

func TestReadPacketReaderError(t *testing.T) {
	errBoom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("\xad\x07\x00\x00\x05"), iotest.ErrReader(errBoom))
	if _, err := uwsgi.ReadPacket(r, nil, 4096); !errors.Is(err, errBoom) {
		t.Errorf("ReadPacket(failing reader) = %v, want %v", err, errBoom)
	}
	if _, err := uwsgi.ReadPacket(iotest.ErrReader(errBoom), nil, 4096); !errors.Is(err, errBoom) {
		t.Errorf("ReadPacket(failing reader) = %v, want %v", err, errBoom)
	}
}

func TestReadPacketBufferReuse(t *testing.T) {
	stream := "\xad\x07\x00\x00\x05\x00hello" + "\x65\x03\x00\x00abc" + "\x64\x00\x00\x00" + "\x65\x0a\x00\x000123456789"
	r := strings.NewReader(stream)
	buf := make([]byte, 0, 8)
	want := []struct {
		h       uwsgi.Header
		payload string
		reused  bool
	}{
		{uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}, "\x05\x00hello", true},
		{uwsgi.Header{Modifier1: uwsgi.ModEcho, Size: 3}, "abc", true},
		{uwsgi.Header{Modifier1: uwsgi.ModPing}, "", true},
		{uwsgi.Header{Modifier1: uwsgi.ModEcho, Size: 10}, "0123456789", false}, // over cap 8: grown
	}
	for i, w := range want {
		p, err := uwsgi.ReadPacket(r, buf, 4096)
		if err != nil || p.Header != w.h || string(p.Payload) != w.payload {
			t.Fatalf("packet %d: ReadPacket = %v %q, %v; want %v %q", i, p.Header, p.Payload, err, w.h, w.payload)
		}
		if got := cap(p.Payload) > 0 && &p.Payload[:1][0] == &buf[:1][0]; got != w.reused {
			t.Errorf("packet %d: payload in the caller's buffer = %v, want %v", i, got, w.reused)
		}
	}
	if _, err := uwsgi.ReadPacket(r, buf, 4096); err != io.EOF {
		t.Errorf("ReadPacket at the end = %v, want %v", err, io.EOF)
	}
}

// Two packets back to back: an RPC request and an echo, then a stray byte.
const twoPackets = "\xad\x07\x00\x00\x05\x00hello" + "\x65\x03\x00\x00abc" + "x"

func TestExtractEveryPrefix(t *testing.T) {
	buf := []byte(twoPackets)
	const first, second = 11, 7
	for l := 0; l <= len(buf); l++ {
		p, n, need, err := uwsgi.Extract(buf[:l], 4096)
		if err != nil {
			t.Fatalf("Extract(first %d bytes) error %v", l, err)
		}
		switch {
		case l < uwsgi.HeaderSize:
			if n != 0 || need != uwsgi.HeaderSize-l {
				t.Errorf("Extract(first %d bytes) = n %d, need %d; want 0, %d", l, n, need, uwsgi.HeaderSize-l)
			}
		case l < first:
			if n != 0 || need != first-l {
				t.Errorf("Extract(first %d bytes) = n %d, need %d; want 0, %d", l, n, need, first-l)
			}
			// need is exact once the header is in.
			if _, n2, _, _ := uwsgi.Extract(buf[:l+need], 4096); n2 != first {
				t.Errorf("Extract(first %d+%d bytes) n = %d, want %d", l, need, n2, first)
			}
		default:
			want := uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 7}
			if n != first || need != 0 || p.Header != want || string(p.Payload) != "\x05\x00hello" {
				t.Errorf("Extract(first %d bytes) = %v %q, n %d, need %d; want %v, n %d, need 0", l, p.Header, p.Payload, n, need, want, first)
			}
			if cap(p.Payload) != len(p.Payload) || &p.Payload[0] != &buf[uwsgi.HeaderSize] {
				t.Errorf("Extract payload does not alias buf[4:11] with its capacity cut")
			}
			p2, n2, need2, err := uwsgi.Extract(buf[n:l], 4096)
			rest := l - first
			switch {
			case err != nil:
				t.Errorf("second Extract(%d bytes) error %v", rest, err)
			case rest < uwsgi.HeaderSize:
				if n2 != 0 || need2 != uwsgi.HeaderSize-rest {
					t.Errorf("second Extract(%d bytes) = n %d, need %d; want 0, %d", rest, n2, need2, uwsgi.HeaderSize-rest)
				}
			case rest < second:
				if n2 != 0 || need2 != second-rest {
					t.Errorf("second Extract(%d bytes) = n %d, need %d; want 0, %d", rest, n2, need2, second-rest)
				}
			default:
				if n2 != second || need2 != 0 || p2.Modifier1 != uwsgi.ModEcho || string(p2.Payload) != "abc" {
					t.Errorf("second Extract(%d bytes) = %v %q, n %d, need %d; want echo \"abc\", 7, 0", rest, p2.Header, p2.Payload, n2, need2)
				}
			}
		}
	}
}

func TestExtractTooLarge(t *testing.T) {
	tests := []struct {
		in      string
		max     int
		n, need int
		wantErr error
	}{
		{"\x65\x03\x00\x00abc", 3, 7, 0, nil},
		{"\x65\x03\x00\x00abc", 2, 0, 0, uwsgi.ErrTooLarge},
		{"\x65\x03\x00\x00", 2, 0, 0, uwsgi.ErrTooLarge}, // rejected before the payload arrives
		{"\x65\x03", 2, 0, 2, nil},                       // the size is not known yet
		{"\x00\x01\x10\x00", 4096, 0, 0, uwsgi.ErrTooLarge},
		{"\x00\x00\x10\x00", 4096, 0, 4096, nil},
		{"HTTP/1.1 200 OK\r\n", uwsgi.MaxSize, 0, 4 + 21588 - 17, nil},
	}
	for _, tt := range tests {
		_, n, need, err := uwsgi.Extract([]byte(tt.in), tt.max)
		if n != tt.n || need != tt.need || !errorIs(err, tt.wantErr) {
			t.Errorf("Extract(%q, %d) = n %d, need %d, %v; want %d, %d, %v", tt.in, tt.max, n, need, err, tt.n, tt.need, tt.wantErr)
		}
	}
}

// pair is a key/value in tests (strings keep the tables readable).
type pair struct{ k, v string }

func pairsOf(vs uwsgi.Vars) []pair {
	out := []pair{}
	for _, v := range vs {
		out = append(out, pair{string(v.Key), string(v.Value)})
	}
	return out
}

func TestEachVar(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []pair // pairs delivered, also those before a fault
		wantErr error
		offset  int // of the *FormatError
	}{
		{"empty block", "", []pair{}, nil, 0},
		{"one pair", "\x05\x00hello\x05\x00world", []pair{{"hello", "world"}}, nil, 0},
		{"empty value last", "\x01\x00a\x01\x00b\x01\x00c\x00\x00", []pair{{"a", "b"}, {"c", ""}}, nil, 0},
		{"empty value first", "\x01\x00a\x00\x00\x01\x00c\x01\x00d", []pair{{"a", ""}, {"c", "d"}}, nil, 0},
		{"binary", "\x02\x00\x00\xff\x03\x00\x00\x01\xff", []pair{{"\x00\xff", "\x00\x01\xff"}}, nil, 0},
		{"duplicates kept", "\x01\x00k\x01\x001\x01\x00k\x01\x002", []pair{{"k", "1"}, {"k", "2"}}, nil, 0},
		{"zero-length key", "\x00\x00\x01\x00x", []pair{}, uwsgi.ErrEmptyKey, 0},
		{"zero-length key later", "\x01\x00a\x01\x00b\x00\x00\x01\x00x", []pair{{"a", "b"}}, uwsgi.ErrEmptyKey, 6},
		{"one stray byte", "\x01\x00a\x01\x00b\x05", []pair{{"a", "b"}}, uwsgi.ErrTruncated, 6},
		{"key ends at end of block", "\x01\x00a", []pair{}, uwsgi.ErrTruncated, 0},
		{"half a value length", "\x01\x00a\x00", []pair{}, uwsgi.ErrTruncated, 0},
		{"key past end", "\x09\x00abc", []pair{}, uwsgi.ErrTruncated, 0},
		{"value past end", "\x01\x00a\x05\x00ab", []pair{}, uwsgi.ErrTruncated, 3},
		{"value one byte short", "\x01\x00a\x01\x00b\x01\x00c\x03\x00de", []pair{{"a", "b"}}, uwsgi.ErrTruncated, 9},
		{"max key length announced", "\xff\xff", []pair{}, uwsgi.ErrTruncated, 0},
	}
	for _, tt := range tests {
		got := []pair{}
		err := uwsgi.EachVar([]byte(tt.in), func(k, v []byte) bool {
			got = append(got, pair{string(k), string(v)})
			return true
		})
		if !slices.Equal(got, tt.want) || !errorIs(err, tt.wantErr) {
			t.Errorf("%s: EachVar(%x) = %q, %v; want %q, %v", tt.name, tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil {
			var fe *uwsgi.FormatError
			if !errors.As(err, &fe) || fe.What != "vars" || fe.Offset != tt.offset {
				t.Errorf("%s: EachVar(%x) error = %#v, want a vars *FormatError at %d", tt.name, tt.in, err, tt.offset)
			}
		}

		vs, err := uwsgi.ParseVars(nil, []byte(tt.in), 0)
		want := tt.want
		if tt.wantErr != nil {
			want = []pair{}
		}
		if got := pairsOf(vs); !slices.Equal(got, want) || !errorIs(err, tt.wantErr) {
			t.Errorf("%s: ParseVars(%x) = %q, %v; want %q, %v", tt.name, tt.in, got, err, want, tt.wantErr)
		}
	}
}

func TestEachVarStop(t *testing.T) {
	// fn returning false stops the walk: the malformed rest is not looked at.
	in := []byte("\x01\x00a\x01\x00b\x01\x00c\x01\x00d\x00\x00garbage")
	calls := 0
	err := uwsgi.EachVar(in, func(k, v []byte) bool { calls++; return false })
	if err != nil || calls != 1 {
		t.Errorf("EachVar(stop at once) = %d calls, %v; want 1, nil", calls, err)
	}
}

func TestParseVarsMax(t *testing.T) {
	block := []byte("\x01\x00a\x01\x001\x01\x00b\x01\x002\x01\x00c\x01\x003")
	tests := []struct {
		max     int
		want    int
		wantErr error
	}{
		{0, 3, nil}, {-1, 3, nil}, {3, 3, nil}, {4, 3, nil}, {2, 0, uwsgi.ErrTooMany}, {1, 0, uwsgi.ErrTooMany},
	}
	for _, tt := range tests {
		prev := uwsgi.Vars{}.Add("keep", "me")
		dst := slices.Grow(prev, 8)
		got, err := uwsgi.ParseVars(dst, block, tt.max)
		if len(got)-1 != tt.want || !errorIs(err, tt.wantErr) {
			t.Errorf("ParseVars(max %d) = %d pairs, %v; want %d, %v", tt.max, len(got)-1, err, tt.want, tt.wantErr)
		}
		if string(got[0].Key) != "keep" || string(got[0].Value) != "me" {
			t.Errorf("ParseVars(max %d) changed dst[0] to %q=%q", tt.max, got[0].Key, got[0].Value)
		}
	}
	// A malformed tail after max pairs is still reported as malformed.
	if _, err := uwsgi.ParseVars(nil, append(block[:len(block):len(block)], 0x01), 3); !errors.Is(err, uwsgi.ErrTruncated) {
		t.Errorf("ParseVars(3 pairs + stray byte, max 3) = %v, want %v", err, uwsgi.ErrTruncated)
	}
}

func TestParseVarsDoesNotAllocate(t *testing.T) {
	block, _ := uwsgi.Vars{}.Add("REQUEST_METHOD", "GET").Add("PATH_INFO", "/env").
		Add("QUERY_STRING", "").Add("HTTP_HOST", "localhost").Append(nil)
	dst := make(uwsgi.Vars, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = uwsgi.ParseVars(dst[:0], block, 128); err != nil || len(dst) != 4 {
			t.Fatalf("ParseVars = %d pairs, %v", len(dst), err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseVars with a preallocated dst: %v allocations per run, want 0", allocs)
	}
	n := 0
	allocs = testing.AllocsPerRun(100, func() {
		n = 0
		_ = uwsgi.EachVar(block, func(k, v []byte) bool { n += len(k) + len(v); return true })
	})
	if allocs != 0 {
		t.Errorf("EachVar: %v allocations per run, want 0", allocs)
	}
}

func TestVarsLookup(t *testing.T) {
	vs := uwsgi.Vars{}.Add("HTTP_COOKIE", "a=1").Add("EMPTY", "").Add("HTTP_COOKIE", "b=2").Add("X", "y")
	tests := []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"HTTP_COOKIE", "b=2", true},
		{"EMPTY", "", true},
		{"X", "y", true},
		{"x", "", false},
		{"MISSING", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := vs.Lookup(tt.key)
		if string(got) != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
		}
		if got := vs.Get(tt.key); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	wantMap := map[string]string{"HTTP_COOKIE": "b=2", "EMPTY": "", "X": "y"}
	if got := vs.Map(); !maps.Equal(got, wantMap) {
		t.Errorf("Map() = %v, want %v", got, wantMap)
	}
	if got := uwsgi.Vars(nil).Map(); len(got) != 0 {
		t.Errorf("Vars(nil).Map() = %v, want empty", got)
	}
	if _, ok := uwsgi.Vars(nil).Lookup("X"); ok {
		t.Errorf("Vars(nil).Lookup(X) found a value")
	}
}

func TestVarsSizeAppend(t *testing.T) {
	tests := []struct {
		vs   uwsgi.Vars
		want string
	}{
		{nil, ""},
		{uwsgi.Vars{}.Add("hello", "world"), "\x05\x00hello\x05\x00world"},
		{uwsgi.Vars{}.Add("a", "").Add("b", "c"), "\x01\x00a\x00\x00\x01\x00b\x01\x00c"},
		{uwsgi.Vars{{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 300)}}, "\x01\x00k\x2c\x01" + strings.Repeat("v", 300)},
	}
	for _, tt := range tests {
		got, err := tt.vs.Append([]byte("pre"))
		if err != nil || string(got) != "pre"+tt.want {
			t.Errorf("%q.Append(pre) = %x, %v; want %x", pairsOf(tt.vs), got, err, "pre"+tt.want)
		}
		if got := tt.vs.Size(); got != len(tt.want) {
			t.Errorf("%q.Size() = %d, want %d", pairsOf(tt.vs), got, len(tt.want))
		}
	}
	bad := uwsgi.Vars{}.Add("ok", "1").Add("", "x")
	if _, err := bad.Append(nil); !errors.Is(err, uwsgi.ErrEmptyKey) {
		t.Errorf("Append(empty key) = %v, want %v", err, uwsgi.ErrEmptyKey)
	}
}

func TestAppendVar(t *testing.T) {
	full := strings.Repeat("k", uwsgi.MaxSize)
	tests := []struct {
		key, value string
		wantLen    int
		wantErr    error
	}{
		{"a", "", 5, nil},
		{"key", "value", 12, nil},
		{full, "", 4 + uwsgi.MaxSize, nil},
		{"k", full, 5 + uwsgi.MaxSize, nil},
		{full, full, 4 + 2*uwsgi.MaxSize, nil},
		{"", "v", 0, uwsgi.ErrEmptyKey},
		{full + "k", "", 0, uwsgi.ErrTooLarge},
		{"k", full + "v", 0, uwsgi.ErrTooLarge},
	}
	for _, tt := range tests {
		// string key, []byte value: the two type parameters are independent.
		got, err := uwsgi.AppendVar([]byte("pre"), tt.key, []byte(tt.value))
		if !errorIs(err, tt.wantErr) {
			t.Errorf("AppendVar(%d-byte key, %d-byte value) = %v, want %v", len(tt.key), len(tt.value), err, tt.wantErr)
			continue
		}
		if err != nil {
			if string(got) != "pre" {
				t.Errorf("AppendVar(%d-byte key) on error = %.16q, want dst unchanged", len(tt.key), got)
			}
			continue
		}
		if len(got)-3 != tt.wantLen {
			t.Errorf("AppendVar(%d-byte key, %d-byte value) appended %d bytes, want %d", len(tt.key), len(tt.value), len(got)-3, tt.wantLen)
		}
		vs, err := uwsgi.ParseVars(nil, got[3:], 0)
		if err != nil || len(vs) != 1 || string(vs[0].Key) != tt.key || string(vs[0].Value) != tt.value {
			t.Errorf("ParseVars(AppendVar(%d-byte key, %d-byte value)) = %d pairs, %v", len(tt.key), len(tt.value), len(vs), err)
		}
	}
	if got, _ := uwsgi.AppendVar(nil, []byte("CONTENT_LENGTH"), "7"); string(got) != "\x0e\x00CONTENT_LENGTH\x01\x007" {
		t.Errorf("AppendVar(CONTENT_LENGTH, 7) = %q", got)
	}
}

func TestParseContentLength(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"0", 0},
		{"7", 7},
		{"14", 14},
		{"7xyz", 7},
		{"abc", 0},
		{"12 34", 12},
		{" 5", 0},
		{"-5", 0},
		{"+5", 0},
		{"0x10", 0},
		{"00012", 12},
		{"\u0661", 0}, // ARABIC-INDIC DIGIT ONE is not an ASCII digit
		{"9223372036854775806", math.MaxInt64 - 1},
		{"9223372036854775807", math.MaxInt64},
		{"9223372036854775808", math.MaxInt64},
		{"9223372036854775810", math.MaxInt64},
		{"99999999999999999999999999999", math.MaxInt64},
		{"922337203685477580700", math.MaxInt64},
		{"00000000000000000000000000042", 42},
	}
	for _, tt := range tests {
		if got := uwsgi.ParseContentLength([]byte(tt.in)); got != tt.want {
			t.Errorf("ParseContentLength(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestEachItemParseArray(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr error
		offset  int
	}{
		{"empty", "", 255, []string{}, nil, 0},
		{"hellolua", "\x08\x00hellolua\x03\x00foo\x03\x00bar", 255, []string{"hellolua", "foo", "bar"}, nil, 0},
		{"binary", "\x03\x00\x00\x01\xff", 255, []string{"\x00\x01\xff"}, nil, 0},
		{"empty items middle", "\x07\x00argdump\x00\x00\x01\x00a\x00\x00\x01\x00b", 255, []string{"argdump", "a", "b"}, nil, 0},
		{"empty item leading", "\x00\x00\x05\x00hello", 255, []string{"hello"}, nil, 0},
		// Deviation from uWSGI 2.0.21, which rejects the whole array.
		{"empty item trailing", "\x05\x00hello\x00\x00", 255, []string{"hello"}, nil, 0},
		{"only empty items", "\x00\x00\x00\x00", 255, []string{}, nil, 0},
		{"one stray byte", "\x05\x00hello\x03", 255, []string{}, uwsgi.ErrTruncated, 7},
		{"two stray bytes", "\x05\x00hello\x03\x00", 255, []string{}, uwsgi.ErrTruncated, 7},
		{"item past end", "\x05\x00hel", 255, []string{}, uwsgi.ErrTruncated, 0},
		{"max length announced", "\xff\xff", 255, []string{}, uwsgi.ErrTruncated, 0},
		{"max items", "\x01\x00a\x01\x00b\x01\x00c", 2, []string{"a", "b"}, nil, 0},
		{"max items, rest not validated", "\x01\x00a\x01\x00b\xff", 2, []string{"a", "b"}, nil, 0},
		{"empty items do not count", "\x00\x00\x01\x00a\x00\x00\x01\x00b\x01\x00c", 2, []string{"a", "b"}, nil, 0},
		{"no max", "\x01\x00a\x01\x00b\x01\x00c", 0, []string{"a", "b", "c"}, nil, 0},
		{"no max, rest validated", "\x01\x00a\x01\x00b\xff", 0, []string{}, uwsgi.ErrTruncated, 6},
	}
	for _, tt := range tests {
		dst := [][]byte{[]byte("keep")}
		got, err := uwsgi.ParseArray(dst, []byte(tt.in), tt.max)
		if !slices.Equal(vecStrs(got[1:]), tt.want) || !errorIs(err, tt.wantErr) {
			t.Errorf("%s: ParseArray(%x, %d) = %q, %v; want %q, %v", tt.name, tt.in, tt.max, vecStrs(got[1:]), err, tt.want, tt.wantErr)
		}
		if string(got[0]) != "keep" {
			t.Errorf("%s: ParseArray changed dst[0] to %q", tt.name, got[0])
		}
		if err != nil {
			var fe *uwsgi.FormatError
			if !errors.As(err, &fe) || fe.What != "array" || fe.Offset != tt.offset {
				t.Errorf("%s: ParseArray(%x) error = %#v, want an array *FormatError at %d", tt.name, tt.in, err, tt.offset)
			}
		}
		if tt.max == 0 {
			items := []string{}
			err := uwsgi.EachItem([]byte(tt.in), func(it []byte) bool {
				items = append(items, string(it))
				return true
			})
			if tt.wantErr == nil && (!slices.Equal(items, tt.want) || err != nil) {
				t.Errorf("%s: EachItem(%x) = %q, %v; want %q, nil", tt.name, tt.in, items, err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: EachItem(%x) = %v, want %v", tt.name, tt.in, err, tt.wantErr)
			}
		}
	}
}

func TestEachItemStop(t *testing.T) {
	calls := 0
	err := uwsgi.EachItem([]byte("\x01\x00a\x01\x00b\xff"), func([]byte) bool { calls++; return false })
	if err != nil || calls != 1 {
		t.Errorf("EachItem(stop at once) = %d calls, %v; want 1, nil", calls, err)
	}
	// Items before a fault are delivered.
	var got []string
	err = uwsgi.EachItem([]byte("\x01\x00a\x00\x00\x01\x00b\x09"), func(it []byte) bool { got = append(got, string(it)); return true })
	if !errors.Is(err, uwsgi.ErrTruncated) || !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("EachItem(fault after 2 items) = %q, %v; want [a b], ErrTruncated", got, err)
	}
}

func TestParseArrayDoesNotAllocate(t *testing.T) {
	block := []byte("\x08\x00hellolua\x03\x00foo\x03\x00bar")
	dst := make([][]byte, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = uwsgi.ParseArray(dst[:0], block, 255); err != nil || len(dst) != 3 {
			t.Fatalf("ParseArray = %d items, %v", len(dst), err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseArray with a preallocated dst: %v allocations per run, want 0", allocs)
	}
}

func TestAppendArray(t *testing.T) {
	full := strings.Repeat("x", uwsgi.MaxSize)
	tests := []struct {
		items   []string
		want    string // "" with wantErr == nil: only check the round trip
		wantErr error
	}{
		{nil, "", nil},
		{[]string{"hellolua", "foo", "bar"}, "\x08\x00hellolua\x03\x00foo\x03\x00bar", nil},
		{[]string{"\x00"}, "\x01\x00\x00", nil},
		{[]string{full}, "", nil},
		{[]string{""}, "", uwsgi.ErrEmptyItem},
		{[]string{"fn", "a", ""}, "", uwsgi.ErrEmptyItem},
		{[]string{"fn", full + "x"}, "", uwsgi.ErrTooLarge},
	}
	for _, tt := range tests {
		got, err := uwsgi.AppendArray([]byte("pre"), tt.items...)
		if !errorIs(err, tt.wantErr) {
			t.Errorf("AppendArray(%d items) = %v, want %v", len(tt.items), err, tt.wantErr)
			continue
		}
		if err != nil {
			continue // what is left in dst: TestAppendErrorKeepsDst
		}
		if tt.want != "" && string(got[3:]) != tt.want {
			t.Errorf("AppendArray(%q) = %x, want %x", tt.items, got[3:], tt.want)
		}
		items, err := uwsgi.ParseArray(nil, got[3:], 0)
		if err != nil || !slices.Equal(vecStrs(items), append([]string{}, tt.items...)) {
			t.Errorf("ParseArray(AppendArray(%d items)) = %d items, %v", len(tt.items), len(items), err)
		}
	}
	// []byte items.
	if got, err := uwsgi.AppendArray(nil, []byte("k1"), []byte("value-one")); err != nil || string(got) != "\x02\x00k1\x09\x00value-one" {
		t.Errorf("AppendArray([]byte k1, value-one) = %q, %v", got, err)
	}
}

// TestAppendErrorKeepsDst: an encoder that fails returns dst as it was
// given, so a caller appending to a long-lived buffer (a connection's write
// buffer) never keeps half an encoding. AppendPacket, AppendVar,
// AppendRPCRequest and AppendCacheRequest do; AppendArray and Vars.Append
// return the items or pairs before the faulty one appended to dst.
func TestAppendErrorKeepsDst(t *testing.T) {
	tests := []struct {
		name string
		enc  func(dst []byte) ([]byte, error)
	}{
		{"AppendPacket", func(dst []byte) ([]byte, error) {
			return uwsgi.AppendPacket(dst, uwsgi.ModEcho, 0, make([]byte, uwsgi.MaxSize+1))
		}},
		{"AppendVar", func(dst []byte) ([]byte, error) { return uwsgi.AppendVar(dst, "", "v") }},
		{"AppendRPCRequest", func(dst []byte) ([]byte, error) { return uwsgi.AppendRPCRequest(dst, 0, "fn", "a", "") }},
		{"AppendCacheRequest", func(dst []byte) ([]byte, error) {
			return uwsgi.AppendCacheRequest(dst, uwsgi.CacheRequest{Cmd: "get", Key: make([]byte, uwsgi.MaxSize+1)}, nil)
		}},
		{"AppendArray", func(dst []byte) ([]byte, error) { return uwsgi.AppendArray(dst, "fn", "a", "") }},
		{"Vars.Append", func(dst []byte) ([]byte, error) {
			return uwsgi.Vars{}.Add("REQUEST_METHOD", "GET").Add("", "x").Append(dst)
		}},
	}
	for _, tt := range tests {
		got, err := tt.enc([]byte("pre"))
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if string(got) != "pre" {
			t.Errorf("%s on error returned dst = %q, want %q", tt.name, got, "pre")
		}
	}
}

func TestAppendRPCRequest(t *testing.T) {
	long := strings.Repeat("a", uwsgi.MaxSize-2-1-2) // with fn "f": payload of exactly 65535 bytes
	tests := []struct {
		name    string
		m2      uint8
		fn      string
		args    []string
		want    string // "" with no error: check the size only
		size    int
		wantErr error
	}{
		{"rpc_hello", 0, "hello", nil, "\xad\x07\x00\x00\x05\x00hello", 7, nil},
		{"rpc_hello_raw", uwsgi.RPCRaw, "hello", nil, "\xad\x07\x00\x01\x05\x00hello", 7, nil},
		{"rpc_hellolua_args", 0, "hellolua", []string{"foo", "bar"},
			"\xad\x14\x00\x00\x08\x00hellolua\x03\x00foo\x03\x00bar", 20, nil},
		{"binary", 0, "argdump", []string{"\x00\x01\xff"}, "\xad\x0e\x00\x00\x07\x00argdump\x03\x00\x00\x01\xff", 14, nil},
		{"65535 bytes", 0, "f", []string{long}, "", uwsgi.MaxSize, nil},
		{"65536 bytes", 0, "f", []string{long + "a"}, "", 0, uwsgi.ErrTooLarge},
		{"two big args", 0, "f", []string{strings.Repeat("a", 40000), strings.Repeat("b", 40000)}, "", 0, uwsgi.ErrTooLarge},
		{"arg over 65535", 0, "f", []string{strings.Repeat("a", uwsgi.MaxSize+1)}, "", 0, uwsgi.ErrTooLarge},
		{"empty name", 0, "", nil, "", 0, uwsgi.ErrEmptyItem},
		{"empty arg", 0, "f", []string{"a", ""}, "", 0, uwsgi.ErrEmptyItem},
	}
	for _, tt := range tests {
		got, err := uwsgi.AppendRPCRequest([]byte("pre"), tt.m2, tt.fn, tt.args...)
		if !errorIs(err, tt.wantErr) {
			t.Errorf("%s: AppendRPCRequest = %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			if string(got) != "pre" {
				t.Errorf("%s: AppendRPCRequest on error = %.16q, want dst unchanged", tt.name, got)
			}
			continue
		}
		got = got[3:]
		if tt.want != "" && string(got) != tt.want {
			t.Errorf("%s: AppendRPCRequest = %x, want %x", tt.name, got, tt.want)
		}
		p, n, _, err := uwsgi.Extract(got, uwsgi.MaxSize)
		if err != nil || n != len(got) || p.Modifier1 != uwsgi.ModRPC || p.Modifier2 != tt.m2 || int(p.Size) != tt.size {
			t.Errorf("%s: Extract(AppendRPCRequest) = %v, n %d, %v; want [rpc(173), %d, %d]", tt.name, p.Header, n, err, tt.size, tt.m2)
			continue
		}
		items, err := uwsgi.ParseArray(nil, p.Payload, 0)
		if want := append([]string{tt.fn}, tt.args...); err != nil || !slices.Equal(vecStrs(items), want) {
			t.Errorf("%s: ParseArray(AppendRPCRequest) = %d items, %v", tt.name, len(items), err)
		}
	}
	// []byte arguments.
	got, err := uwsgi.AppendRPCRequest(nil, 0, "hellolua", []byte("x"), []byte("y"))
	if want := "\xad\x10\x00\x00\x08\x00hellolua\x01\x00x\x01\x00y"; err != nil || string(got) != want {
		t.Errorf("AppendRPCRequest([]byte args) = %x, %v; want %x (client_rpc_hellolua)", got, err, want)
	}
}

func TestAppendRPCHeader(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "\xad\x00\x00\x00"},
		{11, "\xad\x0b\x00\x00"},
		{65535, "\xad\xff\xff\x00"},
		{65536, "\xad\x17\x00\x05\x0e\x00CONTENT_LENGTH\x05\x0065536"},
		{100000, "\xad\x18\x00\x05\x0e\x00CONTENT_LENGTH\x06\x00100000"},
		{1 << 20, "\xad\x19\x00\x05\x0e\x00CONTENT_LENGTH\x07\x001048576"},
		{math.MaxInt64, "\xad\x25\x00\x05\x0e\x00CONTENT_LENGTH\x13\x009223372036854775807"},
	}
	for _, tt := range tests {
		got := uwsgi.AppendRPCHeader([]byte("pre"), tt.n)
		if string(got) != "pre"+tt.want {
			t.Errorf("AppendRPCHeader(%d) = %x, want %x", tt.n, got[min(3, len(got)):], tt.want)
			continue
		}
		if tt.n <= uwsgi.MaxSize {
			continue
		}
		p, n, _, err := uwsgi.Extract(got[3:], uwsgi.MaxSize)
		if err != nil || n != len(tt.want) {
			t.Errorf("Extract(AppendRPCHeader(%d)) = n %d, %v", tt.n, n, err)
			continue
		}
		if l, ok := uwsgi.LargeLength(p.Payload); !ok || l != int64(tt.n) {
			t.Errorf("LargeLength(AppendRPCHeader(%d)) = %d, %v; want %d, true", tt.n, l, ok, tt.n)
		}
	}
}

func TestReadRPCResult(t *testing.T) {
	large := func(cl string) string {
		b, _ := uwsgi.AppendVar(nil, "CONTENT_LENGTH", cl)
		h := uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: uint16(len(b)), Modifier2: uwsgi.RPCLarge}.Bytes()
		return string(h[:]) + string(b)
	}
	big := vecBig(65536)
	tests := []struct {
		name    string
		in      string
		max     int64
		want    string
		left    int // bytes the reader still holds
		wantErr error
	}{
		{"16-bit", "\xad\x0b\x00\x00Hello World", 100, "Hello World", 0, nil},
		{"16-bit at max", "\xad\x0b\x00\x00Hello World", 11, "Hello World", 0, nil},
		{"16-bit trailing bytes", "\xad\x02\x00\x00okMORE", 100, "ok", 4, nil},
		{"empty result", "\xad\x00\x00\x00", 100, "", 0, nil},
		{"other modifier2 is 16-bit", "\xad\x02\x00\x01ok", 100, "ok", 0, nil},
		{"16-bit over max", "\xad\x0b\x00\x00Hello World", 10, "", 11, uwsgi.ErrTooLarge},
		{"16-bit truncated", "\xad\x0b\x00\x00Hello", 100, "", 0, io.ErrUnexpectedEOF},
		{"16-bit nothing after header", "\xad\x0b\x00\x00", 100, "", 0, io.ErrUnexpectedEOF},
		{"large", large("65536") + big, 1 << 20, big, 0, nil},
		{"large, small length", large("5") + "HELLO", 100, "HELLO", 0, nil},
		{"large, zero length", large("0"), 100, "", 0, nil},
		{"large over max", large("65536") + big, 65535, "", 65536, uwsgi.ErrTooLarge},
		{"large over a huge max", large("9223372036854775807"), math.MaxInt64 - 1, "", 0, uwsgi.ErrTooLarge},
		{"large result truncated", large("65536") + big[:100], 1 << 20, "", 0, io.ErrUnexpectedEOF},
		{"large result missing", large("65536"), 1 << 20, "", 0, io.ErrUnexpectedEOF},
		{"large block truncated", large("65536")[:10], 1 << 20, "", 0, io.ErrUnexpectedEOF},
		{"large block missing", "\xad\x17\x00\x05", 1 << 20, "", 0, io.ErrUnexpectedEOF},
		{"large, malformed block", "\xad\x03\x00\x05abc", 1 << 20, "", 0, uwsgi.ErrMalformed},
		{"large, empty block", "\xad\x00\x00\x05", 1 << 20, "", 0, uwsgi.ErrMalformed},
		{"large, no CONTENT_LENGTH", "\xad\x06\x00\x05\x01\x00X\x01\x005", 1 << 20, "", 0, uwsgi.ErrMalformed},
		{"large, empty CONTENT_LENGTH", large(""), 1 << 20, "", 0, uwsgi.ErrMalformed},
		{"large, CONTENT_LENGTH abc", large("abc"), 1 << 20, "", 0, uwsgi.ErrMalformed},
		{"large, CONTENT_LENGTH 7xyz", large("7xyz") + "1234567", 1 << 20, "", 7, uwsgi.ErrMalformed},
		{"large, negative CONTENT_LENGTH", large("-1"), 1 << 20, "", 0, uwsgi.ErrMalformed},
		{"large, CONTENT_LENGTH overflows", large("9223372036854775808"), 1 << 20, "", 0, uwsgi.ErrMalformed},
	}
	for _, tt := range tests {
		r := strings.NewReader(tt.in)
		h, err := uwsgi.ReadHeader(r)
		if err != nil {
			t.Fatalf("%s: ReadHeader = %v", tt.name, err)
		}
		got, err := uwsgi.ReadRPCResult(r, h, tt.max)
		if string(got) != tt.want || !errorIs(err, tt.wantErr) {
			t.Errorf("%s: ReadRPCResult(max %d) = %d bytes %.20q, %v; want %d bytes %.20q, %v",
				tt.name, tt.max, len(got), got, err, len(tt.want), tt.want, tt.wantErr)
		}
		if errors.Is(tt.wantErr, uwsgi.ErrMalformed) {
			var fe *uwsgi.FormatError
			if !errors.As(err, &fe) || fe.What != "rpc response" {
				t.Errorf("%s: ReadRPCResult error = %#v, want an rpc response *FormatError", tt.name, err)
			}
		}
		if r.Len() != tt.left {
			t.Errorf("%s: ReadRPCResult left %d bytes, want %d", tt.name, r.Len(), tt.left)
		}
	}
}

func TestLargeLength(t *testing.T) {
	block := func(vs uwsgi.Vars) string {
		b, err := vs.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name   string
		in     string
		want   int64
		wantOK bool
	}{
		{"65536", "\x0e\x00CONTENT_LENGTH\x05\x0065536", 65536, true},
		{"zero", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "0")), 0, true},
		{"max int64", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "9223372036854775807")), math.MaxInt64, true},
		{"other vars ignored", block(uwsgi.Vars{}.Add("X", "1").Add("CONTENT_LENGTH", "70000").Add("Y", "")), 70000, true},
		{"last duplicate wins", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "1").Add("CONTENT_LENGTH", "70000")), 70000, true},
		{"empty block", "", -1, false},
		{"missing", block(uwsgi.Vars{}.Add("content_length", "5")), -1, false},
		{"empty value", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "")), -1, false},
		{"not a number", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "abc")), -1, false},
		{"digits then junk", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "7xyz")), -1, false},
		{"negative", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "-1")), -1, false},
		{"overflow", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "9223372036854775808")), -1, false},
		{"bad duplicate", block(uwsgi.Vars{}.Add("CONTENT_LENGTH", "5").Add("CONTENT_LENGTH", "x")), -1, false},
		{"malformed block", "\x0e\x00CONTENT_LENGTH\x05\x00655", -1, false},
		{"malformed after a good value", "\x0e\x00CONTENT_LENGTH\x01\x005\x00\x00", -1, false},
	}
	for _, tt := range tests {
		got, ok := uwsgi.LargeLength([]byte(tt.in))
		if ok != tt.wantOK || (ok && got != tt.want) {
			t.Errorf("%s: LargeLength(%q) = %d, %v; want %d, %v", tt.name, tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func cacheReqEqual(a, b uwsgi.CacheRequest) bool {
	return a.Cmd == b.Cmd && bytes.Equal(a.Key, b.Key) && a.Cache == b.Cache && a.Expires == b.Expires && a.Size == b.Size
}

func TestCacheRequestRoundTrip(t *testing.T) {
	tests := []struct {
		req   uwsgi.CacheRequest
		value string
		want  string // the packet (+ value); "" checks the round trip only
	}{
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdGet, Key: []byte("mk")}, "",
			"\x6f\x13\x00\x11\x03\x00cmd\x03\x00get\x03\x00key\x02\x00mk"},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdGet, Key: []byte("mk"), Cache: "nosuchcache"}, "",
			"\x6f\x27\x00\x11\x03\x00cmd\x03\x00get\x03\x00key\x02\x00mk\x05\x00cache\x0b\x00nosuchcache"},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdExists, Key: []byte("rk"), Cache: "default"}, "", ""},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdDel, Key: []byte("\x00binary\xff")}, "", ""},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdClear}, "", "\x6f\x0c\x00\x11\x03\x00cmd\x05\x00clear"},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdClear, Cache: "other"}, "", ""},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdClear, Key: []byte("k")}, "", ""},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdSet, Key: []byte("mk"), Size: 3}, "XYZ",
			"\x6f\x1c\x00\x11\x03\x00cmd\x03\x00set\x03\x00key\x02\x00mk\x04\x00size\x01\x003XYZ"},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdSet, Key: []byte("k"), Size: 0}, "", ""},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdSet, Key: []byte("k"), Size: 70000, Expires: 60, Cache: "c"}, strings.Repeat("v", 70000), ""},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdUpdate, Key: []byte("mk"), Size: 3, Expires: 3600}, "XYZ",
			"\x6f\x2e\x00\x11\x03\x00cmd\x06\x00update\x03\x00key\x02\x00mk\x04\x00size\x01\x003\x07\x00expires\x04\x003600XYZ"},
		{uwsgi.CacheRequest{Cmd: uwsgi.CacheCmdUpdate, Key: []byte("k"), Size: 1, Expires: math.MaxInt64}, "v", ""},
	}
	for _, tt := range tests {
		got, err := uwsgi.AppendCacheRequest([]byte("pre"), tt.req, []byte(tt.value))
		if err != nil || !bytes.HasPrefix(got, []byte("pre")) {
			t.Errorf("AppendCacheRequest(%+v) = %.16q, %v", tt.req, got, err)
			continue
		}
		got = got[3:]
		if tt.want != "" && string(got) != tt.want {
			t.Errorf("AppendCacheRequest(%+v) = %q, want %q", tt.req, got, tt.want)
		}
		p, n, _, err := uwsgi.Extract(got, uwsgi.MaxSize)
		if err != nil || n == 0 || p.Modifier1 != uwsgi.ModCache || p.Modifier2 != uwsgi.CacheMagic {
			t.Errorf("Extract(AppendCacheRequest(%+v)) = %v, n %d, %v", tt.req, p.Header, n, err)
			continue
		}
		if string(got[n:]) != tt.value {
			t.Errorf("AppendCacheRequest(%+v) value = %q, want %q", tt.req, got[n:], tt.value)
		}
		back, err := uwsgi.ParseCacheRequest(p.Payload)
		if err != nil || !cacheReqEqual(back, tt.req) {
			t.Errorf("ParseCacheRequest(AppendCacheRequest(%+v)) = %+v, %v", tt.req, back, err)
		}
	}
}

func TestAppendCacheRequestSize(t *testing.T) {
	// The value's length sets size, whatever req.Size says; get carries no value.
	got, err := uwsgi.AppendCacheRequest(nil, uwsgi.CacheRequest{Cmd: "set", Key: []byte("k"), Size: 99}, []byte("abc"))
	want := "\x6f\x1b\x00\x11\x03\x00cmd\x03\x00set\x03\x00key\x01\x00k\x04\x00size\x01\x003abc"
	if err != nil || string(got) != want {
		t.Errorf("AppendCacheRequest(set, Size 99, 3-byte value) = %q, %v; want %q", got, err, want)
	}
	got, err = uwsgi.AppendCacheRequest(nil, uwsgi.CacheRequest{Cmd: "get", Key: []byte("k"), Expires: 5}, []byte("ignored"))
	want = "\x6f\x12\x00\x11\x03\x00cmd\x03\x00get\x03\x00key\x01\x00k"
	if err != nil || string(got) != want {
		t.Errorf("AppendCacheRequest(get with a value) = %q, %v; want %q", got, err, want)
	}

	long := bytes.Repeat([]byte("k"), uwsgi.MaxSize)
	for _, req := range []uwsgi.CacheRequest{
		{Cmd: "get", Key: long},              // the key alone fits a var, not the packet
		{Cmd: "get", Key: append(long, 'k')}, // the key is over 65535
		{Cmd: "get", Key: []byte("k"), Cache: string(long)},
	} {
		got, err := uwsgi.AppendCacheRequest([]byte("pre"), req, nil)
		if !errors.Is(err, uwsgi.ErrTooLarge) || string(got) != "pre" {
			t.Errorf("AppendCacheRequest(%d-byte key, %d-byte cache) = %.16q, %v; want dst unchanged, ErrTooLarge",
				len(req.Key), len(req.Cache), got, err)
		}
	}
}

func TestParseCacheRequest(t *testing.T) {
	block := func(kv ...string) []byte {
		var vs uwsgi.Vars
		for i := 0; i+1 < len(kv); i += 2 {
			vs = vs.Add(kv[i], kv[i+1])
		}
		b, err := vs.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    uwsgi.CacheRequest
		wantErr error
	}{
		{"unknown keys ignored", block("cmd", "get", "key", "k", "foo", "bar"), uwsgi.CacheRequest{Cmd: "get", Key: []byte("k")}, nil},
		{"order irrelevant", block("cache", "c", "key", "k", "cmd", "del"), uwsgi.CacheRequest{Cmd: "del", Key: []byte("k"), Cache: "c"}, nil},
		{"size twice, last wins", block("cmd", "set", "key", "rk", "size", "1", "size", "12"), uwsgi.CacheRequest{Cmd: "set", Key: []byte("rk"), Size: 12}, nil},
		{"empty expires is none", block("cmd", "set", "key", "k", "size", "1", "expires", ""), uwsgi.CacheRequest{Cmd: "set", Key: []byte("k"), Size: 1}, nil},
		{"expires 0", block("cmd", "update", "key", "k", "size", "1", "expires", "0"), uwsgi.CacheRequest{Cmd: "update", Key: []byte("k"), Size: 1}, nil},
		{"size 0", block("cmd", "set", "key", "k", "size", "0"), uwsgi.CacheRequest{Cmd: "set", Key: []byte("k")}, nil},
		{"size at limit", block("cmd", "set", "key", "k", "size", "2147483647"), uwsgi.CacheRequest{Cmd: "set", Key: []byte("k"), Size: math.MaxInt32}, nil},
		{"clear without key", block("cmd", "clear"), uwsgi.CacheRequest{Cmd: "clear"}, nil},
		{"empty block", nil, uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"no cmd", block("key", "k"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"empty cmd", block("cmd", "", "key", "k"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"upper-case cmd", block("cmd", "GET", "key", "k"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"unknown cmd", block("cmd", "dump"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"set without size", block("cmd", "set", "key", "k"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"update without size", block("cmd", "update", "key", "k"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"empty size", block("cmd", "set", "key", "k", "size", ""), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"size abc", block("cmd", "set", "key", "k", "size", "abc"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"size 5x", block("cmd", "set", "key", "k", "size", "5x"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"negative size", block("cmd", "set", "key", "k", "size", "-1"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"signed size", block("cmd", "set", "key", "k", "size", "+1"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"size over 31 bits", block("cmd", "set", "key", "k", "size", "2147483648"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"expires abc", block("cmd", "set", "key", "k", "size", "1", "expires", "abc"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"negative expires", block("cmd", "update", "key", "k", "size", "1", "expires", "-5"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"expires overflows", block("cmd", "set", "key", "k", "size", "1", "expires", "9223372036854775808"), uwsgi.CacheRequest{}, uwsgi.ErrMalformed},
		{"truncated", []byte("\x03\x00cmd\x03\x00ge"), uwsgi.CacheRequest{}, uwsgi.ErrTruncated},
		{"empty key name", []byte("\x03\x00cmd\x03\x00get\x00\x00\x01\x00k"), uwsgi.CacheRequest{}, uwsgi.ErrEmptyKey},
	}
	for _, tt := range tests {
		got, err := uwsgi.ParseCacheRequest(tt.in)
		if !cacheReqEqual(got, tt.want) || !errorIs(err, tt.wantErr) {
			t.Errorf("%s: ParseCacheRequest(%q) = %+v, %v; want %+v, %v", tt.name, tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCacheReply(t *testing.T) {
	tests := []struct {
		get     bool
		value   string
		expires int64
		want    string
		rep     uwsgi.CacheReply
	}{
		{false, "", 0, "\x6f\x0c\x00\x11\x06\x00status\x02\x00ok", uwsgi.CacheReply{Status: "ok"}},
		{false, "ignored", 99, "\x6f\x0c\x00\x11\x06\x00status\x02\x00ok", uwsgi.CacheReply{Status: "ok"}},
		{true, "HELLO", 0, "\x6f\x15\x00\x11\x06\x00status\x02\x00ok\x04\x00size\x01\x005HELLO", uwsgi.CacheReply{Status: "ok", Size: 5}},
		{true, "XYZ", 1795318955,
			"\x6f\x2a\x00\x11\x06\x00status\x02\x00ok\x04\x00size\x01\x003\x07\x00expires\x0a\x001795318955XYZ",
			uwsgi.CacheReply{Status: "ok", Size: 3, Expires: 1795318955}},
		{true, "", 0, "\x6f\x15\x00\x11\x06\x00status\x02\x00ok\x04\x00size\x01\x000", uwsgi.CacheReply{Status: "ok"}},
		{true, "v", -1, "\x6f\x15\x00\x11\x06\x00status\x02\x00ok\x04\x00size\x01\x001v", uwsgi.CacheReply{Status: "ok", Size: 1}},
	}
	for _, tt := range tests {
		got := uwsgi.AppendCacheReply([]byte("pre"), tt.get, []byte(tt.value), tt.expires)
		if string(got) != "pre"+tt.want {
			t.Errorf("AppendCacheReply(%v, %q, %d) = %q, want %q", tt.get, tt.value, tt.expires, got, "pre"+tt.want)
			continue
		}
		p, n, _, err := uwsgi.Extract(got[3:], uwsgi.MaxSize)
		if err != nil || n == 0 {
			t.Fatalf("Extract(AppendCacheReply) = n %d, %v", n, err)
		}
		rep, err := uwsgi.ParseCacheReply(p.Payload)
		if err != nil || rep != tt.rep {
			t.Errorf("ParseCacheReply(AppendCacheReply(%v, %q, %d)) = %+v, %v; want %+v", tt.get, tt.value, tt.expires, rep, err, tt.rep)
		}
	}
	big := bytes.Repeat([]byte("v"), 100000)
	got := uwsgi.AppendCacheReply(nil, true, big, 0)
	p, n, _, err := uwsgi.Extract(got, uwsgi.MaxSize)
	if rep, perr := uwsgi.ParseCacheReply(p.Payload); err != nil || perr != nil || rep.Size != len(big) || !bytes.Equal(got[n:], big) {
		t.Errorf("AppendCacheReply(100000-byte value) = %+v, %v, %v", rep, err, perr)
	}
}

func TestParseCacheReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uwsgi.CacheReply
		wantErr error
	}{
		{"ok", "\x06\x00status\x02\x00ok", uwsgi.CacheReply{Status: "ok"}, nil},
		{"other status kept", "\x06\x00status\x08\x00notfound", uwsgi.CacheReply{Status: "notfound"}, nil},
		{"unknown keys ignored", "\x01\x00x\x01\x00y\x06\x00status\x02\x00ok", uwsgi.CacheReply{Status: "ok"}, nil},
		{"no status", "\x04\x00size\x01\x005", uwsgi.CacheReply{Size: 5}, uwsgi.ErrMalformed},
		{"empty status", "\x06\x00status\x00\x00", uwsgi.CacheReply{}, uwsgi.ErrMalformed},
		{"empty", "", uwsgi.CacheReply{}, uwsgi.ErrMalformed},
		{"bad size", "\x06\x00status\x02\x00ok\x04\x00size\x01\x00x", uwsgi.CacheReply{Status: "ok"}, uwsgi.ErrMalformed},
		{"negative size", "\x06\x00status\x02\x00ok\x04\x00size\x02\x00-1", uwsgi.CacheReply{Status: "ok"}, uwsgi.ErrMalformed},
		{"bad expires", "\x06\x00status\x02\x00ok\x07\x00expires\x01\x00x", uwsgi.CacheReply{Status: "ok"}, uwsgi.ErrMalformed},
		{"truncated", "\x06\x00status\x02\x00o", uwsgi.CacheReply{}, uwsgi.ErrTruncated},
	}
	for _, tt := range tests {
		got, err := uwsgi.ParseCacheReply([]byte(tt.in))
		if !errorIs(err, tt.wantErr) || (err == nil && got != tt.want) {
			t.Errorf("%s: ParseCacheReply(%q) = %+v, %v; want %+v, %v", tt.name, tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHello(t *testing.T) {
	hello := uwsgi.AppendHello([]byte("pre"))
	if want := "pre\x64\x10\x00\x00scripthost-ext/1"; string(hello) != want {
		t.Errorf("AppendHello(pre) = %q, want %q", hello, want)
	}
	reply := uwsgi.AppendHelloReply(nil)
	if want := "\x64\x10\x00\x02scripthost-ext/1"; string(reply) != want {
		t.Errorf("AppendHelloReply() = %q, want %q", reply, want)
	}
	tests := []struct {
		in   string
		want bool
	}{
		{string(hello[3:]), true},
		{"\x64\x00\x00\x00", false},
		{"\x64\x0f\x00\x00scripthost-ext/", false},
		{"\x64\x10\x00\x00scripthost-ext/2", false},
		{"\x65\x10\x00\x00scripthost-ext/1", false},
		{"\xad\x10\x00\x00scripthost-ext/1", false},
	}
	for _, tt := range tests {
		p, n, _, err := uwsgi.Extract([]byte(tt.in), uwsgi.MaxSize)
		if err != nil || n != len(tt.in) {
			t.Fatalf("Extract(%q) = n %d, %v", tt.in, n, err)
		}
		if got := uwsgi.IsHello(p); got != tt.want {
			t.Errorf("IsHello(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if b := uwsgi.CloseMark.Bytes(); b != [4]byte{0xc8, 0, 0, 0} {
		t.Errorf("CloseMark.Bytes() = %x, want c8000000", b)
	}
}

func TestErrorFrame(t *testing.T) {
	long := strings.Repeat("e", uwsgi.MaxSize+10)
	tests := []struct {
		code uwsgi.Code
		msg  string
		want string
	}{
		{uwsgi.CodeNotFound, "no such function", "\xff\x10\x00\x02no such function"},
		{uwsgi.CodeScript, "boom", "\xff\x04\x00\x04boom"},
		{uwsgi.CodeTooLarge, long, "\xff\xff\xff\x0a" + long[:uwsgi.MaxSize]},
	}
	for _, tt := range tests {
		got := uwsgi.AppendError([]byte("pre"), tt.code, tt.msg)
		if string(got) != "pre"+tt.want {
			t.Errorf("AppendError(%v, %.20q) = %.40q, want %.40q", tt.code, tt.msg, got, "pre"+tt.want)
			continue
		}
		h, _ := uwsgi.ParseHeader(got[3:])
		if !uwsgi.IsErrorFrame(h) {
			t.Errorf("IsErrorFrame(%v) = false, want true", h)
		}
	}
	// An error frame without a message is indistinguishable from a plain
	// generic response, which is not an error frame.
	if got := uwsgi.AppendError(nil, uwsgi.CodeFailed, ""); string(got) != "\xff\x00\x00\x00" {
		t.Errorf("AppendError(failed, \"\") = %q, want ff000000", got)
	}
	headers := []struct {
		h    uwsgi.Header
		want bool
	}{
		{uwsgi.Header{Modifier1: uwsgi.ModResponse, Size: 1, Modifier2: 2}, true},
		{uwsgi.Header{Modifier1: uwsgi.ModResponse, Size: 65535}, true},
		{uwsgi.Header{Modifier1: uwsgi.ModResponse, Modifier2: uwsgi.ResponseOK}, false},
		{uwsgi.Header{Modifier1: uwsgi.ModResponse, Modifier2: uwsgi.ResponseFailed}, false},
		{uwsgi.Header{Modifier1: uwsgi.ModRPC, Size: 5}, false},
		{uwsgi.Header{Modifier1: uwsgi.ModCache, Size: 12, Modifier2: uwsgi.CacheMagic}, false},
	}
	for _, tt := range headers {
		if got := uwsgi.IsErrorFrame(tt.h); got != tt.want {
			t.Errorf("IsErrorFrame(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestRemoteErrorIs(t *testing.T) {
	sentinels := []error{
		uwsgi.ErrNoResult, uwsgi.ErrNotFound, uwsgi.ErrScript, uwsgi.ErrBadRequest, uwsgi.ErrRefused,
		uwsgi.ErrExists, uwsgi.ErrUnavailable, uwsgi.ErrFailed, uwsgi.ErrTooLarge, uwsgi.ErrTimeout,
		uwsgi.ErrTruncated, uwsgi.ErrMalformed, uwsgi.ErrEmptyKey, uwsgi.ErrEmptyItem, uwsgi.ErrTooMany,
	}
	tests := []struct {
		code uwsgi.Code
		name string
		is   []error
	}{
		{uwsgi.CodeFailed, "failed", []error{uwsgi.ErrFailed}},
		{1, "code 1", nil},
		{uwsgi.CodeNotFound, "not found", []error{uwsgi.ErrNotFound, uwsgi.ErrNoResult}},
		{uwsgi.CodeNoResult, "no result", []error{uwsgi.ErrNoResult}},
		{uwsgi.CodeScript, "script error", []error{uwsgi.ErrScript, uwsgi.ErrNoResult}},
		{uwsgi.CodeBadRequest, "bad request", []error{uwsgi.ErrBadRequest}},
		{uwsgi.CodeRefused, "refused", []error{uwsgi.ErrRefused}},
		{uwsgi.CodeExists, "exists", []error{uwsgi.ErrExists}},
		{uwsgi.CodeTimeout, "timeout", []error{uwsgi.ErrTimeout}},
		{uwsgi.CodeUnavailable, "unavailable", []error{uwsgi.ErrUnavailable}},
		{uwsgi.CodeTooLarge, "too large", []error{uwsgi.ErrTooLarge}},
		{11, "code 11", nil},
		{255, "code 255", nil},
	}
	for _, tt := range tests {
		if got := tt.code.String(); got != tt.name {
			t.Errorf("Code(%d).String() = %q, want %q", uint8(tt.code), got, tt.name)
		}
		err := fmt.Errorf("call: %w", &uwsgi.RemoteError{Code: tt.code, Message: "m"})
		for _, s := range sentinels {
			if got, want := errors.Is(err, s), slices.Contains(tt.is, s); got != want {
				t.Errorf("errors.Is(RemoteError{%v}, %v) = %v, want %v", tt.code, s, got, want)
			}
		}
		var re *uwsgi.RemoteError
		if !errors.As(err, &re) || re.Code != tt.code || re.Message != "m" {
			t.Errorf("errors.As(RemoteError{%v}) = %v", tt.code, re)
		}
		if (&uwsgi.RemoteError{Code: tt.code}).Error() == "" {
			t.Errorf("RemoteError{%v}.Error() is empty", tt.code)
		}
	}
}

func TestModifierString(t *testing.T) {
	tests := []struct {
		m    uwsgi.Modifier
		want string
	}{
		{uwsgi.ModWSGI, "wsgi(0)"}, {uwsgi.ModPSGI, "psgi(5)"}, {uwsgi.ModLua, "lua(6)"}, {uwsgi.ModRack, "rack(7)"},
		{uwsgi.ModJVM, "jvm(8)"}, {uwsgi.ModCGI, "cgi(9)"}, {uwsgi.ModManagement, "management(10)"}, {uwsgi.ModGo, "go(11)"},
		{uwsgi.ModPHP, "php(14)"}, {uwsgi.ModMono, "mono(15)"}, {uwsgi.ModSpooler, "spooler(17)"}, {uwsgi.ModSymcall, "symcall(18)"},
		{uwsgi.ModSSI, "ssi(19)"}, {uwsgi.ModEval, "eval(22)"}, {uwsgi.ModXSLT, "xslt(23)"}, {uwsgi.ModV8, "v8(24)"},
		{uwsgi.ModGridFS, "gridfs(25)"}, {uwsgi.ModFastFunc, "fastfunc(26)"}, {uwsgi.ModGlusterFS, "glusterfs(27)"},
		{uwsgi.ModRADOS, "rados(28)"}, {uwsgi.ModWSGIStripped, "wsgi-stripped(30)"}, {uwsgi.ModMessage, "message(31)"},
		{uwsgi.ModCharArray, "char-array(32)"}, {uwsgi.ModMarshal, "marshal(33)"}, {uwsgi.ModWebDAV, "webdav(35)"},
		{uwsgi.ModSNMP, "snmp(48)"}, {uwsgi.ModHTTPResponse, "http-response(72)"}, {uwsgi.ModMulticastAnnounce, "multicast-announce(73)"},
		{uwsgi.ModMulticast, "multicast(74)"}, {uwsgi.ModClusterNode, "cluster-node(95)"}, {uwsgi.ModRemoteLog, "remote-log(96)"},
		{uwsgi.ModReloadBrutal, "reload-brutal(97)"}, {uwsgi.ModReloadGraceful, "reload-graceful(98)"},
		{uwsgi.ModConfigRequest, "config-request(99)"}, {uwsgi.ModPing, "ping(100)"}, {uwsgi.ModEcho, "echo(101)"},
		{uwsgi.ModLegion, "legion(109)"}, {uwsgi.ModSignal, "signal(110)"}, {uwsgi.ModCache, "cache(111)"},
		{uwsgi.ModEmperor, "emperor(115)"}, {uwsgi.ModCorerouter, "corerouter(123)"}, {uwsgi.ModRPC, "rpc(173)"},
		{uwsgi.ModCloseMark, "close-mark(200)"}, {uwsgi.ModSubscription, "subscription(224)"}, {uwsgi.ModExample, "example(250)"},
		{uwsgi.ModResponse, "response(255)"},
		{1, "1"}, {2, "2"}, {29, "29"}, {254, "254"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("Modifier(%d).String() = %q, want %q", uint8(tt.m), got, tt.want)
		}
	}
}

func TestModifierIsRequest(t *testing.T) {
	// PROTOCOL.md section 8.1: the modifiers whose payload is a vars block
	// answered with raw HTTP.
	want := map[uwsgi.Modifier]bool{
		0: true, 5: true, 6: true, 7: true, 8: true, 9: true, 11: true, 14: true, 15: true, 18: true,
		19: true, 23: true, 24: true, 25: true, 27: true, 28: true, 30: true, 35: true,
	}
	for m := range 256 {
		if got := uwsgi.Modifier(m).IsRequest(); got != want[uwsgi.Modifier(m)] {
			t.Errorf("Modifier(%d).IsRequest() = %v, want %v", m, got, want[uwsgi.Modifier(m)])
		}
	}
}

func TestRequestVars(t *testing.T) {
	tests := []struct {
		name string
		r    *http.Request
		cl   int64
		want []pair
	}{
		{
			name: "server request",
			r: &http.Request{
				Method:     http.MethodPost,
				URL:        &url.URL{Path: "/a b/c", RawPath: "/a%20b/c", RawQuery: "x=1&y=2"},
				Proto:      "HTTP/1.1",
				Host:       "example.com:8080",
				RemoteAddr: "192.0.2.7:52000",
				RequestURI: "/a%20b/c?x=1&y=2",
				Header: http.Header{
					"Content-Type":    {"text/plain"},
					"Cookie":          {"a=1", "b=2"},
					"X-Custom-Header": {"yes"},
					"Accept":          {"*/*"},
					"Host":            {"ignored.example"},
				},
			},
			cl: 7,
			want: []pair{
				{"QUERY_STRING", "x=1&y=2"}, {"REQUEST_METHOD", "POST"}, {"CONTENT_TYPE", "text/plain"},
				{"CONTENT_LENGTH", "7"}, {"REQUEST_URI", "/a%20b/c?x=1&y=2"}, {"PATH_INFO", "/a b/c"},
				{"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_SCHEME", "http"}, {"REMOTE_ADDR", "192.0.2.7"},
				{"REMOTE_PORT", "52000"}, {"SERVER_PORT", "8080"}, {"SERVER_NAME", "example.com"},
				{"HTTP_HOST", "example.com:8080"}, {"HTTP_ACCEPT", "*/*"}, {"HTTP_CONTENT_TYPE", "text/plain"},
				{"HTTP_COOKIE", "a=1"}, {"HTTP_COOKIE", "b=2"}, {"HTTP_X_CUSTOM_HEADER", "yes"},
			},
		},
		{
			name: "TLS, defaults",
			r:    &http.Request{URL: &url.URL{}, Host: "secure.example", TLS: &tls.ConnectionState{}},
			cl:   -1,
			want: []pair{
				{"QUERY_STRING", ""}, {"REQUEST_METHOD", "GET"}, {"CONTENT_TYPE", ""}, {"CONTENT_LENGTH", ""},
				{"REQUEST_URI", "/"}, {"PATH_INFO", "/"}, {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REQUEST_SCHEME", "https"},
				{"HTTPS", "on"}, {"SERVER_PORT", "443"}, {"SERVER_NAME", "secure.example"}, {"HTTP_HOST", "secure.example"},
			},
		},
		{
			name: "no URL",
			r:    &http.Request{Method: http.MethodHead, Proto: "HTTP/1.0", RemoteAddr: "[2001:db8::1]:4000"},
			want: []pair{
				{"QUERY_STRING", ""}, {"REQUEST_METHOD", "HEAD"}, {"CONTENT_TYPE", ""}, {"CONTENT_LENGTH", ""},
				{"REQUEST_URI", "/"}, {"PATH_INFO", "/"}, {"SERVER_PROTOCOL", "HTTP/1.0"}, {"REQUEST_SCHEME", "http"},
				{"REMOTE_ADDR", "2001:db8::1"}, {"REMOTE_PORT", "4000"}, {"SERVER_PORT", "80"}, {"SERVER_NAME", ""},
				{"HTTP_HOST", ""},
			},
		},
	}
	client, err := http.NewRequest(http.MethodGet, "https://example.org/p%2Fq?z=9", nil)
	if err != nil {
		t.Fatal(err)
	}
	client.Header.Set("User-Agent", "test/1.0")
	tests = append(tests, struct {
		name string
		r    *http.Request
		cl   int64
		want []pair
	}{
		name: "client request",
		r:    client,
		want: []pair{
			{"QUERY_STRING", "z=9"}, {"REQUEST_METHOD", "GET"}, {"CONTENT_TYPE", ""}, {"CONTENT_LENGTH", ""},
			{"REQUEST_URI", "/p%2Fq?z=9"}, {"PATH_INFO", "/p/q"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
			{"REQUEST_SCHEME", "https"}, {"HTTPS", "on"}, {"SERVER_PORT", "443"}, {"SERVER_NAME", "example.org"},
			{"HTTP_HOST", "example.org"}, {"HTTP_USER_AGENT", "test/1.0"},
		},
	})
	for _, tt := range tests {
		got := pairsOf(uwsgi.RequestVars(tt.r, tt.cl))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: RequestVars =\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}

func TestRequestVarsRequestURI(t *testing.T) {
	// RequestURI undoes RequestVars.
	for _, target := range []string{
		"http://example.com/",
		"http://example.com:8080/a%20b/c?x=1&y=2",
		"https://example.org/p?q",
		"https://example.org:8443/",
		"http://[2001:db8::1]:8080/v6",
	} {
		r, err := http.NewRequest(http.MethodGet, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := uwsgi.RequestURI(uwsgi.RequestVars(r, 0)); got != target {
			t.Errorf("RequestURI(RequestVars(%s)) = %s", target, got)
		}
	}
}

func TestBuildRequest(t *testing.T) {
	r := &http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: "/post"}, Proto: "HTTP/1.1", Host: "localhost",
		Header: http.Header{"Content-Type": {"text/plain"}},
	}
	extra := uwsgi.Vars{}.Add("SCRIPT_NAME", "/app").Add("CONTENT_TYPE", "text/html")
	body := []byte("hello world")
	got, err := uwsgi.BuildRequest(uwsgi.ModLua, 3, r, extra, body)
	if err != nil {
		t.Fatalf("BuildRequest = %v", err)
	}
	p, n, _, err := uwsgi.Extract(got, uwsgi.MaxSize)
	if err != nil || n == 0 || p.Modifier1 != uwsgi.ModLua || p.Modifier2 != 3 {
		t.Fatalf("Extract(BuildRequest) = %v, n %d, %v; want [lua(6), _, 3]", p.Header, n, err)
	}
	if !bytes.Equal(got[n:], body) {
		t.Errorf("BuildRequest body = %q, want %q", got[n:], body)
	}
	vs, err := uwsgi.ParseVars(nil, p.Payload, 0)
	if err != nil {
		t.Fatalf("ParseVars(BuildRequest) = %v", err)
	}
	want := append(pairsOf(uwsgi.RequestVars(r, int64(len(body)))), pairsOf(extra)...)
	if got := pairsOf(vs); !slices.Equal(got, want) {
		t.Errorf("BuildRequest vars =\n%q\nwant\n%q", got, want)
	}
	if got := vs.Get("CONTENT_TYPE"); got != "text/html" {
		t.Errorf("CONTENT_TYPE = %q, want the extra var's text/html", got)
	}
	if got := uwsgi.ParseContentLength([]byte(vs.Get("CONTENT_LENGTH"))); got != int64(len(body)) {
		t.Errorf("CONTENT_LENGTH = %d, want %d", got, len(body))
	}

	// The vars must fit a header's 16-bit size.
	fits := uwsgi.RequestVars(r, 0).Size()
	tests := []struct {
		extra   uwsgi.Vars
		wantErr error
	}{
		{uwsgi.Vars{}.Add("X", strings.Repeat("x", uwsgi.MaxSize-fits-5)), nil},
		{uwsgi.Vars{}.Add("X", strings.Repeat("x", uwsgi.MaxSize-fits-4)), uwsgi.ErrTooLarge},
		{uwsgi.Vars{}.Add("X", strings.Repeat("x", 70000)), uwsgi.ErrTooLarge},
		{uwsgi.Vars{}.Add("", "x"), uwsgi.ErrEmptyKey},
	}
	for _, tt := range tests {
		out, err := uwsgi.BuildRequest(uwsgi.ModWSGI, 0, r, tt.extra, nil)
		if !errorIs(err, tt.wantErr) {
			t.Errorf("BuildRequest(extra of %d bytes) = %v, want %v", tt.extra.Size(), err, tt.wantErr)
		}
		if err == nil && len(out) != uwsgi.HeaderSize+uwsgi.MaxSize {
			t.Errorf("BuildRequest(extra of %d bytes) = %d bytes, want %d", tt.extra.Size(), len(out), uwsgi.HeaderSize+uwsgi.MaxSize)
		}
	}
}

func TestRequestURI(t *testing.T) {
	tests := []struct {
		name string
		vars []string // key, value, ...
		want string
	}{
		{"nginx_get", []string{"QUERY_STRING", "x=1", "REQUEST_URI", "/py/env?x=1", "PATH_INFO", "/py/env",
			"REQUEST_SCHEME", "http", "SERVER_PORT", "30380", "SERVER_NAME", "localhost", "HTTP_HOST", "localhost"},
			"http://localhost/py/env?x=1"},
		{"host with port", []string{"HTTP_HOST", "localhost:30380", "PATH_INFO", "/x"}, "http://localhost:30380/x"},
		{"no query", []string{"HTTP_HOST", "h", "PATH_INFO", "/x", "QUERY_STRING", ""}, "http://h/x"},
		{"UWSGI_SCHEME wins", []string{"UWSGI_SCHEME", "https", "REQUEST_SCHEME", "http", "HTTP_HOST", "h"}, "https://h/"},
		{"REQUEST_SCHEME", []string{"REQUEST_SCHEME", "https", "HTTP_HOST", "h"}, "https://h/"},
		{"HTTPS on", []string{"HTTPS", "on", "HTTP_HOST", "h"}, "https://h/"},
		{"HTTPS ON", []string{"HTTPS", "ON", "HTTP_HOST", "h"}, "https://h/"},
		{"HTTPS 1", []string{"HTTPS", "1", "HTTP_HOST", "h"}, "https://h/"},
		{"HTTPS off", []string{"HTTPS", "off", "HTTP_HOST", "h"}, "http://h/"},
		{"REQUEST_SCHEME over HTTPS", []string{"REQUEST_SCHEME", "http", "HTTPS", "on", "HTTP_HOST", "h"}, "http://h/"},
		{"SERVER_NAME, default port", []string{"SERVER_NAME", "example.com", "SERVER_PORT", "80"}, "http://example.com/"},
		{"SERVER_NAME, other port", []string{"SERVER_NAME", "example.com", "SERVER_PORT", "8080"}, "http://example.com:8080/"},
		{"SERVER_NAME, no port", []string{"SERVER_NAME", "example.com"}, "http://example.com/"},
		{"https default port", []string{"HTTPS", "on", "SERVER_NAME", "example.com", "SERVER_PORT", "443"}, "https://example.com/"},
		{"https on port 80", []string{"HTTPS", "on", "SERVER_NAME", "example.com", "SERVER_PORT", "80"}, "https://example.com:80/"},
		{"http on port 443", []string{"SERVER_NAME", "example.com", "SERVER_PORT", "443"}, "http://example.com:443/"},
		{"IPv6 SERVER_NAME", []string{"SERVER_NAME", "2001:db8::1", "SERVER_PORT", "8080"}, "http://[2001:db8::1]:8080/"},
		{"HTTP_HOST over SERVER_NAME", []string{"HTTP_HOST", "a.example", "SERVER_NAME", "b.example", "SERVER_PORT", "8080"}, "http://a.example/"},
		{"SCRIPT_NAME + PATH_INFO", []string{"HTTP_HOST", "h", "SCRIPT_NAME", "/app", "PATH_INFO", "/env"}, "http://h/app/env"},
		{"SCRIPT_NAME only", []string{"HTTP_HOST", "h", "SCRIPT_NAME", "/app"}, "http://h/app"},
		{"empty PATH_INFO", []string{"HTTP_HOST", "h", "PATH_INFO", "", "REQUEST_URI", "/ignored"}, "http://h/"},
		{"PATH_INFO escaped", []string{"HTTP_HOST", "h", "PATH_INFO", "/a b/é", "QUERY_STRING", "q=a%20b"}, "http://h/a%20b/%C3%A9?q=a%20b"},
		{"PATH_INFO without slash", []string{"HTTP_HOST", "h", "PATH_INFO", "x"}, "http://h/x"},
		{"REQUEST_URI fallback", []string{"HTTP_HOST", "h", "REQUEST_URI", "/a%20b/c?x=1", "QUERY_STRING", "x=1"}, "http://h/a%20b/c?x=1"},
		{"REQUEST_URI query not used", []string{"HTTP_HOST", "h", "REQUEST_URI", "/a?x=1"}, "http://h/a"},
		{"REQUEST_URI bad escape", []string{"HTTP_HOST", "h", "REQUEST_URI", "/%zz"}, "http://h/"},
		{"REQUEST_URI with PATH_INFO ignored", []string{"HTTP_HOST", "h", "PATH_INFO", "/p", "REQUEST_URI", "/r"}, "http://h/p"},
		{"duplicates, last wins", []string{"HTTP_HOST", "a", "HTTP_HOST", "b", "PATH_INFO", "/1", "PATH_INFO", "/2"}, "http://b/2"},
	}
	for _, tt := range tests {
		var vs uwsgi.Vars
		for i := 0; i+1 < len(tt.vars); i += 2 {
			vs = vs.Add(tt.vars[i], tt.vars[i+1])
		}
		if got := uwsgi.RequestURI(vs); got != tt.want {
			t.Errorf("%s: RequestURI(%q) = %q, want %q", tt.name, tt.vars, got, tt.want)
		}
	}
}

// TestRequestURIIPv6 checks IPv6 literals in SERVER_NAME: RequestURI must
// bracket them whatever the port, and RequestVars must send the same form
// of SERVER_NAME whether the Host has a port or not.
func TestRequestURIIPv6(t *testing.T) {
	tests := []struct {
		name, port, want string
	}{
		{"2001:db8::1", "8080", "http://[2001:db8::1]:8080/"},
		{"2001:db8::1", "80", "http://[2001:db8::1]/"},
		{"2001:db8::1", "", "http://[2001:db8::1]/"},
	}
	for _, tt := range tests {
		vs := uwsgi.Vars{}.Add("SERVER_NAME", tt.name).Add("SERVER_PORT", tt.port)
		got := uwsgi.RequestURI(vs)
		if got != tt.want {
			t.Errorf("RequestURI(SERVER_NAME %s, SERVER_PORT %q) = %q, want %q", tt.name, tt.port, got, tt.want)
		}
		if _, err := url.Parse(got); err != nil {
			t.Errorf("RequestURI(SERVER_NAME %s, SERVER_PORT %q) = %q, which does not parse: %v", tt.name, tt.port, got, err)
		}
	}
	for _, host := range []string{"[2001:db8::1]:8080", "[2001:db8::1]"} {
		r := &http.Request{URL: &url.URL{Path: "/"}, Host: host}
		if got := uwsgi.RequestVars(r, 0).Get("SERVER_NAME"); got != "2001:db8::1" {
			t.Errorf("RequestVars(Host %s) SERVER_NAME = %q, want %q", host, got, "2001:db8::1")
		}
	}
}

func TestFormatError(t *testing.T) {
	_, err := uwsgi.ParseVars(nil, []byte("\x01\x00a\x05\x00ab"), 0)
	var fe *uwsgi.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("ParseVars error %v is not a *FormatError", err)
	}
	if fe.What != "vars" || fe.Offset != 3 || fe.Err != uwsgi.ErrTruncated || fe.Unwrap() != uwsgi.ErrTruncated {
		t.Errorf("FormatError = %+v, want {vars 3 ErrTruncated}", *fe)
	}
	if fe.Error() == "" {
		t.Error("FormatError.Error() is empty")
	}
	if got := formatOffset(fmt.Errorf("wrapped: %w", err)); got != 3 {
		t.Errorf("offset through wrapping = %d, want 3", got)
	}
}
