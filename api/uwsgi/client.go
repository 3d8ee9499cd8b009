package uwsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Client defaults.
const (
	DefaultTimeout     = 4 * time.Second  // uWSGI's --socket-timeout
	DefaultMaxIdle     = 16               // pooled connections per Client
	DefaultIdleTimeout = 30 * time.Second // below a scripthost server's 60 s keep-alive
	DefaultMaxResult   = 1 << 30          // 1 GiB
)

// maxRPCArgs is the number of RPC arguments uWSGI uses (the function name
// plus 254); it silently drops the rest, so the client refuses them.
const maxRPCArgs = 254

// Client errors. Failures reported by the server use the sentinels of the
// extension's error codes (ErrNoResult, ErrNotFound, ErrFailed, ...) and
// *RemoteError.
var (
	// ErrProtocol: the server's reply is malformed or not the kind of
	// reply the request expects.
	ErrProtocol = errors.New("uwsgi: protocol violation")
	// ErrConnect wraps a failed dial; the dialer's error (a *net.OpError,
	// matching syscall.ECONNREFUSED and the like) stays in the chain.
	ErrConnect = errors.New("uwsgi: connect")
	// ErrClientClosed: the Client was closed.
	ErrClientClosed = errors.New("uwsgi: client closed")
)

// Server modes a Client remembers, learnt from the answer to ExtHello.
const (
	modeUnknown  int32 = iota // send the hello on new connections
	modePlain                 // uWSGI or alike: no hello, one request per connection
	modeExtended              // answered the hello: keep-alive, error frames
)

// A Client calls one uwsgi server: RPC, ping, signal, cache, echo and
// HTTP-style requests. It talks to scripthost servers and to uWSGI alike:
// every new connection starts with the extension hello (ExtHello) until the
// server has shown that it does not speak the extension, and only
// connections that accepted it are kept open and reused.
//
// Set the exported fields before the first call; a zero value means the
// default. A Client is safe for concurrent use.
type Client struct {
	// Timeout bounds every wait for the server: the dial, each write and
	// each read (like uWSGI's --socket-timeout, so a large result that keeps
	// flowing is not cut off). The context's deadline, when earlier, wins.
	// Default 4 s; negative: no limit besides the context.
	Timeout time.Duration
	// MaxIdle is the number of idle connections kept for reuse. Default
	// 16; negative: none.
	MaxIdle int
	// IdleTimeout is how long an idle connection may be reused; it must stay
	// below the server's keep-alive time (60 s for scripthost). Default 30 s.
	IdleTimeout time.Duration
	// MaxResult is the largest result, cache value, raw reply, request body
	// or response body accepted, in bytes. Default 1 GiB.
	MaxResult int64
	// Dial opens connections; default a net.Dialer's DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	network, addr string
	given         string // addr as passed to NewClient
	addrErr       error  // SplitAddr's verdict on given
	mode          atomic.Int32

	mu     sync.Mutex
	idle   []*clientConn // most recently used last
	closed bool
}

// NewClient returns a Client for addr, a TCP "host:port" or a unix socket
// ("unix:/path", "/path", "./path", "x.sock", "@abstract"), told apart as
// SplitAddr says. An address SplitAddr rejects makes every call fail with
// ErrConnect and its error.
func NewClient(addr string) *Client {
	network, address, err := SplitAddr(addr)
	return &Client{network: network, addr: address, given: addr, addrErr: err}
}

// Addr returns the server's address as given to NewClient.
func (c *Client) Addr() string { return c.given }

// Close closes the idle connections; calls made afterwards fail with
// ErrClientClosed, calls in flight finish and close their connections.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, cn := range idle {
		cn.close()
	}
	return nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c *Client) maxIdle() int {
	if c.MaxIdle == 0 {
		return DefaultMaxIdle
	}
	return c.MaxIdle
}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return c.IdleTimeout
}

func (c *Client) maxResult() int64 {
	if c.MaxResult <= 0 {
		return DefaultMaxResult
	}
	return c.MaxResult
}

// start reports why a call must not begin.
func (c *Client) start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return ctxError(ctx)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClientClosed
	}
	return nil
}

// dial opens a connection and attaches it to the call's ctx; it does not
// send the hello.
func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	dctx := ctx
	if t := c.timeout(); t > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if c.addrErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, c.addrErr)
	}
	nc, err := dial(dctx, c.network, c.addr)
	if err != nil {
		// The server may have been replaced by one of the other kind.
		c.mode.Store(modeUnknown)
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		if isTimeout(err) || dctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w: %w", ErrConnect, ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	cn := newClientConn(nc)
	cn.begin(ctx, c.timeout())
	return cn, nil
}

// acquire returns a connection for one framed exchange, attached to ctx:
// an idle extended one unless fresh is set, else a new one that has been
// through the hello (or, for a plain server, none).
func (c *Client) acquire(ctx context.Context, fresh bool) (*clientConn, error) {
	if !fresh {
		if cn := c.takeIdle(); cn != nil {
			cn.reused = true
			cn.begin(ctx, c.timeout())
			return cn, nil
		}
	}
	cn, err := c.dial(ctx)
	if err != nil || c.mode.Load() == modePlain {
		return cn, err
	}
	ext, err := cn.hello()
	if err != nil {
		cn.end()
		cn.close()
		return nil, mapErr(ctx, err)
	}
	if ext {
		c.mode.Store(modeExtended)
		cn.extended = true
		return cn, nil
	}
	// A plain server answered the hello as a ping and closes the
	// connection: remember it, and send the request on a fresh one.
	c.mode.Store(modePlain)
	cn.end()
	cn.close()
	return c.dial(ctx)
}

// takeIdle pops the most recently used idle connection that is still
// fresh and alive.
func (c *Client) takeIdle() *clientConn {
	maxAge := c.idleTimeout()
	for {
		c.mu.Lock()
		n := len(c.idle)
		if n == 0 {
			c.mu.Unlock()
			return nil
		}
		cn := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		if time.Since(cn.idleSince) <= maxAge && cn.alive() {
			return cn
		}
		cn.close()
	}
}

// putIdle keeps an extended connection for reuse, or closes it when the
// pool is full or the Client closed. Connections past IdleTimeout are
// dropped on the way.
func (c *Client) putIdle(cn *clientConn) {
	now := time.Now()
	cn.idleSince = now
	maxAge := c.idleTimeout()
	var stale []*clientConn
	c.mu.Lock()
	for len(c.idle) > 0 && now.Sub(c.idle[0].idleSince) > maxAge {
		stale = append(stale, c.idle[0])
		c.idle[0] = nil
		c.idle = c.idle[1:]
	}
	if c.closed || len(c.idle) >= c.maxIdle() {
		stale = append(stale, cn)
	} else {
		c.idle = append(c.idle, cn)
	}
	c.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
}

// readFunc parses the reply to one framed request, given its header. It
// reports whether it consumed the whole reply, leaving the connection
// usable for the next request.
type readFunc func(cn *clientConn, h Header) (consumed bool, err error)

// Internal outcomes of roundTrip, resolved by exchange.
var (
	errCloseMark = errors.New("uwsgi: close mark")
	errSilent    = errors.New("uwsgi: closed without a reply")
)

// writeError marks a failed write of the request.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// exchange sends one framed request and hands the reply to read. silent is
// the error a plain server's silent close stands for.
//
// Retries: a request is resent once, on a new connection, only when the
// server cannot have processed it: the reply is a close mark (an extended
// server reads nothing after sending one), or the write on a reused
// connection failed other than by a timeout (the peer was gone before the
// whole request reached it).
// A reused connection that closes without a byte is not retried: the
// server may have run the request and died, and an RPC may not be
// idempotent.
func (c *Client) exchange(ctx context.Context, req []byte, silent error, read readFunc) error {
	if err := c.start(ctx); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		cn, err := c.acquire(ctx, attempt > 0)
		if err != nil {
			return err
		}
		consumed, err := cn.roundTrip(req, read)
		usable := cn.end()
		if consumed && usable && cn.extended {
			c.putIdle(cn)
		} else {
			cn.close()
		}
		var we *writeError
		retry := err == errCloseMark || (errors.As(err, &we) && cn.reused && !isTimeout(we.err))
		if retry && attempt == 0 && ctx.Err() == nil {
			continue
		}
		switch {
		case err == errCloseMark:
			return fmt.Errorf("%w: the server is closing connections (close mark on a new connection)", ErrUnavailable)
		case err == errSilent:
			return silent
		case we != nil:
			err = we.err
		}
		return mapErr(ctx, err)
	}
}

// readStream sends req on a new connection without the hello and returns
// everything the server writes until it closes (raw RPC, echo).
func (c *Client) readStream(ctx context.Context, req []byte) ([]byte, error) {
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	cn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer cn.close()
	var out []byte
	if _, err = cn.Write(req); err == nil {
		out, err = readAll(cn.br, c.maxResult())
	}
	cn.end()
	if err != nil {
		return nil, mapErr(ctx, err)
	}
	return out, nil
}

// readAll reads until EOF, at most max bytes.
func readAll(r io.Reader, max int64) ([]byte, error) {
	limit := max
	if limit < math.MaxInt64 {
		limit++
	}
	out, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("uwsgi: reply of more than %d bytes: %w", max, ErrTooLarge)
	}
	return out, nil
}

// ctxError is the error of a call whose context is done: it matches
// ctx.Err(), and ErrTimeout too when the deadline passed.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if err == context.DeadlineExceeded {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("uwsgi: %w", err)
}

// mapErr turns network errors caused by deadlines and cancellation into
// the client's errors: the context's error when it is done (or its
// deadline, which is also the connection's, has passed), else ErrTimeout
// wrapping the connection's deadline error. Other errors pass unchanged.
func mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if !isTimeout(err) && !errors.As(err, &ne) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if !isTimeout(err) {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("%w: %w", ErrTimeout, err)
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isClosedBySilence reports whether err is how a server that closes
// without answering looks to a reader (EOF, or a reset when it left input
// unread).
func isClosedBySilence(err error) bool {
	return err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}
