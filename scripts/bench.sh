#!/usr/bin/env bash
# Benches, each printing ratios against a baseline measured in the same run:
# - session: setup time and message round trip, E2E beside a bare data channel;
# - gate: answered lookups per second under a flood once the buckets are empty, beside no limit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_packages ca-certificates build-essential pkg-config dbus dbus-x11 gnome-keyring libsecret-tools
need_rust
cargo build --release --workspace --bins --locked
bash scripts/with-keyring.sh cargo bench -p anonchat-e2e --bench session --locked
cargo bench -p anonchat-e2e --bench gate --locked
