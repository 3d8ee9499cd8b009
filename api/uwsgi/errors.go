package uwsgi

import (
	"errors"
	"fmt"
)

// Codec errors. Decoders wrap them in a *FormatError that says where the
// input went wrong; test for them with errors.Is.
var (
	// ErrTooLarge: a length exceeds the protocol's or the caller's limit.
	ErrTooLarge = errors.New("uwsgi: too large")
	// ErrTruncated: the input ends inside a header, length or item.
	ErrTruncated = errors.New("uwsgi: truncated")
	// ErrEmptyKey: a vars block has a zero-length key, which uWSGI rejects.
	ErrEmptyKey = errors.New("uwsgi: empty key")
	// ErrEmptyItem: an encoder was given an empty array item; uWSGI drops
	// the whole request when the last item is empty, so none are sent.
	ErrEmptyItem = errors.New("uwsgi: empty array item")
	// ErrTooMany: more vars or items than the caller allows.
	ErrTooMany = errors.New("uwsgi: too many entries")
	// ErrMalformed: the input is not what the packet type requires.
	ErrMalformed = errors.New("uwsgi: malformed packet")
)

// FormatError is a decoding failure: what was being decoded, at which byte
// offset, and why (one of the sentinel errors above).
type FormatError struct {
	What   string // "header", "vars", "array", "rpc response", ...
	Offset int    // where in the decoded bytes the fault was found
	Err    error  // the sentinel: ErrTruncated, ErrTooLarge, ...
}

// Error says what was malformed and where.
func (e *FormatError) Error() string {
	return fmt.Sprintf("%v in %s at byte %d", e.Err, e.What, e.Offset)
}

// Unwrap returns the sentinel, such as ErrTruncated or ErrTooLarge.
func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(what string, off int, err error) error {
	return &FormatError{What: what, Offset: off, Err: err}
}
