//! The app passcode on the engine (DESIGN §8): set or change it, unlock after a panic or a start,
//! and the checks other engine calls make. The rules are in [`crate::passcode::LockState`].

use std::time::Instant;

use anonchat_proto::frames::SecretText;

use super::{blocking, lock, Engine, Inner};
use crate::error::ProfileError;
use crate::passcode;
use crate::ClientError;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LockView {
    pub has_passcode: bool,
    pub locked: bool,
    /// An entered passcode still covers sensitive actions.
    pub granted: bool,
}

impl Engine {
    /// Whether a sensitive action may run now (no passcode, or one entered recently): for the
    /// shell's own settings that can destroy something, like panic's "also revoke this device".
    pub fn sensitive_allowed(&self) -> Result<(), ClientError> {
        self.inner.sensitive()
    }

    /// Refused while the app is locked: the door every command but unlock, status, panic and
    /// quit passes, for the engine's command list and the shell's own commands alike.
    pub fn check_unlocked(&self) -> Result<(), ClientError> {
        self.inner.unlocked()
    }

    pub fn lock_status(&self) -> LockView {
        let st = lock(&self.inner.lock_state);
        LockView {
            has_passcode: st.has_passcode(),
            locked: st.is_locked(),
            granted: st.granted(Instant::now()),
        }
    }

    /// Sets, changes (`Some`) or removes (`None`) the app passcode. Changing or removing one needs
    /// it to have been entered just before ([`Engine::unlock`]).
    pub async fn set_passcode(&self, new: Option<SecretText>) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        let hash = match new {
            Some(p) => Some(
                blocking(move || passcode::hash(p.as_str()))
                    .await?
                    .ok_or_else(|| {
                        ClientError::Refused(format!(
                            "a passcode has at least {} characters",
                            passcode::MIN_LEN
                        ))
                    })?,
            ),
            None => None,
        };
        let secret = {
            let mut id = lock(&self.inner.identity);
            let id = id
                .as_mut()
                .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
            id.passcode_hash = hash.clone();
            id.to_secret()
        };
        let (kc, profile) = (self.inner.keychain.clone(), self.inner.profile.clone());
        blocking(move || kc.save(&profile, &secret)).await??;
        lock(&self.inner.lock_state).set_passcode(hash.is_some(), Instant::now());
        Ok(())
    }

    /// Enters the passcode: unlocks the app, and covers sensitive actions for a minute. Wrong
    /// guesses wait longer and longer (the Argon2 work is not even done while waiting).
    pub async fn unlock(&self, given: SecretText) -> Result<(), ClientError> {
        {
            let st = lock(&self.inner.lock_state);
            if !st.has_passcode() {
                return Ok(());
            }
            st.may_guess(Instant::now())?;
        }
        let phc = lock(&self.inner.identity)
            .as_ref()
            .and_then(|id| id.passcode_hash.clone())
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        let right = blocking(move || passcode::verify(given.as_str(), &phc)).await?;
        lock(&self.inner.lock_state).guessed(right, Instant::now())?;
        Ok(())
    }
}

/// The grant an entered passcode gives: [`passcode::GRANT`], or in a debug build
/// `ANONCHAT_PASSCODE_GRANT_MS` (so a test sees the prompt before a sensitive action without
/// waiting a minute; a release build ignores it).
pub(super) fn grant() -> std::time::Duration {
    let from_env = cfg!(debug_assertions)
        .then(|| std::env::var("ANONCHAT_PASSCODE_GRANT_MS").ok())
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    from_env.map_or(passcode::GRANT, std::time::Duration::from_millis)
}

impl Inner {
    /// For calls that show or change account data: refused while locked.
    pub(super) fn unlocked(&self) -> Result<(), ClientError> {
        Ok(lock(&self.lock_state).check_unlocked()?)
    }

    /// For sensitive calls: with a passcode, it must have been entered within the last minute.
    pub(super) fn sensitive(&self) -> Result<(), ClientError> {
        Ok(lock(&self.lock_state).check_sensitive(Instant::now())?)
    }

    /// Panic: locked (with a passcode), and the code seed forgotten so showing the code asks again.
    pub(super) fn lock_app(&self) {
        lock(&self.lock_state).lock();
        *lock(&self.fvc) = None;
    }
}
