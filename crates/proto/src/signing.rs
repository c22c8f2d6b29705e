//! Canonical signing bytes. Every signature in AnonChat is over bytes built here, never over JSON.
//!
//! Layout: `"anonchat/v1" 0x00 purpose 0x00`, then each field in order: byte strings as a 4-byte
//! big-endian length and the bytes, integers as 8-byte big-endian. The purpose separates domains so a
//! signature made for one use can never be replayed as another.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::{Key32, ProtoError, Sig64, Username};

pub const DOMAIN: &[u8] = b"anonchat/v1";

pub struct SigningBytes(Vec<u8>);

impl SigningBytes {
    pub fn new(purpose: &str) -> Self {
        let mut v = Vec::with_capacity(128);
        v.extend_from_slice(DOMAIN);
        v.push(0);
        v.extend_from_slice(purpose.as_bytes());
        v.push(0);
        Self(v)
    }

    pub fn bytes(mut self, b: &[u8]) -> Self {
        // Fields are bounded by the message limits, far below u32::MAX.
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }

    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }

    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// What a device signs with its Ed25519 key to authenticate a WebSocket: the server's fresh nonce and
/// the origin the device believes it is talking to (so an answer cannot be relayed to another server).
pub fn auth_bytes(nonce: &[u8; 32], origin: &str, username: &Username, device_id: &str) -> Vec<u8> {
    SigningBytes::new("auth")
        .bytes(nonce)
        .str(origin)
        .str(username.as_str())
        .str(device_id)
        .finish()
}

/// What a device signs for each one-time key it uploads.
pub fn one_time_key_bytes(device_id: &str, key: &Key32) -> Vec<u8> {
    SigningBytes::new("otk")
        .str(device_id)
        .bytes(&key.0)
        .finish()
}

/// The friendship edge both account keys sign. Ordered by username so both sides sign the same bytes;
/// each side's signature also commits to the other's account key.
pub fn friend_bytes(a: &Username, ak_a: &Key32, b: &Username, ak_b: &Key32) -> Vec<u8> {
    let ((u1, k1), (u2, k2)) = if a <= b {
        ((a, ak_a), (b, ak_b))
    } else {
        ((b, ak_b), (a, ak_a))
    };
    SigningBytes::new("friend")
        .str(u1.as_str())
        .bytes(&k1.0)
        .str(u2.as_str())
        .bytes(&k2.0)
        .finish()
}

/// What the account key signs to delete the account (`ts`: unix seconds, checked for freshness).
pub fn delete_account_bytes(username: &Username, ts: u64) -> Vec<u8> {
    SigningBytes::new("delete-account")
        .str(username.as_str())
        .u64(ts)
        .finish()
}

/// What the account key signs to open an enrollment: the short code a new device will type (or scan
/// inside the QR string) and until when it is good (unix seconds).
pub fn enroll_token_bytes(username: &Username, code: &str, expires: u64) -> Vec<u8> {
    SigningBytes::new("enroll-token")
        .str(username.as_str())
        .str(code)
        .u64(expires)
        .finish()
}

/// What a new device signs with its Olm Ed25519 key to join an enrollment: the server's nonce and
/// origin (like `auth`), the code, and the keys it wants certified — proof that it holds the key.
pub fn enroll_join_bytes(
    nonce: &[u8; 32],
    origin: &str,
    code: &str,
    device_id: &str,
    dk_ed25519: &Key32,
    dk_curve25519: &Key32,
    caps: crate::Caps,
) -> Vec<u8> {
    SigningBytes::new("enroll-join")
        .bytes(nonce)
        .str(origin)
        .str(code)
        .str(device_id)
        .bytes(&dk_ed25519.0)
        .bytes(&dk_curve25519.0)
        .u64(u64::from(caps.screen_protection))
        .finish()
}

/// What the account key signs to revoke one of its devices (`ts`: unix seconds, checked for
/// freshness by the server; the revoked device checks the signature before it wipes itself).
pub fn revoke_device_bytes(username: &Username, device_id: &str, ts: u64) -> Vec<u8> {
    SigningBytes::new("revoke-device")
        .str(username.as_str())
        .str(device_id)
        .u64(ts)
        .finish()
}

/// Strict Ed25519 verification (rejects small-order keys and malleable signatures).
pub fn verify(public: &Key32, msg: &[u8], sig: &Sig64) -> Result<(), ProtoError> {
    let key = VerifyingKey::from_bytes(&public.0).map_err(|_| ProtoError::BadKey)?;
    let sig = Signature::from_bytes(&sig.0);
    key.verify_strict(msg, &sig)
        .map_err(|_| ProtoError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(purpose: &str) -> Vec<u8> {
        [b"anonchat/v1\0".as_slice(), purpose.as_bytes(), b"\0"].concat()
    }

    fn field(b: &[u8]) -> Vec<u8> {
        [(b.len() as u32).to_be_bytes().as_slice(), b].concat()
    }

    /// Every layout byte for byte, restated from the module's rule (docs/protocol.md §3).
    #[test]
    fn every_layout_is_the_documented_one() {
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let (k1, k2) = (Key32([1; 32]), Key32([2; 32]));
        assert_eq!(
            auth_bytes(&[9; 32], "http://x", &alice, "d1"),
            [
                head("auth"),
                field(&[9; 32]),
                field(b"http://x"),
                field(b"alice"),
                field(b"d1")
            ]
            .concat()
        );
        assert_eq!(
            one_time_key_bytes("d1", &k1),
            [head("otk"), field(b"d1"), field(&k1.0)].concat()
        );
        let edge = [
            head("friend"),
            field(b"alice"),
            field(&k1.0),
            field(b"bob"),
            field(&k2.0),
        ]
        .concat();
        assert_eq!(friend_bytes(&alice, &k1, &bob, &k2), edge);
        assert_eq!(friend_bytes(&bob, &k2, &alice, &k1), edge);
        assert_eq!(
            delete_account_bytes(&alice, 5),
            [
                head("delete-account"),
                field(b"alice"),
                5u64.to_be_bytes().to_vec()
            ]
            .concat()
        );
        assert_eq!(
            enroll_token_bytes(&alice, "ABCD1234", 7),
            [
                head("enroll-token"),
                field(b"alice"),
                field(b"ABCD1234"),
                7u64.to_be_bytes().to_vec()
            ]
            .concat()
        );
        let caps = crate::Caps {
            screen_protection: true,
        };
        assert_eq!(
            enroll_join_bytes(&[9; 32], "http://x", "ABCD1234", "d1", &k1, &k2, caps),
            [
                head("enroll-join"),
                field(&[9; 32]),
                field(b"http://x"),
                field(b"ABCD1234"),
                field(b"d1"),
                field(&k1.0),
                field(&k2.0),
                1u64.to_be_bytes().to_vec()
            ]
            .concat()
        );
        assert_eq!(
            revoke_device_bytes(&alice, "d1", 8),
            [
                head("revoke-device"),
                field(b"alice"),
                field(b"d1"),
                8u64.to_be_bytes().to_vec()
            ]
            .concat()
        );
        assert_eq!(
            crate::pow::register_resource(&alice, &k1),
            [head("register"), field(b"alice"), field(&k1.0)].concat()
        );
    }
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn otk_bytes_worked_example() {
        // docs/protocol.md §3: the device id signed as its 22 characters, the key with its length.
        let b = one_time_key_bytes("AAAAAAAAAAAAAAAAAAAAAA", &Key32([0x11; 32]));
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            "616e6f6e636861742f7631006f746b00000000164141414141414141414141414141414141414141414100\
             0000201111111111111111111111111111111111111111111111111111111111111111"
        );
    }

    #[test]
    fn layout_is_length_prefixed() {
        let b = SigningBytes::new("x").str("ab").u64(1).finish();
        assert_eq!(b, b"anonchat/v1\0x\0\0\0\0\x02ab\0\0\0\0\0\0\0\x01");
    }

    #[test]
    fn friend_bytes_are_symmetric() {
        let a = Username::parse("alice").unwrap();
        let b = Username::parse("bob").unwrap();
        let (ka, kb) = (Key32([1; 32]), Key32([2; 32]));
        assert_eq!(
            friend_bytes(&a, &ka, &b, &kb),
            friend_bytes(&b, &kb, &a, &ka)
        );
        assert_ne!(
            friend_bytes(&a, &ka, &b, &kb),
            friend_bytes(&a, &kb, &b, &ka)
        );
    }

    #[test]
    fn verify_rejects_other_message_and_key() {
        let sk = SigningKey::generate(&mut rand::rngs::OsRng);
        let pk = Key32(sk.verifying_key().to_bytes());
        let sig = Sig64(sk.sign(b"m").to_bytes());
        assert!(verify(&pk, b"m", &sig).is_ok());
        assert_eq!(verify(&pk, b"n", &sig), Err(ProtoError::BadSignature));
        let other = Key32(
            SigningKey::generate(&mut rand::rngs::OsRng)
                .verifying_key()
                .to_bytes(),
        );
        assert_eq!(verify(&other, b"m", &sig), Err(ProtoError::BadSignature));
    }
}
