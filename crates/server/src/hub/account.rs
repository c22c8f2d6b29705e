//! Requests about one's own account: discovery mode and code, presence, deletion, search.

use anonchat_proto::fvc;
use anonchat_proto::signing::verify;
use anonchat_proto::wire::{Mode, ServerMsg};
use anonchat_proto::{Key32, Sig64, Username};

use super::{bad, new_salt, Hub, Refusal, Reply, Session, TOMBSTONE_DAYS};
use crate::clock::Now;

impl Hub {
    pub(super) async fn set_mode(
        &self,
        s: &Session,
        mode: Mode,
        always_require_code: bool,
        format: fvc::CodeFormat,
    ) -> Reply {
        let format = format.validate().map_err(|e| bad(e.to_string()))?;
        let current = self.account_row(&s.username).await?;
        // Switching to STRICT starts from a fresh salt: codes shared before stop working.
        let salt = (mode == Mode::Strict && current.mode != Mode::Strict).then(new_salt);
        self.store
            .set_mode(
                &s.username,
                mode,
                always_require_code,
                format,
                salt.as_ref().map(|s| &s[..]),
            )
            .await?;
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn get_mode(&self, s: &Session) -> Reply {
        let a = self.account_row(&s.username).await?;
        Ok(ServerMsg::Mode {
            mode: a.mode,
            always_require_code: a.always_require_code,
            format: a.format,
            presence: a.presence,
        })
    }

    pub(super) async fn set_presence(
        &self,
        s: &Session,
        presence: anonchat_proto::wire::PresenceMode,
    ) -> Reply {
        self.store.set_presence(&s.username, presence).await?;
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn fvc_seed(&self, s: &Session) -> Reply {
        let a = self.account_row(&s.username).await?;
        if a.static_code_hash.is_some() {
            return Err(bad("this account uses a static code"));
        }
        Ok(ServerMsg::FvcSeed {
            seed: Key32(*fvc::seed(&*self.secret, &a.ak_pub, &a.fvc_salt)),
            format: a.format,
            step: fvc::STEP,
        })
    }

    pub(super) async fn set_static_code(&self, s: &Session, code: Option<String>) -> Reply {
        let hash = match code {
            Some(c) => Some(
                tokio::task::spawn_blocking(move || crate::static_code::hash(&c))
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad("a static code has 6 to 32 letters and digits"))?,
            ),
            None => None,
        };
        self.store
            .set_static_code(&s.username, hash.as_deref())
            .await?;
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn rotate_code(&self, s: &Session) -> Reply {
        self.store.rotate_salt(&s.username, &new_salt()).await?;
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn delete_account(&self, s: &Session, ts: u64, sig: Sig64, now: Now) -> Reply {
        let fresh = ts.abs_diff(now.unix) <= anonchat_proto::pow::MAX_AGE_SECS;
        self.check_deletion(&s.username, ts, &sig, fresh).await?;
        // This device hears `ok` and leaves; the others are cut off now.
        self.erase_account(&s.username, Some(&s.device_id), now.unix)
            .await
    }

    /// A deletion signed by the account key, sent without a session (`POST /v1/delete`): a
    /// burner whose machine erased its keys before the server could be told resends the
    /// deletion it signed then. Signed at most `limits::DELETION_RESEND_SECS` ago (and not in the
    /// future).
    pub async fn delete_signed(&self, username: &Username, ts: u64, sig: &Sig64) -> Reply {
        let now = crate::clock::unix_now();
        let fresh = ts <= now + anonchat_proto::pow::MAX_AGE_SECS
            && now.saturating_sub(ts) <= anonchat_proto::limits::DELETION_RESEND_SECS;
        self.check_deletion(username, ts, sig, fresh).await?;
        self.erase_account(username, None, now).await
    }

    async fn check_deletion(
        &self,
        username: &Username,
        ts: u64,
        sig: &Sig64,
        fresh: bool,
    ) -> Result<(), Refusal> {
        let ak = self.account_key(username).await?;
        verify(
            &ak,
            &anonchat_proto::signing::delete_account_bytes(username, ts),
            sig,
        )
        .ok()
        .filter(|_| fresh)
        .ok_or_else(|| bad("deletion must be signed by the account key, just now"))
    }

    /// Deletes the account (a tombstone keeps its name from being taken for a while) and cuts
    /// off its devices but `except`.
    async fn erase_account(&self, username: &Username, except: Option<&str>, now: u64) -> Reply {
        let expires = now + TOMBSTONE_DAYS * 86_400;
        self.store
            .delete_account(username, &self.name_hash(username), expires as i64)
            .await?;
        let devices = self.devices_anywhere(username).await;
        for d in devices.iter().filter(|d| Some(d.as_str()) != except) {
            let here = self.lock().conns.get(d).map(|c| c.kill.cancel()).is_some();
            if !here {
                self.kill_elsewhere(d, None);
            }
        }
        if !self.quiet {
            tracing::info!("account deleted");
        }
        Ok(ServerMsg::Ok)
    }

    /// A scan of the public names: priced like a lookup (P9).
    pub(super) async fn search(&self, s: &Session, prefix: String) -> Reply {
        if !self.allow(s).await {
            return Err(Refusal::RateLimited(Some(
                "too many requests; try again in a minute".into(),
            )));
        }
        let ok = prefix.len() >= 3
            && prefix.len() <= 32
            && prefix.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !ok {
            return Err(bad("search needs 3 to 32 characters of a username"));
        }
        let users = self.store.search_public(&prefix, 20).await?;
        Ok(ServerMsg::Users { users })
    }
}
