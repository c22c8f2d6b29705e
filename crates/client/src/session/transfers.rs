//! Attachments on the session task: the driver part. The rules are in `transfers/state.rs`, what
//! each outcome tells the peer and the front-end in `core/files.rs`; here the chunks of ours are
//! sent, on a task of their own over the bulk channel.

use std::time::Instant;

use super::core::Outgoing;
use super::{Chat, Sent};
use crate::attachments::{self, NewAttachment};
use crate::error::SessionError;
use crate::ClientError;

pub(super) mod state;

impl Chat {
    pub(super) async fn send_attachment(
        &mut self,
        new: NewAttachment,
    ) -> Result<Sent, ClientError> {
        self.core.admit_send(&new)?;
        let bulk = match &self.transport {
            Some(t) => t.bulk().await,
            None => None,
        }
        .ok_or(ClientError::Session(SessionError::NotOpen))?;
        let (out, sent, fx) = self.core.begin_send(new, Instant::now());
        // The offer goes out before any chunk (an offer is one `Send`: nothing here ends the chat).
        self.apply(fx).await;
        let Outgoing {
            meta,
            cipher,
            data,
            cancel,
        } = out;
        let id = meta.id;
        let (host, session, done) = (
            self.host.clone(),
            self.core.id.clone(),
            self.bulk_done.clone(),
        );
        tokio::spawn(async move {
            let result =
                attachments::send_chunks(bulk, meta, cipher, data, cancel, host, session).await;
            let _ = done.send((id, result)).await;
        });
        Ok(sent)
    }
}
