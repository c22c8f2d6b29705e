//! Group passes shared between instances (DESIGN §10): per pass token, a sorted set of
//! `device|instance` scored by when the entry lapses, refreshed by the instance that holds the
//! device's socket — the shape of presence. A dead instance's entries lapse on their own. The key
//! is a keyed hash of the token: Redis holds no token a device could present.

use redis::AsyncCommands;

use super::shared::{ms, run};
use super::{Cluster, ClusterError};
use crate::clock::unix_now_ms as now_ms;

fn entry(device: &str, instance: &str) -> String {
    format!("{device}|{instance}")
}

/// `device`, here, holds the pass `token`.
pub async fn pass_join(
    cluster: &Cluster,
    token: &[u8; 32],
    device: &str,
) -> Result<(), ClusterError> {
    refresh_passes(cluster, &[(*token, device.to_string())]).await
}

/// `device`, here, no longer holds the pass `token`.
pub async fn pass_leave(
    cluster: &Cluster,
    token: &[u8; 32],
    device: &str,
) -> Result<(), ClusterError> {
    let mut conn = cluster.conn();
    let key = cluster.keys().group_pass(token);
    let _: () = run(cluster, conn.zrem(key, entry(device, cluster.id()))).await?;
    Ok(())
}

/// The devices holding `token` on any instance, now.
pub async fn pass_holders(
    cluster: &Cluster,
    token: &[u8; 32],
) -> Result<Vec<String>, ClusterError> {
    let mut conn = cluster.conn();
    let entries: Vec<String> = run(
        cluster,
        conn.zrangebyscore(cluster.keys().group_pass(token), now_ms(), "+inf"),
    )
    .await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| e.rsplit_once('|').map(|(d, _)| d.to_string()))
        .collect())
}

/// Refreshes this instance's entries for the passes its devices hold (and drops lapsed ones).
pub async fn refresh_passes(
    cluster: &Cluster,
    held: &[([u8; 32], String)],
) -> Result<(), ClusterError> {
    if held.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let ttl = ms(cluster.presence_ttl());
    let mut conn = cluster.conn();
    // One pipeline per key: each token's set may sit in another cluster slot.
    let groups = held
        .iter()
        .map(|(token, device)| {
            let key = cluster.keys().group_pass(token);
            let mut pipe = redis::pipe();
            pipe.zrembyscore(&key, "-inf", now)
                .zadd(&key, entry(device, cluster.id()), now + ttl)
                .pexpire(&key, ttl as i64);
            pipe
        })
        .collect();
    run(cluster, conn.run_groups(groups)).await
}
