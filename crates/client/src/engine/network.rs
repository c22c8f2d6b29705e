//! How sessions reach peers: the ICE servers and short-lived TURN credential the server hands out
//! (fetched after each connect, and again before a session when close to expiry), and the user's
//! "hide my IP" choice — relay only, on by default whenever the server has a relay.

use anonchat_proto::wire::{ClientMsg, IceServer, ServerMsg};

use super::{lock, unix_now, Engine, Inner};
use crate::error::SignalingError;
use crate::transport::IceConfig;
use crate::ClientError;

/// A credential this close to expiry is replaced before the next session.
const REFRESH_MARGIN_SECS: u64 = 60;

#[derive(Default)]
pub(super) struct IceState {
    servers: Vec<IceServer>,
    /// When the TURN credential in `servers` stops working (0: none fetched yet).
    expires_at: u64,
    /// The server has a TURN relay.
    relay: bool,
}

/// The network settings as a front-end shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NetworkView {
    /// The user's choice ("hide my IP"); on unless they chose direct connections.
    pub hide_ip: bool,
    /// The server offers a TURN relay.
    pub relay_available: bool,
    /// What the next session does: relay only (peers never see this device's address).
    pub ip_hidden: bool,
}

impl Inner {
    pub(super) fn ice_config(&self) -> IceConfig {
        let hide = !lock(&self.data).direct_connections;
        let ice = lock(&self.ice);
        IceConfig {
            servers: ice.servers.clone(),
            relay_only: hide && ice.relay,
        }
    }

    pub(super) fn set_public_ice(&self, servers: Vec<IceServer>) {
        let mut ice = lock(&self.ice);
        if ice.expires_at == 0 {
            ice.servers = servers;
        }
    }
}

impl Engine {
    pub fn network(&self) -> NetworkView {
        let hide_ip = !lock(&self.inner.data).direct_connections;
        let relay_available = lock(&self.inner.ice).relay;
        NetworkView {
            hide_ip,
            relay_available,
            ip_hidden: hide_ip && relay_available,
        }
    }

    /// "Hide my IP": relay only (when the server has a relay), or direct connections.
    pub async fn set_hide_ip(&self, hide: bool) -> Result<(), ClientError> {
        {
            let mut data = lock(&self.inner.data);
            data.direct_connections = !hide;
        }
        self.inner.save_profile().wait().await
    }

    /// Fetches ICE servers and a TURN credential when there is none yet, it is close to expiry,
    /// or `force` (after a reconnect the server's relay setup may have changed).
    pub(super) async fn refresh_ice(&self, force: bool) -> Result<(), ClientError> {
        let now = unix_now();
        if !force && lock(&self.inner.ice).expires_at > now + REFRESH_MARGIN_SECS {
            return Ok(());
        }
        match self.inner.signaling.request(ClientMsg::IceServers).await? {
            ServerMsg::IceServers {
                ice_servers,
                expires_at,
                relay,
            } => {
                *lock(&self.inner.ice) = IceState {
                    servers: ice_servers,
                    expires_at,
                    relay,
                };
                Ok(())
            }
            _ => Err(ClientError::Signaling(SignalingError::UnexpectedAnswer)),
        }
    }
}
