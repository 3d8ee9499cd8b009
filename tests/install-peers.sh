#!/usr/bin/env bash
# Installs the Debian 12 packages the interop tests and benchmarks run
# against, and only those that are missing:
#
#   uwsgi-core, uwsgi-plugin-lua5.1, uwsgi-plugin-python3   the uWSGI peer
#   nginx                                                  the HTTP front
#   apache2 (ships mod_proxy_uwsgi in Debian 12)           the other HTTP front
#   redis-server                                           shared caches
#   wrk                                                    HTTP benchmarks
#   gcc, libc6-dev                                         `go test -race` needs cgo
#   python3-websockets                                     a WebSocket client
#   chromium                                               a real browser (the chat page)
#
# and npm's ws (a WebSocket client for Node.js, pinned below) into
# $SCRIPTHOST_NODE_MODULES' parent (default ~/.cache/scripthost-peers),
# with the npm already installed: Node.js itself is not installed here.
#
# Idempotent: when everything is installed it only says so. Otherwise it runs
# `apt-get update` once and `apt-get install -y --no-install-recommends` for
# the missing packages, as root or through `sudo -n`; without either it names
# the packages and fails. The packaged nginx, apache2 and redis services are kept
# from starting (a temporary policy-rc.d): the tests run their own on high
# ports.
#
# Environment: APT_LOCK_WAIT (seconds to wait for a busy dpkg/apt lock,
# default 600).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  uwsgi-core
  uwsgi-plugin-lua5.1
  uwsgi-plugin-python3
  nginx
  apache2
  redis-server
  wrk
  gcc
  libc6-dev
  python3-websockets
  chromium
)
ws_version=8.18.3
node_modules="${SCRIPTHOST_NODE_MODULES:-$HOME/.cache/scripthost-peers/node_modules}"
lock_wait="${APT_LOCK_WAIT:-600}"

log() { printf 'install-peers: %s\n' "$*" >&2; }

if ! command -v dpkg >/dev/null 2>&1; then
  log "dpkg not found: the peers are Debian 12 packages; install by hand: ${packages[*]}"
  exit 1
fi

is_installed() {
  # (not `dpkg -s | grep -q`: with pipefail, grep quitting early can make
  # dpkg fail with SIGPIPE)
  local status
  status="$(dpkg -s "$1" 2>/dev/null)" || return 1
  grep -qx 'Status: install ok installed' <<<"$status"
}

# npm's ws, in a directory of the tests' own (no global install).
install_ws() {
  if [[ -f "$node_modules/ws/package.json" ]] &&
    grep -q "\"version\": \"$ws_version\"" "$node_modules/ws/package.json"; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    log "npm not found: the ws client tests need Node.js and npm (then rerun this script)"
    return 1
  fi
  log "installing npm's ws@$ws_version into $node_modules"
  mkdir -p "$(dirname "$node_modules")"
  npm install --no-audit --no-fund --prefix "$(dirname "$node_modules")" "ws@$ws_version" >&2
}
install_ws || log "npm's ws not installed: the WebSocket client tests will fail under SCRIPTHOST_PEERS"

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  log "all peer packages installed: ${packages[*]}"
  exit 0
fi
log "missing: ${missing[*]}"

# How to run a command as root.
if [[ "$(id -u)" == 0 ]]; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  log "cannot install ${missing[*]}: not root and no password-less sudo."
  log "run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  exit 1
fi

# Runs an apt-get command, retrying while another apt/dpkg holds its locks
# (bounded by APT_LOCK_WAIT seconds).
apt_get() {
  local deadline=$((SECONDS + lock_wait)) out rc
  out="$(mktemp)"
  while :; do
    rc=0
    "${as_root[@]}" apt-get -o DPkg::Lock::Timeout="$lock_wait" "$@" 2>&1 | tee "$out" >&2 || rc=$?
    # with pipefail, rc is apt-get's status, not tee's
    if ((rc == 0)); then
      rm -f "$out"
      return 0
    fi
    if grep -qiE 'could not get lock|unable to acquire|is another process using it' "$out" &&
      ((SECONDS < deadline)); then
      log "apt/dpkg is busy, retrying in 5 s"
      sleep 5
      continue
    fi
    rm -f "$out"
    log "apt-get $* failed (exit $rc)"
    return "$rc"
  done
}

# Keep the packaged nginx service from being started by the install (no
# service on port 80); left alone when the system already has a policy.
policy=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
  if ((created_policy)); then
    "${as_root[@]}" rm -f "$policy" || true
  fi
}
trap cleanup EXIT
if [[ " ${missing[*]} " == *" nginx "* || " ${missing[*]} " == *" apache2 "* ]] && ! [[ -e "$policy" ]]; then
  "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' >'$policy' && chmod 0755 '$policy'"
  created_policy=1
fi

apt_get update
apt_get install -y --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  is_installed "$p" || still+=("$p")
done
if ((${#still[@]} > 0)); then
  log "still not installed after apt-get: ${still[*]}"
  exit 1
fi
log "installed: ${missing[*]}"
