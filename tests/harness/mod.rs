//! Test harness: starts the real `anonchat-server` and `anonchat-cli --json` processes, a recording
//! (and optionally tampering) WebSocket proxy between them, and raw protocol clients for bad input.
//!
//! The binaries must be built first (`cargo build --workspace --bins`); the keychain is whatever
//! Secret Service the environment provides (the test script starts gnome-keyring under D-Bus).

pub mod cli;
pub mod deployment;
pub mod disk;
pub mod echo;
pub mod group;
pub mod gui;
pub mod hostile;
pub mod netns;
pub mod nginx;
pub mod postgres;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod server;
pub mod sockets;
pub mod spread;
pub mod turn;
pub mod updates;

use std::path::PathBuf;

/// `target/<profile>/`, where the workspace binaries are.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/core-xxxx → target/debug
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        p.display()
    );
    p
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "anonchat-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A name unique to this run, so parallel tests don't share keychain entries or accounts.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

/// A canary string built at run time, so the binaries themselves never contain it.
pub fn canary() -> String {
    format!("CANARY-{:016x}", rand::random::<u64>())
}

/// A self-signed end-entity certificate for 127.0.0.1 (it is its own trust anchor; a CA one is
/// refused as an end entity), made with openssl in `dir`: the certificate's and key's paths.
pub fn self_signed(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=anonchat-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl could not make a certificate");
    (cert, key)
}
