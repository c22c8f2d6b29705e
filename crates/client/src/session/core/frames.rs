//! Frames from the peer over the data channel, after Olm: the rate check, then one arm per frame.

use std::time::Instant;

use anonchat_proto::frames::{PeerFrame, ReceiptKind, SecretText};

use super::{ms_until, ChatCore, Effect, GroupFrame};
use crate::attachments::Meta;
use crate::events::{EndReason, Event};
use crate::quota::Admit;

impl ChatCore {
    /// Returns why the session ends, if this frame ends it.
    pub(super) fn on_frame(
        &mut self,
        out: &mut Vec<Effect>,
        frame: PeerFrame,
        max_file: u64,
        now: Instant,
    ) -> Option<EndReason> {
        self.live.heard(now);
        // Pongs answer our own pings; everything else counts against the peer's rate.
        if !matches!(frame, PeerFrame::Pong { .. }) {
            match self.rate.admit(now) {
                Admit::Yes => {}
                Admit::Drop { first } => {
                    if first {
                        self.warn(
                            out,
                            "the peer sends faster than a person could: dropping frames".into(),
                        );
                    }
                    return None;
                }
                Admit::Flood => return Some(EndReason::Flooded),
            }
        }
        let session = self.id.clone();
        match frame {
            PeerFrame::Text { id, body } => {
                self.emit(
                    out,
                    Event::Message {
                        session,
                        id,
                        text: body.clone(),
                        expires_in_ms: ms_until(self.log.expiry_from(now), now),
                    },
                );
                self.log_push(out, id, false, body, now);
                let receipt = PeerFrame::Receipt {
                    id,
                    kind: ReceiptKind::Delivered,
                };
                self.send(out, &receipt);
            }
            PeerFrame::Receipt { id, kind } => self.emit(out, Event::Receipt { session, id, kind }),
            PeerFrame::Typing => self.emit(out, Event::Typing { session }),
            PeerFrame::Ping { n } => self.send(out, &PeerFrame::Pong { n }),
            PeerFrame::Pong { n } => {
                if let Some(sent) = self.probes.remove(&n) {
                    out.push(Effect::Pong {
                        n,
                        rtt: now.saturating_duration_since(sent),
                    });
                }
            }
            PeerFrame::Hello { caps } => self.on_hello(out, caps),
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
                self.on_offer(out, meta, key, max_file, now);
            }
            PeerFrame::FileEnd { id, blake3 } => self.on_file_end(out, id, blake3, now),
            PeerFrame::FileCancel { id } => self.on_peer_cancel(out, id),
            PeerFrame::ViewOnceOpened { id } => self.on_opened_by_peer(out, id),
            // A group's timer is the admin's, set through the signed roster: not by one member.
            PeerFrame::Timer { .. } if self.group_link => self.warn(
                out,
                "ignored a timer change from a group member: the admin's roster sets it".into(),
            ),
            PeerFrame::Timer { seconds } => {
                self.log.set_timer(seconds);
                self.emit(
                    out,
                    Event::TimerSet {
                        session,
                        seconds,
                        by_peer: true,
                    },
                );
            }
            // The engine's group driver decides (a frame on a chat that is no group link is
            // dropped there).
            PeerFrame::GroupRoster { roster } => {
                out.push(Effect::Group(GroupFrame::Roster(roster)))
            }
            PeerFrame::GroupJoined { epoch } => out.push(Effect::Group(GroupFrame::Joined(epoch))),
        }
        None
    }
}
