# Shared by the scripts: install missing Debian/Ubuntu packages, find the Rust toolchain.

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

# need_packages PKG... — installs the Debian packages that are not installed yet.
need_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "missing packages: ${missing[*]} (install them with your package manager)" >&2
        return 1
    fi
    echo "installing: ${missing[*]}"
    # Another apt may hold the lock for a while on a fresh machine.
    for _ in $(seq 1 60); do
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" && return 0
        sleep 5
    done
    return 1
}

need_rust() {
    [ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v cargo >/dev/null; then
        echo "Rust (cargo, rustc >= 1.88) is needed: install it from https://rustup.rs, then run this again." >&2
        exit 1
    fi
    # Pin where rustup and cargo live: the keyring wrapper gives tests a fresh HOME.
    export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
}

# What building the client engine needs (nokhwa generates its V4L2 bindings with libclang).
CLIENT_BUILD_PACKAGES="libclang-dev"
# What building the desktop app (Tauri 2 on WebKitGTK) needs.
DESKTOP_BUILD_PACKAGES="libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev"
# What its end-to-end tests need: a virtual display, WebKit's WebDriver, X input, AT-SPI from
# Python (the accessibility tree, and driving the app where WebDriver cannot follow), a real
# screen locker.
DESKTOP_TEST_PACKAGES="xvfb xauth webkit2gtk-driver xdotool dunst python3-pyatspi gnome-screensaver xclip"

# need_tauri_driver — installs tauri-driver (the WebDriver bridge for Tauri apps) if it is missing.
need_tauri_driver() {
    command -v tauri-driver >/dev/null && return 0
    echo "installing tauri-driver"
    cargo install tauri-driver --locked --version '^2'
}
