//! Account-key rotation (DESIGN P8, lost devices). The server checks everything it can — both
//! signatures of the statement, that it starts from the key on record, a new-key certificate for
//! exactly the unrevoked devices, a handover for each other one — and then only passes things on.
//! It never sees the new secret: the handovers are Olm messages between the account's own devices.

use std::collections::{HashMap, HashSet};

use anonchat_proto::rotation::AkRotation;
use anonchat_proto::signing::{friend_bytes, verify};
use anonchat_proto::wire::{DeviceBlob, ServerEnvelope, ServerMsg, SignedOtk};
use anonchat_proto::{limits, DeviceCert, Sig64, Username};

use super::{bad, Hub, Refusal, Reply, Session, OTK_LOW};
use crate::clock::Now;

impl Hub {
    /// One one-time key of another online, unrevoked device of the asker's own account, on
    /// whichever instance it is.
    pub(super) async fn claim_device_otk(&self, s: &Session, device_id: &str) -> Reply {
        if device_id == s.device_id {
            return Err(Refusal::NotFound);
        }
        let here = self.lock().conns.contains_key(device_id);
        let otk = match here || self.cluster.is_none() {
            true => self.claim_here(&s.username, device_id)?,
            false => self.claim_elsewhere(&s.username, device_id).await?,
        };
        Ok(ServerMsg::DeviceOtk {
            device_id: device_id.to_string(),
            otk,
        })
    }

    /// Pops a one-time key of a device of `user` connected here.
    pub(super) fn claim_here(
        &self,
        user: &Username,
        device_id: &str,
    ) -> Result<SignedOtk, Refusal> {
        let mut st = self.lock();
        let c = st
            .conns
            .get_mut(device_id)
            .filter(|c| c.cert.username == *user)
            .ok_or(Refusal::NotFound)?;
        let otk = c
            .otks
            .pop()
            .ok_or_else(|| Refusal::Gone("that device has no one-time key left".into()))?;
        if c.otks.len() < OTK_LOW {
            c.push(&ServerEnvelope::new(
                None,
                ServerMsg::OtkLow {
                    count: c.otks.len() as u32,
                },
            ));
        }
        Ok(otk)
    }

    pub(super) async fn rotate_account_key(
        &self,
        s: &Session,
        rotation: AkRotation,
        certs: Vec<DeviceCert>,
        handovers: Vec<DeviceBlob>,
        now: Now,
    ) -> Reply {
        if rotation.username != s.username {
            return Err(bad("a rotation names the account it rotates"));
        }
        if rotation.ts.abs_diff(now.unix) > anonchat_proto::pow::MAX_AGE_SECS {
            return Err(bad("a rotation is made just now"));
        }
        rotation
            .verify()
            .map_err(|_| bad("a rotation is signed by both the old and the new key"))?;
        if self.account_key(&s.username).await? != rotation.old_ak {
            return Err(bad("a rotation starts from the account key on record"));
        }
        let on_record: HashMap<String, DeviceCert> = self
            .store
            .devices(&s.username)
            .await?
            .into_iter()
            .filter(|(_, revoked)| !revoked)
            .map(|(c, _)| (c.device_id.clone(), c))
            .collect();
        check_certs(&rotation, &certs, &on_record)?;
        let siblings: HashSet<&String> = on_record.keys().filter(|d| **d != s.device_id).collect();
        let handed: HashSet<&String> = handovers.iter().map(|h| &h.device_id).collect();
        if handed != siblings || handed.len() != handovers.len() {
            return Err(bad(
                "every other device of the account gets the new key (sign out the others first)",
            ));
        }
        if handovers
            .iter()
            .any(|h| h.blob.0.len() > limits::MAX_RELAY_BLOB)
        {
            return Err(bad("handover too large"));
        }
        let online = self.devices_anywhere(&s.username).await;
        if let Some(gone) = siblings.iter().find(|d| !online.contains(d.as_str())) {
            return Err(Refusal::Gone(format!(
                "device {gone} went offline; try again"
            )));
        }
        if !self.store.rotate_account_key(&rotation, &certs).await? {
            return Err(bad("the account key changed meanwhile"));
        }
        let friends = self.store.friends(&s.username).await?;
        // Requests signed with the old key can no longer be accepted.
        self.drop_requests_from(&s.username).await;
        let mut st = self.lock();
        let mut by = None;
        for cert in &certs {
            match st.conns.get_mut(&cert.device_id) {
                Some(c) => c.cert = cert.clone(),
                None => self.cert_elsewhere(cert),
            }
            if cert.device_id == s.device_id {
                by = Some(cert.clone());
            }
        }
        let by = by.ok_or_else(|| bad("the rotating device needs a certificate too"))?;
        for h in handovers {
            let Some(cert) = certs.iter().find(|c| c.device_id == h.device_id) else {
                continue;
            };
            st.send_device(
                &h.device_id,
                ServerMsg::AccountKeyRotated {
                    rotation: Box::new(rotation.clone()),
                    cert: cert.clone(),
                    by: by.clone(),
                    blob: h.blob,
                },
            );
        }
        for (friend, _, _) in &friends {
            st.send_user(
                friend,
                &ServerMsg::KeyRotated {
                    username: s.username.clone(),
                    ak_pub: rotation.new_ak,
                },
            );
        }
        if !self.quiet {
            tracing::info!("account key rotated");
        }
        Ok(ServerMsg::Ok)
    }

    /// The rotations of this account or of a friend; anyone else reads as not found.
    pub(super) async fn key_history(&self, s: &Session, username: Username) -> Reply {
        let allowed =
            username == s.username || self.store.are_friends(&s.username, &username).await?;
        if !allowed {
            return Err(Refusal::NotFound);
        }
        let rotations = self.store.key_history(&username).await?;
        Ok(ServerMsg::KeyHistory {
            username,
            rotations,
        })
    }

    /// This account's half of the edge with `username`, re-signed over both current keys.
    pub(super) async fn friend_resign(&self, s: &Session, username: Username, sig: Sig64) -> Reply {
        let my_ak = self.account_key(&s.username).await?;
        let their_ak = self.account_key(&username).await?;
        verify(
            &my_ak,
            &friend_bytes(&s.username, &my_ak, &username, &their_ak),
            &sig,
        )
        .map_err(|_| bad("friend signature does not verify"))?;
        if !self.store.resign_edge(&s.username, &username, &sig).await? {
            return Err(Refusal::NotFound);
        }
        Ok(ServerMsg::Ok)
    }
}

/// A new-key certificate for exactly the unrevoked devices, each over the keys on record.
fn check_certs(
    rotation: &AkRotation,
    certs: &[DeviceCert],
    on_record: &HashMap<String, DeviceCert>,
) -> Result<(), Refusal> {
    let ids: HashSet<&String> = certs.iter().map(|c| &c.device_id).collect();
    if ids.len() != certs.len() || ids.len() != on_record.len() {
        return Err(bad("one certificate for every device of the account"));
    }
    for c in certs {
        let same = on_record.get(&c.device_id).is_some_and(|old| {
            old.username == c.username
                && old.dk_ed25519 == c.dk_ed25519
                && old.dk_curve25519 == c.dk_curve25519
                && old.caps == c.caps
        });
        if !same || c.verify(&rotation.new_ak).is_err() {
            return Err(bad(
                "each certificate is the new key's over a device's keys on record",
            ));
        }
    }
    Ok(())
}
