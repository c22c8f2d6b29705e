//! Everything the server holds in RAM: who is connected, one-time keys, rings, pending friend
//! requests. It answers each authenticated request and routes events to devices' send queues.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anonchat_proto::signing::{friend_bytes, one_time_key_bytes, verify};
use anonchat_proto::wire::{ClientMsg, FriendInfo, ServerEnvelope, ServerMsg, SignedOtk};
use anonchat_proto::{limits, DeviceCert, Key32, Sig64, Username};
use rand::RngCore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::abuse::{Failures, Limits};
use crate::ring::{Outcome, Rings};
use crate::store::{AccountRow, Store};
use anonchat_proto::fvc;
use anonchat_proto::wire::{Mode, PresenceMode};
use std::net::IpAddr;
use zeroize::Zeroizing;

mod devices;
mod gating;
mod refusal;
mod rotation;

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
        if self.tx.try_send(Arc::from(text)).is_err() {
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
}

impl State {
    fn send_user(&self, user: &Username, msg: &ServerMsg) {
        let env = ServerEnvelope::new(None, msg.clone());
        for d in self.online.get(user).into_iter().flatten() {
            if let Some(c) = self.conns.get(d) {
                c.push(&env);
            }
        }
    }

    fn send_device(&self, device: &str, msg: ServerMsg) {
        if let Some(c) = self.conns.get(device) {
            c.push(&ServerEnvelope::new(None, msg));
        }
    }

    fn apply(&mut self, out: Outcome) {
        for (ring_id, device, reason) in out.ended {
            let reason_label = crate::metrics::ReasonLabel {
                reason: (&reason).into(),
            };
            self.metrics.ring_ends.get_or_create(&reason_label).inc();
            self.send_device(&device, ServerMsg::RingEnded { ring_id, reason });
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
                self.send_device(
                    callee,
                    ServerMsg::RingConnected {
                        ring_id: ring_id.to_string(),
                        peer: caller_cert,
                    },
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
    fn recently_active(&self, user: &Username) -> bool {
        self.is_online(user)
            || self
                .last_seen
                .get(user)
                .is_some_and(|at| at.elapsed() < RECENTLY_ACTIVE)
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
        }
    }

    /// ICE servers anyone may know (STUN only), for `GET /v1/config`.
    pub fn public_ice_servers(&self) -> Vec<anonchat_proto::wire::IceServer> {
        self.turn.public()
    }

    pub fn contact_pow_bits(&self) -> u8 {
        self.contact_pow_bits
    }

    /// Takes a token from the address's registration bucket.
    pub fn allow_register(&self, ip: IpAddr) -> bool {
        self.limits.allow_register(ip)
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

    pub fn connections(&self) -> usize {
        self.lock().conns.len()
    }

    /// Registers an authenticated socket. A second socket of the same device replaces the first.
    pub async fn attach(
        &self,
        username: Username,
        cert: DeviceCert,
        ip: IpAddr,
        parent: &CancellationToken,
    ) -> Attached {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let kill = parent.child_token();
        let device_id = cert.device_id.clone();
        let farewell = Arc::new(OnceLock::new());
        let (conn_id, first) = {
            let mut st = self.lock();
            st.next_conn += 1;
            let conn_id = st.next_conn;
            if let Some(old) = st.conns.remove(&device_id) {
                old.kill.cancel();
            }
            st.conns.insert(
                device_id.clone(),
                Conn {
                    conn_id,
                    cert,
                    tx: tx.clone(),
                    kill: kill.clone(),
                    otks: Vec::new(),
                    farewell: farewell.clone(),
                },
            );
            let devices = st.online.entry(username.clone()).or_default();
            let first = devices.is_empty();
            devices.insert(device_id.clone());
            (conn_id, first)
        };
        if first {
            self.announce(&username, true).await;
        }
        // Rings waiting for this account (wake intents) ring this device now.
        let woken = self
            .lock()
            .rings
            .wake(&username, &device_id, Instant::now());
        for (ring_id, caller) in woken {
            if let Ok(ak_pub) = self.account_key(&caller).await {
                self.lock().send_device(
                    &device_id,
                    ServerMsg::IncomingRing {
                        ring_id,
                        from: caller,
                        ak_pub,
                    },
                );
            }
        }
        Attached {
            session: Session {
                device_id,
                username,
                conn_id,
                ip,
            },
            tx,
            rx,
            kill,
            farewell,
        }
    }

    /// The socket closed: drop its keys and rings; tell friends if the account went offline.
    pub async fn detach(&self, s: &Session) {
        let last = {
            let mut st = self.lock();
            if st.conns.get(&s.device_id).map(|c| c.conn_id) != Some(s.conn_id) {
                return; // Already replaced by a newer socket of the same device.
            }
            st.conns.remove(&s.device_id);
            let gone = st.rings.device_gone(&s.device_id);
            st.apply(gone);
            let mut last = false;
            if let Some(set) = st.online.get_mut(&s.username) {
                set.remove(&s.device_id);
                if set.is_empty() {
                    st.online.remove(&s.username);
                    st.last_seen.insert(s.username.clone(), Instant::now());
                    last = true;
                }
            }
            last
        };
        if last {
            self.announce(&s.username, false).await;
        }
    }

    /// Tells friends an account came or went, as much as its presence setting lets them know.
    async fn announce(&self, who: &Username, online: bool) {
        let (Ok(friends), Ok(Some(account))) =
            (self.store.friends(who).await, self.store.account(who).await)
        else {
            return;
        };
        let msg = match (account.presence, online) {
            (PresenceMode::Exact, _) => ServerMsg::Presence {
                username: who.clone(),
                online,
                recently_active: false,
            },
            // Blurred: "recently active" when it comes, nothing when it goes.
            (PresenceMode::Recent, true) => ServerMsg::Presence {
                username: who.clone(),
                online: false,
                recently_active: true,
            },
            (PresenceMode::Recent, false) | (PresenceMode::Hidden, _) => return,
        };
        let st = self.lock();
        for (f, _, _) in friends {
            st.send_user(&f, &msg);
        }
    }

    /// Rings that ran past their deadline. Called about once a second.
    pub fn tick(&self, now: Instant) {
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
        self.expire_enrollments(crate::clock::unix_now());
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

    async fn answer_inner(&self, s: &Session, msg: ClientMsg) -> Reply {
        match msg {
            ClientMsg::Auth { .. } => Err(bad("already authenticated")),
            ClientMsg::Ping => Ok(ServerMsg::Pong),
            ClientMsg::UploadOtks { keys } => self.upload_otks(s, keys),
            ClientMsg::Lookup { username, code, .. } => {
                let reach = self.gate(&s.username, &username, code.as_deref()).await?;
                // A friend's blurred or hidden presence is not revealed by a lookup either.
                let online = reach.online && reach.presence == PresenceMode::Exact;
                let ak_pub = reach.ak;
                Ok(ServerMsg::User {
                    username,
                    ak_pub,
                    online,
                })
            }
            ClientMsg::FriendRequest { to, sig, code, .. } => {
                self.friend_request(s, to, sig, code).await
            }
            ClientMsg::SetMode {
                mode,
                always_require_code,
                format,
            } => {
                let format = format.validate().map_err(|e| bad(e.to_string()))?;
                let current = self.account_row(&s.username).await?;
                // Switching to STRICT starts from a fresh salt: codes shared before stop working.
                let salt = (mode == Mode::Strict && current.mode != Mode::Strict).then(new_salt);
                self.store
                    .set_mode(
                        &s.username,
                        mode,
                        always_require_code,
                        format,
                        salt.as_ref().map(|s| &s[..]),
                    )
                    .await?;
                Ok(ServerMsg::Ok)
            }
            ClientMsg::GetMode => {
                let a = self.account_row(&s.username).await?;
                Ok(ServerMsg::Mode {
                    mode: a.mode,
                    always_require_code: a.always_require_code,
                    format: a.format,
                    presence: a.presence,
                })
            }
            ClientMsg::SetPresence { presence } => {
                self.store.set_presence(&s.username, presence).await?;
                Ok(ServerMsg::Ok)
            }
            // TURN credentials only for authenticated devices: the relay is not an open proxy.
            ClientMsg::IceServers => {
                let (ice_servers, expires_at) = self.turn.issue(crate::clock::unix_now());
                Ok(ServerMsg::IceServers {
                    ice_servers,
                    expires_at,
                    relay: self.turn.has_relay(),
                })
            }
            ClientMsg::FvcSeed => {
                let a = self.account_row(&s.username).await?;
                if a.static_code_hash.is_some() {
                    return Err(bad("this account uses a static code"));
                }
                Ok(ServerMsg::FvcSeed {
                    seed: Key32(*fvc::seed(&*self.secret, &a.ak_pub, &a.fvc_salt)),
                    format: a.format,
                    step: fvc::STEP,
                })
            }
            ClientMsg::SetStaticCode { code } => {
                let hash = match code {
                    Some(c) => Some(
                        tokio::task::spawn_blocking(move || crate::static_code::hash(&c))
                            .await
                            .ok()
                            .flatten()
                            .ok_or_else(|| bad("a static code has 6 to 32 letters and digits"))?,
                    ),
                    None => None,
                };
                self.store
                    .set_static_code(&s.username, hash.as_deref())
                    .await?;
                Ok(ServerMsg::Ok)
            }
            ClientMsg::RotateCode => {
                self.store.rotate_salt(&s.username, &new_salt()).await?;
                Ok(ServerMsg::Ok)
            }
            ClientMsg::DeleteAccount { ts, sig } => {
                let ak = self.account_key(&s.username).await?;
                let fresh =
                    ts.abs_diff(crate::clock::unix_now()) <= anonchat_proto::pow::MAX_AGE_SECS;
                verify(
                    &ak,
                    &anonchat_proto::signing::delete_account_bytes(&s.username, ts),
                    &sig,
                )
                .ok()
                .filter(|_| fresh)
                .ok_or_else(|| bad("deletion must be signed by the account key, just now"))?;
                let expires = crate::clock::unix_now() + TOMBSTONE_DAYS * 86_400;
                self.store
                    .delete_account(&s.username, &self.name_hash(&s.username), expires as i64)
                    .await?;
                // The account's other devices are cut off now; this one hears `ok` and leaves.
                let st = self.lock();
                for d in st.online.get(&s.username).into_iter().flatten() {
                    if let Some(c) = st.conns.get(d).filter(|_| *d != s.device_id) {
                        c.kill.cancel();
                    }
                }
                if !self.quiet {
                    tracing::info!("account deleted");
                }
                Ok(ServerMsg::Ok)
            }
            ClientMsg::Search { prefix } => {
                // A scan of the public names: priced like a lookup (P9).
                if !self.limits.allow(s.ip, &s.device_id, &s.username) {
                    return Err(Refusal::RateLimited(Some(
                        "too many requests; try again in a minute".into(),
                    )));
                }
                let ok = prefix.len() >= 3
                    && prefix.len() <= 32
                    && prefix.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    });
                if !ok {
                    return Err(bad("search needs 3 to 32 characters of a username"));
                }
                let users = self.store.search_public(&prefix, 20).await?;
                Ok(ServerMsg::Users { users })
            }
            ClientMsg::FriendAccept { from, sig } => self.friend_accept(s, from, sig).await,
            ClientMsg::FriendDecline { from } => {
                self.lock().friend_requests.remove(&from, &s.username);
                Ok(ServerMsg::Ok)
            }
            ClientMsg::Unfriend { username } => {
                if self.store.remove_friendship(&s.username, &username).await? {
                    let st = self.lock();
                    st.send_user(
                        &username,
                        &ServerMsg::FriendRemoved {
                            username: s.username.clone(),
                        },
                    );
                    st.send_user(&s.username, &ServerMsg::FriendRemoved { username });
                }
                Ok(ServerMsg::Ok)
            }
            ClientMsg::ListFriends => {
                let friends = self.store.friends(&s.username).await?;
                let st = self.lock();
                Ok(ServerMsg::Friends {
                    friends: friends
                        .into_iter()
                        .map(|(username, ak_pub, presence)| {
                            let online = st.is_online(&username);
                            let recent = online || st.last_seen.contains_key(&username);
                            FriendInfo {
                                online: online && presence == PresenceMode::Exact,
                                recently_active: recent && presence == PresenceMode::Recent,
                                username,
                                ak_pub,
                            }
                        })
                        .collect(),
                })
            }
            ClientMsg::Ring { to, code, .. } => self.ring(s, to, code).await,
            ClientMsg::EnrollOpen { code, expires, sig } => {
                self.enroll_open(s, code, expires, sig).await
            }
            ClientMsg::EnrollJoin { .. } => Err(bad("already authenticated")),
            ClientMsg::EnrollApprove {
                device_id,
                cert,
                blob,
            } => self.enroll_approve(s, device_id, cert, blob).await,
            ClientMsg::EnrollDecline { device_id } => self.enroll_decline(s, &device_id),
            ClientMsg::ListDevices => self.list_devices(s).await,
            ClientMsg::RevokeDevice { device_id, ts, sig } => {
                self.revoke_device(s, device_id, ts, sig).await
            }
            ClientMsg::ClaimDeviceOtk { device_id } => self.claim_device_otk(s, &device_id),
            ClientMsg::RotateAccountKey {
                rotation,
                certs,
                handovers,
            } => self.rotate_account_key(s, rotation, certs, handovers).await,
            ClientMsg::KeyHistory { username } => self.key_history(s, username).await,
            ClientMsg::FriendResign { username, sig } => self.friend_resign(s, username, sig).await,
            ClientMsg::Answer { ring_id, accept } => {
                let mut st = self.lock();
                let out = st
                    .rings
                    .answer(&ring_id, &s.device_id, accept, Instant::now())?;
                st.apply(out);
                Ok(ServerMsg::Ok)
            }
            ClientMsg::Hangup { ring_id } => {
                let mut st = self.lock();
                let out = st.rings.hangup(&ring_id, &s.device_id)?;
                st.apply(out);
                Ok(ServerMsg::Ok)
            }
            ClientMsg::Relay { ring_id, blob } => {
                let st = self.lock();
                let to = st.rings.route(&ring_id, &s.device_id)?;
                st.metrics.relayed_bytes.inc_by(blob.0.len() as u64);
                st.send_device(to, ServerMsg::Relayed { ring_id, blob });
                Ok(ServerMsg::Ok)
            }
        }
    }

    /// The cap is checked first and the signatures outside the hub's lock (P9): a refused batch
    /// costs nothing, and verifying never holds up other accounts.
    fn upload_otks(&self, s: &Session, keys: Vec<SignedOtk>) -> Reply {
        let too_many = || {
            bad(format!(
                "at most {} one-time keys may be held",
                limits::MAX_ONE_TIME_KEYS
            ))
        };
        let dk = {
            let st = self.lock();
            let conn = st.conns.get(&s.device_id).ok_or(Refusal::NotFound)?;
            if conn.otks.len() + keys.len() > limits::MAX_ONE_TIME_KEYS {
                return Err(too_many());
            }
            conn.cert.dk_ed25519
        };
        for k in &keys {
            verify(&dk, &one_time_key_bytes(&s.device_id, &k.key), &k.sig)
                .map_err(|_| bad("one-time key signature does not verify"))?;
        }
        let mut st = self.lock();
        let conn = st.conns.get_mut(&s.device_id).ok_or(Refusal::NotFound)?;
        // Checked again: another batch of this device may have landed meanwhile.
        if conn.otks.len() + keys.len() > limits::MAX_ONE_TIME_KEYS {
            return Err(too_many());
        }
        conn.otks.extend(keys);
        Ok(ServerMsg::Ok)
    }

    async fn friend_request(
        &self,
        s: &Session,
        to: Username,
        sig: Sig64,
        code: Option<String>,
    ) -> Reply {
        let their_ak = self.gate_online(&s.username, &to, code.as_deref()).await?;
        let my_ak = self.account_key(&s.username).await?;
        verify(
            &my_ak,
            &friend_bytes(&s.username, &my_ak, &to, &their_ak),
            &sig,
        )
        .map_err(|_| bad("friend signature does not verify"))?;
        let mut st = self.lock();
        st.friend_requests
            .insert(&s.username, &to, sig, Instant::now())
            .map_err(|e| Refusal::RateLimited(Some(e.to_string())))?;
        st.send_user(
            &to,
            &ServerMsg::FriendRequestIn {
                from: s.username.clone(),
                ak_pub: my_ak,
                sig,
            },
        );
        Ok(ServerMsg::Ok)
    }

    async fn friend_accept(&self, s: &Session, from: Username, sig: Sig64) -> Reply {
        let their_sig = self
            .lock()
            .friend_requests
            .get(&from, &s.username, Instant::now())
            .ok_or(Refusal::NotFound)?;
        let their_ak = self.account_key(&from).await?;
        let my_ak = self.account_key(&s.username).await?;
        let edge = friend_bytes(&from, &their_ak, &s.username, &my_ak);
        verify(&my_ak, &edge, &sig).map_err(|_| bad("friend signature does not verify"))?;
        // Checked again: the requester's key could have changed since the request (account re-made).
        verify(&their_ak, &edge, &their_sig).map_err(|_| Refusal::NotFound)?;
        self.store
            .add_friendship(&from, &their_sig, &s.username, &sig)
            .await?;
        let st = {
            let mut st = self.lock();
            st.friend_requests.remove(&from, &s.username);
            st
        };
        st.send_user(
            &from,
            &ServerMsg::FriendAdded {
                username: s.username.clone(),
                ak_pub: my_ak,
            },
        );
        st.send_user(
            &s.username,
            &ServerMsg::FriendAdded {
                username: from,
                ak_pub: their_ak,
            },
        );
        Ok(ServerMsg::Ok)
    }

    async fn ring(&self, s: &Session, to: Username, code: Option<String>) -> Reply {
        let caller_ak = self.account_key(&s.username).await?;
        let reach = self.gate(&s.username, &to, code.as_deref()).await?;
        // A friend may ring an account with no device online: the ring waits (RAM only) for the
        // first device to connect in time — a wake intent. Anyone else needs the account online.
        let wake = reach.friends && self.wake_intents;
        if !reach.online && !wake {
            return Err(Refusal::NotFound);
        }
        let mut st = self.lock();
        let devices: HashSet<String> = st.online.get(&to).cloned().unwrap_or_default();
        // A "recently active" account that left rings like one that is online: the ring waits for
        // a device and ends `unavailable` (the caller cannot tell it from an unanswered ring).
        let blurred = reach.presence == PresenceMode::Recent;
        if devices.is_empty() && !wake && !blurred {
            return Err(Refusal::NotFound); // Went offline between the gate and now.
        }
        let ring_id = new_id();
        st.rings.start(
            ring_id.clone(),
            s.username.clone(),
            s.device_id.clone(),
            to,
            devices.clone(),
            Instant::now(),
        )?;
        st.metrics.rings_started.inc();
        for d in &devices {
            st.send_device(
                d,
                ServerMsg::IncomingRing {
                    ring_id: ring_id.clone(),
                    from: s.username.clone(),
                    ak_pub: caller_ak,
                },
            );
        }
        Ok(ServerMsg::Ringing { ring_id })
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
