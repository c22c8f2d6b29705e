//! The signal exchange's rules, through the server's route: which signal may come when, and what
//! the driver does with the transport for it. During setup anything wrong fails the session (the
//! server, or someone in between, is tampering) — but a blob already taken, replayed or
//! duplicated by the server, is dropped at any stage; once open, a blob that does not decrypt is
//! dropped too, so the server cannot end a chat with one bad blob (Olm refuses replays).

use std::collections::VecDeque;

use anonchat_proto::frames::Signal;
use sha2::{Digest, Sha256};

use super::super::olm::unseal;
use super::{ChatCore, Effect};
use crate::error::SessionError;
use crate::events::Event;
use crate::transport::Candidate;
use crate::ClientError;

/// Why a relayed signal was not applied: it did not decrypt (not from the peer: the server's or a
/// replay), or the peer sent something it should not.
#[derive(Debug, thiserror::Error)]
pub(in crate::session) enum SignalError {
    #[error("{0}")]
    Undecryptable(ClientError),
    #[error(transparent)]
    Peer(#[from] ClientError),
}

/// Relayed blobs already taken (their hashes, the last [`Replays::KEPT`]).
#[derive(Default)]
pub(in crate::session) struct Replays(VecDeque<[u8; 32]>);

impl Replays {
    const KEPT: usize = 64;

    /// Whether `blob` was taken before; records it if not.
    fn seen(&mut self, blob: &[u8]) -> bool {
        let h: [u8; 32] = Sha256::digest(blob).into();
        if self.0.contains(&h) {
            return true;
        }
        if self.0.len() == Self::KEPT {
            self.0.pop_front();
        }
        self.0.push_back(h);
        false
    }
}

/// What the driver does with the transport for a signal.
#[derive(Debug)]
pub(in crate::session) enum Step {
    /// Nothing for the transport; only these effects.
    Done(Vec<Effect>),
    /// Callee: make the transport from the caller's offer, and answer.
    Answer {
        sdp: String,
    },
    AcceptAnswer {
        sdp: String,
    },
    AddCandidate(Candidate),
    /// Callee: apply the caller's ICE restart and answer it; `reconnecting`: tell the front-end
    /// (once per break).
    Restart {
        sdp: String,
        reconnecting: bool,
    },
    /// Caller: the callee's answer to our ICE restart.
    RestartAnswer {
        sdp: String,
    },
}

fn refused(why: &str) -> ClientError {
    ClientError::Session(SessionError::Crypto(why.into()))
}

impl ChatCore {
    /// A blob from the route the session took already (the server replayed or duplicated it):
    /// dropped with a warning, at any stage. Checked before anything else is done with it.
    pub(in crate::session) fn replayed(&mut self, blob: &[u8]) -> Option<Effect> {
        self.replays.seen(blob).then(|| {
            Effect::Emit(Event::Warning {
                message: "dropped a relayed message that was taken already (a replay)".into(),
            })
        })
    }

    /// A sealed signal from the route, once the Olm session exists (the callee's first blob, the
    /// pre-key offer, opens it: the driver does that with the account, then calls
    /// [`ChatCore::on_signal_plain`]).
    pub(in crate::session) fn on_relayed(&mut self, blob: &[u8]) -> Result<Step, SignalError> {
        let olm = self.olm.as_mut().ok_or_else(|| {
            SignalError::Undecryptable(refused("no secure session with the peer yet"))
        })?;
        match unseal(olm, blob) {
            Ok(plain) => Ok(self.on_signal_plain(&plain)?),
            Err(e) if self.live.is_open() => Ok(Step::Done(vec![Effect::Emit(Event::Warning {
                message: format!("dropped a relayed message that is not from the peer: {e}"),
            })])),
            Err(e) => Err(SignalError::Undecryptable(e)),
        }
    }

    /// A decrypted signal from the peer.
    pub(in crate::session) fn on_signal_plain(
        &mut self,
        plain: &[u8],
    ) -> Result<Step, ClientError> {
        Ok(match Signal::decode(plain)? {
            Signal::Offer { sdp, cert, .. } => {
                if self.offered {
                    return Err(refused("unexpected second offer"));
                }
                if cert != self.peer_cert {
                    return Err(refused(
                        "the caller's certificate does not match the one the server introduced",
                    ));
                }
                self.offered = true;
                Step::Answer { sdp }
            }
            Signal::Answer { sdp, .. } if self.offered => Step::AcceptAnswer { sdp },
            Signal::Answer { .. } => return Err(refused("answer before offer")),
            Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
            } if self.offered => Step::AddCandidate(Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
            }),
            Signal::Candidate { .. } => Step::Done(Vec::new()),
            Signal::Abort => return Err(refused("the peer aborted the session")),
            Signal::Restart { sdp } if self.offered && self.is_open() && !self.is_caller() => {
                Step::Restart {
                    sdp,
                    reconnecting: self.live.restart_offered(),
                }
            }
            Signal::Restart { .. } => return Err(refused("unexpected ICE restart")),
            Signal::RestartAnswer { sdp } if self.offered && self.is_caller() => {
                Step::RestartAnswer { sdp }
            }
            Signal::RestartAnswer { .. } => return Err(refused("unexpected ICE restart answer")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Replays;

    #[test]
    fn a_blob_taken_once_is_a_replay_after_and_the_book_is_bounded() {
        let mut r = Replays::default();
        assert!(!r.seen(b"offer"));
        assert!(r.seen(b"offer"), "the same bytes again");
        assert!(!r.seen(b"offer!"));
        for i in 0..Replays::KEPT as u16 {
            r.seen(&i.to_be_bytes());
        }
        assert_eq!(r.0.len(), Replays::KEPT);
        assert!(!r.seen(b"offer"), "only the last ones are kept");
    }
}
