package host_test

import (
	"context"
	"errors"
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

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Plain connections kept open after a framed answer linger with the
// accept workers: whatever the client does next must work as before.
func TestLingeringConnections(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ts := startServer(t, network, host.Limits{HeaderTimeout: time.Second}, nil)
			warm := ts.dial(t)
			ping(t, warm)
			warm.Close()

			t.Run("one-shot clients leave no socket behind", func(t *testing.T) {
				base := openFDs(t)
				for range 200 {
					c := ts.dial(t)
					ping(t, c)
					c.Close()
				}
				deadline := time.Now().Add(ioTimeout)
				for openFDs(t) > base+2 { // the accept workers' own, at most
					if time.Now().After(deadline) {
						t.Fatalf("%d descriptors open, %d before 200 one-shot pings", openFDs(t), base)
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
			t.Run("the next packet, at once or later, is answered", func(t *testing.T) {
				for _, delay := range []time.Duration{0, 300 * time.Microsecond, 3 * time.Millisecond, 50 * time.Millisecond} {
					c := ts.dial(t)
					for range 3 {
						ping(t, c)
						time.Sleep(delay)
					}
					c.Close()
				}
			})
			t.Run("a partial packet still meets the header timeout", func(t *testing.T) {
				c := ts.dial(t)
				ping(t, c)
				mustWrite(t, c, pingReq[:2])
				start := time.Now()
				expectClosed(t, c)
				if d := time.Since(start); d < 500*time.Millisecond {
					t.Fatalf("closed after %v, before the header timeout", d)
				}
			})
		})
	}
}

// Shutdown closes connections that linger, and does not wait for them.
func TestLingeringShutdown(t *testing.T) {
	st := newState(t)
	srv := &host.Server{State: st, Logger: quietLogger}
	l := listen(t, "tcp")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	conns := make([]net.Conn, 5)
	for i := range conns {
		c, err := net.DialTimeout("tcp", l.Addr().String(), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		ping(t, c)
		conns[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, host.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	for i, c := range conns {
		if got, err := readUntilClose(c); err != nil || len(got) != 0 {
			t.Errorf("connection %d: %q, %v; want the close", i, got, err)
		}
	}
}

// With as few waiting workers as possible, one-shot connections of both
// kinds (closed after the answer, and kept after a framed one) from many
// clients at once must all be served: the pool never runs out of
// workers that accept.
func TestAcceptWorkersUnderChurn(t *testing.T) {
	defer host.SetMaxIdleAcceptors(1)()
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
