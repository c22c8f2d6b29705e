//! The bodies of the HTTP routes (protocol §5): registration, a deletion sent without a session,
//! and the client configuration.

use serde::{Deserialize, Serialize};

use super::ServerEnvelope;
use crate::pow::Stamp;
use crate::{DeviceCert, Key32, Sig64, Username};

/// `POST /v1/register` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub v: u8,
    pub username: Username,
    pub ak_pub: Key32,
    pub device_cert: DeviceCert,
    /// Over `pow::register_resource(username, ak_pub)`.
    pub pow: Stamp,
}

/// `POST /v1/delete` body: an account's deletion, signed by its account key over
/// `signing::delete_account_bytes(username, ts)` and sent without a session — a burner whose
/// machine erased its keys before the server could be told resends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub v: u8,
    pub username: Username,
    pub ts: u64,
    pub sig: Sig64,
}

/// `GET /v1/config` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub v: u8,
    /// Proof-of-work bits a registration must pay.
    pub register_pow_bits: u8,
    /// Proof-of-work bits a lookup, ring or friend request pays when it must carry a stamp.
    #[serde(default)]
    pub contact_pow_bits: u8,
    /// ICE servers for WebRTC (empty on the one-machine default: host candidates only).
    pub ice_servers: Vec<IceServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Every HTTP error body: `{"v":1,"t":"error","code":…,"detail"?:…}`.
pub type HttpError = ServerEnvelope;
