package host

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// serveRPC serves modifier1 173: modifier2 0 answers framed, 2 is the
// PATH_INFO bridge, 3 (XML-RPC) answers uWSGI's 500, any other answers
// the raw result and closes.
func (s *Server) serveRPC(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	switch r.Modifier2 {
	case uwsgi.RPCHTTP:
		return s.serveRPCBridge(ctx, w, r)
	case uwsgi.RPCXML:
		s.log.Warn("XML-RPC requests are not supported", "remote", r.RemoteAddr)
		writeGenericError(w, 500)
		return Close
	}
	framed := r.Modifier2 == uwsgi.RPCFramed
	if len(r.Payload) == 0 {
		s.log.Info("empty RPC request", "remote", r.RemoteAddr)
		return s.rpcFail(w, r, framed, uwsgi.CodeBadRequest, "empty RPC request")
	}
	// One item more than allowed tells an overlong call from a full one.
	items, err := uwsgi.ParseArray(r.c.items[:0], r.Payload, s.lim.MaxRPCArgs+2)
	r.c.items = items[:0]
	if err == nil && len(items) == 0 {
		err = errors.New("no function name")
	}
	if err != nil {
		s.log.Info("invalid RPC request", "remote", r.RemoteAddr, "err", err)
		return s.rpcFail(w, r, framed, uwsgi.CodeBadRequest, "invalid RPC request: "+err.Error())
	}
	if len(items) > s.lim.MaxRPCArgs+1 {
		if r.Extended && framed {
			return r.Fail(w, uwsgi.CodeBadRequest, "more than "+strconv.Itoa(s.lim.MaxRPCArgs)+" RPC arguments")
		}
		items = items[:s.lim.MaxRPCArgs+1] // uWSGI ignores the extra items
	}
	ctx, _, done := api.NewScope(ctx, nil, s.lim.CallTimeout)
	result, err := s.State.RPC.CallBytes(ctx, items[0], items[1:])
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, api.ErrHarakiri) {
		err = cause // the function may have returned ctx.Err(), a plain "canceled"
	}
	done()
	if err != nil {
		s.logCallError(items[0], r, err)
		return s.rpcFail(w, r, framed, codeOf(err), err.Error())
	}
	if !framed {
		w.Write(result)
		return Close
	}
	if len(result) == 0 && !r.Extended {
		return Close // uWSGI answers an empty result with nothing at all
	}
	w.Write(uwsgi.AppendRPCHeader(w.Scratch(), len(result)))
	w.Write(result)
	return Keep
}

// rpcFail reports a failed call: an error frame for extended framed
// calls, a silent close otherwise (raw and HTTP modes have no framing).
func (s *Server) rpcFail(w *PacketWriter, r *Packet, framed bool, code uwsgi.Code, msg string) Outcome {
	if framed {
		return r.Fail(w, code, msg)
	}
	return Close
}

func (s *Server) logCallError(name []byte, r *Packet, err error) {
	switch {
	case errors.Is(err, api.ErrNoSuchFunction), errors.Is(err, api.ErrNoResult):
		s.log.Debug("RPC without result", "func", string(name), "remote", r.RemoteAddr, "err", err)
	default:
		s.log.Warn("RPC failed", "func", string(name), "remote", r.RemoteAddr, "err", err)
	}
}

// serveRPCBridge serves modifier2 2: the function and its arguments are
// the non-empty segments of PATH_INFO (not percent-decoded, like uWSGI);
// the answer is raw HTTP: 200 with the result, uWSGI's 404 when there is
// none, 500 without a function name.
func (s *Server) serveRPCBridge(ctx context.Context, w *PacketWriter, r *Packet) Outcome {
	vars, err := r.Vars(r.c.vars[:0])
	if err != nil {
		s.log.Info("invalid RPC bridge request", "remote", r.RemoteAddr, "err", err)
		return Close
	}
	r.c.vars = vars[:0]
	var parts [][]byte
	for seg := range strings.SplitSeq(vars.Get("PATH_INFO"), "/") {
		if seg != "" && len(parts) <= s.lim.MaxRPCArgs {
			parts = append(parts, []byte(seg))
		}
	}
	if len(parts) == 0 {
		writeGenericError(w, 500)
		return Close
	}
	ctx, _, done := api.NewScope(ctx, nil, s.lim.CallTimeout)
	result, err := s.State.RPC.CallBytes(ctx, parts[0], parts[1:])
	done()
	if err != nil || len(result) == 0 {
		if err != nil {
			s.logCallError(parts[0], r, err)
		}
		writeGenericError(w, 404)
		return Close
	}
	ctype := vars.Get("HTTP_ACCEPT")
	if ctype == "" || ctype == "*/*" || ctype == "*" {
		ctype = "application/binary"
	}
	w.WriteString(StatusLine(vars.Get("SERVER_PROTOCOL"), 200))
	w.WriteString("Content-Length: " + strconv.Itoa(len(result)) + "\r\nContent-Type: " + ctype + "\r\n\r\n")
	w.Write(result)
	return Close
}
