//! Lookups and rings, and the signaling relay: start, answer, hang up, relay; TURN credentials for a chat.

use anonchat_proto::wire::{PresenceMode, ServerMsg};
use anonchat_proto::Username;
use std::collections::HashSet;

use super::{new_id, Hub, Refusal, Reply, Session};
use crate::clock::Now;
use crate::cluster::{RingOp, Stage};

impl Hub {
    pub(super) async fn lookup(
        &self,
        s: &Session,
        username: Username,
        code: Option<String>,
        now: Now,
    ) -> Reply {
        let reach = self
            .gate(&s.username, &username, code.as_deref(), now)
            .await?;
        // A friend's blurred or hidden presence is not revealed by a lookup either.
        let online = reach.online && reach.presence == PresenceMode::Exact;
        let ak_pub = reach.ak;
        Ok(ServerMsg::User {
            username,
            ak_pub,
            online,
        })
    }

    /// `invite`: the admin of a group rings a friend into it (an ordinary ring through the gate,
    /// shown as an invite, and only to the devices online now).
    pub(super) async fn ring(
        &self,
        s: &Session,
        to: Username,
        code: Option<String>,
        invite: bool,
        now: Now,
    ) -> Reply {
        let caller_ak = self.account_key(&s.username).await?;
        let reach = self.gate(&s.username, &to, code.as_deref(), now).await?;
        // A friend may ring an account with no device online: the ring waits (RAM only) for the
        // first device to connect in time — a wake intent. Anyone else needs the account online.
        let wake = reach.friends && self.wake_intents && !invite;
        if !reach.online && !wake {
            return Err(Refusal::NotFound);
        }
        // Devices of the callee coming online while it rings join the ring (remote.rs).
        self.watch(&to).await;
        let devices: HashSet<String> = self.devices_anywhere(&to).await;
        let mut st = self.lock();
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
            now.at,
        )?;
        if invite {
            st.rings.close_to_wakes(&ring_id);
        }
        st.metrics.rings_started.inc();
        for d in &devices {
            let msg = ServerMsg::IncomingRing {
                ring_id: ring_id.clone(),
                from: s.username.clone(),
                ak_pub: caller_ak,
                group: None,
                invite,
            };
            st.send_ring(d, msg, Some((&ring_id, Stage::Ringing)));
        }
        Ok(ServerMsg::Ringing { ring_id })
    }

    pub(super) async fn answer_ring(
        &self,
        s: &Session,
        ring_id: String,
        accept: bool,
        now: Now,
    ) -> Reply {
        if let Some(r) = self
            .ring_elsewhere(s, &ring_id, RingOp::Answer { accept })
            .await
        {
            return r;
        }
        let mut st = self.lock();
        let out = st.rings.answer(&ring_id, &s.device_id, accept, now.at)?;
        st.apply(out);
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn hangup(&self, s: &Session, ring_id: String) -> Reply {
        if let Some(r) = self.ring_elsewhere(s, &ring_id, RingOp::Hangup).await {
            return r;
        }
        let mut st = self.lock();
        let out = st.rings.hangup(&ring_id, &s.device_id)?;
        st.apply(out);
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn relay(
        &self,
        s: &Session,
        ring_id: String,
        blob: anonchat_proto::bytes::Blob,
    ) -> Reply {
        // Only with Redis is the blob copied for a ring another instance may own.
        if self.cluster.is_some() {
            let op = RingOp::Relay { blob: blob.clone() };
            if let Some(r) = self.ring_elsewhere(s, &ring_id, op).await {
                return r;
            }
        }
        let st = self.lock();
        let to = st.rings.route(&ring_id, &s.device_id)?;
        st.metrics.relayed_bytes.inc_by(blob.0.len() as u64);
        st.send_device(to, ServerMsg::Relayed { ring_id, blob });
        Ok(ServerMsg::Ok)
    }

    /// TURN credentials only for authenticated devices: the relay is not an open proxy.
    pub(super) fn ice_servers(&self, now: Now) -> Reply {
        let (ice_servers, expires_at) = self.turn.issue(now.unix);
        Ok(ServerMsg::IceServers {
            ice_servers,
            expires_at,
            relay: self.turn.has_relay(),
        })
    }
}
