#!/usr/bin/env bash
# tests/bench.sh: uWSGI 2.0.21 and scripthost side by side, in one run.
#
# Starts the real uWSGI (Debian uwsgi-core with the lua51, rpc and ping
# plugins, 2 worker processes, tests/testdata/uwsgi/rpc.lua and app.lua) and
# a scripthost server, each on a free 127.0.0.1 port, and runs the same load
# against both with `scripthost bench` (every answer checked). For every
# test the targets alternate run by run (rep 1: uwsgi then scripthost,
# rep 2: scripthost then uwsgi, ...) so that slow drift of the machine hits
# both alike; before every run it waits (bounded) for a quiet machine, and it
# measures the server's CPU (the process and its descendants, from
# /proc/PID/stat) around the run. Prints a markdown table of medians.
#
# Run from the repository root (`make bench` does):
#   bash tests/bench.sh
#   REPS=1 DUR=2 TESTS="rpc_oneshot_c32 ping_c32" bash tests/bench.sh
#
# Environment:
#   REPS=3        repetitions per test and target (1..9); medians are reported
#   DUR=5         seconds per measured run (1..60)
#   TESTS         space-separated subset of (default: all):
#                   rpc_oneshot_c32    RPC hello, a new connection per call, c=32
#                   rpc_oneshot_c1     the same, c=1
#                   rpc_keepalive_c32  RPC hello with --keepalive, c=32 (uWSGI
#                                      closes after every answer, so it
#                                      reconnects for every call)
#                   ping_c32           ping (modifier1 100), c=32
#                   rpc_big_1mib_c4    RPC big(1048576), 1 MiB results, c=4
#                   lua_hello_c32      Lua WSAPI GET /hello (modifier1 6), c=32
#                   http_nginx_c32     wrk -t2 -c32 -> nginx -> each server,
#                                      uwsgi_modifier1 6, GET /hello
#                 Tests a target does not serve (found by one probe request)
#                 are skipped with a note; http_nginx_c32 also needs nginx, wrk.
#   SCRIPTHOST_CMD  command that starts the scripthost target; the word ADDR
#                 is replaced with its address (127.0.0.1:PORT), BIN with the
#                 scripthost binary this script builds, EMBED with
#                 examples/embed built here. Default: the first of these that
#                 answers RPC hello (the last one is used in any case):
#                   "BIN serve --socket ADDR --scripts DIR"  when `serve --help`
#                       mentions --scripts (DIR: a copy of rpc.lua, app.lua)
#                   "EMBED --socket ADDR"  when examples/embed exists (Go RPC
#                       functions hello, echo, add, big with rpc.lua's contract)
#                   "BIN serve --socket ADDR"  when neither exists (ping only)
#   UWSGI=uwsgi   the uWSGI binary
#   QUIET_MAX=25 QUIET_WAIT=30  before each run wait (at most QUIET_WAIT s)
#                 until the machine's CPU use over 1 s is at most QUIET_MAX %
#                 of one core
#   NOISE_MAX=30 RETRIES=1  a run during which hypervisor steal + CPU of
#                 other processes exceeded NOISE_MAX % of one core is run
#                 again (at most RETRIES times); the least noisy one is kept
#
# Output: the table on stdout; progress on stderr; raw data (results.tsv,
# raw.jsonl, server logs, table.md) in a new temporary directory whose path
# is printed. Every run is bounded (DUR, per-request timeouts, `timeout`
# around each client), readiness waits are bounded (10 s), and every server
# started here is stopped by PID at exit.
set -euo pipefail

START_SECONDS=$SECONDS
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REPS="${REPS:-3}"
DUR="${DUR:-5}"
ALL_TESTS="rpc_oneshot_c32 rpc_oneshot_c1 rpc_keepalive_c32 ping_c32 rpc_big_1mib_c4 lua_hello_c32 http_nginx_c32"
TESTS="${TESTS:-$ALL_TESTS}"
UWSGI="${UWSGI:-uwsgi}"
QUIET_MAX="${QUIET_MAX:-25}"
QUIET_WAIT="${QUIET_WAIT:-30}"
NOISE_MAX="${NOISE_MAX:-30}"
RETRIES="${RETRIES:-1}"
LUA_DIR="tests/testdata/uwsgi"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

die() { echo "bench.sh: $*" >&2; exit 2; }
note() { echo "# $*" >&2; }

[[ "$REPS" =~ ^[1-9]$ ]] || die "REPS must be 1..9"
[[ "$DUR" =~ ^[0-9]+$ ]] && ((DUR >= 1 && DUR <= 60)) || die "DUR must be 1..60 seconds"
for n in QUIET_MAX QUIET_WAIT NOISE_MAX RETRIES; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
for t in $TESTS; do
  [[ " $ALL_TESTS " == *" $t "* ]] || die "unknown test '$t' (tests: $ALL_TESTS)"
done

# ---------------------------------------------------------------- dependencies
command -v go >/dev/null 2>&1 || die "go not found on PATH (needed to build scripthost)"
command -v "$UWSGI" >/dev/null 2>&1 ||
  die "uwsgi not found: install the peers first (make deps, or apt-get install uwsgi-core uwsgi-plugin-lua5.1)"
for f in rpc.lua app.lua; do
  [[ -r "$LUA_DIR/$f" ]] || die "$LUA_DIR/$f is missing (the uWSGI reference scripts)"
done
for c in awk getconf timeout mktemp; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
CLK_TCK="$(getconf CLK_TCK)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/scripthost-bench.XXXXXX")"
chmod 755 "$WORK" # nginx workers run as nobody when started as root
RAW="$WORK/raw.jsonl"
RES="$WORK/results.tsv"
: >"$RAW"
: >"$RES"
note "results in $WORK"

# ---------------------------------------------------------------- processes
STARTED=()       # PIDs started here (servers, nginx)
declare -A TREE  # PID -> it and its descendants, recorded when ready

# descendants PID: the PID and all its descendants, one per line.
descendants() {
  local table
  table="$(cat /proc/[0-9]*/stat 2>/dev/null |
    awk '{ l = $0; pid = $1; sub(/^.*\) /, "", l); split(l, f, " "); print pid, f[2] }')" || true
  awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END {
      q[1] = root; n = 1
      for (i = 1; i <= n; i++) {
        print q[i]
        m = split(kids[q[i]], c, " ")
        for (j = 1; j <= m; j++) q[++n] = c[j]
      }
    }' <<<"$table"
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop_pid PID SIGNAL: signal the process, wait (5 s at most), then SIGKILL
# it and whatever is left of its recorded descendants.
stop_pid() {
  local pid="$1" sig="$2" i p
  alive "$pid" && kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  for p in $pid ${TREE[$pid]:-}; do
    alive "$p" && kill -KILL "$p" 2>/dev/null || true
  done
  wait "$pid" 2>/dev/null || true
}

STOP_SIG=()  # signal per started PID (same index as STARTED)
cleanup() {
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    stop_pid "${STARTED[$i]}" "${STOP_SIG[$i]}"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a TCP port of 127.0.0.1 nothing listens on, below the ephemeral
# range (which the load's own connections use).
USED_PORTS=" "
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  return 1
}

# wait_port PID PORT [LOG PATTERN]: wait (10 s at most) until PID is alive
# and PORT accepts connections (and LOG contains PATTERN, when given).
wait_port() {
  local pid="$1" port="$2" log="${3:-}" pat="${4:-}" i
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      if [[ -z "$pat" ]] || grep -q -- "$pat" "$log" 2>/dev/null; then
        return 0
      fi
    fi
    sleep 0.1
  done
  return 1
}

# start NAME SIGNAL LOG READY_PATTERN CMD...: start a server whose command
# contains the word PORT; up to three ports are tried (a port can be taken
# between the check and the bind). Sets STARTED_PID and STARTED_PORT.
start() {
  local name="$1" sig="$2" log="$3" pat="$4" try port pid w
  shift 4
  for try in 1 2 3; do
    port="$(free_port)" || die "no free port for $name"
    local cmd=()
    for w in "$@"; do cmd+=("${w//PORT/$port}"); done
    "${cmd[@]}" >"$log" 2>&1 </dev/null &
    pid=$!
    STARTED+=("$pid")
    STOP_SIG+=("$sig")
    if wait_port "$pid" "$port" "$log" "$pat"; then
      sleep 0.2
      TREE[$pid]="$(descendants "$pid" | tr '\n' ' ')"
      STARTED_PID="$pid"
      STARTED_PORT="$port"
      return 0
    fi
    stop_pid "$pid" "$sig"
    if ! grep -qiE 'address already in use|in use by another' "$log" 2>/dev/null; then
      break
    fi
    note "$name: port $port taken, trying another"
  done
  echo "bench.sh: $name did not become ready within 10 s; its log ($log):" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
}

# ---------------------------------------------------------------- build
mkdir -p "$WORK/bin"
note "building scripthost"
go build -o "$WORK/bin/scripthost" ./cmd/scripthost || die "go build ./cmd/scripthost failed"
BIN="$WORK/bin/scripthost"

# Candidates for the scripthost target, "description|command", tried in
# order: the first that serves RPC hello (one probe request) is used, the
# last one in any case.
CANDIDATES=()
if [[ -n "${SCRIPTHOST_CMD:-}" ]]; then
  CANDIDATES+=("SCRIPTHOST_CMD ($SCRIPTHOST_CMD)|$SCRIPTHOST_CMD")
else
  # (help text captured first: grep -q closing the pipe early would make
  # the pipeline fail under pipefail)
  serve_help="$("$BIN" serve --help 2>&1 || true)"
  if grep -qE -- '-{1,2}scripts' <<<"$serve_help"; then
    mkdir -p "$WORK/scripts"
    cp "$LUA_DIR/rpc.lua" "$LUA_DIR/app.lua" "$WORK/scripts/"
    CANDIDATES+=("scripthost serve --scripts (rpc.lua, app.lua)|BIN serve --socket ADDR --scripts $WORK/scripts")
  fi
  if compgen -G "examples/embed/*.go" >/dev/null; then
    CANDIDATES+=("examples/embed (host.Server with Go RPC functions hello, echo, add, big)|EMBED --socket ADDR")
  fi
  if ((${#CANDIDATES[@]} == 0)); then
    CANDIDATES+=("scripthost serve (no scripts: only ping can be compared)|BIN serve --socket ADDR")
  fi
fi

# argv_of COMMAND: sets ARGV from a command line, ADDR -> 127.0.0.1:PORT,
# BIN -> the scripthost binary, EMBED -> examples/embed (built on first use).
argv_of() {
  local w words
  read -r -a words <<<"$1"
  [[ " ${words[*]} " == *ADDR* ]] || die "SCRIPTHOST_CMD must contain the word ADDR (the address to listen on)"
  ARGV=()
  for w in "${words[@]}"; do
    w="${w//ADDR/127.0.0.1:PORT}"
    if [[ "$w" == BIN ]]; then
      w="$BIN"
    elif [[ "$w" == EMBED ]]; then
      if [[ ! -x "$WORK/bin/embed" ]]; then
        note "building examples/embed"
        go build -o "$WORK/bin/embed" ./examples/embed || die "go build ./examples/embed failed"
      fi
      w="$WORK/bin/embed"
    fi
    ARGV+=("$w")
  done
}

# ---------------------------------------------------------------- helpers
# The measurements below run no other process (builtins only), so that a
# loaded machine cannot stretch the time between a reading and its clock.
# pid_ticks PID...: sets PT to utime + stime (+ those of reaped children) in
# clock ticks.
pid_ticks() {
  local p line f
  PT=0
  for p in "$@"; do
    { read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
    line="${line##*) }"
    read -r -a f <<<"$line"
    PT=$((PT + f[11] + f[12] + f[13] + f[14]))
  done
}
# machine_ticks: sets MT_BUSY and MT_STEAL (clock ticks of all CPUs; busy
# excludes steal, the time the hypervisor gave to someone else) and MT_NS,
# the wall clock in nanoseconds.
machine_ticks() {
  local cpu u n s i io irq sirq st rest
  read -r cpu u n s i io irq sirq st rest </proc/stat
  MT_BUSY=$((u + n + s + irq + sirq))
  MT_STEAL=$st
  MT_NS=$((${EPOCHREALTIME/[.,]/} * 1000))
}
# pct TICKS WALL_NS: CPU % of one core.
pct() { awk -v t="$1" -v hz="$CLK_TCK" -v w="$2" 'BEGIN { if (w > 0) printf "%.0f", t / hz / (w / 1e9) * 100; else print 0 }'; }
# jnum KEY JSON: a number of a JSON line.
jnum() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$2"; }
median() {
  printf '%s\n' "$@" | grep -E '^-?[0-9.]+(e[-+]?[0-9]+)?$' | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }' || true
}
# to_us VALUE: wrk latency ("5.50ms") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; m = 1; if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; printf "%.1f", n * m }'
}

# wait_quiet: wait (QUIET_WAIT s at most) until the machine used at most
# QUIET_MAX % of one core over 1 s; prints the last value seen.
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT)) b0 w0 busy
  while :; do
    machine_ticks
    b0=$MT_BUSY w0=$MT_NS
    sleep 1
    machine_ticks
    busy="$(pct $((MT_BUSY - b0)) $((MT_NS - w0)))"
    if ((busy <= QUIET_MAX || SECONDS >= deadline)); then
      echo "$busy"
      return 0
    fi
  done
}

BENCH() { timeout $((DUR + 60)) "$BIN" bench --json --timeout 5s "$@"; }

# ---------------------------------------------------------------- servers
NAMES=(uwsgi scripthost)
ADDRS=()
PIDS=() # PID lists for CPU accounting
note "starting uWSGI"
start uwsgi INT "$WORK/uwsgi.log" "spawned uWSGI worker 2 " \
  "$UWSGI" --plugins lua51,rpc,ping --master --processes 2 --die-on-term \
  --socket 127.0.0.1:PORT --listen 1024 \
  --lua-load "$ROOT/$LUA_DIR/rpc.lua" --lua "$ROOT/$LUA_DIR/app.lua" \
  --cache2 name=default,items=1000 --disable-logging
ADDRS+=("127.0.0.1:$STARTED_PORT")
PIDS+=("${TREE[$STARTED_PID]}")

STARTUP_NOTES=()
for ((c = 0; c < ${#CANDIDATES[@]}; c++)); do
  SH_DESC="${CANDIDATES[$c]%%|*}"
  argv_of "${CANDIDATES[$c]#*|}"
  note "starting scripthost target: $SH_DESC"
  start scripthost TERM "$WORK/scripthost-$c.log" "" "${ARGV[@]}"
  if ((c == ${#CANDIDATES[@]} - 1)); then
    break
  fi
  out="$(BENCH -n 1 -c 1 --expect "Hello World" "127.0.0.1:$STARTED_PORT" 2>/dev/null)" || true
  [[ "$(jnum ok "$out")" == 1 ]] && break
  STARTUP_NOTES+=("$SH_DESC does not serve RPC hello (yet): the next candidate was used")
  note "${STARTUP_NOTES[-1]}"
  stop_pid "$STARTED_PID" TERM
done
ADDRS+=("127.0.0.1:$STARTED_PORT")
PIDS+=("${TREE[$STARTED_PID]}")

# ---------------------------------------------------------------- tests
# test_args TEST: sets ARGS (scripthost bench flags), UNIT, PROBE, DESC.
test_args() {
  case "$1" in
    rpc_oneshot_c32) ARGS=(--func hello --expect "Hello World" -c 32); PROBE=rpc; UNIT="calls/s"; DESC="RPC hello, new connection per call, c=32" ;;
    rpc_oneshot_c1) ARGS=(--func hello --expect "Hello World" -c 1); PROBE=rpc; UNIT="calls/s"; DESC="RPC hello, new connection per call, c=1" ;;
    rpc_keepalive_c32) ARGS=(--func hello --expect "Hello World" --keepalive -c 32); PROBE=rpc; UNIT="calls/s"; DESC="RPC hello, --keepalive (uWSGI reconnects every call), c=32" ;;
    ping_c32) ARGS=(--mode ping -c 32); PROBE=ping; UNIT="pings/s"; DESC="ping, c=32" ;;
    rpc_big_1mib_c4) ARGS=(--func big --args 1048576 --expect-len 1048576 --expect-fill x -c 4); PROBE=big; UNIT="calls/s (= MiB/s)"; DESC="RPC big 1 MiB result, c=4" ;;
    lua_hello_c32) ARGS=(--mode request --modifier1 6 --uri /hello --expect "Hello World" -c 32); PROBE=lua; UNIT="req/s"; DESC="Lua WSAPI GET /hello (modifier1 6), c=32" ;;
    http_nginx_c32) ARGS=(); PROBE=lua; UNIT="req/s"; DESC="HTTP wrk -t2 -c32 -> nginx -> server, GET /hello" ;;
  esac
}

# probe KIND TARGET_INDEX: one checked request.
probe() {
  local a=(-n 1 -c 1)
  case "$1" in
    rpc) a+=(--func hello --expect "Hello World") ;;
    ping) a+=(--mode ping) ;;
    big) a+=(--func big --args 1048576 --expect-len 1048576 --expect-fill x) ;;
    lua) a+=(--mode request --modifier1 6 --uri /hello --expect "Hello World") ;;
  esac
  local out
  out="$(BENCH "${a[@]}" "${ADDRS[$2]}" 2>/dev/null)" || true
  [[ "$(jnum ok "$out")" == 1 ]]
}

declare -A PROBED SKIP
NOTES=("${STARTUP_NOTES[@]}")
for t in $TESTS; do
  test_args "$t"
  for k in 0 1; do
    key="$PROBE,$k"
    if [[ -z "${PROBED[$key]:-}" ]]; then
      if probe "$PROBE" "$k"; then PROBED[$key]=PASS; else PROBED[$key]=FAIL; fi
    fi
  done
  if [[ "${PROBED[$PROBE,0]}" != PASS ]]; then
    SKIP[$t]="uWSGI failed the $PROBE probe (see $WORK/uwsgi.log)"
  elif [[ "${PROBED[$PROBE,1]}" != PASS ]]; then
    SKIP[$t]="the scripthost target does not serve it ($PROBE probe failed)"
  elif [[ "$t" == http_nginx_c32 ]] && ! { command -v nginx >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1; }; then
    SKIP[$t]="nginx or wrk not installed"
  fi
  [[ -n "${SKIP[$t]:-}" ]] && NOTES+=("$t skipped: ${SKIP[$t]}") && note "$t skipped: ${SKIP[$t]}"
done

# nginx in front of each target, for http_nginx_c32.
HTTP=("" "")
NGINX_PIDS=("" "")
if [[ " $TESTS " == *" http_nginx_c32 "* && -z "${SKIP[http_nginx_c32]:-}" ]]; then
  for k in 0 1; do
    pre="$WORK/nginx-${NAMES[$k]}"
    mkdir -p "$pre"
    chmod 755 "$pre"
    port="$(free_port)" || die "no free port for nginx"
    sed -e "s#@PREFIX@#$pre#g" -e "s#@UPSTREAM@#${ADDRS[$k]}#g" -e "s#@LISTEN@#127.0.0.1:$port#g" \
      tests/bench/nginx.conf.in >"$pre/nginx.conf"
    note "starting nginx in front of ${NAMES[$k]} on 127.0.0.1:$port"
    nginx -t -q -p "$pre/" -e "$pre/error.log" -c "$pre/nginx.conf" >"$pre/test.log" 2>&1 ||
      { cat "$pre/test.log" >&2; die "nginx rejects $pre/nginx.conf"; }
    nginx -p "$pre/" -e "$pre/error.log" -c "$pre/nginx.conf" >"$pre/nginx.out" 2>&1 </dev/null &
    pid=$!
    STARTED+=("$pid")
    STOP_SIG+=(QUIT)
    wait_port "$pid" "$port" || { cat "$pre/error.log" >&2 || true; die "nginx did not start (see $pre/error.log)"; }
    sleep 0.2
    TREE[$pid]="$(descendants "$pid" | tr '\n' ' ')"
    HTTP[$k]="127.0.0.1:$port"
    NGINX_PIDS[$k]="${TREE[$pid]}"
    body="$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3; cat <&3" 2>/dev/null | tail -n 1)" || true
    if [[ "$body" != "Hello World" ]]; then
      SKIP[http_nginx_c32]="GET /hello through nginx to ${NAMES[$k]} did not answer Hello World"
      NOTES+=("http_nginx_c32 skipped: ${SKIP[http_nginx_c32]}")
      note "${NOTES[-1]}"
      break
    fi
  done
fi

# run_one TEST K REP: one measured run; sets LAST_TSV and LAST_NOISE.
run_one() {
  local t="$1" k="$2" rep="$3" name="${NAMES[$k]}" addr="${ADDRS[$k]}"
  local spids="${PIDS[$k]}" npids="${NGINX_PIDS[$k]}"
  test_args "$t"
  # Warm-up outside the measured window (connections, caches, JIT-less
  # interpreters alike).
  if [[ "$t" != http_nginx_c32 ]]; then
    BENCH -n 200 "${ARGS[@]}" "$addr" >/dev/null 2>&1 || true
  fi
  local bg m0 st0 m1 st1 s0 s1 n0 n1 w0 w1 out metric p50 p99 errs okc ccpu reconn client_cpu_s
  bg="$(wait_quiet)"
  machine_ticks
  m0=$MT_BUSY st0=$MT_STEAL w0=$MT_NS
  pid_ticks $spids
  s0=$PT
  pid_ticks $npids
  n0=$PT
  if [[ "$t" == http_nginx_c32 ]]; then
    local tf="$WORK/wrk-time.$$" wf="$WORK/wrk-$name-$rep.txt" TIMEFORMAT='%U %S'
    { time timeout $((DUR + 30)) wrk -t2 -c32 -d"${DUR}s" --latency -s tests/bench/wrk-check.lua \
      "http://${HTTP[$k]}/hello" >"$wf" 2>&1; } 2>"$tf" || true
    w1=$((${EPOCHREALTIME/[.,]/} * 1000))
    out="$(cat "$wf")"
    client_cpu_s="$(awk 'NF == 2 { print $1 + $2 }' "$tf")"
    rm -f "$tf"
    metric="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
    okc="$(awk '/requests in/ { print $1 }' <<<"$out")"
    p50="$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
    p99="$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
    errs="$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } /^bad_responses:/ { n += $2 } END { print n + 0 }' <<<"$out")"
    reconn=0
    ccpu="$(awk -v c="${client_cpu_s:-0}" -v w="$((w1 - w0))" 'BEGIN { printf "%.0f", c / (w / 1e9) * 100 }')"
    printf '{"label":"%s/%s/%s","tool":"wrk","rps":%s,"ok":%s,"p50_us":%s,"p99_us":%s,"errors":%s,"client_cpu_s":%s}\n' \
      "$name" "$t" "$rep" "${metric:-0}" "${okc:-0}" "${p50:-0}" "${p99:-0}" "$errs" "${client_cpu_s:-0}" >>"$RAW"
  else
    out="$(BENCH -d "${DUR}s" --label "$name/$t/$rep" "${ARGS[@]}" "$addr" 2>>"$WORK/bench.stderr")" || true
    echo "$out" >>"$RAW"
    metric="$(jnum rps "$out")"
    okc="$(jnum ok "$out")"
    p50="$(jnum p50_us "$out")"
    p99="$(jnum p99_us "$out")"
    errs="$(jnum errors "$out")"
    reconn="$(jnum reconnects "$out")"
    ccpu="$(jnum client_cpu_pct "$out")"
  fi
  machine_ticks
  m1=$MT_BUSY st1=$MT_STEAL w1=$MT_NS
  pid_ticks $spids
  s1=$PT
  pid_ticks $npids
  n1=$PT
  local wall=$((w1 - w0)) scpu ncpu busy steal other sreq
  scpu="$(pct $((s1 - s0)) "$wall")"
  ncpu="-"
  [[ -n "$npids" && "$t" == http_nginx_c32 ]] && ncpu="$(pct $((n1 - n0)) "$wall")"
  busy="$(pct $((m1 - m0)) "$wall")"
  steal="$(pct $((st1 - st0)) "$wall")"
  other="$(awk -v b="$busy" -v c="${ccpu:-0}" -v s="$scpu" -v n="$ncpu" 'BEGIN { if (n == "-") n = 0; o = b - c - s - n; if (o < 0) o = 0; printf "%.0f", o }')"
  sreq="$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v n="${okc:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')"
  [[ -n "$metric" ]] || { metric="-"; errs="${errs:-?}"; note "$name $t rep $rep: no result (see $WORK/bench.stderr)"; }
  LAST_TSV="$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' \
    "$name" "$t" "$rep" "$metric" "${p50:--}" "${p99:--}" "${errs:--}" "${okc:-0}" "${reconn:-0}" \
    "${ccpu:--}" "$scpu" "$sreq" "$ncpu" "$other" "$steal" "$bg")"
  LAST_NOISE=$((${other:-0} + ${steal:-0}))
  printf '  %-10s %-17s rep %s: %10s %s  p50 %8s µs  p99 %8s µs  err %s  reconn %s  CPU%%: client %s server %s (%s µs/req) nginx %s other %s steal %s (bg before %s)\n' \
    "$name" "$t" "$rep" "$metric" "$UNIT" "${p50:--}" "${p99:--}" "${errs:--}" "${reconn:-0}" "${ccpu:--}" "$scpu" "$sreq" "$ncpu" "$other" "$steal" "$bg" >&2
}

RUN_TESTS=()
for t in $TESTS; do [[ -z "${SKIP[$t]:-}" ]] && RUN_TESTS+=("$t"); done
est=$((${#RUN_TESTS[@]} * REPS * 2 * (DUR + 3)))
note "running ${#RUN_TESTS[@]} tests x $REPS reps x 2 targets x ${DUR}s (about ${est} s plus quiet waits)"

for t in "${RUN_TESTS[@]}"; do
  for ((rep = 1; rep <= REPS; rep++)); do
    if ((rep % 2)); then order=(0 1); else order=(1 0); fi
    for k in "${order[@]}"; do
      best=""
      best_noise=999999
      reruns=0
      for ((try = 0; try <= RETRIES; try++)); do
        run_one "$t" "$k" "$rep"
        if ((LAST_NOISE < best_noise)); then
          best="$LAST_TSV"
          best_noise=$LAST_NOISE
        fi
        ((LAST_NOISE <= NOISE_MAX)) && break
        if ((try < RETRIES)); then
          reruns=$((reruns + 1))
          note "noisy run (steal + other ${LAST_NOISE}% > ${NOISE_MAX}%), running it again"
        fi
      done
      printf '%s\t%s\n' "$best" "$reruns" >>"$RES"
    done
  done
done

# ---------------------------------------------------------------- table
# col TARGET TEST COLUMN: the values of one column over the repetitions.
col() { awk -F'\t' -v n="$1" -v t="$2" -v c="$3" '$1 == n && $2 == t { print $c }' "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
fmt0() { awk -v v="$1" 'BEGIN { if (v ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) printf "%.0f", v; else print v }'; }

{
  echo "# scripthost vs uWSGI, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- machine: $(nproc) cores, $(uname -r); $REPS x ${DUR}s per test and target, medians; runs interleaved"
  echo "- uWSGI: $("$UWSGI" --version 2>/dev/null || echo '?') (lua51, rpc, ping plugins; --master --processes 2)"
  echo "- scripthost: $SH_DESC"
  echo "- client: scripthost bench (every answer checked); $(go version | cut -d' ' -f3)"
  echo
  echo "| test | unit | uwsgi | scripthost | ratio | uwsgi CPU µs/req | scripthost CPU µs/req | CPU ratio | uwsgi p50/p99 µs | scripthost p50/p99 µs | errors uwsgi/scripthost |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for t in $TESTS; do
    test_args "$t"
    if [[ -n "${SKIP[$t]:-}" ]]; then
      echo "| $t | $UNIT | skipped | skipped | - | - | - | - | - | - | - |"
      continue
    fi
    declare -A M=()
    for n in uwsgi scripthost; do
      M[$n,rps]="$(median $(col "$n" "$t" 4))"
      M[$n,p50]="$(fmt0 "$(median $(col "$n" "$t" 5))")"
      M[$n,p99]="$(fmt0 "$(median $(col "$n" "$t" 6))")"
      M[$n,err]="$(col "$n" "$t" 7 | awk '{ s += $1 } END { print s + 0 }')"
      M[$n,us]="$(median $(col "$n" "$t" 12))"
    done
    echo "| $t | $UNIT | $(fmt0 "${M[uwsgi,rps]}") | $(fmt0 "${M[scripthost,rps]}") | **$(ratio "${M[scripthost,rps]}" "${M[uwsgi,rps]}")** | ${M[uwsgi,us]} | ${M[scripthost,us]} | $(ratio "${M[scripthost,us]}" "${M[uwsgi,us]}") | ${M[uwsgi,p50]} / ${M[uwsgi,p99]} | ${M[scripthost,p50]} / ${M[scripthost,p99]} | ${M[uwsgi,err]} / ${M[scripthost,err]} |"
  done
  echo
  echo "ratio = scripthost / uwsgi throughput (above 1: scripthost faster). CPU µs/req ="
  echo "server CPU time (process and descendants, from /proc) per successful request;"
  echo "CPU ratio = scripthost / uwsgi (below 1: scripthost cheaper). Client and servers"
  echo "share the machine's $(nproc) cores, so throughput is what the machine does with"
  echo "both on it; CPU µs/req is the fairer comparison."
  for t in "${RUN_TESTS[@]}"; do
    if [[ "$t" == rpc_keepalive_c32 ]]; then
      echo "rpc_keepalive_c32 reconnects (median per run): uwsgi $(median $(col uwsgi "$t" 9)), scripthost $(median $(col scripthost "$t" 9))."
    fi
  done
  for n in "${NOTES[@]}"; do echo "- $n"; done
} >"$WORK/table.md"

cat "$WORK/table.md"
echo >&2
note "per-run data: $RES (target test rep rps p50 p99 errors ok reconnects client% server% server_us/req nginx% other% steal% bg% reruns)"
note "bench JSON lines: $RAW; logs and table.md: $WORK"
note "total run time: $((SECONDS - START_SECONDS)) s"
