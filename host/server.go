package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("host: server closed")

// Limits bound what one client can make the server do. Zero fields take
// the documented defaults (DefaultLimits).
type Limits struct {
	// MaxPacket is the largest packet payload (vars block, array) accepted;
	// larger packets are dropped with a log line, like uWSGI's buffer-size.
	MaxPacket int
	// MaxVars is the most key/value pairs a vars block may carry.
	MaxVars int
	// MaxConns is the most connections served at once; further clients
	// wait in the listen backlog.
	MaxConns int
	// MaxRPCArgs is the most RPC arguments passed to a function. uWSGI
	// ignores extra items silently; so do we, except that clients using
	// the extension get an error.
	MaxRPCArgs int
	// HeaderTimeout bounds the wait for the whole first packet of a
	// connection, and for the rest of a packet once its first byte came.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next packet on a kept connection.
	IdleTimeout time.Duration
	// BodyTimeout bounds each read of a request body or cache value.
	BodyTimeout time.Duration
	// BodyDeadline bounds the whole request body: an app's body is read
	// in full before the app runs, and a client that takes longer is
	// disconnected without the app ever running.
	BodyDeadline time.Duration
	// BodyMemory is the largest request body kept in memory; larger ones
	// go to an unlinked temporary file.
	BodyMemory int64
	// MaxBody is the largest request body accepted (0: no limit); a
	// larger one is answered 413 (uWSGI's limit-post).
	MaxBody int64
	// WriteTimeout bounds each write to the client.
	WriteTimeout time.Duration
	// CallTimeout is the deadline of each request's context: RPC calls and
	// script requests that run longer are interrupted (uWSGI's harakiri).
	CallTimeout time.Duration

	// WebSocketMaxMessage is the largest WebSocket message received, in
	// bytes (uWSGI's websockets-max-size); a larger one closes the socket
	// with 1009.
	WebSocketMaxMessage int64
	// WebSocketSendQueue bounds the bytes of the messages a socket holds
	// for a peer that reads slower than its script sends; a send over it
	// closes the socket with 1008.
	WebSocketSendQueue int
	// WebSocketPing is how often the host pings each socket's peer (<0:
	// never).
	WebSocketPing time.Duration
	// WebSocketPongTimeout is how long the peer has to answer a ping
	// before its socket is dropped.
	WebSocketPongTimeout time.Duration
	// WebSocketTimeout bounds the life of a request's call once it
	// upgraded (a socket lives as long as its call); CallTimeout still
	// bounds the time its script runs, not counting its waits for
	// messages (see api.LongCalls).
	WebSocketTimeout time.Duration
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{
	MaxPacket:     uwsgi.MaxSize,
	MaxVars:       1024,
	MaxConns:      10000,
	MaxRPCArgs:    api.MaxRPCArgs,
	HeaderTimeout: 4 * time.Second,
	IdleTimeout:   60 * time.Second,
	BodyTimeout:   30 * time.Second,
	BodyDeadline:  60 * time.Second,
	BodyMemory:    1 << 20,
	WriteTimeout:  30 * time.Second,
	CallTimeout:   60 * time.Second,

	WebSocketMaxMessage:  1 << 20,
	WebSocketSendQueue:   4 << 20,
	WebSocketPing:        30 * time.Second,
	WebSocketPongTimeout: 20 * time.Second,
	WebSocketTimeout:     24 * time.Hour,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxPacket > 0 {
		d.MaxPacket = min(l.MaxPacket, uwsgi.MaxSize)
	}
	if l.MaxVars > 0 {
		d.MaxVars = l.MaxVars
	}
	if l.MaxConns > 0 {
		d.MaxConns = l.MaxConns
	}
	if l.BodyMemory > 0 {
		d.BodyMemory = l.BodyMemory
	}
	if l.MaxBody > 0 {
		d.MaxBody = l.MaxBody
	}
	if l.WebSocketMaxMessage > 0 {
		d.WebSocketMaxMessage = l.WebSocketMaxMessage
	}
	if l.WebSocketSendQueue > 0 {
		d.WebSocketSendQueue = l.WebSocketSendQueue
	}
	if l.WebSocketPing < 0 {
		d.WebSocketPing = 0
	}
	if l.MaxRPCArgs > 0 {
		d.MaxRPCArgs = min(l.MaxRPCArgs, api.MaxRPCArgs)
	}
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{
		{&d.HeaderTimeout, l.HeaderTimeout}, {&d.IdleTimeout, l.IdleTimeout},
		{&d.BodyTimeout, l.BodyTimeout}, {&d.WriteTimeout, l.WriteTimeout},
		{&d.CallTimeout, l.CallTimeout}, {&d.BodyDeadline, l.BodyDeadline},
		{&d.WebSocketPing, l.WebSocketPing}, {&d.WebSocketPongTimeout, l.WebSocketPongTimeout},
		{&d.WebSocketTimeout, l.WebSocketTimeout},
	} {
		if p.v > 0 {
			*p.dst = p.v
		}
	}
	return d
}

// Server serves the uwsgi protocol on any number of listeners. Set the
// exported fields, then call Handle for engine modifiers, before Serve.
type Server struct {
	// State is what the scripts share, served to clients (RPC, caches,
	// signals); nil makes a default one at first use. The server never
	// closes it: its owner does.
	State *api.State
	// Logger receives the server's connection, request and app failure
	// logs; nil means slog.Default().
	Logger *slog.Logger
	// Limits bound what each client can do; zero fields take
	// DefaultLimits. Read once, at the server's first use.
	Limits Limits
	// Warning is the message a ping reply carries (uWSGI's warning
	// message, at most 80 bytes); empty normally.
	Warning string
	// SweepInterval is how often expired cache items are dropped.
	SweepInterval time.Duration
	// BodyDir is where request bodies over Limits.BodyMemory are spilled
	// (unlinked at once); empty means os.TempDir().
	BodyDir string
	// SpoolOpsOnly refuses spool jobs (modifier1 17) outside operations
	// listeners; otherwise every uwsgi listener takes them, as uWSGI's
	// sockets do.
	SpoolOpsOnly bool

	initOnce sync.Once
	lim      Limits
	log      *slog.Logger
	handlers [256]Handler
	router   atomic.Pointer[router]
	swapMu   sync.Mutex // serializes SetScripts
	sem      chan struct{}

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	sockets   map[*socket]struct{} // open WebSockets, of both fronts
	// packetSockets counts the conns that carry a WebSocket; upgrading
	// counts the handshakes under way; once goingAway, a new socket is
	// closed with 1001 at once.
	packetSockets int
	upgrading     int
	goingAway     bool
	closing       atomic.Bool
	connWG        sync.WaitGroup

	bgOnce   sync.Once
	bgCancel context.CancelFunc
	bgDone   chan struct{}
	base     context.Context
	cancel   context.CancelFunc
}

// NewServer returns a server over state with the built-in handlers.
func NewServer(state *api.State) *Server {
	return &Server{State: state}
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.lim = s.Limits.withDefaults()
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		if s.State == nil {
			st, err := api.NewState(api.StateConfig{})
			if err != nil {
				panic(fmt.Sprintf("host: default state: %v", err))
			}
			s.State = st
		}
		s.sem = make(chan struct{}, s.lim.MaxConns)
		s.listeners = make(map[*net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.base, s.cancel = context.WithCancel(s.callValues(context.Background()))
		builtin := map[uwsgi.Modifier]Handler{
			uwsgi.ModRPC:       HandlerFunc(s.serveRPC),
			uwsgi.ModPing:      HandlerFunc(s.servePing),
			uwsgi.ModEcho:      HandlerFunc(serveEcho),
			uwsgi.ModSignal:    HandlerFunc(s.serveSignal),
			uwsgi.ModCache:     HandlerFunc(s.serveCache),
			uwsgi.ModCloseMark: HandlerFunc(serveCloseMark),
			uwsgi.ModSpooler:   HandlerFunc(s.serveSpool),
		}
		for m, h := range builtin {
			if s.handlers[m] == nil {
				s.handlers[m] = h
			}
		}
		// HTTP-style modifiers go to the scripts' apps; without an app for
		// them they are dropped, as uWSGI drops modifiers it has no plugin for.
		for m := range s.handlers {
			if s.handlers[m] == nil && uwsgi.Modifier(m).IsRequest() {
				s.handlers[m] = HandlerFunc(s.serveApp)
			}
		}
	})
}

// Handle makes h serve the packets of modifier1 m, replacing any built-in
// handler. It must be called before Serve.
func (s *Server) Handle(m uwsgi.Modifier, h Handler) {
	s.init()
	s.handlers[m] = h
}

// EffectiveLimits returns the limits in force (defaults applied).
func (s *Server) EffectiveLimits() Limits {
	s.init()
	return s.lim
}

// Context returns parent carrying what every script call the server makes
// needs: the memory budget (every api.NewScope under it is counted) and
// the server's own addresses (uwsgi.rpc to them runs in-process).
func (s *Server) Context(parent context.Context) context.Context {
	s.init()
	return s.callValues(parent)
}

func (s *Server) callValues(parent context.Context) context.Context {
	return api.WithLocalNode(api.WithMemory(parent, s.State.Memory), s.listensOn)
}

// startBackground starts, once, the goroutines the server owns besides
// connections: signal delivery, timers, the memory watch and the cache
// sweeper.
func (s *Server) startBackground() {
	s.bgOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.WithoutCancel(s.base))
		done := make(chan struct{})
		s.mu.Lock()
		if s.closing.Load() {
			// Shutdown already ran stopBackground: start nothing.
			s.mu.Unlock()
			cancel()
			return
		}
		s.bgCancel, s.bgDone = cancel, done
		s.mu.Unlock()
		var wg sync.WaitGroup
		wg.Add(3)
		consumers := s.State.Consumers
		consumers.OnError = s.consumerFailed
		consumers.CallTimeout = s.lim.CallTimeout
		wg.Go(func() {
			if err := consumers.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("channel consumers stopped", "err", err)
			}
		})
		wg.Go(func() {
			if err := s.State.Memory.Serve(ctx); err != nil {
				s.log.Error("memory watch stopped", "err", err)
			}
		})
		go func() {
			defer wg.Done()
			if err := s.State.Signals.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("signal delivery stopped", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := s.State.Timers.Serve(ctx); err != nil {
				s.log.Error("timers stopped", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			every := s.SweepInterval
			if every <= 0 {
				every = 10 * time.Second
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					s.State.Caches.Sweep(now)
					if l, ok := s.State.Channels.(interface{ Sweep(time.Time) }); ok {
						l.Sweep(now)
					}
				}
			}
		}()
		go func() { wg.Wait(); close(done) }()
	})
}

func (s *Server) stopBackground() {
	s.mu.Lock()
	cancel, done := s.bgCancel, s.bgDone
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Serve accepts connections on l until Shutdown or Close, serving each in
// its own goroutine. It always returns a non-nil error; after Shutdown or
// Close it is ErrServerClosed. Serve takes ownership of l.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, false)
}

// ServeOps is Serve for an operations listener: besides everything Serve
// offers, its requests may use the operator's packets (raw code eval,
// reload requests), which every other listener refuses. Give it a unix
// socket only the operator can reach.
func (s *Server) ServeOps(l net.Listener) error {
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, ops bool) error {
	s.init()
	if fl, err := fastListener(l); err == nil {
		l = fl
	} else {
		s.log.Debug("accepting through the listener", "listener", l.Addr(), "reason", err)
	}
	// Registering under the lock that Shutdown closes listeners with means
	// a listener is either closed by Shutdown or never served.
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[&l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &l)
		s.mu.Unlock()
		l.Close()
	}()
	s.startBackground()
	return s.acceptLoop(l, ops)
}

// isTemporary recognises accept errors worth retrying: out of file
// descriptors, or a connection aborted before it was accepted.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// Listen opens a listener for addr, a TCP "host:port" or a unix socket
// ("unix:/path", "/path", "./path", "../path", "x.sock"; "@name" for Linux
// abstract sockets), told apart by uwsgi.SplitAddr's rules. A stale socket
// file left by a dead process is replaced.
func Listen(addr string) (net.Listener, error) {
	network, address, err := uwsgi.SplitAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if network == "unix" && !strings.HasPrefix(address, "@") {
		if c, err := net.Dial("unix", address); err == nil {
			c.Close()
			return nil, fmt.Errorf("host: %s is in use by another server", address)
		}
		if fi, err := os.Lstat(address); err == nil && fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("host: %s exists and is not a socket", address)
		}
		if err := os.Remove(address); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("host: removing stale socket: %w", err)
		}
	}
	// No TCP keep-alive probes on accepted connections: they cost three
	// setsockopt calls per connection, and dead peers are found by the
	// server's own timeouts anyway.
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), network, address)
}

// ListenAndServe listens on addr (see Listen) and serves it.
func (s *Server) ListenAndServe(addr string) error {
	l, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Shutdown stops accepting, closes idle connections (with a close mark
// for clients that use the extension) and waits until every request in
// flight has finished or ctx is done, whichever comes first; then it stops
// signal delivery and the cache sweeper. Open WebSockets are closed with
// 1001 (going away) once the other requests have drained, and waited for
// like them. Use Close to end what remains after a ctx timeout.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closeListeners()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); s.waitSockets(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	goingAway := false
	for {
		s.closeIdle()
		if !goingAway && s.onlySockets() {
			goingAway = true
			s.closeSockets(api.CloseGoingAway, "server shutting down")
		}
		select {
		case <-done:
			s.cancel()
			s.stopBackground()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes every listener and connection at once; requests in flight
// see their context cancelled.
func (s *Server) Close() error {
	s.init()
	s.closeListeners()
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	for ws := range s.sockets {
		ws.nc.Close()
	}
	s.mu.Unlock()
	s.stopBackground()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for l := range s.listeners {
		(*l).Close()
	}
}

// onlySockets reports whether every connection left is a WebSocket.
func (s *Server) onlySockets() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) <= s.packetSockets
}

// waitSockets waits until no WebSocket is open; none opens once the
// listeners are closed.
func (s *Server) waitSockets() {
	for {
		s.mu.Lock()
		n := len(s.sockets) + s.upgrading
		s.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle()
	}
}
