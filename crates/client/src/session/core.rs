//! One chat as a sans-I/O machine (the shape of matrix-sdk-crypto's `OlmMachine` and the server's
//! `ring.rs`): it holds the Olm session, the chat log and its timers, liveness and repair, typing,
//! probes and the attachments' rules, takes commands, peer bytes, signals and ticks with `now`
//! passed in, and returns [`Effect`]s. The driver (`session.rs`) owns the transport and the tasks
//! and only executes what this returns, in order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anonchat_proto::frames::{PeerFrame, SecretText, Signal};
use anonchat_proto::{Caps, DeviceCert};
use vodozemac::olm::Session;

use super::liveness::{Do, Liveness, SetupFailure};
use super::log::ChatLog;
use super::olm::{seal, unseal};
use super::transfers::state::Transfers;
use super::typing::Typing;
use super::{Line, Sent};
use crate::error::SessionError;
use crate::events::{EndReason, Event};
use crate::quota::{ChatLimits, FrameRate};
use crate::ClientError;

mod files;
mod frames;
mod signals;
pub(super) use files::Outgoing;
pub(super) use signals::{SignalError, Step};

/// What the driver must do, in order. Effects after an `End` or `Fail` are not run.
#[derive(Debug)]
pub(super) enum Effect {
    /// An Olm message for the data channel.
    Send(Vec<u8>),
    /// An Olm message for the server's route (a signal).
    Relay(Vec<u8>),
    Emit(Event),
    /// The channel opened: tell the front-end, with the route the transport picked.
    Opened {
        peer_caps: Caps,
    },
    /// A repaired path carries frames again: tell the front-end once ICE names the new pair.
    Resumed,
    /// Caller: offer an ICE restart through the route.
    RestartIce,
    /// A probe's answer came: its round trip.
    Pong {
        n: u64,
        rtt: Duration,
    },
    /// The chat is over.
    End(EndReason),
    /// Setup failed; the driver names the step that never happened.
    Fail(SetupFailure),
    /// A group frame for the engine's group driver (`engine/groups.rs`).
    Group(GroupFrame),
}

/// What a group member said over this chat, for the engine (which alone knows the group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFrame {
    Roster(Box<anonchat_proto::group::Roster>),
    Joined(u64),
}

/// How a session stopped, for [`ChatCore::finish`].
pub(super) enum Exit {
    Ended(EndReason),
    Failed(String),
}

pub(super) struct ChatCore {
    /// The session id that events name.
    pub(super) id: String,
    peer_cert: DeviceCert,
    /// This device's capabilities, told to the peer in `hello` (at open, and again when they
    /// change: the user turned capture protection off or on).
    my_caps: Caps,
    /// What the peer may be taken to do: its certificate's claim, lowered by what its `hello`
    /// says now. A peer's word can take a protection away, never add one its certificate lacks.
    peer_caps: Caps,
    olm: Option<Session>,
    /// The texts, their caps and the auto-delete timer.
    log: ChatLog,
    /// The peer's frames against the rate a person could send.
    rate: FrameRate,
    /// Caller odd, callee even: one id space for the session, so an id names one message or
    /// attachment on both sides (receipts, expiry, view-once).
    next_id: u64,
    /// Setup deadlines, pings, silence limits and the repair window.
    live: Liveness,
    typing: Typing,
    ping_n: u64,
    /// Round-trip probes waiting for their pong: when each went out.
    probes: HashMap<u64, Instant>,
    /// Attachments held, arriving and sending (the rules: `transfers/state.rs`).
    files: Transfers,
    /// An offer was made (caller) or taken (callee): the transport exists from here on.
    offered: bool,
    /// A link of a group: its timer is the roster's, not the peer's to change.
    group_link: bool,
    /// Relayed blobs taken, so a replay is dropped rather than failing the setup.
    replays: signals::Replays,
}

/// Milliseconds from `now` until `at`, for front-ends (which count down to the engine's deadline
/// and never compute it).
fn ms_until(at: Option<Instant>, now: Instant) -> Option<u64> {
    at.map(|t| t.saturating_duration_since(now).as_millis() as u64)
}

impl ChatCore {
    pub(super) fn new(
        id: String,
        peer_cert: DeviceCert,
        my_caps: Caps,
        caller: bool,
        limits: ChatLimits,
        now: Instant,
    ) -> Self {
        Self {
            id,
            peer_caps: peer_cert.caps,
            peer_cert,
            my_caps,
            olm: None,
            log: ChatLog::new(limits),
            rate: FrameRate::new(now),
            next_id: if caller { 1 } else { 2 },
            live: Liveness::new(caller, now),
            typing: Typing::default(),
            ping_n: 0,
            probes: HashMap::new(),
            files: Transfers::default(),
            offered: false,
            group_link: false,
            replays: signals::Replays::default(),
        }
    }

    pub(super) fn peer_cert(&self) -> &DeviceCert {
        &self.peer_cert
    }

    pub(super) fn is_open(&self) -> bool {
        self.live.is_open()
    }

    pub(super) fn is_caller(&self) -> bool {
        self.live.is_caller()
    }

    pub(super) fn has_olm(&self) -> bool {
        self.olm.is_some()
    }

    /// The Olm session is made (outbound by the caller, from the pre-key offer by the callee).
    pub(super) fn set_olm(&mut self, olm: Session) {
        self.olm = Some(olm);
    }

    /// Caller: the transport and its offer exist.
    pub(super) fn offer_made(&mut self) {
        self.offered = true;
    }

    fn emit(&self, out: &mut Vec<Effect>, ev: Event) {
        out.push(Effect::Emit(ev));
    }

    fn warn(&self, out: &mut Vec<Effect>, message: String) {
        out.push(Effect::Emit(Event::Warning { message }));
    }

    /// A frame for the peer, sealed: only while the channel is open (nothing else could carry it).
    fn send(&mut self, out: &mut Vec<Effect>, frame: &PeerFrame) {
        if !self.live.is_open() {
            return;
        }
        if let Some(olm) = self.olm.as_mut() {
            if let Ok(blob) = seal(olm, &frame.encode()) {
                out.push(Effect::Send(blob));
            }
        }
    }

    /// A signal for the peer, sealed, through the route.
    pub(super) fn signal(&mut self, s: &Signal) -> Vec<Effect> {
        let mut out = Vec::new();
        let Some(olm) = self.olm.as_mut() else {
            return out;
        };
        match seal(olm, &s.encode()) {
            Ok(blob) => out.push(Effect::Relay(blob)),
            Err(e) => self.warn(&mut out, format!("could not encrypt a signal: {e}")),
        }
        out
    }

    /// The data channel is open (its event, or a first frame that overtook it). Once only.
    pub(super) fn opened(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.live.opened(now) {
            let hello = PeerFrame::Hello { caps: self.my_caps };
            self.send(&mut out, &hello);
            out.push(Effect::Opened {
                peer_caps: self.peer_caps,
            });
        }
        out
    }

    /// Bytes from the data channel: an attachment chunk, or an Olm message holding a frame.
    /// `max_file` is read per offer: the user may change it mid-chat.
    pub(super) fn on_data(&mut self, bytes: &[u8], max_file: u64, now: Instant) -> Vec<Effect> {
        // webrtc reports a remotely opened channel's "open" from a spawned task, so a first frame
        // can overtake it: a frame proves it is open.
        let mut out = self.opened(now);
        if bytes.first() == Some(&anonchat_proto::attach::CHUNK_TAG) {
            self.on_chunk(&mut out, bytes, now);
        } else if !self.on_sealed_frame(&mut out, bytes, max_file, now) {
            return out;
        }
        if self.live.resumed() {
            out.push(Effect::Resumed);
        }
        out
    }

    /// Leaving (or a panic wipe): the peer is told while the channel can still carry it.
    pub(super) fn bye(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        self.send(&mut out, &PeerFrame::Bye);
        out
    }

    /// Checks and seals a text; the driver sends it, then calls [`ChatCore::text_sent`].
    pub(super) fn seal_text(&mut self, text: &SecretText) -> Result<(u64, Vec<u8>), ClientError> {
        if !self.live.is_open() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        anonchat_proto::wire::check_size(text.as_str().len(), anonchat_proto::limits::MAX_TEXT)?;
        let olm = self
            .olm
            .as_mut()
            .ok_or(ClientError::Session(SessionError::NotOpen))?;
        let id = self.next_id;
        self.next_id += 2;
        let frame = PeerFrame::Text {
            id,
            body: text.clone(),
        };
        Ok((id, seal(olm, &frame.encode())?))
    }

    /// The text went out: it joins the log.
    pub(super) fn text_sent(
        &mut self,
        id: u64,
        text: SecretText,
        now: Instant,
    ) -> (Sent, Vec<Effect>) {
        let mut out = Vec::new();
        let expires = self.log_push(&mut out, id, true, text, now);
        let sent = Sent {
            id,
            expires_in_ms: ms_until(expires, now),
        };
        (sent, out)
    }

    /// A keystroke: a `typing` frame at most once per [`super::TYPING_EVERY`].
    pub(super) fn typing(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.typing.due(now) {
            self.send(&mut out, &PeerFrame::Typing);
        }
        out
    }

    /// A round-trip probe: its number, or `None` while the chat is not open.
    pub(super) fn probe(&mut self, now: Instant) -> Option<(u64, Vec<Effect>)> {
        if !self.live.is_open() {
            return None;
        }
        let mut out = Vec::new();
        self.ping_n += 1;
        self.probes.insert(self.ping_n, now);
        let ping = PeerFrame::Ping { n: self.ping_n };
        self.send(&mut out, &ping);
        Some((self.ping_n, out))
    }

    pub(super) fn set_timer(&mut self, seconds: u32) -> Result<Vec<Effect>, ClientError> {
        if !anonchat_proto::limits::TIMER_CHOICES.contains(&seconds) {
            return Err(ClientError::Refused(format!(
                "timers are {:?} seconds",
                anonchat_proto::limits::TIMER_CHOICES
            )));
        }
        if !self.live.is_open() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        let mut out = Vec::new();
        self.log.set_timer(seconds);
        self.send(&mut out, &PeerFrame::Timer { seconds });
        self.emit(
            &mut out,
            Event::TimerSet {
                session: self.id.clone(),
                seconds,
                by_peer: false,
            },
        );
        Ok(out)
    }

    /// This device's capabilities changed: the peer hears the new ones now if the chat is open
    /// (else in the `hello` at open).
    pub(super) fn set_my_caps(&mut self, caps: Caps) -> Vec<Effect> {
        let mut out = Vec::new();
        if caps != self.my_caps {
            self.my_caps = caps;
            if self.live.is_open() {
                self.send(&mut out, &PeerFrame::Hello { caps });
            }
        }
        out
    }

    /// The peer's `hello`: what it says of itself now, believed only where it takes away.
    pub(super) fn on_hello(&mut self, out: &mut Vec<Effect>, claimed: Caps) {
        let caps = Caps {
            screen_protection: claimed.screen_protection && self.peer_cert.caps.screen_protection,
        };
        if caps != self.peer_caps {
            self.peer_caps = caps;
            let session = self.id.clone();
            self.emit(
                out,
                Event::PeerCaps {
                    session,
                    peer_caps: caps,
                    peer_unprotected: !caps.screen_protection,
                },
            );
        }
    }

    /// A frame of the engine's group driver (a roster, a join) for the peer.
    pub(super) fn group_send(&mut self, frame: &PeerFrame) -> Vec<Effect> {
        let mut out = Vec::new();
        self.send(&mut out, frame);
        out
    }

    /// This chat is a group's link, and the group's timer is `seconds` (the roster's: set here
    /// without a word to the peer, who holds the same roster).
    pub(super) fn group_timer(&mut self, seconds: u32) {
        self.group_link = true;
        self.log.set_timer(seconds);
    }

    pub(super) fn history(&self) -> Vec<Line> {
        self.log.lines()
    }

    /// The server released the relay route (the peer hung up or vanished). During setup the
    /// channel may still open (its `bye` or failure will follow): wait briefly. Once open, no
    /// ICE restart is possible any more.
    pub(super) fn route_closed(&mut self, now: Instant) {
        self.live.route_closed(now);
    }

    /// What the liveness rules say for this tick. `ice_connected`: the transport has a pair.
    pub(super) fn tick(&mut self, now: Instant, ice_connected: bool) -> Vec<Effect> {
        let mut out = Vec::new();
        let busy = self.files.busy();
        for step in self.live.tick(now, busy, ice_connected) {
            match step {
                Do::Ping => {
                    self.ping_n += 1;
                    let ping = PeerFrame::Ping { n: self.ping_n };
                    self.send(&mut out, &ping);
                }
                Do::Reconnecting => self.emit(
                    &mut out,
                    Event::SessionReconnecting {
                        session: self.id.clone(),
                    },
                ),
                Do::OfferRestart => out.push(Effect::RestartIce),
                Do::End(reason) => out.push(Effect::End(reason)),
                Do::Fail(why) => out.push(Effect::Fail(why)),
            }
        }
        out
    }

    /// When the next line or attachment is wiped by its timer.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.log
            .next_expiry()
            .into_iter()
            .chain(self.files.next_expiry())
            .min()
    }

    /// Wipes every line and attachment whose timer ran out.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut ids = self.log.expire(now);
        ids.extend(self.files.expire(now));
        if !ids.is_empty() {
            self.emit(
                &mut out,
                Event::Expired {
                    session: self.id.clone(),
                    ids,
                },
            );
        }
        out
    }

    /// Keeps a line (see `ChatLog::push`); lines wiped for room are told to the front-end.
    /// Returns when the line expires.
    fn log_push(
        &mut self,
        out: &mut Vec<Effect>,
        id: u64,
        mine: bool,
        text: SecretText,
        now: Instant,
    ) -> Option<Instant> {
        let expires = self.log.expiry_from(now);
        let ids = self.log.push(id, mine, text, now);
        if !ids.is_empty() {
            self.emit(
                out,
                Event::Expired {
                    session: self.id.clone(),
                    ids,
                },
            );
        }
        expires
    }

    /// The chat is over: the log, the attachments and the Olm session are wiped before anything
    /// else happens. Returns whether the route must be released, and the event to tell.
    pub(super) fn finish(&mut self, exit: Exit) -> (bool, Event) {
        self.log.clear();
        self.files.clear();
        self.olm = None;
        self.probes.clear();
        let was_open = self.live.is_open();
        self.live.closed();
        let session = self.id.clone();
        let ev = match exit {
            Exit::Failed(reason) if !was_open => Event::SessionFailed { session, reason },
            Exit::Failed(_) => Event::SessionEnded {
                session,
                reason: EndReason::ChannelClosed,
                wiped: true,
            },
            Exit::Ended(reason) => Event::SessionEnded {
                session,
                reason,
                wiped: true,
            },
        };
        // The route lasted the chat (for ICE restarts); release it.
        (self.live.route_alive(), ev)
    }

    /// Opens a sealed frame from the peer and runs it; false when it ended the chat.
    fn on_sealed_frame(
        &mut self,
        out: &mut Vec<Effect>,
        blob: &[u8],
        max_file: u64,
        now: Instant,
    ) -> bool {
        let Some(olm) = self.olm.as_mut() else {
            return true;
        };
        let frame = unseal(olm, blob).and_then(|p| PeerFrame::decode(&p).map_err(Into::into));
        match frame {
            Ok(frame) => match self.on_frame(out, frame, max_file, now) {
                Some(end) => {
                    out.push(Effect::End(end));
                    false
                }
                None => true,
            },
            Err(e) => {
                // A bad frame from the peer changes nothing; the session goes on.
                self.warn(out, format!("dropped a bad frame from the peer: {e}"));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
