#!/usr/bin/env bash
# with-keyring.sh CMD... — runs CMD with a private D-Bus session and an unlocked gnome-keyring as the
# Secret Service, in a fresh HOME (the keyring file lives there). For tests and headless machines.
set -euo pipefail
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
HOME="$(mktemp -d)"
export HOME
# shellcheck disable=SC2016
exec dbus-run-session -- sh -c '
    echo -n keyring-pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    # Wait until the daemon owns the name, or a second one may start (about 1 run in 60).
    until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"; do
        sleep 0.1
    done
    exec "$@"' sh "$@"
