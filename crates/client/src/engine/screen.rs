//! Capture protection as the user set it: on wherever the OS can keep the window out of
//! screenshots and recordings (`capture.rs`), unless the user turned it off — say, to share the
//! screen. Peers are told either way in `hello`, at once for the chats already open, so their
//! banner never shows a protection this window no longer has.

use super::{lock, Engine};
use crate::session::Cmd;
use crate::ClientError;

/// The setting as a front-end shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaptureView {
    /// This system can keep the window out of captures (this device's certificate says so).
    pub available: bool,
    /// It does now: available, and not turned off.
    pub on: bool,
}

impl Engine {
    fn capture_available(&self) -> bool {
        lock(&self.inner.identity)
            .as_ref()
            .map_or(self.inner.caps, |i| i.cert.caps)
            .screen_protection
    }

    pub fn capture(&self) -> CaptureView {
        let available = self.capture_available();
        CaptureView {
            available,
            on: available && !lock(&self.inner.data).capture_unprotected,
        }
    }

    /// Turns capture protection off or back on; open chats' peers hear of it now. The front-end
    /// applies it to its window (the engine has none).
    pub async fn set_capture_protection(&self, on: bool) -> Result<CaptureView, ClientError> {
        if on && !self.capture_available() {
            return Err(ClientError::Refused(
                "this system cannot keep windows out of screenshots and recordings".into(),
            ));
        }
        lock(&self.inner.data).capture_unprotected = !on;
        self.inner.save_profile().wait().await?;
        let caps = crate::session::SessionHost::my_caps(&*self.inner);
        let handles: Vec<_> = lock(&self.inner.calls)
            .sessions()
            .map(|(_, h)| h.tx.clone())
            .collect();
        for tx in handles {
            // A chat that just ended has nobody left to tell.
            let _ = tx.send(Cmd::SetCaps(caps)).await;
        }
        Ok(self.capture())
    }
}
