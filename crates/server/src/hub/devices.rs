//! The devices of an account (DESIGN §7): enrollment of a new device through an AK-signed token, the
//! list of devices, and AK-signed revocation. Open enrollments live in RAM only, for the token's life.

use std::net::IpAddr;

use anonchat_proto::cert::valid_device_id;
use anonchat_proto::enroll::{normalize_code, TOKEN_TTL_SECS};
use anonchat_proto::signing::{
    enroll_join_bytes, enroll_token_bytes, one_time_key_bytes, revoke_device_bytes, verify,
};
use anonchat_proto::wire::{DeviceInfo, ServerEnvelope, ServerMsg, SignedOtk};
use anonchat_proto::{limits, Caps, DeviceCert, Key32, Sig64, Username};
use tokio::sync::oneshot;

use super::joins::Answer;
use super::{bad, Hub, Refusal, Reply, Session};
use crate::clock::Now;
use crate::store::StoreError;

/// Enrollments open at once, server-wide (each is a few hundred bytes of RAM).
const MAX_ENROLLMENTS: usize = 100_000;

/// An enrollment a device of `username` opened, keyed by its code.
pub(super) struct Enrollment {
    username: Username,
    opener: String,
    expires: u64,
    sig: Sig64,
    joiner: Option<Joiner>,
}

/// The new device waiting on its own socket (here or on another instance) for the old
/// device's answer.
pub(super) struct Joiner {
    pub(super) device_id: String,
    pub(super) dk_ed25519: Key32,
    pub(super) dk_curve25519: Key32,
    pub(super) caps: Caps,
    pub(super) done: Answer,
}

/// What a new device sends instead of `auth`.
pub struct Join {
    pub code: String,
    pub device_id: String,
    pub dk_ed25519: Key32,
    pub dk_curve25519: Key32,
    pub caps: Caps,
    pub otk: SignedOtk,
    pub sig: Sig64,
}

/// A joined enrollment, as the new device's socket task holds it.
pub struct Joined {
    pub pending: ServerMsg,
    pub answer: oneshot::Receiver<ServerMsg>,
    pub code: String,
    pub device_id: String,
}

impl Hub {
    pub(super) async fn enroll_open(
        &self,
        s: &Session,
        code: String,
        expires: u64,
        sig: Sig64,
        now: Now,
    ) -> Reply {
        let code =
            normalize_code(&code).ok_or_else(|| bad("an enrollment code has 8 characters"))?;
        let now = now.unix;
        if expires <= now || expires > now + TOKEN_TTL_SECS {
            return Err(bad(format!(
                "an enrollment token lives at most {TOKEN_TTL_SECS} seconds"
            )));
        }
        let ak = self.account_key(&s.username).await?;
        verify(&ak, &enroll_token_bytes(&s.username, &code, expires), &sig)
            .map_err(|_| bad("the token must be signed by the account key"))?;
        {
            let mut st = self.lock();
            // One open enrollment per account (P9: the table grows with accounts, not with
            // requests): a new one replaces the old.
            st.enrollments.retain(|_, e| e.username != s.username);
            if st.enrollments.len() >= MAX_ENROLLMENTS {
                return Err(Refusal::RateLimited(None));
            }
            if st.enrollments.contains_key(&code) {
                return Err(bad("code in use; make another"));
            }
            st.enrollments.insert(
                code.clone(),
                Enrollment {
                    username: s.username.clone(),
                    opener: s.device_id.clone(),
                    expires,
                    sig,
                    joiner: None,
                },
            );
        }
        let life = std::time::Duration::from_secs(expires.saturating_sub(now));
        self.index_enrollment(&code, life).await;
        Ok(ServerMsg::Ok)
    }

    /// A new device joins with a code. It must prove it holds the keys it wants certified; the
    /// device that opened the enrollment hears of it and decides.
    pub async fn enroll_join(
        &self,
        ip: IpAddr,
        nonce: &[u8; 32],
        origin: &str,
        j: Join,
        now: Now,
    ) -> Result<Joined, Refusal> {
        if !self.allow_ip(ip).await {
            return Err(Refusal::RateLimited(None));
        }
        if !valid_device_id(&j.device_id) {
            return Err(bad("malformed device id"));
        }
        let code = normalize_code(&j.code).ok_or(Refusal::NotFound)?;
        let signed = enroll_join_bytes(
            nonce,
            origin,
            &code,
            &j.device_id,
            &j.dk_ed25519,
            &j.dk_curve25519,
            j.caps,
        );
        verify(&j.dk_ed25519, &signed, &j.sig)
            .map_err(|_| Refusal::Unauthorized("signature does not verify".into()))?;
        verify(
            &j.dk_ed25519,
            &one_time_key_bytes(&j.device_id, &j.otk.key),
            &j.otk.sig,
        )
        .map_err(|_| bad("one-time key signature does not verify"))?;
        if self.store.device(&j.device_id).await?.is_some() {
            return Err(bad("device id in use"));
        }
        let here = self.lock().enrollments.contains_key(&code);
        if !here {
            return self.join_elsewhere(code, j).await;
        }
        let (tx, rx) = oneshot::channel();
        let joiner = Joiner {
            device_id: j.device_id.clone(),
            dk_ed25519: j.dk_ed25519,
            dk_curve25519: j.dk_curve25519,
            caps: j.caps,
            done: Answer::Here(tx),
        };
        let (username, expires, sig) = self.take_enrollment(&code, joiner, j.otk, now)?;
        let ak_pub = self.account_key(&username).await?;
        Ok(Joined {
            pending: ServerMsg::EnrollPending {
                username,
                ak_pub,
                expires,
                sig,
            },
            answer: rx,
            code,
            device_id: j.device_id,
        })
    }

    /// Puts the joiner on the open enrollment of `code` and tells the opener. Returns the
    /// enrollment's account, expiry and token signature.
    pub(super) fn take_enrollment(
        &self,
        code: &str,
        joiner: Joiner,
        otk: SignedOtk,
        now: Now,
    ) -> Result<(Username, u64, Sig64), Refusal> {
        let mut st = self.lock();
        let now = now.unix;
        let e = st
            .enrollments
            .get_mut(code)
            .filter(|e| e.expires > now && e.joiner.is_none())
            .ok_or(Refusal::NotFound)?;
        let request = ServerMsg::EnrollRequest {
            device_id: joiner.device_id.clone(),
            dk_ed25519: joiner.dk_ed25519,
            dk_curve25519: joiner.dk_curve25519,
            caps: joiner.caps,
            otk,
        };
        e.joiner = Some(joiner);
        let found = (e.username.clone(), e.expires, e.sig);
        let opener = e.opener.clone();
        st.send_device(&opener, request);
        Ok(found)
    }

    /// The new device left or gave up: its code is spent.
    pub fn enroll_abandon(&self, code: &str, device_id: &str) {
        let mut st = self.lock();
        let mine = st
            .enrollments
            .get(code)
            .and_then(|e| e.joiner.as_ref())
            .is_some_and(|j| j.device_id == device_id);
        if mine {
            st.enrollments.remove(code);
        }
        drop(st);
        self.abandon_elsewhere(code, device_id);
    }

    /// The old device approves: the certificate must be the account key's over exactly the keys the
    /// new device proved. The device row is written, and the new device gets certificate and handover.
    pub(super) async fn enroll_approve(
        &self,
        s: &Session,
        device_id: String,
        cert: DeviceCert,
        blob: anonchat_proto::bytes::Blob,
    ) -> Reply {
        if blob.0.len() > limits::MAX_RELAY_BLOB {
            return Err(bad("handover too large"));
        }
        let ak = self.account_key(&s.username).await?;
        let code = self.joined_code(s, &device_id)?;
        {
            let st = self.lock();
            let j = st
                .enrollments
                .get(&code)
                .and_then(|e| e.joiner.as_ref())
                .ok_or(Refusal::NotFound)?;
            let same_keys = cert.username == s.username
                && cert.device_id == j.device_id
                && cert.dk_ed25519 == j.dk_ed25519
                && cert.dk_curve25519 == j.dk_curve25519
                && cert.caps == j.caps;
            if !same_keys || cert.verify(&ak).is_err() {
                return Err(bad(
                    "the certificate must be the account key's over the joining device's keys",
                ));
            }
        }
        match self.store.add_device(&cert).await {
            Ok(()) => {}
            Err(StoreError::Taken) => {
                return Err(bad("this account has as many devices as it may"))
            }
            Err(e) => return Err(e.into()),
        }
        let mut st = self.lock();
        let by = st.conns.get(&s.device_id).map(|c| c.cert.clone());
        let joiner = st.enrollments.remove(&code).and_then(|e| e.joiner);
        if let (Some(j), Some(by)) = (joiner, by) {
            j.done.send(ServerMsg::Enrolled { cert, by, blob });
        }
        if !self.quiet {
            tracing::info!("device enrolled");
        }
        Ok(ServerMsg::Ok)
    }

    pub(super) fn enroll_decline(&self, s: &Session, device_id: &str) -> Reply {
        let code = self.joined_code(s, device_id)?;
        // Dropping the joiner's sender tells its socket task the answer is no.
        self.lock().enrollments.remove(&code);
        Ok(ServerMsg::Ok)
    }

    /// The code of the enrollment this device opened that `device_id` joined.
    fn joined_code(&self, s: &Session, device_id: &str) -> Result<String, Refusal> {
        self.lock()
            .enrollments
            .iter()
            .find(|(_, e)| {
                e.opener == s.device_id
                    && e.joiner.as_ref().is_some_and(|j| j.device_id == device_id)
            })
            .map(|(code, _)| code.clone())
            .ok_or(Refusal::NotFound)
    }

    pub(super) async fn list_devices(&self, s: &Session) -> Reply {
        let rows = self.store.devices(&s.username).await?;
        let online = self.devices_anywhere(&s.username).await;
        Ok(ServerMsg::Devices {
            devices: rows
                .into_iter()
                .map(|(cert, revoked)| DeviceInfo {
                    online: online.contains(&cert.device_id),
                    cert,
                    revoked,
                })
                .collect(),
        })
    }

    /// AK-signed revocation of a device of this account (this one too, unless it is the last): the
    /// row is marked, the device's socket gets the signed revocation and is closed, and it is no
    /// longer rung or listed online.
    pub(super) async fn revoke_device(
        &self,
        s: &Session,
        device_id: String,
        ts: u64,
        sig: Sig64,
        now: Now,
    ) -> Reply {
        // A device may give itself up (panic's "also revoke this device"), but not the account's
        // last one: that would leave an account nobody can use or delete.
        if device_id == s.device_id {
            let others = self
                .store
                .devices(&s.username)
                .await?
                .iter()
                .any(|(cert, revoked)| !revoked && cert.device_id != s.device_id);
            if !others {
                return Err(bad(
                    "the account's only device cannot revoke itself: delete the account instead",
                ));
            }
        }
        let ak = self.account_key(&s.username).await?;
        let fresh = ts.abs_diff(now.unix) <= anonchat_proto::pow::MAX_AGE_SECS;
        verify(&ak, &revoke_device_bytes(&s.username, &device_id, ts), &sig)
            .ok()
            .filter(|_| fresh)
            .ok_or_else(|| bad("revocation must be signed by the account key, just now"))?;
        if !self
            .store
            .revoke_device(&s.username, &device_id, ts, &sig)
            .await?
        {
            return Err(Refusal::NotFound);
        }
        let last = ServerEnvelope::new(
            None,
            ServerMsg::DeviceRevoked {
                device_id: device_id.clone(),
                ts,
                sig,
            },
        );
        let last = serde_json::to_string(&last).ok();
        let here = {
            let st = self.lock();
            let c = st.conns.get(&device_id);
            if let Some(c) = c {
                if let Some(text) = &last {
                    let _ = c.farewell.set(text.as_str().into());
                }
                c.kill.cancel();
            }
            c.is_some()
        };
        if !here {
            self.kill_elsewhere(&device_id, last);
        }
        if !self.quiet {
            tracing::info!("device revoked");
        }
        Ok(ServerMsg::Ok)
    }

    /// Drops enrollments whose token ran out (their joiners hear "no").
    pub(super) fn expire_enrollments(&self, now_unix: u64) {
        self.lock().enrollments.retain(|_, e| e.expires > now_unix);
    }
}
