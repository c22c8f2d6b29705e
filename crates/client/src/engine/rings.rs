//! Rings on the engine: ringing someone, answering, and the server's ring events. The server is
//! not trusted here (P8): a session starts only for a ring this device rang or accepted, with a
//! certificate that verifies with the pinned account key, under an id no live chat uses.

use std::sync::Arc;
use std::time::Duration;

use anonchat_proto::signing::{one_time_key_bytes, verify};
use anonchat_proto::wire::{ClientMsg, ServerMsg, SignedOtk};
use anonchat_proto::{DeviceCert, Key32, Username};

use super::{lock, Engine, Inner};
use crate::events::Event;
use crate::session::{self, Role};
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
        self.refresh_ice(false).await?;
        let ServerMsg::Ringing { ring_id } = self
            .gated(
                &to,
                code,
                |pow| ClientMsg::Ring {
                    to: to.clone(),
                    code: code.map(str::to_string),
                    pow,
                },
                || {
                    // The answer may be followed at once by `ring_accepted`: record the ring before
                    // that is read.
                    let me = Arc::downgrade(&self.inner);
                    let callee = to.clone();
                    Some(Box::new(move |msg: &ServerMsg| {
                        if let (ServerMsg::Ringing { ring_id }, Some(me)) = (msg, me.upgrade()) {
                            lock(&me.outgoing).insert(ring_id.clone(), callee);
                            let early = lock(&me.early_accepts).remove(ring_id);
                            if let Some((peer, otk, _)) = early {
                                me.on_ring_accepted(ring_id.clone(), peer, otk);
                            }
                        }
                    }))
                },
            )
            .await?
        else {
            return Err(ClientError::Refused("unexpected answer".into()));
        };
        self.inner.emit(Event::Ringing {
            ring_id: ring_id.clone(),
            to: to.to_string(),
        });
        Ok(ring_id)
    }

    pub async fn answer(&self, ring_id: &str, accept: bool) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let from = lock(&self.inner.incoming)
            .get(ring_id)
            .map(|(from, _)| from.clone())
            .ok_or(ClientError::UnknownRing)?;
        if accept {
            lock(&self.inner.accepted).insert(ring_id.to_string());
            self.refresh_ice(false).await?;
        } else {
            lock(&self.inner.incoming).remove(ring_id);
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
        if lock(&self.sessions).contains_key(&ring_id) {
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
        let handle = session::spawn(me, ring_id.clone(), peer, role);
        lock(&self.sessions).insert(ring_id, handle);
    }

    /// The caller side: check who answered against the pinned key, then open the session.
    pub(super) fn on_ring_accepted(&self, ring_id: String, peer: DeviceCert, otk: SignedOtk) {
        let Some(callee) = lock(&self.outgoing).remove(&ring_id) else {
            // Perhaps ahead of the answer to our own `ring`: keep it a moment (a few, briefly).
            let mut early = lock(&self.early_accepts);
            early.retain(|_, (_, _, at)| at.elapsed() < Duration::from_secs(5));
            if early.len() < 8 {
                early.insert(ring_id, (peer, otk, std::time::Instant::now()));
            }
            return;
        };
        let Some(ak) = self.pinned(&callee) else {
            return self.session_failed(&ring_id, "no pinned key for this contact");
        };
        if peer.username != callee || peer.verify(&ak).is_err() {
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
        if !lock(&self.accepted).remove(&ring_id) {
            return self.emit(Event::Warning {
                message: "ignored a connect for a ring this device has not answered".into(),
            });
        }
        let Some((caller, ak)) = lock(&self.incoming).remove(&ring_id) else {
            return;
        };
        if self.pin(&caller, ak).is_err() {
            return self.session_failed(&ring_id, "the caller's account key changed");
        }
        if peer.username != caller || peer.verify(&ak).is_err() {
            return self.session_failed(
                &ring_id,
                "the caller's certificate does not verify with the pinned account key",
            );
        }
        self.start_session(ring_id, peer, Role::Callee);
    }

    /// Whether `ring_id` already names a chat or ring here (a server reusing it would replace a
    /// live chat, which ends it).
    pub(super) fn ring_id_in_use(&self, ring_id: &str) -> bool {
        lock(&self.sessions).contains_key(ring_id)
            || lock(&self.incoming).contains_key(ring_id)
            || lock(&self.outgoing).contains_key(ring_id)
            || lock(&self.finished).iter().any(|id| id == ring_id)
    }

    pub(super) fn on_incoming_ring(&self, ring_id: String, from: Username, ak: Key32) {
        if self.ring_id_in_use(&ring_id) {
            return self.emit(Event::Warning {
                message: "ignored a ring that reuses the id of a live chat or ring".into(),
            });
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
        lock(&self.incoming).insert(ring_id.clone(), (from.clone(), ak));
        self.emit(Event::IncomingRing {
            ring_id,
            from: from.to_string(),
        });
    }
}
