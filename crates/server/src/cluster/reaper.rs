//! When an instance dies, its accounts' friends still hear that they went offline.
//!
//! A live instance keeps two things fresh in Redis: its entry in the `instances` registry, scored
//! by when its "alive" key lapses, and a hash of the accounts it holds devices of (keyed hash →
//! the name sealed under the shared secret, `Keys::seal_name`: only another instance can read it
//! back, and only to tell friends). Once a registered deadline has passed, the first instance to
//! claim the dead one (`SET NX`) reads that hash, drops the accounts' lapsed presence entries, and
//! returns the accounts left with no device online anywhere, for the caller to announce.

use std::time::Duration;

use anonchat_proto::Username;
use redis::AsyncCommands;

use super::shared::{ms, run};
use super::{Cluster, ClusterError};
use crate::clock::unix_now_ms as now_ms;

/// How long the list of a dead instance's accounts outlives its "alive" key: time for a survivor
/// to notice and read it.
const LIST_OUTLIVES: u32 = 3;

/// Adds `users` to this instance's list, and keeps the list and the registry entry fresh: one
/// group for the instance's slot and one for the registry (`Link::run_groups`).
pub(super) fn refresh_groups(cluster: &Cluster, users: &[&Username]) -> Vec<redis::Pipeline> {
    let ttl = ms(cluster.presence_ttl());
    let list = cluster.keys().instance_accounts(cluster.id());
    let mut own = redis::pipe();
    if !users.is_empty() {
        let fields: Vec<(String, String)> = users
            .iter()
            .map(|u| (cluster.keys().account(u), cluster.keys().seal_name(u)))
            .collect();
        own.hset_multiple(&list, &fields).ignore();
    }
    own.pexpire(&list, (ttl * u64::from(LIST_OUTLIVES)) as i64)
        .ignore();
    let mut registry = redis::pipe();
    // Every instance refreshes the registry's TTL too: it lapses only when all of them are gone.
    registry
        .zadd(cluster.keys().instances(), cluster.id(), now_ms() + ttl)
        .ignore()
        .pexpire(
            cluster.keys().instances(),
            (ttl * u64::from(LIST_OUTLIVES)) as i64,
        )
        .ignore();
    vec![own, registry]
}

/// Whether this instance is in the registry (it is not before its first refresh, after another
/// instance reaped it, or after Redis lost its contents).
pub async fn registered(cluster: &Cluster) -> Result<bool, ClusterError> {
    let mut conn = cluster.conn();
    let score: Option<f64> = run(
        cluster,
        conn.zscore(cluster.keys().instances(), cluster.id()),
    )
    .await?;
    Ok(score.is_some())
}

/// The account's first device here came: on the list at once, not only at the next refresh.
pub async fn listed(cluster: &Cluster, user: &Username) -> Result<(), ClusterError> {
    let mut conn = cluster.conn();
    let groups = refresh_groups(cluster, &[user]);
    run(cluster, conn.run_groups(groups)).await
}

/// The account's last device here left.
pub async fn unlisted(cluster: &Cluster, user: &Username) -> Result<(), ClusterError> {
    let mut conn = cluster.conn();
    let list = cluster.keys().instance_accounts(cluster.id());
    run(
        cluster,
        conn.hdel::<_, _, ()>(list, cluster.keys().account(user)),
    )
    .await
}

/// Claims every instance whose deadline passed and returns their accounts that have no device
/// online anywhere now, marked "recently active" for `recent` as a clean leave would.
pub async fn reap(cluster: &Cluster, recent: Duration) -> Result<Vec<Username>, ClusterError> {
    let mut conn = cluster.conn();
    let now = now_ms();
    let dead: Vec<String> = run(
        cluster,
        conn.zrangebyscore(cluster.keys().instances(), "-inf", now),
    )
    .await?;
    let mut gone = Vec::new();
    for instance in dead.into_iter().filter(|i| i != cluster.id()) {
        let claimed: Option<String> = run(
            cluster,
            redis::cmd("SET")
                .arg(cluster.keys().reaped(&instance))
                .arg(cluster.id())
                .arg("NX")
                .arg("PX")
                .arg(ms(cluster.presence_ttl()) * 10)
                .query_async(&mut conn),
        )
        .await?;
        if claimed.is_none() {
            continue; // Another instance is on it.
        }
        let list = cluster.keys().instance_accounts(&instance);
        let sealed: Vec<String> = run(cluster, conn.hvals(&list)).await?;
        if !sealed.is_empty() {
            tracing::warn!(
                accounts = sealed.len(),
                "an instance stopped refreshing; telling its accounts' friends they went offline"
            );
        }
        for user in sealed.iter().filter_map(|s| cluster.keys().open_name(s)) {
            let key = cluster.keys().presence(&user);
            let mut pipe = redis::pipe();
            pipe.zrembyscore(&key, "-inf", now)
                .ignore()
                .zcount(&key, now, "+inf");
            let (left,): (u64,) = run(cluster, pipe.query_async(&mut conn)).await?;
            if left == 0 {
                let _: () = run(
                    cluster,
                    conn.pset_ex(cluster.keys().seen(&user), 1u8, ms(recent)),
                )
                .await?;
                gone.push(user);
            }
        }
        let _: () = run(cluster, conn.del(&list)).await?;
        let _: () = run(cluster, conn.zrem(cluster.keys().instances(), &instance)).await?;
    }
    Ok(gone)
}
