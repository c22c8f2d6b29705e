//! Anti-abuse on the gated requests (lookup, ring, friend request), all in RAM:
//! - token buckets per IP address, device and account (all three must have a token);
//! - failure memory: `not_found` answers counted per account and per IP, which bring a growing
//!   backoff and then a proof-of-work demand (DESIGN §5). Every answer that counts is the same
//!   `not_found`, so neither reveals anything about the targets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anonchat_proto::Username;
use governor::{DefaultKeyedRateLimiter, Quota};

pub struct Limits {
    per_minute: u32,
    burst: u32,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    device: DefaultKeyedRateLimiter<String>,
    account: DefaultKeyedRateLimiter<Username>,
    /// Registrations per address: the same quota as lookups, in a bucket of their own.
    register: DefaultKeyedRateLimiter<IpAddr>,
    /// The account's upkeep (key rotation and history, re-signed edges, group passes) per
    /// address and per account: [`UPKEEP_FACTOR`] times the quota, since one rotation re-signs
    /// an edge per friend at once.
    upkeep_ip: DefaultKeyedRateLimiter<IpAddr>,
    upkeep_account: DefaultKeyedRateLimiter<Username>,
}

/// How many times the gated requests' quota (rate and burst) the upkeep buckets hold.
pub const UPKEEP_FACTOR: u32 = 10;

impl Limits {
    /// `per_minute` sustained, bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
        let upkeep = Quota::per_minute(
            NonZeroU32::new(per_minute.max(1).saturating_mul(UPKEEP_FACTOR))
                .unwrap_or(NonZeroU32::MIN),
        )
        .allow_burst(
            NonZeroU32::new(burst.max(1).saturating_mul(UPKEEP_FACTOR)).unwrap_or(NonZeroU32::MIN),
        );
        Self {
            per_minute,
            burst,
            ip: DefaultKeyedRateLimiter::keyed(quota),
            device: DefaultKeyedRateLimiter::keyed(quota),
            account: DefaultKeyedRateLimiter::keyed(quota),
            register: DefaultKeyedRateLimiter::keyed(quota),
            upkeep_ip: DefaultKeyedRateLimiter::keyed(upkeep),
            upkeep_account: DefaultKeyedRateLimiter::keyed(upkeep),
        }
    }

    /// The upkeep buckets' quota: sustained per minute, and the burst.
    pub fn upkeep_quota(&self) -> (u32, u32) {
        (
            self.per_minute.saturating_mul(UPKEEP_FACTOR),
            self.burst.saturating_mul(UPKEEP_FACTOR),
        )
    }

    /// Takes a token from the address's and the account's upkeep buckets; `false` if either is
    /// empty (both are spent, as in [`Limits::allow`]).
    pub fn allow_upkeep(&self, ip: IpAddr, account: &Username) -> bool {
        let by_ip = self.upkeep_ip.check_key(&ip).is_ok();
        let by_account = self.upkeep_account.check_key(account).is_ok();
        by_ip && by_account
    }

    /// The quota: sustained per minute, and the burst.
    pub fn quota(&self) -> (u32, u32) {
        (self.per_minute, self.burst)
    }

    /// Takes a token from each bucket; `false` if any is empty.
    pub fn allow(&self, ip: IpAddr, device: &str, account: &Username) -> bool {
        // Evaluate all three so a busy IP cannot spare an account's bucket, and vice versa.
        let by_ip = self.ip.check_key(&ip).is_ok();
        let by_device = self.device.check_key(&device.to_string()).is_ok();
        let by_account = self.account.check_key(account).is_ok();
        by_ip && by_device && by_account
    }

    /// Takes a token from the address's bucket only (requests made before authentication).
    pub fn allow_ip(&self, ip: IpAddr) -> bool {
        self.ip.check_key(&ip).is_ok()
    }

    /// Takes a token from the address's registration bucket.
    pub fn allow_register(&self, ip: IpAddr) -> bool {
        self.register.check_key(&ip).is_ok()
    }

    /// Forgets buckets that are full again, so memory follows recent activity only.
    pub fn prune(&self) {
        self.register.retain_recent();
        self.ip.retain_recent();
        self.device.retain_recent();
        self.account.retain_recent();
        self.upkeep_ip.retain_recent();
        self.upkeep_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_and_registration_buckets_are_separate_and_pruned_when_full_again() {
        let l = Limits::new(60, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.allow_ip(ip) && l.allow_ip(ip));
        assert!(!l.allow_ip(ip), "the address's bucket is empty");
        // Registrations have a bucket of their own, of the same size.
        assert!(l.allow_register(ip) && l.allow_register(ip));
        assert!(!l.allow_register(ip));
        assert!(l.allow_register("127.0.0.2".parse().unwrap()));
        // Pruning keeps buckets that are still short of tokens.
        l.prune();
        assert!(l.ip.len() == 1 && l.register.len() == 2);
        // A bucket that is full again is forgotten (here after 1 ms: 60 000 a minute, burst 1).
        let quick = Limits::new(60_000, 1);
        assert!(quick.allow_ip(ip) && quick.allow_register(ip));
        std::thread::sleep(Duration::from_millis(5));
        quick.prune();
        assert_eq!((quick.ip.len(), quick.register.len()), (0, 0));
    }

    #[test]
    fn upkeep_has_buckets_of_its_own_per_address_and_account_ten_times_the_quota() {
        let l = Limits::new(60, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (alice, bob) = (
            Username::parse("alice").unwrap(),
            Username::parse("bob").unwrap(),
        );
        assert_eq!(l.upkeep_quota(), (600, 20));
        assert!((0..20).all(|_| l.allow_upkeep(ip, &alice)));
        assert!(!l.allow_upkeep(ip, &alice), "the burst is spent");
        // Another account behind that address is held back by the address's bucket; the same
        // account from elsewhere by its own.
        assert!(!l.allow_upkeep(ip, &bob));
        assert!(!l.allow_upkeep("127.0.0.2".parse().unwrap(), &alice));
        assert!(l.allow_upkeep("127.0.0.3".parse().unwrap(), &bob));
        // The gated requests' buckets are untouched.
        assert!(l.allow(ip, "d1", &alice));
    }

    #[test]
    fn a_burst_then_nothing_until_tokens_return() {
        let l = Limits::new(60, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let u = Username::parse("alice").unwrap();
        assert!((0..3).all(|_| l.allow(ip, "d1", &u)));
        assert!(!l.allow(ip, "d1", &u), "bucket empty");
        // Another account behind the same address is held back by the address's bucket.
        assert!(!l.allow(ip, "d2", &Username::parse("mallory").unwrap()));
        // Elsewhere, a fresh account and device are not.
        assert!(l.allow(
            "127.0.0.2".parse().unwrap(),
            "d3",
            &Username::parse("carol").unwrap()
        ));
    }
}

/// How long failures are remembered after the last one.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// The longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// An address stands for many people behind one NAT: it gets this many times the account's allowance.
pub const IP_FACTOR: u32 = 4;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Who {
    Ip(IpAddr),
    Account(Username),
}

/// `not_found` answers per account and per IP address.
#[derive(Default)]
pub struct Failures {
    seen: Mutex<HashMap<Who, (u32, Instant)>>,
}

/// What a requester's failures ask of its next gated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// Not before this moment.
    pub not_before: Option<Instant>,
    pub pow: bool,
}

/// After `after` failures, wait 1 s, then 2 s, 4 s … up to [`MAX_BACKOFF`] after the latest one.
pub fn backoff(failures: u32, after: u32) -> Option<Duration> {
    if after == 0 || failures < after {
        return None;
    }
    let doublings = (failures - after).min(16);
    Some(Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF))
}

/// The demand from `[account, address]` failure records `(count, latest)`, wherever they are
/// kept (here, or in Redis for many instances).
pub fn demand_from(
    records: [Option<(u32, Instant)>; 2],
    backoff_after: u32,
    pow_after: u32,
) -> Demand {
    let mut d = Demand {
        not_before: None,
        pow: false,
    };
    for (rec, factor) in records.into_iter().zip([1, IP_FACTOR]) {
        let Some((n, last)) = rec else { continue };
        if let Some(wait) = backoff(n, backoff_after.saturating_mul(factor)) {
            let until = last + wait;
            d.not_before = Some(d.not_before.map_or(until, |t| t.max(until)));
        }
        d.pow |= pow_after > 0 && n >= pow_after.saturating_mul(factor);
    }
    d
}

impl Failures {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Who, (u32, Instant)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the next request of this account from this address must do. `backoff_after` and
    /// `pow_after` are the account's allowances (0: off); the address gets [`IP_FACTOR`] times them.
    pub fn demand(
        &self,
        ip: IpAddr,
        account: &Username,
        backoff_after: u32,
        pow_after: u32,
    ) -> Demand {
        let seen = self.lock();
        let get = |w: &Who| seen.get(w).copied();
        demand_from(
            [get(&Who::Account(account.clone())), get(&Who::Ip(ip))],
            backoff_after,
            pow_after,
        )
    }

    pub fn record(&self, ip: IpAddr, account: &Username, now: Instant) {
        let mut seen = self.lock();
        for w in [Who::Ip(ip), Who::Account(account.clone())] {
            let e = seen.entry(w).or_insert((0, now));
            *e = (e.0.saturating_add(1), now);
        }
    }

    pub fn prune(&self, now: Instant) {
        self.lock()
            .retain(|_, (_, last)| now.duration_since(*last) < FAILURE_MEMORY);
    }
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn failures_are_remembered_for_fifteen_minutes_and_pow_after_zero_is_off() {
        let f = Failures::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let u = Username::parse("alice").unwrap();
        let t0 = Instant::now();
        for _ in 0..50 {
            f.record(ip, &u, t0);
        }
        assert!(!f.demand(ip, &u, 0, 0).pow, "0 turns proof of work off");
        assert!(
            f.demand(ip, &u, 0, 50).pow,
            "at exactly the allowance it is owed"
        );
        assert!(!f.demand(ip, &u, 0, 51).pow);
        f.prune(t0 + Duration::from_secs(14 * 60 + 59));
        assert!(
            f.demand(ip, &u, 5, 0).not_before.is_some(),
            "still remembered"
        );
        f.prune(t0 + Duration::from_secs(15 * 60));
        assert_eq!(
            f.demand(ip, &u, 5, 10),
            Demand {
                not_before: None,
                pow: false
            },
            "forgotten after 15 minutes"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(2, 3), None);
        assert_eq!(backoff(3, 3), Some(Duration::from_secs(1)));
        assert_eq!(backoff(5, 3), Some(Duration::from_secs(4)));
        assert_eq!(backoff(40, 3), Some(MAX_BACKOFF));
        assert_eq!(backoff(40, 0), None, "0 turns it off");
    }

    #[test]
    fn failures_bring_backoff_then_pow_per_account_and_more_slowly_per_address() {
        let f = Failures::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (mallory, carol) = (
            Username::parse("mallory").unwrap(),
            Username::parse("carol").unwrap(),
        );
        let t0 = Instant::now();
        for _ in 0..4 {
            f.record(ip, &mallory, t0);
        }
        let d = f.demand(ip, &mallory, 3, 6);
        assert_eq!(d.not_before, Some(t0 + Duration::from_secs(2)));
        assert!(!d.pow);
        for _ in 0..2 {
            f.record(ip, &mallory, t0);
        }
        assert!(f.demand(ip, &mallory, 3, 6).pow);
        // Another account behind the same address is not held back yet (the address has 4× room).
        assert_eq!(
            f.demand(ip, &carol, 3, 6),
            Demand {
                not_before: None,
                pow: false
            }
        );
        f.prune(t0 + FAILURE_MEMORY);
        assert!(!f.demand(ip, &mallory, 3, 6).pow, "forgotten after a while");
    }
}
