//! The keychain record under an app passcode (DESIGN §8): the identity's secrets sealed with
//! XChaCha20-Poly1305 under a key Argon2id derives from the passcode (64 MiB, 3 passes), so the
//! passcode encrypts them rather than hiding them behind a check any process of the user could
//! edit out. Beside the ciphertext, in clear, only the wrong-guess count and when the next guess
//! may be made: stored before each check, so quitting and starting again buys no guesses.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use anonchat_proto::bytes::{decode_b64, encode_b64};

/// The record's version: the plain record is 1.
const VERSION: u8 = 2;
/// Argon2id memory in KiB (64 MiB), passes, lanes: each offline guess costs this much.
const M_KIB: u32 = 64 * 1024;
const T: u32 = 3;
const P: u32 = 1;

/// The sealed record, as kept in the keychain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Record {
    v: u8,
    m: u32,
    t: u32,
    p: u32,
    salt: String,
    nonce: String,
    ct: String,
    /// Wrong guesses since the last right one.
    #[serde(default)]
    pub wrong: u32,
    /// Unix time before which no guess is checked.
    #[serde(default)]
    pub retry_at: u64,
}

/// The key a passcode derives for one record's salt, kept while unlocked so the identity can be
/// sealed again (a key rotation rewrites it) without asking.
pub struct Sealer {
    salt: [u8; 16],
    key: Zeroizing<[u8; 32]>,
}

fn derive(passcode: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Option<Zeroizing<[u8; 32]>> {
    let params = Params::new(m, t, p, Some(32)).ok()?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passcode.as_bytes(), salt, &mut *key)
        .ok()?;
    Some(key)
}

impl Sealer {
    /// A fresh salt and its key (the Argon2 work: run it off the async threads).
    pub fn new(passcode: &str) -> Option<Self> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let key = derive(passcode, &salt, M_KIB, T, P)?;
        Some(Self { salt, key })
    }

    /// Seals `plain` (the plain record) with a fresh nonce.
    pub fn seal(&self, plain: &[u8]) -> Record {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = XChaCha20Poly1305::new((&*self.key).into())
            .encrypt(XNonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        Record {
            v: VERSION,
            m: M_KIB,
            t: T,
            p: P,
            salt: encode_b64(&self.salt),
            nonce: encode_b64(&nonce),
            ct: encode_b64(&ct),
            wrong: 0,
            retry_at: 0,
        }
    }
}

impl Record {
    /// The record in `bytes` if it is a sealed one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes)
            .ok()
            .filter(|r| r.v == VERSION)
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Opens the record with `passcode`: the plain record and the sealer to seal it again, or
    /// `None` for a wrong passcode (or a damaged record). The Argon2 work: off the async threads.
    pub fn open(&self, passcode: &str) -> Option<(Zeroizing<Vec<u8>>, Sealer)> {
        let salt: [u8; 16] = decode_b64(&self.salt).ok()?.try_into().ok()?;
        let nonce = decode_b64(&self.nonce).ok()?;
        // Only what this client writes: a record edited to other costs is no record of ours.
        if nonce.len() != 24 || (self.m, self.t, self.p) != (M_KIB, T, P) {
            return None;
        }
        let key = derive(passcode, &salt, self.m, self.t, self.p)?;
        let ct = decode_b64(&self.ct).ok()?;
        let plain = XChaCha20Poly1305::new((&*key).into())
            .decrypt(XNonce::from_slice(&nonce), ct.as_slice())
            .ok()?;
        Some((Zeroizing::new(plain), Sealer { salt, key }))
    }

    /// The same sealed secrets with these guess counters.
    pub fn with_guesses(&self, wrong: u32, retry_at: u64) -> Self {
        Self {
            wrong,
            retry_at,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_under_a_passcode_opens_only_with_it() {
        let sealer = Sealer::new("correct horse battery").unwrap();
        let rec = sealer.seal(b"{\"v\":1,\"ak_secret\":\"secret\"}");
        let bytes = rec.to_bytes();
        assert!(
            !bytes.windows(6).any(|w| w == b"secret"),
            "nothing of the secrets in clear"
        );
        let back = Record::parse(&bytes).unwrap();
        assert_eq!(back, rec);
        let (plain, again) = back.open("correct horse battery").unwrap();
        assert_eq!(&plain[..], b"{\"v\":1,\"ak_secret\":\"secret\"}");
        assert!(back.open("correct horse batterY").is_none());
        // Sealed again (a rotation) under the same key: the same passcode opens it.
        let rec2 = again.seal(b"new");
        assert_ne!(rec2.nonce, rec.nonce);
        assert_eq!(&rec2.open("correct horse battery").unwrap().0[..], b"new");
        // A plain record is no sealed one; a weakened one is refused.
        assert!(Record::parse(b"{\"v\":1}").is_none());
        let weak = Record {
            m: 8,
            ..rec.clone()
        };
        assert!(weak.open("correct horse battery").is_none());
        let counted = rec.with_guesses(4, 99);
        assert_eq!((counted.wrong, counted.retry_at), (4, 99));
        assert_eq!(
            &counted.open("correct horse battery").unwrap().0[..],
            &plain[..]
        );
    }
}
