//! Pending friend requests (RAM only, DESIGN P2), with quotas per requester and per target and an
//! expiry index (P9): outsiders cannot fill the table for everyone, and nothing is scanned whole.
//! Pure: time is passed in.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use anonchat_proto::{Sig64, Username};

/// Requests one account may have waiting at once.
pub const MAX_PER_REQUESTER: usize = 32;
/// Requests waiting for one account at once (its declines free places).
pub const MAX_PER_TARGET: usize = 64;
/// Requests waiting server-wide.
pub const MAX_TOTAL: usize = 100_000;
/// How long a request waits for an answer.
pub const TTL: Duration = Duration::from_secs(600);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("too many friend requests are waiting from this account")]
    Requester,
    #[error("too many friend requests are waiting for that account")]
    Target,
    #[error("too many friend requests are waiting")]
    Total,
}

struct Pending {
    sig: Sig64,
    deadline: Instant,
}

pub struct FriendRequests {
    ttl: Duration,
    map: HashMap<(Username, Username), Pending>,
    outgoing: HashMap<Username, HashSet<Username>>,
    incoming: HashMap<Username, usize>,
    deadlines: BTreeSet<(Instant, Username, Username)>,
}

impl Default for FriendRequests {
    fn default() -> Self {
        Self::new(TTL)
    }
}

impl FriendRequests {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: HashMap::new(),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keeps `from`'s request to `to` (a repeat replaces the earlier one and its deadline).
    pub fn insert(
        &mut self,
        from: &Username,
        to: &Username,
        sig: Sig64,
        now: Instant,
    ) -> Result<(), QuotaError> {
        let key = (from.clone(), to.clone());
        if !self.map.contains_key(&key) {
            if self.map.len() >= MAX_TOTAL {
                return Err(QuotaError::Total);
            }
            if self.outgoing.get(from).map_or(0, HashSet::len) >= MAX_PER_REQUESTER {
                return Err(QuotaError::Requester);
            }
            if self.incoming.get(to).copied().unwrap_or(0) >= MAX_PER_TARGET {
                return Err(QuotaError::Target);
            }
        }
        self.remove(from, to);
        let deadline = now + self.ttl;
        self.map.insert(key, Pending { sig, deadline });
        self.outgoing
            .entry(from.clone())
            .or_default()
            .insert(to.clone());
        *self.incoming.entry(to.clone()).or_default() += 1;
        self.deadlines.insert((deadline, from.clone(), to.clone()));
        Ok(())
    }

    /// The signature of a request still waiting.
    pub fn get(&self, from: &Username, to: &Username, now: Instant) -> Option<Sig64> {
        self.map
            .get(&(from.clone(), to.clone()))
            .filter(|p| p.deadline > now)
            .map(|p| p.sig)
    }

    pub fn remove(&mut self, from: &Username, to: &Username) -> bool {
        let Some(p) = self.map.remove(&(from.clone(), to.clone())) else {
            return false;
        };
        self.deadlines
            .remove(&(p.deadline, from.clone(), to.clone()));
        if let Some(out) = self.outgoing.get_mut(from) {
            out.remove(to);
            if out.is_empty() {
                self.outgoing.remove(from);
            }
        }
        if let Some(n) = self.incoming.get_mut(to) {
            *n -= 1;
            if *n == 0 {
                self.incoming.remove(to);
            }
        }
        true
    }

    /// Every request `from` made (its key changed: they were signed with the old one).
    pub fn remove_from(&mut self, from: &Username) {
        let targets: Vec<Username> = self
            .outgoing
            .get(from)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        for to in targets {
            self.remove(from, &to);
        }
    }

    /// Drops requests past their deadline, oldest first, without looking at the others.
    pub fn expire(&mut self, now: Instant) {
        while let Some((deadline, from, to)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.remove(&from, &to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[test]
    fn quotas_per_requester_and_target_and_repeats_do_not_count_twice() {
        let now = Instant::now();
        let mut r = FriendRequests::new(Duration::from_secs(600));
        let spammer = u("spammer");
        for i in 0..MAX_PER_REQUESTER {
            r.insert(&spammer, &u(&format!("target{i}")), Sig64([1; 64]), now)
                .unwrap();
        }
        assert_eq!(
            r.insert(&spammer, &u("onemore"), Sig64([1; 64]), now),
            Err(QuotaError::Requester)
        );
        // A repeat of a waiting request replaces it.
        r.insert(&spammer, &u("target0"), Sig64([2; 64]), now)
            .unwrap();
        assert_eq!(r.get(&spammer, &u("target0"), now), Some(Sig64([2; 64])));
        assert_eq!(r.len(), MAX_PER_REQUESTER);
        // Others are unaffected; a target fills up on its own.
        let victim = u("victim");
        for i in 0..MAX_PER_TARGET {
            r.insert(&u(&format!("from{i}")), &victim, Sig64([3; 64]), now)
                .unwrap();
        }
        assert_eq!(
            r.insert(&u("late"), &victim, Sig64([3; 64]), now),
            Err(QuotaError::Target)
        );
        // A decline frees one place, and only one.
        assert!(r.remove(&u("from0"), &victim));
        assert!(!r.remove(&u("from0"), &victim), "already gone");
        r.insert(&u("late"), &victim, Sig64([3; 64]), now).unwrap();
        assert_eq!(
            r.insert(&u("later"), &victim, Sig64([3; 64]), now),
            Err(QuotaError::Target)
        );
        assert!(!r.is_empty());
        r.remove_from(&spammer);
        r.insert(&spammer, &u("onemore"), Sig64([1; 64]), now)
            .unwrap();
    }

    #[test]
    fn requests_expire_in_deadline_order() {
        let t0 = Instant::now();
        let mut r = FriendRequests::new(Duration::from_secs(10));
        r.insert(&u("aaa"), &u("bbb"), Sig64([1; 64]), t0).unwrap();
        r.insert(
            &u("ccc"),
            &u("bbb"),
            Sig64([1; 64]),
            t0 + Duration::from_secs(5),
        )
        .unwrap();
        assert!(r
            .get(&u("aaa"), &u("bbb"), t0 + Duration::from_secs(10))
            .is_none());
        r.expire(t0 + Duration::from_secs(10));
        assert_eq!(r.len(), 1);
        r.expire(t0 + Duration::from_secs(15));
        assert!(r.is_empty());
        // Counters went with them: the target takes a full quota again.
        for i in 0..MAX_PER_TARGET {
            r.insert(&u(&format!("from{i}")), &u("bbb"), Sig64([3; 64]), t0)
                .unwrap();
        }
    }
}
