//! Burner identities (seed phase 6): a throwaway account with a random alias and a profile (and
//! keychain entry) of its own, deleted from the server — the signed deletion — and from this
//! machine when its app quits or its lifetime ends. A burner's profile name starts with
//! [`PREFIX`]; one whose app is gone (it crashed, or was killed), or whose server could not be
//! told, is a leftover, finished by the next start of the app or the CLI ([`Engine::burn`]).

use rand::Rng;

use crate::engine::{Engine, Told};
use crate::error::ProfileError;
use crate::ClientError;

/// What every burner profile's name starts with.
pub const PREFIX: &str = "burner-";

/// A fresh burner profile name.
pub fn profile_name() -> String {
    let mut rng = rand::rngs::OsRng;
    let tail: String = (0..12)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect();
    format!("{PREFIX}{tail}")
}

/// A random alias: nothing in it says who made it, nor that it is a burner.
pub fn alias() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..14)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

pub fn is_burner(profile: &str) -> bool {
    profile.starts_with(PREFIX)
}

/// The file that marks a profile folder as a burner's (written before its account exists): a
/// profile the user merely named `burner-…` is never taken for one.
pub const MARKER: &str = "burner";

/// The burner profiles on this machine (running or left over): named so, and marked as one or
/// holding a kept deletion.
pub fn profiles() -> Result<Vec<String>, ClientError> {
    let any = crate::profile::profile_dir("x")?;
    let Some(root) = any.parent() else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ClientError::Profile(ProfileError::Storage(e.to_string()))),
    };
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| is_burner(n))
        .filter(|n| {
            let dir = root.join(n);
            dir.join(MARKER).is_file() || dir.join(crate::engine::DELETION_FILE).is_file()
        })
        .collect())
}

/// Deletes every burner whose front-end is gone (crashed, killed, or the server was down when it
/// quit): each is opened with `open` while its instance lock is held here, and burnt. Returns
/// what became of each.
pub async fn clean_leftovers<F, Fut>(open: F) -> Vec<(String, Result<(), ClientError>)>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Engine, ClientError>>,
{
    let mut done = Vec::new();
    for name in profiles().unwrap_or_default() {
        let held = match crate::profile::instance::claim(&name) {
            Ok(Some(lock)) => lock,
            // Running (its lock is held), or unreadable: not ours to delete now.
            Ok(None) | Err(_) => continue,
        };
        let result = match open(name.clone()).await {
            Ok(engine) => engine.burn(LEFTOVER_WAIT).await,
            Err(e) => Err(e),
        };
        drop(held);
        done.push((name, result));
    }
    done
}

/// A burner's lifetime, counted by the wall clock as well as the monotonic one: the monotonic
/// clock stops while the machine sleeps, and a lifetime chosen as "one hour" must not last a
/// night because the laptop was closed. Setting the wall clock back does not stretch it either.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    length: std::time::Duration,
    since: std::time::Instant,
    since_wall: std::time::SystemTime,
}

impl Lifetime {
    pub fn new(
        length: std::time::Duration,
        now: std::time::Instant,
        wall: std::time::SystemTime,
    ) -> Self {
        Self {
            length,
            since: now,
            since_wall: wall,
        }
    }

    /// Whether it is over at `now` (monotonic) and `wall` (the system clock).
    pub fn over(&self, now: std::time::Instant, wall: std::time::SystemTime) -> bool {
        now.saturating_duration_since(self.since) >= self.length
            || wall
                .duration_since(self.since_wall)
                .is_ok_and(|d| d >= self.length)
    }

    /// Waits until it is over, looking at both clocks every second (a sleep of the whole length
    /// would wake late after a suspend).
    pub async fn ends(self) {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            if self.over(std::time::Instant::now(), std::time::SystemTime::now()) {
                return;
            }
        }
    }
}

/// How long a leftover's deletion waits for the server.
const LEFTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Engine {
    /// Makes this (fresh, burner) profile's account under a random alias and connects it.
    pub async fn start_burner(&self) -> Result<String, ClientError> {
        if let Some(me) = self.username() {
            return Ok(me);
        }
        self.mark_burner()?;
        // A taken alias (vanishingly rare) is tried again with another.
        let mut last = None;
        for _ in 0..3 {
            let name = alias();
            match self.register(&name).await {
                Ok(()) => {
                    self.connect().await?;
                    return Ok(name);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::Refused("no alias was free".into())))
    }

    /// Ends a burner: its account is deleted on the server (signed by its account key) and
    /// everything of it on this machine — always, at once. If the server cannot be told within
    /// `wait`, only the signed deletion stays (no key: the name, the server, the signature), and
    /// the next start sends it again ([`clean_leftovers`]). A profile that holds only such a
    /// deletion sends it, and is gone once the server took it.
    pub async fn burn(&self, wait: std::time::Duration) -> Result<(), ClientError> {
        if self.username().is_none() {
            let kept = self.kept_deletion();
            self.shutdown().await;
            let Some(d) = kept else {
                return self.forget_local().await;
            };
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_secs())
                .saturating_sub(d.ts);
            if age > anonchat_proto::limits::DELETION_RESEND_SECS {
                // The server would refuse it now: keeping the name and server here helps no one.
                self.forget_local().await?;
                return Err(ClientError::Refused(
                    "the burner's deletion was never confirmed and is too old to send now".into(),
                ));
            }
            return match self.post_deletion(&d).await {
                Told::Done => self.forget_local().await,
                Told::Refused(why) => {
                    self.forget_local().await?;
                    Err(ClientError::Refused(format!(
                        "the burner's deletion was refused: {why}"
                    )))
                }
                Told::Unreachable(why) => Err(unreachable(&why)),
            };
        }
        let d = self.sign_deletion()?;
        let told = self.tell_deletion(&d, wait).await;
        self.shutdown().await;
        self.forget_local().await?;
        match told {
            Told::Done => Ok(()),
            Told::Refused(why) => Err(ClientError::Refused(format!(
                "erased from this machine; the server refused the deletion: {why}"
            ))),
            Told::Unreachable(why) => {
                self.keep_deletion(&d)?;
                Err(unreachable(&why))
            }
        }
    }
}

fn unreachable(why: &str) -> ClientError {
    ClientError::Refused(format!(
        "erased from this machine; the server could not be told ({why}): its signed deletion \
         is sent again at the next start"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifetime_ends_by_either_clock() {
        use std::time::{Duration, Instant, SystemTime};
        let (t0, w0) = (
            Instant::now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        );
        let hour = Duration::from_secs(3600);
        let life = Lifetime::new(hour, t0, w0);
        let s = Duration::from_secs;
        // (monotonic elapsed, wall elapsed: + forward / - set back, over?)
        let table: [(Duration, i64, bool); 7] = [
            (s(0), 0, false),
            (s(3599), 3599, false),
            (s(3600), 3600, true),
            // Eight hours asleep: the monotonic clock saw one minute.
            (s(60), 8 * 3600, true),
            // The wall clock set back a day: the monotonic hour still ends it.
            (s(3600), -86_400, true),
            (s(1800), -86_400, false),
            // Set forward by the user: ends early, never late.
            (s(10), 3600, true),
        ];
        for (mono, wall, want) in table {
            let w = if wall >= 0 {
                w0 + s(wall as u64)
            } else {
                w0 - s(wall.unsigned_abs())
            };
            assert_eq!(life.over(t0 + mono, w), want, "{mono:?} {wall}");
        }
    }

    #[test]
    fn names_and_aliases_are_fresh_and_valid() {
        let (a, b) = (profile_name(), profile_name());
        assert_ne!(a, b);
        assert!(is_burner(&a) && a.len() <= 32);
        assert!(crate::profile::profile_dir(&a).is_ok());
        let alias = alias();
        assert!(anonchat_proto::Username::parse(&alias).is_ok(), "{alias}");
        assert!(!is_burner(&alias));
        assert!(!is_burner("default"));
    }
}
