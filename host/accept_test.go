package host_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/scripthost/scripthost/api/uwsgi"
	"github.com/scripthost/scripthost/host"
)

// Calls that block must not stop the listener from taking new
// connections, and their goroutines end with them.
func TestAcceptWhileCallsBlock(t *testing.T) {
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
			waitGoroutines(t, base)
		})
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Plain connections end with the server's close after their answers:
// one-shot clients leave no socket behind, a packet sent after the answer
// is not read, and a packet begun in a pipeline still has the header
// timeout to arrive whole.
func TestPlainConnectionsClose(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ts := startServer(t, network, host.Limits{HeaderTimeout: 200 * time.Millisecond}, nil)
			warm := ts.dial(t)
			ping(t, warm)
			warm.Close()

			t.Run("one-shot clients leave no socket behind", func(t *testing.T) {
				base := openFDs(t)
				for range 200 {
					c := ts.dial(t)
					ping(t, c)
					expectClosed(t, c)
					c.Close()
				}
				waitFor(t, "the server's sockets closed", func() bool {
					return openFDs(t) <= base
				})
			})
			t.Run("a pipelined partial packet meets the header timeout", func(t *testing.T) {
				c := ts.dial(t)
				mustWrite(t, c, append(append([]byte(nil), pingReq...), pingReq[:2]...))
				if got := mustRead(t, c, len(pongResp)); !bytes.Equal(got, pongResp) {
					t.Fatalf("pong = % x, want % x", got, pongResp)
				}
				expectClosed(t, c)
			})
		})
	}
}

// One-shot connections (framed and raw answers) from many clients at
// once must all be served.
func TestAcceptUnderChurn(t *testing.T) {
	ts := startServer(t, "tcp", host.Limits{}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				c, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(ioTimeout))
				if (g+i)%2 == 0 {
					_, err = c.Write(pingReq)
					if err == nil {
						_, err = io.ReadFull(c, make([]byte, len(pongResp)))
					}
				} else {
					_, err = c.Write(rpcReq(t, uwsgi.RPCRaw, "hello"))
					if err == nil {
						var got []byte
						got, err = readUntilClose(c)
						if err == nil && string(got) != "Hello World" {
							err = fmt.Errorf("raw hello answered %q", got)
						}
					}
				}
				c.Close()
				if err != nil {
					errs <- fmt.Errorf("client %d, call %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
