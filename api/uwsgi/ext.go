package uwsgi

import (
	"errors"
	"fmt"
	"strings"
)

// The scripthost extension.
//
// uWSGI answers one request per connection and reports every failure by
// closing without a byte, so a client can neither reuse connections safely
// nor tell "unknown function" from "the function failed". A scripthost
// client therefore opens each connection with a hello: a ping whose payload
// is ExtHello. uWSGI answers it like any ping ([100, 0, 1]) and closes; a
// scripthost server answers [100, len, PingExt] + ExtHello and from then on
// treats that connection as extended:
//
//   - the connection stays open after every framed response, so requests
//     can be pipelined;
//   - a request that fails is answered with an error frame,
//     [255, len, code] + a UTF-8 message, instead of a silent close, and an
//     RPC result of zero bytes is a valid [173, 0, 0];
//   - before the server closes the connection on its own (idle timeout,
//     shutdown) it sends a close mark [200, 0, 0] and reads nothing more, so
//     a client whose request crossed the close mark knows it was not
//     processed and can resend it on a new connection.
//
// Connections without the hello get uWSGI's behaviour exactly.
const ExtHello = "scripthost-ext/1"

// PingExt is the modifier2 of a pong from a server that accepted the hello.
const PingExt uint8 = 2

// AppendHello appends the extension hello packet to dst.
func AppendHello(dst []byte) []byte {
	dst, _ = AppendPacket(dst, ModPing, PingRequest, []byte(ExtHello))
	return dst
}

// IsHello reports whether a ping packet is the extension hello.
func IsHello(p Packet) bool {
	return p.Modifier1 == ModPing && p.Modifier2 == PingRequest && string(p.Payload) == ExtHello
}

// AppendHelloReply appends a server's acceptance of the hello to dst.
func AppendHelloReply(dst []byte) []byte {
	dst, _ = AppendPacket(dst, ModPing, PingExt, []byte(ExtHello))
	return dst
}

// CloseMark is the packet an extended server sends before closing a
// connection on its own.
var CloseMark = Header{Modifier1: ModCloseMark}

// Code classifies an error frame; it is the frame's modifier2.
type Code uint8

// Error frame codes. 0 and 1 keep the generic response's meanings (failed,
// ok) so a signal or spooler acknowledgement with a message stays readable.
const (
	CodeFailed      Code = 0  // the request was not carried out
	CodeNotFound    Code = 2  // no such RPC function, cache key or cache
	CodeNoResult    Code = 3  // the function returned no value
	CodeScript      Code = 4  // the script raised an error
	CodeBadRequest  Code = 5  // the request was malformed
	CodeRefused     Code = 6  // not allowed here (e.g. eval on a public listener)
	CodeExists      Code = 7  // cache set of an existing key
	CodeTimeout     Code = 8  // the work ran out of time
	CodeUnavailable Code = 9  // no handler for the modifier, or shutting down
	CodeTooLarge    Code = 10 // a size limit was exceeded
)

var codeNames = map[Code]string{
	CodeFailed: "failed", CodeNotFound: "not found", CodeNoResult: "no result",
	CodeScript: "script error", CodeBadRequest: "bad request", CodeRefused: "refused",
	CodeExists: "exists", CodeTimeout: "timeout", CodeUnavailable: "unavailable",
	CodeTooLarge: "too large",
}

// String returns the code's name, "not found" for CodeNotFound.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// Errors a peer reports, through error frames or, for servers without the
// extension, the silent close that stands for them all (ErrNoResult).
var (
	ErrNoResult    = errors.New("uwsgi: no result")
	ErrNotFound    = errors.New("uwsgi: not found")
	ErrScript      = errors.New("uwsgi: script error")
	ErrBadRequest  = errors.New("uwsgi: bad request")
	ErrRefused     = errors.New("uwsgi: refused")
	ErrExists      = errors.New("uwsgi: already exists")
	ErrUnavailable = errors.New("uwsgi: unavailable")
	ErrFailed      = errors.New("uwsgi: failed")
)

// RemoteError is an error frame received from a server.
type RemoteError struct {
	Code    Code   // the frame's modifier2: what kind of failure
	Message string // the frame's UTF-8 payload; may be empty
}

// Error returns the server's message, or the code's name when it sent none.
func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "uwsgi: remote " + e.Code.String()
	}
	return "uwsgi: remote " + e.Code.String() + ": " + e.Message
}

// Is matches the sentinel of the error's code. Not found, no result and
// script errors all match ErrNoResult too, because that is what the same
// failures look like on a uWSGI server.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrNoResult:
		return e.Code == CodeNoResult || e.Code == CodeNotFound || e.Code == CodeScript
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrScript:
		return e.Code == CodeScript
	case ErrBadRequest:
		return e.Code == CodeBadRequest
	case ErrRefused:
		return e.Code == CodeRefused
	case ErrExists:
		return e.Code == CodeExists
	case ErrUnavailable:
		return e.Code == CodeUnavailable
	case ErrTooLarge:
		return e.Code == CodeTooLarge
	case ErrTimeout:
		return e.Code == CodeTimeout
	case ErrFailed:
		return e.Code == CodeFailed
	}
	return false
}

// ErrTimeout matches a remote timeout error frame and the client's own
// deadline errors.
var ErrTimeout = errors.New("uwsgi: timeout")

// AppendError appends an error frame to dst; a message longer than MaxSize
// bytes is cut at a character boundary.
func AppendError(dst []byte, code Code, msg string) []byte {
	if len(msg) > MaxSize {
		msg = strings.ToValidUTF8(msg[:MaxSize], "")
	}
	dst, _ = AppendPacket(dst, ModResponse, uint8(code), []byte(msg))
	return dst
}

// IsErrorFrame reports whether h starts an error frame rather than the
// response the request expects. Plain generic responses ([255, 0, x], the
// signal and spooler acknowledgements) are not error frames.
func IsErrorFrame(h Header) bool {
	return h.Modifier1 == ModResponse && h.Size > 0
}
