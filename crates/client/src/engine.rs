//! The client engine: the one API every front-end (CLI, desktop) drives. Calls in, [`Event`]s out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use anonchat_proto::fvc::CodeFormat;
use anonchat_proto::wire::{normalize_origin, ClientMsg, ServerConfig, ServerMsg, SignedOtk};
use anonchat_proto::wire::{Mode, PresenceMode};
use anonchat_proto::{pow, Caps, DeviceCert, Key32, Sig64, Username};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::error::{ProfileError, SignalingError};
use crate::events::Event;
use crate::identity::Identity;
use crate::keychain::Keychain;
use crate::profile::{self, ProfileData};
use crate::session::{Cmd, SessionHandle};
use crate::signaling::{self, Signaling};
use crate::ClientError;

mod account;
mod calls;
mod chats;
mod deletion;
mod devices;
mod friends;
mod groups;
mod host;
mod lock;
mod media;
mod network;
mod retire;
mod rings;
mod rotation;
mod scan;
mod screen;
mod server_key;
mod trust;
pub(crate) use deletion::{Told, FILE as DELETION_FILE};
pub use devices::{DeviceView, EnrollView, EnrolledView};
pub use groups::{GroupView, MemberView};
pub use lock::LockView;
pub use network::NetworkView;
pub use rotation::{KeptDevice, RotationView};
pub use screen::CaptureView;

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
    /// The server's TLS key to expect when the profile has pinned none yet: a burner inherits its
    /// main profile's, so it never trusts a key on first use that the main profile would refuse.
    pub server_pin: Option<[u8; 32]>,
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
    /// Writes the profile folder off the runtime threads, in order (profile/writer.rs).
    writer: profile::Writer,
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
    /// Every group this device is in, and which rings and sessions are their links.
    groups: Mutex<groups::Groups>,
    /// Friend requests waiting for the user: from → (their AK, their signature).
    requests: Mutex<HashMap<Username, (Key32, Sig64)>>,
    /// New account keys seen for pinned contacts, waiting for the user's decision (the rules
    /// are `crate::trust`).
    pending_keys: Mutex<crate::trust::Pending>,
    /// Rings and friend requests the user refused, per requester (RAM): after
    /// [`AUTO_BLOCK_AFTER`] the requester is blocked.
    refusals: Mutex<HashMap<Username, u32>>,
    /// Locked or not, and the grant an entered passcode gives sensitive actions.
    lock_state: Mutex<crate::passcode::LockState>,
    /// With a passcode: the keychain record sealed under it (`crate::sealed`), and its key once
    /// the passcode opened it. Until then `identity` is `None`: nothing of the keys is in RAM.
    sealed: Mutex<Option<crate::sealed::Record>>,
    sealer: Mutex<Option<crate::sealed::Sealer>>,
    /// The enrollment this device opened, and the one new device that joined it.
    enroll_gate: Mutex<crate::enrollment::EnrollGate>,
    stop: Mutex<CancellationToken>,
    /// Transports closing after their chat ended (a `bye` leaving): shutdown waits for them, so
    /// quitting right after a panic still tells every peer.
    closing: tokio_util::task::TaskTracker,
    /// This account's code seed, once fetched (RAM only).
    fvc: Mutex<Option<(Zeroizing<[u8; 32]>, CodeFormat)>>,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    /// The server's TLS key pinned on first use, checked on every handshake.
    pin: Arc<crate::tls::ServerPin>,
    /// The refused TLS key the user was last told of (told once per key).
    pin_warned: Mutex<Option<[u8; 32]>>,
    /// This device is giving itself up (`retire.rs`), and wipes itself when done.
    retiring: std::sync::atomic::AtomicBool,
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
        .map_err(|e| ClientError::Profile(ProfileError::Keychain(e.to_string())))
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
        let sealed = secret
            .as_ref()
            .and_then(|s| crate::sealed::Record::parse(s.as_slice()));
        let identity = match (&secret, &sealed) {
            (Some(s), None) => Some(Identity::from_secret(s)?),
            _ => None,
        };
        // With a passcode the app starts locked: quitting and starting again is no way around it,
        // nor does it give back the guesses (their count is stored with the sealed record).
        let has_passcode =
            sealed.is_some() || identity.as_ref().is_some_and(|i| i.passcode_hash.is_some());
        let mut lock_state =
            crate::passcode::LockState::new(has_passcode).with_grant(lock::grant());
        if let Some(r) = &sealed {
            let wait = r
                .retry_at
                .saturating_sub(unix_now())
                .min(crate::passcode::MAX_WAIT.as_secs());
            lock_state.restore(
                r.wrong,
                std::time::Duration::from_secs(wait),
                std::time::Instant::now(),
            );
        }
        lock_state.lock();
        let mut data = match &identity {
            Some(id) => profile::load(&dir, &id.profile_key)?,
            None => ProfileData::default(),
        };
        if data.server_pin.is_none() {
            data.server_pin = cfg.server_pin.map(Key32);
        }
        let server = cfg
            .server
            .map(|s| normalize_origin(&s))
            .or_else(|| data.server.clone());
        let pin = Arc::new(crate::tls::ServerPin::default());
        pin.expect(data.server_pin.map(|k| k.0));
        let (http, tls) = crate::tls::clients(cfg.extra_ca_pem.as_deref(), pin.clone())?;
        let writer = profile::Writer::new(dir.clone())?;
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            profile: cfg.profile,
            writer,
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
            groups: Mutex::default(),
            requests: Mutex::default(),
            pending_keys: Mutex::default(),
            enroll_gate: Mutex::default(),
            lock_state: Mutex::new(lock_state),
            sealed: Mutex::new(sealed),
            sealer: Mutex::default(),
            refusals: Mutex::default(),
            stop: Mutex::new(CancellationToken::new()),
            closing: tokio_util::task::TaskTracker::new(),
            fvc: Mutex::default(),
            http,
            tls,
            pin,
            pin_warned: Mutex::default(),
            retiring: std::sync::atomic::AtomicBool::new(false),
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

    /// The link (and QR text) that adds this account where no code is needed; in modes that need
    /// one, `code()` gives the link with the current code.
    pub fn share_link(&self) -> Option<String> {
        lock(&self.inner.identity)
            .as_ref()
            .map(|i| anonchat_proto::fvc::share_link(&i.username, None))
    }

    pub fn server(&self) -> Option<String> {
        lock(&self.inner.server).clone()
    }

    /// The server to talk to, if this client may (`https://`, or `http://` to loopback) and its
    /// TLS key has not changed under a pin.
    fn server_or_err(&self) -> Result<String, ClientError> {
        let origin = self.server().ok_or_else(|| {
            ClientError::Signaling(SignalingError::Http(
                "no server configured for this profile".into(),
            ))
        })?;
        crate::tls::check_origin(&origin, self.inner.insecure_plain_http_on_lan)?;
        self.inner.pin_check()?;
        Ok(origin)
    }

    async fn server_config(&self, origin: &str) -> Result<ServerConfig, ClientError> {
        let resp =
            self.inner
                .http
                .get(format!("{origin}/v1/config"))
                .send()
                .await
                .map_err(|e| {
                    self.inner.pin_check().err().unwrap_or_else(|| {
                        ClientError::Signaling(SignalingError::Http(e.to_string()))
                    })
                })?;
        resp.json()
            .await
            .map_err(|e| ClientError::Signaling(SignalingError::Http(e.to_string())))
    }

    /// Starts (or restarts) the signaling connection; it reconnects by itself until shutdown.
    pub async fn connect(&self) -> Result<(), ClientError> {
        if lock(&self.inner.identity).is_none() {
            return Err(self.inner.no_identity());
        }
        let origin = self.server_or_err()?;
        match self.server_config(&origin).await {
            Ok(cfg) => {
                self.inner.set_public_ice(cfg.ice_servers);
                *lock(&self.inner.contact_pow_bits) = Some(cfg.contact_pow_bits);
            }
            Err(e @ ClientError::Signaling(SignalingError::ServerKeyChanged)) => return Err(e),
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
        self.inner
            .my_ak()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))
    }

    fn sign_ak(&self, msg: &[u8]) -> Result<Sig64, ClientError> {
        let id = lock(&self.inner.identity);
        Ok(id
            .as_ref()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?
            .sign_ak(msg))
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
            Err(ClientError::Signaling(SignalingError::PowRequired)) => {
                let stamp = self.contact_stamp(to).await?;
                signaling.request_then(build(Some(stamp)), first()).await
            }
            other => other,
        }
    }

    /// A front-end setting kept in the encrypted profile.
    pub fn ui_setting(&self, key: &str) -> Option<String> {
        lock(&self.inner.data).ui.get(key).cloned()
    }

    pub async fn set_ui_setting(&self, key: &str, value: &str) -> Result<(), ClientError> {
        {
            let mut data = lock(&self.inner.data);
            data.ui.insert(key.to_string(), value.to_string());
        }
        self.inner.save_profile().wait().await
    }

    /// What this device tells its peers it can do.
    pub fn caps(&self) -> Caps {
        self.inner.caps
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
        // Groups first, so they end as left rather than emptied by the wipes below.
        self.end_groups();
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

    /// Ends every group and chat as the user leaving them would (`bye`, then zeroized), without
    /// locking the app: for a front-end that lost its view of them (its renderer crashed), so no
    /// chat runs on that the user can neither see nor leave.
    pub async fn hang_up(&self) {
        self.end_groups();
        for (id, _) in self.sessions() {
            let _ = self.leave(&id).await;
        }
    }

    /// Wipes every session, lets their last words (`bye`) leave, and closes the signaling
    /// connection.
    pub async fn shutdown(&self) {
        self.panic().await;
        self.inner.closing.close();
        // Each close waits 250 ms at most for its data channel to drain.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.inner.closing.wait())
            .await;
        lock(&self.inner.stop).cancel();
    }
}

impl Inner {
    /// Why there is no identity in RAM: none yet, or one sealed under the passcode.
    fn no_identity(&self) -> ClientError {
        if lock(&self.sealed).is_some() {
            ClientError::Lock(crate::passcode::LockError::Locked)
        } else {
            ClientError::Profile(ProfileError::NoIdentity)
        }
    }

    /// The keychain record for this identity: sealed under the passcode when one is set.
    /// The sealed record kept in RAM follows, so stored guess counters never bring back an old one.
    fn identity_record(&self, plain: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
        let Some(record) = lock(&self.sealer).as_ref().map(|s| s.seal(&plain)) else {
            return plain;
        };
        let bytes = record.to_bytes();
        *lock(&self.sealed) = Some(record);
        bytes
    }

    fn emit(&self, ev: Event) {
        // Bounded: a front-end that stops reading (or a peer that outpaces it) cannot grow this
        // process without limit. Chat state stays queryable (`history`, `attachments`).
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(ev) {
            tracing::warn!("the front-end fell behind: an engine event was dropped");
        }
    }

    /// Hands the profile as it is now, sealed under this device's key, to the writer. Sealed and
    /// queued under the data lock, so the writes land in the order of the changes.
    fn save_profile(&self) -> profile::Written {
        let key = lock(&self.identity).as_ref().map(|i| i.profile_key.clone());
        match key {
            Some(key) => self.save_profile_under(&key),
            None => profile::Written::failed(ClientError::Profile(ProfileError::NoIdentity)),
        }
    }

    fn save_profile_under(&self, key: &[u8; 32]) -> profile::Written {
        let data = lock(&self.data);
        match profile::seal(key, &data) {
            Ok(sealed) => self.writer.write(sealed),
            Err(e) => profile::Written::failed(e),
        }
    }
}
