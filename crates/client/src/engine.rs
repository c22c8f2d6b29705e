//! The client engine: the one API every front-end (CLI, desktop) drives. Calls in, [`Event`]s out.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anonchat_proto::frames::SecretText;
use anonchat_proto::fvc::{CodeFormat, Fvc};
use anonchat_proto::signing::{friend_bytes, one_time_key_bytes, verify};
use anonchat_proto::wire::{
    normalize_origin, ClientMsg, RegisterRequest, ServerConfig, ServerEnvelope, ServerMsg,
    SignedOtk,
};
use anonchat_proto::wire::{Mode, PresenceMode};
use anonchat_proto::{pow, safety, Caps, DeviceCert, Key32, Sig64, Username};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vodozemac::olm::{PreKeyMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use crate::events::Event;
use crate::identity::Identity;
use crate::keychain::Keychain;
use crate::profile::{self, Contact, ProfileData};
use crate::session::{Cmd, Line, SessionHandle, SessionHost};
use crate::signaling::{self, Signaling};
use crate::transport::IceConfig;
use crate::ClientError;

mod calls;
mod devices;
mod lock;
mod media;
mod network;
mod rings;
mod rotation;
mod scan;
mod server_key;
pub use devices::{DeviceView, EnrollView, EnrolledView};
pub use lock::LockView;
pub use network::NetworkView;
pub use rotation::RotationView;

/// Refused rings and friend requests from one account before it is blocked automatically.
pub const AUTO_BLOCK_AFTER: u32 = 3;

pub struct EngineConfig {
    pub profile: String,
    /// The server's origin, `http(s)://host:port`. Stored in the profile on registration.
    pub server: Option<String>,
    /// What this platform can do (Linux cannot keep screenshots out).
    pub caps: Caps,
    pub keychain: Keychain,
    /// Extra trusted certificate authorities (PEM), for a server with a private certificate.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Where camera frames come from (the platform's cameras, or a still image in tests).
    pub camera: crate::camera::Source,
    /// Allow plain `http://` to a server on another machine (a LAN test setup only: anyone on the
    /// path can then play the server).
    pub insecure_plain_http_on_lan: bool,
}

/// This account's discovery and presence settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModeView {
    pub mode: Mode,
    pub always_require_code: bool,
    pub format: CodeFormat,
    pub presence: PresenceMode,
}

/// This account's code as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodeView {
    pub code: String,
    pub seconds_left: u64,
    pub link: String,
}

/// A friend as a front-end shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FriendView {
    pub username: String,
    pub online: bool,
    pub recently_active: bool,
    pub safety_number: String,
    pub verified: bool,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    me: Weak<Inner>,
    profile: String,
    dir: PathBuf,
    caps: Caps,
    keychain: Keychain,
    server: Mutex<Option<String>>,
    identity: Mutex<Option<Identity>>,
    data: Mutex<ProfileData>,
    ice: Mutex<network::IceState>,
    /// Proof-of-work bits the server wants on a gated request that must carry a stamp.
    contact_pow_bits: Mutex<Option<u8>>,
    signaling: Arc<Signaling>,
    events: mpsc::Sender<Event>,
    /// Every ring and session of this device (see `calls.rs`).
    calls: Mutex<calls::Calls<SessionHandle, (DeviceCert, SignedOtk)>>,
    /// Friend requests waiting for the user: from → (their AK, their signature).
    requests: Mutex<HashMap<Username, (Key32, Sig64)>>,
    /// New account keys seen for pinned contacts, waiting for the user's decision.
    changed_keys: Mutex<HashMap<Username, Key32>>,
    /// Rings and friend requests the user refused, per requester (RAM): after
    /// [`AUTO_BLOCK_AFTER`] the requester is blocked.
    refusals: Mutex<HashMap<Username, u32>>,
    /// Locked or not, and the grant an entered passcode gives sensitive actions.
    lock_state: Mutex<crate::passcode::LockState>,
    /// The enrollment this device opened, and the one new device that joined it.
    enroll_gate: Mutex<crate::enrollment::EnrollGate>,
    stop: Mutex<CancellationToken>,
    /// This account's code seed, once fetched (RAM only).
    fvc: Mutex<Option<(Zeroizing<[u8; 32]>, CodeFormat)>>,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    /// The server's TLS key pinned on first use, checked on every handshake.
    pin: Arc<crate::tls::ServerPin>,
    /// The user was told the server's key changed (once per change).
    pin_warned: std::sync::atomic::AtomicBool,
    insecure_plain_http_on_lan: bool,
    camera: crate::camera::Source,
    /// The QR scan in progress, if any.
    scan: Mutex<Option<CancellationToken>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClientError::Keychain(e.to_string()))
}

impl Engine {
    /// Opens a profile: loads its identity from the keychain if it has one.
    pub async fn open(
        cfg: EngineConfig,
    ) -> Result<(Engine, crate::events::EventReceiver), ClientError> {
        // Several dependencies bring rustls with different backends; pick one for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = profile::profile_dir(&cfg.profile)?;
        let (events, rx) = mpsc::channel(crate::events::EVENT_QUEUE);
        let kc = cfg.keychain.clone();
        let name = cfg.profile.clone();
        let secret = blocking(move || kc.load(&name)).await??;
        let identity = secret.map(|s| Identity::from_secret(&s)).transpose()?;
        // With a passcode the app starts locked: quitting and starting again is no way around it.
        let mut lock_state = crate::passcode::LockState::new(
            identity.as_ref().is_some_and(|i| i.passcode_hash.is_some()),
        )
        .with_grant(lock::grant());
        lock_state.lock();
        let data = match &identity {
            Some(id) => profile::load(&dir, &id.profile_key)?,
            None => ProfileData::default(),
        };
        let server = cfg
            .server
            .map(|s| normalize_origin(&s))
            .or_else(|| data.server.clone());
        let pin = Arc::new(crate::tls::ServerPin::default());
        pin.expect(data.server_pin.map(|k| k.0));
        let (http, tls) = crate::tls::clients(cfg.extra_ca_pem.as_deref(), pin.clone())?;
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            profile: cfg.profile,
            dir,
            caps: cfg.caps,
            keychain: cfg.keychain,
            server: Mutex::new(server),
            identity: Mutex::new(identity),
            data: Mutex::new(data),
            ice: Mutex::default(),
            contact_pow_bits: Mutex::default(),
            signaling: Arc::new(Signaling::default()),
            events,
            calls: Mutex::default(),
            requests: Mutex::default(),
            changed_keys: Mutex::default(),
            enroll_gate: Mutex::default(),
            lock_state: Mutex::new(lock_state),
            refusals: Mutex::default(),
            stop: Mutex::new(CancellationToken::new()),
            fvc: Mutex::default(),
            http,
            tls,
            pin,
            pin_warned: std::sync::atomic::AtomicBool::new(false),
            insecure_plain_http_on_lan: cfg.insecure_plain_http_on_lan,
            camera: cfg.camera,
            scan: Mutex::default(),
        });
        Ok((Engine { inner }, rx))
    }

    pub fn username(&self) -> Option<String> {
        lock(&self.inner.identity)
            .as_ref()
            .map(|i| i.username.to_string())
    }

    pub fn server(&self) -> Option<String> {
        lock(&self.inner.server).clone()
    }

    /// The server to talk to, if this client may (`https://`, or `http://` to loopback) and its
    /// TLS key has not changed under a pin.
    fn server_or_err(&self) -> Result<String, ClientError> {
        let origin = self
            .server()
            .ok_or_else(|| ClientError::Http("no server configured for this profile".into()))?;
        crate::tls::check_origin(&origin, self.inner.insecure_plain_http_on_lan)?;
        self.inner.pin_check()?;
        Ok(origin)
    }

    async fn server_config(&self, origin: &str) -> Result<ServerConfig, ClientError> {
        let resp = self
            .inner
            .http
            .get(format!("{origin}/v1/config"))
            .send()
            .await
            .map_err(|e| {
                self.inner
                    .pin_check()
                    .err()
                    .unwrap_or_else(|| ClientError::Http(e.to_string()))
            })?;
        resp.json()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// Creates this profile's identity, pays the proof of work and registers the name.
    pub async fn register(&self, username: &str) -> Result<(), ClientError> {
        if let Some(name) = self.username() {
            return Err(ClientError::AlreadyRegistered(name));
        }
        let username = Username::parse(username)?;
        let origin = self.server_or_err()?;
        let config = self.server_config(&origin).await?;
        let identity = Identity::create(username.clone(), self.inner.caps, unix_now());
        let ak_pub = identity.ak_pub();
        let resource = pow::register_resource(&username, &ak_pub);
        let bits = pow::affordable(config.register_pow_bits)?;
        let stamp = blocking(move || pow::Stamp::mint(&resource, bits, unix_now())).await?;
        let req = RegisterRequest {
            v: anonchat_proto::VERSION,
            username,
            ak_pub,
            device_cert: identity.cert.clone(),
            pow: stamp,
        };

        // Keychain first: a name registered without its key saved would be lost for good.
        let (kc, profile, secret) = (
            self.inner.keychain.clone(),
            self.inner.profile.clone(),
            identity.to_secret(),
        );
        blocking(move || kc.save(&profile, &secret)).await??;
        let resp = self
            .inner
            .http
            .post(format!("{origin}/v1/register"))
            .json(&req)
            .send()
            .await;
        let outcome = match resp {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => Err(ClientError::Taken),
            Ok(r) => {
                let body: Option<ServerEnvelope> = r.json().await.ok();
                let detail = match body.map(|b| b.msg) {
                    Some(ServerMsg::Error {
                        detail: Some(d), ..
                    }) => d,
                    _ => "registration refused".into(),
                };
                Err(ClientError::Refused(detail))
            }
            Err(e) => Err(ClientError::Http(e.to_string())),
        };
        if let Err(e) = outcome {
            let (kc, profile) = (self.inner.keychain.clone(), self.inner.profile.clone());
            let _ = blocking(move || kc.delete(&profile)).await;
            return Err(e);
        }
        let key = identity.profile_key.clone();
        *lock(&self.inner.identity) = Some(identity);
        let data = {
            let mut d = lock(&self.inner.data);
            d.server = Some(origin);
            d.server_pin = self.inner.pin.seen().map(Key32);
            d.clone()
        };
        self.inner.pin.expect(data.server_pin.map(|k| k.0));
        profile::save(&self.inner.dir, &key, &data)
    }

    /// Starts (or restarts) the signaling connection; it reconnects by itself until shutdown.
    pub async fn connect(&self) -> Result<(), ClientError> {
        if lock(&self.inner.identity).is_none() {
            return Err(ClientError::NoIdentity);
        }
        let origin = self.server_or_err()?;
        match self.server_config(&origin).await {
            Ok(cfg) => {
                self.inner.set_public_ice(cfg.ice_servers);
                *lock(&self.inner.contact_pow_bits) = Some(cfg.contact_pow_bits);
            }
            Err(e @ ClientError::ServerKeyChanged) => return Err(e),
            // Not reachable now: the connection below keeps trying.
            Err(_) => {}
        }
        let stop = {
            let mut s = lock(&self.inner.stop);
            s.cancel();
            *s = CancellationToken::new();
            s.clone()
        };
        let host: Arc<dyn signaling::Host> = self.inner.clone();
        let tls = self.inner.tls.clone();
        tokio::spawn(self.inner.signaling.clone().run(origin, tls, host, stop));
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        self.inner.signaling.is_connected()
    }

    fn my_ak(&self) -> Result<(Username, Key32), ClientError> {
        let id = lock(&self.inner.identity);
        let id = id.as_ref().ok_or(ClientError::NoIdentity)?;
        Ok((id.username.clone(), id.ak_pub()))
    }

    fn sign_ak(&self, msg: &[u8]) -> Result<Sig64, ClientError> {
        let id = lock(&self.inner.identity);
        Ok(id.as_ref().ok_or(ClientError::NoIdentity)?.sign_ak(msg))
    }

    /// A stamp that pays for reaching `to`, minted off the async threads.
    async fn contact_stamp(&self, to: &Username) -> Result<pow::Stamp, ClientError> {
        let (me, _) = self.my_ak()?;
        let known = *lock(&self.inner.contact_pow_bits);
        let bits = match known {
            Some(b) => b,
            None => {
                let b = self
                    .server_config(&self.server_or_err()?)
                    .await?
                    .contact_pow_bits;
                *lock(&self.inner.contact_pow_bits) = Some(b);
                b
            }
        };
        let bits = pow::affordable(bits)?;
        let resource = pow::contact_resource(&me, to);
        let start = rand::random::<u64>();
        blocking(move || pow::Stamp::mint_from(&resource, bits, unix_now(), start)).await
    }

    /// Sends a lookup, ring or friend request: with a stamp when it carries a code (first contact
    /// with a STRICT account pays), and once more with one if the server asks after many failures.
    /// `build` makes the request with or without a stamp; `first` (for a ring) records the answer
    /// in order with the events after it.
    async fn gated(
        &self,
        to: &Username,
        code: Option<&str>,
        build: impl Fn(Option<pow::Stamp>) -> ClientMsg,
        first: impl Fn() -> Option<crate::signaling::OnAnswer>,
    ) -> Result<ServerMsg, ClientError> {
        let stamp = match code {
            Some(_) => Some(self.contact_stamp(to).await?),
            None => None,
        };
        let signaling = &self.inner.signaling;
        match signaling.request_then(build(stamp), first()).await {
            Err(ClientError::PowRequired) => {
                let stamp = self.contact_stamp(to).await?;
                signaling.request_then(build(Some(stamp)), first()).await
            }
            other => other,
        }
    }

    /// Asks the server for an account's key (and whether it is online), with its code if needed.
    pub async fn lookup(
        &self,
        to: &Username,
        code: Option<&str>,
    ) -> Result<(Key32, bool), ClientError> {
        self.inner.unlocked()?;
        match self
            .gated(
                to,
                code,
                |pow| ClientMsg::Lookup {
                    username: to.clone(),
                    code: code.map(str::to_string),
                    pow,
                },
                || None,
            )
            .await?
        {
            ServerMsg::User { ak_pub, online, .. } => Ok((ak_pub, online)),
            _ => Err(ClientError::Refused("unexpected answer".into())),
        }
    }

    /// Sends a friend request (with the target's code where its mode needs one); pins the account
    /// key the server reports (trust on first use). Returns the safety number.
    pub async fn add_friend(
        &self,
        username: &str,
        code: Option<&str>,
    ) -> Result<String, ClientError> {
        self.inner.unlocked()?;
        let to = Username::parse(username)?;
        let (their_ak, _) = self.lookup(&to, code).await?;
        self.inner.pin(&to, their_ak)?;
        let (me, my_ak) = self.my_ak()?;
        let sig = self.sign_ak(&friend_bytes(&me, &my_ak, &to, &their_ak))?;
        self.gated(
            &to,
            code,
            |pow| ClientMsg::FriendRequest {
                to: to.clone(),
                sig,
                code: code.map(str::to_string),
                pow,
            },
            || None,
        )
        .await?;
        Ok(safety::grouped(&safety::safety_number(
            &me, &my_ak, &to, &their_ak,
        )))
    }

    /// Adds a contact from an `anonchat://add?u=…&c=…` link (typed, pasted or scanned).
    pub async fn add_by_link(&self, link: &str) -> Result<(String, String), ClientError> {
        let (user, code) = anonchat_proto::fvc::parse_share_link(link)?;
        let sn = self.add_friend(user.as_str(), code.as_deref()).await?;
        Ok((user.to_string(), sn))
    }

    /// Sets this account's discovery mode.
    pub async fn set_mode(
        &self,
        mode: Mode,
        always_require_code: bool,
        format: CodeFormat,
    ) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.inner
            .signaling
            .request(ClientMsg::SetMode {
                mode,
                always_require_code,
                format,
            })
            .await?;
        // Switching to STRICT may have rotated the salt: fetch the seed again when next needed.
        *lock(&self.inner.fvc) = None;
        Ok(())
    }

    pub async fn get_mode(&self) -> Result<ModeView, ClientError> {
        self.inner.unlocked()?;
        match self.inner.signaling.request(ClientMsg::GetMode).await? {
            ServerMsg::Mode {
                mode,
                always_require_code,
                format,
                presence,
            } => Ok(ModeView {
                mode,
                always_require_code,
                format,
                presence,
            }),
            _ => Err(ClientError::Refused("unexpected answer".into())),
        }
    }

    /// What friends see of this account's presence: exact, "recently active", or offline.
    pub async fn set_presence(&self, presence: PresenceMode) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        self.inner
            .signaling
            .request(ClientMsg::SetPresence { presence })
            .await?;
        Ok(())
    }

    /// This account's live code, the seconds it has left, and its share link. The seed is fetched
    /// once and kept in RAM only.
    pub async fn code(&self) -> Result<CodeView, ClientError> {
        self.inner.unlocked()?;
        let cached = lock(&self.inner.fvc).clone();
        let (seed, format) = match cached {
            Some(c) => c,
            None => {
                // Showing the code is sensitive: the passcode once per unlock (a lock drops the
                // seed).
                self.inner.sensitive()?;
                let answer = self.inner.signaling.request(ClientMsg::FvcSeed).await?;
                let ServerMsg::FvcSeed { seed, format, .. } = answer else {
                    return Err(ClientError::Refused("unexpected answer".into()));
                };
                let c = (Zeroizing::new(seed.0), format);
                *lock(&self.inner.fvc) = Some(c.clone());
                c
            }
        };
        let now = unix_now();
        let code = Fvc::new(&*seed, format).code(now);
        let (me, _) = self.my_ak()?;
        Ok(CodeView {
            link: anonchat_proto::fvc::share_link(&me, Some(&code)),
            seconds_left: Fvc::seconds_left(now),
            code,
        })
    }

    /// Uses a code of the user's choosing (6–32 letters and digits) instead of the rotating one, or
    /// goes back to the rotating one with `None`. The server keeps only an Argon2id hash of it.
    pub async fn set_static_code(&self, code: Option<&str>) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.inner
            .signaling
            .request(ClientMsg::SetStaticCode {
                code: code.map(str::to_string),
            })
            .await?;
        *lock(&self.inner.fvc) = None;
        Ok(())
    }

    /// A new salt: every code and link shared before stops working.
    pub async fn rotate_code(&self) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.inner.signaling.request(ClientMsg::RotateCode).await?;
        *lock(&self.inner.fvc) = None;
        Ok(())
    }

    /// Deletes the account on the server (AK-signed), then everything of it on this device: the
    /// keychain entry and the profile folder. Open chats are wiped first.
    pub async fn delete_account(&self) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        let (me, _) = self.my_ak()?;
        let ts = unix_now();
        let sig = self.sign_ak(&anonchat_proto::signing::delete_account_bytes(&me, ts))?;
        self.inner
            .signaling
            .request(ClientMsg::DeleteAccount { ts, sig })
            .await?;
        self.shutdown().await;
        self.forget_local().await
    }

    /// Deletes everything of this profile on this device: the keychain entry, the profile folder,
    /// and the identity, contacts and code seed in RAM. Call after `shutdown`.
    async fn forget_local(&self) -> Result<(), ClientError> {
        let (kc, profile) = (self.inner.keychain.clone(), self.inner.profile.clone());
        blocking(move || kc.delete(&profile)).await??;
        *lock(&self.inner.identity) = None;
        *lock(&self.inner.data) = ProfileData::default();
        *lock(&self.inner.fvc) = None;
        lock(&self.inner.enroll_gate).clear();
        match std::fs::remove_dir_all(&self.inner.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClientError::Profile(e.to_string())),
        }
    }

    /// PUBLIC accounts whose names start with `prefix`.
    pub async fn search(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        self.inner.unlocked()?;
        match self
            .inner
            .signaling
            .request(ClientMsg::Search {
                prefix: prefix.to_string(),
            })
            .await?
        {
            ServerMsg::Users { users } => Ok(users.into_iter().map(|u| u.to_string()).collect()),
            _ => Err(ClientError::Refused("unexpected answer".into())),
        }
    }

    pub async fn accept_friend(&self, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let from = Username::parse(username)?;
        let (their_ak, _) = lock(&self.inner.requests)
            .get(&from)
            .copied()
            .ok_or(ClientError::UnknownRing)?;
        self.inner.pin(&from, their_ak)?;
        let (me, my_ak) = self.my_ak()?;
        let sig = self.sign_ak(&friend_bytes(&from, &their_ak, &me, &my_ak))?;
        self.inner
            .signaling
            .request(ClientMsg::FriendAccept {
                from: from.clone(),
                sig,
            })
            .await?;
        lock(&self.inner.requests).remove(&from);
        Ok(())
    }

    pub async fn decline_friend(&self, username: &str) -> Result<(), ClientError> {
        let from = Username::parse(username)?;
        lock(&self.inner.requests).remove(&from);
        self.inner.refused(&from);
        self.inner
            .signaling
            .request(ClientMsg::FriendDecline { from })
            .await?;
        Ok(())
    }

    pub async fn unfriend(&self, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let username = Username::parse(username)?;
        self.inner
            .signaling
            .request(ClientMsg::Unfriend { username })
            .await?;
        Ok(())
    }

    pub async fn friends(&self) -> Result<Vec<FriendView>, ClientError> {
        self.inner.unlocked()?;
        let ServerMsg::Friends { friends } =
            self.inner.signaling.request(ClientMsg::ListFriends).await?
        else {
            return Err(ClientError::Refused("unexpected answer".into()));
        };
        let mut out = Vec::new();
        for f in friends {
            // The server's word is checked against our pins: a changed key is loud, never silent.
            if self.inner.pin(&f.username, f.ak_pub).is_err() {
                continue;
            }
            let verified = lock(&self.inner.data)
                .contacts
                .get(f.username.as_str())
                .is_some_and(|c| c.verified);
            out.push(FriendView {
                safety_number: self.safety_number(f.username.as_str())?,
                username: f.username.to_string(),
                online: f.online,
                recently_active: f.recently_active,
                verified,
            });
        }
        Ok(out)
    }

    /// Refuses every ring and friend request from `username` without asking, until unblocked.
    pub fn block(&self, username: &str) -> Result<(), ClientError> {
        let who = Username::parse(username)?;
        self.inner.set_blocked(&who, true)
    }

    pub fn unblock(&self, username: &str) -> Result<(), ClientError> {
        let who = Username::parse(username)?;
        lock(&self.inner.refusals).remove(&who);
        self.inner.set_blocked(&who, false)
    }

    /// A front-end setting kept in the encrypted profile.
    pub fn ui_setting(&self, key: &str) -> Option<String> {
        lock(&self.inner.data).ui.get(key).cloned()
    }

    pub fn set_ui_setting(&self, key: &str, value: &str) -> Result<(), ClientError> {
        let snapshot = {
            let mut data = lock(&self.inner.data);
            data.ui.insert(key.to_string(), value.to_string());
            data.clone()
        };
        self.inner.save_profile(&snapshot)
    }

    /// What this device tells its peers it can do.
    pub fn caps(&self) -> Caps {
        self.inner.caps
    }

    pub fn blocked(&self) -> Vec<String> {
        lock(&self.inner.data).blocked.iter().cloned().collect()
    }

    /// The 60-digit safety number with a pinned contact, as 12 groups of 5.
    pub fn safety_number(&self, username: &str) -> Result<String, ClientError> {
        self.inner.unlocked()?;
        let them = Username::parse(username)?;
        let their_ak = self
            .inner
            .pinned(&them)
            .ok_or_else(|| ClientError::UnknownContact(them.to_string()))?;
        let (me, my_ak) = self.my_ak()?;
        Ok(safety::grouped(&safety::safety_number(
            &me, &my_ak, &them, &their_ak,
        )))
    }

    /// The user compared safety numbers in person: mark the contact verified.
    pub fn mark_verified(&self, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let them = Username::parse(username)?;
        let mut data = lock(&self.inner.data);
        let c = data
            .contacts
            .get_mut(them.as_str())
            .ok_or_else(|| ClientError::UnknownContact(them.to_string()))?;
        c.verified = true;
        let snapshot = data.clone();
        drop(data);
        self.inner.save_profile(&snapshot)
    }

    /// After a `key_changed` warning, the user chose to trust the new key.
    pub async fn trust_new_key(&self, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let them = Username::parse(username)?;
        let ak = lock(&self.inner.changed_keys)
            .remove(&them)
            .ok_or_else(|| ClientError::UnknownContact(them.to_string()))?;
        let snapshot = {
            let mut data = lock(&self.inner.data);
            data.contacts.insert(
                them.to_string(),
                Contact {
                    ak_pub: ak,
                    verified: false,
                },
            );
            data.clone()
        };
        self.inner.save_profile(&snapshot)?;
        // Our half of the friendship edge was signed over the old key: sign it over the new one.
        self.resign_edge_with(them, ak).await;
        Ok(())
    }

    fn session(&self, id: &str) -> Result<SessionHandle, ClientError> {
        lock(&self.inner.calls)
            .session(id)
            .cloned()
            .ok_or(ClientError::UnknownSession)
    }

    /// Sends a text; returns its id (receipts name it).
    pub async fn send_text(&self, session: &str, text: SecretText) -> Result<u64, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(Cmd::SendText(text, tx))
            .await
            .map_err(|_| ClientError::UnknownSession)?;
        rx.await.map_err(|_| ClientError::UnknownSession)?
    }

    pub async fn typing(&self, session: &str) -> Result<(), ClientError> {
        let s = self.session(session)?;
        s.tx.send(Cmd::Typing)
            .await
            .map_err(|_| ClientError::UnknownSession)
    }

    /// The chat so far, from RAM.
    pub async fn history(&self, session: &str) -> Result<Vec<Line>, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(Cmd::History(tx))
            .await
            .map_err(|_| ClientError::UnknownSession)?;
        rx.await.map_err(|_| ClientError::UnknownSession)
    }

    /// One end-to-end encrypted round trip to the peer of `session`.
    pub async fn ping(&self, session: &str) -> Result<Duration, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(Cmd::Ping(tx))
            .await
            .map_err(|_| ClientError::UnknownSession)?;
        rx.await.map_err(|_| ClientError::NotOpen)
    }

    pub async fn leave(&self, session: &str) -> Result<(), ClientError> {
        let s = self.session(session)?;
        s.tx.send(Cmd::Leave)
            .await
            .map_err(|_| ClientError::UnknownSession)
    }

    /// Open sessions: `(session id, peer)`.
    pub fn sessions(&self) -> Vec<(String, String)> {
        lock(&self.inner.calls)
            .sessions()
            .map(|(id, h)| (id.clone(), h.peer.to_string()))
            .collect()
    }

    /// Friend requests waiting for an answer: `(from, safety number)`, for a UI that (re)loads.
    pub fn friend_requests(&self) -> Vec<(String, String)> {
        if self.inner.unlocked().is_err() {
            return Vec::new();
        }
        let waiting: Vec<(Username, Key32)> = lock(&self.inner.requests)
            .iter()
            .map(|(from, (ak, _))| (from.clone(), *ak))
            .collect();
        waiting
            .iter()
            .map(|(from, ak)| (from.to_string(), self.inner.safety_with(from, ak)))
            .collect()
    }

    /// Rings waiting for an answer: `(ring id, caller)`. A UI that (re)loads while one rings — after
    /// a panic, or a ring that came while the window was hidden — shows it from here.
    pub fn incoming_rings(&self) -> Vec<(String, String)> {
        if self.inner.unlocked().is_err() {
            return Vec::new();
        }
        lock(&self.inner.calls)
            .waiting()
            .map(|(id, from)| (id.clone(), from.to_string()))
            .collect()
    }

    /// Ends every session with `bye` and waits until each has zeroized its state.
    pub async fn panic(&self) {
        self.inner.lock_app();
        self.stop_scan();
        let handles: Vec<SessionHandle> = lock(&self.inner.calls)
            .sessions()
            .map(|(_, h)| h.clone())
            .collect();
        let mut waits = Vec::new();
        for h in handles {
            let (tx, rx) = oneshot::channel();
            if h.tx.send(Cmd::Wipe(tx)).await.is_ok() {
                waits.push(rx);
            }
        }
        for w in waits {
            let _ = w.await;
        }
        lock(&self.inner.calls).forget_rings();
        lock(&self.inner.requests).clear();
    }

    /// Wipes every session and closes the signaling connection.
    pub async fn shutdown(&self) {
        self.panic().await;
        lock(&self.inner.stop).cancel();
    }
}

impl Inner {
    fn emit(&self, ev: Event) {
        // Bounded: a front-end that stops reading (or a peer that outpaces it) cannot grow this
        // process without limit. Chat state stays queryable (`history`, `attachments`).
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(ev) {
            tracing::warn!("the front-end fell behind: an engine event was dropped");
        }
    }

    fn is_blocked(&self, who: &Username) -> bool {
        lock(&self.data).blocked.contains(who.as_str())
    }

    fn set_blocked(&self, who: &Username, blocked: bool) -> Result<(), ClientError> {
        let snapshot = {
            let mut data = lock(&self.data);
            let changed = if blocked {
                data.blocked.insert(who.to_string())
            } else {
                data.blocked.remove(who.as_str())
            };
            if !changed {
                return Ok(());
            }
            data.clone()
        };
        self.save_profile(&snapshot)
    }

    /// The user refused a ring or friend request from `who`; enough of them block `who`.
    fn refused(&self, who: &Username) {
        let n = {
            let mut r = lock(&self.refusals);
            let n = r.entry(who.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if n >= AUTO_BLOCK_AFTER && !self.is_blocked(who) && self.set_blocked(who, true).is_ok() {
            self.emit(Event::Blocked {
                username: who.to_string(),
                automatic: true,
            });
        }
    }

    fn pinned(&self, who: &Username) -> Option<Key32> {
        lock(&self.data)
            .contacts
            .get(who.as_str())
            .map(|c| c.ak_pub)
    }

    fn save_profile(&self, data: &ProfileData) -> Result<(), ClientError> {
        let key = lock(&self.identity)
            .as_ref()
            .map(|i| i.profile_key.clone())
            .ok_or(ClientError::NoIdentity)?;
        profile::save(&self.dir, &key, data)
    }

    /// Pins a contact's key on first use; a different key than the pinned one is refused, kept for
    /// the user's decision, and announced loudly.
    fn pin(&self, who: &Username, ak: Key32) -> Result<(), ClientError> {
        let snapshot = {
            let mut data = lock(&self.data);
            match data.contacts.get(who.as_str()) {
                Some(c) if c.ak_pub == ak => return Ok(()),
                Some(c) => {
                    let pinned = c.ak_pub;
                    drop(data);
                    lock(&self.changed_keys).insert(who.clone(), ak);
                    self.warn_key_changed(who, pinned, ak);
                    return Err(ClientError::KeyChanged(who.to_string()));
                }
                None => {
                    data.contacts.insert(
                        who.to_string(),
                        Contact {
                            ak_pub: ak,
                            verified: false,
                        },
                    );
                    data.clone()
                }
            }
        };
        self.save_profile(&snapshot)
    }

    fn my_ak(&self) -> Option<(Username, Key32)> {
        lock(&self.identity)
            .as_ref()
            .map(|i| (i.username.clone(), i.ak_pub()))
    }

    fn safety_with(&self, who: &Username, ak: &Key32) -> String {
        self.my_ak()
            .map(|(me, my_ak)| safety::grouped(&safety::safety_number(&me, &my_ak, who, ak)))
            .unwrap_or_default()
    }

    fn on_friend_request(&self, from: Username, ak: Key32, sig: Sig64) {
        if self.is_blocked(&from) {
            let _ = self.signaling.send(ClientMsg::FriendDecline { from });
            return;
        }
        let Some((me, my_ak)) = self.my_ak() else {
            return;
        };
        if verify(&ak, &friend_bytes(&from, &ak, &me, &my_ak), &sig).is_err() {
            return self.emit(Event::Warning {
                message: "ignored a friend request with a bad signature".into(),
            });
        }
        if self.pinned(&from).is_some_and(|k| k != ak) {
            let _ = self.pin(&from, ak);
            return;
        }
        let safety_number = self.safety_with(&from, &ak);
        lock(&self.requests).insert(from.clone(), (ak, sig));
        self.emit(Event::FriendRequest {
            from: from.to_string(),
            safety_number,
        });
    }
}

impl signaling::Host for Inner {
    fn sign_auth(
        &self,
        nonce: &[u8; 32],
        origin: &str,
    ) -> Result<(Username, String, Sig64), ClientError> {
        let id = lock(&self.identity);
        let id = id.as_ref().ok_or(ClientError::NoIdentity)?;
        let bytes = anonchat_proto::signing::auth_bytes(nonce, origin, &id.username, &id.device_id);
        Ok((
            id.username.clone(),
            id.device_id.clone(),
            id.sign_dk(&bytes),
        ))
    }

    fn fresh_otks(&self, count: usize) -> Vec<SignedOtk> {
        let mut guard = lock(&self.identity);
        let Some(id) = guard.as_mut() else {
            return Vec::new();
        };
        id.account.generate_one_time_keys(count);
        let keys: Vec<Key32> = id
            .account
            .one_time_keys()
            .values()
            .map(|k| Key32(k.to_bytes()))
            .collect();
        id.account.mark_keys_as_published();
        keys.into_iter()
            .map(|key| SignedOtk {
                sig: id.sign_dk(&one_time_key_bytes(&id.device_id, &key)),
                key,
            })
            .collect()
    }

    fn on_event(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::IncomingRing {
                ring_id,
                from,
                ak_pub,
            } => self.on_incoming_ring(ring_id, from, ak_pub),
            ServerMsg::RingAccepted { ring_id, peer, otk } => {
                self.on_ring_accepted(ring_id, peer, otk)
            }
            ServerMsg::RingConnected { ring_id, peer } => self.on_ring_connected(ring_id, peer),
            ServerMsg::Relayed { ring_id, blob } => {
                if let Some(s) = lock(&self.calls).session(&ring_id) {
                    let _ = s.tx.try_send(Cmd::Relayed(blob.0));
                }
            }
            ServerMsg::RingEnded { ring_id, reason } => {
                let ended = lock(&self.calls).ended(&ring_id);
                match ended {
                    calls::OnEnded::RouteClosed(s) => {
                        let _ = s.tx.try_send(Cmd::RouteClosed);
                    }
                    calls::OnEnded::Quiet => {}
                    calls::OnEnded::Tell => self.emit(Event::RingEnded { ring_id, reason }),
                }
            }
            ServerMsg::FriendRequestIn { from, ak_pub, sig } => {
                self.on_friend_request(from, ak_pub, sig)
            }
            ServerMsg::FriendAdded { username, ak_pub } if self.pin(&username, ak_pub).is_ok() => {
                let safety_number = self.safety_with(&username, &ak_pub);
                self.emit(Event::FriendAdded {
                    username: username.to_string(),
                    safety_number,
                });
            }
            ServerMsg::EnrollRequest {
                device_id,
                dk_ed25519,
                dk_curve25519,
                caps,
                otk,
            } => self.on_enroll_request(device_id, dk_ed25519, dk_curve25519, caps, otk),
            ServerMsg::DeviceRevoked { device_id, ts, sig } => {
                self.on_device_revoked(device_id, ts, sig)
            }
            ServerMsg::AccountKeyRotated {
                rotation,
                cert,
                by,
                blob,
            } => self.on_account_key_rotated(*rotation, cert, by, blob),
            ServerMsg::KeyRotated { username, ak_pub } => {
                // Checked against our pin like any key the server names: loud unless unchanged.
                let _ = self.pin(&username, ak_pub);
            }
            ServerMsg::FriendRemoved { username } => self.emit(Event::FriendRemoved {
                username: username.to_string(),
            }),
            ServerMsg::Presence {
                username,
                online,
                recently_active,
            } => self.emit(Event::Presence {
                username: username.to_string(),
                online,
                recently_active,
            }),
            _ => {}
        }
    }

    fn on_connected(&self) {
        self.pin_first_key();
        self.emit(Event::Connected);
        // Fresh ICE servers and TURN credential for the sessions to come.
        if let Some(inner) = self.me.upgrade() {
            tokio::spawn(async move {
                let engine = Engine { inner };
                if let Err(e) = engine.refresh_ice(true).await {
                    tracing::debug!(error = %e, "could not fetch ICE servers");
                }
            });
        }
    }

    fn on_disconnected(&self, retry_in: Duration) {
        let _ = self.pin_check();
        // The server drops a device's routes with its socket: open chats go on, but can no
        // longer be repaired by an ICE restart (and end at the usual silence limit).
        for (_, s) in lock(&self.calls).sessions() {
            let _ = s.tx.try_send(Cmd::RouteClosed);
        }
        self.emit(Event::Disconnected {
            retry_in_ms: retry_in.as_millis() as u64,
        });
    }
}

impl SessionHost for Inner {
    fn relay(&self, ring_id: &str, blob: Vec<u8>) {
        let _ = self.signaling.send(ClientMsg::Relay {
            ring_id: ring_id.to_string(),
            blob: anonchat_proto::bytes::Blob(blob),
        });
    }

    fn hangup(&self, ring_id: &str) {
        self.signaling_hangup(ring_id);
    }

    fn emit(&self, ev: Event) {
        Inner::emit(self, ev);
    }

    fn outbound_session(
        &self,
        identity: Curve25519PublicKey,
        otk: Curve25519PublicKey,
    ) -> Result<Session, ClientError> {
        let id = lock(&self.identity);
        let id = id.as_ref().ok_or(ClientError::NoIdentity)?;
        id.account
            .create_outbound_session(SessionConfig::version_1(), identity, otk)
            .map_err(|e| ClientError::Crypto(e.to_string()))
    }

    fn inbound_session(
        &self,
        identity: Curve25519PublicKey,
        msg: &PreKeyMessage,
    ) -> Result<(Session, Zeroizing<Vec<u8>>), ClientError> {
        let mut id = lock(&self.identity);
        let id = id.as_mut().ok_or(ClientError::NoIdentity)?;
        let created = id
            .account
            .create_inbound_session(SessionConfig::version_1(), identity, msg)
            .map_err(|e| ClientError::Crypto(e.to_string()))?;
        Ok((created.session, Zeroizing::new(created.plaintext)))
    }

    fn my_cert(&self) -> Option<DeviceCert> {
        lock(&self.identity).as_ref().map(|i| i.cert.clone())
    }

    fn ice(&self) -> IceConfig {
        self.ice_config()
    }

    fn max_file_size(&self) -> u64 {
        Inner::max_file_size(self)
    }

    fn chat_limits(&self) -> crate::quota::ChatLimits {
        Inner::chat_limits(self)
    }

    fn session_over(&self, id: &str) {
        lock(&self.calls).over(id);
    }
}
