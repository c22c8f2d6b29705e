//! What one chat holds of attachments, as a pure machine: complete ones (both directions), ones
//! arriving, and ones still sending. It decides every rule — the size cap, how many may arrive at
//! once, the chat's quota, a duplicate id, chunks that do not belong, the final hash, cancels from
//! either side, view-once, expiry — with time passed in, and says what happened; the session
//! driver sends the frames and events that follow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anonchat_proto::attach::TransferKey;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::attachments::{ChunkOutcome, Held, Incoming, Meta};
use crate::error::SessionError;
use crate::quota::{self, ChatLimits};
use crate::session::AttachmentBytes;
use crate::ClientError;

/// Attachments arriving at once, per session.
pub(in crate::session) const MAX_INCOMING: usize = 4;

#[derive(Default)]
pub(in crate::session) struct Transfers {
    held: HashMap<u64, Held>,
    incoming: HashMap<u64, Incoming>,
    /// Outgoing transfers still sending, with the token that stops their task.
    sending: HashMap<u64, CancellationToken>,
}

/// What a chunk from the peer did.
#[derive(Debug, PartialEq)]
pub(in crate::session) enum OnChunk {
    /// Not a chunk at all.
    Malformed,
    /// For no transfer arriving here (refused or cancelled; its chunks may still be in flight).
    Stray,
    /// Taken; `report` when a progress event is due.
    Taken {
        id: u64,
        done: u64,
        total: u64,
        report: bool,
    },
    /// Transfer `id` is broken: cancel it, with this reason.
    Broken { id: u64, reason: String },
}

/// What the peer's end-of-file did.
#[derive(Debug)]
pub(in crate::session) enum OnEnd {
    /// For no transfer arriving here.
    Stray,
    /// Complete and intact; now held (its kind as the bytes show it).
    Received(Meta),
    /// Incomplete or failed its hash: wiped; tell the peer why.
    Failed(String),
}

/// What the end of our sending task means.
#[derive(Debug, PartialEq)]
pub(in crate::session) enum OnSent {
    /// Cancelled meanwhile (and the peer told then).
    Stale,
    /// All chunks went: send the hash.
    Sent,
    /// It stopped: wiped here; tell the peer.
    Failed,
}

impl Transfers {
    /// Attachment bytes this chat holds or has promised room for.
    fn bytes(&self) -> u64 {
        let held: u64 = self.held.values().map(|h| h.meta.size).sum();
        let arriving: u64 = self.incoming.values().map(|i| i.meta.size).sum();
        held + arriving
    }

    fn items(&self) -> usize {
        self.held.len() + self.incoming.len()
    }

    /// Whether bytes are moving in either direction (the silence limit is longer then).
    pub(in crate::session) fn busy(&self) -> bool {
        !self.sending.is_empty() || !self.incoming.is_empty()
    }

    /// Room in the chat's quota for one more of `size` bytes (ours to send).
    pub(in crate::session) fn admit_send(
        &self,
        limits: &ChatLimits,
        size: u64,
    ) -> Result<(), ClientError> {
        quota::admit_attachment(limits, self.bytes(), self.items(), size)
            .map_err(ClientError::Refused)
    }

    /// Whether `id` names an attachment of this chat, either side's (a new one must not reuse it).
    pub(in crate::session) fn knows(&self, id: u64) -> bool {
        self.incoming.contains_key(&id) || self.held.contains_key(&id)
    }

    /// Ours, starting to send: held at once (the sender can show it), stoppable by `cancel`.
    pub(in crate::session) fn sending(
        &mut self,
        meta: Meta,
        data: Arc<Zeroizing<Vec<u8>>>,
        expires: Option<Instant>,
        cancel: CancellationToken,
    ) {
        let id = meta.id;
        self.sending.insert(id, cancel);
        self.held.insert(
            id,
            Held {
                meta,
                data,
                expires,
            },
        );
    }

    /// The peer offers `meta`: taken (`Ok`), or refused with the reason the peer is told.
    /// `max_file` is the largest this side accepts now (the user may change it mid-chat).
    pub(in crate::session) fn offer(
        &mut self,
        limits: &ChatLimits,
        max_file: u64,
        meta: Meta,
        key: &TransferKey,
        now: Instant,
    ) -> Result<(), String> {
        let id = meta.id;
        if meta.size > max_file {
            return Err(format!(
                "larger than this side accepts ({} MB)",
                max_file / 1_000_000
            ));
        }
        if self.incoming.len() >= MAX_INCOMING {
            return Err("too many attachments arriving at once".into());
        }
        if self.knows(id) {
            return Err("a second offer with the same id".into());
        }
        quota::admit_attachment(limits, self.bytes(), self.items(), meta.size)?;
        self.incoming.insert(id, Incoming::new(meta, key, now));
        Ok(())
    }

    pub(in crate::session) fn chunk(&mut self, frame: &[u8], now: Instant) -> OnChunk {
        let Ok((id, _)) = anonchat_proto::attach::chunk_header(frame) else {
            return OnChunk::Malformed;
        };
        let Some(inc) = self.incoming.get_mut(&id) else {
            return OnChunk::Stray;
        };
        match inc.take_chunk(frame) {
            ChunkOutcome::Progress => OnChunk::Taken {
                id,
                report: inc.progress_due(now),
                done: inc.data.len() as u64,
                total: inc.meta.size,
            },
            ChunkOutcome::Broken(reason) => OnChunk::Broken { id, reason },
        }
    }

    /// The peer says transfer `id` is complete, with the hash of the whole.
    pub(in crate::session) fn end(
        &mut self,
        id: u64,
        blake3: &[u8; 32],
        expires: Option<Instant>,
    ) -> OnEnd {
        let Some(inc) = self.incoming.remove(&id) else {
            return OnEnd::Stray;
        };
        match inc.verify(blake3) {
            Ok((mut meta, data)) => {
                let (kind, mime) = crate::attachments::received_kind(meta.kind, &data);
                meta.kind = kind;
                meta.mime = mime.into();
                self.held.insert(
                    id,
                    Held {
                        meta: meta.clone(),
                        data: Arc::new(data),
                        expires,
                    },
                );
                OnEnd::Received(meta)
            }
            Err(reason) => OnEnd::Failed(reason),
        }
    }

    /// Our sending task for `id` ended, with the hash of the whole or why it stopped.
    pub(in crate::session) fn sent(&mut self, id: u64, ok: bool) -> OnSent {
        if self.sending.remove(&id).is_none() {
            return OnSent::Stale;
        }
        if ok {
            OnSent::Sent
        } else {
            self.held.remove(&id);
            OnSent::Failed
        }
    }

    /// Stops and wipes a transfer still in flight, in either direction; whether there was one.
    pub(in crate::session) fn cancel(&mut self, id: u64) -> bool {
        let was = self.sending.remove(&id).map(|t| t.cancel()).is_some()
            | self.incoming.remove(&id).is_some();
        if was {
            self.held.remove(&id);
        }
        was
    }

    /// The peer opened our view-once attachment `id`: wiped here too. Whether it was one.
    pub(in crate::session) fn opened_by_peer(&mut self, id: u64) -> bool {
        let ours = self
            .held
            .get(&id)
            .is_some_and(|h| h.meta.mine && h.meta.view_once);
        if ours {
            self.held.remove(&id);
        }
        ours
    }

    /// Complete attachments, ours first, each side by id.
    pub(in crate::session) fn list(&self) -> Vec<Meta> {
        let mut list: Vec<Meta> = self.held.values().map(|h| h.meta.clone()).collect();
        list.sort_by_key(|m| (m.mine, m.id));
        list
    }

    /// An attachment's bytes; never a view-once one from the peer (that is [`Self::open_once`]).
    pub(in crate::session) fn get(&self, id: u64) -> Result<AttachmentBytes, ClientError> {
        let h = self
            .held
            .get(&id)
            .ok_or(ClientError::Session(SessionError::UnknownAttachment))?;
        if h.meta.view_once && !h.meta.mine {
            return Err(ClientError::Refused(
                "a view-once attachment opens only once".into(),
            ));
        }
        Ok((h.meta.clone(), h.data.clone()))
    }

    /// The peer's view-once attachment, once: it is no longer held after this.
    pub(in crate::session) fn open_once(
        &mut self,
        id: u64,
    ) -> Result<AttachmentBytes, ClientError> {
        match self.held.get(&id) {
            Some(h) if h.meta.view_once && !h.meta.mine => {}
            Some(_) => {
                return Err(ClientError::Refused(
                    "not a view-once attachment from the peer".into(),
                ))
            }
            None => return Err(ClientError::Session(SessionError::UnknownAttachment)),
        }
        let h = self
            .held
            .remove(&id)
            .ok_or(ClientError::Session(SessionError::UnknownAttachment))?;
        Ok((h.meta, h.data))
    }

    pub(in crate::session) fn next_expiry(&self) -> Option<Instant> {
        self.held.values().filter_map(|h| h.expires).min()
    }

    /// Wipes every held attachment whose timer ran out by `now`; returns their ids.
    pub(in crate::session) fn expire(&mut self, now: Instant) -> Vec<u64> {
        let mut ids = Vec::new();
        self.held.retain(|id, h| {
            let gone = h.expires.is_some_and(|e| e <= now);
            if gone {
                ids.push(*id);
            }
            !gone
        });
        ids
    }

    /// The chat ended: every transfer stops and every byte goes.
    pub(in crate::session) fn clear(&mut self) {
        for (_, t) in self.sending.drain() {
            t.cancel();
        }
        self.incoming.clear();
        self.held.clear();
    }
}

#[cfg(test)]
mod tests;
