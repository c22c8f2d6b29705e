//! Token buckets on the gated requests (lookup, ring, friend request): one per IP address, one per
//! device, one per account. All three must have a token. RAM only; idle buckets are pruned.

use std::net::IpAddr;
use std::num::NonZeroU32;

use anonchat_proto::Username;
use governor::{DefaultKeyedRateLimiter, Quota};

pub struct Limits {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    device: DefaultKeyedRateLimiter<String>,
    account: DefaultKeyedRateLimiter<Username>,
}

impl Limits {
    /// `per_minute` sustained, bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            ip: DefaultKeyedRateLimiter::keyed(quota),
            device: DefaultKeyedRateLimiter::keyed(quota),
            account: DefaultKeyedRateLimiter::keyed(quota),
        }
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

    /// Forgets buckets that are full again, so memory follows recent activity only.
    pub fn prune(&self) {
        self.ip.retain_recent();
        self.device.retain_recent();
        self.account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
