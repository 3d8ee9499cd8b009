package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// servePing answers [100, n, 1] + the warning message, or accepts the
// extension hello.
func (s *Server) servePing(_ context.Context, w *PacketWriter, r *Packet) Outcome {
	if uwsgi.IsHello(r.Packet) {
		r.c.extended = true
		w.Write(uwsgi.AppendHelloReply(w.Scratch()))
		return Keep
	}
	msg := s.Warning
	if len(msg) > 80 {
		msg = msg[:80]
	}
	out, _ := uwsgi.AppendPacket(w.Scratch(), uwsgi.ModPing, uwsgi.PingPong, []byte(msg))
	w.Write(out)
	return Keep
}

// serveEcho writes the payload back without a header and closes.
func serveEcho(_ context.Context, w *PacketWriter, r *Packet) Outcome {
	w.Write(r.Payload)
	return Close
}

// serveCloseMark: the client announces it closes the connection.
func serveCloseMark(context.Context, *PacketWriter, *Packet) Outcome { return Close }

// serveSignal queues signal modifier2 for delivery and acknowledges it
// uWSGI's way: [255, 0, 1] when queued, [255, 0, 0] when not. Like uWSGI,
// an unregistered signal is acknowledged too (its delivery logs an error),
// except that extended clients are told there is no handler.
func (s *Server) serveSignal(_ context.Context, w *PacketWriter, r *Packet) Outcome {
	num := r.Modifier2
	if r.Extended && !s.State.Signals.Registered(num) {
		return ack(w, r, fmt.Errorf("no handler registered for signal %d", num))
	}
	err := s.State.Signals.Raise(num)
	if err != nil {
		s.log.Warn("signal not queued", "signal", num, "err", err)
	}
	return ack(w, r, err)
}

// serveSpool stores a spool job (modifier1 17: a vars block) with the
// state's spooler: [255, 0, 1] once it is on disk, [255, 0, 0] without a
// spooler or when it cannot be stored.
func (s *Server) serveSpool(_ context.Context, w *PacketWriter, r *Packet) Outcome {
	if s.SpoolOpsOnly && !s.opsOnly(w, r) {
		return Close
	}
	sp := s.State.Spooler
	if sp == nil {
		s.log.Warn("spool job refused: no spooler (serve --spooler DIR)", "listener", r.Listener, "remote", r.RemoteAddr)
		return ack(w, r, api.ErrNoSpooler)
	}
	// Enqueue checks the vars block (and its size) as it reads it.
	if _, err := sp.Enqueue(r.Payload, nil); err != nil {
		s.log.Error("spool job not stored", "err", err, "remote", r.RemoteAddr)
		return ack(w, r, err)
	}
	return ack(w, r, nil)
}

// ack writes a generic response: [255, 0, 1], or [255, 0, 0] (with the
// error's message for extended clients).
func ack(w *PacketWriter, r *Packet, err error) Outcome {
	if err == nil {
		out, _ := uwsgi.AppendPacket(w.Scratch(), uwsgi.ModResponse, uwsgi.ResponseOK, nil)
		w.Write(out)
		return Keep
	}
	msg := ""
	if r.Extended {
		msg = err.Error()
	}
	w.Write(uwsgi.AppendError(w.Scratch(), uwsgi.CodeFailed, msg))
	return Keep
}

// codeOf classifies an error of the shared state for an error frame.
func codeOf(err error) uwsgi.Code {
	switch {
	case errors.Is(err, api.ErrNoSuchFunction), errors.Is(err, api.ErrNotFound), errors.Is(err, api.ErrUnknownCache):
		return uwsgi.CodeNotFound
	case errors.Is(err, api.ErrNoResult):
		return uwsgi.CodeNoResult
	case errors.Is(err, api.ErrExists):
		return uwsgi.CodeExists
	case errors.Is(err, api.ErrKeyTooLarge), errors.Is(err, api.ErrValueTooLarge), errors.Is(err, uwsgi.ErrTooLarge):
		return uwsgi.CodeTooLarge
	case errors.Is(err, api.ErrTooManyArgs), errors.Is(err, api.ErrEmptyKey), errors.Is(err, uwsgi.ErrMalformed),
		errors.Is(err, uwsgi.ErrTruncated), errors.Is(err, uwsgi.ErrEmptyKey), errors.Is(err, uwsgi.ErrTooMany):
		return uwsgi.CodeBadRequest
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, api.ErrHarakiri):
		return uwsgi.CodeTimeout
	case errors.Is(err, context.Canceled):
		return uwsgi.CodeUnavailable
	}
	return uwsgi.CodeScript
}
