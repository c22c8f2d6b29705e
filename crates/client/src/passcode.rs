//! The app passcode (DESIGN §8): an optional secret that makes the lock after a panic a lock, and
//! that sensitive actions (approve a device, show or rotate the code, change the mode, delete the
//! account) ask for again. It seals the keychain entry (`crate::sealed`); records from before
//! sealing kept an Argon2id hash beside the keys, checked here once and then sealed.
//!
//! [`LockState`] is the pure part: locked or not, a short grant after the passcode was entered,
//! and a growing wait after wrong guesses. Time is passed in.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest passcode accepted: it is the key to the keychain entry (`sealed.rs`), so a guess
/// costs an attacker with a copy of the entry one 64 MiB Argon2id run and nothing else.
pub const MIN_LEN: usize = 8;
/// Different characters it must have (not "aaaaaaaa", not "12121212").
pub const MIN_DISTINCT: usize = 4;

/// Why a passcode is too weak, if it is.
pub fn weakness(passcode: &str) -> Option<String> {
    let mut chars: Vec<char> = passcode.chars().collect();
    if chars.len() < MIN_LEN {
        return Some(format!("a passcode has at least {MIN_LEN} characters"));
    }
    chars.sort_unstable();
    chars.dedup();
    (chars.len() < MIN_DISTINCT)
        .then(|| format!("a passcode has at least {MIN_DISTINCT} different characters"))
}
/// How long an entered passcode also covers sensitive actions.
pub const GRANT: Duration = Duration::from_secs(60);
/// Wrong guesses before each further one waits (5 s, doubling, at most 5 minutes).
pub const FREE_GUESSES: u32 = 3;
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// 19 MiB, two passes (OWASP's Argon2id minimum): ~50 ms here, paid once per unlock.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$…`) for `passcode`; `None` if it is too weak.
pub fn hash(passcode: &str) -> Option<String> {
    if weakness(passcode).is_some() {
        return None;
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(passcode.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

pub fn verify(passcode: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            argon2()
                .verify_password(passcode.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The wait before the next guess after `wrong` wrong ones: none for the first few, then 5 s
/// doubling up to [`MAX_WAIT`].
pub fn wait_after(wrong: u32) -> Option<Duration> {
    (wrong >= FREE_GUESSES).then(|| {
        let doublings = (wrong - FREE_GUESSES).min(6);
        (Duration::from_secs(5) * 2u32.pow(doublings)).min(MAX_WAIT)
    })
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("AnonChat is locked: enter the app passcode")]
    Locked,
    #[error("this needs the app passcode")]
    PasscodeRequired,
    #[error("wrong passcode")]
    Wrong,
    #[error("too many wrong passcodes: try again in {0} s")]
    Wait(u64),
}

#[derive(Debug)]
pub struct LockState {
    has_passcode: bool,
    locked: bool,
    granted_until: Option<Instant>,
    wrong: u32,
    retry_at: Option<Instant>,
    grant: Duration,
}

impl Default for LockState {
    fn default() -> Self {
        Self {
            has_passcode: false,
            locked: false,
            granted_until: None,
            wrong: 0,
            retry_at: None,
            grant: GRANT,
        }
    }
}

impl LockState {
    pub fn new(has_passcode: bool) -> Self {
        Self {
            has_passcode,
            ..Self::default()
        }
    }

    /// Another grant than [`GRANT`] (debug builds under test: the prompt before a sensitive action
    /// is then seen without waiting a minute).
    pub fn with_grant(mut self, grant: Duration) -> Self {
        self.grant = grant;
        self
    }

    /// Whether an entered passcode still covers sensitive actions.
    pub fn granted(&self, now: Instant) -> bool {
        self.granted_until.is_some_and(|t| now < t)
    }

    pub fn has_passcode(&self) -> bool {
        self.has_passcode
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// A passcode was set, changed (`true`) or removed (`false`); the user just proved it.
    pub fn set_passcode(&mut self, has: bool, now: Instant) {
        self.has_passcode = has;
        self.locked = false;
        self.granted_until = has.then_some(now + self.grant);
    }

    /// Panic (and later idle or the OS lock): with a passcode the app is locked until it is
    /// entered; without one there is nothing to lock with.
    pub fn lock(&mut self) {
        self.granted_until = None;
        self.locked = self.has_passcode;
    }

    /// Anything that shows or changes account data.
    pub fn check_unlocked(&self) -> Result<(), LockError> {
        if self.locked {
            Err(LockError::Locked)
        } else {
            Ok(())
        }
    }

    /// A sensitive action: with a passcode it must have been entered within [`GRANT`].
    pub fn check_sensitive(&self, now: Instant) -> Result<(), LockError> {
        self.check_unlocked()?;
        if !self.has_passcode || self.granted(now) {
            Ok(())
        } else {
            Err(LockError::PasscodeRequired)
        }
    }

    /// Whether a guess may be checked now (the Argon2 work is only done if so).
    pub fn may_guess(&self, now: Instant) -> Result<(), LockError> {
        match self.retry_at {
            Some(t) if now < t => Err(LockError::Wait((t - now).as_secs().max(1))),
            _ => Ok(()),
        }
    }

    /// Wrong guesses since the last right one.
    pub fn wrong(&self) -> u32 {
        self.wrong
    }

    /// The counters stored with the keychain entry (`wrong` guesses, `wait` still to go): a
    /// restarted app waits as the last one would have.
    pub fn restore(&mut self, wrong: u32, wait: Duration, now: Instant) {
        self.wrong = wrong;
        // Never more than the rule gives (a clock set back, or an edited entry, locks no one out).
        let wait = wait.min(MAX_WAIT);
        self.retry_at = (!wait.is_zero()).then_some(now + wait);
    }

    /// A guess is about to be checked: counted now (as wrong until it proves right), so guesses
    /// sent at once each count and wait. Returns the count to store before the check.
    pub fn guessing(&mut self, now: Instant) -> u32 {
        let _ = self.guessed(false, now);
        self.wrong
    }

    /// The outcome of a checked guess.
    pub fn guessed(&mut self, right: bool, now: Instant) -> Result<(), LockError> {
        if right {
            self.locked = false;
            self.wrong = 0;
            self.retry_at = None;
            self.granted_until = Some(now + self.grant);
            return Ok(());
        }
        self.wrong = self.wrong.saturating_add(1);
        if let Some(wait) = wait_after(self.wrong) {
            self.retry_at = Some(now + wait);
        }
        Err(LockError::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_short_ones_are_refused() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct hors", &h));
        assert!(!verify("correct horse", "not a hash"));
        for weak in [
            "abc",
            "1234",
            "1234567",
            "aaaaaaaaaa",
            "12121212",
            "abcabcab",
        ] {
            assert!(hash(weak).is_none(), "{weak}");
            assert!(weakness(weak).is_some(), "{weak}");
        }
        assert_eq!(weakness("four words of passcode"), None);
        assert_eq!(weakness("12345678"), None);
    }

    #[test]
    fn without_a_passcode_nothing_locks_and_nothing_asks() {
        let now = Instant::now();
        let mut s = LockState::new(false);
        s.lock();
        assert!(!s.is_locked());
        assert_eq!(s.check_unlocked(), Ok(()));
        assert_eq!(s.check_sensitive(now), Ok(()));
    }

    #[test]
    fn with_a_passcode_panic_locks_until_it_is_entered() {
        let t0 = Instant::now();
        let mut s = LockState::new(true);
        assert_eq!(s.check_unlocked(), Ok(()));
        assert_eq!(s.check_sensitive(t0), Err(LockError::PasscodeRequired));
        s.lock();
        assert_eq!(s.check_unlocked(), Err(LockError::Locked));
        assert_eq!(s.check_sensitive(t0), Err(LockError::Locked));
        assert_eq!(s.guessed(true, t0), Ok(()));
        assert_eq!(s.check_unlocked(), Ok(()));
        assert_eq!(
            s.check_sensitive(t0 + GRANT / 2),
            Ok(()),
            "within the grant"
        );
        assert_eq!(
            s.check_sensitive(t0 + GRANT),
            Err(LockError::PasscodeRequired),
            "asked again after it"
        );
        s.lock();
        assert_eq!(
            s.check_sensitive(t0),
            Err(LockError::Locked),
            "panic ends a grant"
        );
    }

    #[test]
    fn wrong_guesses_wait_longer_and_longer() {
        let t0 = Instant::now();
        let mut s = LockState::new(true);
        s.lock();
        for _ in 0..FREE_GUESSES - 1 {
            assert_eq!(s.may_guess(t0), Ok(()));
            assert_eq!(s.guessed(false, t0), Err(LockError::Wrong));
        }
        assert_eq!(s.guessed(false, t0), Err(LockError::Wrong));
        assert_eq!(s.may_guess(t0), Err(LockError::Wait(5)));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(s.may_guess(t1), Ok(()));
        assert_eq!(s.guessed(false, t1), Err(LockError::Wrong));
        assert_eq!(s.may_guess(t1), Err(LockError::Wait(10)));
        for _ in 0..20 {
            let _ = s.guessed(false, t1);
        }
        assert_eq!(s.may_guess(t1), Err(LockError::Wait(300)), "capped");
        assert!(s.is_locked());
        let t2 = t1 + MAX_WAIT;
        assert_eq!(s.guessed(true, t2), Ok(()));
        assert_eq!(s.may_guess(t2), Ok(()), "a right guess resets the wait");
    }

    #[test]
    fn restored_counters_wait_as_the_last_run_would_have() {
        let t0 = Instant::now();
        let mut s = LockState::new(true);
        s.lock();
        s.restore(5, Duration::from_secs(20), t0);
        assert_eq!(s.wrong(), 5);
        assert_eq!(s.may_guess(t0), Err(LockError::Wait(20)));
        assert_eq!(s.may_guess(t0 + Duration::from_secs(20)), Ok(()));
        s.restore(1, Duration::ZERO, t0);
        assert_eq!(s.may_guess(t0), Ok(()));
        s.restore(7, Duration::from_secs(u64::MAX / 4), t0);
        assert_eq!(s.may_guess(t0), Err(LockError::Wait(300)), "capped");
        // Guesses sent at once each count before any is checked: the third waits.
        let mut s = LockState::new(true);
        s.lock();
        assert_eq!((s.guessing(t0), s.guessing(t0), s.guessing(t0)), (1, 2, 3));
        assert_eq!(s.may_guess(t0), Err(LockError::Wait(5)));
        assert_eq!(s.guessed(true, t0), Ok(()), "a right one resets");
        assert_eq!(s.wrong(), 0);
        assert_eq!(wait_after(FREE_GUESSES - 1), None);
        assert_eq!(wait_after(FREE_GUESSES), Some(Duration::from_secs(5)));
        assert_eq!(wait_after(100), Some(MAX_WAIT));
    }

    #[test]
    fn a_shorter_grant_runs_out_sooner() {
        let t0 = Instant::now();
        let mut s = LockState::new(true).with_grant(Duration::from_secs(2));
        assert_eq!(s.guessed(true, t0), Ok(()));
        assert!(s.granted(t0 + Duration::from_secs(1)));
        assert!(!s.granted(t0 + Duration::from_secs(2)));
        assert_eq!(
            s.check_sensitive(t0 + Duration::from_secs(2)),
            Err(LockError::PasscodeRequired)
        );
    }

    #[test]
    fn setting_a_passcode_grants_and_removing_it_unlocks() {
        let t0 = Instant::now();
        let mut s = LockState::new(false);
        s.set_passcode(true, t0);
        assert_eq!(s.check_sensitive(t0), Ok(()));
        s.set_passcode(false, t0);
        s.lock();
        assert_eq!(s.check_unlocked(), Ok(()));
    }
}
