#!/usr/bin/env bash
# Runs AnonChat locally: the server with its embedded SQLite database, and the way to chat through it.
# (The desktop app arrives with the desktop work; until then the terminal client is the front-end.)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_packages ca-certificates build-essential pkg-config dbus gnome-keyring libsecret-tools
need_rust
echo "Building (the first release build takes several minutes)…"
cargo build --release --locked --bins
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release"

data="${XDG_DATA_HOME:-$HOME/.local/share}/anonchat-server"
mkdir -p "$data"
listen="${ANONCHAT_LISTEN:-127.0.0.1:7878}"
cat <<TXT

AnonChat server on http://$listen (database: $data/anonchat-server.db)

Chat from two terminals (each profile is one person; keys go to your OS keychain):
  $bin/anonchat-cli --profile alice --server http://$listen register alice
  $bin/anonchat-cli --profile alice chat
  $bin/anonchat-cli --profile bob --server http://$listen register bob
  $bin/anonchat-cli --profile bob chat
Then in alice's chat: /add bob   (bob: /accept alice)   then /ring bob   (bob: /answer)
TXT
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    echo "No display here: the desktop app needs one. Use the terminal client above."
    if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
        echo "No desktop session either: run each client inside scripts/with-keyring.sh for a Secret Service."
    fi
fi
echo
exec "$bin/anonchat-server" --listen "$listen" --database-url "sqlite://$data/anonchat-server.db" \
    --secret-file "$data/anonchat-server.secret"
