package host

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sockPair returns a sockConn accepted through a sockListener on network
// and the client's end.
func sockPair(t *testing.T, network string) (*sockConn, net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s.sock")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := newSockListener(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	client, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	// TCP_DEFER_ACCEPT holds the connection until the client speaks.
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	nc, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc := nc.(*sockConn)
	t.Cleanup(func() { sc.Close() })
	buf := make([]byte, 2)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("first read: %q, %v", buf, err)
	}
	return sc, client
}

func TestSockConn(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			t.Run("raw round trip stays off the poller", func(t *testing.T) {
				sc, client := sockPair(t, network)
				if _, err := sc.Write([]byte("answer")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 6)
				if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "answer" {
					t.Fatalf("client read %q, %v", buf, err)
				}
				if sc.f != nil {
					t.Error("a call that did not block moved the connection to the poller")
				}
			})
			t.Run("a read that would block waits in the poller", func(t *testing.T) {
				sc, client := sockPair(t, network)
				go func() {
					time.Sleep(20 * time.Millisecond)
					client.Write([]byte("late"))
				}()
				buf := make([]byte, 4)
				if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "late" {
					t.Fatalf("read %q, %v", buf, err)
				}
				if sc.f == nil {
					t.Error("a blocking read did not move the connection to the poller")
				}
			})
			t.Run("read deadline", func(t *testing.T) {
				sc, _ := sockPair(t, network)
				sc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
				_, err := sc.Read(make([]byte, 1))
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read after the deadline: %v, want a timeout", err)
				}
				// A passed deadline fails at once, also before the poller.
				sc2, _ := sockPair(t, network)
				sc2.SetReadDeadline(time.Now().Add(-time.Second))
				if _, err := sc2.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read with a passed deadline: %v", err)
				}
			})
			t.Run("EOF", func(t *testing.T) {
				sc, client := sockPair(t, network)
				client.Close()
				if n, err := sc.Read(make([]byte, 8)); n != 0 || err != io.EOF {
					t.Fatalf("read after the client closed: %d, %v; want 0, io.EOF", n, err)
				}
			})
			t.Run("close wakes a blocked read", func(t *testing.T) {
				sc, _ := sockPair(t, network)
				done := make(chan error, 1)
				go func() {
					_, err := sc.Read(make([]byte, 1))
					done <- err
				}()
				time.Sleep(20 * time.Millisecond)
				sc.Close()
				select {
				case err := <-done:
					if !errors.Is(err, net.ErrClosed) {
						t.Fatalf("blocked read ended with %v, want net.ErrClosed", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not wake the blocked read")
				}
				if _, err := sc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("write after close: %v", err)
				}
				if err := sc.Close(); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("second close: %v", err)
				}
			})
			t.Run("a large write finishes through the poller", func(t *testing.T) {
				sc, client := sockPair(t, network)
				big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: over any socket buffer
				got := make(chan []byte, 1)
				go func() {
					b, _ := io.ReadAll(io.LimitReader(client, int64(len(big))))
					got <- b
				}()
				sc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if n, err := sc.Write(big); n != len(big) || err != nil {
					t.Fatalf("write: %d, %v", n, err)
				}
				if b := <-got; !bytes.Equal(b, big) {
					t.Fatalf("client got %d bytes, not what was written", len(b))
				}
			})
			t.Run("write deadline with a client that does not read", func(t *testing.T) {
				sc, _ := sockPair(t, network)
				sc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				big := make([]byte, 16<<20)
				n, err := sc.Write(big)
				if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(big) {
					t.Fatalf("write to a stuck client: %d, %v; want a timeout", n, err)
				}
			})
			t.Run("addresses", func(t *testing.T) {
				sc, client := sockPair(t, network)
				if network == "tcp" {
					if got, want := sc.RemoteAddr().String(), client.LocalAddr().String(); got != want {
						t.Errorf("RemoteAddr %s, want %s", got, want)
					}
					if got, want := sc.LocalAddr().String(), client.RemoteAddr().String(); got != want {
						t.Errorf("LocalAddr %s, want %s", got, want)
					}
					if got := (remoteAddr{sc}).String(); got != client.LocalAddr().String() {
						t.Errorf("remoteAddr prints %s", got)
					}
				} else if sc.RemoteAddr().Network() != "unix" || !strings.HasSuffix(sc.LocalAddr().String(), "s.sock") {
					t.Errorf("unix addresses: %v, %v", sc.RemoteAddr(), sc.LocalAddr())
				}
			})
		})
	}
}

// Accepted TCP sockets inherit TCP_NODELAY from the listener, which is
// why sockConn never sets it.
func TestSockConnNoDelayInherited(t *testing.T) {
	sc, _ := sockPair(t, "tcp")
	v, err := syscall.GetsockoptInt(sc.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	if err != nil || v == 0 {
		t.Fatalf("TCP_NODELAY on an accepted socket: %d, %v", v, err)
	}
}

func TestSockListenerClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := newSockListener(l)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sl.Accept()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sl.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Accept")
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Fatal("the socket still accepts connections after Close")
	}
}
