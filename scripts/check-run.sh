#!/usr/bin/env bash
# CI's check of the README's run command on this checkout: `scripts/run.sh` without a display
# must build what it starts and serve; two terminal clients then register and become friends.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$tmp/run.log"
env -u DISPLAY -u WAYLAND_DISPLAY XDG_DATA_HOME="$tmp/data" ANONCHAT_LISTEN="127.0.0.1:$port" \
    setsid bash scripts/run.sh >"$log" 2>&1 &
run_pid=$!
cleanup() {
    kill -- -"$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# The first release build takes a while; the script says when it serves.
for _ in $(seq 1 1800); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    if ! kill -0 "$run_pid" 2>/dev/null; then
        echo "scripts/run.sh stopped before serving:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$log" >&2; exit 1; }
grep -q "No display here" "$log" || { echo "run.sh did not say there is no display:" >&2; cat "$log" >&2; exit 1; }
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release"
bash scripts/with-keyring.sh python3 scripts/check_run.py "$bin/anonchat-cli" "http://127.0.0.1:$port" "$tmp/clients"
echo "scripts/run.sh: serves on a fresh checkout; two CLI profiles registered and became friends"
