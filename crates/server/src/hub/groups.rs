//! Groups (DESIGN §10): a device joins a group's pass token, and members who are not friends ring
//! each other with it. The pass is the gate for such a ring: it reaches only the callee's devices
//! that joined the same token, and only from a device that joined it too (group_pass.rs). The
//! server learns a token and which devices hold it, never the group's id, roster or content.

use std::collections::HashSet;

use anonchat_proto::wire::ServerMsg;
use anonchat_proto::{Key32, Username};

use super::{bad, new_id, Hub, Refusal, Reply, Session};
use crate::clock::Now;
use crate::cluster::{self, Stage};

impl Hub {
    /// With Redis, the pass is shared before the answer: a member told `ok` may be rung from
    /// any instance at once.
    pub(super) async fn group_join(&self, s: &Session, token: Key32) -> Reply {
        self.lock()
            .passes
            .join(&s.device_id, token.0)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(cluster) = self.cluster.as_deref() {
            if let Err(e) = cluster::pass_join(cluster, &token.0, &s.device_id).await {
                self.lock().passes.leave(&s.device_id, &token.0);
                tracing::warn!(error = %e, "sharing a group pass in redis failed");
                return Err(Refusal::Gone("the server could not record the pass".into()));
            }
        }
        Ok(ServerMsg::Ok)
    }

    /// Leaving a group not joined is no error (the pass may have gone with a reconnect).
    pub(super) async fn group_leave(&self, s: &Session, token: Key32) -> Reply {
        self.lock().passes.leave(&s.device_id, &token.0);
        if let Some(cluster) = self.cluster.as_deref() {
            // Lapses on its own if this fails.
            let _ = cluster::pass_leave(cluster, &token.0, &s.device_id).await;
        }
        Ok(ServerMsg::Ok)
    }

    /// The device's socket closed: its passes go here and in Redis.
    pub(super) async fn passes_gone(&self, device: &str) {
        let tokens = {
            let mut st = self.lock();
            let tokens = st.passes.tokens(device);
            st.passes.gone(device);
            tokens
        };
        if let Some(cluster) = self.cluster.as_deref() {
            for t in tokens {
                let _ = cluster::pass_leave(cluster, &t, device).await;
            }
        }
    }

    /// Every `Cluster::refresh_every`, with presence: the passes held here stay shared. A pass
    /// given up while the refresh ran was written back from the snapshot: it is taken out again,
    /// or a removed member could ring through it for a presence TTL.
    pub(super) async fn refresh_passes(&self) {
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        let held = self.lock().passes.all();
        if let Err(e) = cluster::refresh_passes(cluster, &held).await {
            tracing::warn!(error = %e, "refreshing group passes in redis failed");
        }
        let now: HashSet<_> = self.lock().passes.all().into_iter().collect();
        for (token, device) in held.iter().filter(|p| !now.contains(*p)) {
            let _ = cluster::pass_leave(cluster, token, device).await;
        }
    }

    /// A ring between members. Gated like any ring (rate limits, backoff, the timing floor, the
    /// one `not_found`), but the friendship and discovery mode do not open it: the pass does.
    pub(super) async fn group_ring(
        &self,
        s: &Session,
        to: Username,
        token: Key32,
        now: Now,
    ) -> Reply {
        let caller_ak = self.account_key(&s.username).await?;
        let devices = self.devices_anywhere(&to).await;
        let elsewhere: HashSet<String> = match self.cluster.as_deref() {
            Some(cluster) => cluster::pass_holders(cluster, &token.0)
                .await
                .unwrap_or_default()
                .into_iter()
                .collect(),
            None => HashSet::new(),
        };
        let mut st = self.lock();
        let admitted: HashSet<String> = st
            .passes
            .admits(&s.device_id, &token.0, devices.iter(), &elsewhere)
            .into_iter()
            .collect();
        if admitted.is_empty() {
            return Err(Refusal::NotFound);
        }
        let ring_id = new_id();
        st.rings.start(
            ring_id.clone(),
            s.username.clone(),
            s.device_id.clone(),
            to,
            admitted.clone(),
            now.at,
        )?;
        st.rings.close_to_wakes(&ring_id);
        st.metrics.rings_started.inc();
        for d in &admitted {
            let msg = ServerMsg::IncomingRing {
                ring_id: ring_id.clone(),
                from: s.username.clone(),
                ak_pub: caller_ak,
                group: Some(token),
                invite: false,
            };
            st.send_ring(d, msg, Some((&ring_id, Stage::Ringing)));
        }
        Ok(ServerMsg::Ringing { ring_id })
    }
}
