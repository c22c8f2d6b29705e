//! The server's TLS key on the engine: pinned on first use, a change refused loudly until the user
//! trusts it (the verifier itself is `crate::tls`).

use anonchat_proto::Key32;

use super::{lock, Engine, Inner};
use crate::error::SignalingError;
use crate::events::Event;
use crate::ClientError;

impl Engine {
    /// The user accepts that the server's TLS key changed (its operator replaced it) and was shown
    /// `fingerprint`: exactly the refused key with that fingerprint is pinned, so a third key met
    /// later is refused and announced again. Until then nothing is sent to the server.
    pub async fn trust_server_key(&self, fingerprint: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let key = crate::trust::approve_server_key(fingerprint, self.inner.pin.refused())?;
        {
            let mut data = lock(&self.inner.data);
            data.server_pin = Some(Key32(key));
        }
        self.inner.pin.expect(Some(key));
        *lock(&self.inner.pin_warned) = None;
        self.inner.save_profile().wait().await
    }

    /// The pinned TLS key's fingerprint (none before the first connection).
    pub fn server_key(&self) -> Option<String> {
        let pinned = lock(&self.inner.data).server_pin;
        pinned.map(|k| crate::trust::server_fingerprint(&k.0))
    }
}

impl Inner {
    /// Refuses (and tells the user once per refused key, with its fingerprint) when a handshake
    /// met another TLS key than the pinned one.
    pub(super) fn pin_check(&self) -> Result<(), ClientError> {
        let Some(refused) = self.pin.refused() else {
            return Ok(());
        };
        if lock(&self.pin_warned).replace(refused) != Some(refused) {
            self.emit(Event::ServerKeyChanged {
                server: lock(&self.server).clone().unwrap_or_default(),
                fingerprint: crate::trust::server_fingerprint(&refused),
            });
        }
        Err(ClientError::Signaling(SignalingError::ServerKeyChanged))
    }

    /// A profile that has no pin yet (made before pinning, or after the user trusted a change)
    /// pins the key of the server it just authenticated with.
    pub(super) fn pin_first_key(&self) {
        let Some(seen) = self.pin.seen() else { return };
        {
            let mut data = lock(&self.data);
            if let Some(pinned) = data.server_pin {
                if self.pin.expected().is_none() {
                    self.pin.expect(Some(pinned.0));
                }
                return;
            }
            data.server_pin = Some(Key32(seen));
        }
        self.pin.expect(Some(seen));
        // Nobody waits here; a failed write is logged by the writer.
        drop(self.save_profile());
    }
}
