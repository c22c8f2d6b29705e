//! The devices of this account (DESIGN §7): open an enrollment on the old device, join it from the
//! new one, approve (certificate + account key and contacts over Olm), list, revoke, and wipe this
//! device when another one revoked it.

use anonchat_proto::bytes::Blob;
use anonchat_proto::enroll::{
    code_from_bytes, device_fingerprint, display_code, enroll_compare_code, normalize_code,
    Handover, HandoverContact, Token, MAX_HANDOVER_CONTACTS, TOKEN_TTL_SECS,
};
use anonchat_proto::frames::SecretText;
use anonchat_proto::signing::{
    enroll_join_bytes, enroll_token_bytes, one_time_key_bytes, revoke_device_bytes, verify,
};
use anonchat_proto::wire::{ClientMsg, ServerMsg, SignedOtk};
use anonchat_proto::{Caps, DeviceCert, Key32, Sig64, Username};
use rand::RngCore;
use vodozemac::olm::{Account, OlmMessage, SessionConfig};
use vodozemac::Curve25519PublicKey;

use super::{blocking, lock, unix_now, Engine, Inner};
use crate::enrollment::{JoinRequest, OnJoin};
use crate::error::{ProfileError, SessionError, SignalingError};
use crate::events::Event;
use crate::identity::{ak_secret_from_b64, new_device_id, Identity};
use crate::profile::Contact;
use crate::session::{parse_olm, seal};
use crate::ClientError;

/// An open enrollment as the old device shows it: the code to type, and the QR string.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnrollView {
    pub code: String,
    pub link: String,
    pub expires_in: u64,
}

/// The new device after enrollment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnrolledView {
    pub username: String,
    pub device_id: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceView {
    pub device_id: String,
    pub fingerprint: String,
    pub created_at: u64,
    pub online: bool,
    pub revoked: bool,
    pub this_device: bool,
    /// The certificate verifies with this account's key (a device that does not is the server's
    /// doing, and is shown as such).
    pub certified: bool,
}

fn curve(k: &Key32) -> Curve25519PublicKey {
    Curve25519PublicKey::from_bytes(k.0)
}

impl Engine {
    /// Opens an enrollment for a new device (old device): an 8-character code and the QR string,
    /// both good for five minutes and for one device.
    pub async fn enroll_open(&self) -> Result<EnrollView, ClientError> {
        self.inner.sensitive()?;
        let (me, ak_pub) = self.my_ak()?;
        let mut b = [0u8; 5];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let code = code_from_bytes(b);
        let expires = unix_now() + TOKEN_TTL_SECS;
        let sig = self.sign_ak(&enroll_token_bytes(&me, &code, expires))?;
        lock(&self.inner.enroll_gate).open();
        self.inner
            .signaling
            .request(ClientMsg::EnrollOpen {
                code: code.clone(),
                expires,
                sig,
            })
            .await?;
        let token = Token {
            username: me,
            code: code.clone(),
            expires,
            ak_pub,
            sig,
        };
        Ok(EnrollView {
            code: display_code(&code),
            link: token.link(),
            expires_in: TOKEN_TTL_SECS,
        })
    }

    /// Joins an account as a new device (new device), with the typed code or the scanned QR string.
    /// Emits `enroll_pending` with this device's fingerprint, then waits for the old device.
    pub async fn enroll(&self, code_or_link: &str) -> Result<EnrolledView, ClientError> {
        if let Some(name) = self.username() {
            return Err(ClientError::Profile(ProfileError::AlreadyRegistered(name)));
        }
        // A profile whose keys are sealed under the passcode has an identity: never one over it.
        self.inner.unlocked()?;
        if lock(&self.inner.sealed).is_some() {
            return Err(self.inner.no_identity());
        }
        let origin = self.server_or_err()?;
        // The QR string carries the account key: the new device then trusts no one else's word for
        // it. A typed code learns it from the server; the comparison code covers it as well as this
        // device's keys, so a lie in either direction shows as two different codes.
        let scanned = if code_or_link.trim().starts_with("anonchat://") {
            let t = Token::parse_link(code_or_link)?;
            t.verify(unix_now())?;
            Some(t)
        } else {
            None
        };
        let code = match &scanned {
            Some(t) => t.code.clone(),
            None => normalize_code(code_or_link).ok_or_else(|| {
                ClientError::Refused("an enrollment code has 8 characters".into())
            })?,
        };
        let mut account = Account::new();
        let device_id = new_device_id();
        account.generate_one_time_keys(1);
        let otk_key = account
            .one_time_keys()
            .values()
            .next()
            .map(|k| Key32(k.to_bytes()))
            .ok_or_else(|| ClientError::Session(SessionError::Crypto("no one-time key".into())))?;
        account.mark_keys_as_published();
        let keys = account.identity_keys();
        let dk_ed25519 = Key32(*keys.ed25519.as_bytes());
        let dk_curve25519 = Key32(keys.curve25519.to_bytes());
        let caps = self.inner.caps;
        let otk = SignedOtk {
            sig: Sig64(
                account
                    .sign(one_time_key_bytes(&device_id, &otk_key))
                    .to_bytes(),
            ),
            key: otk_key,
        };

        let mut joined: Option<(Username, Key32, String)> = None;
        let answer = crate::signaling::enroll(
            &origin,
            &self.inner.tls,
            |nonce, origin| {
                let signed = enroll_join_bytes(
                    nonce,
                    origin,
                    &code,
                    &device_id,
                    &dk_ed25519,
                    &dk_curve25519,
                    caps,
                );
                ClientMsg::EnrollJoin {
                    code: code.clone(),
                    device_id: device_id.clone(),
                    dk_ed25519,
                    dk_curve25519,
                    caps,
                    otk,
                    sig: Sig64(account.sign(&signed).to_bytes()),
                }
            },
            |pending| {
                let ServerMsg::EnrollPending {
                    username,
                    ak_pub,
                    expires,
                    sig,
                } = pending
                else {
                    return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
                };
                let token = Token {
                    username: username.clone(),
                    code: code.clone(),
                    expires,
                    ak_pub,
                    sig,
                };
                token.verify(unix_now())?;
                if scanned
                    .as_ref()
                    .is_some_and(|t| t.ak_pub != ak_pub || t.username != username)
                {
                    return Err(ClientError::Refused(
                        "the server named another account than the scanned code".into(),
                    ));
                }
                // Over the account key as the server named it: if it lied, the old device shows
                // another code (its own key), and the user stops.
                let fingerprint = enroll_compare_code(
                    &username,
                    &ak_pub,
                    &device_id,
                    &dk_ed25519,
                    &dk_curve25519,
                );
                self.inner.emit(Event::EnrollPending {
                    username: username.to_string(),
                    fingerprint: fingerprint.clone(),
                });
                joined = Some((username, ak_pub, fingerprint));
                Ok(())
            },
        )
        .await?;
        let (username, ak_pub, fingerprint) =
            joined.ok_or(ClientError::Signaling(SignalingError::NotConnected))?;
        let ServerMsg::Enrolled { cert, by, blob } = answer else {
            return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
        };

        // The handover must come from a device of this account, in an Olm session to our key.
        if by.username != username || by.verify(&ak_pub).is_err() {
            return Err(ClientError::Refused(
                "the approving device is not certified by the account key".into(),
            ));
        }
        let OlmMessage::PreKey(pre) = parse_olm(&blob.0)? else {
            return Err(ClientError::Session(SessionError::Crypto(
                "the handover is not an Olm pre-key message".into(),
            )));
        };
        let created = account
            .create_inbound_session(SessionConfig::version_1(), curve(&by.dk_curve25519), &pre)
            .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))?;
        let plain = zeroize::Zeroizing::new(created.plaintext);
        let handover = Handover::decode(&plain)?;
        let secret = ak_secret_from_b64(handover.ak_secret.as_str())?;
        let mine = cert.device_id == device_id
            && cert.dk_ed25519 == dk_ed25519
            && cert.dk_curve25519 == dk_curve25519
            && cert.username == username;
        if handover.username != username || !mine {
            return Err(ClientError::Refused(
                "the certificate or handover is not for this device".into(),
            ));
        }
        let identity = Identity::from_enrollment(username.clone(), &secret, account, cert)?;
        if identity.ak_pub() != ak_pub {
            return Err(ClientError::Refused(
                "the handed-over account key is not the account's".into(),
            ));
        }

        let (kc, prof, secret) = (
            self.inner.keychain.clone(),
            self.inner.profile.clone(),
            identity.to_secret(),
        );
        blocking(move || kc.save(&prof, &secret)).await??;
        {
            let mut d = lock(&self.inner.data);
            d.server = Some(origin);
            d.server_pin = self.inner.pin.seen().map(Key32);
            for c in handover.contacts {
                d.contacts.insert(
                    c.username.to_string(),
                    Contact {
                        ak_pub: c.ak_pub,
                        verified: c.verified,
                    },
                );
            }
            d.blocked
                .extend(handover.blocked.iter().map(|u| u.to_string()));
        }
        self.inner
            .save_profile_under(&identity.profile_key)
            .wait()
            .await?;
        *lock(&self.inner.identity) = Some(identity);
        Ok(EnrolledView {
            username: username.to_string(),
            device_id,
            fingerprint,
        })
    }

    /// Lets the new device in (old device): signs its certificate and hands it the account key and
    /// the contact list in an Olm pre-key message to its key, which the server passes on unread.
    /// `compare` is the comparison code the user was shown and confirmed: the approval holds only
    /// for the very keys it was computed over.
    pub async fn enroll_approve(&self, device_id: &str, compare: &str) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        let approved = lock(&self.inner.enroll_gate).approve(device_id, compare);
        let req = match approved {
            Ok(req) => req,
            Err(e) => {
                if e == crate::enrollment::ApproveError::CodeMismatch {
                    self.inner
                        .abort_enrollment(vec![device_id.to_string()], &e.to_string());
                }
                return Err(ClientError::Refused(e.to_string()));
            }
        };
        let handover_contacts: Vec<HandoverContact> = {
            let data = lock(&self.inner.data);
            data.contacts
                .iter()
                .filter_map(|(name, c)| {
                    Some(HandoverContact {
                        username: Username::parse(name).ok()?,
                        ak_pub: c.ak_pub,
                        verified: c.verified,
                    })
                })
                .take(MAX_HANDOVER_CONTACTS)
                .collect()
        };
        let blocked: Vec<Username> = lock(&self.inner.data)
            .blocked
            .iter()
            .filter_map(|u| Username::parse(u).ok())
            .take(MAX_HANDOVER_CONTACTS)
            .collect();
        let (cert, blob) = {
            let id = lock(&self.inner.identity);
            let id = id
                .as_ref()
                .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
            let created_at = unix_now();
            let bytes = DeviceCert::signing_bytes(
                &id.username,
                device_id,
                &req.dk_ed25519,
                &req.dk_curve25519,
                req.caps,
                created_at,
            );
            let cert = DeviceCert {
                v: anonchat_proto::VERSION,
                username: id.username.clone(),
                device_id: device_id.to_string(),
                dk_ed25519: req.dk_ed25519,
                dk_curve25519: req.dk_curve25519,
                caps: req.caps,
                created_at,
                sig: id.sign_ak(&bytes),
            };
            let mut olm = id
                .account
                .create_outbound_session(
                    SessionConfig::version_1(),
                    curve(&req.dk_curve25519),
                    curve(&req.otk.key),
                )
                .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))?;
            let handover = Handover {
                username: id.username.clone(),
                ak_secret: SecretText(id.ak_secret_b64()),
                contacts: handover_contacts,
                blocked,
            };
            (cert, seal(&mut olm, &handover.encode())?)
        };
        self.inner
            .signaling
            .request(ClientMsg::EnrollApprove {
                device_id: device_id.to_string(),
                cert,
                blob: Blob(blob),
            })
            .await?;
        Ok(())
    }

    pub async fn enroll_decline(&self, device_id: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        lock(&self.inner.enroll_gate).decline();
        self.inner
            .signaling
            .request(ClientMsg::EnrollDecline {
                device_id: device_id.to_string(),
            })
            .await?;
        Ok(())
    }

    /// This account's devices, each checked against the account key.
    pub async fn devices(&self) -> Result<Vec<DeviceView>, ClientError> {
        self.inner.unlocked()?;
        let ServerMsg::Devices { devices } =
            self.inner.signaling.request(ClientMsg::ListDevices).await?
        else {
            return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
        };
        let (me, ak) = self.my_ak()?;
        let mine = lock(&self.inner.identity)
            .as_ref()
            .map(|i| i.device_id.clone());
        Ok(devices
            .into_iter()
            .map(|d| DeviceView {
                fingerprint: device_fingerprint(&d.cert.dk_ed25519),
                this_device: mine.as_deref() == Some(d.cert.device_id.as_str()),
                certified: d.cert.username == me && d.cert.verify(&ak).is_ok(),
                created_at: d.cert.created_at,
                online: d.online,
                revoked: d.revoked,
                device_id: d.cert.device_id,
            })
            .collect())
    }

    /// Revokes another device of this account (signed by the account key). The server closes its
    /// connection at once and refuses it from then on; the device wipes itself when it hears.
    pub async fn revoke_device(&self, device_id: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let (me, _) = self.my_ak()?;
        let ts = unix_now();
        let sig = self.sign_ak(&revoke_device_bytes(&me, device_id, ts))?;
        // Remembered first, whatever the server answers (P8: a rotation never hands the new key
        // to a device this user revoked).
        lock(&self.inner.data).revoked.insert(device_id.to_string());
        self.inner.save_profile().wait().await?;
        self.inner
            .signaling
            .request(ClientMsg::RevokeDevice {
                device_id: device_id.to_string(),
                ts,
                sig,
            })
            .await?;
        Ok(())
    }
}

impl Inner {
    pub(super) fn on_enroll_request(
        &self,
        device_id: String,
        dk_ed25519: Key32,
        dk_curve25519: Key32,
        caps: Caps,
        otk: SignedOtk,
    ) {
        if verify(
            &dk_ed25519,
            &one_time_key_bytes(&device_id, &otk.key),
            &otk.sig,
        )
        .is_err()
        {
            return self.emit(Event::Warning {
                message: "ignored an enrollment request with a bad key signature".into(),
            });
        }
        let Some((me, ak)) = self.my_ak() else { return };
        let compare = enroll_compare_code(&me, &ak, &device_id, &dk_ed25519, &dk_curve25519);
        let outcome = lock(&self.enroll_gate).on_join(JoinRequest {
            device_id,
            dk_ed25519,
            dk_curve25519,
            caps,
            otk,
            compare,
        });
        match outcome {
            OnJoin::Show { device_id, compare } => self.emit(Event::EnrollRequest {
                device_id,
                fingerprint: compare,
            }),
            OnJoin::Abort { decline } => self.abort_enrollment(
                decline,
                "a second device tried to join this enrollment (the server may be tampering): \
                 nothing was approved",
            ),
            OnJoin::Ignore => self.emit(Event::Warning {
                message: "ignored an enrollment request: no enrollment is open on this device"
                    .into(),
            }),
        }
    }

    /// Loudly: the user sees it, and the server is told to drop the joins (an honest one then tells
    /// the new device its enrollment was declined).
    pub(super) fn abort_enrollment(&self, decline: Vec<String>, reason: &str) {
        for device_id in decline {
            let _ = self.signaling.send(ClientMsg::EnrollDecline { device_id });
        }
        self.emit(Event::EnrollAborted {
            reason: reason.to_string(),
        });
    }

    /// The server says this device was revoked. Only a revocation signed by our own account key
    /// over our own device id makes us wipe ourselves; anything else is ignored (and the server
    /// refuses us anyway).
    pub(super) fn on_device_revoked(&self, device_id: String, ts: u64, sig: Sig64) {
        if self.retiring.load(std::sync::atomic::Ordering::SeqCst) {
            return; // It revoked itself and wipes itself (`retire.rs`).
        }
        let genuine = lock(&self.identity).as_ref().is_some_and(|id| {
            id.device_id == device_id
                && verify(
                    &id.ak_pub(),
                    &revoke_device_bytes(&id.username, &device_id, ts),
                    &sig,
                )
                .is_ok()
        });
        if !genuine {
            return self.emit(Event::Warning {
                message: "the server said this device was revoked, without the account's signature"
                    .into(),
            });
        }
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            let engine = Engine { inner: me };
            engine.shutdown().await;
            match engine.forget_local().await {
                Ok(()) => engine.inner.emit(Event::DeviceRevoked),
                Err(e) => engine.inner.emit(Event::Warning {
                    message: format!("revoked, but could not wipe everything: {e}"),
                }),
            }
        });
    }
}
