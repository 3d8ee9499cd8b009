package host

import (
	"errors"
	"net"
	"sync"
	"time"
)

// acceptLoop serves l, each connection in a goroutine of its own, until
// the server closes or an accept error is not worth retrying; it returns
// ErrServerClosed or that error. Connections reuse their state (buffers,
// scratch space) through connPool: most are one packet in, one answer
// out, so their allocations would otherwise be most of their garbage.
func (s *Server) acceptLoop(l net.Listener, ops bool) error {
	name := l.Addr().String()
	var backoff time.Duration
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.base.Done():
			return ErrServerClosed
		}
		nc, err := l.Accept()
		if err != nil {
			<-s.sem
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "listener", name, "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := connPool.Get().(*conn)
		c.reset(s, nc, name, ops)
		if !s.track(c) {
			nc.Close()
			<-s.sem
			return ErrServerClosed
		}
		go func() {
			c.serve()
			<-s.sem
			connPool.Put(c)
		}()
	}
}

var connPool = sync.Pool{New: func() any { return new(conn) }}
