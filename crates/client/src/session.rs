//! One chat session (DESIGN §6): Olm over signaling and over the data channel, the chat in RAM only,
//! liveness pings, and a wipe of every buffer when it ends, whatever the reason.
//!
//! The rules are the sans-I/O machine in `core.rs`; this file is its driver: one task that owns the
//! transport, feeds the machine commands, peer bytes, signals and ticks with the time, and executes
//! the effects it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_proto::frames::{PeerFrame, SecretText};
use anonchat_proto::{DeviceCert, Key32, Username};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use vodozemac::olm::{PreKeyMessage, Session};
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use crate::attachments::{Meta, NewAttachment};
use crate::events::Event;
use crate::quota::ChatLimits;
use crate::transport::{IceConfig, Transport, TransportEvent};
use crate::ClientError;

mod core;
mod liveness;
mod log;
mod olm;
mod signals;
mod transfers;
mod typing;
pub use self::core::GroupFrame;
use self::core::{ChatCore, Effect, Exit};
use liveness::SetupFailure;
pub use liveness::{BULK_SILENCE, PEER_SILENCE, PING_INTERVAL, RESTART_WINDOW, SETUP_TIMEOUT};
pub use log::Line;
pub(crate) use olm::{parse_olm, seal};
pub use transfers::{send_chunks, ChunkTarget, SharedAttachment};
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
    /// What this device tells peers in `hello`: its certificate's capabilities, less what the
    /// user turned off.
    fn my_caps(&self) -> anonchat_proto::Caps {
        self.my_cert().map(|c| c.caps).unwrap_or_default()
    }
    fn ice(&self) -> IceConfig;
    fn session_over(&self, id: &str);
    /// A transport closing after its chat ended (the engine waits for these when it shuts down).
    fn closing(&self, close: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        tokio::spawn(close);
    }
    /// A group frame arrived on session `id` (the engine's group driver takes it).
    fn group_frame(&self, _id: &str, _frame: GroupFrame) {}
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
    /// Offers this chat its copy of an attachment going to several chats (a group), whose chunks
    /// the caller's task seals once and sends; answers where that task sends this chat's chunks.
    OfferShared(
        Box<SharedAttachment>,
        oneshot::Sender<Result<(Sent, ChunkTarget), ClientError>>,
    ),
    CancelTransfer(u64),
    Attachments(oneshot::Sender<Vec<Meta>>),
    /// An attachment's bytes (not a view-once one the peer sent: see `OpenViewOnce`).
    Attachment(u64, oneshot::Sender<Result<AttachmentBytes, ClientError>>),
    /// The bytes of a view-once attachment from the peer, once: it is wiped on both sides.
    OpenViewOnce(u64, oneshot::Sender<Result<AttachmentBytes, ClientError>>),
    SetTimer(u32, oneshot::Sender<Result<(), ClientError>>),
    /// A group frame for the peer (the engine's group driver).
    GroupSend(Box<PeerFrame>),
    /// This device's capabilities changed (capture protection turned off or on): tell the peer.
    SetCaps(anonchat_proto::Caps),
    /// This chat is a group link under the roster's timer.
    GroupTimer(u32),
}

#[derive(Clone)]
pub struct SessionHandle {
    pub peer: Username,
    pub tx: mpsc::Sender<Cmd>,
}

/// The driver: the machine, and the I/O it asks for.
struct Chat {
    host: Arc<dyn SessionHost>,
    core: ChatCore,
    transport: Option<Transport>,
    /// Where the transport reports (handed to it when it is made).
    transport_events: mpsc::Sender<TransportEvent>,
    /// Where chunk-sending tasks report when they stop.
    bulk_done: mpsc::Sender<BulkDone>,
    /// Round-trip probes' replies, by ping number (the machine keeps when each went out).
    probes: HashMap<u64, oneshot::Sender<Duration>>,
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
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let (bulk_tx, bulk_rx) = mpsc::channel::<BulkDone>(16);
    let peer = peer_cert.username.clone();
    let caller = matches!(role, Role::Caller { .. });
    let my_caps = host.my_caps();
    let core = ChatCore::new(
        id,
        peer_cert,
        my_caps,
        caller,
        host.chat_limits(),
        Instant::now(),
    );
    let chat = Chat {
        host,
        core,
        transport: None,
        transport_events: ev_tx,
        bulk_done: bulk_tx,
        probes: HashMap::new(),
    };
    tokio::spawn(chat.run(rx, ev_rx, bulk_rx, role));
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
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut transport: mpsc::Receiver<TransportEvent>,
        mut bulk: mpsc::Receiver<BulkDone>,
        role: Role,
    ) {
        let mut wiped: Option<oneshot::Sender<()>> = None;
        let mut tick = tokio::time::interval(PING_INTERVAL.min(Duration::from_millis(500)));
        let first = match role {
            Role::Caller { otk } => self.start_caller(otk).await,
            Role::Callee => Ok(()),
        };
        let exit = if let Err(e) = first {
            Exit::Failed(e.to_string())
        } else {
            loop {
                let exit = tokio::select! {
                    cmd = cmds.recv() => self.on_cmd(cmd, &mut wiped).await,
                    ev = transport.recv() => self.on_transport(ev).await,
                    Some((id, result)) = bulk.recv() => {
                        let fx = self.core.bulk_done(id, result, Instant::now());
                        self.apply(fx).await
                    }
                    _ = sleep_until_opt(self.core.next_expiry()) => {
                        let fx = self.core.expire(Instant::now());
                        self.apply(fx).await
                    }
                    _ = tick.tick() => {
                        let ice = self.transport.as_ref().is_some_and(|t| t.ice_connected());
                        let fx = self.core.tick(Instant::now(), ice);
                        self.apply(fx).await
                    }
                };
                if let Some(exit) = exit {
                    break exit;
                }
            }
        };
        self.finish(exit).await;
        if let Some(done) = wiped {
            let _ = done.send(());
        }
    }

    /// One command from the engine; `Some` when the chat is over.
    async fn on_cmd(
        &mut self,
        cmd: Option<Cmd>,
        wiped: &mut Option<oneshot::Sender<()>>,
    ) -> Option<Exit> {
        let now = Instant::now();
        match cmd {
            None | Some(Cmd::Leave) => {
                let fx = self.core.bye();
                self.apply(fx).await;
                Some(Exit::Ended(crate::events::EndReason::Left))
            }
            Some(Cmd::Wipe(done)) => {
                let fx = self.core.bye();
                self.apply(fx).await;
                *wiped = Some(done);
                Some(Exit::Ended(crate::events::EndReason::Panic))
            }
            Some(Cmd::Relayed(blob)) => self.on_relayed(&blob).await,
            Some(Cmd::SendText(text, reply)) => {
                let (sent, fx) = self.send_text(text).await;
                let exit = self.apply(fx).await;
                let _ = reply.send(sent);
                exit
            }
            Some(Cmd::Typing) => {
                let fx = self.core.typing(now);
                self.apply(fx).await
            }
            Some(Cmd::SendAttachment(new, reply)) => {
                let _ = reply.send(self.send_attachment(*new).await);
                None
            }
            Some(Cmd::OfferShared(shared, reply)) => {
                let _ = reply.send(self.offer_shared(&shared).await);
                None
            }
            Some(Cmd::CancelTransfer(id)) => {
                let fx = self.core.cancel_transfer(id, "cancelled");
                self.apply(fx).await
            }
            Some(Cmd::Attachments(reply)) => {
                let _ = reply.send(self.core.attachments());
                None
            }
            Some(Cmd::Attachment(id, reply)) => {
                let _ = reply.send(self.core.attachment(id));
                None
            }
            Some(Cmd::OpenViewOnce(id, reply)) => match self.core.open_view_once(id) {
                Ok((bytes, fx)) => {
                    let exit = self.apply(fx).await;
                    let _ = reply.send(Ok(bytes));
                    exit
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    None
                }
            },
            Some(Cmd::SetTimer(seconds, reply)) => match self.core.set_timer(seconds) {
                Ok(fx) => {
                    let exit = self.apply(fx).await;
                    let _ = reply.send(Ok(()));
                    exit
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    None
                }
            },
            Some(Cmd::History(reply)) => {
                let _ = reply.send(self.core.history());
                None
            }
            Some(Cmd::Ping(reply)) => {
                // Not open: the reply is dropped, and the caller hears the chat is not there.
                let (n, fx) = self.core.probe(now)?;
                self.probes.insert(n, reply);
                self.apply(fx).await
            }
            Some(Cmd::RouteClosed) => {
                self.core.route_closed(now);
                None
            }
            Some(Cmd::GroupSend(frame)) => {
                let fx = self.core.group_send(&frame);
                self.apply(fx).await
            }
            Some(Cmd::SetCaps(caps)) => {
                let fx = self.core.set_my_caps(caps);
                self.apply(fx).await
            }
            Some(Cmd::GroupTimer(seconds)) => {
                self.core.group_timer(seconds);
                None
            }
        }
    }

    /// One report from the transport; `Some` when the chat is over.
    async fn on_transport(&mut self, ev: Option<TransportEvent>) -> Option<Exit> {
        let now = Instant::now();
        let fx = match ev {
            Some(TransportEvent::LocalCandidate(c)) => {
                self.core
                    .signal(&anonchat_proto::frames::Signal::Candidate {
                        candidate: c.candidate,
                        sdp_mid: c.sdp_mid,
                        sdp_mline_index: c.sdp_mline_index,
                    })
            }
            Some(TransportEvent::Open) => self.core.opened(now),
            Some(TransportEvent::Message(b)) => {
                self.core.on_data(&b, self.host.max_file_size(), now)
            }
            Some(TransportEvent::NoCandidates { relay_only: true }) => {
                return Some(Exit::Failed(
                    "the relay refused this device, and “hide my IP” allows no direct connection"
                        .into(),
                ))
            }
            Some(TransportEvent::NoCandidates { relay_only: false }) => {
                return Some(Exit::Failed("no network path to the peer".into()))
            }
            Some(TransportEvent::Closed) | None => {
                return Some(Exit::Ended(crate::events::EndReason::ChannelClosed))
            }
        };
        self.apply(fx).await
    }

    /// Executes the machine's effects in order; `Some` when one of them ends the chat (the rest
    /// are not run).
    async fn apply(&mut self, effects: Vec<Effect>) -> Option<Exit> {
        let mut queue = std::collections::VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Send(blob) => {
                    if let Some(t) = &self.transport {
                        let _ = t.send(Bytes::from(blob)).await;
                    }
                }
                Effect::Relay(blob) => self.host.relay(&self.core.id, blob),
                Effect::Emit(ev) => self.host.emit(ev),
                Effect::Opened { peer_caps } => self.opened(peer_caps).await,
                Effect::Resumed => self.resumed(),
                Effect::RestartIce => {
                    // Its signal goes out before anything queued after it.
                    for fx in self.offer_restart().await.into_iter().rev() {
                        queue.push_front(fx);
                    }
                }
                Effect::Pong { n, rtt } => {
                    if let Some(reply) = self.probes.remove(&n) {
                        let _ = reply.send(rtt);
                    }
                }
                Effect::End(reason) => return Some(Exit::Ended(reason)),
                Effect::Fail(why) => return Some(Exit::Failed(self.setup_failure(why).await)),
                Effect::Group(frame) => self.host.group_frame(&self.core.id, frame),
            }
        }
        None
    }

    /// Seals and sends a text; it joins the log once the transport took it.
    async fn send_text(&mut self, text: SecretText) -> (Result<Sent, ClientError>, Vec<Effect>) {
        let (id, blob) = match self.core.seal_text(&text) {
            Ok(sealed) => sealed,
            Err(e) => return (Err(e), Vec::new()),
        };
        let Some(t) = &self.transport else {
            return (
                Err(ClientError::Signaling(
                    crate::error::SignalingError::NotConnected,
                )),
                Vec::new(),
            );
        };
        if let Err(e) = t.send(Bytes::from(blob)).await {
            return (Err(e.into()), Vec::new());
        }
        let (sent, fx) = self.core.text_sent(id, text, Instant::now());
        (Ok(sent), fx)
    }

    /// A failed setup's reason, naming the step that never happened (so a user, or a test log,
    /// can tell a missing answer from a blocked network path).
    async fn setup_failure(&self, why: SetupFailure) -> String {
        let stage = match (&self.transport, self.core.is_caller()) {
            (Some(t), _) => t.setup_stage().await,
            (None, false) => "the caller's offer never arrived".into(),
            (None, true) => "the connection could not be prepared".into(),
        };
        match why {
            SetupFailure::TimedOut => format!("could not connect to the peer in time: {stage}"),
            SetupFailure::PeerLeft => format!("the peer went away during setup: {stage}"),
        }
    }

    /// The caller's ICE restart offer, through the route.
    async fn offer_restart(&mut self) -> Vec<Effect> {
        let Some(t) = &self.transport else {
            return Vec::new();
        };
        match t.restart_offer().await {
            Ok(sdp) => self
                .core
                .signal(&anonchat_proto::frames::Signal::Restart { sdp }),
            Err(e) => vec![Effect::Emit(Event::Warning {
                message: format!("could not restart ICE: {e}"),
            })],
        }
    }

    fn resumed(&self) {
        let Some(t) = &self.transport else { return };
        // Told once ICE has picked the new pair (frames may flow a moment before), off this task.
        let route = t.route_when_selected(Duration::from_secs(3));
        let (host, session) = (self.host.clone(), self.core.id.clone());
        tokio::spawn(async move {
            let (local, remote) = route.await.unwrap_or_default();
            host.emit(Event::SessionResumed {
                session,
                route: crate::events::Route { local, remote },
            });
        });
    }

    async fn opened(&self, peer_caps: anonchat_proto::Caps) {
        let route = match &self.transport {
            Some(t) => t.route().await,
            None => None,
        };
        let (local, remote) = route.unwrap_or_default();
        self.host.emit(Event::SessionOpen {
            session: self.core.id.clone(),
            peer: self.core.peer_cert().username.to_string(),
            peer_caps,
            peer_unprotected: !peer_caps.screen_protection,
            route: crate::events::Route { local, remote },
        });
    }

    /// The machine wipes the chat and the Olm session first; then the slow parts (closing the
    /// transport) happen.
    async fn finish(mut self, exit: Exit) {
        let (release_route, ev) = self.core.finish(exit);
        self.probes.clear();
        self.host.session_over(&self.core.id);
        if release_route {
            self.host.hangup(&self.core.id);
        }
        self.host.emit(ev);
        if let Some(t) = self.transport.take() {
            self.host.closing(Box::pin(async move { t.close().await }));
        }
    }
}
