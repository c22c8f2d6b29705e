//! Trust: pinned account keys (first use pins; a different key is refused, kept for the user's
//! decision and announced), safety numbers and verification, and blocking.

use anonchat_proto::{safety, Key32, Username};

use super::{lock, Engine, Inner, AUTO_BLOCK_AFTER};
use crate::events::Event;
use crate::profile::Contact;
use crate::trust::{self, Flow, Verdict};
use crate::ClientError;

impl Engine {
    /// Refuses every ring and friend request from `username` without asking, until unblocked.
    pub async fn block(&self, username: &str) -> Result<(), ClientError> {
        let who = Username::parse(username)?;
        self.inner.set_blocked(&who, true).wait().await
    }

    pub async fn unblock(&self, username: &str) -> Result<(), ClientError> {
        let who = Username::parse(username)?;
        lock(&self.inner.refusals).remove(&who);
        self.inner.set_blocked(&who, false).wait().await
    }

    pub fn blocked(&self) -> Vec<String> {
        lock(&self.inner.data).blocked.iter().cloned().collect()
    }

    /// The 60-digit safety number with a pinned contact, as 12 groups of 5.
    pub fn safety_number(&self, username: &str) -> Result<String, ClientError> {
        self.inner.unlocked()?;
        let them = Username::parse(username)?;
        let their_ak = self
            .inner
            .pinned(&them)
            .ok_or_else(|| ClientError::UnknownContact(them.to_string()))?;
        self.my_ak()?;
        Ok(self.inner.safety_with(&them, &their_ak))
    }

    /// The user compared safety numbers in person: mark the contact verified. `shown` is the
    /// number the user compared; refused when the key pinned now has another.
    pub async fn mark_verified(&self, username: &str, shown: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let them = Username::parse(username)?;
        let pinned = self
            .inner
            .pinned(&them)
            .ok_or_else(|| ClientError::UnknownContact(them.to_string()))?;
        if !trust::shows(shown, &self.inner.safety_with(&them, &pinned), &pinned) {
            return Err(trust::Refusal::NotShown.into());
        }
        {
            let mut data = lock(&self.inner.data);
            match data.contacts.get_mut(them.as_str()) {
                Some(c) if c.ak_pub == pinned => c.verified = true,
                _ => return Err(trust::Refusal::NotShown.into()),
            }
        }
        self.inner.save_profile().wait().await
    }

    /// After a `key_changed` warning, the user chose to trust the new key they were shown:
    /// `shown` is its safety number (or the key). Exactly that key is pinned — whatever the server
    /// named since — or nothing is.
    pub async fn trust_new_key(&self, username: &str, shown: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let them = Username::parse(username)?;
        let (me, my_ak) = self.my_ak()?;
        let number = |k: &Key32| safety::grouped(&safety::safety_number(&me, &my_ak, &them, k));
        // Under the data lock, then the pending keys (the order `vouch` takes them): no judge in
        // between can see the old pin and keep the key just trusted as a change again.
        let ak = {
            let mut data = lock(&self.inner.data);
            let ak = lock(&self.inner.pending_keys).approve(&them, shown, number)?;
            data.contacts.insert(
                them.to_string(),
                Contact {
                    ak_pub: ak,
                    verified: false,
                },
            );
            ak
        };
        self.inner.save_profile().wait().await?;
        // Our half of the friendship edge was signed over the old key: sign it over the new one.
        self.resign_edge_with(them, ak).await;
        Ok(())
    }
}

impl Inner {
    pub(super) fn is_blocked(&self, who: &Username) -> bool {
        lock(&self.data).blocked.contains(who.as_str())
    }

    pub(super) fn set_blocked(&self, who: &Username, blocked: bool) -> crate::profile::Written {
        {
            let mut data = lock(&self.data);
            let changed = if blocked {
                data.blocked.insert(who.to_string())
            } else {
                data.blocked.remove(who.as_str())
            };
            if !changed {
                return crate::profile::Written::unchanged();
            }
        }
        self.save_profile()
    }

    /// The user refused a ring or friend request from `who`; enough of them block `who`.
    pub(super) fn refused(&self, who: &Username) {
        let n = {
            let mut r = lock(&self.refusals);
            let n = r.entry(who.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if n >= AUTO_BLOCK_AFTER && !self.is_blocked(who) {
            // Blocked in RAM at once; the write lands on its own (nobody waits here).
            drop(self.set_blocked(who, true));
            self.emit(Event::Blocked {
                username: who.to_string(),
                automatic: true,
            });
        }
    }

    pub(super) fn pinned(&self, who: &Username) -> Option<Key32> {
        lock(&self.data)
            .contacts
            .get(who.as_str())
            .map(|c| c.ak_pub)
    }

    /// Judges the key the server names for `who` in `flow` (the rules are `crate::trust`): pins
    /// it on first use (never on a roster's word), and announces a changed key at once, the first
    /// time it is named.
    pub(super) fn vouch(&self, who: &Username, ak: Key32, flow: Flow) -> Verdict {
        let verdict = {
            let mut data = lock(&self.data);
            let pinned = data.contacts.get(who.as_str()).map(|c| c.ak_pub);
            let blocked = data.blocked.contains(who.as_str());
            let verdict = lock(&self.pending_keys).judge(who, ak, pinned, blocked, flow);
            if verdict == Verdict::FirstUse && flow != Flow::Roster {
                data.contacts.insert(
                    who.to_string(),
                    Contact {
                        ak_pub: ak,
                        verified: false,
                    },
                );
            }
            verdict
        };
        match verdict {
            // Pinned in RAM at once; the write lands on its own (this runs on the signaling reader).
            Verdict::FirstUse if flow != Flow::Roster => drop(self.save_profile()),
            Verdict::Changed { pinned, new: true } => self.warn_key_changed(who, pinned, ak),
            _ => {}
        }
        verdict
    }

    /// The server's word on `who`'s key outside any ring or roster: pinned on first use; a
    /// different key than the pinned one is refused, kept for the user's decision, and announced.
    pub(super) fn pin(&self, who: &Username, ak: Key32) -> Result<(), ClientError> {
        match self.vouch(who, ak, Flow::Listed) {
            Verdict::Pinned | Verdict::FirstUse => Ok(()),
            _ => Err(ClientError::KeyChanged(who.to_string())),
        }
    }

    pub(super) fn my_ak(&self) -> Option<(Username, Key32)> {
        lock(&self.identity)
            .as_ref()
            .map(|i| (i.username.clone(), i.ak_pub()))
    }

    pub(super) fn safety_with(&self, who: &Username, ak: &Key32) -> String {
        self.my_ak()
            .map(|(me, my_ak)| safety::grouped(&safety::safety_number(&me, &my_ak, who, ak)))
            .unwrap_or_default()
    }
}
