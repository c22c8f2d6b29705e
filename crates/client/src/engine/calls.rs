//! Every ring's life on this device, under one owner: rings we make, rings we get, the ones this
//! device answered, `ring_accepted` that came before the answer to our own `ring`, live sessions and
//! the ids of finished chats. Pure: time is passed in, each transition returns what the engine must
//! do, and the engine holds it behind one lock, so no event can be ordered between two of its maps.
//!
//! The server is not trusted (P8): only a ring this device rang can be accepted, only one it
//! answered can connect, and no id of a live chat or ring can be reused.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use anonchat_proto::wire::RingEnd;
use anonchat_proto::{Key32, Username};

/// How many finished chats' ring ids are remembered: their route lasted the chat, so the peer's
/// `hangup` can reach us just after ours ended, and that is not news for the front-end.
pub(super) const FINISHED_KEPT: usize = 32;
/// Early accepts kept at once, and for how long (the server holds the answer to `ring` until its
/// timing floor; a quick callee can answer sooner).
const EARLY_KEPT: usize = 8;
const EARLY_FOR: Duration = Duration::from_secs(5);

/// `H` is a live session's handle, `A` what a `ring_accepted` carries (generic so the rules are
/// tested without sessions or certificates).
pub(super) struct Calls<H, A> {
    /// ring id → who we ring, and whether as a group's invite or link (then it becomes that or
    /// nothing, never a chat of its own).
    outgoing: HashMap<String, (Username, bool)>,
    early: HashMap<String, (A, Instant)>,
    /// `ring_ended` for ids not (yet) ours: the end of our ring can overtake the answer to it
    /// (held to the server's timing floor); anything else is the server's invention, never told.
    early_ends: HashMap<String, (RingEnd, Instant)>,
    /// ring id → who rings us, with the account key the server vouched for.
    incoming: HashMap<String, (Username, Key32)>,
    /// Rings this device accepted (the user clicked, or joined the group whose link rings):
    /// only these may become sessions; `true` for a group link's.
    accepted: HashMap<String, bool>,
    sessions: HashMap<String, H>,
    finished: VecDeque<String>,
}

/// What to do with a `ring_accepted`.
#[derive(Debug, PartialEq)]
pub(super) enum OnAccepted<A> {
    /// Ours: check the answering device against `callee`'s pinned key, then start the session.
    /// `group`: rung for a group.
    Check {
        callee: Username,
        accept: A,
        group: bool,
    },
    /// Not (yet) ours: kept a moment in case the answer to our `ring` is still on its way.
    Held,
}

/// What to do with a `ring_connected` (the callee side).
#[derive(Debug, PartialEq)]
pub(super) enum OnConnected {
    /// Answered here: check the caller's device against `ak`, then start the session. `group`:
    /// answered as a group link, which becomes that link or nothing — never a chat of its own.
    Check {
        caller: Username,
        ak: Key32,
        group: bool,
    },
    /// Nobody here answered it: a server connecting a call nobody took gets nothing.
    NotAnswered,
}

/// What to do with a `ring_ended`.
#[derive(Debug, PartialEq)]
pub(super) enum OnEnded<H> {
    /// A live chat's route closed; the chat goes on peer to peer until it ends.
    RouteClosed(H),
    /// The peer's hangup of a chat that already ended here: not news.
    Quiet,
    /// A ring ended before it became a chat: tell the front-end.
    Tell,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum CallError {
    /// The id already names a live chat or ring here.
    InUse,
    /// No ring of that id waits for this device.
    UnknownRing,
}

impl<H: Clone, A> Default for Calls<H, A> {
    fn default() -> Self {
        Self {
            outgoing: HashMap::new(),
            early: HashMap::new(),
            early_ends: HashMap::new(),
            incoming: HashMap::new(),
            accepted: HashMap::new(),
            sessions: HashMap::new(),
            finished: VecDeque::new(),
        }
    }
}

impl<H: Clone, A> Calls<H, A> {
    /// The server answered our `ring` with its id. Returns an accept that came first, to check now.
    #[cfg(test)]
    pub(super) fn ringing(&mut self, ring_id: &str, callee: Username) -> Option<A> {
        self.ringing_as(ring_id, callee, false)
    }

    /// [`Calls::ringing`] for a ring made for a group (`group`) or not.
    pub(super) fn ringing_as(&mut self, ring_id: &str, callee: Username, group: bool) -> Option<A> {
        match self.early.remove(ring_id) {
            Some((accept, _)) => Some(accept),
            None => {
                self.outgoing.insert(ring_id.to_string(), (callee, group));
                None
            }
        }
    }

    /// Who we ring under `ring_id`, once the `ringing` answer named it.
    #[cfg(test)]
    pub(super) fn callee(&self, ring_id: &str) -> Option<&Username> {
        self.outgoing.get(ring_id).map(|(callee, _)| callee)
    }

    pub(super) fn ring_accepted(
        &mut self,
        ring_id: &str,
        accept: A,
        now: Instant,
    ) -> OnAccepted<A> {
        if let Some((callee, group)) = self.outgoing.remove(ring_id) {
            return OnAccepted::Check {
                callee,
                accept,
                group,
            };
        }
        self.early
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < EARLY_FOR);
        if self.early.len() < EARLY_KEPT && !self.in_use(ring_id) {
            self.early.insert(ring_id.to_string(), (accept, now));
        }
        OnAccepted::Held
    }

    /// Whether `ring_id` already names a chat or ring here (a server reusing it would replace a
    /// live chat, which ends it).
    pub(super) fn in_use(&self, ring_id: &str) -> bool {
        self.sessions.contains_key(ring_id)
            || self.incoming.contains_key(ring_id)
            || self.outgoing.contains_key(ring_id)
            || self.finished.iter().any(|id| id == ring_id)
    }

    /// A ring for this device, after the engine's own checks (blocked, changed key).
    pub(super) fn incoming_ring(
        &mut self,
        ring_id: &str,
        from: Username,
        ak: Key32,
    ) -> Result<(), CallError> {
        if self.in_use(ring_id) {
            return Err(CallError::InUse);
        }
        self.incoming.insert(ring_id.to_string(), (from, ak));
        Ok(())
    }

    /// The user took the ring here. Returns the caller.
    pub(super) fn accepted_here(&mut self, ring_id: &str) -> Result<Username, CallError> {
        self.accept(ring_id, false)
    }

    /// A group's link ring taken here (joining the group was the user's answer).
    pub(super) fn accepted_for_group(&mut self, ring_id: &str) -> Result<Username, CallError> {
        self.accept(ring_id, true)
    }

    fn accept(&mut self, ring_id: &str, group: bool) -> Result<Username, CallError> {
        let (from, _) = self.incoming.get(ring_id).ok_or(CallError::UnknownRing)?;
        self.accepted.insert(ring_id.to_string(), group);
        Ok(from.clone())
    }

    /// The user declined the ring here. Returns the caller.
    pub(super) fn declined_here(&mut self, ring_id: &str) -> Result<Username, CallError> {
        self.accepted.remove(ring_id);
        let (from, _) = self
            .incoming
            .remove(ring_id)
            .ok_or(CallError::UnknownRing)?;
        Ok(from)
    }

    pub(super) fn connected(&mut self, ring_id: &str) -> OnConnected {
        let Some(group) = self.accepted.remove(ring_id) else {
            return OnConnected::NotAnswered;
        };
        match self.incoming.remove(ring_id) {
            Some((caller, ak)) => OnConnected::Check { caller, ak, group },
            None => OnConnected::NotAnswered,
        }
    }

    /// A session started for the ring; never replaces a live chat (dropping its handle would end it).
    pub(super) fn start(&mut self, ring_id: &str, handle: H) -> Result<(), CallError> {
        if self.sessions.contains_key(ring_id) {
            return Err(CallError::InUse);
        }
        self.sessions.insert(ring_id.to_string(), handle);
        Ok(())
    }

    /// A ring ended at the server. Told only for a ring this device rang or was rung with; the end
    /// of an id it does not know is held a moment (our ring's answer may still be on its way, see
    /// [`Calls::ended_before_ringing`]) and otherwise is no news to anyone.
    pub(super) fn ended(&mut self, ring_id: &str, reason: RingEnd, now: Instant) -> OnEnded<H> {
        let ours =
            self.outgoing.remove(ring_id).is_some() | self.incoming.remove(ring_id).is_some();
        self.early.remove(ring_id);
        self.accepted.remove(ring_id);
        if let Some(h) = self.sessions.get(ring_id) {
            return OnEnded::RouteClosed(h.clone());
        }
        if let Some(i) = self.finished.iter().position(|id| id == ring_id) {
            self.finished.remove(i);
            return OnEnded::Quiet;
        }
        if !ours {
            self.early_ends
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < EARLY_FOR);
            if self.early_ends.len() < EARLY_KEPT {
                self.early_ends.insert(ring_id.to_string(), (reason, now));
            }
            return OnEnded::Quiet;
        }
        OnEnded::Tell
    }

    /// Our ring's answer named an id whose end came first: the ring is over (tell it now).
    pub(super) fn ended_before_ringing(&mut self, ring_id: &str) -> Option<RingEnd> {
        let (reason, _) = self.early_ends.remove(ring_id)?;
        // An accept held for it started a session meanwhile: that chat is what counts.
        if self.sessions.contains_key(ring_id) {
            return None;
        }
        self.outgoing.remove(ring_id);
        Some(reason)
    }

    /// The session under `ring_id` ended (its driver says so once it has wiped).
    pub(super) fn over(&mut self, ring_id: &str) {
        if self.sessions.remove(ring_id).is_none() {
            return;
        }
        if self.finished.len() >= FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(ring_id.to_string());
    }

    /// Panic or lock: every ring not yet a chat is forgotten (sessions end through their drivers).
    pub(super) fn forget_rings(&mut self) {
        self.outgoing.clear();
        self.early.clear();
        self.early_ends.clear();
        self.incoming.clear();
        self.accepted.clear();
    }

    pub(super) fn session(&self, ring_id: &str) -> Option<&H> {
        self.sessions.get(ring_id)
    }

    pub(super) fn sessions(&self) -> impl Iterator<Item = (&String, &H)> {
        self.sessions.iter()
    }

    /// Rings waiting for this device's answer: `(ring id, caller)`. One answered here no longer
    /// waits (a front-end that reloads must not offer it again), though it stays until it connects.
    pub(super) fn waiting(&self) -> impl Iterator<Item = (&String, &Username)> {
        self.incoming
            .iter()
            .filter(|(id, _)| !self.accepted.contains_key(*id))
            .map(|(id, (from, _))| (id, from))
    }
}

#[cfg(test)]
mod tests;
