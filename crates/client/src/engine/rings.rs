//! Rings on the engine: ringing someone, answering, and the server's ring events. The server is
//! not trusted here (P8): a session starts only for a ring this device rang or accepted, with a
//! certificate that verifies with the pinned account key, under an id no live chat uses.

use std::sync::Arc;

use anonchat_proto::signing::{one_time_key_bytes, verify};
use anonchat_proto::wire::{ClientMsg, ServerMsg, SignedOtk};
use anonchat_proto::{DeviceCert, Key32, Username};

use super::calls::{OnAccepted, OnConnected};
use super::groups::RingTag;
use super::{lock, Engine, Inner};
use crate::error::{SessionError, SignalingError};
use crate::events::Event;
use crate::session::{self, Role};
use crate::trust::{Flow, Verdict};
use crate::ClientError;

impl Engine {
    /// Rings every online device of `username` (with its code where its mode needs one). Returns the
    /// ring id, which becomes the session id.
    pub async fn ring(&self, username: &str, code: Option<&str>) -> Result<String, ClientError> {
        self.inner.unlocked()?;
        let to = Username::parse(username)?;
        if self.inner.pinned(&to).is_none() {
            let (ak_pub, _) = self.lookup(&to, code).await?;
            self.inner.pin(&to, ak_pub)?;
        }
        self.ring_to(&to, code, None).await
    }

    /// Rings `to`; `group`: a group's invite or a ring between its members, recorded with the
    /// ring's id before any answer to it can be read.
    pub(super) async fn ring_to(
        &self,
        to: &Username,
        code: Option<&str>,
        group: Option<RingTag>,
    ) -> Result<String, ClientError> {
        self.refresh_ice(false).await?;
        let (token, invite) = match &group {
            Some(RingTag::Link { token, .. }) => (Some(*token), false),
            Some(RingTag::Invite { .. }) => (None, true),
            None => (None, false),
        };
        let ServerMsg::Ringing { ring_id } = self
            .gated(
                to,
                code,
                |pow| ClientMsg::Ring {
                    to: to.clone(),
                    code: code.map(str::to_string),
                    pow,
                    group: token,
                    invite,
                },
                || {
                    // The answer may be followed at once by `ring_accepted`: record the ring before
                    // that is read.
                    let me = Arc::downgrade(&self.inner);
                    let callee = to.clone();
                    let tag = group.clone();
                    Some(Box::new(move |msg: &ServerMsg| {
                        if let (ServerMsg::Ringing { ring_id }, Some(me)) = (msg, me.upgrade()) {
                            if let Some(tag) = tag.clone() {
                                lock(&me.groups).ring_started(ring_id, tag);
                            }
                            let grouped = tag.is_some();
                            let early =
                                lock(&me.calls).ringing_as(ring_id, callee.clone(), grouped);
                            if let Some((peer, otk)) = early {
                                me.accept_outgoing(ring_id.clone(), &callee, peer, otk, grouped);
                            }
                            let over = lock(&me.calls).ended_before_ringing(ring_id);
                            if let Some(reason) = over {
                                me.group_ring_ended(ring_id);
                                me.emit(Event::RingEnded {
                                    ring_id: ring_id.clone(),
                                    reason,
                                });
                            }
                        }
                    }))
                },
            )
            .await?
        else {
            return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
        };
        self.inner.emit(Event::Ringing {
            ring_id: ring_id.clone(),
            to: to.to_string(),
        });
        Ok(ring_id)
    }

    pub async fn answer(&self, ring_id: &str, accept: bool) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        if accept {
            lock(&self.inner.calls)
                .accepted_here(ring_id)
                .map_err(|_| ClientError::Session(SessionError::UnknownRing))?;
            self.refresh_ice(false).await?;
        } else {
            let from = lock(&self.inner.calls)
                .declined_here(ring_id)
                .map_err(|_| ClientError::Session(SessionError::UnknownRing))?;
            self.inner.refused(&from);
        }
        self.inner
            .signaling
            .request(ClientMsg::Answer {
                ring_id: ring_id.to_string(),
                accept,
            })
            .await?;
        Ok(())
    }
}

impl Inner {
    pub(super) fn session_failed(&self, ring_id: &str, reason: &str) {
        self.signaling_hangup(ring_id);
        self.emit(Event::SessionFailed {
            session: ring_id.to_string(),
            reason: reason.to_string(),
        });
    }

    pub(super) fn signaling_hangup(&self, ring_id: &str) {
        let _ = self.signaling.send(ClientMsg::Hangup {
            ring_id: ring_id.to_string(),
        });
    }

    pub(super) fn start_session(&self, ring_id: String, peer: DeviceCert, role: Role) {
        let Some(me) = self.me.upgrade() else { return };
        // Under the lock from check to insert: a session that ends at once cannot report itself
        // over before it is recorded.
        let mut calls = lock(&self.calls);
        if calls.session(&ring_id).is_some() {
            drop(calls);
            // Never replace a live chat (dropping its handle would end it); no hangup either, that
            // would name the live chat's route.
            return self.emit(Event::Warning {
                message: "ignored a second session under the id of a live chat".into(),
            });
        }
        self.emit(Event::Connecting {
            session: ring_id.clone(),
            peer: peer.username.to_string(),
        });
        lock(&self.groups).session_starting(&ring_id, &peer);
        let handle = session::spawn(me, ring_id.clone(), peer, role);
        let _ = calls.start(&ring_id, handle);
    }

    /// The caller side: a `ring_accepted` for one of our rings (or held until our ring's answer).
    pub(super) fn on_ring_accepted(&self, ring_id: String, peer: DeviceCert, otk: SignedOtk) {
        let now = std::time::Instant::now();
        let verdict = lock(&self.calls).ring_accepted(&ring_id, (peer, otk), now);
        if let OnAccepted::Check {
            callee,
            accept: (peer, otk),
            group,
        } = verdict
        {
            self.accept_outgoing(ring_id, &callee, peer, otk, group);
        }
    }

    /// Checks who answered against the pinned key, then opens the session. `group`: rung for a
    /// group, so it becomes that group's link or invite, or nothing.
    pub(super) fn accept_outgoing(
        &self,
        ring_id: String,
        callee: &Username,
        peer: DeviceCert,
        otk: SignedOtk,
        group: bool,
    ) {
        let link = lock(&self.groups).link_member(&ring_id);
        if group && link.is_none() && !lock(&self.groups).is_invite(&ring_id) {
            // Rung for a group that let go of the ring since (left, ended, the member gone): an
            // answer the server held back until then opens no chat the user never rang.
            return self.session_failed(&ring_id, "the group this ring was for let go of it");
        }
        if let Some(member) = link {
            // A group's member: exactly the device the admin's roster names, pinned or not, and
            // still one this user's own trust lets through.
            if member.username() != callee || !self.member_vouched(&member) {
                return self.session_failed(&ring_id, "this group link is not vouched for");
            }
            if peer != member.device {
                return self.session_failed(
                    &ring_id,
                    "the answering device is not the one the group's roster names",
                );
            }
        } else if !self
            .pinned(callee)
            .is_some_and(|ak| peer.username == *callee && peer.verify(&ak).is_ok())
        {
            return self.session_failed(
                &ring_id,
                "the answering device's certificate does not verify with the pinned account key",
            );
        }
        if verify(
            &peer.dk_ed25519,
            &one_time_key_bytes(&peer.device_id, &otk.key),
            &otk.sig,
        )
        .is_err()
        {
            return self.session_failed(
                &ring_id,
                "the one-time key is not signed by the answering device",
            );
        }
        self.start_session(ring_id, peer, Role::Caller { otk: otk.key });
    }

    /// The callee side: only a ring this device accepted connects (a server that says "connected"
    /// for a ring nobody answered gets nothing), and the caller's certificate must verify with the
    /// key of the ring.
    pub(super) fn on_ring_connected(&self, ring_id: String, peer: DeviceCert) {
        let verdict = lock(&self.calls).connected(&ring_id);
        let OnConnected::Check { caller, ak, group } = verdict else {
            return self.emit(Event::Warning {
                message: "ignored a connect for a ring this device has not answered".into(),
            });
        };
        let link = lock(&self.groups).link_member(&ring_id);
        if group && link.is_none() {
            // Answered for a group link the group no longer wants (left, removed, the member
            // gone): a connect the server held back until then opens nothing.
            return self.session_failed(&ring_id, "the group link this ring was for is gone");
        }
        if let Some(member) = link {
            // A member who is not a friend: not pinned; the roster names its device exactly.
            if member.username() != &caller || !self.member_vouched(&member) {
                return self.session_failed(&ring_id, "this group link is not vouched for");
            }
            if peer != member.device {
                return self.session_failed(
                    &ring_id,
                    "the calling device is not the one the group's roster names",
                );
            }
            return self.start_session(ring_id, peer, Role::Callee);
        }
        // Judged again now, not only when it rang: a block or a key change since then holds.
        match self.vouch(&caller, ak, Flow::Contact) {
            Verdict::Pinned | Verdict::FirstUse => {}
            Verdict::Blocked => return self.session_failed(&ring_id, "you blocked the caller"),
            Verdict::Changed { .. } | Verdict::Pending => {
                return self.session_failed(&ring_id, "the caller's account key changed")
            }
        }
        if peer.username != caller || peer.verify(&ak).is_err() {
            return self.session_failed(
                &ring_id,
                "the caller's certificate does not verify with the pinned account key",
            );
        }
        self.start_session(ring_id, peer, Role::Callee);
    }

    pub(super) fn on_incoming_ring(
        &self,
        ring_id: String,
        from: Username,
        ak: Key32,
        group: Option<Key32>,
        invite: bool,
    ) {
        if lock(&self.calls).in_use(&ring_id) {
            return self.emit(Event::Warning {
                message: "ignored a ring that reuses the id of a live chat or ring".into(),
            });
        }
        if let Some(token) = group {
            return self.on_group_ring(ring_id, from, ak, token);
        }
        if self.is_blocked(&from) {
            // Declined without a word to the user; the caller sees an ordinary decline.
            let _ = self.signaling.send(ClientMsg::Answer {
                ring_id,
                accept: false,
            });
            return;
        }
        if self.pinned(&from).is_some_and(|k| k != ak) {
            // Loud and blocking: no ring from a changed key until the user trusts it.
            let _ = self.pin(&from, ak);
            let _ = self.signaling.send(ClientMsg::Answer {
                ring_id,
                accept: false,
            });
            return;
        }
        if lock(&self.calls)
            .incoming_ring(&ring_id, from.clone(), ak)
            .is_err()
        {
            return;
        }
        if invite {
            lock(&self.groups).invited(&ring_id);
        }
        self.emit(Event::IncomingRing {
            ring_id,
            from: from.to_string(),
            invite,
        });
    }
}
