//! The server's TLS key on the engine: pinned on first use, a change refused loudly until the user
//! trusts it (the verifier itself is `crate::tls`).

use anonchat_proto::Key32;

use super::{lock, Engine, Inner};
use crate::error::SignalingError;
use crate::events::Event;
use crate::ClientError;

impl Engine {
    /// The user accepts that the server's TLS key changed (its operator replaced it): the next
    /// connection pins the new key. Until then nothing is sent to the server.
    pub async fn trust_server_key(&self) -> Result<(), ClientError> {
        {
            let mut data = lock(&self.inner.data);
            data.server_pin = None;
        }
        self.inner.pin.expect(None);
        self.inner
            .pin_warned
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.inner.save_profile().wait().await
    }
}

impl Inner {
    /// Refuses (and tells the user once) when a handshake met another TLS key than the pinned one.
    pub(super) fn pin_check(&self) -> Result<(), ClientError> {
        if self.pin.refused().is_none() {
            return Ok(());
        }
        if !self
            .pin_warned
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.emit(Event::ServerKeyChanged {
                server: lock(&self.server).clone().unwrap_or_default(),
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
