#!/usr/bin/env bash
# A real Matrix homeserver (Synapse) on loopback for footnote-matrix's integration tests.
#
#   scripts/peers/matrix.sh start    # install if needed, start (or keep) Synapse, print KEY=VALUE lines
#   scripts/peers/matrix.sh status   # exit 0 and say so when it is running and healthy
#   scripts/peers/matrix.sh stop     # stop it (FOOTNOTE_PEERS_PURGE=1 also deletes its database)
#
# Synapse comes from PyPI (matrix-synapse, pinned) in a venv; server_name "localhost", SQLite,
# no federation, every rate limit effectively off (tests register, log in and send quickly).
# Users are not made here: each test registers its own, with unique names, through the
# shared-secret admin API (/_synapse/admin/v1/register), so tests are independent. New rooms are
# room version 12, whose ids carry no server name. Idempotent: a second `start` keeps a running
# server; a stale pid file (a killed server whose pid was reused) is noticed and replaced.
#
# Env (all optional):
#   FOOTNOTE_MATRIX_PORT     client API port on 127.0.0.1 (default 38008)
#   FOOTNOTE_MATRIX_SECRET   registration_shared_secret (default footnote-matrix-test-secret)
#   FOOTNOTE_PEERS_DIR       parent of data and logs (default /var/tmp/footnote-peers)
#   FOOTNOTE_PEERS_OPT       installs kept between runs (default /opt/footnote-peers)
# Output: KEY=VALUE lines on stdout (the FOOTNOTE_TEST_* variables the tests read); logs on stderr.
set -euo pipefail

PORT="${FOOTNOTE_MATRIX_PORT:-38008}"
SECRET="${FOOTNOTE_MATRIX_SECRET:-footnote-matrix-test-secret}"
DATA="${FOOTNOTE_PEERS_DIR:-/var/tmp/footnote-peers}/matrix"
OPT="${FOOTNOTE_PEERS_OPT:-/opt/footnote-peers}"
VENV="$OPT/synapse-venv"
SYNAPSE_VERSION=1.163.2
URL="http://127.0.0.1:$PORT"

say() { printf '[matrix-peer %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
healthy() { curl -fsS -o /dev/null --max-time 2 "$URL/health" 2>/dev/null; }
# The pid file outlives a killed server, and its pid may since belong to another process (or be a
# zombie): only a live Synapse of ours counts.
synapse_alive() {
  [[ -s $DATA/run.pid ]] || return 1
  local pid stat
  pid=$(cat "$DATA/run.pid")
  kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $stat != *") Z "* ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "synapse.app.homeserver -c $DATA/homeserver.yaml"
}

install_synapse() {
  [[ -x $VENV/bin/python && -f $VENV/.installed-$SYNAPSE_VERSION ]] && return 0
  command -v python3 >/dev/null || fail "python3 is needed to install Synapse"
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    [[ $EUID -eq 0 ]] || fail "python3-venv is missing and installing it needs root"
    apt-get update -qq >&2 || say "apt-get update failed; trying the cached lists"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  say "creating $VENV with matrix-synapse==$SYNAPSE_VERSION (takes a minute)"
  rm -rf "$VENV" && mkdir -p "$OPT"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q "matrix-synapse==$SYNAPSE_VERSION" >&2
  touch "$VENV/.installed-$SYNAPSE_VERSION"
}

write_config() {
  local limit='{per_second: 10000, burst_count: 100000}'
  cat >"$DATA/homeserver.yaml" <<EOF
# Written by scripts/peers/matrix.sh: a loopback-only Synapse for tests.
server_name: "localhost"
public_baseurl: "$URL/"
pid_file: "$DATA/homeserver.pid"
listeners:
  - port: $PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "$DATA/homeserver.db"
log_config: "$DATA/log.config"
media_store_path: "$DATA/media_store"
signing_key_path: "$DATA/localhost.signing.key"
registration_shared_secret: "$SECRET"
enable_registration: false
report_stats: false
bcrypt_rounds: 4
macaroon_secret_key: "footnote-test-macaroon-secret"
form_secret: "footnote-test-form-secret"
max_upload_size: 50M
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
presence:
  enabled: false
rc_message: $limit
rc_registration: $limit
rc_registration_token_validity: $limit
rc_login:
  address: $limit
  account: $limit
  failed_attempts: $limit
rc_admin_redaction: $limit
rc_joins:
  local: $limit
  remote: $limit
rc_joins_per_room: $limit
rc_invites:
  per_room: $limit
  per_user: $limit
  per_issuer: $limit
rc_3pid_validation: $limit
rc_room_creation: $limit
rc_reports: $limit
rc_presence:
  per_user: $limit
rc_delayed_event_mgmt: $limit
rc_media_create: $limit
rc_key_requests: $limit
rc_federation: {window_size: 1000, sleep_limit: 10000, sleep_delay: 0, reject_limit: 10000, concurrent: 100}
EOF
  cat >"$DATA/log.config" <<EOF
version: 1
formatters:
  precise: {format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'}
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: "$DATA/homeserver.log"
    encoding: utf8
loggers:
  synapse.storage.SQL: {level: WARNING}
root: {level: INFO, handlers: [file]}
disable_existing_loggers: false
EOF
}

print_env() {
  cat <<EOF
FOOTNOTE_TEST_MATRIX_URL=$URL
FOOTNOTE_TEST_MATRIX_SERVER_NAME=localhost
FOOTNOTE_TEST_MATRIX_SHARED_SECRET=$SECRET
EOF
}

start() {
  install_synapse
  mkdir -p "$DATA/media_store"
  write_config
  if [[ ! -s $DATA/localhost.signing.key ]]; then
    "$VENV/bin/python" -m synapse.app.homeserver -c "$DATA/homeserver.yaml" --generate-keys >&2
  fi
  if synapse_alive && healthy; then
    say "synapse is running (pid $(cat "$DATA/run.pid"))"
  else
    if synapse_alive; then
      say "synapse (pid $(cat "$DATA/run.pid")) is not healthy; restarting it"
      stop_server
    fi
    rm -f "$DATA/run.pid" "$DATA/homeserver.pid"
    listening "$PORT" && fail "port $PORT is taken by something else; set FOOTNOTE_MATRIX_PORT"
    # Detached from our stdout so `matrix.sh start | cmd` does not hang on the daemon.
    (cd "$DATA" && exec setsid "$VENV/bin/python" -m synapse.app.homeserver -c "$DATA/homeserver.yaml" \
      </dev/null >>"$DATA/stdout.log" 2>&1) &
    echo $! >"$DATA/run.pid"
    local i
    for ((i = 0; i < 300; i++)); do healthy && break; sleep 0.3; done
    healthy || { tail -n 30 "$DATA/stdout.log" "$DATA/homeserver.log" >&2 || true; fail "synapse did not become healthy"; }
  fi
  say "ready at $URL, logs in $DATA"
  print_env
}

stop_server() {
  if synapse_alive; then
    local pid i
    pid=$(cat "$DATA/run.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "synapse stopped"
  fi
  rm -f "$DATA/run.pid" "$DATA/homeserver.pid"
}

stop() {
  stop_server
  if [[ ${FOOTNOTE_PEERS_PURGE:-0} == 1 ]]; then rm -rf "$DATA" && say "deleted $DATA"; fi
}

status() {
  if synapse_alive && healthy; then
    say "running (pid $(cat "$DATA/run.pid")) at $URL"
    print_env
  else
    say "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
