//! This device's identity: the account key (AK), the Olm account (DK) and the AK-signed device
//! certificate. Serialized only into the keychain, inside zeroizing buffers.

use anonchat_proto::bytes::{decode_b64, encode_b64};
use anonchat_proto::{Caps, DeviceCert, Key32, Sig64, Username};
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use vodozemac::olm::{Account, AccountPickle};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::ProfileError;
use crate::ClientError;

/// The keychain record. Every field is secret or private enough to wipe.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Stored {
    v: u8,
    username: String,
    device_id: String,
    ak_secret: String,
    pickle_key: String,
    profile_key: String,
    account: String,
    cert: String,
    /// The app passcode's Argon2id hash (PHC string), if the user set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passcode: Option<String>,
}

pub struct Identity {
    pub username: Username,
    pub device_id: String,
    ak: SigningKey,
    pub account: Account,
    pickle_key: Zeroizing<[u8; 32]>,
    pub profile_key: Zeroizing<[u8; 32]>,
    pub cert: DeviceCert,
    /// The app passcode's Argon2id hash, kept in the keychain entry with the keys.
    pub passcode_hash: Option<String>,
}

/// An account key made for a rotation, not yet the account's (zeroized on drop by `SigningKey`).
pub struct NewAccountKey(SigningKey);

impl NewAccountKey {
    pub fn public(&self) -> Key32 {
        Key32(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, msg: &[u8]) -> Sig64 {
        Sig64(self.0.sign(msg).to_bytes())
    }

    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn secret_b64(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_b64(&*self.secret()))
    }
}

fn random32() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut *k);
    k
}

fn secret32(b64: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
    let raw = Zeroizing::new(decode_b64(b64)?);
    let mut out = Zeroizing::new([0u8; 32]);
    if raw.len() != 32 {
        return Err(ClientError::Profile(ProfileError::Keychain(
            "corrupt identity record".into(),
        )));
    }
    out.copy_from_slice(&raw);
    Ok(out)
}

/// 16 random bytes, URL-safe base64: a new device's id.
pub fn new_device_id() -> String {
    use base64::Engine;
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// The account key's secret from its base64 form.
pub fn ak_secret_from_b64(b64: &str) -> Result<Zeroizing<[u8; 32]>, ClientError> {
    secret32(b64)
}

impl Identity {
    pub fn create(username: Username, caps: Caps, now: u64) -> Self {
        let ak = SigningKey::from_bytes(&random32());
        let account = Account::new();
        let device_id = new_device_id();
        let keys = account.identity_keys();
        let dk_ed25519 = Key32(*keys.ed25519.as_bytes());
        let dk_curve25519 = Key32(keys.curve25519.to_bytes());
        let bytes = DeviceCert::signing_bytes(
            &username,
            &device_id,
            &dk_ed25519,
            &dk_curve25519,
            caps,
            now,
        );
        let cert = DeviceCert {
            v: anonchat_proto::VERSION,
            username: username.clone(),
            device_id: device_id.clone(),
            dk_ed25519,
            dk_curve25519,
            caps,
            created_at: now,
            sig: Sig64(ak.sign(&bytes).to_bytes()),
        };
        Self {
            username,
            device_id,
            ak,
            account,
            pickle_key: random32(),
            profile_key: random32(),
            cert,
            passcode_hash: None,
        }
    }

    /// A device that was enrolled into an existing account: the account key came from the old
    /// device, the certificate is the account key's over this device's Olm keys.
    pub fn from_enrollment(
        username: Username,
        ak_secret: &[u8; 32],
        account: Account,
        cert: DeviceCert,
    ) -> Result<Self, ClientError> {
        let me = Self {
            username,
            device_id: cert.device_id.clone(),
            ak: SigningKey::from_bytes(ak_secret),
            account,
            pickle_key: random32(),
            profile_key: random32(),
            cert,
            passcode_hash: None,
        };
        me.cert.verify(&me.ak_pub())?;
        Ok(me)
    }

    /// A fresh account key, to rotate to.
    pub fn new_account_key() -> NewAccountKey {
        NewAccountKey(SigningKey::from_bytes(&random32()))
    }

    /// Switches this device to a rotated account key: `cert` must be the new key's over this very
    /// device's keys, or nothing changes.
    pub fn set_account_key(
        &mut self,
        ak_secret: &[u8; 32],
        cert: DeviceCert,
    ) -> Result<(), ClientError> {
        let ak = SigningKey::from_bytes(ak_secret);
        let mine = cert.device_id == self.device_id
            && cert.username == self.username
            && cert.dk_ed25519 == self.cert.dk_ed25519
            && cert.dk_curve25519 == self.cert.dk_curve25519;
        cert.verify(&Key32(ak.verifying_key().to_bytes()))?;
        if !mine {
            return Err(ClientError::Refused(
                "the new certificate is not for this device".into(),
            ));
        }
        self.ak = ak;
        self.cert = cert;
        Ok(())
    }

    /// The account key's secret bytes, for handing over to a new device of this account.
    pub fn ak_secret_b64(&self) -> Zeroizing<String> {
        let raw = Zeroizing::new(self.ak.to_bytes());
        Zeroizing::new(encode_b64(&*raw))
    }

    pub fn ak_pub(&self) -> Key32 {
        Key32(self.ak.verifying_key().to_bytes())
    }

    /// Signs with the account key.
    pub fn sign_ak(&self, msg: &[u8]) -> Sig64 {
        Sig64(self.ak.sign(msg).to_bytes())
    }

    /// Signs with this device's Olm Ed25519 key.
    pub fn sign_dk(&self, msg: &[u8]) -> Sig64 {
        Sig64(self.account.sign(msg).to_bytes())
    }

    pub fn to_secret(&self) -> Zeroizing<Vec<u8>> {
        let ak_secret = Zeroizing::new(self.ak.to_bytes());
        let stored = Stored {
            v: 1,
            username: self.username.to_string(),
            device_id: self.device_id.clone(),
            ak_secret: encode_b64(&*ak_secret),
            pickle_key: encode_b64(&*self.pickle_key),
            profile_key: encode_b64(&*self.profile_key),
            account: self.account.pickle().encrypt(&self.pickle_key),
            cert: serde_json::to_string(&self.cert).unwrap_or_default(),
            passcode: self.passcode_hash.clone(),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(2048));
        // Serializing plain strings into a Vec does not fail.
        let _ = serde_json::to_writer(&mut *out, &stored);
        out
    }

    pub fn from_secret(bytes: &[u8]) -> Result<Self, ClientError> {
        let corrupt =
            |_| ClientError::Profile(ProfileError::Keychain("corrupt identity record".into()));
        let stored: Stored = serde_json::from_slice(bytes).map_err(corrupt)?;
        let ak = SigningKey::from_bytes(&*secret32(&stored.ak_secret)?);
        let pickle_key = secret32(&stored.pickle_key)?;
        let pickle = AccountPickle::from_encrypted(&stored.account, &pickle_key).map_err(|e| {
            ClientError::Profile(ProfileError::Keychain(format!("olm account: {e}")))
        })?;
        let cert: DeviceCert = serde_json::from_str(&stored.cert).map_err(corrupt)?;
        let me = Self {
            username: Username::parse(&stored.username)?,
            device_id: stored.device_id.clone(),
            ak,
            account: Account::from_pickle(pickle),
            pickle_key,
            profile_key: secret32(&stored.profile_key)?,
            cert,
            passcode_hash: stored.passcode.clone(),
        };
        me.cert.verify(&me.ak_pub())?;
        Ok(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_secret_bytes() {
        let id = Identity::create(Username::parse("alice").unwrap(), Caps::default(), 7);
        id.cert.verify(&id.ak_pub()).unwrap();
        let back = Identity::from_secret(&id.to_secret()).unwrap();
        assert_eq!(back.ak_pub(), id.ak_pub());
        assert_eq!(back.cert, id.cert);
        assert_eq!(back.account.identity_keys(), id.account.identity_keys());
        assert!(Identity::from_secret(b"{}").is_err());
    }

    #[test]
    fn a_rotated_key_needs_a_certificate_for_this_device() {
        let mut id = Identity::create(Username::parse("alice").unwrap(), Caps::default(), 7);
        let old = id.ak_pub();
        let new = Identity::new_account_key();
        let sign_cert = |cert: &DeviceCert, key: &NewAccountKey| {
            let mut c = cert.clone();
            c.sig = key.sign(&c.bytes_to_sign());
            c
        };
        // Signed by another key, or for another device: refused, nothing changes.
        let stranger = Identity::new_account_key();
        assert!(id
            .set_account_key(&new.secret(), sign_cert(&id.cert, &stranger))
            .is_err());
        let mut other = id.cert.clone();
        other.device_id = new_device_id();
        assert!(id
            .set_account_key(&new.secret(), sign_cert(&other, &new))
            .is_err());
        assert_eq!(id.ak_pub(), old);
        let cert = sign_cert(&id.cert, &new);
        id.set_account_key(&new.secret(), cert).unwrap();
        assert_eq!(id.ak_pub(), new.public());
        let back = Identity::from_secret(&id.to_secret()).unwrap();
        assert_eq!(back.ak_pub(), new.public());
    }
}
