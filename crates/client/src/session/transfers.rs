//! Attachments on the session task: the driver part. The rules are in `transfers/state.rs`, what
//! each outcome tells the peer and the front-end in `core/files.rs`; here the chunks of ours are
//! sent, on a task of their own over the bulk channel.

use std::sync::Arc;
use std::time::Instant;

use anonchat_proto::attach::{self, ChunkCipher, CHUNK_SIZE};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::core::Outgoing;
use super::{Chat, Sent, SessionHost};
use crate::attachments::{self, Meta, NewAttachment};
use crate::error::SessionError;
use crate::events::Event;
use crate::transport::BulkSender;
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
            let result = send_chunks(bulk, meta, cipher, data, cancel, host, session).await;
            let _ = done.send((id, result)).await;
        });
        Ok(sent)
    }
}

/// Seals and sends every chunk of `data` on its own task; returns the BLAKE3 hash of the whole, or
/// why it stopped.
async fn send_chunks(
    bulk: BulkSender,
    meta: Meta,
    cipher: ChunkCipher,
    data: Arc<Zeroizing<Vec<u8>>>,
    cancel: CancellationToken,
    host: Arc<dyn SessionHost>,
    session: String,
) -> Result<[u8; 32], String> {
    let mut hash = blake3::Hasher::new();
    let total = data.len() as u64;
    let mut last = Instant::now();
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(CHUNK_SIZE).collect()
    };
    let mut done = 0u64;
    for (index, chunk) in chunks.into_iter().enumerate() {
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let index = u32::try_from(index).map_err(|_| "too many chunks".to_string())?;
        hash.update(chunk);
        let sealed = attach::seal_chunk(&cipher, meta.id, index, chunk);
        // Not raced against the cancel token: a data-channel write dropped half-way is not safe
        // to abandon (the channel stalled for good in tests). The loop checks the token per chunk.
        bulk.send(Bytes::from(sealed))
            .await
            .map_err(|e| e.to_string())?;
        done += chunk.len() as u64;
        if done == total || last.elapsed() >= attachments::PROGRESS_EVERY {
            last = Instant::now();
            host.emit(Event::FileProgress {
                session: session.clone(),
                id: meta.id,
                done,
                total,
                outgoing: true,
            });
        }
    }
    Ok(*hash.finalize().as_bytes())
}
