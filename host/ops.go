package host

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/scripthost/scripthost/api"
	"github.com/scripthost/scripthost/api/uwsgi"
)

// HandleReloads serves the operator's reload and status requests with r:
// modifier1 98 (graceful reload) and 97 (brutal reload), request modifier2
// 0, confirmed with [M, 0, 1] once the new scripts serve; and 99
// (configuration request), answered with a vars block describing the
// serving generation and the last reload. Only operations listeners
// (ServeOps) accept them; elsewhere they are refused and logged.
func (s *Server) HandleReloads(r *Reloader) {
	s.Handle(uwsgi.ModReloadGraceful, HandlerFunc(func(ctx context.Context, w *PacketWriter, req *Packet) Outcome {
		return s.serveReload(ctx, w, req, r, false)
	}))
	s.Handle(uwsgi.ModReloadBrutal, HandlerFunc(func(ctx context.Context, w *PacketWriter, req *Packet) Outcome {
		return s.serveReload(ctx, w, req, r, true)
	}))
	s.Handle(uwsgi.ModConfigRequest, HandlerFunc(func(ctx context.Context, w *PacketWriter, req *Packet) Outcome {
		if !s.opsOnly(w, req) {
			return Close
		}
		w.Write(appendStatus(w.Scratch(), r.Status(), s.State))
		return Keep
	}))
}

// opsOnly refuses operator packets outside operations listeners.
func (s *Server) opsOnly(w *PacketWriter, r *Packet) bool {
	if r.Ops {
		return true
	}
	s.log.Warn("operator request refused: not an operations listener", "modifier1", r.Modifier1,
		"listener", r.Listener, "remote", r.RemoteAddr)
	r.Fail(w, uwsgi.CodeRefused, "modifier1 "+strconv.Itoa(int(r.Modifier1))+" is only served on the operations listener")
	return false
}

func (s *Server) serveReload(ctx context.Context, w *PacketWriter, r *Packet, rl *Reloader, brutal bool) Outcome {
	if !s.opsOnly(w, r) {
		return Close
	}
	if r.Modifier2 != uwsgi.ReloadRequest {
		return r.Fail(w, uwsgi.CodeBadRequest, "reload requests have modifier2 0")
	}
	s.log.Info("reload requested", "brutal", brutal, "listener", r.Listener, "remote", r.RemoteAddr)
	if err := rl.Reload(ctx, brutal); err != nil {
		msg := err.Error()
		if !r.Extended {
			w.Write(uwsgi.AppendError(w.Scratch(), uwsgi.CodeFailed, msg))
			return Close
		}
		return r.Fail(w, uwsgi.CodeFailed, msg)
	}
	out, _ := uwsgi.AppendPacket(w.Scratch(), r.Modifier1, uwsgi.ReloadConfirm, nil)
	w.Write(out)
	return Keep
}

// appendStatus encodes a status, and the containment counters of state,
// as a [99, D, 1] packet with a vars block.
func appendStatus(dst []byte, st ReloadStatus, state *api.State) []byte {
	var vs uwsgi.Vars
	add := func(k, v string) { vs = vs.Add(k, v) }
	add("generation", strconv.FormatInt(st.Generation, 10))
	if !st.LoadedAt.IsZero() {
		add("loaded_at", st.LoadedAt.UTC().Format(time.RFC3339Nano))
	}
	add("files", strings.Join(st.Files, " "))
	add("apps", strings.Join(st.Apps, ", "))
	add("rpc", strings.Join(st.RPC, " "))
	nums := make([]string, len(st.Signals))
	for i, n := range st.Signals {
		nums[i] = strconv.Itoa(int(n))
	}
	add("signals", strings.Join(nums, " "))
	add("timers", strconv.Itoa(st.Timers))
	add("reloads", strconv.Itoa(st.Reloads))
	add("failures", strconv.Itoa(st.Failures))
	add("last_error", st.LastError)
	if !st.LastTry.IsZero() {
		add("last_try", st.LastTry.UTC().Format(time.RFC3339Nano))
	}
	add("latency", st.Latency.String())
	num := func(k string, n int64) { add(k, strconv.FormatInt(n, 10)) }
	num("memory_limit", state.Memory.Limit())
	num("heap_in_use", state.Memory.Heap())
	num("memory_kills", state.Memory.Kills())
	num("pool_timeouts", state.Counters.PoolTimeouts.Load())
	num("load_timeouts", state.Counters.LoadTimeouts.Load())
	num("signals_coalesced", state.Counters.SignalsCoalesced.Load())
	num("restarts", state.Counters.Restarts.Load())
	size := vs.Size()
	for size > uwsgi.MaxSize && len(vs) > 0 { // absurdly long lists: cut the longest
		longest := 0
		for i := range vs {
			if len(vs[i].Value) > len(vs[longest].Value) {
				longest = i
			}
		}
		vs[longest].Value = vs[longest].Value[:len(vs[longest].Value)/2]
		size = vs.Size()
	}
	block, _ := vs.Append(nil)
	dst, _ = uwsgi.AppendPacket(dst, uwsgi.ModConfigRequest, 1, block)
	return dst
}
