//! The state instances share in Redis, each operation one round trip (a pipeline or a script)
//! and every key written with a TTL: presence, "recently active", spent stamps, token buckets and
//! failure counts.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anonchat_proto::Username;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{Cluster, ClusterError};
use crate::clock::unix_now_ms as now_ms;

pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Runs a command or pipeline, counting its latency and failure.
pub(super) async fn run<T: redis::FromRedisValue>(
    cluster: &Cluster,
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, ClusterError> {
    let started = Instant::now();
    let r = f.await;
    cluster.observe(started, r.is_ok());
    Ok(r?)
}

/// Refuses a Redis that is too old for sharded pub/sub, or that would write rings and presence
/// to disk (P2) unless that was explicitly allowed — then it is only warned about.
pub(super) async fn check_server(
    conn: &mut ConnectionManager,
    allow_persistence: bool,
) -> Result<(), ClusterError> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("0")
        .trim()
        .to_string();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 7 {
        return Err(ClusterError::TooOld(version));
    }
    let persists = match persistence(conn).await {
        Ok(p) => p,
        Err(e) => {
            // Managed services often disable CONFIG: say loudly that nobody checked.
            tracing::warn!(
                error = %e,
                "cannot read redis's persistence settings (CONFIG GET); make sure it runs with \
                 save \"\" and appendonly no, or rings and presence may reach its disk"
            );
            None
        }
    };
    match persists {
        Some(what) if allow_persistence => {
            tracing::warn!(
                persistence = %what,
                "REDIS PERSISTS TO DISK: rings and presence will be written there (allowed by \
                 --redis-allow-persistence)"
            );
            Ok(())
        }
        Some(what) => Err(ClusterError::Persists(what)),
        None => Ok(()),
    }
}

/// The `(host, port)` of every node of the cluster `conn` reaches that is up (`CLUSTER NODES`:
/// `<id> <ip:port@cport[,hostname]> <flags> …` per line).
pub(super) async fn cluster_nodes(
    conn: &mut ConnectionManager,
) -> redis::RedisResult<Vec<(String, u16)>> {
    let text: String = redis::cmd("CLUSTER").arg("NODES").query_async(conn).await?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr = fields.nth(1)?;
            let flags = fields.next()?;
            if flags
                .split(',')
                .any(|f| matches!(f, "fail" | "noaddr" | "handshake"))
            {
                return None;
            }
            let (host, port) = addr.split('@').next()?.rsplit_once(':')?;
            // `:0` and an empty host: a node that does not know its own address yet.
            let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
            (!host.is_empty()).then(|| (host.to_string(), port))
        })
        .collect())
}

/// What Redis would write to disk, if anything.
async fn persistence(conn: &mut ConnectionManager) -> redis::RedisResult<Option<String>> {
    // A map in RESP3, pairs in RESP2: both read as a map.
    let config: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .arg("appendonly")
        .query_async(conn)
        .await?;
    let mut found = Vec::new();
    if let Some(s) = config.get("save").filter(|s| !s.trim().is_empty()) {
        found.push(format!("RDB snapshots (save {s})"));
    }
    if config.get("appendonly").is_some_and(|a| a == "yes") {
        found.push("the append-only file (appendonly yes)".to_string());
    }
    Ok((!found.is_empty()).then(|| found.join(" and ")))
}

fn member(device: &str, instance: &str) -> String {
    format!("{device}|{instance}")
}

/// A device of `user` came online here, or left: its presence entry. When the account has no
/// fresh entry left, it is marked "recently active" for `recent`. Returns whether other entries
/// are online (before it came; after it left).
pub async fn set_online(
    cluster: &Cluster,
    user: &Username,
    device: &str,
    online: bool,
    recent: Duration,
) -> Result<bool, ClusterError> {
    let key = cluster.keys().presence(user);
    let entry = member(device, cluster.id());
    let now = now_ms();
    let mut conn = cluster.conn();
    let mut pipe = redis::pipe();
    if online {
        pipe.zcount(&key, now, "+inf")
            .zadd(&key, &entry, now + ms(cluster.presence_ttl()))
            .ignore()
            .pexpire(&key, ms(cluster.presence_ttl()) as i64)
            .ignore()
            .del(cluster.keys().seen(user))
            .ignore();
        let (before,): (u64,) = run(cluster, pipe.query_async(&mut conn)).await?;
        return Ok(before > 0);
    }
    pipe.zrem(&key, &entry).ignore().zcount(&key, now, "+inf");
    let (left,): (u64,) = run(cluster, pipe.query_async(&mut conn)).await?;
    if left == 0 {
        let _: () = run(
            cluster,
            conn.pset_ex(cluster.keys().seen(user), 1u8, ms(recent)),
        )
        .await?;
    }
    Ok(left > 0)
}

/// Refreshes this instance's presence entries and its "alive" key, and drops lapsed entries of
/// these accounts (a dead instance's).
pub async fn refresh(
    cluster: &Cluster,
    entries: &[(Username, String)],
) -> Result<(), ClusterError> {
    let now = now_ms();
    let ttl = ms(cluster.presence_ttl());
    let mut conn = cluster.conn();
    // One group per slot: the instance's key, then each account's (link.rs).
    let mut alive = redis::pipe();
    alive.pset_ex(cluster.keys().alive(cluster.id()), 1u8, ttl);
    let mut groups = vec![alive];
    let mut users: Vec<&Username> = entries.iter().map(|(u, _)| u).collect();
    users.dedup();
    groups.extend(super::reaper::refresh_groups(cluster, &users));
    for (user, device) in entries {
        let key = cluster.keys().presence(user);
        let mut pipe = redis::pipe();
        pipe.zrembyscore(&key, "-inf", now)
            .zadd(&key, member(device, cluster.id()), now + ttl)
            .pexpire(&key, ttl as i64);
        groups.push(pipe);
    }
    run(cluster, conn.run_groups(groups)).await
}

/// The account's devices online on any instance, as `(device, instance)`.
pub async fn devices_online(
    cluster: &Cluster,
    user: &Username,
) -> Result<Vec<(String, String)>, ClusterError> {
    let mut conn = cluster.conn();
    let entries: Vec<String> = run(
        cluster,
        conn.zrangebyscore(cluster.keys().presence(user), now_ms(), "+inf"),
    )
    .await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let (d, i) = e.rsplit_once('|')?;
            Some((d.to_string(), i.to_string()))
        })
        .collect())
}

/// Whether the account has a device online on any instance, and whether it left within the
/// "recently active" window: one round trip.
pub async fn presence(cluster: &Cluster, user: &Username) -> Result<(bool, bool), ClusterError> {
    let mut conn = cluster.conn();
    let mut pipe = redis::pipe();
    pipe.zcount(cluster.keys().presence(user), now_ms(), "+inf")
        .exists(cluster.keys().seen(user));
    let (online, seen): (u64, bool) = run(cluster, pipe.query_async(&mut conn)).await?;
    Ok((online > 0, seen))
}

/// Whether the instance refreshed its "alive" key lately.
pub async fn alive(cluster: &Cluster, instance: &str) -> Result<bool, ClusterError> {
    let mut conn = cluster.conn();
    run(cluster, conn.exists(cluster.keys().alive(instance))).await
}

/// Spends a proof-of-work stamp: `true` the first time, on any instance.
pub async fn spend_stamp(
    cluster: &Cluster,
    id: &[u8; 32],
    keep: Duration,
) -> Result<bool, ClusterError> {
    let mut conn = cluster.conn();
    let set: Option<String> = run(
        cluster,
        redis::cmd("SET")
            .arg(cluster.keys().stamp(id))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ms(keep).max(1))
            .query_async(&mut conn),
    )
    .await?;
    Ok(set.is_some())
}

/// GCRA, the token bucket as one timestamp: the bucket is full again at the stored "theoretical
/// arrival time". A request is let through when, after it, the bucket would be no more than
/// `burst` requests ahead of now. The key lapses when the bucket is full again.
const BUCKET: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next = tat + interval
if next - now > interval * burst then return 0 end
redis.call('SET', KEYS[1], next, 'PX', next - now)
return 1
";

/// Takes a token from each bucket (`(kind, who)`); `false` if any was empty. Every bucket is
/// charged, as in RAM, so a busy address cannot spare an account's bucket and vice versa.
pub async fn allow(
    cluster: &Cluster,
    buckets: &[(&str, &[u8])],
    per_minute: u32,
    burst: u32,
) -> Result<bool, ClusterError> {
    let script = redis::Script::new(BUCKET);
    let interval = 60_000 / u64::from(per_minute.max(1));
    let now = now_ms();
    // One key per script call (the buckets of one request sit in different cluster slots), all
    // at once: the connection pipelines them.
    let calls = buckets.iter().map(|(kind, who)| {
        let mut conn = cluster.conn();
        let mut invocation = script.key(cluster.keys().bucket(kind, who));
        invocation.arg(now).arg(interval.max(1)).arg(burst.max(1));
        async move { run(cluster, invocation.invoke_async::<u8>(&mut conn)).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut all = true;
    for ok in answers {
        all &= ok? == 1;
    }
    Ok(all)
}

/// `(count, last failure)` for the account and for the address.
pub async fn failures(
    cluster: &Cluster,
    ip: IpAddr,
    user: &Username,
) -> Result<[Option<(u32, Instant)>; 2], ClusterError> {
    // Two slots: two commands, at once.
    let read = |key: String| {
        let mut conn = cluster.conn();
        async move {
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&key).arg("n").arg("last");
            run(
                cluster,
                hmget.query_async::<(Option<u32>, Option<u64>)>(&mut conn),
            )
            .await
        }
    };
    let (account, address) = tokio::join!(
        read(cluster.keys().failures_of_account(user)),
        read(cluster.keys().failures_of_ip(ip))
    );
    let got = [account?, address?];
    let now = now_ms();
    let at = |last: u64| Instant::now() - Duration::from_millis(now.saturating_sub(last));
    let mut out = [None, None];
    for (slot, (n, last)) in out.iter_mut().zip(got) {
        if let (Some(n), Some(last)) = (n, last) {
            *slot = Some((n, at(last)));
        }
    }
    Ok(out)
}

/// Counts a `not_found` answer against the account and the address, remembered for `memory`.
pub async fn record_failure(
    cluster: &Cluster,
    ip: IpAddr,
    user: &Username,
    memory: Duration,
) -> Result<(), ClusterError> {
    let mut conn = cluster.conn();
    let groups = [
        cluster.keys().failures_of_account(user),
        cluster.keys().failures_of_ip(ip),
    ]
    .map(|key| {
        let mut pipe = redis::pipe();
        pipe.hincr(&key, "n", 1)
            .hset(&key, "last", now_ms())
            .pexpire(&key, ms(memory) as i64);
        pipe
    });
    run(cluster, conn.run_groups(groups.to_vec())).await
}

/// Notes that this instance holds the enrollment of `code`, for its life.
pub async fn index_enrollment(
    cluster: &Cluster,
    code: &str,
    life: Duration,
) -> Result<(), ClusterError> {
    let mut conn = cluster.conn();
    run(
        cluster,
        conn.pset_ex(
            cluster.keys().enrollment(code),
            cluster.id(),
            ms(life).max(1),
        ),
    )
    .await
}

/// The instance holding the enrollment of `code`, if one does.
pub async fn enrollment_owner(
    cluster: &Cluster,
    code: &str,
) -> Result<Option<String>, ClusterError> {
    let mut conn = cluster.conn();
    run(cluster, conn.get(cluster.keys().enrollment(code))).await
}
