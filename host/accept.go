package host

import (
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

// acceptLoop serves l with a pool of goroutines that each accept a
// connection and serve it to the end, then accept the next. Compared with
// a goroutine started per connection, a worker that finishes takes the
// next connection waiting in the backlog on the same processor, so
// one-shot connections cost no goroutine start and no wake-up of another
// thread. The pool grows whenever the last waiting worker takes a
// connection (a slow handler never holds up accepting) and shrinks back
// when workers are left waiting. It returns what ends the listener:
// ErrServerClosed once the server is closing, or the first accept error
// that is not worth retrying.
func (s *Server) acceptLoop(l net.Listener, ops bool) error {
	p := &acceptPool{
		srv:     s,
		l:       l,
		name:    l.Addr().String(),
		ops:     ops,
		maxIdle: int32(maxIdleAcceptors()),
		done:    make(chan error, 1),
	}
	p.start()
	return <-p.done
}

// maxIdleAcceptors is how many workers a listener keeps waiting (a
// variable for the tests).
var maxIdleAcceptors = func() int { return 2 * runtime.GOMAXPROCS(0) }

type acceptPool struct {
	srv     *Server
	l       net.Listener
	name    string
	ops     bool
	maxIdle int32
	done    chan error // the listener's end, sent once

	waiting atomic.Int32 // workers in, or on their way to, Accept
	ended   atomic.Bool
}

func (p *acceptPool) start() {
	p.waiting.Add(1)
	go p.work()
}

// finish reports the listener's end once.
func (p *acceptPool) finish(err error) {
	if p.ended.CompareAndSwap(false, true) {
		p.done <- err
	}
}

// work is one worker. It counts as waiting from when it was started (or
// finished a connection) until Accept returns.
func (p *acceptPool) work() {
	s := p.srv
	c := new(conn) // one per worker: its buffers serve connection after connection
	var backoff time.Duration
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.base.Done():
			p.leave(ErrServerClosed)
			return
		}
		nc, err := p.l.Accept()
		if err != nil {
			<-s.sem
			if s.closing.Load() || p.ended.Load() {
				p.leave(ErrServerClosed)
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "listener", p.name, "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			p.leave(err)
			return
		}
		backoff = 0
		if p.waiting.Add(-1) == 0 {
			p.start() // nobody is accepting while this worker serves
		}
		c.reset(s, nc, p.name, p.ops)
		if !s.track(c) {
			nc.Close()
			<-s.sem
			p.finish(ErrServerClosed)
			return
		}
		c.serve()
		<-s.sem
		if !p.rejoin() {
			return
		}
	}
}

// rejoin counts a worker that finished a connection as waiting again, or
// reports false if enough are waiting and it should end. It never counts
// the worker even for a moment before deciding: a worker taking a
// connection starts a replacement only when it sees no other waiting, and
// a count raised by a worker about to leave would hide that.
func (p *acceptPool) rejoin() bool {
	for {
		w := p.waiting.Load()
		if w >= p.maxIdle || p.ended.Load() {
			return false
		}
		if p.waiting.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// leave ends a waiting worker with the listener: err is the listener's
// end.
func (p *acceptPool) leave(err error) {
	p.waiting.Add(-1)
	p.finish(err)
}
