//! A burner's deletion as data (`burner.rs`): signed by the account key while the keys exist, told
//! to the server over the session or, without one, as `POST /v1/delete`; when the server cannot
//! be told, kept alone in the erased profile's folder — the account's name, its server and the
//! signature, no key — and sent again at the next start.

use std::path::PathBuf;
use std::time::Duration;

use anonchat_proto::wire::{ClientMsg, DeleteRequest};
use anonchat_proto::{Key32, Sig64, Username};
use serde::{Deserialize, Serialize};

use super::{lock, unix_now, Engine};
use crate::error::ProfileError;
use crate::ClientError;

/// The file that holds a deletion the server has not confirmed.
pub(crate) const FILE: &str = "deletion.json";
/// The most a kept deletion's file may be (it is a few hundred bytes).
const MAX_FILE: u64 = 4096;

/// A signed deletion of `username` at `server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deletion {
    pub server: String,
    /// The TLS key the profile had pinned for that server, checked again when resending.
    pub server_pin: Option<Key32>,
    pub username: Username,
    pub ts: u64,
    pub sig: Sig64,
}

/// What became of telling the server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Told {
    /// Deleted (or already gone).
    Done,
    /// The server will never take it (a signature it does not accept, or too old).
    Refused(String),
    /// No answer: worth sending again later.
    Unreachable(String),
}

impl Engine {
    fn deletion_file(&self) -> Result<PathBuf, ClientError> {
        Ok(crate::profile::profile_dir(&self.inner.profile)?.join(FILE))
    }

    /// Marks this profile's folder as a burner's (`burner::MARKER`), before its account exists.
    pub(crate) fn mark_burner(&self) -> Result<(), ClientError> {
        let dir = crate::profile::profile_dir(&self.inner.profile)?;
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(crate::burner::MARKER), b""))
            .map_err(|e| {
                ClientError::Profile(ProfileError::Storage(format!(
                    "marking the burner's profile: {e}"
                )))
            })
    }

    /// This account's deletion, signed now.
    pub(crate) fn sign_deletion(&self) -> Result<Deletion, ClientError> {
        let (username, _) = self.my_ak()?;
        let ts = unix_now();
        let sig = self.sign_ak(&anonchat_proto::signing::delete_account_bytes(
            &username, ts,
        ))?;
        Ok(Deletion {
            server: self.server_or_err()?,
            server_pin: lock(&self.inner.data)
                .server_pin
                .or(self.inner.pin.seen().map(Key32)),
            username,
            ts,
            sig,
        })
    }

    /// Over the session if it is up within `wait`, else over HTTP.
    pub(crate) async fn tell_deletion(&self, d: &Deletion, wait: Duration) -> Told {
        if !self.is_connected() {
            let _ = self.connect().await;
        }
        let deadline = tokio::time::Instant::now() + wait;
        while !self.is_connected() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.is_connected() {
            let asked = self.inner.signaling.request(ClientMsg::DeleteAccount {
                ts: d.ts,
                sig: d.sig,
            });
            if asked.await.is_ok() {
                return Told::Done;
            }
        }
        self.post_deletion(d).await
    }

    /// `POST /v1/delete` at the deletion's own server, under the pin it was signed under.
    pub(crate) async fn post_deletion(&self, d: &Deletion) -> Told {
        if let Err(e) = crate::tls::check_origin(&d.server, self.inner.insecure_plain_http_on_lan) {
            return Told::Refused(e.to_string());
        }
        if d.server_pin.is_some() {
            self.inner.pin.expect(d.server_pin.map(|k| k.0));
        }
        let body = DeleteRequest {
            v: anonchat_proto::VERSION,
            username: d.username.clone(),
            ts: d.ts,
            sig: d.sig,
        };
        let sent = self
            .inner
            .http
            .post(format!("{}/v1/delete", d.server))
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND => {
                Told::Done
            }
            Ok(r) if r.status() == reqwest::StatusCode::BAD_REQUEST => {
                Told::Refused(format!("the server refused it ({})", r.status()))
            }
            Ok(r) => Told::Unreachable(format!("the server answered {}", r.status())),
            Err(e) => Told::Unreachable(e.to_string()),
        }
    }

    /// The deletion this (erased) profile still has to send, if any. A file that does not
    /// parse is no deletion (it is removed with the folder).
    pub(crate) fn kept_deletion(&self) -> Option<Deletion> {
        let path = self.deletion_file().ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > MAX_FILE {
            return None;
        }
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Keeps `d` (and nothing else) in this profile's folder, readable by this user only.
    pub(crate) fn keep_deletion(&self, d: &Deletion) -> Result<(), ClientError> {
        let path = self.deletion_file()?;
        let storage = |e: std::io::Error| {
            ClientError::Profile(ProfileError::Storage(format!(
                "keeping the burner's deletion: {e}"
            )))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(storage)?;
        }
        let bytes = serde_json::to_vec(d)
            .map_err(|e| ClientError::Profile(ProfileError::Storage(e.to_string())))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        use std::io::Write;
        let mut f = opts.open(&path).map_err(storage)?;
        f.write_all(&bytes).map_err(storage)?;
        f.sync_all().map_err(storage)
    }
}
