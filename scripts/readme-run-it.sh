#!/usr/bin/env bash
# Follows the README's "Run it" section as a new user would: starts `footnote serve`, opens the
# web page, then runs the terminal commands the section shows, in order, in another "terminal"
# (this shell) while the server runs. The commands are read from README.md itself, so the test
# fails when the README says something that does not work.
#
# What differs from a user's machine, and why:
# - Ollama is played by the project's double (tools/ollama-double), which serves both default
#   models, so the `ollama pull …` line is checked against its model list instead of run; the
#   double listens on a free port named by OLLAMA_HOST, which the README says Footnote reads.
# - `cargo run --release -- serve` runs the already built debug binary as `footnote serve`: a
#   release build takes about 20 minutes here. `footnote` is on PATH, as after `cargo install`.
# - HOME is a fresh directory, so the data directory is the README's default under it.
# - The server listens on 127.0.0.1:8080 as the README says, or on a free port when 8080 is taken.
#
#   scripts/readme-run-it.sh        # after `cargo build --workspace` (scripts/test.sh does both)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

log() { printf '[readme %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

bin="${CARGO_TARGET_DIR:-target}/debug"
[[ -x $bin/footnote && -x $bin/footnote-ollama-double ]] ||
  fail "build first: cargo build --bin footnote -p footnote-ollama-double"
bin=$(readlink -f "$bin")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export HOME=$work/home
mkdir -p "$HOME"
unset XDG_DATA_HOME FOOTNOTE_CONFIG DATABASE_URL
while read -r name; do unset "$name"; done < <(env | sed -n 's/^\(FOOTNOTE_[A-Z0-9_]*\)=.*/\1/p')
export PATH="$bin:$PATH" NO_COLOR=1

# The commands of the section, one per line, as the README shows them.
section=$(awk '/^## Run it/{on=1; next} /^## /{on=0} on' README.md)
commands=$(printf '%s\n' "$section" | awk '/^```sh/{code=1; next} /^```/{code=0} code' | sed 's/[[:space:]]*#.*$//' | sed '/^[[:space:]]*$/d')
[[ -n $commands ]] || fail "no commands found in the README's Run it section"
log "the README's Run it section shows:"
printf '    %s\n' "$commands" >&2

ollama_port=$(free_port)
"$bin/footnote-ollama-double" --port "$ollama_port" </dev/null >"$work/ollama.log" 2>&1 &
pids+=($!)
export OLLAMA_HOST="127.0.0.1:$ollama_port"
for _ in $(seq 100); do curl -fsS "http://$OLLAMA_HOST/api/tags" >/dev/null 2>&1 && break; sleep 0.1; done

web=127.0.0.1:8080
if port_taken 8080; then
  web="127.0.0.1:$(free_port)"
  export FOOTNOTE_SERVER__LISTEN=$web
  log "port 8080 is taken on this machine: the server listens on $web instead"
fi

# Something to ingest where the README points.
mkdir -p "$HOME/Documents/manuals"
cat >"$HOME/Documents/manuals/router.md" <<'EOF'
# Router manual

## Reset

To reset the router, hold the reset button on the back for ten seconds until the lights blink.
EOF
printf 'The admin PIN is printed on the sticker under the router.\n' >"$HOME/Documents/manuals/pin.txt"

serve_started=0
while IFS= read -r line; do
  case $line in
    "ollama pull "*)
      tags=$(curl -fsS "http://$OLLAMA_HOST/api/tags")
      for model in $(printf '%s\n' "$line" | grep -o 'ollama pull [^ &;]*' | awk '{print $3}'); do
        grep -q "\"$model" <<<"$tags" || fail "the Ollama in use does not have $model (README: $line)"
        log "model $model is available"
      done
      ;;
    "cargo run --release -- serve")
      log "\$ $line   (as: footnote serve)"
      footnote serve </dev/null >"$work/serve.log" 2>&1 &
      pids+=($!)
      serve_pid=$!
      for _ in $(seq 300); do curl -fsS "http://$web/" >/dev/null 2>&1 && break; sleep 0.2; done
      curl -fsS "http://$web/" | grep -q '<html' || { cat "$work/serve.log" >&2; fail "http://$web/ does not show the page"; }
      log "http://$web/ shows the web page"
      serve_started=1
      ;;
    "footnote "*)
      ((serve_started)) || fail "the README runs \`$line\` before the server"
      log "\$ $line"
      if ! out=$(bash -c "$line" </dev/null 2>&1); then
        printf '%s\n' "$out" >&2
        fail "\`$line\` failed next to the server"
      fi
      printf '%s\n' "$out" | sed 's/^/    /' >&2
      case $line in
        "footnote ingest "*) grep -q 'Added “Router manual”' <<<"$out" || fail "the ingest did not add the manual" ;;
        "footnote ask "*) grep -q '^\[1\] ' <<<"$out" && grep -q 'Sources:' <<<"$out" || fail "the answer lists no sources" ;;
      esac
      ;;
    *) fail "the README's Run it section shows a command this script cannot follow: $line" ;;
  esac
done <<<"$commands"
((serve_started)) || fail "the README's Run it section never starts the server"

# The table of the section: every other command works next to the server too.
for command in "documents" "status" "warmup" "doctor" "reindex" "migrate"; do
  grep -q "footnote $command" <<<"$section" || fail "the README's table no longer lists footnote $command"
  log "\$ footnote $command"
  out=$(footnote "$command" </dev/null 2>&1) || { printf '%s\n' "$out" >&2; fail "footnote $command failed next to the server"; }
done
id=$(footnote documents --json | python3 -c 'import json,sys; print(next(d["id"] for d in json.load(sys.stdin) if d["title"] == "pin"))')
log "\$ footnote forget $id"
footnote forget "$id" | grep -q 'Forgot “pin”' || fail "footnote forget did not forget"
if grep -qE 'LockBusy|tantivy' "$work/serve.log"; then fail "the server logged index lock errors"; fi

kill -TERM "$serve_pid"
wait "$serve_pid" || { cat "$work/serve.log" >&2; fail "footnote serve did not exit 0 on SIGTERM"; }
log "the README's Run it section works as written"
