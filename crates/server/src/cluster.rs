//! The Redis hub backend: what many instances share so that a device on one reaches a device on
//! another. Each instance keeps its own sockets (and the rings its devices started) in RAM; Redis
//! holds who is online where, "recently active", spent stamps and the abuse counters, every key
//! with a TTL, and carries frames between instances over sharded pub/sub: one channel per device,
//! one per account (presence pushes, friend events, a device coming online) and one per instance
//! (operations on the rings it owns, and answers). Keys and channels are hash-tagged so that what
//! one operation touches sits in one cluster slot; accounts appear only as keyed hashes (P2).
//!
//! A dead instance's entries expire by themselves: presence is refreshed by the owning instance
//! and read only while fresh, and an instance's "alive" key lapses when it stops refreshing it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{PushKind, Value};
use tokio::sync::{mpsc, oneshot};

mod frames;
mod keys;
mod link;
mod passes;
mod reaper;
pub mod requests;
mod shared;

pub use frames::{Frame, JoinRequest, RingOp, RingTag, Stage, WireResult};
pub use keys::Keys;
pub use link::Link;
pub use passes::{pass_holders, pass_join, pass_leave, refresh_passes};
pub use reaper::{listed, reap, registered, unlisted};

/// How long a request to another instance may take before it counts as gone.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Frames waiting to be published. A flood beyond this is dropped (and counted), not buffered.
const OUTBOX: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(
        "redis persists to disk ({0}); rings and presence must stay in RAM (P2): run it with \
         `save \"\"` and `appendonly no`, or pass --redis-allow-persistence"
    )]
    Persists(String),
    #[error("redis {0} is too old: sharded pub/sub needs 7.0 or later")]
    TooOld(String),
    #[error("subscribing to a channel failed")]
    Subscribe,
}

/// What goes out, in order: subscriptions and frames share one queue so that a device's
/// channel is subscribed before anything announces it.
enum Out {
    Publish(String, Vec<u8>),
    /// Subscribe, and say whether it worked.
    Subscribe(String, oneshot::Sender<bool>),
    /// Unsubscribe, unless the channel is wanted again by then.
    Unsubscribe(String),
}

pub struct Cluster {
    /// This instance's random id: the name of its channel and of the rings it owns.
    id: String,
    keys: Keys,
    conn: Link,
    outbox: mpsc::Sender<Out>,
    /// The channels this instance wants to hear. Subscriptions go through the outbox in order
    /// and an unsubscription is skipped if its channel is wanted again by the time it runs, so a
    /// device that leaves and comes straight back keeps its channel.
    wanted: Arc<Mutex<HashSet<String>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<WireResult>>>,
    next_req: AtomicU64,
    presence_ttl: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

/// A frame that arrived for this instance, with the channel it came on.
pub struct Incoming {
    pub channel: String,
    pub frame: Frame,
}

impl Cluster {
    /// Connects (two connections: commands, and subscriptions with RESP3 pushes), checks the
    /// server, and starts the publisher. Frames for this instance arrive on the returned receiver.
    pub async fn connect(
        shape: &Shape,
        secret: &[u8; 32],
        allow_persistence: bool,
        presence_ttl: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Incoming>), ClusterError> {
        let timeouts = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        // Every node is checked (a cluster's CONFIG answers come from one node at a time): the
        // seeds, and on a cluster every other node the first seed names — a node that persists
        // but was not given as a seed would write rings and presence to its disk all the same.
        let mut checked = HashSet::new();
        for url in shape.urls() {
            let client = open(url)?;
            warn_if_open(client.get_connection_info());
            let mut conn = client
                .get_connection_manager_with_config(timeouts.clone())
                .await?;
            shared::check_server(&mut conn, allow_persistence).await?;
            checked.insert(node_of(client.get_connection_info().addr()));
        }
        if let (Shape::Cluster(_), Some(seed)) = (shape, shape.urls().first()) {
            let seed = open(seed)?;
            let mut conn = seed
                .get_connection_manager_with_config(timeouts.clone())
                .await?;
            for (host, port) in shared::cluster_nodes(&mut conn).await? {
                if !checked.insert((host.clone(), port)) {
                    continue;
                }
                let Some(info) = at_node(seed.get_connection_info(), host, port) else {
                    continue;
                };
                let mut conn = redis::Client::open(info)?
                    .get_connection_manager_with_config(timeouts.clone())
                    .await?;
                shared::check_server(&mut conn, allow_persistence).await?;
            }
        }
        let (push_tx, mut push_rx) = mpsc::unbounded_channel();
        let (conn, subs) = match shape {
            Shape::Single(url) => {
                let client = open(url)?;
                let conn = client
                    .get_connection_manager_with_config(timeouts.clone())
                    .await?;
                let subs = client
                    .get_connection_manager_with_config(
                        timeouts
                            .set_push_sender(push_tx)
                            .set_automatic_resubscription(),
                    )
                    .await?;
                (Link::One(conn), Link::One(subs))
            }
            Shape::Cluster(urls) => {
                let builder = || {
                    redis::cluster::ClusterClient::builder(urls.clone())
                        .use_protocol(redis::ProtocolVersion::RESP3)
                        .connection_timeout(Duration::from_secs(5))
                        .response_timeout(Duration::from_secs(5))
                        .tcp_settings(no_delay())
                };
                let conn = builder().build()?.get_async_connection().await?;
                let subs = builder()
                    .push_sender(push_tx)
                    .build()?
                    .get_async_connection()
                    .await?;
                (Link::Many(conn), Link::Many(subs))
            }
        };
        let (outbox, out_rx) = mpsc::channel(OUTBOX);
        let wanted = Arc::new(Mutex::new(HashSet::new()));
        let cluster = Arc::new(Self {
            id: crate::hub::new_id()[..12].to_string(),
            keys: Keys::new(secret),
            conn: conn.clone(),
            outbox,
            wanted: wanted.clone(),
            pending: Mutex::new(HashMap::new()),
            next_req: AtomicU64::new(1),
            presence_ttl: presence_ttl.max(Duration::from_secs(3)),
            metrics,
        });
        tokio::spawn(publisher(conn, subs, wanted, out_rx));
        let own = cluster.keys.instance_channel(&cluster.id);
        cluster.subscribe(&own).await?;
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let me = Arc::downgrade(&cluster);
        tokio::spawn(async move {
            while let Some(push) = push_rx.recv().await {
                let Some(cluster) = me.upgrade() else { break };
                if let Some(incoming) = cluster.decode(push) {
                    if in_tx.send(incoming).is_err() {
                        break;
                    }
                }
            }
        });
        Ok((cluster, in_rx))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn presence_ttl(&self) -> Duration {
        self.presence_ttl
    }

    /// How often this instance refreshes its presence entries and "alive" key: three times per
    /// TTL, so one late refresh does not drop anyone.
    pub fn refresh_every(&self) -> Duration {
        self.presence_ttl / 3
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for commands (cheap to clone; reconnects by itself).
    pub(crate) fn conn(&self) -> Link {
        self.conn.clone()
    }

    /// A pushed message: a frame on one of our channels, or a replied request.
    fn decode(&self, push: redis::PushInfo) -> Option<Incoming> {
        if push.kind != PushKind::SMessage {
            return None;
        }
        let mut data = push.data.into_iter();
        let channel: String = redis::from_redis_value(data.next()?).ok()?;
        let payload: Vec<u8> = match data.next()? {
            Value::BulkString(b) => b,
            _ => return None,
        };
        let frame: Frame = match serde_json::from_slice(&payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable frame from another instance");
                return None;
            }
        };
        if let Frame::Reply { req, result } = frame {
            let waiter = self.lock_pending().remove(&req);
            if let Some(w) = waiter {
                let _ = w.send(result);
            }
            return None;
        }
        Some(Incoming { channel, frame })
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<WireResult>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_wanted(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to a channel; returns once Redis confirmed it.
    pub async fn subscribe(&self, channel: &str) -> Result<(), ClusterError> {
        self.lock_wanted().insert(channel.to_string());
        let (tx, rx) = oneshot::channel();
        let started = std::time::Instant::now();
        self.queue(Out::Subscribe(channel.to_string(), tx));
        let ok = rx.await.unwrap_or(false);
        self.observe(started, ok);
        ok.then_some(()).ok_or(ClusterError::Subscribe)
    }

    /// Drops a subscription, after every frame queued before it has gone out.
    pub fn unsubscribe(&self, channel: String) {
        self.lock_wanted().remove(&channel);
        self.queue(Out::Unsubscribe(channel));
    }

    /// Sends a frame to a channel, without waiting (it keeps its place behind earlier frames).
    pub fn publish(&self, channel: String, frame: &Frame) {
        match serde_json::to_vec(frame) {
            Ok(payload) => self.queue(Out::Publish(channel, payload)),
            Err(e) => tracing::error!(error = %e, "a frame that does not encode"),
        }
    }

    fn queue(&self, out: Out) {
        if self.outbox.try_send(out).is_err() {
            self.metrics.redis_errors.inc();
            tracing::warn!("the outbox to redis is full; a frame was dropped");
        }
    }

    /// [`Cluster::publish`] for a frame that must not be lost — a `Kill` that cuts off a revoked
    /// or deleted device, or an older socket of one that attached elsewhere: with the outbox full
    /// it waits for room (off the caller's task) instead of being dropped.
    pub fn publish_surely(&self, channel: String, frame: &Frame) {
        let payload = match serde_json::to_vec(frame) {
            Ok(p) => p,
            Err(e) => return tracing::error!(error = %e, "a frame that does not encode"),
        };
        match self.outbox.try_send(Out::Publish(channel, payload)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(out)) => {
                self.metrics.redis_errors.inc();
                tracing::warn!("the outbox to redis is full; a kill waits for room");
                let outbox = self.outbox.clone();
                tokio::spawn(async move {
                    let _ = outbox.send(out).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Sends a request to another instance's channel and waits for its answer. `frame` builds
    /// the request from its number and this instance's id.
    pub async fn call(
        &self,
        instance: &str,
        frame: impl FnOnce(u64, String) -> Frame,
    ) -> WireResult {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(req, tx);
        self.publish(
            self.keys.instance_channel(instance),
            &frame(req, self.id.clone()),
        );
        let answer = tokio::time::timeout(CALL_TIMEOUT, rx).await;
        self.lock_pending().remove(&req);
        match answer {
            Ok(Ok(result)) => result,
            // The other instance is gone (or never was): what it held is as good as ended.
            _ => Err((anonchat_proto::wire::ErrorCode::NotFound, None)),
        }
    }

    /// A ring operation for the ring's owner.
    pub async fn ring_call(
        &self,
        owner: &str,
        ring_id: String,
        device: String,
        op: RingOp,
    ) -> WireResult {
        self.call(owner, |req, from| Frame::Ring {
            from,
            req,
            ring_id,
            device,
            op,
        })
        .await
    }

    /// Answers a request of another instance.
    pub fn reply(&self, instance: &str, req: u64, result: WireResult) {
        self.publish(
            self.keys.instance_channel(instance),
            &Frame::Reply { req, result },
        );
    }

    /// Counts a Redis round trip in the latency histogram, and its failure.
    pub(crate) fn observe(&self, started: std::time::Instant, ok: bool) {
        self.metrics
            .redis_seconds
            .observe(started.elapsed().as_secs_f64());
        if !ok {
            self.metrics.redis_errors.inc();
        }
    }
}

/// Publishes queued frames in order, batching what has piled up; (un)subscribes in that order.
async fn publisher(
    mut conn: Link,
    mut subs: Link,
    wanted: Arc<Mutex<HashSet<String>>>,
    mut rx: mpsc::Receiver<Out>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        // One pipeline per frame: channels sit in different slots (one round trip in all on a
        // single Redis, link.rs).
        let mut frames = Vec::new();
        for out in batch.drain(..) {
            let (subscribe, channel, done) = match out {
                Out::Publish(channel, payload) => {
                    let mut p = redis::pipe();
                    p.cmd("SPUBLISH").arg(channel).arg(payload).ignore();
                    frames.push(p);
                    continue;
                }
                Out::Subscribe(channel, done) => (true, channel, Some(done)),
                Out::Unsubscribe(channel) => {
                    let again = wanted
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains(&channel);
                    if again {
                        continue;
                    }
                    (false, channel, None)
                }
            };
            // Subscriptions live on their own connection; what was queued before goes first.
            flush(&mut frames, &mut conn).await;
            let r = match subscribe {
                true => subs.ssubscribe(&channel).await,
                false => subs.sunsubscribe(&channel).await,
            };
            if let Some(done) = done {
                let _ = done.send(r.is_ok());
            }
        }
        flush(&mut frames, &mut conn).await;
    }
}

async fn flush(frames: &mut Vec<redis::Pipeline>, conn: &mut Link) {
    if frames.is_empty() {
        return;
    }
    if let Err(e) = conn.run_groups(std::mem::take(frames)).await {
        tracing::warn!(error = %e, "publishing to redis failed");
    }
}

/// Where Redis is: one server, or a cluster's seed nodes.
#[derive(Debug, Clone)]
pub enum Shape {
    Single(String),
    Cluster(Vec<String>),
}

impl Shape {
    /// `--redis-url` (comma-separated seed nodes with `--redis-cluster`).
    pub fn new(url: &str, cluster: bool) -> Self {
        match cluster {
            true => Shape::Cluster(url.split(',').map(|u| u.trim().to_string()).collect()),
            false => Shape::Single(url.to_string()),
        }
    }

    fn urls(&self) -> &[String] {
        match self {
            Shape::Single(u) => std::slice::from_ref(u),
            Shape::Cluster(us) => us,
        }
    }
}

/// Small commands go out at once: redis-rs leaves Nagle's algorithm on by default, which can
/// hold a small write back until the previous one is acknowledged.
fn no_delay() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

/// A client for one server, with RESP3 and `no_delay`.
/// Whoever reaches this Redis is the server (rings, presence, kills): say so at start when the
/// link is plain TCP to another machine, or logs in as no user of its own.
fn warn_if_open(info: &redis::ConnectionInfo) {
    if let redis::ConnectionAddr::Tcp(host, _) = info.addr() {
        let local = host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !local {
            tracing::warn!(
                host = %host,
                "plain redis:// to another machine: anyone on the way can read and forge rings, \
                 presence and device kills; use rediss:// and an ACL user"
            );
        }
    }
    if info.redis_settings().username().is_none() {
        tracing::warn!(
            "--redis-url names no ACL user: give the instances a Redis user of their own"
        );
    }
}

/// `(host, port)` of a TCP address (unix sockets are no cluster nodes).
fn node_of(addr: &redis::ConnectionAddr) -> (String, u16) {
    match addr {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
        _ => (String::new(), 0),
    }
}

/// The seed's connection settings (credentials, TLS, protocol) aimed at another node.
fn at_node(seed: &redis::ConnectionInfo, host: String, port: u16) -> Option<redis::ConnectionInfo> {
    let addr = match seed.addr().clone() {
        redis::ConnectionAddr::Tcp(..) => redis::ConnectionAddr::Tcp(host, port),
        redis::ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => redis::ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            tls_params,
        },
        _ => return None,
    };
    Some(seed.clone().set_addr(addr))
}

fn open(url: &str) -> redis::RedisResult<redis::Client> {
    let info = redis::IntoConnectionInfo::into_connection_info(with_resp3(url).as_str())?
        .set_tcp_settings(no_delay());
    redis::Client::open(info)
}

/// Subscriptions need RESP3 pushes; the URL may already ask for them.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}protocol=resp3")
}

pub use shared::{
    alive, allow, devices_online, enrollment_owner, failures, index_enrollment, presence,
    record_failure, refresh, set_online, spend_stamp,
};

#[cfg(test)]
mod tests {
    use super::Shape;

    #[test]
    fn a_cluster_is_its_seed_nodes_and_a_single_redis_one_url() {
        let nodes = Shape::new("redis://a:1, redis://b:2", true);
        assert_eq!(nodes.urls(), ["redis://a:1", "redis://b:2"]);
        assert!(matches!(nodes, Shape::Cluster(_)));
        // Without --redis-cluster a comma is just part of the one URL (and fails to parse there).
        let one = Shape::new("redis://a:1", false);
        assert_eq!(one.urls(), ["redis://a:1"]);
        assert!(matches!(one, Shape::Single(_)));
    }

    #[test]
    fn resp3_is_asked_for_once() {
        assert_eq!(
            super::with_resp3("redis://h:1"),
            "redis://h:1?protocol=resp3"
        );
        assert_eq!(
            super::with_resp3("rediss://h:1/0?x=1"),
            "rediss://h:1/0?x=1&protocol=resp3"
        );
        assert_eq!(
            super::with_resp3("redis://h/?protocol=resp3"),
            "redis://h/?protocol=resp3"
        );
    }
}
