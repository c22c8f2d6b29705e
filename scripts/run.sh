#!/usr/bin/env bash
# Runs AnonChat locally: the server with its embedded SQLite database, and the desktop app on it.
#   scripts/run.sh          the server and one app (profile "default", or $ANONCHAT_PROFILE)
#   scripts/run.sh --demo   the server and two apps side by side (profiles alice and bob), so one
#                           person can try a chat on one machine
# Without a display it runs the server alone and says how to chat with the terminal client.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# shellcheck disable=SC2086
need_packages ca-certificates build-essential pkg-config $CLIENT_BUILD_PACKAGES dbus gnome-keyring libsecret-tools $DESKTOP_BUILD_PACKAGES
need_rust
echo "Building (the first release build takes several minutes)…"
# The root package is only the desktop app: name every binary this script starts.
cargo build --release --locked -p anonchat-server -p anonchat-cli -p anonchat-desktop --bins
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release"

data="${XDG_DATA_HOME:-$HOME/.local/share}/anonchat-server"
mkdir -p "$data"
listen="${ANONCHAT_LISTEN:-127.0.0.1:7878}"
server=(
    "$bin/anonchat-server" --listen "$listen" --database-url "sqlite://$data/anonchat-server.db"
    --secret-file "$data/anonchat-server.secret"
)
echo "AnonChat server on http://$listen (database: $data/anonchat-server.db)"

if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    cat <<TXT

No display here, so no desktop app. Chat from two terminals with the terminal client instead
(each profile is one person; keys go to your OS keychain):
  $bin/anonchat-cli --profile alice --server http://$listen register alice
  $bin/anonchat-cli --profile alice chat
  $bin/anonchat-cli --profile bob --server http://$listen register bob
  $bin/anonchat-cli --profile bob chat
Then in alice's chat: /add bob   (bob: /accept alice)   then /ring bob   (bob: /answer)
TXT
    if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
        echo "No desktop session either: run each client inside scripts/with-keyring.sh for a Secret Service."
    fi
    echo
    exec "${server[@]}"
fi

"${server[@]}" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null' EXIT
if [ "${1:-}" = "--demo" ]; then
    echo "Two apps: alice and bob. In each, create the account, then add the other by name and call."
    "$bin/anonchat" --profile alice --server "http://$listen" &
    "$bin/anonchat" --profile bob --server "http://$listen" &
    wait -n
else
    "$bin/anonchat" --profile "${ANONCHAT_PROFILE:-default}" --server "http://$listen"
fi
