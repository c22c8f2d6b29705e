//! The WebSocket to the signaling server: challenge-response authentication, requests matched to
//! answers, events out to the engine, one-time keys, and reconnection with jittered backoff.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anonchat_proto::wire::{
    ClientEnvelope, ClientMsg, ErrorCode, ServerEnvelope, ServerMsg, SignedOtk,
};
use anonchat_proto::{limits, Sig64, Username};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::error::SignalingError;
use crate::ClientError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const KEEPALIVE: Duration = Duration::from_secs(20);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// One-time keys kept on the server while connected.
pub const OTK_TARGET: usize = 20;

/// What the connection needs from the engine.
pub trait Host: Send + Sync + 'static {
    /// `(username, device_id, signature over auth bytes)`.
    fn sign_auth(
        &self,
        nonce: &[u8; 32],
        origin: &str,
    ) -> Result<(Username, String, Sig64), ClientError>;
    /// Fresh signed one-time keys, marked published.
    fn fresh_otks(&self, count: usize) -> Vec<SignedOtk>;
    fn on_event(&self, msg: ServerMsg);
    fn on_connected(&self);
    fn on_disconnected(&self, retry_in: Duration);
}

type Answer = Result<ServerMsg, (ErrorCode, Option<String>)>;

/// Runs on the connection task as the answer arrives, before any later message is handled.
pub type OnAnswer = Box<dyn FnOnce(&ServerMsg) + Send>;

struct Pending {
    tx: oneshot::Sender<Answer>,
    first: Option<OnAnswer>,
}

#[derive(Default)]
pub struct Signaling {
    out: Mutex<Option<mpsc::Sender<String>>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Signaling {
    pub fn is_connected(&self) -> bool {
        lock(&self.out).is_some()
    }

    fn queue(&self, env: &ClientEnvelope) -> Result<(), ClientError> {
        let text = serde_json::to_string(env)
            .map_err(|e| ClientError::Signaling(SignalingError::Refused(e.to_string())))?;
        let out = lock(&self.out)
            .clone()
            .ok_or(ClientError::Signaling(SignalingError::NotConnected))?;
        out.try_send(text)
            .map_err(|_| ClientError::Signaling(SignalingError::NotConnected))
    }

    /// Sends without waiting for the answer (relay traffic).
    pub fn send(&self, msg: ClientMsg) -> Result<(), ClientError> {
        self.queue(&ClientEnvelope::new(None, msg))
    }

    pub async fn request(&self, msg: ClientMsg) -> Result<ServerMsg, ClientError> {
        self.request_then(msg, None).await
    }

    /// Like `request`, and `first` sees a successful answer in order with the events around it: state
    /// that later events depend on (a ring's id) is in place before they are handled.
    pub async fn request_then(
        &self,
        msg: ClientMsg,
        first: Option<OnAnswer>,
    ) -> Result<ServerMsg, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, Pending { tx, first });
        if let Err(e) = self.queue(&ClientEnvelope::new(Some(id), msg)) {
            lock(&self.pending).remove(&id);
            return Err(e);
        }
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, rx).await;
        lock(&self.pending).remove(&id);
        match answer {
            Ok(Ok(Ok(msg))) => Ok(msg),
            Ok(Ok(Err((ErrorCode::NotFound, _)))) => {
                Err(ClientError::Signaling(SignalingError::NotFound))
            }
            Ok(Ok(Err((ErrorCode::PowRequired, _)))) => {
                Err(ClientError::Signaling(SignalingError::PowRequired))
            }
            Ok(Ok(Err((ErrorCode::RateLimited, detail)))) => Err(ClientError::Signaling(
                SignalingError::RateLimited(detail.unwrap_or_else(|| "rate limited".into())),
            )),
            Ok(Ok(Err((code, detail)))) => Err(ClientError::Signaling(SignalingError::Refused(
                detail.unwrap_or_else(|| format!("{code:?}").to_lowercase()),
            ))),
            _ => Err(ClientError::Signaling(SignalingError::NotConnected)),
        }
    }

    /// Keeps a connection up until `stop` fires: connect, authenticate, serve, back off, retry.
    pub async fn run(
        self: Arc<Self>,
        origin: String,
        tls: Arc<rustls::ClientConfig>,
        host: Arc<dyn Host>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let ws_url = ws_url(&origin);
        let mut backoff = BACKOFF_MIN;
        loop {
            let authed = tokio::select! {
                r = self.connect_once(&ws_url, &origin, &tls, host.as_ref()) => r,
                _ = stop.cancelled() => break,
            };
            *lock(&self.out) = None;
            lock(&self.pending).clear();
            if authed {
                backoff = BACKOFF_MIN;
            }
            let jittered = backoff.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
            host.on_disconnected(jittered);
            tokio::select! {
                _ = tokio::time::sleep(jittered) => {},
                _ = stop.cancelled() => break,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        *lock(&self.out) = None;
    }

    /// One connection's life. Returns whether it got as far as being authenticated.
    async fn connect_once(
        &self,
        ws_url: &str,
        origin: &str,
        tls: &Arc<rustls::ClientConfig>,
        host: &dyn Host,
    ) -> bool {
        let ws = match open_ws(ws_url, tls).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "could not connect to the server");
                return false;
            }
        };
        let (mut sink, mut stream) = ws.split();

        // Challenge → signed answer → auth_ok.
        let nonce = match next_msg(&mut stream).await {
            Some(ServerMsg::Challenge { nonce, .. }) => nonce,
            _ => return false,
        };
        let Ok((username, device_id, sig)) = host.sign_auth(&nonce.0, origin) else {
            return false;
        };
        let auth = ClientEnvelope::new(
            None,
            ClientMsg::Auth {
                username,
                device_id,
                sig,
            },
        );
        let Ok(text) = serde_json::to_string(&auth) else {
            return false;
        };
        if sink.send(Message::text(text)).await.is_err() {
            return false;
        }
        match next_msg(&mut stream).await {
            Some(ServerMsg::AuthOk { .. }) => {}
            Some(revoked @ ServerMsg::DeviceRevoked { .. }) => {
                host.on_event(revoked);
                return false;
            }
            Some(ServerMsg::Error { detail, .. }) => {
                tracing::warn!(
                    reason = detail.as_deref().unwrap_or(""),
                    "server refused authentication"
                );
                return false;
            }
            _ => return false,
        }

        let (tx, mut rx) = mpsc::channel::<String>(256);
        *lock(&self.out) = Some(tx);
        let keys = host.fresh_otks(OTK_TARGET);
        let _ = self.send(ClientMsg::UploadOtks { keys });
        host.on_connected();

        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.tick().await;
        loop {
            tokio::select! {
                out = rx.recv() => {
                    let Some(text) = out else { break };
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                incoming = stream.next() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                        _ => break,
                    };
                    let env = match ServerEnvelope::parse(text.as_str()) {
                        Ok(env) => env,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring a malformed server message");
                            continue;
                        }
                    };
                    self.dispatch(env, host);
                }
                _ = keepalive.tick() => {
                    let _ = self.send(ClientMsg::Ping);
                }
            }
        }
        let _ = sink.close().await;
        true
    }

    fn dispatch(&self, env: ServerEnvelope, host: &dyn Host) {
        if let Some(re) = env.re {
            let pending = lock(&self.pending).remove(&re);
            if let Some(Pending { tx, first }) = pending {
                let answer = match env.msg {
                    ServerMsg::Error { code, detail } => Err((code, detail)),
                    other => Ok(other),
                };
                if let (Ok(msg), Some(first)) = (&answer, first) {
                    first(msg);
                }
                let _ = tx.send(answer);
            }
            return;
        }
        match env.msg {
            // Answers to fire-and-forget sends.
            ServerMsg::Ok | ServerMsg::Pong => {}
            ServerMsg::Error { detail, .. } => {
                tracing::warn!(
                    reason = detail.as_deref().unwrap_or(""),
                    "server reported an error"
                );
            }
            ServerMsg::OtkLow { count } => {
                let want = OTK_TARGET.saturating_sub(count as usize);
                let _ = self.send(ClientMsg::UploadOtks {
                    keys: host.fresh_otks(want),
                });
            }
            other => host.on_event(other),
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_ws(
    ws_url: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut cfg = WebSocketConfig::default();
    cfg.max_message_size = Some(limits::MAX_WS_MESSAGE);
    cfg.max_frame_size = Some(limits::MAX_WS_MESSAGE);
    let connector = tokio_tungstenite::Connector::Rustls(tls.clone());
    tokio_tungstenite::connect_async_tls_with_config(ws_url, Some(cfg), true, Some(connector))
        .await
        .map(|(ws, _)| ws)
}

async fn next_msg<S>(stream: &mut S) -> Option<ServerMsg>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    next_msg_within(stream, REQUEST_TIMEOUT).await
}

async fn next_msg_within<S>(stream: &mut S, within: Duration) -> Option<ServerMsg>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()??
            .ok()?;
        match next {
            Message::Text(t) => return ServerEnvelope::parse(t.as_str()).ok().map(|e| e.msg),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            _ => return None,
        }
    }
}

fn refused(msg: Option<ServerMsg>) -> ClientError {
    match msg {
        Some(ServerMsg::Error {
            code: ErrorCode::NotFound,
            detail,
        }) => detail
            .map(|d| ClientError::Signaling(SignalingError::Refused(d)))
            .unwrap_or(ClientError::Signaling(SignalingError::NotFound)),
        Some(ServerMsg::Error { code, detail }) => ClientError::Signaling(SignalingError::Refused(
            detail.unwrap_or_else(|| format!("{code:?}").to_lowercase()),
        )),
        Some(_) => ClientError::Signaling(SignalingError::UnexpectedAnswer),
        None => ClientError::Signaling(SignalingError::NotConnected),
    }
}

/// A new device's one socket before it has an identity (DESIGN §7): challenge → `enroll_join`
/// (built by `join` from the nonce and origin) → `enroll_pending`, which `on_pending` checks → the
/// old device's answer, `enrolled`. Waits up to the token's life for the user on the old device.
pub async fn enroll(
    origin: &str,
    tls: &Arc<rustls::ClientConfig>,
    join: impl FnOnce(&[u8; 32], &str) -> ClientMsg,
    on_pending: impl FnOnce(ServerMsg) -> Result<(), ClientError>,
) -> Result<ServerMsg, ClientError> {
    let ws = open_ws(&ws_url(origin), tls)
        .await
        .map_err(|e| ClientError::Signaling(SignalingError::Http(e.to_string())))?;
    let (mut sink, mut stream) = ws.split();
    let Some(ServerMsg::Challenge { nonce, .. }) = next_msg(&mut stream).await else {
        return Err(ClientError::Signaling(SignalingError::Refused(
            "no challenge from the server".into(),
        )));
    };
    let text = serde_json::to_string(&ClientEnvelope::new(None, join(&nonce.0, origin)))
        .map_err(|e| ClientError::Signaling(SignalingError::Refused(e.to_string())))?;
    sink.send(Message::text(text))
        .await
        .map_err(|_| ClientError::Signaling(SignalingError::NotConnected))?;
    match next_msg(&mut stream).await {
        Some(pending @ ServerMsg::EnrollPending { .. }) => on_pending(pending)?,
        other => return Err(refused(other)),
    }
    let wait = Duration::from_secs(anonchat_proto::enroll::TOKEN_TTL_SECS + 30);
    let answer = next_msg_within(&mut stream, wait).await;
    let _ = sink.close().await;
    match answer {
        Some(done @ ServerMsg::Enrolled { .. }) => Ok(done),
        other => Err(refused(other)),
    }
}

/// `http(s)://host:port` → `ws(s)://host:port/v1/ws`.
pub fn ws_url(origin: &str) -> String {
    let rest = origin
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| origin.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| origin.to_string());
    format!("{rest}/v1/ws")
}
