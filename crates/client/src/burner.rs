//! Burner identities (seed phase 6): a throwaway account with a random alias and a profile (and
//! keychain entry) of its own, deleted from the server — the signed deletion — and from this
//! machine when its app quits or its lifetime ends. A burner's profile name starts with
//! [`PREFIX`]; one whose app is gone (it crashed, or was killed) is a leftover, deleted by the next
//! start ([`Engine::burn`]).

use rand::Rng;

use crate::engine::Engine;
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

/// The burner profiles on this machine (running or left over).
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

/// How long a leftover's deletion waits for the server.
const LEFTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Engine {
    /// Makes this (fresh, burner) profile's account under a random alias and connects it.
    pub async fn start_burner(&self) -> Result<String, ClientError> {
        if let Some(me) = self.username() {
            return Ok(me);
        }
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
    /// everything of it on this machine. If the server cannot be reached within `wait`, the
    /// keys stay so that a later start can try again (the account must not outlive its user's
    /// wish only because the network was down then).
    pub async fn burn(&self, wait: std::time::Duration) -> Result<(), ClientError> {
        if self.username().is_none() {
            self.shutdown().await;
            return self.forget_local().await;
        }
        if !self.is_connected() {
            self.connect().await?;
        }
        let deadline = tokio::time::Instant::now() + wait;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                self.shutdown().await;
                return Err(ClientError::Refused(
                    "the server could not be reached: the burner is deleted at the next start"
                        .into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.delete_account_unchecked().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
