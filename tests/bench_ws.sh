#!/usr/bin/env bash
# tests/bench_ws.sh: WebSockets on scripthost, uWSGI 2.0.21 and Daphne, in
# one run, with one client (tests/wsbench).
#
# Targets, each on a free 127.0.0.1 port:
#   scripthost-api      examples/websocket-echo's Lua echo (uWSGI's
#                       websocket API: a call, and an interpreter, per socket)
#   scripthost-channels a Lua websocket.receive consumer that echoes (no
#                       interpreter per socket)
#   scripthost-chat     examples/chat (the broadcast and idle rows)
#   uwsgi               uWSGI's Python echo (websocket_handshake/recv/send),
#                       2 processes: it holds 2 sockets at once, so it is
#                       measured with 2 connections
#   daphne              Daphne with a Channels echo consumer, in-memory layer
# Rows: echo round trips/s (C connections, and 2), idle sockets held with the
# server's RSS, and a broadcast to B members (p99 delivery latency).
#
#   bash tests/bench_ws.sh
#   DUR=5 C=100 IDLE=10000 B=1000 REPS=3 bash tests/bench_ws.sh
#
# Needs uwsgi (uwsgi-core, uwsgi-plugin-python3) and daphne
# (apt-get install daphne python3-django-channels). Every server started
# here is stopped by PID at exit; waits are bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DUR="${DUR:-5}"
C="${C:-100}"
IDLE="${IDLE:-10000}"
B="${B:-1000}"
REPS="${REPS:-3}"
export PATH="$PATH:/usr/local/go/bin"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-ws.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
log() { printf 'bench_ws: %s\n' "$*" >&2; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() {
  for _ in $(seq 1 150); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "nothing listens on $1"; return 1
}
cpu_ticks() { # PID: CPU ticks of the process and its children
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
rss_kb() { # PID: RSS of the process and its children, KiB
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

go build -o "$WORK/scripthost" ./cmd/scripthost
go build -o "$WORK/wsbench" ./tests/wsbench
BIN="$WORK/scripthost" WSB="$WORK/wsbench"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) > 2 * IDLE + 100 )) || log "the file limit $(ulimit -n) is low for $IDLE idle sockets: the idle row may fail"

declare -A PORT PID
start() { # NAME CMD...
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=($!)
}

PORT[scripthost-api]=$(freeport)
start scripthost-api "$BIN" serve --supervise=false --socket "127.0.0.1:$(freeport)" --http "127.0.0.1:${PORT[scripthost-api]}" \
  --scripts examples/websocket-echo --mount /=echo --max-websockets $((C + 10)) --log-level warn

mkdir -p "$WORK/channels"
cat >"$WORK/channels/echo.lua" <<'EOF'
uwsgi.register_consumer("websocket.receive", function(msg)
  uwsgi.channel_send(msg.reply_channel, {content = msg.content, binary = msg.binary})
end)
EOF
PORT[scripthost-channels]=$(freeport)
start scripthost-channels "$BIN" serve --supervise=false --socket "127.0.0.1:$(freeport)" \
  --http "127.0.0.1:${PORT[scripthost-channels]}" --scripts "$WORK/channels" --log-level warn

PORT[scripthost-chat]=$(freeport)
start scripthost-chat "$BIN" serve --supervise=false --socket "127.0.0.1:$(freeport)" \
  --http "127.0.0.1:${PORT[scripthost-chat]}" --scripts examples/chat --log-level warn

mkdir -p "$WORK/uwsgi"
cat >"$WORK/uwsgi/echo.py" <<'EOF'
import uwsgi
def application(env, start_response):
    uwsgi.websocket_handshake()
    while True:
        uwsgi.websocket_send(uwsgi.websocket_recv())
EOF
PORT[uwsgi]=$(freeport)
(cd "$WORK/uwsgi" && exec uwsgi --plugins python3 --http-socket "127.0.0.1:${PORT[uwsgi]}" --master --processes 2 \
  --wsgi-file echo.py --die-on-term --disable-logging --logto "$WORK/uwsgi/uwsgi.log") &
PID[uwsgi]=$!; PIDS+=($!)

mkdir -p "$WORK/daphne"
cat >"$WORK/daphne/echoapp.py" <<'EOF'
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=["channels"], ALLOWED_HOSTS=["*"],
                   CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
django.setup()
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)

application = ProtocolTypeRouter({"websocket": URLRouter([path("ws", Echo.as_asgi())])})
EOF
PORT[daphne]=$(freeport)
(cd "$WORK/daphne" && exec daphne -b 127.0.0.1 -p "${PORT[daphne]}" echoapp:application) >"$WORK/daphne/daphne.log" 2>&1 &
PID[daphne]=$!; PIDS+=($!)

for t in scripthost-api scripthost-channels scripthost-chat uwsgi daphne; do waitport "${PORT[$t]}"; done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

declare -A RPS P99 CPU
HZ=$(getconf CLK_TCK)
echo_run() { # TARGET PATH CONNS
  local t=$1 path=$2 c=$3 rps=() p99=() cpu=() out t0 t1 ok
  for rep in $(seq 1 "$REPS"); do
    t0=$(cpu_ticks "${PID[$t]}")
    out="$("$WSB" -mode echo -c "$c" -d "${DUR}s" "ws://127.0.0.1:${PORT[$t]}$path")"
    t1=$(cpu_ticks "${PID[$t]}")
    ok=$(field ok <<<"$out")
    rps+=("$(field rps <<<"$out")"); p99+=("$(field p99_us <<<"$out")")
    cpu+=("$(python3 -c "print(round(($t1 - $t0) / $HZ * 1e6 / max($ok, 1), 1))")")
    log "echo $t c=$c rep $rep: $(field rps <<<"$out") round trips/s, p99 $(field p99_us <<<"$out") µs, server CPU ${cpu[-1]} µs/round trip, errors $(field errors <<<"$out")"
  done
  RPS[$t,$c]=$(median "${rps[@]}"); P99[$t,$c]=$(median "${p99[@]}"); CPU[$t,$c]=$(median "${cpu[@]}")
}

echo_run scripthost-api / "$C"
echo_run scripthost-channels /ws "$C"
echo_run daphne /ws "$C"
echo_run scripthost-api / 2
echo_run uwsgi / 2

# Idle sockets on the chat example: RSS before and while they are held.
before=$(rss_kb "${PID[scripthost-chat]}")
"$WSB" -mode idle -c "$IDLE" -hold 8s "ws://127.0.0.1:${PORT[scripthost-chat]}/ws" >"$WORK/idle.json" 2>"$WORK/idle.err" &
idle_pid=$!
for _ in $(seq 1 600); do grep -q "all open" "$WORK/idle.err" 2>/dev/null && break; sleep 0.1; done
sleep 2
held=$(rss_kb "${PID[scripthost-chat]}")
wait "$idle_pid" || log "idle run failed: $(cat "$WORK/idle.err")"
alive=$(field alive <"$WORK/idle.json" 2>/dev/null || echo 0)

bout="$("$WSB" -mode broadcast -c "$B" -n 20 "ws://127.0.0.1:${PORT[scripthost-chat]}/ws")"

r() { python3 -c "print(round($1, 2))"; }
echo
echo "WebSockets, ${DUR}s per echo run, $REPS reps (medians); raw data in $WORK"
echo
echo "| row | scripthost | peer | ratio | server CPU µs per round trip, ours / peer |"
echo "|---|---|---|---|---|"
row() { # TITLE OURS-KEY PEER-KEY
  echo "| $1 | ${RPS[$2]} (p99 ${P99[$2]} µs) | ${RPS[$3]} (p99 ${P99[$3]} µs) | $(r "${RPS[$2]}/${RPS[$3]}")x | ${CPU[$2]} / ${CPU[$3]} |"
}
row "echo round trips/s, c=$C, uWSGI API Lua echo vs Daphne" "scripthost-api,$C" "daphne,$C"
row "echo round trips/s, c=$C, Lua consumer echo vs Daphne" "scripthost-channels,$C" "daphne,$C"
row "echo round trips/s, c=2, Lua echo vs uWSGI Python echo (2 processes)" "scripthost-api,2" "uwsgi,2"
row "echo round trips/s, scripthost c=$C vs uWSGI at its most (c=2)" "scripthost-api,$C" "uwsgi,2"
echo "| $IDLE idle sockets (chat example): alive, RSS held (before) | $alive alive, $((held / 1024)) MB ($((before / 1024)) MB) | | | |"
echo "| broadcast to $B members, 20 messages: delivered, p50 / p99 | $(field delivered <<<"$bout")/$(field want <<<"$bout"), $(field p50_us <<<"$bout") / $(field p99_us <<<"$bout") µs | | | |"
