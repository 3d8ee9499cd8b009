package uwsgi_test

import (
	"strconv"
	"testing"

	"github.com/scripthost/scripthost/api/uwsgi"
)

// benchPacket returns a vector's request packet and its payload.
func benchPacket(b *testing.B, name string) (packet, payload []byte) {
	b.Helper()
	raw := vecFile(b, name+".req.bin")
	p, n, _, err := uwsgi.Extract(raw, uwsgi.MaxSize)
	if err != nil || n == 0 {
		b.Fatalf("Extract(%s) = n %d, %v", name, n, err)
	}
	return raw[:n], p.Payload
}

// BenchmarkParseVarsNginx parses the vars block nginx sent for a GET with
// two cookies (20 pairs, 443 bytes) into a reused Vars: 0 allocs/op.
func BenchmarkParseVarsNginx(b *testing.B) {
	_, block := benchPacket(b, "nginx_get")
	dst := make(uwsgi.Vars, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		var err error
		if dst, err = uwsgi.ParseVars(dst[:0], block, 128); err != nil {
			b.Fatal(err)
		}
	}
	if len(dst) != 20 {
		b.Fatalf("ParseVars = %d pairs, want 20", len(dst))
	}
}

func BenchmarkEachVar(b *testing.B) {
	_, block := benchPacket(b, "nginx_get")
	b.ReportAllocs()
	b.SetBytes(int64(len(block)))
	n := 0
	for b.Loop() {
		n = 0
		if err := uwsgi.EachVar(block, func(k, v []byte) bool { n++; return true }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 20 {
		b.Fatalf("EachVar = %d pairs, want 20", n)
	}
}

func BenchmarkParseArray(b *testing.B) {
	for _, name := range []string{"rpc_hellolua_args", "rpc_300_items_python"} {
		b.Run(name, func(b *testing.B) {
			_, arr := benchPacket(b, name)
			dst := make([][]byte, 0, 256)
			b.ReportAllocs()
			b.SetBytes(int64(len(arr)))
			for b.Loop() {
				var err error
				if dst, err = uwsgi.ParseArray(dst[:0], arr, 255); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendRPCHeader(b *testing.B) {
	for _, n := range []int{11, uwsgi.MaxSize, 100000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf = uwsgi.AppendRPCHeader(buf[:0], n)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	for _, name := range []string{"rpc_hello", "nginx_get"} {
		b.Run(name, func(b *testing.B) {
			packet, _ := benchPacket(b, name)
			b.ReportAllocs()
			b.SetBytes(int64(len(packet)))
			for b.Loop() {
				if _, n, _, err := uwsgi.Extract(packet, 4096); n != len(packet) || err != nil {
					b.Fatalf("Extract = n %d, %v", n, err)
				}
			}
		})
	}
}
