//! The app passcode on the engine (DESIGN §8): set or change it, unlock after a panic or a start,
//! and the checks other engine calls make. The rules are in [`crate::passcode::LockState`].

use std::time::Instant;

use anonchat_proto::frames::SecretText;

use super::{blocking, lock, unix_now, Engine, Inner};
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
    /// it to have been entered just before ([`Engine::unlock`]). Set, it seals the keychain record
    /// under a key derived from it (`crate::sealed`); removed, the record is stored plain again.
    pub async fn set_passcode(&self, new: Option<SecretText>) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        if let Some(why) = new.as_ref().and_then(|p| passcode::weakness(p.as_str())) {
            return Err(ClientError::Refused(why));
        }
        self.seal_under(new).await
    }

    /// Seals the keychain record under `new` (or stores it plain with none).
    async fn seal_under(&self, new: Option<SecretText>) -> Result<(), ClientError> {
        let sealer = match new {
            Some(p) => Some(
                blocking(move || crate::sealed::Sealer::new(p.as_str()))
                    .await?
                    .ok_or_else(|| {
                        ClientError::Refused("the passcode's key could not be made".into())
                    })?,
            ),
            None => None,
        };
        let plain = {
            let mut id = lock(&self.inner.identity);
            let id = id.as_mut().ok_or_else(|| self.inner.no_identity())?;
            // The seal is the check now: no hash beside the keys.
            id.passcode_hash = None;
            id.to_secret()
        };
        let has = sealer.is_some();
        *lock(&self.inner.sealer) = sealer;
        if !has {
            *lock(&self.inner.sealed) = None;
        }
        let record = self.inner.identity_record(plain);
        self.inner.save_record(record).await?;
        lock(&self.inner.lock_state).set_passcode(has, Instant::now());
        Ok(())
    }

    /// Enters the passcode: unlocks the app (opening the sealed keychain record if it is still
    /// sealed, then connecting), and covers sensitive actions for a minute. Wrong guesses wait
    /// longer and longer, across restarts: each guess is counted in the keychain entry before it
    /// is checked, and the Argon2 work is not even done while waiting.
    pub async fn unlock(&self, given: SecretText) -> Result<(), ClientError> {
        let counted = {
            let mut st = lock(&self.inner.lock_state);
            if !st.has_passcode() {
                return Ok(());
            }
            st.may_guess(Instant::now())?;
            // Counted before anything else: guesses sent at once each count, and wait.
            st.guessing(Instant::now())
        };
        let Some(record) = lock(&self.inner.sealed).clone() else {
            return self.unlock_by_hash(given).await;
        };
        let retry_at =
            passcode::wait_after(counted).map_or(0, |w| unix_now().saturating_add(w.as_secs()));
        self.inner
            .save_record(record.with_guesses(counted, retry_at).to_bytes())
            .await?;
        let opened = blocking(move || record.open(given.as_str())).await?;
        let Some((plain, sealer)) = opened else {
            return Err(passcode::LockError::Wrong.into());
        };
        let sealed_until_now = lock(&self.inner.identity).is_none();
        if sealed_until_now {
            self.inner.open_identity(&plain)?;
        }
        *lock(&self.inner.sealer) = Some(sealer);
        // Sealed again from the identity held now (a rotation during the check changed it), with
        // the guesses reset.
        let now_plain = lock(&self.inner.identity).as_ref().map(|i| i.to_secret());
        let record = self.inner.identity_record(now_plain.unwrap_or(plain));
        self.inner.save_record(record).await?;
        lock(&self.inner.lock_state).guessed(true, Instant::now())?;
        if sealed_until_now && self.server().is_some() {
            // Nothing could connect while the keys were sealed.
            let _ = self.connect().await;
        }
        Ok(())
    }

    /// A record from before sealing: the passcode's hash beside the keys. A right guess seals it.
    async fn unlock_by_hash(&self, given: SecretText) -> Result<(), ClientError> {
        let phc = lock(&self.inner.identity)
            .as_ref()
            .and_then(|id| id.passcode_hash.clone())
            .ok_or_else(|| self.inner.no_identity())?;
        let check = given.clone();
        let right = blocking(move || passcode::verify(check.as_str(), &phc)).await?;
        if !right {
            return Err(passcode::LockError::Wrong.into());
        }
        lock(&self.inner.lock_state).guessed(true, Instant::now())?;
        if let Some(why) = passcode::weakness(given.as_str()) {
            // Too weak to be the key to the entry: the old check stays until a new one is set.
            self.inner.emit(crate::events::Event::Warning {
                message: format!(
                    "set a new app passcode: {why}, and only then are your keys sealed under it"
                ),
            });
            return Ok(());
        }
        self.seal_under(Some(given)).await
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
    async fn save_record(&self, record: zeroize::Zeroizing<Vec<u8>>) -> Result<(), ClientError> {
        let (kc, profile) = (self.keychain.clone(), self.profile.clone());
        blocking(move || kc.save(&profile, &record)).await?
    }

    /// The identity the passcode just unsealed, and the profile folder its key opens.
    fn open_identity(&self, plain: &[u8]) -> Result<(), ClientError> {
        let id = crate::identity::Identity::from_secret(plain)?;
        let dir = crate::profile::profile_dir(&self.profile)?;
        let data = crate::profile::load(&dir, &id.profile_key)?;
        if let Some(pin) = data.server_pin {
            self.pin.expect(Some(pin.0));
        }
        {
            let mut server = lock(&self.server);
            if server.is_none() {
                *server = data.server.clone();
            }
        }
        *lock(&self.data) = data;
        *lock(&self.identity) = Some(id);
        Ok(())
    }

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
