package uwsgi

import (
	"errors"
	"testing"
)

func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr, network, address string
		bad                    bool
	}{
		{addr: "127.0.0.1:3031", network: "tcp", address: "127.0.0.1:3031"},
		{addr: ":3031", network: "tcp", address: ":3031"},
		{addr: "[::1]:3031", network: "tcp", address: "[::1]:3031"},
		{addr: "localhost:3031", network: "tcp", address: "localhost:3031"},
		{addr: "127.0.0.1:0", network: "tcp", address: "127.0.0.1:0"},
		{addr: "/abs/x.sock", network: "unix", address: "/abs/x.sock"},
		{addr: "/abs", network: "unix", address: "/abs"},
		{addr: "./x", network: "unix", address: "./x"},
		{addr: "../run/x.sock", network: "unix", address: "../run/x.sock"},
		{addr: "run/x.sock", network: "unix", address: "run/x.sock"},
		{addr: "x.sock", network: "unix", address: "x.sock"},
		{addr: "/run/a:b.sock", network: "unix", address: "/run/a:b.sock"}, // a path, not host:port
		{addr: "unix:/run/x.sock", network: "unix", address: "/run/x.sock"},
		{addr: "unix:x", network: "unix", address: "x"},
		{addr: "unix:@abstract", network: "unix", address: "@abstract"},
		{addr: "@abstract", network: "unix", address: "@abstract"},
		{addr: "", bad: true},
		{addr: "host", bad: true},
		{addr: "localhost", bad: true},
		{addr: "x", bad: true},
		{addr: "127.0.0.1", bad: true},
		{addr: "localhost:", bad: true},
		{addr: "::1", bad: true},
		{addr: "a:b:c", bad: true},
		{addr: "unix:", bad: true},
		{addr: "@", bad: true},
	}
	for _, tt := range tests {
		network, address, err := SplitAddr(tt.addr)
		if tt.bad {
			if !errors.Is(err, ErrAddr) {
				t.Errorf("SplitAddr(%q) = %q, %q, %v, want ErrAddr", tt.addr, network, address, err)
			}
			continue
		}
		if err != nil || network != tt.network || address != tt.address {
			t.Errorf("SplitAddr(%q) = %q, %q, %v, want %q, %q", tt.addr, network, address, err, tt.network, tt.address)
		}
	}
}
