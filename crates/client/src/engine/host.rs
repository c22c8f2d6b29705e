//! The engine as host of its two drivers: the signaling connection (`signaling::Host`: auth,
//! one-time keys, server events) and the sessions (`SessionHost`: relay, Olm sessions, limits).

use std::time::Duration;

use anonchat_proto::signing::one_time_key_bytes;
use anonchat_proto::wire::{ClientMsg, ServerMsg, SignedOtk};
use anonchat_proto::{DeviceCert, Key32, Sig64, Username};
use vodozemac::olm::{PreKeyMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use super::{calls, lock, Engine, Inner};
use crate::error::{ProfileError, SessionError};
use crate::events::Event;
use crate::session::{Cmd, SessionHost};
use crate::signaling;
use crate::transport::IceConfig;
use crate::ClientError;

impl signaling::Host for Inner {
    fn sign_auth(
        &self,
        nonce: &[u8; 32],
        origin: &str,
    ) -> Result<(Username, String, Sig64), ClientError> {
        let id = lock(&self.identity);
        let id = id
            .as_ref()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
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
                group,
                invite,
            } => self.on_incoming_ring(ring_id, from, ak_pub, group, invite),
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
                let ended = lock(&self.calls).ended(&ring_id, reason, std::time::Instant::now());
                match ended {
                    calls::OnEnded::RouteClosed(s) => {
                        let _ = s.tx.try_send(Cmd::RouteClosed);
                    }
                    calls::OnEnded::Quiet => {}
                    calls::OnEnded::Tell => {
                        self.group_ring_ended(&ring_id);
                        self.emit(Event::RingEnded { ring_id, reason })
                    }
                }
            }
            ServerMsg::FriendRequestIn { from, ak_pub, sig } => {
                self.on_friend_request(from, ak_pub, sig)
            }
            // Only a friendship this user asked for or accepted (either pinned the key then): the
            // server's word alone pins nobody.
            ServerMsg::FriendAdded { username, ak_pub }
                if self.pinned(&username).is_some() && self.pin(&username, ak_pub).is_ok() =>
            {
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
            // Checked against our pin like any key the server names: loud unless unchanged. A name
            // this device never pinned gets nothing pinned by the server's push.
            ServerMsg::KeyRotated { username, ak_pub } if self.pinned(&username).is_some() => {
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
        self.rejoin_groups();
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
        self.group_session_event(&ev);
        Inner::emit(self, ev);
    }

    fn outbound_session(
        &self,
        identity: Curve25519PublicKey,
        otk: Curve25519PublicKey,
    ) -> Result<Session, ClientError> {
        let id = lock(&self.identity);
        let id = id
            .as_ref()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        id.account
            .create_outbound_session(SessionConfig::version_1(), identity, otk)
            .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))
    }

    fn inbound_session(
        &self,
        identity: Curve25519PublicKey,
        msg: &PreKeyMessage,
    ) -> Result<(Session, Zeroizing<Vec<u8>>), ClientError> {
        let mut id = lock(&self.identity);
        let id = id
            .as_mut()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        let created = id
            .account
            .create_inbound_session(SessionConfig::version_1(), identity, msg)
            .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))?;
        Ok((created.session, Zeroizing::new(created.plaintext)))
    }

    fn my_cert(&self) -> Option<DeviceCert> {
        lock(&self.identity).as_ref().map(|i| i.cert.clone())
    }

    fn my_caps(&self) -> anonchat_proto::Caps {
        let caps = self.my_cert().map(|c| c.caps).unwrap_or_default();
        anonchat_proto::Caps {
            screen_protection: caps.screen_protection && !lock(&self.data).capture_unprotected,
        }
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

    fn closing(&self, close: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        self.closing.spawn(close);
    }

    fn group_frame(&self, id: &str, frame: crate::session::GroupFrame) {
        self.on_group_frame(id, frame);
    }
}
