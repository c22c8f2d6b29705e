//! One chat session (DESIGN §6): Olm over signaling and over the data channel, the chat in RAM only,
//! liveness pings, and a wipe of every buffer when it ends, whatever the reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use anonchat_proto::attach::CHUNK_TAG;
use anonchat_proto::frames::{PeerFrame, SecretText, Signal};
use anonchat_proto::{Caps, DeviceCert, Key32, Username};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use vodozemac::olm::{PreKeyMessage, Session};
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use crate::attachments::{Meta, NewAttachment};
use crate::error::{SessionError, SignalingError};
use crate::events::{EndReason, Event};
use crate::quota::{ChatLimits, FrameRate};
use crate::transport::{IceConfig, Transport, TransportEvent};
use crate::ClientError;

mod frames;
mod liveness;
mod log;
mod olm;
mod signals;
mod transfers;
mod typing;
use liveness::{Do, Liveness, SetupFailure};
pub use liveness::{BULK_SILENCE, PEER_SILENCE, PING_INTERVAL, RESTART_WINDOW, SETUP_TIMEOUT};
use log::ChatLog;
pub use log::Line;
use olm::unseal;
pub(crate) use olm::{parse_olm, seal};
use signals::SignalError;
pub use typing::TYPING_EVERY;

/// What a session needs from the engine.
pub trait SessionHost: Send + Sync + 'static {
    fn relay(&self, ring_id: &str, blob: Vec<u8>);
    fn hangup(&self, ring_id: &str);
    fn emit(&self, ev: Event);
    fn outbound_session(
        &self,
        identity: Curve25519PublicKey,
        otk: Curve25519PublicKey,
    ) -> Result<Session, ClientError>;
    fn inbound_session(
        &self,
        identity: Curve25519PublicKey,
        msg: &PreKeyMessage,
    ) -> Result<(Session, Zeroizing<Vec<u8>>), ClientError>;
    /// This device's certificate (`None` once the identity is gone, e.g. the account was deleted).
    fn my_cert(&self) -> Option<DeviceCert>;
    fn ice(&self) -> IceConfig;
    fn session_over(&self, id: &str);
    /// The largest attachment this side accepts, in bytes.
    fn max_file_size(&self) -> u64 {
        DEFAULT_MAX_FILE_SIZE
    }
    /// What one chat may hold.
    fn chat_limits(&self) -> ChatLimits {
        ChatLimits::default()
    }
}

/// The default size cap for incoming attachments.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

/// An attachment's bytes as handed to a front-end.
pub type AttachmentBytes = (Meta, Arc<Zeroizing<Vec<u8>>>);

pub enum Role {
    /// We rang; the peer device's verified certificate and its claimed one-time key.
    Caller { otk: Key32 },
    /// We answered; the caller's pre-key offer will arrive through the relay.
    Callee,
}

/// An item this side sent: its id (receipts name it) and when it is wiped, if a timer is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    pub id: u64,
    /// Milliseconds from now until the item is wiped here (the engine's deadline, which front-ends
    /// count down to; they never compute it).
    pub expires_in_ms: Option<u64>,
}

/// A deadline as milliseconds from now, for front-ends.
pub(crate) fn ms_from_now(at: Option<Instant>) -> Option<u64> {
    at.map(|t| t.saturating_duration_since(Instant::now()).as_millis() as u64)
}

pub enum Cmd {
    Relayed(Vec<u8>),
    SendText(SecretText, oneshot::Sender<Result<Sent, ClientError>>),
    Typing,
    History(oneshot::Sender<Vec<Line>>),
    /// Measures one encrypted round trip to the peer (a `ping` frame and its `pong`).
    Ping(oneshot::Sender<Duration>),
    /// The server released the relay route (the peer hung up or vanished).
    RouteClosed,
    Leave,
    Wipe(oneshot::Sender<()>),
    SendAttachment(
        Box<NewAttachment>,
        oneshot::Sender<Result<Sent, ClientError>>,
    ),
    CancelTransfer(u64),
    Attachments(oneshot::Sender<Vec<Meta>>),
    /// An attachment's bytes (not a view-once one the peer sent: see `OpenViewOnce`).
    Attachment(u64, oneshot::Sender<Result<AttachmentBytes, ClientError>>),
    /// The bytes of a view-once attachment from the peer, once: it is wiped on both sides.
    OpenViewOnce(u64, oneshot::Sender<Result<AttachmentBytes, ClientError>>),
    SetTimer(u32, oneshot::Sender<Result<(), ClientError>>),
}

#[derive(Clone)]
pub struct SessionHandle {
    pub peer: Username,
    pub tx: mpsc::Sender<Cmd>,
}

enum Exit {
    Ended(EndReason),
    Failed(String),
}

struct Chat {
    id: String,
    peer: Username,
    peer_cert: DeviceCert,
    host: Arc<dyn SessionHost>,
    olm: Option<Session>,
    transport: Option<Transport>,
    /// The texts, their caps and the auto-delete timer.
    log: ChatLog,
    /// The peer's frames against the rate a person could send.
    rate: FrameRate,
    next_id: u64,
    /// Setup deadlines, pings, silence limits and the repair window.
    live: Liveness,
    typing: typing::Typing,
    ping_n: u64,
    /// Round-trip probes waiting for their pong.
    probes: HashMap<u64, (Instant, oneshot::Sender<Duration>)>,
    /// Attachments held, arriving and sending (the rules: `transfers/state.rs`).
    files: transfers::state::Transfers,
}

/// What a chunk-sending task reports when it stops.
type BulkDone = (u64, Result<[u8; 32], String>);

pub fn spawn(
    host: Arc<dyn SessionHost>,
    id: String,
    peer_cert: DeviceCert,
    role: Role,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(256);
    let peer = peer_cert.username.clone();
    let limits = host.chat_limits();
    let files = transfers::state::Transfers::default();
    let chat = Chat {
        id,
        peer: peer.clone(),
        peer_cert,
        host,
        olm: None,
        transport: None,
        log: ChatLog::new(limits),
        rate: FrameRate::new(Instant::now()),
        // Caller odd, callee even: one id space for the session, so an id names one message or
        // attachment on both sides (receipts, expiry, view-once).
        next_id: if matches!(role, Role::Caller { .. }) {
            1
        } else {
            2
        },
        live: Liveness::new(matches!(role, Role::Caller { .. }), Instant::now()),
        typing: Default::default(),
        ping_n: 0,
        probes: Default::default(),
        files,
    };
    tokio::spawn(chat.run(rx, role));
    SessionHandle { peer, tx }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Chat {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, role: Role) {
        let (ev_tx, mut ev_rx) = mpsc::channel(256);
        let mut wiped: Option<oneshot::Sender<()>> = None;
        let mut tick = tokio::time::interval(PING_INTERVAL.min(Duration::from_millis(500)));
        let (bulk_tx, mut bulk_rx) = mpsc::channel::<BulkDone>(16);

        let first = match role {
            Role::Caller { otk } => self.start_caller(otk, &ev_tx).await,
            Role::Callee => Ok(()),
        };
        let exit = if let Err(e) = first {
            Exit::Failed(e.to_string())
        } else {
            loop {
                tokio::select! {
                    cmd = cmds.recv() => match cmd {
                        None | Some(Cmd::Leave) => {
                            self.send_frame(&PeerFrame::Bye).await;
                            break Exit::Ended(EndReason::Left);
                        }
                        Some(Cmd::Wipe(done)) => {
                            self.send_frame(&PeerFrame::Bye).await;
                            wiped = Some(done);
                            break Exit::Ended(EndReason::Panic);
                        }
                        Some(Cmd::Relayed(blob)) => {
                            // During setup, anything wrong on the signaling path means the server
                            // (or someone in between) is tampering: fail rather than connect. Once
                            // the chat is open the server must not be able to end it with one bad
                            // blob (it could not decrypt, and Olm refuses replays): drop those.
                            match self.on_signal(&blob, &ev_tx).await {
                                Err(e @ SignalError::Undecryptable(_)) if self.live.is_open() => {
                                    self.host.emit(Event::Warning {
                                        message: format!("dropped a relayed message that is not from the peer: {e}"),
                                    });
                                }
                                Err(e) => break Exit::Failed(e.to_string()),
                                Ok(()) => {}
                            }
                        }
                        Some(Cmd::SendText(text, reply)) => {
                            let _ = reply.send(self.send_text(text).await);
                        }
                        Some(Cmd::Typing) => {
                            if self.typing.due(Instant::now()) {
                                self.send_frame(&PeerFrame::Typing).await;
                            }
                        }
                        Some(Cmd::SendAttachment(new, reply)) => {
                            let _ = reply.send(self.send_attachment(*new, &bulk_tx).await);
                        }
                        Some(Cmd::CancelTransfer(id)) => self.cancel_transfer(id, "cancelled").await,
                        Some(Cmd::Attachments(reply)) => {
                            let _ = reply.send(self.files.list());
                        }
                        Some(Cmd::Attachment(id, reply)) => {
                            let _ = reply.send(self.attachment(id));
                        }
                        Some(Cmd::OpenViewOnce(id, reply)) => {
                            let _ = reply.send(self.open_view_once(id).await);
                        }
                        Some(Cmd::SetTimer(seconds, reply)) => {
                            let _ = reply.send(self.set_timer(seconds).await);
                        }
                        Some(Cmd::History(reply)) => {
                            let _ = reply.send(self.log.lines());
                        }
                        Some(Cmd::Ping(reply)) => {
                            if self.live.is_open() {
                                self.ping_n += 1;
                                self.probes.insert(self.ping_n, (Instant::now(), reply));
                                self.send_frame(&PeerFrame::Ping { n: self.ping_n }).await;
                            }
                        }
                        Some(Cmd::RouteClosed) => {
                            // The route lasts the chat, so the peer gave up or lost the server.
                            // During setup its channel may still open (its `bye` or failure will
                            // follow): wait briefly. Once open, no ICE restart is possible any more.
                            self.live.route_closed(Instant::now());
                        }
                    },
                    ev = ev_rx.recv() => match ev {
                        Some(TransportEvent::LocalCandidate(c)) => self.signal(&Signal::Candidate {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_mline_index,
                        }),
                        Some(TransportEvent::Open) => self.on_open().await,
                        Some(TransportEvent::Message(b)) => {
                            // webrtc reports a remotely opened channel's "open" from a spawned
                            // task, so a first frame can overtake it: a frame proves it is open.
                            self.on_open().await;
                            if b.first() == Some(&CHUNK_TAG) {
                                self.on_chunk(&b).await;
                            } else if let Some(end) = self.on_frame(&b).await {
                                break Exit::Ended(end);
                            }
                            if self.live.resumed() {
                                self.on_resumed().await;
                            }
                        }
                        Some(TransportEvent::NoCandidates { relay_only: true }) => {
                            break Exit::Failed("the relay refused this device, and “hide my IP” allows no direct connection".into());
                        }
                        Some(TransportEvent::NoCandidates { relay_only: false }) => {
                            break Exit::Failed("no network path to the peer".into());
                        }
                        Some(TransportEvent::Closed) | None => break Exit::Ended(EndReason::ChannelClosed),
                    },
                    Some((id, result)) = bulk_rx.recv() => self.on_bulk_done(id, result).await,
                    _ = sleep_until_opt(self.next_expiry()) => self.expire(),
                    _ = tick.tick() => {
                        if let Some(exit) = self.on_tick().await {
                            break exit;
                        }
                    }
                }
            }
        };
        self.finish(exit).await;
        if let Some(done) = wiped {
            let _ = done.send(());
        }
    }

    /// Runs what the liveness rules say for this tick; `Some` when the chat is over.
    async fn on_tick(&mut self) -> Option<Exit> {
        let busy = self.files.busy();
        let ice = self.transport.as_ref().is_some_and(|t| t.ice_connected());
        for step in self.live.tick(Instant::now(), busy, ice) {
            match step {
                Do::Ping => {
                    self.ping_n += 1;
                    self.send_frame(&PeerFrame::Ping { n: self.ping_n }).await;
                }
                Do::Reconnecting => self.host.emit(Event::SessionReconnecting {
                    session: self.id.clone(),
                }),
                Do::OfferRestart => self.offer_restart().await,
                Do::End(reason) => return Some(Exit::Ended(reason)),
                Do::Fail(why) => return Some(Exit::Failed(self.setup_failure(why).await)),
            }
        }
        None
    }

    /// A failed setup's reason, naming the step that never happened (so a user, or a test log,
    /// can tell a missing answer from a blocked network path).
    async fn setup_failure(&self, why: SetupFailure) -> String {
        let stage = match (&self.transport, self.live.is_caller()) {
            (Some(t), _) => t.setup_stage().await,
            (None, false) => "the caller's offer never arrived",
            (None, true) => "the connection could not be prepared",
        };
        match why {
            SetupFailure::TimedOut => format!("could not connect to the peer in time: {stage}"),
            SetupFailure::PeerLeft => format!("the peer went away during setup: {stage}"),
        }
    }

    /// The caller's ICE restart offer, through the route.
    async fn offer_restart(&mut self) {
        let Some(t) = &self.transport else { return };
        match t.restart_offer().await {
            Ok(sdp) => self.signal(&Signal::Restart { sdp }),
            Err(e) => self.host.emit(Event::Warning {
                message: format!("could not restart ICE: {e}"),
            }),
        }
    }

    async fn on_resumed(&mut self) {
        let Some(t) = &self.transport else { return };
        // Told once ICE has picked the new pair (frames may flow a moment before), off this task.
        let route = t.route_when_selected(Duration::from_secs(3));
        let (host, session) = (self.host.clone(), self.id.clone());
        tokio::spawn(async move {
            let (local, remote) = route.await.unwrap_or_default();
            host.emit(Event::SessionResumed {
                session,
                route: crate::events::Route { local, remote },
            });
        });
    }

    async fn on_open(&mut self) {
        if !self.live.opened(Instant::now()) {
            return;
        }
        let caps: Caps = self.peer_cert.caps;
        self.send_frame(&PeerFrame::Hello {
            caps: self.host.my_cert().map(|c| c.caps).unwrap_or_default(),
        })
        .await;
        let route = match &self.transport {
            Some(t) => t.route().await,
            None => None,
        };
        let (local, remote) = route.unwrap_or_default();
        self.host.emit(Event::SessionOpen {
            session: self.id.clone(),
            peer: self.peer.to_string(),
            peer_caps: caps,
            peer_unprotected: !caps.screen_protection,
            route: crate::events::Route { local, remote },
        });
    }

    async fn send_frame(&mut self, frame: &PeerFrame) {
        let (Some(olm), Some(t)) = (self.olm.as_mut(), self.transport.as_ref()) else {
            return;
        };
        if !self.live.is_open() {
            return;
        }
        if let Ok(blob) = seal(olm, &frame.encode()) {
            let _ = t.send(Bytes::from(blob)).await;
        }
    }

    async fn send_text(&mut self, text: SecretText) -> Result<Sent, ClientError> {
        if !self.live.is_open() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        anonchat_proto::wire::check_size(text.as_str().len(), anonchat_proto::limits::MAX_TEXT)?;
        let id = self.next_id;
        self.next_id += 2;
        let frame = PeerFrame::Text {
            id,
            body: text.clone(),
        };
        let (Some(olm), Some(t)) = (self.olm.as_mut(), self.transport.as_ref()) else {
            return Err(ClientError::Signaling(SignalingError::NotConnected));
        };
        let blob = seal(olm, &frame.encode())?;
        t.send(Bytes::from(blob)).await?;
        let expires = self.log_push(id, true, text, Instant::now());
        Ok(Sent {
            id,
            expires_in_ms: ms_from_now(expires),
        })
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.log
            .next_expiry()
            .into_iter()
            .chain(self.files.next_expiry())
            .min()
    }

    /// Keeps a line (see `ChatLog::push`); lines wiped for room are told to the front-end.
    /// Returns when the line expires.
    fn log_push(&mut self, id: u64, mine: bool, text: SecretText, now: Instant) -> Option<Instant> {
        let expires = self.log.expiry_from(now);
        let ids = self.log.push(id, mine, text, now);
        if !ids.is_empty() {
            self.host.emit(Event::Expired {
                session: self.id.clone(),
                ids,
            });
        }
        expires
    }

    /// Wipes every line and attachment whose timer ran out.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut ids = self.log.expire(now);
        ids.extend(self.files.expire(now));
        if !ids.is_empty() {
            self.host.emit(Event::Expired {
                session: self.id.clone(),
                ids,
            });
        }
    }

    async fn set_timer(&mut self, seconds: u32) -> Result<(), ClientError> {
        if !anonchat_proto::limits::TIMER_CHOICES.contains(&seconds) {
            return Err(ClientError::Refused(format!(
                "timers are {:?} seconds",
                anonchat_proto::limits::TIMER_CHOICES
            )));
        }
        if !self.live.is_open() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        self.log.set_timer(seconds);
        self.send_frame(&PeerFrame::Timer { seconds }).await;
        self.host.emit(Event::TimerSet {
            session: self.id.clone(),
            seconds,
            by_peer: false,
        });
        Ok(())
    }

    /// Drops the Olm session and zeroizes the chat before anything slow (closing the transport).
    async fn finish(mut self, exit: Exit) {
        self.log.clear();
        self.files.clear();
        self.olm = None;
        let was_open = self.live.is_open();
        self.live.closed();
        self.host.session_over(&self.id);
        // The route lasted the chat (for ICE restarts); release it.
        if self.live.route_alive() {
            self.host.hangup(&self.id);
        }
        match exit {
            Exit::Failed(reason) if !was_open => {
                self.host.emit(Event::SessionFailed {
                    session: self.id.clone(),
                    reason,
                });
            }
            Exit::Failed(_) => self.host.emit(Event::SessionEnded {
                session: self.id.clone(),
                reason: EndReason::ChannelClosed,
                wiped: true,
            }),
            Exit::Ended(reason) => self.host.emit(Event::SessionEnded {
                session: self.id.clone(),
                reason,
                wiped: true,
            }),
        }
        if let Some(t) = self.transport.take() {
            tokio::spawn(async move { t.close().await });
        }
    }
}

#[cfg(test)]
mod tests;
