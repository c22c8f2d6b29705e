//! Attachments on the session task: the driver around [`state::Transfers`] (the rules), which
//! sends the frames and events each outcome calls for and runs the chunk-sending tasks. The
//! byte-level rules are in `attachments.rs` and `quota.rs`.

use std::sync::Arc;
use std::time::Instant;

use anonchat_proto::attach::{ChunkCipher, TransferKey};
use anonchat_proto::frames::{PeerFrame, ReceiptKind};
use anonchat_proto::Key32;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ms_from_now, AttachmentBytes, BulkDone, Chat, Sent};
use crate::attachments::{self, Meta, NewAttachment};
use crate::error::SessionError;
use crate::events::Event;
use crate::ClientError;

pub(super) mod state;
use state::{OnChunk, OnEnd, OnSent};

impl Chat {
    pub(super) async fn send_attachment(
        &mut self,
        new: NewAttachment,
        done: &mpsc::Sender<BulkDone>,
    ) -> Result<Sent, ClientError> {
        if !self.live.is_open() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        anonchat_proto::wire::check_size(
            new.name.as_str().len(),
            anonchat_proto::limits::MAX_FILE_NAME,
        )?;
        anonchat_proto::wire::check_size(new.mime.len(), anonchat_proto::limits::MAX_MIME)?;
        self.files
            .admit_send(self.log.limits(), new.data.len() as u64)?;
        let bulk = match &self.transport {
            Some(t) => t
                .bulk()
                .await
                .ok_or(ClientError::Session(SessionError::NotOpen))?,
            None => return Err(ClientError::Session(SessionError::NotOpen)),
        };
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
        self.send_frame(&PeerFrame::FileOffer {
            id,
            name: meta.name.clone(),
            size: meta.size,
            mime: meta.mime.clone(),
            kind: meta.kind,
            view_once: meta.view_once,
            key: key.clone(),
        })
        .await;
        let cipher = ChunkCipher::new(&key);
        drop(key);
        let data = Arc::new(new.data);
        let cancel = CancellationToken::new();
        let expires = self.log.expiry_from(Instant::now());
        self.files
            .sending(meta.clone(), data.clone(), expires, cancel.clone());
        let (host, session, done) = (self.host.clone(), self.id.clone(), done.clone());
        tokio::spawn(async move {
            let result =
                attachments::send_chunks(bulk, meta, cipher, data, cancel, host, session).await;
            let _ = done.send((id, result)).await;
        });
        Ok(Sent {
            id,
            expires_in_ms: ms_from_now(expires),
        })
    }

    pub(super) async fn on_bulk_done(&mut self, id: u64, result: Result<[u8; 32], String>) {
        self.live.bulk(Instant::now());
        match result {
            Ok(blake3) if self.files.sent(id, true) == OnSent::Sent => {
                self.send_frame(&PeerFrame::FileEnd {
                    id,
                    blake3: Key32(blake3),
                })
                .await;
                self.host.emit(Event::FileSent {
                    session: self.id.clone(),
                    id,
                });
            }
            Err(reason) if self.files.sent(id, false) == OnSent::Failed => {
                self.stopped(id, reason).await
            }
            _ => {} // Cancelled meanwhile (and the peer told then).
        }
    }

    pub(super) async fn cancel_transfer(&mut self, id: u64, reason: &str) {
        if self.files.cancel(id) {
            self.stopped(id, reason.to_string()).await;
        }
    }

    /// The peer cancelled transfer `id`.
    pub(super) fn on_peer_cancel(&mut self, id: u64) {
        if self.files.cancel(id) {
            self.host.emit(Event::FileCancelled {
                session: self.id.clone(),
                id,
                by_peer: true,
                reason: "the other side cancelled".into(),
            });
        }
    }

    /// The peer opened our view-once attachment `id`.
    pub(super) fn on_opened_by_peer(&mut self, id: u64) {
        if self.files.opened_by_peer(id) {
            self.host.emit(Event::ViewOnceOpened {
                session: self.id.clone(),
                id,
            });
        }
    }

    /// Tells the peer and the front-end that transfer `id` stopped here, and why.
    async fn stopped(&mut self, id: u64, reason: String) {
        self.send_frame(&PeerFrame::FileCancel { id }).await;
        self.host.emit(Event::FileCancelled {
            session: self.id.clone(),
            id,
            by_peer: false,
            reason,
        });
    }

    pub(super) async fn on_offer(&mut self, meta: Meta, key: TransferKey) {
        let id = meta.id;
        let shown = meta.clone();
        match self.files.offer(
            self.log.limits(),
            self.host.max_file_size(),
            meta,
            &key,
            Instant::now(),
        ) {
            Ok(()) => self.host.emit(Event::FileIncoming {
                session: self.id.clone(),
                meta: shown,
            }),
            Err(reason) => self.stopped(id, reason).await,
        }
    }

    pub(super) async fn on_chunk(&mut self, frame: &[u8]) {
        // Any bytes from the peer prove it is alive, even chunks of a transfer we cancelled.
        let now = Instant::now();
        self.live.heard(now);
        self.live.bulk(now);
        match self.files.chunk(frame, now) {
            OnChunk::Malformed => self.host.emit(Event::Warning {
                message: "dropped a malformed attachment chunk".into(),
            }),
            OnChunk::Stray => {}
            OnChunk::Taken {
                id,
                done,
                total,
                report,
            } => {
                if report {
                    self.host.emit(Event::FileProgress {
                        session: self.id.clone(),
                        id,
                        done,
                        total,
                        outgoing: false,
                    });
                }
            }
            OnChunk::Broken { id, reason } => self.cancel_transfer(id, &reason).await,
        }
    }

    pub(super) async fn on_file_end(&mut self, id: u64, blake3: Key32) {
        let expires = self.log.expiry_from(Instant::now());
        match self.files.end(id, &blake3.0, expires) {
            OnEnd::Stray => {}
            OnEnd::Received(meta) => {
                self.host.emit(Event::FileReceived {
                    session: self.id.clone(),
                    id,
                    kind: meta.kind,
                    mime: meta.mime,
                    expires_in_ms: ms_from_now(expires),
                });
                self.send_frame(&PeerFrame::Receipt {
                    id,
                    kind: ReceiptKind::Delivered,
                })
                .await;
            }
            OnEnd::Failed(reason) => self.stopped(id, reason).await,
        }
    }

    pub(super) fn attachment(&self, id: u64) -> Result<AttachmentBytes, ClientError> {
        self.files.get(id)
    }

    pub(super) async fn open_view_once(&mut self, id: u64) -> Result<AttachmentBytes, ClientError> {
        let opened = self.files.open_once(id)?;
        self.send_frame(&PeerFrame::ViewOnceOpened { id }).await;
        Ok(opened)
    }
}
