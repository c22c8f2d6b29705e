//! Rotating the account key (DESIGN P8, lost devices): a new key, a statement signed by the old and
//! the new key, the remaining devices re-certified and handed the new key over Olm, devices that
//! cannot be reached signed out first, and this account's friendship edges re-signed. Also the
//! other sides: a sibling device taking the new key, and a contact following a rotated key.

use anonchat_proto::bytes::Blob;
use anonchat_proto::enroll::Handover;
use anonchat_proto::frames::SecretText;
use anonchat_proto::rotation::{follow, AkRotation, Chain};
use anonchat_proto::signing::{friend_bytes, one_time_key_bytes, verify};
use anonchat_proto::wire::{ClientMsg, DeviceBlob, ServerMsg};
use anonchat_proto::{DeviceCert, Key32, Username};
use vodozemac::olm::{OlmMessage, SessionConfig};
use vodozemac::Curve25519PublicKey;

use super::{blocking, lock, unix_now, Engine, Inner};
use crate::error::{ProfileError, SessionError, SignalingError};
use crate::events::Event;
use crate::identity::{ak_secret_from_b64, Identity, NewAccountKey};
use crate::session::{parse_olm, seal};
use crate::ClientError;

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotationView {
    /// Devices that were offline or not certified by the old key: revoked, to be added again.
    pub signed_out: Vec<String>,
    /// Devices that got the new key.
    pub handed_over: Vec<String>,
    /// Friendships whose edge this account re-signed with the new key.
    pub friends_resigned: usize,
    /// Friendships left as they were (the friend's key is in dispute here: settle it, then the
    /// edge is re-signed when its new key is trusted).
    pub friends_skipped: Vec<String>,
}

/// A device the user saw in the device list and chose to keep through a rotation: its id and the
/// fingerprint that list showed for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptDevice {
    pub device_id: String,
    pub fingerprint: String,
}

/// A re-signed edge refused for the upkeep budget is tried this many times, the first retry
/// after this, doubling (the budget refills at ten a second).
const RESIGN_TRIES: u32 = 5;
const RESIGN_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

fn curve(k: &Key32) -> Curve25519PublicKey {
    Curve25519PublicKey::from_bytes(k.0)
}

fn recert(cert: &DeviceCert, key: &NewAccountKey) -> DeviceCert {
    let mut c = cert.clone();
    c.sig = key.sign(&c.bytes_to_sign());
    c
}

impl Engine {
    /// Replaces the account key with a new one (offered after revoking a device: the lost device
    /// held the old key). Only the devices in `keep` — the ones the user saw listed, with the
    /// fingerprints shown — are re-certified and get the new key end to end; every other device
    /// (offline now, added since the list was shown, say by whoever holds the lost device, or
    /// one the server made up) is signed out. A kept device the server now lists with another
    /// key refuses the whole rotation (`not_what_was_shown`), before anything changes.
    pub async fn rotate_account_key(
        &self,
        keep: &[KeptDevice],
    ) -> Result<RotationView, ClientError> {
        self.inner.sensitive()?;
        let (me, old_ak) = self.my_ak()?;
        let ServerMsg::Devices { devices } =
            self.inner.signaling.request(ClientMsg::ListDevices).await?
        else {
            return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
        };
        let my_id = lock(&self.inner.identity)
            .as_ref()
            .map(|i| i.device_id.clone())
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        let mut view = RotationView {
            signed_out: Vec::new(),
            handed_over: Vec::new(),
            friends_resigned: 0,
            friends_skipped: Vec::new(),
        };
        let mut siblings = Vec::new();
        let mut own_cert = None;
        let revoked_here = lock(&self.inner.data).revoked.clone();
        let shown = |id: &str| keep.iter().find(|k| k.device_id == id);
        for d in devices.iter().filter(|d| !d.revoked) {
            let listed = anonchat_proto::enroll::device_fingerprint(&d.cert.dk_ed25519);
            if shown(&d.cert.device_id).is_some_and(|k| k.fingerprint != listed) {
                return Err(crate::trust::Refusal::NotShown.into());
            }
        }
        for d in devices.into_iter().filter(|d| !d.revoked) {
            let certified = d.cert.username == me && d.cert.verify(&old_ak).is_ok();
            let kept = shown(&d.cert.device_id).is_some();
            if d.cert.device_id == my_id {
                own_cert = Some(d.cert);
            } else if kept && certified && d.online && !revoked_here.contains(&d.cert.device_id) {
                siblings.push(d.cert);
            } else {
                // Not kept by the user, offline, a device our key never certified (the
                // server's), or one this device revoked that the server lists again: signed out.
                self.revoke_device(&d.cert.device_id).await?;
                view.signed_out.push(d.cert.device_id);
            }
        }
        let own_cert = own_cert.ok_or(ClientError::Profile(ProfileError::NoIdentity))?;

        let mut otks = Vec::new();
        for cert in &siblings {
            let ServerMsg::DeviceOtk { otk, .. } = self
                .inner
                .signaling
                .request(ClientMsg::ClaimDeviceOtk {
                    device_id: cert.device_id.clone(),
                })
                .await?
            else {
                return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
            };
            verify(
                &cert.dk_ed25519,
                &one_time_key_bytes(&cert.device_id, &otk.key),
                &otk.sig,
            )
            .map_err(|_| {
                ClientError::Refused(format!(
                    "device {} sent a one-time key it did not sign",
                    cert.device_id
                ))
            })?;
            otks.push(otk.key);
        }

        let new = Identity::new_account_key();
        let ts = unix_now();
        let bytes = AkRotation::signing_bytes(&me, &old_ak, &new.public(), ts);
        let rotation = AkRotation {
            username: me.clone(),
            old_ak,
            new_ak: new.public(),
            ts,
            sig_old: self.sign_ak(&bytes)?,
            sig_new: new.sign(&bytes),
        };
        let mut certs = vec![recert(&own_cert, &new)];
        let mut handovers = Vec::new();
        {
            let id = lock(&self.inner.identity);
            let id = id
                .as_ref()
                .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
            for (cert, otk) in siblings.iter().zip(&otks) {
                let mut olm = id
                    .account
                    .create_outbound_session(
                        SessionConfig::version_1(),
                        curve(&cert.dk_curve25519),
                        curve(otk),
                    )
                    .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))?;
                let handover = Handover {
                    username: me.clone(),
                    ak_secret: SecretText(new.secret_b64()),
                    contacts: Vec::new(),
                    blocked: Vec::new(),
                };
                handovers.push(DeviceBlob {
                    device_id: cert.device_id.clone(),
                    blob: Blob(seal(&mut olm, &handover.encode())?),
                });
                certs.push(recert(cert, &new));
            }
        }
        self.inner
            .signaling
            .request(ClientMsg::RotateAccountKey {
                rotation,
                certs: certs.clone(),
                handovers,
            })
            .await?;
        view.handed_over = siblings.into_iter().map(|c| c.device_id).collect();
        self.inner
            .take_new_key(&new.secret(), certs.swap_remove(0))
            .await?;
        self.resign_edges(&mut view).await?;
        self.inner.emit(Event::AccountKeyRotated {
            here: true,
            signed_out: view.signed_out.clone(),
        });
        Ok(view)
    }

    /// Re-signs this account's half of every friendship whose friend's key is the pinned one.
    async fn resign_edges(&self, view: &mut RotationView) -> Result<(), ClientError> {
        let ServerMsg::Friends { friends } =
            self.inner.signaling.request(ClientMsg::ListFriends).await?
        else {
            return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
        };
        let (me, my_ak) = self.my_ak()?;
        for f in friends {
            if self.inner.pinned(&f.username) != Some(f.ak_pub) {
                view.friends_skipped.push(f.username.to_string());
                continue;
            }
            let sig = self.sign_ak(&friend_bytes(&me, &my_ak, &f.username, &f.ak_pub))?;
            // Many friends re-signed at once can meet the server's upkeep budget: it refills
            // within seconds, so each edge is tried again rather than left on the old key.
            let mut wait = RESIGN_RETRY;
            for attempt in 1..=RESIGN_TRIES {
                let asked = self.inner.signaling.request(ClientMsg::FriendResign {
                    username: f.username.clone(),
                    sig,
                });
                match asked.await {
                    Err(ClientError::Signaling(SignalingError::RateLimited(_)))
                        if attempt < RESIGN_TRIES =>
                    {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    done => {
                        done?;
                        break;
                    }
                }
            }
            view.friends_resigned += 1;
        }
        Ok(())
    }

    /// After trusting a friend's new key: this account's half of the edge, over the new key.
    pub(super) async fn resign_edge_with(&self, them: Username, their_ak: Key32) {
        let Ok((me, my_ak)) = self.my_ak() else {
            return;
        };
        let Ok(sig) = self.sign_ak(&friend_bytes(&me, &my_ak, &them, &their_ak)) else {
            return;
        };
        // Not a friend (a key changed before the friendship was made): nothing to re-sign.
        let _ = self
            .inner
            .signaling
            .request(ClientMsg::FriendResign {
                username: them,
                sig,
            })
            .await;
    }
}

impl Inner {
    /// Switches this device to the new key (and its new certificate), in RAM and in the keychain.
    async fn take_new_key(&self, secret: &[u8; 32], cert: DeviceCert) -> Result<(), ClientError> {
        let stored = {
            let mut id = lock(&self.identity);
            let id = id
                .as_mut()
                .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
            id.set_account_key(secret, cert)?;
            id.to_secret()
        };
        let stored = self.identity_record(stored);
        // The code's seed is derived from the account key: the old one shows stale codes.
        *lock(&self.fvc) = None;
        let (kc, profile) = (self.keychain.clone(), self.profile.clone());
        blocking(move || kc.save(&profile, &stored)).await??;
        Ok(())
    }

    /// Another device of this account rotated the key. Taken only if the statement starts from our
    /// key and both keys signed it, the rotating device is certified by the new key, our new
    /// certificate is over our own keys, and the Olm handover from that device holds the new key's
    /// secret. Anything else is a warning and changes nothing.
    pub(super) fn on_account_key_rotated(
        &self,
        rotation: AkRotation,
        cert: DeviceCert,
        by: DeviceCert,
        blob: Blob,
    ) {
        let secret = match self.open_rotation(&rotation, &by, &blob) {
            Ok(s) => s,
            Err(e) => {
                return self.emit(Event::Warning {
                    message: format!("ignored an account-key rotation that does not hold: {e}"),
                })
            }
        };
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            let engine = Engine { inner: me };
            match engine.inner.take_new_key(&secret, cert).await {
                Ok(()) => engine.inner.emit(Event::AccountKeyRotated {
                    here: false,
                    signed_out: Vec::new(),
                }),
                Err(e) => engine.inner.emit(Event::Warning {
                    message: format!("ignored an account-key rotation that does not hold: {e}"),
                }),
            }
        });
    }

    fn open_rotation(
        &self,
        rotation: &AkRotation,
        by: &DeviceCert,
        blob: &Blob,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, ClientError> {
        let mut id = lock(&self.identity);
        let id = id
            .as_mut()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        if rotation.username != id.username || rotation.old_ak != id.ak_pub() {
            return Err(ClientError::Refused(
                "it does not start from our key".into(),
            ));
        }
        rotation.verify()?;
        if by.username != id.username || by.verify(&rotation.new_ak).is_err() {
            return Err(ClientError::Refused(
                "the rotating device is not certified by the new key".into(),
            ));
        }
        let OlmMessage::PreKey(pre) = parse_olm(&blob.0)? else {
            return Err(ClientError::Session(SessionError::Crypto(
                "not an Olm pre-key message".into(),
            )));
        };
        let created = id
            .account
            .create_inbound_session(SessionConfig::version_1(), curve(&by.dk_curve25519), &pre)
            .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))?;
        let plain = zeroize::Zeroizing::new(created.plaintext);
        let handover = Handover::decode(&plain)?;
        let secret = ak_secret_from_b64(handover.ak_secret.as_str())?;
        let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        if handover.username != id.username || Key32(public.to_bytes()) != rotation.new_ak {
            return Err(ClientError::Refused(
                "the handed-over secret is not the new key's".into(),
            ));
        }
        Ok(secret)
    }

    /// A pinned contact's key changed: warn at once with the new key's safety number (nothing
    /// proceeds until the user trusts exactly that number), then follow the contact's rotation
    /// statements from the pinned key and, when the chain verifies, say again that the owner
    /// rotated it. A server that withholds the history delays only that second word.
    pub(super) fn warn_key_changed(&self, who: &Username, pinned: Key32, new: Key32) {
        let safety_number = self.safety_with(who, &new);
        self.emit(Event::KeyChanged {
            username: who.to_string(),
            safety_number: safety_number.clone(),
            rotated: false,
        });
        let Some(me) = self.me.upgrade() else { return };
        let who = who.clone();
        tokio::spawn(async move {
            let history = match me
                .signaling
                .request(ClientMsg::KeyHistory {
                    username: who.clone(),
                })
                .await
            {
                Ok(ServerMsg::KeyHistory {
                    username,
                    rotations,
                }) if username == who => rotations,
                _ => return,
            };
            if matches!(follow(&who, &pinned, &new, &history), Chain::Rotated { .. }) {
                me.emit(Event::KeyChanged {
                    username: who.to_string(),
                    safety_number,
                    rotated: true,
                });
            }
        });
    }
}
