//! Attachments in the chat machine: what each outcome of [`Transfers`](super::Transfers) (the
//! rules) means for the peer and the front-end. The chunk-sending task is the driver's.

use std::sync::Arc;
use std::time::Instant;

use anonchat_proto::attach::{ChunkCipher, TransferKey};
use anonchat_proto::frames::{PeerFrame, ReceiptKind};
use anonchat_proto::Key32;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::super::transfers::state::{OnChunk, OnEnd, OnSent};
use super::{ms_until, ChatCore, Effect};
use crate::attachments::{Meta, NewAttachment};
use crate::error::SessionError;
use crate::events::Event;
use crate::session::SharedAttachment;
use crate::session::{AttachmentBytes, Sent};
use crate::ClientError;

/// What the driver's chunk-sending task needs for one attachment of ours.
pub(in crate::session) struct Outgoing {
    pub(in crate::session) meta: Meta,
    pub(in crate::session) cipher: ChunkCipher,
    pub(in crate::session) data: Arc<Zeroizing<Vec<u8>>>,
    pub(in crate::session) cancel: CancellationToken,
}

impl ChatCore {
    /// Whether an attachment may be sent now (open, name and type sizes, the chat's caps).
    pub(in crate::session) fn admit_send(&self, new: &NewAttachment) -> Result<(), ClientError> {
        self.admit(
            new.name.as_str().len(),
            new.mime.len(),
            new.data.len() as u64,
        )
    }

    fn admit(&self, name: usize, mime: usize, size: u64) -> Result<(), ClientError> {
        if !self.live.is_open() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        anonchat_proto::wire::check_size(name, anonchat_proto::limits::MAX_FILE_NAME)?;
        anonchat_proto::wire::check_size(mime, anonchat_proto::limits::MAX_MIME)?;
        self.files.admit_send(self.log.limits(), size)
    }

    /// Starts sending an admitted attachment: its id, the offer (with a fresh key) for the peer,
    /// and what the chunk task needs. The offer's effects must run before the chunks go out.
    pub(in crate::session) fn begin_send(
        &mut self,
        new: NewAttachment,
        now: Instant,
    ) -> (Outgoing, Sent, Vec<Effect>) {
        let id = self.next_id;
        self.next_id += 2;
        let meta = Meta {
            id,
            name: new.name,
            size: new.data.len() as u64,
            mime: new.mime,
            kind: new.kind,
            view_once: new.view_once,
            mine: true,
        };
        let key = TransferKey::random();
        let cipher = ChunkCipher::new(&key);
        let data = Arc::new(new.data);
        let (cancel, sent, out) = self.offer_ours(meta.clone(), key, data.clone(), now);
        let outgoing = Outgoing {
            meta,
            cipher,
            data,
            cancel,
        };
        (outgoing, sent, out)
    }

    /// Starts sending an attachment that goes to several chats at once (a group's members):
    /// the same id, key and bytes on every chat, its chunks sealed once by the caller's task.
    /// Refused if not admitted, or if the id is taken on this chat (the peer chose it too).
    pub(in crate::session) fn begin_shared(
        &mut self,
        shared: &SharedAttachment,
        now: Instant,
    ) -> Result<(CancellationToken, Sent, Vec<Effect>), ClientError> {
        self.admit(
            shared.name.as_str().len(),
            shared.mime.len(),
            shared.data.len() as u64,
        )?;
        if self.files.knows(shared.id) {
            return Err(ClientError::Refused("that attachment id is taken".into()));
        }
        let meta = Meta {
            id: shared.id,
            name: shared.name.clone(),
            size: shared.data.len() as u64,
            mime: shared.mime.clone(),
            kind: shared.kind,
            view_once: shared.view_once,
            mine: true,
        };
        Ok(self.offer_ours(meta, shared.key.clone(), shared.data.clone(), now))
    }

    /// The offer of ours (with its key) for the peer, and ours held at once.
    fn offer_ours(
        &mut self,
        meta: Meta,
        key: TransferKey,
        data: Arc<Zeroizing<Vec<u8>>>,
        now: Instant,
    ) -> (CancellationToken, Sent, Vec<Effect>) {
        let mut out = Vec::new();
        let offer = PeerFrame::FileOffer {
            id: meta.id,
            name: meta.name.clone(),
            size: meta.size,
            mime: meta.mime.clone(),
            kind: meta.kind,
            view_once: meta.view_once,
            key,
        };
        self.send(&mut out, &offer);
        let cancel = CancellationToken::new();
        let expires = self.log.expiry_from(now);
        let sent = Sent {
            id: meta.id,
            expires_in_ms: ms_until(expires, now),
        };
        self.files.sending(meta, data, expires, cancel.clone());
        (cancel, sent, out)
    }

    /// Our chunk task for `id` stopped: all sent (with the bytes' hash), or failed.
    pub(in crate::session) fn bulk_done(
        &mut self,
        id: u64,
        result: Result<[u8; 32], String>,
        now: Instant,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.live.bulk(now);
        match result {
            Ok(blake3) if self.files.sent(id, true) == OnSent::Sent => {
                let end = PeerFrame::FileEnd {
                    id,
                    blake3: Key32(blake3),
                };
                self.send(&mut out, &end);
                self.emit(
                    &mut out,
                    Event::FileSent {
                        session: self.id.clone(),
                        id,
                    },
                );
            }
            Err(reason) if self.files.sent(id, false) == OnSent::Failed => {
                self.stopped(&mut out, id, reason)
            }
            _ => {} // Cancelled meanwhile (and the peer told then).
        }
        out
    }

    /// This side stops transfer `id` (the user, or a broken chunk).
    pub(in crate::session) fn cancel_transfer(&mut self, id: u64, reason: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.files.cancel(id) {
            self.stopped(&mut out, id, reason.to_string());
        }
        out
    }

    pub(in crate::session) fn attachments(&self) -> Vec<Meta> {
        self.files.list()
    }

    pub(in crate::session) fn attachment(&self, id: u64) -> Result<AttachmentBytes, ClientError> {
        self.files.get(id)
    }

    /// A view-once attachment from the peer, once; the peer is told so it wipes its copy too.
    pub(in crate::session) fn open_view_once(
        &mut self,
        id: u64,
    ) -> Result<(AttachmentBytes, Vec<Effect>), ClientError> {
        let opened = self.files.open_once(id)?;
        let mut out = Vec::new();
        self.send(&mut out, &PeerFrame::ViewOnceOpened { id });
        Ok((opened, out))
    }

    /// The peer cancelled transfer `id`.
    pub(super) fn on_peer_cancel(&mut self, out: &mut Vec<Effect>, id: u64) {
        if self.files.cancel(id) {
            self.emit(
                out,
                Event::FileCancelled {
                    session: self.id.clone(),
                    id,
                    by_peer: true,
                    reason: "the other side cancelled".into(),
                },
            );
        }
    }

    /// The peer opened our view-once attachment `id`.
    pub(super) fn on_opened_by_peer(&mut self, out: &mut Vec<Effect>, id: u64) {
        if self.files.opened_by_peer(id) {
            self.emit(
                out,
                Event::ViewOnceOpened {
                    session: self.id.clone(),
                    id,
                },
            );
        }
    }

    /// Tells the peer and the front-end that transfer `id` stopped here, and why.
    fn stopped(&mut self, out: &mut Vec<Effect>, id: u64, reason: String) {
        self.send(out, &PeerFrame::FileCancel { id });
        self.emit(
            out,
            Event::FileCancelled {
                session: self.id.clone(),
                id,
                by_peer: false,
                reason,
            },
        );
    }

    pub(super) fn on_offer(
        &mut self,
        out: &mut Vec<Effect>,
        meta: Meta,
        key: TransferKey,
        max_file: u64,
        now: Instant,
    ) {
        let id = meta.id;
        let shown = meta.clone();
        match self
            .files
            .offer(self.log.limits(), max_file, meta, &key, now)
        {
            Ok(()) => self.emit(
                out,
                Event::FileIncoming {
                    session: self.id.clone(),
                    meta: shown,
                },
            ),
            Err(reason) => self.stopped(out, id, reason),
        }
    }

    pub(super) fn on_chunk(&mut self, out: &mut Vec<Effect>, frame: &[u8], now: Instant) {
        // Any bytes from the peer prove it is alive, even chunks of a transfer we cancelled.
        self.live.heard(now);
        self.live.bulk(now);
        match self.files.chunk(frame, now) {
            OnChunk::Malformed => self.warn(out, "dropped a malformed attachment chunk".into()),
            OnChunk::Stray => {}
            OnChunk::Taken {
                id,
                done,
                total,
                report,
            } => {
                if report {
                    self.emit(
                        out,
                        Event::FileProgress {
                            session: self.id.clone(),
                            id,
                            done,
                            total,
                            outgoing: false,
                        },
                    );
                }
            }
            OnChunk::Broken { id, reason } => {
                if self.files.cancel(id) {
                    self.stopped(out, id, reason);
                }
            }
        }
    }

    pub(super) fn on_file_end(
        &mut self,
        out: &mut Vec<Effect>,
        id: u64,
        blake3: Key32,
        now: Instant,
    ) {
        let expires = self.log.expiry_from(now);
        match self.files.end(id, &blake3.0, expires) {
            OnEnd::Stray => {}
            OnEnd::Received(meta) => {
                self.emit(
                    out,
                    Event::FileReceived {
                        session: self.id.clone(),
                        id,
                        kind: meta.kind,
                        mime: meta.mime,
                        expires_in_ms: ms_until(expires, now),
                    },
                );
                let receipt = PeerFrame::Receipt {
                    id,
                    kind: ReceiptKind::Delivered,
                };
                self.send(out, &receipt);
            }
            OnEnd::Failed(reason) => self.stopped(out, id, reason),
        }
    }
}
