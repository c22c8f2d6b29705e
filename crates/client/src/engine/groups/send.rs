//! What a member sends to the group: texts sealed once per member in each link's session, and
//! attachments as one transfer for all (one key offered on every link, chunks sealed once).

use anonchat_proto::attach::ChunkCipher;
use anonchat_proto::frames::SecretText;

use super::super::Engine;
use crate::attachments::NewAttachment;
use crate::error::SessionError;
use crate::session::{send_chunks, Cmd, Sent, SharedAttachment};
use crate::ClientError;

impl Engine {
    /// A text to every connected member, sealed once per member in its own session. Returns each
    /// member's id of it (receipts name it per member).
    pub async fn group_send(
        &self,
        group: &str,
        text: SecretText,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        self.inner.unlocked()?;
        let links = self.group_links(group)?;
        let mut sent = Vec::with_capacity(links.len());
        for (who, session) in links {
            if let Ok(s) = self.send_text(&session, text.clone()).await {
                sent.push((who, s));
            }
        }
        Ok(sent)
    }

    /// A file from disk to every connected member (read once; each member's copy travels in its
    /// own session).
    pub async fn group_send_file(
        &self,
        group: &str,
        path: &std::path::Path,
        view_once: bool,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        self.inner.unlocked()?;
        self.group_links(group)?;
        let new = super::super::media::file_attachment(path, view_once).await?;
        self.group_send_attachment(group, new).await
    }

    /// A photo with camera `camera` to every connected member: one photo, the same bytes to all.
    pub async fn group_send_photo(
        &self,
        group: &str,
        camera: u32,
        view_once: bool,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        self.inner.unlocked()?;
        self.group_links(group)?;
        let new = self.photo_attachment(camera, view_once).await?;
        self.group_send_attachment(group, new).await
    }

    /// Bytes the front-end holds, to every connected member: offered on each member's link under
    /// one fresh key (inside that link's Olm session), the chunks sealed once and the same sealed
    /// chunks sent to all.
    pub async fn group_send_attachment(
        &self,
        group: &str,
        new: NewAttachment,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        let links = self.group_links(group)?;
        let shared = SharedAttachment::new(new);
        let mut sent = Vec::with_capacity(links.len());
        let mut targets = Vec::with_capacity(links.len());
        for (who, session) in links {
            let offer = Box::new(shared.clone());
            if let Ok(Ok((s, target))) = self
                .to_session(&session, |tx| Cmd::OfferShared(offer, tx))
                .await
            {
                sent.push((who, s));
                targets.push(target);
            }
        }
        if targets.is_empty() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        let cipher = ChunkCipher::new(&shared.key);
        tokio::spawn(send_chunks(shared.id, cipher, shared.data, targets));
        Ok(sent)
    }

    fn group_links(&self, group: &str) -> Result<Vec<(String, String)>, ClientError> {
        let links = self.inner.group_links(group)?;
        if links.is_empty() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        Ok(links)
    }
}
