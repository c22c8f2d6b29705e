//! Adding a contact by pointing the webcam at their share QR code. Frames stay in RAM and are
//! wiped as they go; the caller gets small JPEG previews to show while the user aims.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::{blocking, lock, Engine};
use crate::camera::{self, CameraView, Capture};
use crate::ClientError;

/// How long a scan looks for a code before it gives up.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(60);
/// Previews: one in this many frames (about 7 a second from a 30 fps camera), this wide at most.
const PREVIEW_EVERY: u32 = 4;
const PREVIEW_SIDE: u32 = 320;

impl Engine {
    /// The cameras this machine has; none is an error that says so ([`camera::NO_CAMERA`]).
    pub async fn cameras(&self) -> Result<Vec<CameraView>, ClientError> {
        let source = self.inner.camera.clone();
        let cams = blocking(move || camera::list(&source)).await??;
        if cams.is_empty() {
            return Err(ClientError::Camera(camera::NO_CAMERA.into()));
        }
        Ok(cams)
    }

    /// Reads frames from camera `index` until one holds an AnonChat share link, and returns that
    /// link (checked, not yet used). `preview` gets a small JPEG now and then. Ends early with
    /// an error on [`Engine::stop_scan`], a panic, or after [`SCAN_TIMEOUT`].
    pub async fn scan_contact(
        &self,
        index: u32,
        preview: impl Fn(Zeroizing<Vec<u8>>) + Send + 'static,
    ) -> Result<String, ClientError> {
        let stop = CancellationToken::new();
        // A new scan replaces one still running (one camera, one scan).
        if let Some(old) = lock(&self.inner.scan).replace(stop.clone()) {
            old.cancel();
        }
        let source = self.inner.camera.clone();
        let token = stop.clone();
        let found = blocking(move || -> Result<String, ClientError> {
            let mut capture = Capture::open(&source, index)?;
            let started = Instant::now();
            let mut n = 0u32;
            loop {
                n = n.wrapping_add(1);
                if token.is_cancelled() {
                    return Err(ClientError::Camera("Scan stopped.".into()));
                }
                if started.elapsed() > SCAN_TIMEOUT {
                    return Err(ClientError::Camera(
                        "No contact code seen. Try again.".into(),
                    ));
                }
                let frame = capture.frame()?;
                // The first frame is previewed at once, so the user sees the camera work.
                if n % PREVIEW_EVERY == 1 {
                    preview(frame.jpeg(PREVIEW_SIDE, 70)?);
                }
                if let Some(text) = frame.qr_text() {
                    if anonchat_proto::fvc::parse_share_link(&text).is_ok() {
                        return Ok(text.to_string());
                    }
                }
            }
        })
        .await?;
        let mut slot = lock(&self.inner.scan);
        if slot.as_ref() == Some(&stop) {
            *slot = None;
        }
        found
    }

    /// Stops a running scan; the camera is released.
    pub fn stop_scan(&self) {
        if let Some(t) = lock(&self.inner.scan).take() {
            t.cancel();
        }
    }
}
