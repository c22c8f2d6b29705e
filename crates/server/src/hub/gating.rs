//! The gated requests (DESIGN §5: lookup, ring, friend request): the failure backoff, the token
//! buckets and the proof of work a request owes in front, then one gate that does the same work on
//! every path and answers every refusal with the same `not_found`, held to the timing floor.

use anonchat_proto::fvc::{self, CodeFormat, Fvc};
use anonchat_proto::wire::{ClientMsg, PresenceMode};
use anonchat_proto::{Key32, Username};

use super::{bad, Hub, Refusal, Reply, Session};
use crate::clock::Now;
use crate::gate::{decide, Facts, Verdict};

impl Hub {
    /// The gate of DESIGN §5. The same work on every path — one query for the account and the
    /// friendship, one code check (against a throwaway seed when there is no account) — and every
    /// refusal is the same `not_found`. Returns the target's key and whether it is online.
    pub(super) async fn gate(
        &self,
        me: &Username,
        target: &Username,
        code: Option<&str>,
        now: Now,
    ) -> Result<Reach, Refusal> {
        // The account and the friendship in one query, beside presence: on PostgreSQL and Redis
        // each is a network round trip, and on SQLite each query is hops to its worker thread.
        let (facts, (online, recent)) = tokio::join!(
            self.store.gate_facts(me, target),
            self.presence_anywhere(target, now)
        );
        let (account, friends) = facts?;
        let (ak, salt, format) = match &account {
            Some(a) => (a.ak_pub, a.fvc_salt.as_slice(), a.format),
            None => (Key32([0; 32]), &[][..], CodeFormat::default()),
        };
        // Without a code there is nothing to check: the cheap path stays cheap on every branch (P9).
        // With one, the request has already paid a proof-of-work stamp, which costs the sender far
        // more than the one Argon2 verification run on every path (a throwaway hash without a
        // static code) costs us.
        let stored = account.as_ref().and_then(|a| a.static_code_hash.clone());
        let code_ok = match code {
            None => false,
            Some(given) => {
                let totp_ok =
                    Fvc::new(&*fvc::seed(&*self.secret, &ak, salt), format).check(given, now.unix);
                let (given_owned, stored_for_check) = (given.to_string(), stored.clone());
                let static_ok = tokio::task::spawn_blocking(move || {
                    crate::static_code::check(&given_owned, stored_for_check.as_deref())
                })
                .await
                .unwrap_or(false);
                if stored.is_some() {
                    static_ok
                } else {
                    totp_ok
                }
            }
        };
        let presence = account.as_ref().map(|a| a.presence).unwrap_or_default();
        let facts = Facts {
            exists: account.is_some(),
            is_self: target == me,
            mode: account.as_ref().map(|a| a.mode).unwrap_or_default(),
            always_require_code: account.as_ref().is_some_and(|a| a.always_require_code),
            friends,
            // "Appear offline" is offline to strangers; friends can still ring. "Recently active"
            // holds for strangers too: they find the account for 15 minutes after it left, as if
            // it were online (a ring then waits, a request is kept), so found/not found does not
            // tell them the exact moment.
            online: match presence {
                PresenceMode::Exact => online,
                PresenceMode::Recent => recent,
                PresenceMode::Hidden => online && friends,
            },
            code_ok,
        };
        match decide(&facts) {
            Verdict::Reachable { online } => Ok(Reach {
                ak,
                online,
                friends,
                presence,
            }),
            Verdict::NotFound => Err(Refusal::NotFound),
        }
    }

    /// Like `gate`, for what needs the target online now (ring, friend request).
    pub(super) async fn gate_online(
        &self,
        me: &Username,
        target: &Username,
        code: Option<&str>,
        now: Now,
    ) -> Result<Key32, Refusal> {
        match self.gate(me, target, code, now).await? {
            Reach {
                ak, online: true, ..
            } => Ok(ak),
            _ => Err(Refusal::NotFound),
        }
    }

    /// Answers one request. `now`: when its frame came off the socket, before it was parsed —
    /// the time every answer is computed at, and a gated answer is held until `gate_floor` after it.
    pub async fn handle(&self, s: &Session, msg: ClientMsg, now: Now) -> Reply {
        if !is_gated(&msg) {
            return self.answer(s, msg, now).await;
        }
        // The same work is done on every path, but the database and the CPU still take a few
        // microseconds more for some (and a longer request takes longer to parse); holding every
        // answer to the same floor from the frame's arrival hides what is left.
        let floor = now.at + self.gate_floor;
        let reply = self.answer(s, msg, now).await;
        // Released at that instant by the hold's own thread, whenever the answer was ready and
        // however busy the runtime is (hold.rs).
        crate::hold::until(floor).await;
        reply
    }

    async fn answer(&self, s: &Session, msg: ClientMsg, now: Now) -> Reply {
        if let Some((target, code, pow)) = gated_parts(&msg) {
            let owed = self.demand(s).await;
            // Held back by the backoff first, so waiting it out does not also drain the buckets.
            if let Some(t) = owed.not_before.filter(|t| *t > now.at) {
                let secs = t.duration_since(now.at).as_secs_f64().ceil() as u64;
                return Err(Refusal::RateLimited(Some(format!(
                    "too many unanswered requests; wait {secs} s"
                ))));
            }
            if !self.allow(s).await {
                return Err(Refusal::RateLimited(Some(
                    "too many requests; try again in a minute".into(),
                )));
            }
            self.pay(s, target, code.is_some() || owed.pow, pow, now)
                .await?;
            let reply = self.answer_inner(s, msg, now).await;
            if matches!(&reply, Err(Refusal::NotFound)) {
                self.record_failure(s, now).await;
            }
            return reply;
        }
        self.answer_inner(s, msg, now).await
    }

    /// The proof of work a gated request owes (DESIGN §5): a stamp always with a code (first
    /// contact with a STRICT account, without saying which accounts are STRICT), and after repeated
    /// `not_found` answers.
    async fn pay(
        &self,
        s: &Session,
        target: &Username,
        owed: bool,
        pow: Option<&anonchat_proto::pow::Stamp>,
        now: Now,
    ) -> Result<(), Refusal> {
        if !owed {
            return Ok(());
        }
        let bits = self.contact_pow_bits;
        let required = || Refusal::PowRequired(format!("proof of work of {bits} bits required"));
        let stamp = pow.ok_or_else(required)?;
        let resource = anonchat_proto::pow::contact_resource(&s.username, target);
        stamp
            .check(&resource, bits, now.unix)
            .map_err(|_| required())?;
        if !self.spend_stamp(stamp.id(&resource), now).await {
            return Err(bad("proof of work already spent"));
        }
        Ok(())
    }
}

/// What the gate found: the target's key, whether it is online (as the requester may see it), and
/// whether the two are friends.
pub(super) struct Reach {
    pub ak: Key32,
    pub online: bool,
    pub friends: bool,
    pub presence: PresenceMode,
}

/// Requests that reveal something about another account: rate-limited, gated, held to the floor.
pub fn is_gated(msg: &ClientMsg) -> bool {
    gated_parts(msg).is_some()
}

type GatedParts<'a> = (
    &'a Username,
    Option<&'a String>,
    Option<&'a anonchat_proto::pow::Stamp>,
);

/// A gated request's target, code and stamp.
fn gated_parts(msg: &ClientMsg) -> Option<GatedParts<'_>> {
    match msg {
        ClientMsg::Lookup {
            username: to,
            code,
            pow,
        }
        | ClientMsg::Ring { to, code, pow, .. }
        | ClientMsg::FriendRequest { to, code, pow, .. } => Some((to, code.as_ref(), pow.as_ref())),
        _ => None,
    }
}
