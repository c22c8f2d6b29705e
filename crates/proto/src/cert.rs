//! Device certificates: the account key vouches for a device's Olm identity keys.

use serde::{Deserialize, Serialize};

use crate::signing::{verify, SigningBytes};
use crate::{Key32, ProtoError, Sig64, Username};

/// A device id: 16 random bytes as unpadded URL-safe base64 (22 characters).
pub type DeviceId = String;

pub fn valid_device_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a device can do, told to peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Caps {
    /// The device can keep its chat window out of screenshots and screen recordings.
    pub screen_protection: bool,
}

impl Caps {
    fn bits(&self) -> u64 {
        u64::from(self.screen_protection)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCert {
    pub v: u8,
    pub username: Username,
    pub device_id: DeviceId,
    pub dk_ed25519: Key32,
    pub dk_curve25519: Key32,
    pub caps: Caps,
    /// Unix seconds.
    pub created_at: u64,
    /// Account-key signature over [`DeviceCert::signing_bytes`].
    pub sig: Sig64,
}

impl DeviceCert {
    pub fn signing_bytes(
        username: &Username,
        device_id: &str,
        dk_ed25519: &Key32,
        dk_curve25519: &Key32,
        caps: Caps,
        created_at: u64,
    ) -> Vec<u8> {
        SigningBytes::new("device-cert")
            .u64(u64::from(crate::VERSION))
            .str(username.as_str())
            .str(device_id)
            .bytes(&dk_ed25519.0)
            .bytes(&dk_curve25519.0)
            .u64(caps.bits())
            .u64(created_at)
            .finish()
    }

    /// The bytes this certificate's `sig` covers (to check it, or to sign it anew after a key
    /// rotation: same fields, new key).
    pub fn bytes_to_sign(&self) -> Vec<u8> {
        Self::signing_bytes(
            &self.username,
            &self.device_id,
            &self.dk_ed25519,
            &self.dk_curve25519,
            self.caps,
            self.created_at,
        )
    }

    /// Checks the certificate is well-formed and signed by `ak`.
    pub fn verify(&self, ak: &Key32) -> Result<(), ProtoError> {
        if self.v != crate::VERSION {
            return Err(ProtoError::BadVersion(self.v));
        }
        if !valid_device_id(&self.device_id) {
            return Err(ProtoError::Malformed("device_id".into()));
        }
        verify(ak, &self.bytes_to_sign(), &self.sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_22_url_safe_characters() {
        assert!(valid_device_id("abcdefghijklmnopqrs-_9"));
        assert!(!valid_device_id("abcdefghijklmnopqrs-_"), "21 characters");
        assert!(!valid_device_id("abcdefghijklmnopqrs-_90"), "23 characters");
        assert!(
            !valid_device_id("abcdefghijklmnopqrs-+9"),
            "'+' is not URL-safe"
        );
        assert!(!valid_device_id("abcdefghijklmnopqrs-/9"));
        assert!(
            !valid_device_id("abcdefghijklmnopqrs-é"),
            "22 bytes, not ASCII"
        );
        assert!(!valid_device_id(""));
    }
    use ed25519_dalek::{Signer, SigningKey};

    fn cert(sk: &SigningKey) -> DeviceCert {
        let username = Username::parse("alice").unwrap();
        let (e, c) = (Key32([3; 32]), Key32([4; 32]));
        let caps = Caps::default();
        let bytes = DeviceCert::signing_bytes(&username, "AAAAAAAAAAAAAAAAAAAAAA", &e, &c, caps, 5);
        DeviceCert {
            v: 1,
            username,
            device_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            dk_ed25519: e,
            dk_curve25519: c,
            caps,
            created_at: 5,
            sig: Sig64(sk.sign(&bytes).to_bytes()),
        }
    }

    #[test]
    fn verifies_and_detects_swapped_keys() {
        let sk = SigningKey::generate(&mut rand::rngs::OsRng);
        let ak = Key32(sk.verifying_key().to_bytes());
        let c = cert(&sk);
        assert!(c.verify(&ak).is_ok());
        let mut swapped = c.clone();
        swapped.dk_curve25519 = Key32([9; 32]);
        assert_eq!(swapped.verify(&ak), Err(ProtoError::BadSignature));
        let mut caps = c;
        caps.caps.screen_protection = true;
        assert_eq!(caps.verify(&ak), Err(ProtoError::BadSignature));
    }
}
