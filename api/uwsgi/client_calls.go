package uwsgi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
)

// Call calls the RPC function fn with up to 254 arguments and returns its
// result (RPC modifier2 0). Arguments must not be empty: uWSGI drops empty
// items, so the encoder refuses them (ErrEmptyItem).
//
// A plain (uWSGI) server reports an unknown function, an empty result and
// a script error alike by closing the connection: ErrNoResult. A scripthost
// server says which in a *RemoteError (matching ErrNotFound, ErrScript, ...
// and ErrNoResult), and may return an empty result.
func (c *Client) Call(ctx context.Context, fn string, args ...[]byte) ([]byte, error) {
	if err := checkArgs(fn, len(args)); err != nil {
		return nil, err
	}
	req, err := AppendRPCRequest(nil, RPCFramed, fn, args...)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, req)
}

// CallString is Call with string arguments and result.
func (c *Client) CallString(ctx context.Context, fn string, args ...string) (string, error) {
	if err := checkArgs(fn, len(args)); err != nil {
		return "", err
	}
	req, err := AppendRPCRequest(nil, RPCFramed, fn, args...)
	if err != nil {
		return "", err
	}
	out, err := c.call(ctx, req)
	return string(out), err
}

func checkArgs(fn string, n int) error {
	if n > maxRPCArgs {
		return fmt.Errorf("uwsgi: call %.60q with %d arguments: %w (max %d)", fn, n, ErrTooMany, maxRPCArgs)
	}
	return nil
}

func (c *Client) call(ctx context.Context, req []byte) ([]byte, error) {
	var out []byte
	err := c.exchange(ctx, req, ErrNoResult, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != ModRPC || (h.Modifier2 != RPCFramed && h.Modifier2 != RPCLarge) {
			return false, protocolError("reply %v to an RPC request", h)
		}
		res, err := ReadRPCResult(cn.br, h, c.maxResult())
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				err = fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			return false, err
		}
		if len(res) == 0 && !cn.extended {
			// uWSGI never sends it, and its own client calls it a failure.
			return true, ErrNoResult
		}
		out = res
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CallRaw calls fn in raw mode (RPC modifier2 1): the result is every
// byte the server writes until it closes, at most MaxResult. This is the
// mode nginx uses, where the function returns a whole HTTP response. It
// always uses a connection of its own. No bytes at all is ErrNoResult.
func (c *Client) CallRaw(ctx context.Context, fn string, args ...[]byte) ([]byte, error) {
	if err := checkArgs(fn, len(args)); err != nil {
		return nil, err
	}
	req, err := AppendRPCRequest(nil, RPCRaw, fn, args...)
	if err != nil {
		return nil, err
	}
	out, err := c.readStream(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNoResult
	}
	return out, nil
}

// Ping pings the server. The warning is the server's warning message,
// normally empty (uWSGI's uwsgi.set_warning_message).
func (c *Client) Ping(ctx context.Context) (warning string, err error) {
	req := Header{Modifier1: ModPing, Modifier2: PingRequest}.Append(nil)
	err = c.exchange(ctx, req, ErrNoResult, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != ModPing {
			return false, protocolError("reply %v to a ping", h)
		}
		msg := make([]byte, h.Size)
		if _, err := io.ReadFull(cn.br, msg); err != nil {
			return false, unexpected(err)
		}
		warning = string(msg)
		return true, nil
	})
	return warning, err
}

// Echo sends payload (at most 65535 bytes) to the echo service, which
// returns it verbatim and closes. It always uses a connection of its own.
func (c *Client) Echo(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := AppendPacket(nil, ModEcho, 0, payload)
	if err != nil {
		return nil, err
	}
	out, err := c.readStream(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && len(payload) > 0 {
		return nil, ErrNoResult
	}
	return out, nil
}

// Signal raises uwsgi signal num on the server. An acknowledgement means
// the server queued it, not that a handler ran. A refusal ([255, 0, 0]: no
// master, full queue) matches ErrFailed; a server without the signal
// plugin closes without a reply, which matches ErrFailed and ErrNoResult.
func (c *Client) Signal(ctx context.Context, num uint8) error {
	req := Header{Modifier1: ModSignal, Modifier2: num}.Append(nil)
	return c.acknowledged(ctx, req, fmt.Sprintf("signal %d", num), fmt.Sprintf("signal %d not delivered", num))
}

// acknowledged sends req and reads the generic response that answers it:
// [255, n, 1] (with an n-byte note) is success, [255, 0, 0] a refusal
// (ErrFailed with refused), a close without a reply ErrFailed and
// ErrNoResult; what names the request in errors.
func (c *Client) acknowledged(ctx context.Context, req []byte, what, refused string) error {
	silent := fmt.Errorf("%w: %s: the server closed the connection without an acknowledgement: %w",
		ErrFailed, what, ErrNoResult)
	return c.exchange(ctx, req, silent, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != ModResponse {
			return false, protocolError("reply %v to a %s", h, what)
		}
		if err := cn.discard(int(h.Size)); err != nil {
			return false, err
		}
		switch h.Modifier2 {
		case ResponseOK:
			return true, nil
		case ResponseFailed:
			return true, fmt.Errorf("%w: %s", ErrFailed, refused)
		}
		return true, protocolError("reply %v to a %s", h, what)
	})
}

// Spool sends a job to the server's spooler (modifier1 17): vars is the
// job (uWSGI's keys spooler, priority and at choose where and when it
// runs). An acknowledgement ([255, 0, 1]) means the job is stored; a
// refusal ([255, 0, 0]: no spooler, a bad job, a full disk) matches
// ErrFailed.
func (c *Client) Spool(ctx context.Context, vars Vars) error {
	block, err := vars.Append(nil)
	if err != nil {
		return err
	}
	if len(block) > math.MaxUint16 {
		return fmt.Errorf("uwsgi: spool job of %d bytes: a packet holds at most %d", len(block), math.MaxUint16)
	}
	req := Header{Modifier1: ModSpooler, Size: uint16(len(block))}.Append(nil)
	return c.acknowledged(ctx, append(req, block...), "spool job", "spool job refused")
}
