#!/usr/bin/env bash
# The official Python MCP SDK (PyPI package `mcp`), a client this project did not write, for
# the MCP server's integration tests (tests/mcp.rs drives it through tests/mcp/client.py).
#
#   scripts/peers/mcp-client.sh start   # install if needed, print KEY=VALUE lines
#   scripts/peers/mcp-client.sh stop    # nothing runs: the client is started by each test
#
# Installed into a venv, kept between runs; idempotent (a second `start` installs nothing).
#
# Env (all optional):
#   FOOTNOTE_PEERS_OPT   installs kept between runs (default /opt/footnote-peers)
#   FOOTNOTE_MCP_SDK     the pip requirement (default mcp==2.3.0)
# Output: FOOTNOTE_TEST_MCP_PYTHON=<the venv's python> on stdout; logs on stderr.
set -euo pipefail

OPT="${FOOTNOTE_PEERS_OPT:-/opt/footnote-peers}"
SDK="${FOOTNOTE_MCP_SDK:-mcp==2.3.0}"
VENV="$OPT/mcp-client-venv"

say() { printf '[mcp-client %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

install() {
  # The marker names the requirement: another version reinstalls.
  [[ -x $VENV/bin/python && $(cat "$VENV/.installed" 2>/dev/null) == "$SDK" ]] && return 0
  local python=python3
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    [[ $EUID -eq 0 ]] || fail "python3-venv is missing and installing it needs root"
    apt-get update -qq >&2 || say "apt-get update failed; trying the cached lists"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
    python=/usr/bin/python3
  fi
  say "creating $VENV with $SDK"
  rm -rf "$VENV" && mkdir -p "$OPT"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install -q "$SDK" >&2 || fail "pip install $SDK failed"
  "$VENV/bin/python" -c 'import mcp.client.stdio, mcp.client.streamable_http' || fail "the mcp package does not import"
  printf '%s' "$SDK" >"$VENV/.installed"
}

case "${1:-start}" in
  start)
    install
    echo "FOOTNOTE_TEST_MCP_PYTHON=$VENV/bin/python"
    ;;
  stop) ;;
  *) fail "usage: $0 start|stop" ;;
esac
