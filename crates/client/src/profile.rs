//! The profile folder: the contact list (pinned account keys), encrypted under a key kept in the
//! keychain. Never messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anonchat_proto::Key32;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ProfileError;
use crate::ClientError;

pub mod instance;
mod writer;
pub use writer::{Writer, Written};

const CONTACTS_FILE: &str = "contacts.bin";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The account key pinned on first use.
    pub ak_pub: Key32,
    /// The user compared safety numbers and marked it verified.
    #[serde(default)]
    pub verified: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileData {
    pub server: Option<String>,
    pub contacts: BTreeMap<String, Contact>,
    /// Accounts whose rings and friend requests are refused without asking (by hand, or after
    /// repeated refusals).
    #[serde(default)]
    pub blocked: std::collections::BTreeSet<String>,
    /// A front-end's own settings (the panic shortcut, whether notifications name the caller).
    #[serde(default)]
    pub ui: BTreeMap<String, String>,
    /// The user turned "hide my IP" off: sessions may connect directly (the peer sees our address).
    #[serde(default)]
    pub direct_connections: bool,
    /// The user turned the window's capture protection off (where the OS has it): peers are told
    /// in `hello` and show the unprotected banner.
    #[serde(default)]
    pub capture_unprotected: bool,
    /// The largest attachment accepted, in MB (unset: the default).
    #[serde(default)]
    pub max_file_mb: Option<u32>,
    /// Lines one chat keeps, and MB of attachments it holds (unset: the defaults).
    #[serde(default)]
    pub max_chat_lines: Option<u32>,
    #[serde(default)]
    pub max_chat_mb: Option<u32>,
    /// SHA-256 of the server's TLS key (SubjectPublicKeyInfo), pinned on first use.
    #[serde(default)]
    pub server_pin: Option<anonchat_proto::Key32>,
    /// Devices of this account this device revoked: never handed a key again, whatever the
    /// server lists (a rotation signs them out once more instead).
    #[serde(default)]
    pub revoked: std::collections::BTreeSet<String>,
}

/// Where profiles live: `$ANONCHAT_HOME` or the platform data folder, then `profiles/<name>`.
pub fn profile_dir(name: &str) -> Result<PathBuf, ClientError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ClientError::Profile(ProfileError::Storage(
            "profile names are 1-32 letters, digits, '-' or '_'".into(),
        )));
    }
    let base = match std::env::var_os("ANONCHAT_HOME") {
        Some(h) => PathBuf::from(h),
        None => dirs::data_dir()
            .ok_or_else(|| {
                ClientError::Profile(ProfileError::Storage(
                    "no data folder on this system".into(),
                ))
            })?
            .join("anonchat"),
    };
    Ok(base.join("profiles").join(name))
}

pub fn load(dir: &Path, key: &[u8; 32]) -> Result<ProfileData, ClientError> {
    let path = dir.join(CONTACTS_FILE);
    let raw = match std::fs::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileData::default()),
        Err(e) => return Err(ClientError::Profile(ProfileError::Storage(e.to_string()))),
    };
    open(&raw, key)
}

/// The contacts file's bytes (nonce, then XChaCha20-Poly1305 ciphertext) opened under `key`.
pub fn open(raw: &[u8], key: &[u8; 32]) -> Result<ProfileData, ClientError> {
    if raw.len() < 24 {
        return Err(ClientError::Profile(ProfileError::Storage(
            "contacts file is corrupt".into(),
        )));
    }
    let (nonce, ct) = raw.split_at(24);
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(key.into())
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| {
                ClientError::Profile(ProfileError::Storage(
                    "contacts file does not match this identity".into(),
                ))
            })?,
    );
    parse(&plain)
}

/// The decrypted contents (JSON).
pub fn parse(plain: &[u8]) -> Result<ProfileData, ClientError> {
    serde_json::from_slice(plain)
        .map_err(|e| ClientError::Profile(ProfileError::Storage(e.to_string())))
}

/// The contacts file's bytes for `data` under `key`, with a fresh nonce.
pub fn seal(key: &[u8; 32], data: &ProfileData) -> Result<Vec<u8>, ClientError> {
    let plain = Zeroizing::new(
        serde_json::to_vec(data)
            .map_err(|e| ClientError::Profile(ProfileError::Storage(e.to_string())))?,
    );
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| ClientError::Profile(ProfileError::Storage("encryption failed".into())))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_round_trip_and_wrong_key_fails() {
        let dir =
            std::env::temp_dir().join(format!("anonchat-profile-test-{}", std::process::id()));
        let mut data = ProfileData::default();
        data.contacts.insert(
            "bob".into(),
            Contact {
                ak_pub: Key32([5; 32]),
                verified: false,
            },
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CONTACTS_FILE), seal(&[1; 32], &data).unwrap()).unwrap();
        let raw = std::fs::read(dir.join(CONTACTS_FILE)).unwrap();
        assert!(
            !raw.windows(3).any(|w| w == b"bob"),
            "names are not on disk in clear"
        );
        assert_eq!(load(&dir, &[1; 32]).unwrap(), data);
        assert!(load(&dir, &[2; 32]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
