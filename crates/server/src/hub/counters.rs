//! The abuse counters of the gated requests — token buckets, failure memory, spent stamps — in
//! RAM on a single server, in Redis when instances share state: spreading requests over
//! instances then buys nothing. A Redis that cannot be reached fails closed for the buckets (a
//! refusal, not a free pass) and open for the memory of failures.

use std::net::IpAddr;
use std::time::Duration;

use super::{Hub, Session};
use crate::abuse::{demand_from, Demand, FAILURE_MEMORY};
use crate::clock::Now;
use crate::cluster;

impl Hub {
    /// What this requester's failures ask of its next gated request.
    pub(super) async fn demand(&self, s: &Session) -> Demand {
        match self.cluster.as_deref() {
            None => self
                .failures
                .demand(s.ip, &s.username, self.backoff_after, self.pow_after),
            Some(c) => {
                let records = cluster::failures(c, s.ip, &s.username)
                    .await
                    .unwrap_or([None, None]);
                demand_from(records, self.backoff_after, self.pow_after)
            }
        }
    }

    pub(super) async fn record_failure(&self, s: &Session, now: Now) {
        match self.cluster.as_deref() {
            None => self.failures.record(s.ip, &s.username, now.at),
            Some(c) => {
                let _ = cluster::record_failure(c, s.ip, &s.username, FAILURE_MEMORY).await;
            }
        }
    }

    /// A token from the address's, the device's and the account's buckets.
    pub(super) async fn allow(&self, s: &Session) -> bool {
        match self.cluster.as_deref() {
            None => self.limits.allow(s.ip, &s.device_id, &s.username),
            Some(c) => {
                let ip = s.ip.to_string();
                let buckets: [(&str, &[u8]); 3] = [
                    ("ip", ip.as_bytes()),
                    ("device", s.device_id.as_bytes()),
                    ("account", s.username.as_str().as_bytes()),
                ];
                self.shared_buckets(c, &buckets).await
            }
        }
    }

    /// A token from the address's bucket only (requests before authentication).
    pub(super) async fn allow_ip(&self, ip: IpAddr) -> bool {
        match self.cluster.as_deref() {
            None => self.limits.allow_ip(ip),
            Some(c) => {
                let ip = ip.to_string();
                self.shared_buckets(c, &[("ip", ip.as_bytes())]).await
            }
        }
    }

    /// A token from the address's and the account's upkeep buckets (key rotation and history,
    /// re-signed edges, group passes).
    pub(super) async fn allow_upkeep(&self, s: &Session) -> bool {
        match self.cluster.as_deref() {
            None => self.limits.allow_upkeep(s.ip, &s.username),
            Some(c) => {
                let ip = s.ip.to_string();
                let buckets: [(&str, &[u8]); 2] = [
                    ("upkeep-ip", ip.as_bytes()),
                    ("upkeep-account", s.username.as_str().as_bytes()),
                ];
                let (per_minute, burst) = self.limits.upkeep_quota();
                cluster::allow(c, &buckets, per_minute, burst)
                    .await
                    .unwrap_or(false)
            }
        }
    }

    /// A token from the address's registration bucket.
    pub async fn allow_register(&self, ip: IpAddr) -> bool {
        match self.cluster.as_deref() {
            None => self.limits.allow_register(ip),
            Some(c) => {
                let ip = ip.to_string();
                self.shared_buckets(c, &[("register", ip.as_bytes())]).await
            }
        }
    }

    async fn shared_buckets(&self, c: &cluster::Cluster, buckets: &[(&str, &[u8])]) -> bool {
        let (per_minute, burst) = self.limits.quota();
        cluster::allow(c, buckets, per_minute, burst)
            .await
            .unwrap_or(false)
    }

    /// Spends a stamp: `false` if it was spent before (on any instance).
    pub(super) async fn spend_stamp(&self, id: [u8; 32], now: Now) -> bool {
        match self.cluster.as_deref() {
            None => self.lock().spent_stamps.insert(id, now.at).is_none(),
            Some(c) => {
                let keep = Duration::from_secs(2 * anonchat_proto::pow::MAX_AGE_SECS);
                cluster::spend_stamp(c, &id, keep).await.unwrap_or(false)
            }
        }
    }
}
