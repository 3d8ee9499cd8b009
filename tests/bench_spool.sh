#!/usr/bin/env bash
# tests/bench_spool.sh: uWSGI 2.0.21's spooler (Python plugin) and
# scripthost's side by side, in one run, on the same disk.
#
# Each target gets a fresh spool directory under one temporary directory and
# a spooler function that answers "done" at once. For every repetition the
# targets alternate (rep 1: uwsgi first, rep 2: scripthost first, ...):
#   1. `scripthost bench --mode spool -c C -d DUR` sends spool packets
#      (modifier1 17) and counts the acknowledged ones ([255, 0, 1]: the job
#      is on disk) per second;
#   2. the time until the spool directory is empty again gives the jobs run
#      per second (end to end: stored, found, run, removed).
# Prints a markdown table of medians and the ratios scripthost / uWSGI.
#
#   bash tests/bench_spool.sh
#   REPS=3 DUR=5 C=8 bash tests/bench_spool.sh
#
# Needs uwsgi (uwsgi-core, uwsgi-plugin-python3: tests/install-peers.sh).
# Every server started here is stopped by PID at exit; waits are bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPS="${REPS:-3}"
DUR="${DUR:-5}"
C="${C:-8}"
UWSGI="${UWSGI:-uwsgi}"
export PATH="$PATH:/usr/local/go/bin"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-spool.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
log() { printf 'bench_spool: %s\n' "$*" >&2; }

BIN="$WORK/scripthost"
go build -o "$BIN" ./cmd/scripthost

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

waitping() { # ADDR
  for _ in $(seq 1 100); do
    if "$BIN" ping --timeout 1s "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "no answer on $1"; return 1
}

# uWSGI: 2 workers, one spooler process, a Python spooler function.
U_DIR="$WORK/uwsgi"; mkdir -p "$U_DIR/spool"
cat >"$U_DIR/spool.py" <<'EOF'
import uwsgi
def spooler(job):
    return uwsgi.SPOOL_OK
uwsgi.spooler = spooler
def application(env, start_response):
    start_response("200 OK", [])
    return [b""]
EOF
U_ADDR="127.0.0.1:$(freeport)"
(cd "$U_DIR" && exec "$UWSGI" --plugins python3,spooler,ping --socket "$U_ADDR" --master --processes 2 \
  --spooler "$U_DIR/spool" --spooler-quiet --wsgi-file spool.py --die-on-term --logto "$U_DIR/uwsgi.log") &
PIDS+=($!)

# scripthost: a Lua spooler function.
S_DIR="$WORK/scripthost-scripts"; mkdir -p "$S_DIR" "$WORK/scripthost-spool"
printf 'uwsgi.spooler = function(job) return uwsgi.SPOOL_OK end\n' >"$S_DIR/spool.lua"
S_ADDR="127.0.0.1:$(freeport)"
"$BIN" serve --socket "$S_ADDR" --scripts "$S_DIR" --spooler "$WORK/scripthost-spool" \
  --log-level warn >"$WORK/scripthost.log" 2>&1 &
PIDS+=($!)

waitping "$U_ADDR"
waitping "$S_ADDR"

declare -A ACK DRAIN
run() { # NAME ADDR DIR REP
  local name=$1 addr=$2 dir=$3 rep=$4 out jobs start end left
  out="$("$BIN" bench --mode spool --args "task=bench,payload=0123456789abcdef" -c "$C" -d "${DUR}s" --json "$addr")"
  jobs="$(python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["ok"], r["rps"])' <<<"$out")"
  start=$(date +%s.%N)
  for _ in $(seq 1 600); do
    left=$(find "$dir" -maxdepth 1 -name 'uwsgi_spoolfile_on_*' | wc -l)
    [ "$left" -eq 0 ] && break
    sleep 0.1
  done
  end=$(date +%s.%N)
  local ok=${jobs% *} tput=${jobs#* }
  ACK[$name,$rep]=$tput
  # jobs run per second: all acknowledged jobs over load time plus drain
  DRAIN[$name,$rep]=$(python3 -c "print(round($ok / ($DUR + $end - $start), 1))")
  log "rep $rep $name: ${tput} acks/s, ${DRAIN[$name,$rep]} jobs done/s (left after load drained in $(python3 -c "print(round($end-$start,2))") s)"
}

for rep in $(seq 1 "$REPS"); do
  if (( rep % 2 )); then
    run uwsgi "$U_ADDR" "$U_DIR/spool" "$rep"; run scripthost "$S_ADDR" "$WORK/scripthost-spool" "$rep"
  else
    run scripthost "$S_ADDR" "$WORK/scripthost-spool" "$rep"; run uwsgi "$U_ADDR" "$U_DIR/spool" "$rep"
  fi
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
vals() { local n=$1 m=$2 out=(); for rep in $(seq 1 "$REPS"); do if [ "$m" = ack ]; then out+=("${ACK[$n,$rep]}"); else out+=("${DRAIN[$n,$rep]}"); fi; done; echo "${out[@]}"; }
ua=$(median $(vals uwsgi ack)); sa=$(median $(vals scripthost ack))
ud=$(median $(vals uwsgi drain)); sd=$(median $(vals scripthost drain))
echo
echo "Spooler, c=$C, ${DUR}s per run, $REPS reps (medians); raw data in $WORK"
echo
echo "| measure | uWSGI 2.0.21 (Python spooler) | scripthost (Lua spooler) | ratio |"
echo "|---|---|---|---|"
echo "| acknowledged jobs/s (durable) | $ua | $sa | $(python3 -c "print(round($sa/$ua, 2))")x |"
echo "| jobs done/s (stored, run, removed) | $ud | $sd | $(python3 -c "print(round($sd/$ud, 2))")x |"
