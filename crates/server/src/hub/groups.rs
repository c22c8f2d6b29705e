//! Groups (DESIGN §10): a device joins a group's pass token, and members who are not friends ring
//! each other with it. The pass is the gate for such a ring: it reaches only the callee's devices
//! that joined the same token, and only from a device that joined it too (group_pass.rs). The
//! server learns a token and which devices hold it, never the group's id, roster or content.

use std::collections::HashSet;
use std::time::Instant;

use anonchat_proto::wire::ServerMsg;
use anonchat_proto::{Key32, Username};

use super::{bad, new_id, Hub, Refusal, Reply, Session};
use crate::cluster::Stage;

impl Hub {
    pub(super) fn group_join(&self, s: &Session, token: Key32) -> Reply {
        self.lock()
            .passes
            .join(&s.device_id, token.0)
            .map_err(|e| bad(e.to_string()))?;
        Ok(ServerMsg::Ok)
    }

    /// Leaving a group not joined is no error (the pass may have gone with a reconnect).
    pub(super) fn group_leave(&self, s: &Session, token: Key32) -> Reply {
        self.lock().passes.leave(&s.device_id, &token.0);
        Ok(ServerMsg::Ok)
    }

    /// A ring between members. Gated like any ring (rate limits, backoff, the timing floor, the
    /// one `not_found`), but the friendship and discovery mode do not open it: the pass does.
    pub(super) async fn group_ring(&self, s: &Session, to: Username, token: Key32) -> Reply {
        let caller_ak = self.account_key(&s.username).await?;
        let devices = self.devices_anywhere(&to).await;
        let mut st = self.lock();
        let admitted: HashSet<String> = st
            .passes
            .admits(&s.device_id, &token.0, devices.iter())
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
            Instant::now(),
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
