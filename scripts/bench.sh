#!/usr/bin/env bash
# Benches, each printing ratios against a baseline measured in the same run:
# - session: setup time and message round trip, E2E beside a bare data channel; file throughput;
# - relay: setup time and round trip through coturn ("hide my IP") beside a direct connection;
# - gate: answered lookups per second under a flood once the buckets are empty, beside no limit;
# - dos: a victim's p50/p99 while 16 addresses flood each expensive path, beside no attacker, and
#   /healthz with 2 000 half-open requests held;
# - conns: server RSS per idle authenticated connection at N up to 19 000, beside a minimal
#   tokio-tungstenite server holding the same N;
# - churn: 1 000 connects/s for 60 s over 5 000 idle devices, RSS after beside before, and beside
#   the same tokio-tungstenite baseline;
# - load: lookups at 1k/2k/5k per second with 5 000 devices connected, latency beyond the gate floor
#   beside ping at the same rate; on one instance, then on two sharing PostgreSQL and Redis;
# - desktop: the app's cold start to first paint and idle memory beside the CLI, and the panic
#   shortcut → window hidden / peer told, with a live chat beside none;
# - groups: groups of 3, 5 and 10 engines on loopback beside a 1:1 chat — start to every pair
#   connected, text fan-out latency to all members, file throughput to every member;
# - passcode: unlocking a keychain record sealed under the passcode (Argon2id 64 MiB) beside the
#   19 MiB hash check it replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
# shellcheck disable=SC2086
need_packages ca-certificates build-essential pkg-config $CLIENT_BUILD_PACKAGES dbus dbus-x11 gnome-keyring libsecret-tools coturn postgresql redis-server nginx-light \
    $DESKTOP_BUILD_PACKAGES $DESKTOP_TEST_PACKAGES
need_rust
need_tauri_driver
cargo build --release --workspace --bins --locked
bash scripts/with-keyring.sh cargo bench -p anonchat-e2e --bench session --locked
bash scripts/with-keyring.sh cargo bench -p anonchat-e2e --bench relay --locked
cargo bench -p anonchat-e2e --bench gate --locked
cargo bench -p anonchat-e2e --bench dos --locked
cargo bench -p anonchat-e2e --bench conns --locked
cargo bench -p anonchat-e2e --bench churn --locked
cargo bench -p anonchat-e2e --bench load --locked
bash scripts/with-keyring.sh cargo bench -p anonchat-e2e --bench desktop --locked
bash scripts/with-keyring.sh cargo bench -p anonchat-e2e --bench groups --locked
cargo bench -p anonchat-e2e --bench passcode --locked
