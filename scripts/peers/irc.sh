#!/usr/bin/env bash
# A real IRC server on loopback for the IRC plugin's end-to-end test (tests/plugins_irc.rs):
# ngIRCd from Debian's packages. The plugin itself (plugins/irc/footnote_irc.py) needs only
# Python 3's standard library, so the python3 found here is printed for the test.
#
#   scripts/peers/irc.sh start    # install if needed, start (or keep) the server, print KEY=VALUE lines
#   scripts/peers/irc.sh stop     # stop it
#
# No TLS, no DNS or ident look-ups, no PAM; anyone on loopback may connect, pick a nick and make
# channels. Flood protection is ngIRCd's own (the plugin throttles its lines for it). Needs root
# the first time (apt-get). Idempotent: a second `start` keeps what runs; a stale pid file (the
# server was killed) is recognised and the server started again.
#
# Env (all optional):
#   FOOTNOTE_IRC_PORT       the port (default 36667)
#   FOOTNOTE_PEERS_DIR      config, pid and logs (default /tmp/footnote-peers/irc)
# Output: KEY=VALUE lines on stdout (the FOOTNOTE_TEST_* variables the tests read); logs on stderr.
set -euo pipefail

PORT="${FOOTNOTE_IRC_PORT:-36667}"
DATA="${FOOTNOTE_PEERS_DIR:-/tmp/footnote-peers/irc}"

say() { printf '[irc-peer %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
await_port() {
  local port=$1 i
  for ((i = 0; i < 100; i++)); do listening "$port" && return 0; sleep 0.1; done
  return 1
}
# The pid file may outlive the server, and its pid may since belong to another process.
ngircd_alive() {
  [[ -s $1 ]] || return 1
  local stat
  stat=$(cat "/proc/$(cat "$1")/stat" 2>/dev/null) || return 1
  [[ $stat == *"(ngircd)"* && $stat != *") Z "* ]]
}

install() {
  command -v ngircd >/dev/null && return 0
  [[ $EUID -eq 0 ]] || fail "installing ngircd needs root"
  say "apt-get install ngircd"
  # Debian starts services on install; the peer runs its own instance, so forbid that.
  local policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
  fi
  apt-get update -qq >&2 || say "apt-get update failed; trying the cached lists"
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ngircd >&2 || rc=$?
  ((policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || fail "apt-get install ngircd failed"
}

write_conf() {
  cat >"$DATA/ngircd.conf" <<CONF
# Written by scripts/peers/irc.sh: a loopback-only, plaintext ngIRCd for tests.
[Global]
Name = irc.footnote.test
Info = Footnote test IRC server
Listen = 127.0.0.1
Ports = $PORT
MotdPhrase = "Footnote test server"
PidFile = $DATA/ngircd.pid
[Limits]
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
[Options]
DNS = no
Ident = no
PAM = no
RequireAuthPing = no
CONF
}

python_ok() { "$1" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; }

start() {
  install
  local python
  python=$(command -v python3 || true)
  [[ -n $python ]] && python_ok "$python" || fail "the IRC plugin needs python3 (3.9 or newer)"
  mkdir -p "$DATA"
  write_conf
  if ngircd_alive "$DATA/ngircd.pid" && listening "$PORT"; then
    say "ngircd is running (pid $(cat "$DATA/ngircd.pid"))"
  else
    rm -f "$DATA/ngircd.pid"
    listening "$PORT" && fail "port $PORT is taken; set FOOTNOTE_IRC_PORT"
    ngircd --configtest -f "$DATA/ngircd.conf" >"$DATA/configtest.log" 2>&1 ||
      { tail -n 20 "$DATA/configtest.log" >&2; fail "ngircd refuses its configuration"; }
    # --nodaemon under setsid: detached from our stdout, with its log in a file.
    setsid ngircd --nodaemon -f "$DATA/ngircd.conf" </dev/null >>"$DATA/ngircd.log" 2>&1 &
    echo $! >"$DATA/ngircd.pid"
    await_port "$PORT" || { tail -n 20 "$DATA/ngircd.log" >&2 || true; fail "ngircd is not listening"; }
  fi
  say "ready: IRC 127.0.0.1:$PORT, log in $DATA"
  cat <<OUT
FOOTNOTE_TEST_IRC_HOST=127.0.0.1
FOOTNOTE_TEST_IRC_PORT=$PORT
FOOTNOTE_TEST_IRC_PYTHON=$python
OUT
}

stop() {
  if ngircd_alive "$DATA/ngircd.pid"; then
    local pid i
    pid=$(cat "$DATA/ngircd.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "ngircd stopped"
  fi
  rm -f "$DATA/ngircd.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
