//! One WebSocket per device: challenge, authentication, then requests in and events out through a
//! bounded queue.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use anonchat_proto::signing::{auth_bytes, verify};
use anonchat_proto::wire::{ClientEnvelope, ClientMsg, ErrorCode, ServerEnvelope, ServerMsg};
use anonchat_proto::{limits, Key32};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Sink, Stream};
use rand::RngCore;

use crate::app::App;
use crate::clock::Now;
use crate::hub::{Join, Session};
use crate::limits::Slot;
use crate::metrics::Code;
use anonchat_proto::enroll::TOKEN_TTL_SECS;

/// A device must answer the challenge within this time.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing socket may take to accept its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// What each socket reads into at a time.
const READ_BUFFER: usize = 1024;
/// A socket that sends nothing (not even a ping) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub async fn upgrade(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    State(app): State<Arc<App>>,
) -> Response {
    let ip = app.client_key(peer, &headers);
    let Some(place) = app.websockets.acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ServerEnvelope::error(
                None,
                ErrorCode::RateLimited,
                Some("the server is full; try again later".into()),
            )),
        )
            .into_response();
    };
    let Some(slot) = app.per_ip.acquire(ip) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(ServerEnvelope::error(
                None,
                ErrorCode::RateLimited,
                Some("too many connections from this address".into()),
            )),
        )
            .into_response();
    };
    // A 1 KiB read buffer, not tungstenite's 128 KiB: an idle socket then costs a few KiB. A
    // larger frame still arrives whole (tungstenite reserves a frame's length once its header is in).
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(limits::MAX_WS_MESSAGE)
        .max_frame_size(limits::MAX_WS_MESSAGE)
        .on_upgrade(move |socket| serve(socket, app, (place, slot), ip))
}

fn text(env: &ServerEnvelope) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(env).unwrap_or_default(),
    ))
}

/// Counts a gauge up while held.
struct GaugeUp<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> GaugeUp<'a> {
    fn new(g: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        GaugeUp(g)
    }
}

impl Drop for GaugeUp<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve(
    mut socket: WebSocket,
    app: Arc<App>,
    _places: (crate::capacity::Held, Slot),
    ip: std::net::IpAddr,
) {
    let _open = GaugeUp::new(&app.hub.metrics().sockets);
    // The long-lived task holds only this loop's state: the big futures (authentication, the hub's
    // database calls) are boxed while they run instead of sizing every idle socket's task (issue 14).
    let Some((username, cert)) = Box::pin(authenticate(&mut socket, &app, ip)).await else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let attached = Box::pin(
        app.hub
            .attach(username, cert, ip, &app.shutdown, Now::read()),
    )
    .await;
    let _device = GaugeUp::new(&app.hub.metrics().devices);
    let session = attached.session.clone();
    let kill = attached.kill.clone();
    let replies = Replies {
        tx: attached.tx.clone(),
        kill: kill.clone(),
    };
    let _ = socket
        .send(text(&ServerEnvelope::new(
            None,
            ServerMsg::AuthOk { otk_count: 0 },
        )))
        .await;
    tracing::debug!("device connected");

    let mut rx = attached.rx;
    let pace = crate::pace::Pace::new(app.pace);
    // One task reads requests and writes events: a second task per socket would cost more than
    // the 8 KiB an idle connection may take (issue 14). A request in flight (held to the floor,
    // waiting on the store or on the pace) is polled beside the writes, and the socket is not read
    // until it is answered: one request at a time, and TCP pushes back on a client that floods.
    // A write the client does not take (it stopped reading) leaves the rest running too, so its
    // answers fill the queue and the next event for it finds the queue full (`hub::Conn::push`).
    let mut request: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = None;
    let mut flushing = false;
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(idle);
    loop {
        let reading = request.is_none();
        tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            // The socket's two directions in one future, as both need it mutably.
            io = std::future::poll_fn(|cx| socket_io(&mut socket, cx, flushing, reading)) => match io {
                Io::Flushed(Ok(())) => flushing = false,
                Io::Flushed(Err(_)) | Io::Frame(None | Some(Err(_))) => break, // Closed, or a protocol error (including an oversized frame).
                Io::Frame(Some(Ok(msg))) => {
                    let arrived = Now::read();
                    idle.as_mut().reset(tokio::time::Instant::from_std(arrived.at) + IDLE_TIMEOUT);
                    let (app, session, replies, pace) = (&*app, &session, &replies, &pace);
                    request = match msg {
                        Message::Text(t) => Some(Box::pin(async move {
                            pace.admit(t.len()).await;
                            on_text(app, session, replies, t.as_str(), arrived).await
                        })),
                        Message::Binary(b) => Some(Box::pin(async move {
                            pace.admit(b.len()).await;
                            replies
                                .send(ServerEnvelope::error(
                                    None,
                                    ErrorCode::BadRequest,
                                    Some("text frames only".into()),
                                ))
                                .await
                        })),
                        Message::Close(_) => break,
                        Message::Ping(_) | Message::Pong(_) => Some(Box::pin(pace.admit(0))),
                    };
                }
            },
            next = rx.recv(), if !flushing => {
                let Some(t) = next else { break };
                // The last write was flushed, so there is room for this one at once.
                let ready = std::future::poll_fn(|cx| Pin::new(&mut socket).poll_ready(cx)).await;
                let msg = Message::Text(Utf8Bytes::from(t.as_ref()));
                if ready.is_err() || Pin::new(&mut socket).start_send(msg).is_err() {
                    break;
                }
                flushing = true;
            }
            () = async { if let Some(r) = request.as_mut() { r.await } }, if request.is_some() => {
                request = None;
                idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
            }
            () = &mut idle => break, // Nothing, not even a ping, for IDLE_TIMEOUT.
        }
    }
    kill.cancel();
    // A request in flight finishes (its answer is dropped: the socket is going), so no hub
    // operation is cut off half done.
    if let Some(r) = request.take() {
        r.await;
    }
    if let Some(last) = attached.farewell.get() {
        let _ = tokio::time::timeout(
            CLOSE_TIMEOUT,
            socket.send(Message::Text(Utf8Bytes::from(last.as_ref()))),
        )
        .await;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(None))).await;
    Box::pin(app.hub.detach(&session, Now::read())).await;
    tracing::debug!("device disconnected");
}

/// What the socket did: a write flushed, or a frame came.
enum Io {
    Flushed(Result<(), axum::Error>),
    Frame(Option<Result<Message, axum::Error>>),
}

/// Polls the socket's pending flush (if `flushing`) and its next frame (if `reading`).
fn socket_io(
    socket: &mut WebSocket,
    cx: &mut std::task::Context<'_>,
    flushing: bool,
    reading: bool,
) -> Poll<Io> {
    if flushing {
        if let Poll::Ready(r) = Pin::new(&mut *socket).poll_flush(cx) {
            return Poll::Ready(Io::Flushed(r));
        }
    }
    if reading {
        if let Poll::Ready(f) = Pin::new(&mut *socket).poll_next(cx) {
            return Poll::Ready(Io::Frame(f));
        }
    }
    Poll::Pending
}

async fn on_text(app: &App, session: &Session, replies: &Replies, text: &str, arrived: Now) {
    let env = match ClientEnvelope::parse(text) {
        Ok(env) => env,
        Err(e) => {
            // Echo the request id when the message is at least JSON with one, so the client can tell
            // which request failed.
            let re = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id")?.as_u64());
            return replies
                .send(ServerEnvelope::error(
                    re,
                    ErrorCode::BadRequest,
                    Some(e.to_string()),
                ))
                .await;
        }
    };
    let gated = crate::hub::is_gated(&env.msg);
    let metrics = app.hub.metrics();
    let answer = match app.hub.handle(session, env.msg, arrived).await {
        Ok(msg) => {
            metrics.answered(Code::ok, gated, arrived.at.elapsed());
            ServerEnvelope::new(env.id, msg)
        }
        Err(refusal) => {
            if matches!(refusal, crate::hub::Refusal::Store(_)) {
                metrics.store_errors.inc();
            }
            metrics.answered(refusal.code().into(), gated, arrived.at.elapsed());
            ServerEnvelope::error(env.id, refusal.code(), refusal.into_detail())
        }
    };
    replies.send(answer).await;
}

/// Answers to this socket's own requests. They wait for room in the send queue, so a client that
/// does not read its answers stops being read (TCP pushes back) instead of growing the queue; events
/// from others never wait, and a full queue disconnects (`hub::Conn::push`).
struct Replies {
    tx: tokio::sync::mpsc::Sender<std::sync::Arc<str>>,
    kill: tokio_util::sync::CancellationToken,
}

impl Replies {
    async fn send(&self, env: ServerEnvelope) {
        let Ok(text) = serde_json::to_string(&env) else {
            return;
        };
        tokio::select! {
            _ = self.tx.send(std::sync::Arc::from(text)) => {}
            _ = self.kill.cancelled() => {}
        }
    }
}

/// Challenge → signed answer. Returns the device's account and certificate, or `None` after telling
/// the client why.
async fn authenticate(
    socket: &mut WebSocket,
    app: &App,
    ip: std::net::IpAddr,
) -> Option<(anonchat_proto::Username, anonchat_proto::DeviceCert)> {
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let challenge = ServerEnvelope::new(
        None,
        ServerMsg::Challenge {
            nonce: Key32(nonce),
            origin: app.origin.clone(),
        },
    );
    socket.send(text(&challenge)).await.ok()?;
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(t) = first else { return None };
    let refuse = |detail: &str| {
        ServerEnvelope::error(None, ErrorCode::Unauthorized, Some(detail.to_string()))
    };
    let env = match ClientEnvelope::parse(t.as_str()) {
        Ok(env) => env,
        Err(e) => {
            let _ = socket
                .send(text(&ServerEnvelope::error(
                    None,
                    ErrorCode::BadRequest,
                    Some(e.to_string()),
                )))
                .await;
            return None;
        }
    };
    let (username, device_id, sig) = match env.msg {
        ClientMsg::Auth {
            username,
            device_id,
            sig,
        } => (username, device_id, sig),
        ClientMsg::EnrollJoin {
            code,
            device_id,
            dk_ed25519,
            dk_curve25519,
            caps,
            otk,
            sig,
        } => {
            let join = Join {
                code,
                device_id,
                dk_ed25519,
                dk_curve25519,
                caps,
                otk,
                sig,
            };
            enroll(socket, app, ip, &nonce, join).await;
            return None;
        }
        _ => {
            let _ = socket.send(text(&refuse("authenticate first"))).await;
            return None;
        }
    };
    let device = match app.hub.store().device(&device_id).await {
        Ok(Some(d)) if d.username == username => d,
        Ok(_) => {
            let _ = socket
                .send(text(&refuse("unknown or revoked device")))
                .await;
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "store failure during auth");
            return None;
        }
    };
    let signed = auth_bytes(&nonce, &app.origin, &username, &device_id);
    if verify(&device.dk_ed25519, &signed, &sig).is_err() {
        let _ = socket
            .send(text(&refuse("signature does not verify")))
            .await;
        return None;
    }
    if device.revoked {
        // Only the device itself (it signed the challenge) learns it was revoked, with the account
        // key's signature so it can check before it wipes itself.
        let told = match device.revocation {
            Some((ts, sig)) => {
                ServerEnvelope::new(None, ServerMsg::DeviceRevoked { device_id, ts, sig })
            }
            None => refuse("unknown or revoked device"),
        };
        let _ = socket.send(text(&told)).await;
        return None;
    }
    Some((username, device.cert))
}

/// A new device joining an enrollment (DESIGN §7): it hears whose account it joins, then waits on
/// this socket for the old device's approval (certificate and handover) or refusal, until the token
/// runs out. It leaves with that answer; it authenticates like any device afterwards.
async fn enroll(
    socket: &mut WebSocket,
    app: &App,
    ip: std::net::IpAddr,
    nonce: &[u8; 32],
    join: Join,
) {
    let joined = match app
        .hub
        .enroll_join(ip, nonce, &app.origin, join, Now::read())
        .await
    {
        Ok(j) => j,
        Err(refusal) => {
            let env = ServerEnvelope::error(None, refusal.code(), refusal.into_detail());
            let _ = socket.send(text(&env)).await;
            return;
        }
    };
    if socket
        .send(text(&ServerEnvelope::new(None, joined.pending)))
        .await
        .is_err()
    {
        app.hub.enroll_abandon(&joined.code, &joined.device_id);
        return;
    }
    let mut answer = joined.answer;
    let deadline = tokio::time::sleep(Duration::from_secs(TOKEN_TTL_SECS));
    tokio::pin!(deadline);
    let outcome = loop {
        tokio::select! {
            a = &mut answer => break a.ok(),
            m = socket.recv() => match m {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => break None, // The new device gave up, or sent something it should not.
            },
            _ = &mut deadline => break None,
            _ = app.shutdown.cancelled() => break None,
        }
    };
    app.hub.enroll_abandon(&joined.code, &joined.device_id);
    let last = match outcome {
        Some(msg) => ServerEnvelope::new(None, msg),
        None => ServerEnvelope::error(
            None,
            ErrorCode::NotFound,
            Some(
                "the enrollment was declined or aborted on the other device, or it ran out".into(),
            ),
        ),
    };
    let _ = socket.send(text(&last)).await;
}
