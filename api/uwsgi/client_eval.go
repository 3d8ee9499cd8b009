package uwsgi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Raw code evaluation (modifier1 22), as scripthost's host serves it: [22, size, lang] + the code, or, for a server
// that requires a key, + a vars block with code, ts and sig; the reply is
// [22, size, 0] + a vars block with result and output (and truncated "1"
// when the server cut them), or an error frame.

// EvalSignature returns the signature of a signed eval request: the
// lowercase hex HMAC-SHA256, keyed with key, of ts + "\n" + lang in
// decimal + "\n" + code. ts is the request's ts var as sent.
func EvalSignature(key []byte, ts string, lang Modifier, code string) string {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, ts)
	io.WriteString(m, "\n"+strconv.Itoa(int(lang))+"\n")
	io.WriteString(m, code)
	return hex.EncodeToString(m.Sum(nil))
}

// FormatEvalTime formats t as the ts var of a signed eval request: Unix
// seconds with nine fraction digits, so that two requests of the same
// code never carry the same signature.
func FormatEvalTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// AppendEvalRequest appends an eval request for code in language lang (the
// language's modifier1: ModLua, ModV8, ModGo) to dst. With a nil key the
// payload is the code; otherwise it is a vars block signed with key at
// time now. A request over MaxSize bytes is ErrTooLarge; on error dst is
// returned unchanged.
func AppendEvalRequest(dst []byte, lang Modifier, code string, key []byte, now time.Time) ([]byte, error) {
	if key == nil {
		return AppendPacket(dst, ModEval, uint8(lang), []byte(code))
	}
	ts := FormatEvalTime(now)
	block, err := AppendVar(nil, "code", code)
	if err != nil {
		return dst, err
	}
	block, _ = AppendVar(block, "ts", ts)
	block, _ = AppendVar(block, "sig", EvalSignature(key, ts, lang, code))
	return AppendPacket(dst, ModEval, uint8(lang), block)
}

// EvalReply is a server's answer to an eval request.
type EvalReply struct {
	Result string // the code's value as text (lists and maps as JSON)
	Output string // what the code printed
	// Truncated is set when the server cut the result or the output to
	// its output limit.
	Truncated bool
}

// Eval runs code on a scripthost server that enabled raw code evaluation
// (modifier1 22), in the language whose modifier1 is lang (ModLua, ModV8,
// ModGo), and returns the code's value as text and what it printed. With
// a non-nil key the request is signed (servers configured with a key
// refuse anything else). See EvalReply for the whole answer.
func (c *Client) Eval(ctx context.Context, lang Modifier, code string, key []byte) (result, output string, err error) {
	rep, err := c.EvalReply(ctx, lang, code, key)
	return rep.Result, rep.Output, err
}

// EvalReply is Eval returning the whole answer, truncation included.
//
// Failures the server reports are *RemoteError values: ErrRefused (eval
// not allowed on this listener, signature missing, wrong, expired or
// replayed, language not enabled), ErrBadRequest, ErrScript (the message
// has the file and line), ErrTimeout, ErrTooLarge. A server that does not
// serve eval closes the connection without a reply: ErrUnavailable (also
// matching ErrNoResult). The Client's Timeout bounds the wait for the
// reply too: keep it above the server's eval time limit (5 s by default).
func (c *Client) EvalReply(ctx context.Context, lang Modifier, code string, key []byte) (EvalReply, error) {
	req, err := AppendEvalRequest(nil, lang, code, key, time.Now())
	if err != nil {
		return EvalReply{}, fmt.Errorf("uwsgi: eval request: %w", err)
	}
	var rep EvalReply
	err = c.exchange(ctx, req, errEvalDropped, func(cn *clientConn, h Header) (bool, error) {
		if h.Modifier1 != ModEval || h.Modifier2 != 0 {
			return false, protocolError("reply %v to an eval request", h)
		}
		block := make([]byte, h.Size)
		if _, err := io.ReadFull(cn.br, block); err != nil {
			return false, unexpected(err)
		}
		vars, err := ParseVars(nil, block, 0)
		if err != nil {
			return false, fmt.Errorf("%w: eval reply: %w", ErrProtocol, err)
		}
		rep = EvalReply{Result: vars.Get("result"), Output: vars.Get("output"), Truncated: vars.Get("truncated") == "1"}
		return true, nil
	})
	var re *RemoteError
	if err != nil && errors.Is(err, ErrNoResult) && !errors.As(err, &re) {
		// An extended connection closed without a reply, like a plain one.
		err = errEvalDropped
	}
	if err != nil {
		return EvalReply{}, err
	}
	return rep, nil
}

// errEvalDropped is a server closing the connection on an eval request,
// as servers without eval (uWSGI, scripthost by default) do.
var errEvalDropped = fmt.Errorf("%w: eval: the server closed the connection without a reply "+
	"(servers without eval enabled drop modifier1 22): %w", ErrUnavailable, ErrNoResult)
