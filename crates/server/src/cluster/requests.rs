//! Pending friend requests in Redis, with the same quotas as in RAM (requests.rs): a request made
//! through one instance is accepted through another. The pair's key holds the signature and
//! lapses with the request; two sorted sets per account count what waits for it and from it.
//! The server-wide cap of RAM is Redis's `maxmemory` here.

use std::time::Duration;

use anonchat_proto::{Sig64, Username};
use redis::AsyncCommands;

use super::{Cluster, ClusterError};
use crate::clock::unix_now_ms as now_ms;
use crate::requests::{QuotaError, MAX_PER_REQUESTER, MAX_PER_TARGET};

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<redis::RedisError> for RequestError {
    fn from(e: redis::RedisError) -> Self {
        RequestError::Cluster(e.into())
    }
}

/// Keeps `from`'s request to `to` for `ttl` (a repeat replaces the earlier one).
pub async fn insert(
    cluster: &Cluster,
    from: &Username,
    to: &Username,
    sig: &Sig64,
    ttl: Duration,
) -> Result<(), RequestError> {
    let k = cluster.keys();
    let (from_h, to_h) = (k.account(from), k.account(to));
    let (incoming, outgoing) = (k.requests_in(to), k.requests_out(from));
    let now = now_ms();
    let mut conn = cluster.conn();
    // Two slots (the target's, the requester's): two pipelines.
    let (_, waiting_in, count_in): ((), Option<f64>, u64) = redis::pipe()
        .zrembyscore(&incoming, "-inf", now)
        .zscore(&incoming, &from_h)
        .zcard(&incoming)
        .query_async(&mut conn)
        .await?;
    let (_, waiting_out, count_out): ((), Option<f64>, u64) = redis::pipe()
        .zrembyscore(&outgoing, "-inf", now)
        .zscore(&outgoing, &to_h)
        .zcard(&outgoing)
        .query_async(&mut conn)
        .await?;
    if waiting_out.is_none() && count_out as usize >= MAX_PER_REQUESTER {
        return Err(QuotaError::Requester.into());
    }
    if waiting_in.is_none() && count_in as usize >= MAX_PER_TARGET {
        return Err(QuotaError::Target.into());
    }
    let ttl_ms = ttl.as_millis() as u64;
    let deadline = now + ttl_ms;
    let hex: String = sig.0.iter().map(|b| format!("{b:02x}")).collect();
    let _: () = redis::pipe()
        .pset_ex(k.request(&to_h, &from_h), hex, ttl_ms)
        .ignore()
        .zadd(&incoming, &from_h, deadline)
        .ignore()
        .pexpire(&incoming, ttl_ms as i64)
        .ignore()
        .query_async(&mut conn)
        .await?;
    let _: () = redis::pipe()
        .zadd(&outgoing, &to_h, deadline)
        .ignore()
        .pexpire(&outgoing, ttl_ms as i64)
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// The signature of a request still waiting.
pub async fn get(
    cluster: &Cluster,
    from: &Username,
    to: &Username,
) -> Result<Option<Sig64>, ClusterError> {
    let k = cluster.keys();
    let mut conn = cluster.conn();
    let hex: Option<String> = conn
        .get(k.request(&k.account(to), &k.account(from)))
        .await?;
    Ok(hex.and_then(|h| {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
            .collect();
        Some(Sig64(bytes.try_into().ok()?))
    }))
}

/// Drops a request (accepted or declined).
pub async fn remove(cluster: &Cluster, from: &Username, to: &Username) -> Result<(), ClusterError> {
    let k = cluster.keys();
    let (from_h, to_h) = (k.account(from), k.account(to));
    let mut conn = cluster.conn();
    let _: () = redis::pipe()
        .del(k.request(&to_h, &from_h))
        .ignore()
        .zrem(k.requests_in(to), &from_h)
        .ignore()
        .query_async(&mut conn)
        .await?;
    let _: () = conn.zrem(k.requests_out(from), &to_h).await?;
    Ok(())
}

/// Drops every request `from` made (its key changed: they were signed with the old one).
pub async fn remove_from(cluster: &Cluster, from: &Username) -> Result<(), ClusterError> {
    let k = cluster.keys();
    let from_h = k.account(from);
    let mut conn = cluster.conn();
    let targets: Vec<String> = conn.zrange(k.requests_out(from), 0, -1).await?;
    for to_h in targets {
        let _: () = redis::pipe()
            .del(k.request(&to_h, &from_h))
            .ignore()
            .zrem(k.requests_in_hash(&to_h), &from_h)
            .ignore()
            .query_async(&mut conn)
            .await?;
    }
    let _: () = conn.del(k.requests_out(from)).await?;
    Ok(())
}
