//! Attachments on the session task: offers, chunks both ways, the final hash, cancel paths and
//! view-once (the byte-level rules are in `attachments.rs` and `quota.rs`).

use std::sync::Arc;
use std::time::Instant;

use anonchat_proto::attach::{ChunkCipher, TransferKey};
use anonchat_proto::frames::{PeerFrame, ReceiptKind};
use anonchat_proto::Key32;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ms_from_now, AttachmentBytes, BulkDone, Chat, Sent, MAX_INCOMING};
use crate::attachments::{self, ChunkOutcome, Held, Incoming, Meta, NewAttachment};
use crate::error::SessionError;
use crate::events::Event;
use crate::quota;
use crate::ClientError;

impl Chat {
    /// Attachment bytes this chat holds or has promised room for.
    pub(super) fn attachment_bytes(&self) -> u64 {
        let held: u64 = self.held.values().map(|h| h.meta.size).sum();
        let arriving: u64 = self.incoming.values().map(|i| i.meta.size).sum();
        held + arriving
    }

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
        quota::admit_attachment(
            self.log.limits(),
            self.attachment_bytes(),
            self.held.len() + self.incoming.len(),
            new.data.len() as u64,
        )
        .map_err(ClientError::Refused)?;
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
        self.sending.insert(id, cancel.clone());
        let expires = self.log.expiry_from(Instant::now());
        self.held.insert(
            id,
            Held {
                meta: meta.clone(),
                data: data.clone(),
                expires,
            },
        );
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
        if self.sending.remove(&id).is_none() {
            return; // Cancelled already (and the peer told).
        }
        match result {
            Ok(blake3) => {
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
            Err(reason) => {
                self.send_frame(&PeerFrame::FileCancel { id }).await;
                self.held.remove(&id);
                self.host.emit(Event::FileCancelled {
                    session: self.id.clone(),
                    id,
                    by_peer: false,
                    reason,
                });
            }
        }
    }

    /// Stops a transfer in either direction, tells the peer, and wipes what there was of it.
    /// Stops and wipes a transfer still in flight; whether there was one.
    pub(super) fn drop_transfer(&mut self, id: u64) -> bool {
        let was = self.sending.remove(&id).map(|t| t.cancel()).is_some()
            | self.incoming.remove(&id).is_some();
        if was {
            self.held.remove(&id);
        }
        was
    }

    pub(super) async fn cancel_transfer(&mut self, id: u64, reason: &str) {
        if !self.drop_transfer(id) {
            return;
        }
        self.stopped(id, reason.to_string()).await;
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
        let refuse = if meta.size > self.host.max_file_size() {
            Some(format!(
                "larger than this side accepts ({} MB)",
                self.host.max_file_size() / 1_000_000
            ))
        } else if self.incoming.len() >= MAX_INCOMING {
            Some("too many attachments arriving at once".into())
        } else if self.incoming.contains_key(&id) || self.held.contains_key(&id) {
            Some("a second offer with the same id".into())
        } else {
            quota::admit_attachment(
                self.log.limits(),
                self.attachment_bytes(),
                self.held.len() + self.incoming.len(),
                meta.size,
            )
            .err()
        };
        if let Some(reason) = refuse {
            return self.stopped(id, reason).await;
        }
        self.host.emit(Event::FileIncoming {
            session: self.id.clone(),
            meta: meta.clone(),
        });
        self.incoming.insert(id, Incoming::new(meta, &key));
    }

    pub(super) async fn on_chunk(&mut self, frame: &[u8]) {
        // Any bytes from the peer prove it is alive, even chunks of a transfer we cancelled.
        let now = Instant::now();
        self.live.heard(now);
        self.live.bulk(now);
        let Ok((id, _)) = anonchat_proto::attach::chunk_header(frame) else {
            return self.host.emit(Event::Warning {
                message: "dropped a malformed attachment chunk".into(),
            });
        };
        let Some(inc) = self.incoming.get_mut(&id) else {
            return; // A transfer we refused or cancelled: its chunks may still be in flight.
        };
        match inc.take_chunk(frame) {
            ChunkOutcome::Progress => {
                if inc.progress_due() {
                    let (done, total) = (inc.data.len() as u64, inc.meta.size);
                    self.host.emit(Event::FileProgress {
                        session: self.id.clone(),
                        id,
                        done,
                        total,
                        outgoing: false,
                    });
                }
            }
            ChunkOutcome::Broken(reason) => self.cancel_transfer(id, &reason).await,
        }
    }

    pub(super) async fn on_file_end(&mut self, id: u64, blake3: Key32) {
        let Some(inc) = self.incoming.remove(&id) else {
            return;
        };
        match inc.verify(&blake3.0) {
            Ok((mut meta, data)) => {
                let (kind, mime) = crate::attachments::received_kind(meta.kind, &data);
                meta.kind = kind;
                meta.mime = mime.into();
                let expires = self.log.expiry_from(Instant::now());
                self.held.insert(
                    id,
                    Held {
                        meta,
                        data: Arc::new(data),
                        expires,
                    },
                );
                self.host.emit(Event::FileReceived {
                    session: self.id.clone(),
                    id,
                    kind,
                    mime: mime.into(),
                    expires_in_ms: ms_from_now(expires),
                });
                self.send_frame(&PeerFrame::Receipt {
                    id,
                    kind: ReceiptKind::Delivered,
                })
                .await;
            }
            Err(reason) => self.stopped(id, reason).await,
        }
    }

    pub(super) fn attachment(&self, id: u64) -> Result<AttachmentBytes, ClientError> {
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

    pub(super) async fn open_view_once(&mut self, id: u64) -> Result<AttachmentBytes, ClientError> {
        match self.held.get(&id) {
            Some(h) if h.meta.view_once && !h.meta.mine => {}
            Some(_) => {
                return Err(ClientError::Refused(
                    "not a view-once attachment from the peer".into(),
                ))
            }
            None => return Err(ClientError::Session(SessionError::UnknownAttachment)),
        }
        let Some(h) = self.held.remove(&id) else {
            return Err(ClientError::Session(SessionError::UnknownAttachment));
        };
        self.send_frame(&PeerFrame::ViewOnceOpened { id }).await;
        Ok((h.meta, h.data))
    }
}
