//! The hub's side of the Redis backend (cluster.rs): what this instance follows of the others,
//! and what it asks of them (the frames it gets are answered in inbox.rs).
//!
//! A ring lives on its caller's instance (the owner), in that instance's `Rings`; devices rung on
//! other instances hear about it through their device channels, and their answers, hang-ups and
//! relayed blobs are forwarded to the owner, which answers as for its own devices. So "first
//! answer wins" is decided in one place, by the same state machine as on a single server.

use std::collections::{HashMap, HashSet};

use anonchat_proto::wire::{ServerEnvelope, ServerMsg};
use anonchat_proto::{DeviceCert, Username};
use tokio::sync::oneshot;

use super::{Hub, Refusal, Reply, Session};
use crate::clock::Now;
use crate::cluster::{self, Cluster, Frame, RingOp, RingTag, WireResult};

/// What this instance follows of the others.
#[derive(Default)]
pub(super) struct Remote {
    /// Rings owned elsewhere that devices here are part of.
    pub(super) rings: HashMap<String, RemoteRing>,
    /// The account channels this instance is subscribed to, by channel: accounts with devices
    /// here, or with rings ringing for them here.
    pub(super) accounts: HashMap<String, Username>,
    /// New devices waiting here on enrollments held elsewhere, by code: the enrollment's
    /// instance, the device, and where its answer goes (joins.rs).
    pub(super) joiners: HashMap<String, (String, String, oneshot::Sender<ServerMsg>)>,
}

pub(super) struct RemoteRing {
    pub(super) owner: String,
    pub(super) devices: HashSet<String>,
    pub(super) connected: bool,
}

/// Publishes an envelope for a device or account elsewhere.
pub(super) fn publish(
    cluster: &Cluster,
    channel: String,
    env: &ServerEnvelope,
    ring: Option<RingTag>,
) {
    let Ok(text) = serde_json::to_string(env) else {
        return;
    };
    let frame = Frame::Push {
        from: cluster.id().to_string(),
        text,
        ring,
    };
    cluster.publish(channel, &frame);
}

/// Asks the callee's instance to make the introduction of an answered ring.
pub(super) fn introduce(
    cluster: &Cluster,
    ring_id: &str,
    caller: &str,
    caller_cert: DeviceCert,
    callee: &str,
) {
    let frame = Frame::Introduce {
        from: cluster.id().to_string(),
        ring_id: ring_id.to_string(),
        caller_device: caller.to_string(),
        caller_cert,
    };
    cluster.publish(cluster.keys().device_channel(callee), &frame);
}

pub(super) fn to_wire(r: Result<serde_json::Value, Refusal>) -> WireResult {
    r.map_err(|e| (e.code(), e.into_detail()))
}

/// A refusal as another instance gave it.
pub(super) fn refusal(
    (code, detail): (anonchat_proto::wire::ErrorCode, Option<String>),
) -> Refusal {
    use anonchat_proto::wire::ErrorCode;
    match code {
        // A detail means "gone" (safe to say); none is the plain `not_found` of P5.
        ErrorCode::NotFound => detail.map_or(Refusal::NotFound, Refusal::Gone),
        ErrorCode::RateLimited => Refusal::RateLimited(detail),
        ErrorCode::Unauthorized => Refusal::Unauthorized(detail.unwrap_or_default()),
        _ => Refusal::BadRequest(detail.unwrap_or_default()),
    }
}

fn from_wire(r: WireResult) -> Reply {
    r.map(|_| ServerMsg::Ok).map_err(refusal)
}

impl Hub {
    /// Answer, hang-up or relay on a ring owned by another instance; `None` if it is not one.
    pub(super) async fn ring_elsewhere(
        &self,
        s: &Session,
        ring_id: &str,
        op: RingOp,
    ) -> Option<Reply> {
        let cluster = self.cluster.clone()?;
        let owner = {
            let st = self.lock();
            if st.rings.get(ring_id).is_some() {
                return None;
            }
            let r = st.remote.rings.get(ring_id)?;
            if !r.devices.contains(&s.device_id) {
                return None;
            }
            r.owner.clone()
        };
        let answer = cluster
            .ring_call(&owner, ring_id.to_string(), s.device_id.clone(), op)
            .await;
        Some(from_wire(answer))
    }

    /// A one-time key of the account's device on another instance.
    pub(super) async fn claim_elsewhere(
        &self,
        user: &Username,
        device: &str,
    ) -> Result<anonchat_proto::wire::SignedOtk, Refusal> {
        let cluster = self.cluster.clone().ok_or(Refusal::NotFound)?;
        let instance = cluster::devices_online(&cluster, user)
            .await
            .ok()
            .and_then(|ds| ds.into_iter().find(|(d, _)| d == device))
            .map(|(_, i)| i)
            .filter(|i| i != cluster.id())
            .ok_or(Refusal::NotFound)?;
        let answer = cluster
            .call(&instance, |req, from| Frame::Claim {
                from,
                req,
                device: device.to_string(),
                username: user.clone(),
            })
            .await
            .map_err(refusal)?;
        serde_json::from_value(answer).map_err(|_| Refusal::NotFound)
    }

    /// Whether an account is online, and recently active, on any instance.
    pub(super) async fn presence_anywhere(&self, user: &Username, now: Now) -> (bool, bool) {
        let (online, recent) = {
            let st = self.lock();
            (st.is_online(user), st.recently_active(user, now))
        };
        let Some(cluster) = self.cluster.as_deref() else {
            return (online, recent);
        };
        // Asked on every path, online here or not, so the gate does the same work on each (P5).
        // An unreachable Redis: nobody elsewhere can be reached either.
        let (elsewhere, seen) = cluster::presence(cluster, user)
            .await
            .unwrap_or((false, false));
        (online || elsewhere, recent || elsewhere || seen)
    }

    /// The account's devices online on any instance.
    pub(super) async fn devices_anywhere(&self, user: &Username) -> HashSet<String> {
        let mut devices: HashSet<String> =
            self.lock().online.get(user).cloned().unwrap_or_default();
        if let Some(cluster) = self.cluster.as_deref() {
            if let Ok(elsewhere) = cluster::devices_online(cluster, user).await {
                devices.extend(elsewhere.into_iter().map(|(d, _)| d));
            }
        }
        devices
    }

    /// Follows an account's channel (devices of it here, or rings ringing for it here).
    pub(super) async fn watch(&self, user: &Username) {
        let Some(cluster) = self.cluster.as_deref() else {
            return;
        };
        let channel = cluster.keys().account_channel(user);
        if self.lock().remote.accounts.contains_key(&channel) {
            return;
        }
        if let Err(e) = cluster.subscribe(&channel).await {
            tracing::warn!(error = %e, "subscribing to an account's channel failed");
            return;
        }
        self.lock().remote.accounts.insert(channel, user.clone());
    }

    /// A device attached here: its channel, its presence entry, and word to the others (its older
    /// socket elsewhere closes; rings ringing for the account there ring it). Returns whether it
    /// is the account's first device online anywhere.
    pub(super) async fn attached_shared(
        &self,
        user: &Username,
        device: &str,
        first_here: bool,
    ) -> bool {
        let Some(cluster) = self.cluster.clone() else {
            return first_here;
        };
        if let Err(e) = cluster
            .subscribe(&cluster.keys().device_channel(device))
            .await
        {
            tracing::warn!(error = %e, "subscribing to a device's channel failed");
        }
        self.watch(user).await;
        if first_here {
            if let Err(e) = cluster::listed(&cluster, user).await {
                tracing::warn!(error = %e, "listing an account in redis failed");
            }
        }
        let others = cluster::set_online(&cluster, user, device, true, super::RECENTLY_ACTIVE)
            .await
            .unwrap_or(false);
        let from = cluster.id().to_string();
        cluster.publish_surely(
            cluster.keys().device_channel(device),
            &Frame::Kill {
                from: from.clone(),
                farewell: None,
            },
        );
        cluster.publish(
            cluster.keys().account_channel(user),
            &Frame::Attached {
                from,
                device: device.to_string(),
            },
        );
        first_here && !others
    }

    /// A device detached here: the owners of its rings elsewhere hear it left, its channel and
    /// presence entry go. Returns whether the account has no device online anywhere now.
    pub(super) async fn detached_shared(&self, s: &Session, last_here: bool) -> bool {
        let Some(cluster) = self.cluster.clone() else {
            return last_here;
        };
        let owners: HashSet<String> = {
            let mut st = self.lock();
            let mut owners = HashSet::new();
            st.remote.rings.retain(|_, r| {
                if r.devices.remove(&s.device_id) {
                    owners.insert(r.owner.clone());
                }
                !r.devices.is_empty()
            });
            owners
        };
        for owner in owners {
            let _ = cluster
                .ring_call(&owner, String::new(), s.device_id.clone(), RingOp::Gone)
                .await;
        }
        {
            // Under the hub's lock, so a socket of the same device attaching meanwhile either is
            // seen here (and keeps the channel) or subscribes after this, in the outbox's order.
            let st = self.lock();
            if !st.conns.contains_key(&s.device_id) {
                cluster.unsubscribe(cluster.keys().device_channel(&s.device_id));
            }
        }
        let others = cluster::set_online(
            &cluster,
            &s.username,
            &s.device_id,
            false,
            super::RECENTLY_ACTIVE,
        )
        .await
        .unwrap_or(true);
        // The device may have reconnected here while this ran: its new socket's entry must outlive
        // this one's removal, whichever of the two reached Redis first.
        if self.lock().conns.contains_key(&s.device_id) {
            let _ = cluster::listed(&cluster, &s.username).await;
            let _ = cluster::set_online(
                &cluster,
                &s.username,
                &s.device_id,
                true,
                super::RECENTLY_ACTIVE,
            )
            .await;
            return false;
        }
        if last_here {
            if let Err(e) = cluster::unlisted(&cluster, &s.username).await {
                tracing::warn!(error = %e, "unlisting an account in redis failed");
            }
        }
        last_here && !others
    }

    /// Tells another instance's socket of a device to close, with a last message.
    pub(super) fn kill_elsewhere(&self, device: &str, farewell: Option<String>) {
        if let Some(cluster) = self.cluster.as_deref() {
            cluster.publish_surely(
                cluster.keys().device_channel(device),
                &Frame::Kill {
                    from: cluster.id().to_string(),
                    farewell,
                },
            );
        }
    }

    /// A device's certificate changed (account key rotation): its instance serves the new one.
    pub(super) fn cert_elsewhere(&self, cert: &DeviceCert) {
        if let Some(cluster) = self.cluster.as_deref() {
            cluster.publish(
                cluster.keys().device_channel(&cert.device_id),
                &Frame::Cert { cert: cert.clone() },
            );
        }
    }

    /// Every `Cluster::refresh_every`: presence entries and the "alive" key refreshed; rings whose owner
    /// died end for the devices here that were still ringing; account channels nobody here
    /// needs any more are dropped.
    pub async fn tick_shared(&self) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let entries: Vec<(Username, String)> = {
            let st = self.lock();
            st.online
                .iter()
                .flat_map(|(u, ds)| ds.iter().map(move |d| (u.clone(), d.clone())))
                .collect()
        };
        // Missing from the registry: another instance took this one for dead (it stalled past the
        // TTL) and told its accounts' friends they went, or Redis lost everything. Once refreshed,
        // they are told again that these accounts are here.
        let reaped = matches!(cluster::registered(&cluster).await, Ok(false));
        // Even with no device here: the "alive" key says the rings this instance owns are live.
        let chunks: Vec<&[(Username, String)]> = match entries.is_empty() {
            true => vec![&[]],
            false => entries.chunks(1000).collect(),
        };
        for chunk in chunks {
            if let Err(e) = cluster::refresh(&cluster, chunk).await {
                tracing::warn!(error = %e, "refreshing presence in redis failed");
                break;
            }
        }
        self.refresh_passes().await;
        if reaped {
            let mut users: Vec<&Username> = entries.iter().map(|(u, _)| u).collect();
            users.dedup();
            for user in users {
                self.announce(user, true).await;
            }
        }
        // Accounts of a dead instance: their friends hear they went, as after a clean leave.
        match cluster::reap(&cluster, super::RECENTLY_ACTIVE).await {
            Ok(gone) => {
                for user in gone {
                    self.announce(&user, false).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading dead instances from redis failed"),
        }
        let owners: HashSet<String> = self
            .lock()
            .remote
            .rings
            .values()
            .map(|r| r.owner.clone())
            .collect();
        for owner in owners {
            if cluster::alive(&cluster, &owner).await.unwrap_or(true) {
                continue;
            }
            let mut st = self.lock();
            let dead: Vec<(String, RemoteRing)> = st
                .remote
                .rings
                .extract_if(|_, r| r.owner == owner)
                .collect();
            for (ring_id, ring) in dead {
                if ring.connected {
                    continue; // A chat goes on peer to peer; only its relay is gone.
                }
                for d in ring.devices {
                    st.send_device(
                        &d,
                        ServerMsg::RingEnded {
                            ring_id: ring_id.clone(),
                            reason: anonchat_proto::wire::RingEnd::Cancelled,
                        },
                    );
                }
            }
        }
        let mut st = self.lock();
        let unneeded: Vec<String> = st
            .remote
            .accounts
            .iter()
            .filter(|(_, u)| !st.is_online(u) && !st.rings.ringing_for(u))
            .map(|(c, _)| c.clone())
            .collect();
        for channel in unneeded {
            st.remote.accounts.remove(&channel);
            cluster.unsubscribe(channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_proto::wire::ErrorCode;

    #[test]
    fn another_instances_refusals_keep_their_meaning() {
        // A bare not_found stays the P5 answer; one with a detail is a "gone" that may say why.
        assert!(matches!(
            refusal((ErrorCode::NotFound, None)),
            Refusal::NotFound
        ));
        assert!(matches!(
            refusal((ErrorCode::NotFound, Some("no key left".into()))),
            Refusal::Gone(d) if d == "no key left"
        ));
        assert!(matches!(
            refusal((ErrorCode::RateLimited, Some("busy".into()))),
            Refusal::RateLimited(Some(d)) if d == "busy"
        ));
        assert!(matches!(
            refusal((ErrorCode::Unauthorized, None)),
            Refusal::Unauthorized(_)
        ));
        assert!(matches!(
            refusal((ErrorCode::BadRequest, Some("x".into()))),
            Refusal::BadRequest(d) if d == "x"
        ));
        // And back: what a refusal becomes on the wire comes back as the same refusal.
        for r in [Refusal::NotFound, Refusal::RateLimited(Some("busy".into()))] {
            let code = r.code();
            let back = to_wire(Err(r)).expect_err("a refusal");
            assert_eq!(back.0, code);
            assert_eq!(refusal(back).code(), code);
        }
        assert!(matches!(
            from_wire(Ok(serde_json::Value::Null)),
            Ok(ServerMsg::Ok)
        ));
    }
}
