//! Attachments through the engine: files read into RAM (and written only to a path the user
//! chose), images, photos from the camera, view-once, auto-delete timers, the size cap.

use std::io::{Read, Write};
use std::path::Path;

use anonchat_proto::frames::{AttachmentKind, SecretText};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::{blocking, lock, Engine, Inner};
use crate::attachments::{mime_for, Meta, NewAttachment};
use crate::camera::Capture;
use crate::error::{ProfileError, SessionError};
use crate::session::{AttachmentBytes, Cmd, Sent, DEFAULT_MAX_FILE_SIZE};
use crate::ClientError;

/// The largest file this side sends (it is held in RAM whole).
pub const MAX_SEND_SIZE: u64 = 1024 * 1024 * 1024;
/// Frames read and dropped before a photo, so a real camera has set its exposure.
const WARM_UP_FRAMES: usize = 3;

impl Inner {
    pub(super) fn chat_limits(&self) -> crate::quota::ChatLimits {
        let data = lock(&self.data);
        let mut limits = crate::quota::ChatLimits::default();
        if let Some(lines) = data.max_chat_lines {
            limits.max_lines = lines as usize;
        }
        if let Some(mb) = data.max_chat_mb {
            limits.max_bytes = u64::from(mb) * 1_000_000;
        }
        limits
    }

    pub(super) fn max_file_size(&self) -> u64 {
        lock(&self.data)
            .max_file_mb
            .map(|mb| u64::from(mb) * 1_000_000)
            .unwrap_or(DEFAULT_MAX_FILE_SIZE)
    }
}

/// Reads a whole file into one zeroizing buffer of the right size (no growing, no copies).
fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let io = |e: std::io::Error| {
        ClientError::Profile(ProfileError::Storage(format!("{}: {e}", path.display())))
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > MAX_SEND_SIZE {
        return Err(ClientError::Refused(format!(
            "files up to {} MB can be sent",
            MAX_SEND_SIZE / 1_000_000
        )));
    }
    let mut data = Zeroizing::new(vec![0u8; len as usize]);
    f.read_exact(&mut data).map_err(io)?;
    Ok(data)
}

impl Engine {
    pub(super) async fn to_session<T>(
        &self,
        session: &str,
        cmd: impl FnOnce(oneshot::Sender<T>) -> Cmd,
    ) -> Result<T, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(cmd(tx))
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))?;
        rx.await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))
    }

    /// Sends bytes the front-end already holds.
    pub async fn send_attachment(
        &self,
        session: &str,
        new: NewAttachment,
    ) -> Result<Sent, ClientError> {
        self.to_session(session, |tx| Cmd::SendAttachment(Box::new(new), tx))
            .await?
    }

    /// Sends a file from disk (read into RAM first); images are sent to be shown inline.
    pub async fn send_file(
        &self,
        session: &str,
        path: &Path,
        view_once: bool,
    ) -> Result<Sent, ClientError> {
        let new = file_attachment(path, view_once).await?;
        self.send_attachment(session, new).await
    }

    /// Takes a photo with camera `index` (JPEG in RAM, frame wiped) and sends it.
    pub async fn send_photo(
        &self,
        session: &str,
        index: u32,
        view_once: bool,
    ) -> Result<Sent, ClientError> {
        let new = self.photo_attachment(index, view_once).await?;
        self.send_attachment(session, new).await
    }

    /// A photo with camera `index`, as an attachment to send.
    pub(super) async fn photo_attachment(
        &self,
        index: u32,
        view_once: bool,
    ) -> Result<NewAttachment, ClientError> {
        let source = self.inner.camera.clone();
        let jpeg = blocking(move || -> Result<Zeroizing<Vec<u8>>, ClientError> {
            let mut capture = Capture::open(&source, index)?;
            for _ in 0..WARM_UP_FRAMES {
                drop(capture.frame()?);
            }
            capture.frame()?.jpeg(1280, 85)
        })
        .await??;
        Ok(NewAttachment {
            name: SecretText::new("photo.jpg".into()),
            mime: "image/jpeg".into(),
            kind: AttachmentKind::Photo,
            view_once,
            data: jpeg,
        })
    }

    pub async fn attachments(&self, session: &str) -> Result<Vec<Meta>, ClientError> {
        self.to_session(session, Cmd::Attachments).await
    }

    /// An attachment's bytes (to show an image, say). Not for a view-once one from the peer.
    pub async fn attachment(&self, session: &str, id: u64) -> Result<AttachmentBytes, ClientError> {
        self.to_session(session, |tx| Cmd::Attachment(id, tx))
            .await?
    }

    /// A view-once attachment's bytes, once: both sides wipe it and the sender is told.
    pub async fn open_view_once(
        &self,
        session: &str,
        id: u64,
    ) -> Result<AttachmentBytes, ClientError> {
        self.to_session(session, |tx| Cmd::OpenViewOnce(id, tx))
            .await?
    }

    /// "Save as…": writes the attachment to `path` (the user's choice) and nowhere else.
    pub async fn save_attachment(
        &self,
        session: &str,
        id: u64,
        path: &Path,
    ) -> Result<(), ClientError> {
        let (_, data) = self.attachment(session, id).await?;
        let path = path.to_path_buf();
        blocking(move || {
            let io = |e: std::io::Error| {
                ClientError::Profile(ProfileError::Storage(format!("{}: {e}", path.display())))
            };
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&path).map_err(io)?;
            f.write_all(&data).map_err(io)?;
            f.sync_all().map_err(io)
        })
        .await?
    }

    pub async fn cancel_transfer(&self, session: &str, id: u64) -> Result<(), ClientError> {
        let s = self.session(session)?;
        s.tx.send(Cmd::CancelTransfer(id))
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))
    }

    /// The chat's auto-delete timer for both sides: 0 (off), 5, 60, 3600 or 86400 seconds.
    pub async fn set_timer(&self, session: &str, seconds: u32) -> Result<(), ClientError> {
        if lock(&self.inner.groups).links.contains_key(session) {
            return Err(ClientError::Refused(
                "a group's timer is set by its admin, for everyone (group_timer)".into(),
            ));
        }
        self.to_session(session, |tx| Cmd::SetTimer(seconds, tx))
            .await?
    }

    /// What one chat keeps at most: lines of text (`None`: 5 000) and MB of attachments (`None`:
    /// 512 MB). Past them the oldest lines are wiped and further attachments refused. Applies to
    /// chats that start from now on.
    pub async fn set_chat_limits(
        &self,
        lines: Option<u32>,
        mb: Option<u32>,
    ) -> Result<(), ClientError> {
        if lines == Some(0) || mb == Some(0) {
            return Err(ClientError::Refused(
                "a chat limit must be above zero".into(),
            ));
        }
        {
            let mut data = lock(&self.inner.data);
            data.max_chat_lines = lines;
            data.max_chat_mb = mb;
        }
        self.inner.save_profile().wait().await
    }

    /// The largest attachment this device accepts, in MB (`None`: the default, 256 MB).
    pub async fn set_max_file_mb(&self, mb: Option<u32>) -> Result<(), ClientError> {
        {
            let mut data = lock(&self.inner.data);
            data.max_file_mb = mb;
        }
        self.inner.save_profile().wait().await
    }
}

/// A file from disk (read into RAM), as an attachment to send; images are shown inline.
pub(super) async fn file_attachment(
    path: &Path,
    view_once: bool,
) -> Result<NewAttachment, ClientError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let mime = mime_for(&name).to_string();
    let kind = if mime.starts_with("image/") {
        AttachmentKind::Image
    } else {
        AttachmentKind::File
    };
    let owned = path.to_path_buf();
    let data = blocking(move || read_file(&owned)).await??;
    Ok(NewAttachment {
        name: SecretText::new(name),
        mime,
        kind,
        view_once,
        data,
    })
}
