//! Frames from the peer over the data channel, after Olm: the rate check, then one arm per frame.

use std::time::Instant;

use anonchat_proto::frames::{PeerFrame, ReceiptKind, SecretText};

use super::{ms_from_now, unseal, Chat};
use crate::attachments::Meta;
use crate::events::{EndReason, Event};
use crate::quota::Admit;

impl Chat {
    /// Returns why the session ends, if this frame ends it.
    pub(super) async fn on_frame(&mut self, blob: &[u8]) -> Option<EndReason> {
        let olm = self.olm.as_mut()?;
        let frame = match unseal(olm, blob).and_then(|p| PeerFrame::decode(&p).map_err(Into::into))
        {
            Ok(f) => f,
            Err(e) => {
                // A bad frame from the peer changes nothing; the session goes on.
                self.host.emit(Event::Warning {
                    message: format!("dropped a bad frame from the peer: {e}"),
                });
                return None;
            }
        };
        let now = Instant::now();
        self.live.heard(now);
        // Pongs answer our own pings; everything else counts against the peer's rate.
        if !matches!(frame, PeerFrame::Pong { .. }) {
            match self.rate.admit(now) {
                Admit::Yes => {}
                Admit::Drop { first } => {
                    if first {
                        self.host.emit(Event::Warning {
                            message: "the peer sends faster than a person could: dropping frames"
                                .into(),
                        });
                    }
                    return None;
                }
                Admit::Flood => return Some(EndReason::Flooded),
            }
        }
        match frame {
            PeerFrame::Text { id, body } => {
                let now = Instant::now();
                self.host.emit(Event::Message {
                    session: self.id.clone(),
                    id,
                    text: body.clone(),
                    expires_in_ms: ms_from_now(self.log.expiry_from(now)),
                });
                self.log_push(id, false, body, now);
                self.send_frame(&PeerFrame::Receipt {
                    id,
                    kind: ReceiptKind::Delivered,
                })
                .await;
            }
            PeerFrame::Receipt { id, kind } => self.host.emit(Event::Receipt {
                session: self.id.clone(),
                id,
                kind,
            }),
            PeerFrame::Typing => self.host.emit(Event::Typing {
                session: self.id.clone(),
            }),
            PeerFrame::Ping { n } => self.send_frame(&PeerFrame::Pong { n }).await,
            PeerFrame::Pong { n } => {
                if let Some((sent, reply)) = self.probes.remove(&n) {
                    let _ = reply.send(sent.elapsed());
                }
            }
            PeerFrame::Hello { .. } => {}
            PeerFrame::Bye => return Some(EndReason::PeerLeft),
            PeerFrame::FileOffer {
                id,
                name,
                size,
                mime: _,
                kind,
                view_once,
                key,
            } => {
                // The peer's name is cleaned before anything shows it; its type is not believed
                // at all (the bytes decide once they are here).
                let meta = Meta {
                    id,
                    name: SecretText::new(crate::attachments::safe_file_name(name.as_str())),
                    size,
                    mime: crate::attachments::UNKNOWN_MIME.into(),
                    kind,
                    view_once,
                    mine: false,
                };
                self.on_offer(meta, key).await;
            }
            PeerFrame::FileEnd { id, blake3 } => self.on_file_end(id, blake3).await,
            PeerFrame::FileCancel { id } => self.on_peer_cancel(id),
            PeerFrame::ViewOnceOpened { id } => self.on_opened_by_peer(id),
            PeerFrame::Timer { seconds } => {
                self.log.set_timer(seconds);
                self.host.emit(Event::TimerSet {
                    session: self.id.clone(),
                    seconds,
                    by_peer: true,
                });
            }
        }
        None
    }
}
