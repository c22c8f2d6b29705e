//! Attachments on the session task: the driver part. The rules are in `transfers/state.rs`, what
//! each outcome tells the peer and the front-end in `core/files.rs`; here the chunks of ours are
//! sealed and sent, on a task of their own over the bulk channel — of one chat, or of every member
//! of a group at once (sealed once, the same bytes to all).

use std::sync::Arc;
use std::time::Instant;

use anonchat_proto::attach::{self, ChunkCipher, TransferKey, CHUNK_SIZE};
use anonchat_proto::frames::{AttachmentKind, SecretText};
use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::core::Outgoing;
use super::{BulkDone, Chat, Sent, SessionHost};
use crate::attachments::{self, NewAttachment};
use crate::error::SessionError;
use crate::events::Event;
use crate::transport::BulkSender;
use crate::ClientError;

pub(super) mod state;

/// Ids of attachments going to several chats at once are drawn from here: far above what any
/// chat's counter reaches, and exact as a JavaScript number (front-ends hand ids back).
const SHARED_IDS: std::ops::Range<u64> = (1 << 52)..(1 << 53);

/// One attachment of ours for several chats (a group's members): one id, one key, one copy of the
/// bytes; each chat offers the same key inside its own Olm session.
#[derive(Clone)]
pub struct SharedAttachment {
    pub id: u64,
    pub key: TransferKey,
    pub name: SecretText,
    pub mime: String,
    pub kind: AttachmentKind,
    pub view_once: bool,
    pub data: Arc<Zeroizing<Vec<u8>>>,
}

impl SharedAttachment {
    /// `new` under a fresh key and a random id.
    pub fn new(new: NewAttachment) -> Self {
        SharedAttachment {
            id: rand::thread_rng().gen_range(SHARED_IDS),
            key: TransferKey::random(),
            name: new.name,
            mime: new.mime,
            kind: new.kind,
            view_once: new.view_once,
            data: Arc::new(new.data),
        }
    }
}

/// Where the chunk task sends one chat's copy, and where it reports when it stops.
pub struct ChunkTarget {
    bulk: BulkSender,
    cancel: CancellationToken,
    host: Arc<dyn SessionHost>,
    session: String,
    done: mpsc::Sender<BulkDone>,
}

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
        let target = self.target(bulk, cancel);
        tokio::spawn(send_chunks(meta.id, cipher, data, vec![target]));
        Ok(sent)
    }

    /// Where a chunk task sends this chat's copy and reports back.
    fn target(&self, bulk: BulkSender, cancel: CancellationToken) -> ChunkTarget {
        ChunkTarget {
            bulk,
            cancel,
            host: self.host.clone(),
            session: self.core.id.clone(),
            done: self.bulk_done.clone(),
        }
    }

    pub(super) async fn offer_shared(
        &mut self,
        shared: &SharedAttachment,
    ) -> Result<(Sent, ChunkTarget), ClientError> {
        let bulk = match &self.transport {
            Some(t) => t.bulk().await,
            None => None,
        }
        .ok_or(ClientError::Session(SessionError::NotOpen))?;
        let (cancel, sent, fx) = self.core.begin_shared(shared, Instant::now())?;
        self.apply(fx).await;
        let target = self.target(bulk, cancel);
        Ok((sent, target))
    }
}

/// Seals every chunk of `data` once and sends it to every target, on a task of its own; each
/// target's chat is told when its copy stopped: the BLAKE3 hash of the whole, or why. A target that
/// fails or is cancelled drops out; the others go on.
pub async fn send_chunks(
    id: u64,
    cipher: ChunkCipher,
    data: Arc<Zeroizing<Vec<u8>>>,
    targets: Vec<ChunkTarget>,
) {
    let mut hash = blake3::Hasher::new();
    let total = data.len() as u64;
    let mut last = Instant::now();
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(CHUNK_SIZE).collect()
    };
    let mut live: Vec<(ChunkTarget, Option<String>)> =
        targets.into_iter().map(|t| (t, None)).collect();
    let mut done = 0u64;
    for (index, chunk) in chunks.into_iter().enumerate() {
        for (t, failed) in live.iter_mut() {
            if failed.is_none() && t.cancel.is_cancelled() {
                *failed = Some("cancelled".into());
            }
        }
        if live.iter().all(|(_, f)| f.is_some()) {
            break;
        }
        let Ok(index) = u32::try_from(index) else {
            for (_, f) in live.iter_mut().filter(|(_, f)| f.is_none()) {
                *f = Some("too many chunks".into());
            }
            break;
        };
        hash.update(chunk);
        let sealed = Bytes::from(attach::seal_chunk(&cipher, id, index, chunk));
        // Every chat's write at once (the slowest sets the pace). Not raced against the cancel
        // tokens: a data-channel write dropped half-way is not safe to abandon (the channel
        // stalled for good in tests). The loop checks the tokens per chunk.
        let sends = live
            .iter()
            .filter(|(_, f)| f.is_none())
            .map(|(t, _)| t.bulk.send(sealed.clone()));
        let results = futures_util::future::join_all(sends).await;
        let mut results = results.into_iter();
        for (_, f) in live.iter_mut().filter(|(_, f)| f.is_none()) {
            if let Some(Err(e)) = results.next() {
                *f = Some(e.to_string());
            }
        }
        done += chunk.len() as u64;
        if done == total || last.elapsed() >= attachments::PROGRESS_EVERY {
            last = Instant::now();
            for (t, _) in live.iter().filter(|(_, f)| f.is_none()) {
                t.host.emit(Event::FileProgress {
                    session: t.session.clone(),
                    id,
                    done,
                    total,
                    outgoing: true,
                });
            }
        }
    }
    let hash = *hash.finalize().as_bytes();
    for (t, failed) in live {
        let result = match failed {
            None => Ok(hash),
            Some(why) => Err(why),
        };
        let _ = t.done.send((id, result)).await;
    }
}
