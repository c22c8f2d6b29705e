#!/usr/bin/env bash
# Session bench: setup time and message round trip, E2E beside a bare data channel, same run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_packages ca-certificates build-essential pkg-config dbus dbus-x11 gnome-keyring libsecret-tools
need_rust
cargo build --release --workspace --bins --locked
bash scripts/with-keyring.sh cargo bench -p anonchat-e2e --bench session --locked
