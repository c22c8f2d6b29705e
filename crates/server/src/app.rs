//! What every request handler shares: the hub, the per-address limits and the server's settings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::limits::PerIp;

pub struct App {
    pub hub: Hub,
    /// Strict server mode: nothing about accounts in the logs.
    pub quiet: bool,
    pub origin: String,
    pub pow_bits: u8,
    pub per_ip: PerIp,
    /// WebSockets at once, below the open-file limit (capacity.rs).
    pub websockets: crate::capacity::Counter,
    /// How fast each socket is served.
    pub pace: crate::pace::Budget,
    /// Whose request it is (trusted proxies, IPv6 prefixes).
    pub client_ip: Arc<crate::client_ip::ClientIp>,
    pub shutdown: CancellationToken,
    /// Registration stamps already spent, so one stamp pays once. RAM only, pruned by age.
    pub spent: Mutex<HashMap<[u8; 32], Instant>>,
}

impl App {
    /// The address a request counts against: the peer, or the client a trusted proxy names.
    pub fn client_key(
        &self,
        peer: SocketAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        self.client_ip.key(peer.ip(), forwarded)
    }
}
