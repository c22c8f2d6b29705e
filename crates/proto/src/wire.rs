//! Client ↔ server messages: JSON text over one WebSocket per device (plus `POST /v1/register`).
//!
//! Every message is an object `{"v":1, "id"?: n, "t": "<type>", ...}`. A client request may carry an
//! `id`; the server's direct answer carries it back as `re`. Unsolicited server events have no `re`.

use serde::{Deserialize, Serialize};

use crate::bytes::Blob;
use crate::fvc::CodeFormat;
use crate::pow::Stamp;
use crate::rotation::AkRotation;
use crate::{limits, DeviceCert, Key32, ProtoError, Sig64, Username};

/// A one-time key, signed by the device's Ed25519 key over `signing::one_time_key_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOtk {
    pub key: Key32,
    pub sig: Sig64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEnvelope {
    pub v: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(flatten)]
    pub msg: ClientMsg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Answer to `challenge`: Ed25519 signature of the device over `signing::auth_bytes`.
    Auth {
        username: Username,
        device_id: String,
        sig: Sig64,
    },
    /// Adds one-time keys (kept in server RAM while this socket lives).
    UploadOtks {
        keys: Vec<SignedOtk>,
    },
    /// Asks for an account key, to befriend. Gated by the target's discovery mode.
    Lookup {
        username: Username,
        /// The target's Friend Verification Code, where its mode asks for one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Proof of work over `pow::contact_resource(me, target)`: required with a code, and after
        /// repeated `not_found` answers (`pow_required`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pow: Option<Stamp>,
    },
    /// `sig`: this account's AK over `signing::friend_bytes(me, my_ak, to, their_ak)`.
    FriendRequest {
        to: Username,
        sig: Sig64,
        /// The target's Friend Verification Code, where its mode asks for one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Proof of work over `pow::contact_resource(me, target)`: required with a code, and after
        /// repeated `not_found` answers (`pow_required`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pow: Option<Stamp>,
    },
    FriendAccept {
        from: Username,
        sig: Sig64,
    },
    FriendDecline {
        from: Username,
    },
    Unfriend {
        username: Username,
    },
    ListFriends,
    /// Starts a ring to every online device of `to`.
    Ring {
        to: Username,
        /// The target's Friend Verification Code, where its mode asks for one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Proof of work over `pow::contact_resource(me, target)`: required with a code, and after
        /// repeated `not_found` answers (`pow_required`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pow: Option<Stamp>,
        /// A ring between members of a group (`group::pass_token` of its id): it passes the gate
        /// only when this device and a device of `to` joined that token, and reaches only those.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<Key32>,
        /// The group's admin rings a friend into a group: an ordinary ring, shown as an invite.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        invite: bool,
    },
    /// This device is in the group of `token` (`group::pass_token`), until it leaves or
    /// disconnects: members who are not friends may ring it with that token.
    GroupJoin {
        token: Key32,
    },
    GroupLeave {
        token: Key32,
    },
    /// Sets this account's discovery mode. Switching to STRICT rotates the code's salt.
    SetMode {
        mode: Mode,
        #[serde(default)]
        always_require_code: bool,
        #[serde(default)]
        format: CodeFormat,
    },
    GetMode,
    /// What friends see of this account's presence.
    SetPresence {
        presence: PresenceMode,
    },
    /// STUN/TURN servers with a fresh short-lived TURN credential (coturn's REST scheme).
    IceServers,
    /// The TOTP seed of this account's code, for its own devices to show the live code.
    FvcSeed,
    /// New salt: every earlier code and share link stops working.
    RotateCode,
    /// Use a code of the user's choosing instead of the rotating one (`None`: back to rotating).
    /// The server keeps only its Argon2id hash.
    SetStaticCode {
        #[serde(default)]
        code: Option<String>,
    },
    /// Deletes this account: `sig` by the account key over `signing::delete_account_bytes`.
    DeleteAccount {
        ts: u64,
        sig: Sig64,
    },
    /// PUBLIC accounts whose names start with `prefix` (at least 3 characters).
    Search {
        prefix: String,
    },
    /// Opens an enrollment for a new device of this account. `code`: 8 Crockford characters;
    /// `sig`: the account key over `signing::enroll_token_bytes(username, code, expires)`.
    EnrollOpen {
        code: String,
        expires: u64,
        sig: Sig64,
    },
    /// Sent by a new device *instead of* `auth`: joins the enrollment with this code, proving it
    /// holds the keys it wants certified (`sig`: its Ed25519 key over `signing::enroll_join_bytes`).
    /// `otk`: one signed one-time key, for the Olm session the old device hands the account over in.
    EnrollJoin {
        code: String,
        device_id: String,
        dk_ed25519: Key32,
        dk_curve25519: Key32,
        #[serde(default)]
        caps: crate::Caps,
        otk: SignedOtk,
        sig: Sig64,
    },
    /// The old device approves the new one: the certificate it signed, and the handover (an Olm
    /// pre-key message to the new device) that the server passes on unread.
    EnrollApprove {
        device_id: String,
        cert: DeviceCert,
        blob: Blob,
    },
    EnrollDecline {
        device_id: String,
    },
    /// This account's devices.
    ListDevices,
    /// `sig`: the account key over `signing::revoke_device_bytes(username, device_id, ts)`.
    RevokeDevice {
        device_id: String,
        ts: u64,
        sig: Sig64,
    },
    /// A device of this account's own one-time key, to seal the rotated account key to it. Only for
    /// online, unrevoked devices of the asker's account; the key is claimed (gone) like a ring's.
    ClaimDeviceOtk {
        device_id: String,
    },
    /// Replaces this account's key (DESIGN P8, after a lost device). `rotation`: its old key is the
    /// key on record; `certs`: the new key's certificate for every unrevoked device; `handovers`: the
    /// new key's secret for every other unrevoked device (each online now), an Olm pre-key message to
    /// that device's claimed one-time key. This account's halves of its friendship edges are then
    /// re-signed with `friend_resign`.
    RotateAccountKey {
        rotation: AkRotation,
        certs: Vec<DeviceCert>,
        handovers: Vec<DeviceBlob>,
    },
    /// The account-key rotations of this account or of a friend, oldest first.
    KeyHistory {
        username: Username,
    },
    /// This account's half of a friendship edge, re-signed over both accounts' current keys: after
    /// this account rotated its key, or after trusting a friend's rotated key.
    FriendResign {
        username: Username,
        sig: Sig64,
    },
    /// Callee device answers a ring.
    Answer {
        ring_id: String,
        accept: bool,
    },
    /// Caller gives up ringing, or either side releases the relay route of an answered ring.
    Hangup {
        ring_id: String,
    },
    /// An end-to-end encrypted blob for the other device of an answered ring.
    Relay {
        ring_id: String,
        blob: Blob,
    },
    Ping,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEnvelope {
    pub v: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<u64>,
    #[serde(flatten)]
    pub msg: ServerMsg,
}

/// Who can reach an account (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Anyone who knows the name; listed in search; lookups say online or offline.
    Public,
    /// Anyone with the exact name, while the account is online.
    #[default]
    Default,
    /// Name and current code, while online.
    Strict,
}

/// What friends see of an account's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PresenceMode {
    /// Online and offline as they happen.
    #[default]
    Exact,
    /// Only "recently active" (online now or within 15 minutes), never the moment.
    Recent,
    /// Always offline to friends, who can still ring; strangers cannot reach it at all.
    Hidden,
}

impl PresenceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceMode::Exact => "exact",
            PresenceMode::Recent => "recent",
            PresenceMode::Hidden => "hidden",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(PresenceMode::Exact),
            "recent" => Some(PresenceMode::Recent),
            "hidden" => Some(PresenceMode::Hidden),
            _ => None,
        }
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Public => "public",
            Mode::Default => "default",
            Mode::Strict => "strict",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Mode::Public),
            "default" => Some(Mode::Default),
            "strict" => Some(Mode::Strict),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed, oversized or out-of-place message. Nothing changed.
    BadRequest,
    /// The one answer for unknown, offline, or not reachable under the target's mode.
    NotFound,
    /// Authentication failed or is required first.
    Unauthorized,
    /// The name is taken (registration only).
    Taken,
    RateLimited,
    /// The request needs a proof-of-work stamp (`contact_pow_bits` of `/v1/config`): it carried a
    /// code, or this requester had many `not_found` answers lately.
    PowRequired,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingEnd {
    Declined,
    Timeout,
    AnsweredElsewhere,
    Cancelled,
    /// The callee has no one-time key left, or went away while ringing.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendInfo {
    pub username: Username,
    pub ak_pub: Key32,
    pub online: bool,
    /// For accounts that show only "recently active": online now or within the last 15 minutes.
    #[serde(default)]
    pub recently_active: bool,
}

/// An end-to-end encrypted blob for one device of this account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBlob {
    pub device_id: String,
    pub blob: Blob,
}

/// One device of an account, as `list_devices` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub cert: DeviceCert,
    pub online: bool,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First message on every socket.
    Challenge {
        nonce: Key32,
        origin: String,
    },
    AuthOk {
        otk_count: u32,
    },
    Ok,
    Error {
        code: ErrorCode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The device should upload more one-time keys.
    OtkLow {
        count: u32,
    },
    User {
        username: Username,
        ak_pub: Key32,
        online: bool,
    },
    Mode {
        mode: Mode,
        always_require_code: bool,
        format: CodeFormat,
        presence: PresenceMode,
    },
    /// Answer to `ice_servers`.
    IceServers {
        ice_servers: Vec<IceServer>,
        /// Unix seconds after which the TURN credential is refused.
        expires_at: u64,
        /// A TURN relay is among the servers (so "hide my IP" can work).
        relay: bool,
    },
    FvcSeed {
        seed: Key32,
        format: CodeFormat,
        step: u64,
    },
    Users {
        users: Vec<Username>,
    },
    FriendRequestIn {
        from: Username,
        ak_pub: Key32,
        sig: Sig64,
    },
    FriendAdded {
        username: Username,
        ak_pub: Key32,
    },
    FriendRemoved {
        username: Username,
    },
    Friends {
        friends: Vec<FriendInfo>,
    },
    Presence {
        username: Username,
        online: bool,
        #[serde(default)]
        recently_active: bool,
    },
    Ringing {
        ring_id: String,
    },
    IncomingRing {
        ring_id: String,
        from: Username,
        ak_pub: Key32,
        /// The token of a ring between group members (see `ring`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<Key32>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        invite: bool,
    },
    /// To the caller: who answered, and one of that device's one-time keys (claimed, now gone).
    RingAccepted {
        ring_id: String,
        peer: DeviceCert,
        otk: SignedOtk,
    },
    /// To the answering device: who is calling, from which device.
    RingConnected {
        ring_id: String,
        peer: DeviceCert,
    },
    RingEnded {
        ring_id: String,
        reason: RingEnd,
    },
    Relayed {
        ring_id: String,
        blob: Blob,
    },
    /// To a device that joined an enrollment: the token it joined, to check against the account key.
    EnrollPending {
        username: Username,
        ak_pub: Key32,
        expires: u64,
        sig: Sig64,
    },
    /// To the device that opened the enrollment: a new device wants in.
    EnrollRequest {
        device_id: String,
        dk_ed25519: Key32,
        dk_curve25519: Key32,
        caps: crate::Caps,
        otk: SignedOtk,
    },
    /// To the new device: its certificate, the approving device's certificate, and the handover.
    Enrolled {
        cert: DeviceCert,
        by: DeviceCert,
        blob: Blob,
    },
    Devices {
        devices: Vec<DeviceInfo>,
    },
    /// To a revoked device, before its socket is closed (and instead of `auth_ok` when it connects):
    /// the account key's signed revocation, so the device can check it before wiping itself.
    DeviceRevoked {
        device_id: String,
        ts: u64,
        sig: Sig64,
    },
    /// Answer to `claim_device_otk`.
    DeviceOtk {
        device_id: String,
        otk: SignedOtk,
    },
    /// To every other online device of an account whose key was rotated: the statement, this
    /// device's new certificate, the rotating device's new certificate, and the new key's secret in
    /// an Olm pre-key message from that device (a `Handover` with no contacts).
    AccountKeyRotated {
        rotation: Box<AkRotation>,
        cert: DeviceCert,
        by: DeviceCert,
        blob: Blob,
    },
    /// To a friend's online devices: that account's key was rotated (fetch `key_history`).
    KeyRotated {
        username: Username,
        ak_pub: Key32,
    },
    /// Answer to `key_history`, oldest first.
    KeyHistory {
        username: Username,
        rotations: Vec<AkRotation>,
    },
    Pong,
}

impl ClientEnvelope {
    pub fn new(id: Option<u64>, msg: ClientMsg) -> Self {
        Self {
            v: crate::VERSION,
            id,
            msg,
        }
    }

    /// Parses a WebSocket text message, enforcing the size limits and version.
    pub fn parse(text: &str) -> Result<Self, ProtoError> {
        let env: Self = parse_versioned(text, |e: &Self| e.v)?;
        if let ClientMsg::Relay { blob, .. } = &env.msg {
            check_size(blob.0.len(), limits::MAX_RELAY_BLOB)?;
        }
        if let ClientMsg::UploadOtks { keys } = &env.msg {
            if keys.len() > limits::MAX_ONE_TIME_KEYS {
                return Err(ProtoError::TooMany {
                    what: "one-time keys",
                    count: keys.len(),
                    limit: limits::MAX_ONE_TIME_KEYS,
                });
            }
        }
        Ok(env)
    }
}

impl ServerEnvelope {
    pub fn new(re: Option<u64>, msg: ServerMsg) -> Self {
        Self {
            v: crate::VERSION,
            re,
            msg,
        }
    }

    pub fn parse(text: &str) -> Result<Self, ProtoError> {
        parse_versioned(text, |e: &Self| e.v)
    }

    pub fn error(re: Option<u64>, code: ErrorCode, detail: Option<String>) -> Self {
        Self::new(re, ServerMsg::Error { code, detail })
    }
}

/// A WebSocket message: within the size limit, JSON of `T`, of our protocol version.
fn parse_versioned<T: serde::de::DeserializeOwned>(
    text: &str,
    version: impl Fn(&T) -> u8,
) -> Result<T, ProtoError> {
    check_size(text.len(), limits::MAX_WS_MESSAGE)?;
    let env: T = serde_json::from_str(text).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    match version(&env) {
        crate::VERSION => Ok(env),
        other => Err(ProtoError::BadVersion(other)),
    }
}

pub fn check_size(size: usize, limit: usize) -> Result<(), ProtoError> {
    if size > limit {
        Err(ProtoError::TooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// The origin a device signs when it authenticates: `scheme://host[:port]`, lowercase, without a
/// trailing slash or path.
pub fn normalize_origin(url: &str) -> String {
    let url = url.trim().trim_end_matches('/').to_ascii_lowercase();
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url[..i + 3 + j].to_string(),
            None => url,
        },
        None => url,
    }
}

mod http;
pub use http::{DeleteRequest, HttpError, IceServer, RegisterRequest, ServerConfig};

#[cfg(test)]
mod tests;
