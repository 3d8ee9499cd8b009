package host_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

func TestListensOn(t *testing.T) {
	tcp := startServer(t, "tcp", host.Limits{}, nil)
	_, port, _ := net.SplitHostPort(tcp.addr)
	p, _ := strconv.Atoi(port)
	other := strconv.Itoa(p + 1)

	anyL, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	go tcp.srv.Serve(anyL)
	_, anyPort, _ := net.SplitHostPort(anyL.Addr().String())

	sock := filepath.Join(t.TempDir(), "s.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go tcp.srv.Serve(ul)
	waitFor(t, "the listeners to be served", func() bool {
		return tcp.srv.ListensOn(sock) && tcp.srv.ListensOn("127.0.0.1:"+anyPort)
	})

	tests := []struct {
		node string
		want bool
	}{
		{"127.0.0.1:" + port, true},
		{"localhost:" + port, true},
		{":" + port, true},
		{"127.0.0.1:" + other, false},
		{"192.0.2.1:" + port, false},
		{"127.0.0.1:" + anyPort, true},
		{"localhost:" + anyPort, true},
		{"192.0.2.1:" + anyPort, false},
		{sock, true},
		{"unix:" + sock, true},
		{filepath.Dir(sock) + "/./s.sock", true},
		{sock + "x", false},
		{"no port", false},
	}
	for _, tc := range tests {
		if got := tcp.srv.ListensOn(tc.node); got != tc.want {
			t.Errorf("ListensOn(%q) = %v, want %v", tc.node, got, tc.want)
		}
	}
}

// TestSelfRPCInProcess: uwsgi.rpc to the host's own listener runs
// in-process, nested up to api.MaxSelfRPCDepth, and fails at once past it
// instead of waiting over the network.
func TestSelfRPCInProcess(t *testing.T) {
	var rpcFunc api.Func
	for _, f := range api.Funcs() {
		if f.Name == "rpc" {
			rpcFunc = f
		}
	}
	var ts *testServer
	ts = startServer(t, "tcp", host.Limits{}, func(srv *host.Server) {
		env := api.NewRegistrations(srv.State, t.TempDir())
		srv.State.RPC.Register("down", func(ctx context.Context, args [][]byte) ([]byte, error) {
			n, _ := strconv.Atoi(string(args[0]))
			if n == 0 {
				return []byte("bottom"), nil
			}
			v, err := rpcFunc.Invoke(ctx, env, []api.Value{ts.addr, "down", strconv.Itoa(n - 1)})
			if err != nil {
				return nil, err
			}
			return []byte(v.(string)), nil
		})
	})
	c := uwsgi.NewClient(ts.addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	got, err := c.CallString(ctx, "down", strconv.Itoa(api.MaxSelfRPCDepth))
	if err != nil || got != "bottom" {
		t.Errorf("rpc %d deep = %q, %v; want bottom", api.MaxSelfRPCDepth, got, err)
	}
	_, err = c.CallString(ctx, "down", strconv.Itoa(api.MaxSelfRPCDepth+1))
	if err == nil || !strings.Contains(err.Error(), "too deep") {
		t.Errorf("rpc %d deep: %v, want the depth error", api.MaxSelfRPCDepth+1, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("the calls ran into the client's timeout")
	}
}
