package host_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// Connections are served by accept workers that serve each connection to
// its end: calls that block must not stop the listener from taking new
// connections, and the workers left once they end are bounded.
func TestAcceptWorkers(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			var g *gate
			ts := startServer(t, network, host.Limits{}, func(s *host.Server) { g = registerGate(t, s.State) })
			warm := ts.dial(t)
			ping(t, warm)
			warm.Close()
			base := runtime.NumGoroutine()

			const blocked = 12
			conns := make([]net.Conn, blocked)
			for i := range conns {
				conns[i] = ts.dial(t)
				mustWrite(t, conns[i], rpcReq(t, uwsgi.RPCRaw, "block", fmt.Sprint(i)))
			}
			for range blocked {
				g.waitEntered(t) // every call runs at once: each got a worker
			}
			c := ts.dial(t)
			ping(t, c) // and the listener still answers
			c.Close()

			for range blocked {
				g.releaseOne(t)
			}
			for i, c := range conns {
				if got, err := readUntilClose(c); err != nil || string(got) != "ok" {
					t.Errorf("connection %d got %q, %v, want \"ok\" then the close", i, got, err)
				}
			}
			// 12 connections served at once leave at most the idle workers.
			waitGoroutines(t, base+host.MaxIdleAcceptors()-1)
		})
	}
}
