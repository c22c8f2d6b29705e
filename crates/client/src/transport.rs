//! The WebRTC transport, and the only module that knows the `webrtc` crate: open / answer /
//! candidates in, frames and state events out. Moving to another WebRTC line is a change here only.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::RTCDataChannel;
use webrtc::dtls_transport::dtls_transport_state::RTCDtlsTransportState;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::ice_transport::ice_connection_state::RTCIceConnectionState;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;

#[derive(Debug, thiserror::Error)]
#[error("webrtc: {0}")]
pub struct TransportError(String);

impl From<webrtc::Error> for TransportError {
    fn from(e: webrtc::Error) -> Self {
        Self(e.to_string())
    }
}

/// The mid of the one m-line (the data channel's) in every offer and answer.
pub const DATA_MID: &str = "0";

/// ICE settings handed down by the server (plus the user's relay-only choice).
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    pub servers: Vec<anonchat_proto::wire::IceServer>,
    /// Only relayed candidates ("hide my IP").
    pub relay_only: bool,
}

/// An ICE candidate as it travels inside an encrypted signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
}

#[derive(Debug)]
pub enum TransportEvent {
    LocalCandidate(Candidate),
    /// The data channel is open: frames can flow.
    Open,
    Message(Bytes),
    /// The channel closed or the connection failed; the session is over.
    Closed,
    /// Gathering ended without one local candidate: no way to reach the peer. With relay only,
    /// the relay refused us (and there is deliberately no direct fallback).
    NoCandidates {
        relay_only: bool,
    },
}

pub struct Transport {
    pc: Arc<RTCPeerConnection>,
    dc: Arc<tokio::sync::Mutex<Option<Arc<RTCDataChannel>>>>,
    /// Woken when the channel's send buffer drains below [`BULK_LOW_WATER`].
    drained: Arc<tokio::sync::Notify>,
}

/// Bulk sends wait while more than this is queued in the channel, so a big file never sits in
/// memory twice and chat frames are not stuck behind megabytes of it.
pub const BULK_HIGH_WATER: usize = 256 * 1024;
const BULK_LOW_WATER: usize = 64 * 1024;

/// Sends attachment chunks on the session's channel with backpressure; usable from another task.
#[derive(Clone)]
pub struct BulkSender {
    dc: Arc<RTCDataChannel>,
    drained: Arc<tokio::sync::Notify>,
}

impl BulkSender {
    pub async fn send(&self, frame: Bytes) -> Result<(), TransportError> {
        while self.dc.buffered_amount().await > BULK_HIGH_WATER {
            // The low-water callback wakes us; the timeout only guards against a missed wake-up.
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                self.drained.notified(),
            )
            .await;
        }
        self.dc.send(&frame).await?;
        Ok(())
    }
}

fn api(cfg: &IceConfig) -> API {
    let mut s = SettingEngine::default();
    // No multicast socket on 224.0.0.251:5353 and no .local names: plain host candidates.
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    // Two processes on one machine must be able to meet over loopback: the one-machine default,
    // which has no STUN or TURN server. Anywhere else loopback candidates only do harm: while ICE
    // restarts, webrtc writes through the best pair still untested, and a loopback socket writing
    // to another machine fails (EINVAL), which kills the data channel's association.
    s.set_include_loopback_candidate(cfg.servers.is_empty());
    // With trickle ICE the peer's checks often arrive before its candidates, so the first working
    // pair is peer-reflexive; the default 1 s wait before nominating one cost a second on about one
    // setup in five here. The pair is checked either way; waiting buys nothing on the paths we use.
    s.set_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO));
    // A relayed pair normally waits 2 s for a direct one to show up; with relay only, none will.
    if cfg.relay_only {
        s.set_relay_acceptance_min_wait(Some(std::time::Duration::ZERO));
    }
    APIBuilder::new().with_setting_engine(s).build()
}

fn rtc_config(cfg: &IceConfig) -> RTCConfiguration {
    RTCConfiguration {
        ice_servers: cfg
            .servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect(),
        ice_transport_policy: if cfg.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        },
        ..Default::default()
    }
}

fn wire_channel(dc: &Arc<RTCDataChannel>, events: &mpsc::Sender<TransportEvent>) {
    // Sending with `.await` inside the handlers makes webrtc wait for us: a peer that floods the
    // channel is slowed by SCTP flow control instead of growing our memory.
    let tx = events.clone();
    dc.on_open(Box::new(move || {
        Box::pin(async move {
            let _ = tx.send(TransportEvent::Open).await;
        })
    }));
    let tx = events.clone();
    dc.on_message(Box::new(move |m: DataChannelMessage| {
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.send(TransportEvent::Message(m.data)).await;
        })
    }));
    let tx = events.clone();
    dc.on_close(Box::new(move || {
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.send(TransportEvent::Closed).await;
        })
    }));
}

impl Transport {
    async fn new(
        cfg: &IceConfig,
        events: &mpsc::Sender<TransportEvent>,
    ) -> Result<Self, TransportError> {
        let pc = Arc::new(api(cfg).new_peer_connection(rtc_config(cfg)).await?);
        let tx = events.clone();
        let gathered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let relay_only = cfg.relay_only;
        pc.on_ice_candidate(Box::new(move |c| {
            let tx = tx.clone();
            let gathered = gathered.clone();
            Box::pin(async move {
                use std::sync::atomic::Ordering;
                // `None` marks the end of gathering. Only relay-only can end up with nothing (host
                // candidates always exist), and webrtc can report the end a moment before the
                // last candidates reach this handler: look again after a short while.
                if c.is_none() {
                    if relay_only && gathered.load(Ordering::SeqCst) == 0 {
                        tokio::spawn(async move {
                            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                            if gathered.load(Ordering::SeqCst) == 0 {
                                let _ = tx.send(TransportEvent::NoCandidates { relay_only }).await;
                            }
                        });
                    }
                    return;
                }
                if let Some(Ok(init)) = c.map(|c| c.to_json()) {
                    gathered.fetch_add(1, Ordering::SeqCst);
                    // webrtc-rs leaves the mid empty; a browser refuses a candidate whose mid
                    // names no m-line. There is one, the data channel's, with mid "0".
                    let _ = tx
                        .send(TransportEvent::LocalCandidate(Candidate {
                            candidate: init.candidate,
                            sdp_mid: init
                                .sdp_mid
                                .filter(|m| !m.is_empty())
                                .or_else(|| Some(DATA_MID.into())),
                            sdp_mline_index: init.sdp_mline_index.or(Some(0)),
                        }))
                        .await;
                }
            })
        }));
        let tx = events.clone();
        pc.on_peer_connection_state_change(Box::new(move |s| {
            let tx = tx.clone();
            Box::pin(async move {
                if matches!(
                    s,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    let _ = tx.send(TransportEvent::Closed).await;
                }
            })
        }));
        Ok(Self {
            pc,
            dc: Arc::default(),
            drained: Arc::default(),
        })
    }

    /// Caller side: a peer connection with one reliable, ordered data channel, and its offer.
    pub async fn offer(
        cfg: &IceConfig,
        events: mpsc::Sender<TransportEvent>,
    ) -> Result<(Self, String), TransportError> {
        let t = Self::new(cfg, &events).await?;
        let init = RTCDataChannelInit {
            ordered: Some(true),
            ..Default::default()
        };
        let dc = t.pc.create_data_channel("chat", Some(init)).await?;
        wire_channel(&dc, &events);
        *t.dc.lock().await = Some(dc);
        let offer = t.pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        t.pc.set_local_description(offer).await?;
        Ok((t, sdp))
    }

    /// Callee side: takes the caller's offer, returns the answer.
    pub async fn answer(
        cfg: &IceConfig,
        offer_sdp: String,
        events: mpsc::Sender<TransportEvent>,
    ) -> Result<(Self, String), TransportError> {
        let t = Self::new(cfg, &events).await?;
        let slot = t.dc.clone();
        let tx = events.clone();
        t.pc.on_data_channel(Box::new(move |dc: Arc<RTCDataChannel>| {
            let slot = slot.clone();
            let tx = tx.clone();
            Box::pin(async move {
                let mut guard = slot.lock().await;
                if guard.is_some() {
                    return; // One channel per session; ignore extras.
                }
                wire_channel(&dc, &tx);
                *guard = Some(dc);
            })
        }));
        t.pc.set_remote_description(RTCSessionDescription::offer(offer_sdp)?)
            .await?;
        let answer = t.pc.create_answer(None).await?;
        let sdp = answer.sdp.clone();
        t.pc.set_local_description(answer).await?;
        Ok((t, sdp))
    }

    /// A sender for attachment chunks, once the channel exists.
    pub async fn bulk(&self) -> Option<BulkSender> {
        let dc = self.dc.lock().await.clone()?;
        dc.set_buffered_amount_low_threshold(BULK_LOW_WATER).await;
        let drained = self.drained.clone();
        dc.on_buffered_amount_low(Box::new(move || {
            drained.notify_waiters();
            Box::pin(async {})
        }))
        .await;
        Some(BulkSender {
            dc,
            drained: self.drained.clone(),
        })
    }

    /// The kinds of the local and remote candidates ICE chose ("host", "srflx", "prflx",
    /// "relay"), once connected.
    pub async fn route(&self) -> Option<(String, String)> {
        self.route_when_selected(std::time::Duration::ZERO).await
    }

    /// Caller side of an ICE restart: fresh ICE credentials and a new gathering (new candidates
    /// arrive as events); DTLS and the data channel stay. Returns the offer for the peer.
    pub async fn restart_offer(&self) -> Result<String, TransportError> {
        let offer = self
            .pc
            .create_offer(Some(RTCOfferOptions {
                ice_restart: true,
                ..Default::default()
            }))
            .await?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(offer).await?;
        Ok(sdp)
    }

    /// Whether ICE has a working pair right now.
    pub fn ice_connected(&self) -> bool {
        matches!(
            self.pc.ice_connection_state(),
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        )
    }

    /// Where a setup that has not opened its channel stands, in words for a failure reason: the
    /// first step that has not happened yet.
    pub async fn setup_stage(&self) -> String {
        if self.pc.remote_description().await.is_none() {
            return "the peer's answer never arrived".into();
        }
        if !self.ice_connected() {
            return "no network path to the peer was found".into();
        }
        if self.pc.connection_state() == RTCPeerConnectionState::Connected {
            return "the secure connection is up, but the chat channel did not open".into();
        }
        // Which side of the handshake stalled, and over which pair: the words a report needs.
        let dtls = self.pc.sctp().transport();
        let pair = match dtls.ice_transport().get_selected_candidate_pair().await {
            Some(p) => format!("{}↔{}", p.local.typ, p.remote.typ),
            None => "no pair selected yet".into(),
        };
        let step = match dtls.state() {
            RTCDtlsTransportState::New => "the secure handshake never started",
            RTCDtlsTransportState::Connected => {
                "the secure handshake finished, but the connection did not come up"
            }
            _ => "the secure handshake did not finish",
        };
        format!("a network path was found ({pair}), but {step}")
    }

    /// Callee side of an ICE restart: takes the caller's restart offer, returns the answer.
    pub async fn accept_restart(&self, offer_sdp: String) -> Result<String, TransportError> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer_sdp)?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(answer).await?;
        Ok(sdp)
    }

    /// The route once ICE has selected a pair: after a restart, frames flow through the best
    /// pair under test before one is selected. Gives up (None) after `within`.
    pub fn route_when_selected(
        &self,
        within: std::time::Duration,
    ) -> impl std::future::Future<Output = Option<(String, String)>> + Send + 'static {
        let pc = self.pc.clone();
        async move {
            let deadline = tokio::time::Instant::now() + within;
            loop {
                let dtls = pc.sctp().transport();
                if let Some(pair) = dtls.ice_transport().get_selected_candidate_pair().await {
                    return Some((pair.local.typ.to_string(), pair.remote.typ.to_string()));
                }
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    pub async fn accept_answer(&self, sdp: String) -> Result<(), TransportError> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        Ok(())
    }

    pub async fn add_candidate(&self, c: Candidate) -> Result<(), TransportError> {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
                username_fragment: None,
            })
            .await?;
        Ok(())
    }

    pub async fn send(&self, frame: Bytes) -> Result<(), TransportError> {
        let dc = self.dc.lock().await.clone();
        match dc {
            Some(dc) => {
                dc.send(&frame).await?;
                Ok(())
            }
            None => Err(TransportError("data channel not open".into())),
        }
    }

    /// Closes after what was sent (a `bye`) has left, waiting a moment at most.
    pub async fn close(&self) {
        if let Some(dc) = self.dc.lock().await.take() {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(250);
            while dc.buffered_amount().await > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let _ = dc.close().await;
        }
        let _ = self.pc.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_candidates_name_the_data_channels_m_line() {
        let (tx, mut rx) = mpsc::channel(64);
        let (_t, sdp) = Transport::offer(&IceConfig::default(), tx).await.unwrap();
        let mids: Vec<&str> = sdp
            .lines()
            .filter_map(|l| l.strip_prefix("a=mid:"))
            .collect();
        assert_eq!(mids, [DATA_MID], "one m-line: {sdp}");
        let first = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await {
                Ok(Some(TransportEvent::LocalCandidate(c))) => break c,
                Ok(Some(_)) => continue,
                other => panic!("no candidate: {other:?}"),
            }
        };
        assert_eq!(first.sdp_mid.as_deref(), Some(DATA_MID));
        assert_eq!(first.sdp_mline_index, Some(0));
        assert!(
            first.candidate.starts_with("candidate:"),
            "{}",
            first.candidate
        );
    }
}
