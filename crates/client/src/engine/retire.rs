//! Giving this device up for good — panic's "also revoke this device" (DESIGN §8), for a device
//! that may be taken: the server is asked to revoke it (signed by the account key, like any
//! revocation), or, when it is the account's only device, to delete the account; then its keys and
//! profile are erased from this machine whatever the server answered, so nothing left here can
//! speak for the account.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anonchat_proto::signing::{delete_account_bytes, revoke_device_bytes};
use anonchat_proto::wire::{ClientMsg, ServerMsg};
use anonchat_proto::Username;
use serde::Serialize;

use super::{lock, unix_now, Engine};
use crate::error::{ProfileError, SignalingError};
use crate::events::Event;
use crate::ClientError;

/// What became of this device and its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retired {
    /// The account had no other device: it was deleted on the server.
    pub account_deleted: bool,
    /// The server confirmed (or, for a revocation, was sent it while connected). When false the
    /// server could not be reached: the keys are erased here all the same, and another device
    /// should revoke this one.
    pub server_told: bool,
}

impl Engine {
    /// Revokes this device (or deletes the account if it is the only one), then erases it here —
    /// after `wait` at most for the server, the erasing happens whatever it answered. Works while
    /// the app is locked: it is what panic runs after the wipe.
    pub async fn retire_this_device(&self, wait: Duration) -> Result<Retired, ClientError> {
        let (me, _) = self.my_ak()?;
        let mine = lock(&self.inner.identity)
            .as_ref()
            .map(|i| i.device_id.clone())
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        // The revocation's farewell would wipe this device too: this path does it itself.
        self.inner.retiring.store(true, Ordering::SeqCst);
        let told = tokio::time::timeout(wait, self.tell_server(&me, &mine))
            .await
            .unwrap_or(Told::Nobody);
        self.shutdown().await;
        let forgot = self.forget_local().await;
        // A new identity made on this profile later is revoked like any other.
        self.inner.retiring.store(false, Ordering::SeqCst);
        forgot?;
        self.inner.emit(Event::DeviceRevoked);
        Ok(Retired {
            account_deleted: told == Told::AccountDeleted,
            server_told: told != Told::Nobody,
        })
    }

    async fn tell_server(&self, me: &Username, mine: &str) -> Told {
        let others = match self.inner.signaling.request(ClientMsg::ListDevices).await {
            Ok(ServerMsg::Devices { devices }) => devices
                .iter()
                .any(|d| !d.revoked && d.cert.device_id != mine),
            _ => return Told::Nobody,
        };
        let ts = unix_now();
        if others {
            let Ok(sig) = self.sign_ak(&revoke_device_bytes(me, mine, ts)) else {
                return Told::Nobody;
            };
            let asked = ClientMsg::RevokeDevice {
                device_id: mine.to_string(),
                ts,
                sig,
            };
            // The server closes this socket once it is revoked, so the answer may be that
            // farewell rather than `ok`: both mean it was done.
            match self.inner.signaling.request(asked).await {
                Ok(_) | Err(ClientError::Signaling(SignalingError::NotConnected)) => Told::Revoked,
                Err(e) => {
                    tracing::info!(error = %e, "revoking this device");
                    Told::Nobody
                }
            }
        } else {
            let Ok(sig) = self.sign_ak(&delete_account_bytes(me, ts)) else {
                return Told::Nobody;
            };
            match self
                .inner
                .signaling
                .request(ClientMsg::DeleteAccount { ts, sig })
                .await
            {
                Ok(_) => Told::AccountDeleted,
                Err(_) => Told::Nobody,
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Told {
    Nobody,
    Revoked,
    AccountDeleted,
}
