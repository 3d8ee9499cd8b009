package host

import (
	"errors"
	"net"
	"runtime"
	"sync"
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

	lmu       sync.Mutex
	lingering []lingerConn
	nLinger   atomic.Int32 // len(lingering), read without the lock
	timer     *time.Timer  // bounds lingering
	armed     bool
	lastSweep atomic.Int64 // when a worker last looked (unix ns)
	lastQuiet atomic.Int64 // when a peek last found the oldest socket silent (unix ns)
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

// A plain (not extended) connection that got a framed answer stays open
// for the client's next packet, and one-shot clients (uWSGI's rpc, ping)
// close it right after reading the answer. Waiting for that close in the
// poller cost as much as the rest of the call, so such sockets go to the
// pool's lingering list instead, and a worker that finishes a connection
// looks at the oldest ones (one non-blocking peek each), when the close
// has usually arrived. A socket with data goes on in a goroutine of its
// own, the usual way; so does one still silent after lingerBusy. When no
// worker has looked for lingerIdle (an idle server), a timer, running
// while the list is not empty, peeks at every socket each lingerIdle. So
// a client that keeps such a connection and sends its next packet some
// time after the answer may wait up to about lingerIdle more for it to be
// read (up to lingerBusy on a busy server); clients that keep connections
// use the extension.
const (
	lingerPeek = 200 * time.Microsecond // younger sockets are not looked at yet
	lingerBusy = 5 * time.Millisecond
	lingerIdle = 500 * time.Microsecond // also the timer's period
	// A worker does not peek again within lingerQuiet of a peek that
	// found the oldest socket silent: the others are most likely silent
	// too, and finished connections come much more often than that.
	lingerQuiet = 100 * time.Microsecond
)

// sweep modes.
const (
	sweepWorker = iota // after a connection: the oldest sockets, by age
	sweepTimer         // the timer: as a worker, or every socket if no worker looked lately
	sweepAll           // every socket: closed or resumed (the listener's end)
)

type lingerConn struct {
	sc    *sockConn
	since time.Time
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
		c.mayLinger = true
		if !s.track(c) {
			nc.Close()
			<-s.sem
			p.finish(ErrServerClosed)
			return
		}
		c.serve(false)
		<-s.sem
		if c.lingered != nil {
			p.linger(c.lingered)
			c.lingered = nil
		}
		p.sweep(sweepWorker)
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
// end, and the lingering sockets are closed or resumed.
func (p *acceptPool) leave(err error) {
	p.waiting.Add(-1)
	p.finish(err)
	p.sweep(sweepAll)
}

// linger adds a socket to the lingering list.
func (p *acceptPool) linger(sc *sockConn) {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	p.lingering = append(p.lingering, lingerConn{sc: sc, since: time.Now()})
	p.nLinger.Store(int32(len(p.lingering)))
	p.armLocked()
}

// armLocked starts the timer that bounds lingering, if sockets linger
// and it is not running; p.lmu is held.
func (p *acceptPool) armLocked() {
	if len(p.lingering) == 0 || p.armed {
		return
	}
	p.armed = true
	if p.timer == nil {
		p.timer = time.AfterFunc(lingerIdle, p.lingerTimeout)
	} else {
		p.timer.Reset(lingerIdle)
	}
}

func (p *acceptPool) lingerTimeout() {
	p.lmu.Lock()
	p.armed = false
	p.lmu.Unlock()
	p.sweep(sweepTimer)
}

// sweep looks at the lingering sockets (see sweepWorker...): it closes
// those whose client left and resumes those with data or waiting too long.
func (p *acceptPool) sweep(mode int) {
	if p.nLinger.Load() == 0 {
		return
	}
	now := time.Now()
	switch mode {
	case sweepWorker:
		p.lastSweep.Store(now.UnixNano())
		if now.UnixNano()-p.lastQuiet.Load() < int64(lingerQuiet) {
			return
		}
	case sweepTimer:
		if now.UnixNano()-p.lastSweep.Load() < int64(lingerIdle) {
			mode = sweepWorker
		}
	}
	p.lmu.Lock()
	defer p.lmu.Unlock()
	kept := p.lingering[:0]
	for i, lc := range p.lingering {
		age := now.Sub(lc.since)
		if mode == sweepWorker && age < lingerPeek {
			kept = append(kept, p.lingering[i:]...)
			break
		}
		switch lc.sc.peek() {
		case peekGone:
			lc.sc.Close()
			continue
		case peekData:
			p.resume(lc.sc)
			continue
		}
		if mode == sweepAll || age >= lingerBusy {
			p.resume(lc.sc)
			continue
		}
		if mode == sweepTimer {
			// No worker looks: the timer peeks at every socket each time.
			kept = append(kept, lc)
			continue
		}
		// Clients close in about the order they were answered: when the
		// oldest is still silent, so are the others, most likely.
		p.lastQuiet.Store(now.UnixNano())
		kept = append(kept, p.lingering[i:]...)
		break
	}
	clear(p.lingering[len(kept):])
	p.lingering = kept
	p.nLinger.Store(int32(len(kept)))
	p.armLocked()
}

// resume serves a lingering socket in its own goroutine, from the wait
// for its next packet on; a closing server closes it instead.
func (p *acceptPool) resume(sc *sockConn) {
	s := p.srv
	c := new(conn)
	c.reset(s, sc, p.name, p.ops)
	if !s.track(c) {
		sc.Close()
		return
	}
	go func() {
		select {
		case s.sem <- struct{}{}:
		case <-s.base.Done():
			s.untrack(c)
			sc.Close()
			return
		}
		defer func() { <-s.sem }()
		c.serve(true)
	}()
}
