//! The transport side of the signal exchange: what the driver does for each [`Step`] the machine
//! decides (its rules: `core/signals.rs`), and the caller's first move.

use anonchat_proto::frames::Signal;
use anonchat_proto::Key32;
use vodozemac::olm::OlmMessage;
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use super::core::{Effect, Exit, SignalError, Step};
use super::{parse_olm, Chat};
use crate::error::{ProfileError, SessionError};
use crate::events::Event;
use crate::transport::Transport;
use crate::ClientError;

impl Chat {
    /// The caller's Olm session, transport and offer.
    pub(super) async fn start_caller(&mut self, otk: Key32) -> Result<(), ClientError> {
        let olm = self.host.outbound_session(
            Curve25519PublicKey::from_bytes(self.core.peer_cert().dk_curve25519.0),
            Curve25519PublicKey::from_bytes(otk.0),
        )?;
        self.core.set_olm(olm);
        let (transport, sdp) =
            Transport::offer(&self.host.ice(), self.transport_events.clone()).await?;
        self.transport = Some(transport);
        self.core.offer_made();
        let me = self
            .host
            .my_cert()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        let fx = self.core.signal(&Signal::Offer {
            sdp,
            caps: me.caps,
            cert: me,
        });
        self.apply(fx).await;
        Ok(())
    }

    /// A blob from the route; `Some` when it ends the session.
    pub(super) async fn on_relayed(&mut self, blob: &[u8]) -> Option<Exit> {
        if let Some(warn) = self.core.replayed(blob) {
            return self.apply(vec![warn]).await;
        }
        let step = if self.core.has_olm() {
            self.core.on_relayed(blob)
        } else {
            self.open_inbound(blob)
                .and_then(|plain| self.core.on_signal_plain(&plain))
                .map_err(SignalError::Peer)
        };
        let fx = match step {
            Ok(step) => self.run_step(step).await,
            Err(e) => return Some(Exit::Failed(e.to_string())),
        };
        match fx {
            Ok(fx) => self.apply(fx).await,
            Err(e) => Some(Exit::Failed(e.to_string())),
        }
    }

    /// The callee's first message: the caller's pre-key offer opens the Olm session.
    fn open_inbound(&mut self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let OlmMessage::PreKey(pre) = parse_olm(blob)? else {
            return Err(ClientError::Session(SessionError::Crypto(
                "expected a pre-key message".into(),
            )));
        };
        let identity = Curve25519PublicKey::from_bytes(self.core.peer_cert().dk_curve25519.0);
        let (olm, plain) = self.host.inbound_session(identity, &pre)?;
        self.core.set_olm(olm);
        Ok(plain)
    }

    /// The transport work for one step; an error fails the session.
    async fn run_step(&mut self, step: Step) -> Result<Vec<Effect>, ClientError> {
        let warn = |message: String| vec![Effect::Emit(Event::Warning { message })];
        Ok(match step {
            Step::Done(fx) => fx,
            Step::Answer { sdp } => {
                let (transport, sdp) =
                    Transport::answer(&self.host.ice(), sdp, self.transport_events.clone()).await?;
                self.transport = Some(transport);
                let caps = self
                    .host
                    .my_cert()
                    .ok_or(ClientError::Profile(ProfileError::NoIdentity))?
                    .caps;
                self.core.signal(&Signal::Answer { sdp, caps })
            }
            Step::AcceptAnswer { sdp } => {
                if let Some(t) = &self.transport {
                    t.accept_answer(sdp).await?;
                }
                Vec::new()
            }
            Step::AddCandidate(c) => match &self.transport {
                Some(t) => match t.add_candidate(c).await {
                    Ok(()) => Vec::new(),
                    Err(e) => warn(format!("ignored an ICE candidate: {e}")),
                },
                None => Vec::new(),
            },
            Step::Restart { sdp, reconnecting } => {
                // A restart that cannot be applied is not fatal: the chat may still recover, or
                // it ends when the window runs out.
                let mut fx = match &self.transport {
                    Some(t) => match t.accept_restart(sdp).await {
                        Ok(answer) => self.core.signal(&Signal::RestartAnswer { sdp: answer }),
                        Err(e) => warn(format!("could not apply an ICE restart: {e}")),
                    },
                    None => Vec::new(),
                };
                if reconnecting {
                    fx.push(Effect::Emit(Event::SessionReconnecting {
                        session: self.core.id.clone(),
                    }));
                }
                fx
            }
            Step::RestartAnswer { sdp } => match &self.transport {
                Some(t) => match t.accept_answer(sdp).await {
                    Ok(()) => Vec::new(),
                    Err(e) => warn(format!("could not apply an ICE restart answer: {e}")),
                },
                None => Vec::new(),
            },
        })
    }
}
