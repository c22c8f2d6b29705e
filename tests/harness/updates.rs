//! A local update server for the desktop app's updater, and the release signer: keys are made and
//! artifacts signed with the Tauri CLI itself (`tauri signer`, from `npm ci`), exactly as a release
//! is, so the tests check the app against what the release pipeline produces.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// The Tauri CLI from the repository's `node_modules`.
fn tauri_cli() -> PathBuf {
    let cli = repo().join("node_modules/.bin/tauri");
    assert!(
        cli.exists(),
        "{} is missing: run `npm ci` (scripts/test.sh does)",
        cli.display()
    );
    cli
}

/// A minisign key pair as the Tauri CLI makes it.
pub struct SigningKey {
    secret: String,
    /// The public key as `tauri.conf.json`'s `plugins.updater.pubkey` holds it (base64).
    pub public: String,
}

impl SigningKey {
    pub fn generate(dir: &Path, name: &str) -> SigningKey {
        let path = dir.join(name);
        let out = Command::new(tauri_cli())
            .args([
                "signer",
                "generate",
                "--ci",
                "--password",
                "",
                "--force",
                "--write-keys",
            ])
            .arg(&path)
            .output()
            .expect("run tauri signer generate");
        assert!(
            out.status.success(),
            "tauri signer generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p)
                .expect("key file")
                .trim()
                .to_string()
        };
        SigningKey {
            secret: read(path.clone()),
            public: read(path.with_extension("key.pub")),
        }
    }

    /// The signature (base64, as a manifest carries it) of `file`, bound to `version` when one is
    /// given (`tauri signer sign --app-version`).
    pub fn sign(&self, file: &Path, version: Option<&str>) -> String {
        let mut cmd = Command::new(tauri_cli());
        cmd.args(["signer", "sign", "--password", ""])
            .arg("--private-key")
            .arg(&self.secret);
        if let Some(v) = version {
            cmd.args(["--app-version", v]);
        }
        let out = cmd.arg(file).output().expect("run tauri signer sign");
        assert!(
            out.status.success(),
            "tauri signer sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sig = file.with_file_name(format!(
            "{}.sig",
            file.file_name().expect("file name").to_string_lossy()
        ));
        std::fs::read_to_string(sig)
            .expect("signature file")
            .trim()
            .to_string()
    }
}

impl SigningKey {
    /// What a release publishes: every update artifact under `bundle` signed for `version` and
    /// the manifest naming them under `base_url`, made by the release script
    /// (`scripts/updater-manifest.mjs sign`). Returns the manifest.
    pub fn release_manifest(&self, bundle: &Path, version: &str, base_url: &str) -> String {
        let out = bundle.join("latest.json");
        let run = Command::new("node")
            .arg(repo().join("scripts/updater-manifest.mjs"))
            .args([
                "sign",
                "--version",
                version,
                "--base-url",
                base_url,
                "--out",
            ])
            .arg(&out)
            .arg(bundle)
            .env("TAURI_SIGNING_PRIVATE_KEY", &self.secret)
            .env("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", "")
            .output()
            .expect("run scripts/updater-manifest.mjs");
        assert!(
            run.status.success(),
            "updater-manifest.mjs: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read_to_string(out).expect("the manifest")
    }
}

/// What a request to the update server carried: its request line and headers.
#[derive(Debug, Clone)]
pub struct Request {
    pub line: String,
    pub headers: Vec<String>,
}

/// A plain HTTP server on loopback serving whatever the test puts at a path, and recording every
/// request it gets (what an update check reveals).
pub struct UpdateServer {
    pub port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl UpdateServer {
    pub fn start() -> UpdateServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the update server");
        let port = listener.local_addr().expect("its address").port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (f, r) = (files.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (f, r) = (f.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &f, &r));
            }
        });
        UpdateServer {
            port,
            files,
            requests,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        locked(&self.files).insert(format!("/{path}"), body.into());
    }

    /// Serves `latest.json` announcing `version` for this machine, its artifact at `artifact`.
    pub fn announce(&self, version: &str, artifact: &str, signature: &str) {
        let manifest = serde_json::json!({
            "version": version,
            "notes": format!("AnonChat {version}"),
            "pub_date": "2026-12-01T12:00:00Z",
            "platforms": {
                "linux-x86_64": { "url": self.url(artifact), "signature": signature },
            },
        });
        self.put("latest.json", manifest.to_string());
    }

    pub fn requests(&self) -> Vec<Request> {
        locked(&self.requests).clone()
    }
}

fn serve(
    stream: std::net::TcpStream,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    requests: &Mutex<Vec<Request>>,
) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => headers.push(h.trim().to_string()),
        }
    }
    let line = line.trim().to_string();
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    locked(requests).push(Request {
        line: line.clone(),
        headers,
    });
    let body = locked(files).get(&path).cloned();
    let mut stream = stream;
    let _ = match body {
        Some(b) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|_| stream.write_all(&b)),
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}
