#!/usr/bin/env bash
# Real mail servers on loopback for footnote-email's integration tests.
#
#   scripts/peers/email.sh start    # install if needed, start (or keep) both, print KEY=VALUE lines
#   scripts/peers/email.sh stop     # stop both (FOOTNOTE_PEERS_PURGE=1 also deletes the mail)
#
# IMAP: Dovecot from Debian's packages (dovecot-imapd + dovecot-lmtpd), plaintext, no TLS.
# SMTP: aiosmtpd from PyPI (in a venv), running scripts/peers/smtp_relay.py, which hands every
# message to Dovecot over LMTP, so mail sent over SMTP lands in the recipient's IMAP INBOX.
# Every local part of the mail domain is a mailbox (bot@localhost, human@localhost, and any
# other name a test makes up so tests don't share an INBOX); all share one password.
# Needs root the first time (apt-get); Dovecot's master runs as root, the mail is stored as the
# unprivileged system user footnote-peer. Idempotent: a second `start` keeps what runs.
#
# Env (all optional):
#   FOOTNOTE_IMAP_PORT      IMAP port (default 31143)
#   FOOTNOTE_SMTP_PORT      SMTP port (default 32525)
#   FOOTNOTE_LMTP_PORT      Dovecot's internal LMTP port (default 32424)
#   FOOTNOTE_MAIL_DOMAIN    the local mail domain (default localhost)
#   FOOTNOTE_MAIL_PASSWORD  the password of every mailbox (default peer-password)
#   FOOTNOTE_PEERS_DIR      data and logs (default /tmp/footnote-peers/email)
#   FOOTNOTE_PEERS_OPT      installs kept between runs (default /opt/footnote-peers)
# Output: KEY=VALUE lines on stdout (the FOOTNOTE_TEST_* variables the tests read); logs on stderr.
set -euo pipefail

IMAP_PORT="${FOOTNOTE_IMAP_PORT:-31143}"
SMTP_PORT="${FOOTNOTE_SMTP_PORT:-32525}"
LMTP_PORT="${FOOTNOTE_LMTP_PORT:-32424}"
DOMAIN="${FOOTNOTE_MAIL_DOMAIN:-localhost}"
PASSWORD="${FOOTNOTE_MAIL_PASSWORD:-peer-password}"
DATA="${FOOTNOTE_PEERS_DIR:-/tmp/footnote-peers/email}"
OPT="${FOOTNOTE_PEERS_OPT:-/opt/footnote-peers}"
VENV="$OPT/aiosmtpd-venv"
MAIL_USER=footnote-peer
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf '[email-peer %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
await_port() {
  local port=$1 i
  for ((i = 0; i < 100; i++)); do listening "$port" && return 0; sleep 0.2; done
  return 1
}
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
# Dovecot's pid file outlives a killed master, and its pid may since belong to another process.
# A killed master can also linger as a zombie until its parent reaps it.
dovecot_alive() {
  alive "$1" || return 1
  local stat
  stat=$(cat "/proc/$(cat "$1")/stat" 2>/dev/null) || return 1
  [[ $stat == *"(dovecot)"* && $stat != *") Z "* ]]
}

install_debs() {
  local want=() pkg policy=0
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || want+=("$pkg")
  done
  ((${#want[@]})) || return 0
  [[ $EUID -eq 0 ]] || fail "installing ${want[*]} needs root"
  say "apt-get install ${want[*]}"
  # Debian starts services on install; the peers run their own instance, so forbid that.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
  fi
  apt-get update -qq >&2 || say "apt-get update failed; trying the cached lists"
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2 || rc=$?
  ((policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || fail "apt-get install ${want[*]} failed"
}

install_smtp() {
  [[ -x $VENV/bin/python && -f $VENV/.installed ]] && return 0
  local python=python3
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    install_debs python3 python3-venv
    python=/usr/bin/python3
  fi
  say "creating $VENV with aiosmtpd"
  rm -rf "$VENV" && mkdir -p "$OPT"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install -q 'aiosmtpd==1.4.6' >&2
  touch "$VENV/.installed"
}

write_dovecot_conf() {
  cat >"$DATA/dovecot.conf" <<EOF
# Written by scripts/peers/email.sh: a loopback-only, plaintext Dovecot for tests.
instance_name = footnote-peer-dovecot
base_dir = $DATA/run
state_dir = $DATA/state
log_path = $DATA/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# user@domain and user log in to the same mailbox; bot+tag@domain is delivered to bot.
auth_username_format = %Ln
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = $MAIL_USER
mail_gid = $MAIL_USER
first_valid_uid = 1
mail_location = maildir:$DATA/mail/%n
mail_max_userip_connections = 500
login_trusted_networks = 127.0.0.0/8
passdb {
  driver = static
  args = password=$PASSWORD
}
userdb {
  driver = static
  args = home=$DATA/home/%n allow_all_users=yes
}
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
EOF
}

start() {
  [[ $EUID -eq 0 ]] || fail "run as root: Dovecot's master process and apt-get need it"
  install_debs dovecot-imapd dovecot-lmtpd
  install_smtp
  id -u "$MAIL_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
  mkdir -p "$DATA/run" "$DATA/state" "$DATA/mail" "$DATA/home"
  chown "$MAIL_USER:$MAIL_USER" "$DATA/mail" "$DATA/home"
  write_dovecot_conf

  if dovecot_alive "$DATA/run/master.pid"; then
    say "dovecot is running; reloading its configuration"
    doveadm -c "$DATA/dovecot.conf" reload
  else
    rm -f "$DATA/run/master.pid"
    listening "$IMAP_PORT" && fail "port $IMAP_PORT is taken; set FOOTNOTE_IMAP_PORT"
    listening "$LMTP_PORT" && fail "port $LMTP_PORT is taken; set FOOTNOTE_LMTP_PORT"
    # Detached from our stdout so `email.sh start | cmd` does not hang on the daemon.
    dovecot -c "$DATA/dovecot.conf" </dev/null >>"$DATA/dovecot.start.log" 2>&1 ||
      { tail -n 20 "$DATA/dovecot.start.log" "$DATA/dovecot.log" >&2 || true; fail "dovecot did not start"; }
  fi
  await_port "$IMAP_PORT" || { tail -n 20 "$DATA/dovecot.log" >&2 || true; fail "IMAP is not listening"; }
  await_port "$LMTP_PORT" || fail "LMTP is not listening"

  if alive "$DATA/smtp.pid" && listening "$SMTP_PORT"; then
    say "smtp is running (pid $(cat "$DATA/smtp.pid"))"
  else
    listening "$SMTP_PORT" && fail "port $SMTP_PORT is taken; set FOOTNOTE_SMTP_PORT"
    setsid "$VENV/bin/python" "$HERE/smtp_relay.py" --listen "127.0.0.1:$SMTP_PORT" \
      --lmtp "127.0.0.1:$LMTP_PORT" --domains "$DOMAIN" --password "$PASSWORD" \
      </dev/null >>"$DATA/smtp.log" 2>&1 &
    echo $! >"$DATA/smtp.pid"
    await_port "$SMTP_PORT" || { tail -n 20 "$DATA/smtp.log" >&2 || true; fail "SMTP is not listening"; }
  fi
  say "ready: IMAP 127.0.0.1:$IMAP_PORT, SMTP 127.0.0.1:$SMTP_PORT, logs in $DATA"
  cat <<EOF
FOOTNOTE_TEST_IMAP_HOST=127.0.0.1
FOOTNOTE_TEST_IMAP_PORT=$IMAP_PORT
FOOTNOTE_TEST_SMTP_HOST=127.0.0.1
FOOTNOTE_TEST_SMTP_PORT=$SMTP_PORT
FOOTNOTE_TEST_MAIL_DOMAIN=$DOMAIN
FOOTNOTE_TEST_MAIL_PASSWORD=$PASSWORD
FOOTNOTE_TEST_BOT_USER=bot@$DOMAIN
FOOTNOTE_TEST_HUMAN_USER=human@$DOMAIN
EOF
}

stop() {
  if alive "$DATA/smtp.pid"; then
    local pid i
    pid=$(cat "$DATA/smtp.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "smtp stopped"
  fi
  rm -f "$DATA/smtp.pid"
  if dovecot_alive "$DATA/run/master.pid"; then
    doveadm -c "$DATA/dovecot.conf" stop
    say "dovecot stopped"
  fi
  if [[ ${FOOTNOTE_PEERS_PURGE:-0} == 1 ]]; then rm -rf "$DATA" && say "deleted $DATA"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
