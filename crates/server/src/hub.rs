//! Everything the server holds in RAM: who is connected, one-time keys, rings, pending friend
//! requests. It answers each authenticated request and routes events to devices' send queues. The
//! state and the dispatch are here; the answers live by what they touch: `conns` (sockets, presence,
//! one-time keys), `calls` (lookups, rings, relay), `friends`, `account`, `devices`, `rotation`, and
//! `gating` in front of every gated request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anonchat_proto::wire::{ClientMsg, ServerEnvelope, ServerMsg, SignedOtk};
use anonchat_proto::{DeviceCert, Key32, Username};
use rand::RngCore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::abuse::{Failures, Limits};
use crate::cluster::{Cluster, RingTag, Stage};
use crate::ring::{Outcome, Rings};
use crate::store::{AccountRow, Store};
use std::net::IpAddr;
use zeroize::Zeroizing;

mod account;
mod calls;
mod conns;
mod counters;
mod devices;
mod friends;
mod gating;
mod groups;
mod inbox;
mod joins;
mod refusal;
mod remote;
mod rotation;
#[cfg(test)]
mod tests;

pub use devices::{Join, Joined};
pub use gating::is_gated;
pub use refusal::{bad, Refusal};

/// Messages waiting for a device's socket. A device that lets this many pile up is too slow to
/// serve and is disconnected, so memory per connection stays bounded.
pub const SEND_QUEUE: usize = 128;
/// When a device has fewer one-time keys than this, it is asked for more.
pub const OTK_LOW: usize = 10;
/// How long a deleted account's name stays reserved.
pub const TOMBSTONE_DAYS: u64 = 30;
/// How long an account counts as "recently active" after it leaves.
const RECENTLY_ACTIVE: Duration = Duration::from_secs(15 * 60);

/// An authenticated socket's identity, as the reader task holds it.
#[derive(Clone)]
pub struct Session {
    pub device_id: String,
    pub username: Username,
    pub conn_id: u64,
    /// The socket's address: the key of its rate-limit bucket, never logged or stored.
    pub ip: IpAddr,
}

struct Conn {
    conn_id: u64,
    cert: DeviceCert,
    tx: mpsc::Sender<Arc<str>>,
    kill: CancellationToken,
    otks: Vec<SignedOtk>,
    /// A last message the socket's writer sends after being killed (a revocation notice).
    farewell: Arc<OnceLock<Arc<str>>>,
}

impl Conn {
    fn push(&self, env: &ServerEnvelope) {
        let Ok(text) = serde_json::to_string(env) else {
            return;
        };
        self.push_text(Arc::from(text));
    }

    fn push_text(&self, text: Arc<str>) {
        if self.tx.try_send(text).is_err() {
            // Full (slow reader) or closed: either way this socket is done.
            self.kill.cancel();
        }
    }
}

#[derive(Default)]
struct State {
    conns: HashMap<String, Conn>,
    online: HashMap<Username, HashSet<String>>,
    rings: Rings,
    friend_requests: crate::requests::FriendRequests,
    /// When accounts went offline, for "recently active" (RAM, 15 minutes).
    last_seen: HashMap<Username, Instant>,
    /// Open device enrollments by code (RAM, for the token's life).
    enrollments: HashMap<String, devices::Enrollment>,
    /// Contact stamps already spent, so one stamp pays once (RAM, pruned by age).
    spent_stamps: HashMap<[u8; 32], Instant>,
    next_conn: u64,
    metrics: Arc<crate::metrics::Metrics>,
    /// With Redis: the other instances, and what this one follows of theirs (remote.rs).
    cluster: Option<Arc<Cluster>>,
    remote: remote::Remote,
    /// Which connected device joined which group's pass (group_pass.rs; gone with the socket).
    passes: crate::group_pass::Passes,
}

impl State {
    /// To every device of the account: here directly, elsewhere through the account's channel.
    fn send_user(&self, user: &Username, msg: &ServerMsg) {
        let env = ServerEnvelope::new(None, msg.clone());
        for d in self.online.get(user).into_iter().flatten() {
            if let Some(c) = self.conns.get(d) {
                c.push(&env);
            }
        }
        if let Some(cluster) = &self.cluster {
            remote::publish(cluster, cluster.keys().account_channel(user), &env, None);
        }
    }

    fn send_device(&self, device: &str, msg: ServerMsg) {
        self.send_ring(device, msg, None);
    }

    /// To one device, here or (with Redis) wherever it is; `ring` tags a ring's messages.
    fn send_ring(&self, device: &str, msg: ServerMsg, ring: Option<(&str, Stage)>) {
        let env = ServerEnvelope::new(None, msg);
        if let Some(c) = self.conns.get(device) {
            c.push(&env);
        } else if let Some(cluster) = &self.cluster {
            let tag = ring.map(|(id, stage)| RingTag {
                id: id.to_string(),
                owner: cluster.id().to_string(),
                stage,
            });
            remote::publish(cluster, cluster.keys().device_channel(device), &env, tag);
        }
    }

    fn apply(&mut self, out: Outcome) {
        for (ring_id, device, reason) in out.ended {
            let reason_label = crate::metrics::ReasonLabel {
                reason: (&reason).into(),
            };
            self.metrics.ring_ends.get_or_create(&reason_label).inc();
            let msg = ServerMsg::RingEnded {
                ring_id: ring_id.clone(),
                reason,
            };
            self.send_ring(&device, msg, Some((&ring_id, Stage::Ended)));
        }
        if let Some((ring_id, caller, callee)) = out.answered {
            self.metrics.rings_answered.inc();
            self.introduce(&ring_id, &caller, &callee);
        }
    }

    /// Hands the caller the callee device's certificate and one claimed one-time key, and the
    /// callee the caller's certificate.
    fn introduce(&mut self, ring_id: &str, caller: &str, callee: &str) {
        let caller_cert = self.conns.get(caller).map(|c| c.cert.clone());
        if let (Some(cert), false, Some(cluster)) =
            (&caller_cert, self.conns.contains_key(callee), &self.cluster)
        {
            // The callee's instance claims the key and makes the introduction (remote.rs).
            remote::introduce(cluster, ring_id, caller, cert.clone(), callee);
            return;
        }
        let claimed = self.conns.get_mut(callee).and_then(|c| {
            let otk = c.otks.pop()?;
            let low = c.otks.len() < OTK_LOW;
            if low {
                c.push(&ServerEnvelope::new(
                    None,
                    ServerMsg::OtkLow {
                        count: c.otks.len() as u32,
                    },
                ));
            }
            Some((c.cert.clone(), otk))
        });
        match (caller_cert, claimed) {
            (Some(caller_cert), Some((callee_cert, otk))) => {
                self.send_device(
                    caller,
                    ServerMsg::RingAccepted {
                        ring_id: ring_id.to_string(),
                        peer: callee_cert,
                        otk,
                    },
                );
                self.send_ring(
                    callee,
                    ServerMsg::RingConnected {
                        ring_id: ring_id.to_string(),
                        peer: caller_cert,
                    },
                    Some((ring_id, Stage::Connected)),
                );
            }
            _ => {
                let out = self.rings.fail(ring_id);
                self.apply(out);
            }
        }
    }

    fn is_online(&self, user: &Username) -> bool {
        self.online.get(user).is_some_and(|s| !s.is_empty())
    }

    /// Online now, or within `RECENTLY_ACTIVE` of leaving.
    fn recently_active(&self, user: &Username, now: crate::clock::Now) -> bool {
        self.is_online(user)
            || self
                .last_seen
                .get(user)
                .is_some_and(|at| now.at.saturating_duration_since(*at) < RECENTLY_ACTIVE)
    }
}

pub struct Hub {
    store: Store,
    state: Mutex<State>,
    /// Derives every account's code seed. Never leaves this process.
    secret: Zeroizing<[u8; 32]>,
    /// Friends may ring an account with no device online and wait for one (off in strict mode).
    wake_intents: bool,
    quiet: bool,
    limits: Limits,
    failures: Failures,
    gate_floor: Duration,
    contact_pow_bits: u8,
    backoff_after: u32,
    pow_after: u32,
    turn: crate::turn::Turn,
    metrics: Arc<crate::metrics::Metrics>,
    cluster: Option<Arc<Cluster>>,
}

pub struct HubConfig {
    pub ring_timeout: Duration,
    pub wake_intents: bool,
    /// Strict server mode: no log line about accounts.
    pub quiet: bool,
    pub gate_per_minute: u32,
    pub gate_burst: u32,
    /// Gated answers are held until at least this long after the request arrived.
    pub gate_floor: Duration,
    /// Proof-of-work bits a gated request pays when it must carry a stamp.
    pub contact_pow_bits: u8,
    /// `not_found` answers (per account; 4× per IP) before a growing backoff starts (0: never).
    pub backoff_after: u32,
    /// `not_found` answers (per account; 4× per IP) before every gated request needs a stamp (0: never).
    pub pow_after: u32,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// STUN/TURN servers and TURN credentials for clients.
    pub turn: crate::turn::Turn,
    /// Many instances sharing state in Redis (`None`: this process is the whole hub).
    pub cluster: Option<Arc<Cluster>>,
}

/// The outcome of authenticating a socket.
pub struct Attached {
    pub session: Session,
    pub tx: mpsc::Sender<Arc<str>>,
    pub rx: mpsc::Receiver<Arc<str>>,
    pub kill: CancellationToken,
    pub farewell: Arc<OnceLock<Arc<str>>>,
}

pub type Reply = Result<ServerMsg, Refusal>;

impl Hub {
    pub fn new(store: Store, secret: Zeroizing<[u8; 32]>, cfg: HubConfig) -> Self {
        Self {
            store,
            state: Mutex::new(State {
                rings: Rings::new(cfg.ring_timeout),
                metrics: cfg.metrics.clone(),
                cluster: cfg.cluster.clone(),
                ..State::default()
            }),
            metrics: cfg.metrics,
            secret,
            wake_intents: cfg.wake_intents,
            quiet: cfg.quiet,
            limits: Limits::new(cfg.gate_per_minute, cfg.gate_burst),
            failures: Failures::default(),
            gate_floor: cfg.gate_floor,
            contact_pow_bits: cfg.contact_pow_bits,
            backoff_after: cfg.backoff_after,
            pow_after: cfg.pow_after,
            turn: cfg.turn,
            cluster: cfg.cluster,
        }
    }

    /// ICE servers anyone may know (STUN only), for `GET /v1/config`.
    pub fn public_ice_servers(&self) -> Vec<anonchat_proto::wire::IceServer> {
        self.turn.public()
    }

    pub fn contact_pow_bits(&self) -> u8 {
        self.contact_pow_bits
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind, still consistent enough to serve.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How often `tick_shared` should run (`None`: no Redis, nothing shared).
    pub fn shared_every(&self) -> Option<Duration> {
        self.cluster.as_ref().map(|c| c.refresh_every())
    }

    pub fn connections(&self) -> usize {
        self.lock().conns.len()
    }

    /// Rings that ran past their deadline. Called about once a second.
    pub fn tick(&self, clock: crate::clock::Now) {
        let now = clock.at;
        let mut st = self.lock();
        let expired = st.rings.expire(now);
        st.apply(expired);
        st.friend_requests.expire(now);
        st.last_seen
            .retain(|_, at| now.duration_since(*at) < RECENTLY_ACTIVE);
        let max_age = Duration::from_secs(2 * anonchat_proto::pow::MAX_AGE_SECS);
        st.spent_stamps
            .retain(|_, at| now.duration_since(*at) < max_age);
        drop(st);
        self.expire_enrollments(clock.unix);
        self.limits.prune();
        self.failures.prune(now);
    }

    /// The keyed hash a tombstone keeps instead of the name.
    pub fn name_hash(&self, username: &Username) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&*self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"anonchat/v1 tombstone\0");
        mac.update(username.as_str().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// An account's row; an account that vanished reads as `not_found`.
    async fn account_row(&self, who: &Username) -> Result<AccountRow, Refusal> {
        self.store.account(who).await?.ok_or(Refusal::NotFound)
    }

    /// An account's key; an account that vanished reads as `not_found`.
    async fn account_key(&self, who: &Username) -> Result<Key32, Refusal> {
        self.store.account_key(who).await?.ok_or(Refusal::NotFound)
    }

    async fn answer_inner(&self, s: &Session, msg: ClientMsg, now: crate::clock::Now) -> Reply {
        // The account's upkeep writes or reads the store (or Redis) on every request: a budget
        // per address and per account, not only the socket's pace (P9). Not `group_leave`: it
        // only gives something up, and a drained budget must not keep a pass held that a
        // removed member knows.
        let upkeep = matches!(
            msg,
            ClientMsg::RotateAccountKey { .. }
                | ClientMsg::KeyHistory { .. }
                | ClientMsg::FriendResign { .. }
                | ClientMsg::GroupJoin { .. }
        );
        if upkeep && !self.allow_upkeep(s).await {
            return Err(Refusal::RateLimited(Some(
                "too many key and group requests; try again in a minute".into(),
            )));
        }
        match msg {
            ClientMsg::Auth { .. } | ClientMsg::EnrollJoin { .. } => {
                Err(bad("already authenticated"))
            }
            ClientMsg::Ping => Ok(ServerMsg::Pong),
            ClientMsg::UploadOtks { keys } => self.upload_otks(s, keys),
            ClientMsg::Lookup { username, code, .. } => self.lookup(s, username, code, now).await,
            ClientMsg::FriendRequest { to, sig, code, .. } => {
                self.friend_request(s, to, sig, code, now).await
            }
            ClientMsg::SetMode {
                mode,
                always_require_code,
                format,
            } => self.set_mode(s, mode, always_require_code, format).await,
            ClientMsg::GetMode => self.get_mode(s).await,
            ClientMsg::SetPresence { presence } => self.set_presence(s, presence).await,
            ClientMsg::IceServers => self.ice_servers(now),
            ClientMsg::FvcSeed => self.fvc_seed(s).await,
            ClientMsg::SetStaticCode { code } => self.set_static_code(s, code).await,
            ClientMsg::RotateCode => self.rotate_code(s).await,
            ClientMsg::DeleteAccount { ts, sig } => self.delete_account(s, ts, sig, now).await,
            ClientMsg::Search { prefix } => self.search(s, prefix).await,
            ClientMsg::FriendAccept { from, sig } => self.friend_accept(s, from, sig, now).await,
            ClientMsg::FriendDecline { from } => self.friend_decline(s, from).await,
            ClientMsg::Unfriend { username } => self.unfriend(s, username).await,
            ClientMsg::ListFriends => self.list_friends(s, now).await,
            ClientMsg::Ring {
                to,
                code,
                group: Some(token),
                ..
            } if code.is_none() => self.group_ring(s, to, token, now).await,
            ClientMsg::Ring { group: Some(_), .. } => Err(bad("a group ring carries no code")),
            ClientMsg::Ring {
                to, code, invite, ..
            } => self.ring(s, to, code, invite, now).await,
            ClientMsg::GroupJoin { token } => self.group_join(s, token).await,
            ClientMsg::GroupLeave { token } => self.group_leave(s, token).await,
            ClientMsg::EnrollOpen { code, expires, sig } => {
                self.enroll_open(s, code, expires, sig, now).await
            }
            ClientMsg::EnrollApprove {
                device_id,
                cert,
                blob,
            } => self.enroll_approve(s, device_id, cert, blob).await,
            ClientMsg::EnrollDecline { device_id } => self.enroll_decline(s, &device_id),
            ClientMsg::ListDevices => self.list_devices(s).await,
            ClientMsg::RevokeDevice { device_id, ts, sig } => {
                self.revoke_device(s, device_id, ts, sig, now).await
            }
            ClientMsg::ClaimDeviceOtk { device_id } => self.claim_device_otk(s, &device_id).await,
            ClientMsg::RotateAccountKey {
                rotation,
                certs,
                handovers,
            } => {
                self.rotate_account_key(s, rotation, certs, handovers, now)
                    .await
            }
            ClientMsg::KeyHistory { username } => self.key_history(s, username).await,
            ClientMsg::FriendResign { username, sig } => self.friend_resign(s, username, sig).await,
            ClientMsg::Answer { ring_id, accept } => {
                self.answer_ring(s, ring_id, accept, now).await
            }
            ClientMsg::Hangup { ring_id } => self.hangup(s, ring_id).await,
            ClientMsg::Relay { ring_id, blob } => self.relay(s, ring_id, blob).await,
        }
    }
}

/// A fresh salt for an account's code.
fn new_salt() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// 16 random bytes, URL-safe base64.
pub fn new_id() -> String {
    use base64::Engine;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
