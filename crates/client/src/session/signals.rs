//! The signal exchange through the server's route: the Olm session, SDP, candidates, ICE restarts.
//! During setup anything wrong here fails the session; once open, undecryptable blobs are dropped.

use anonchat_proto::frames::Signal;
use anonchat_proto::Key32;
use tokio::sync::mpsc;
use vodozemac::olm::OlmMessage;
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use super::{parse_olm, seal, unseal, Chat};
use crate::error::{ProfileError, SessionError};
use crate::events::Event;
use crate::transport::{Candidate, Transport, TransportEvent};
use crate::ClientError;

/// Why a relayed signal was not applied: it did not decrypt (not from the peer: the server's or a
/// replay), or the peer sent something it should not.
#[derive(Debug, thiserror::Error)]
pub(super) enum SignalError {
    #[error("{0}")]
    Undecryptable(ClientError),
    #[error(transparent)]
    Peer(#[from] ClientError),
}

impl Chat {
    pub(super) fn signal(&mut self, s: &Signal) {
        let Some(olm) = self.olm.as_mut() else { return };
        match seal(olm, &s.encode()) {
            Ok(blob) => self.host.relay(&self.id, blob),
            Err(e) => self.host.emit(Event::Warning {
                message: format!("could not encrypt a signal: {e}"),
            }),
        }
    }

    pub(super) async fn start_caller(
        &mut self,
        otk: Key32,
        ev_tx: &mpsc::Sender<TransportEvent>,
    ) -> Result<(), ClientError> {
        let olm = self.host.outbound_session(
            Curve25519PublicKey::from_bytes(self.peer_cert.dk_curve25519.0),
            Curve25519PublicKey::from_bytes(otk.0),
        )?;
        self.olm = Some(olm);
        let (transport, sdp) = Transport::offer(&self.host.ice(), ev_tx.clone()).await?;
        self.transport = Some(transport);
        let me = self
            .host
            .my_cert()
            .ok_or(ClientError::Profile(ProfileError::NoIdentity))?;
        self.signal(&Signal::Offer {
            sdp,
            caps: me.caps,
            cert: me,
        });
        Ok(())
    }

    pub(super) async fn on_signal(
        &mut self,
        blob: &[u8],
        ev_tx: &mpsc::Sender<TransportEvent>,
    ) -> Result<(), SignalError> {
        let plain = match self.olm.as_mut() {
            Some(olm) => unseal(olm, blob).map_err(SignalError::Undecryptable)?,
            None => self.open_inbound(blob)?,
        };
        Ok(self.on_signal_plain(&plain, ev_tx).await?)
    }

    /// The callee's first message: the caller's pre-key offer opens the Olm session.
    pub(super) fn open_inbound(&mut self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let OlmMessage::PreKey(pre) = parse_olm(blob)? else {
            return Err(ClientError::Session(SessionError::Crypto(
                "expected a pre-key message".into(),
            )));
        };
        let identity = Curve25519PublicKey::from_bytes(self.peer_cert.dk_curve25519.0);
        let (olm, plain) = self.host.inbound_session(identity, &pre)?;
        self.olm = Some(olm);
        Ok(plain)
    }

    pub(super) async fn on_signal_plain(
        &mut self,
        plain: &[u8],
        ev_tx: &mpsc::Sender<TransportEvent>,
    ) -> Result<(), ClientError> {
        match Signal::decode(plain)? {
            Signal::Offer { sdp, cert, .. } => {
                if self.transport.is_some() {
                    return Err(ClientError::Session(SessionError::Crypto(
                        "unexpected second offer".into(),
                    )));
                }
                if cert != self.peer_cert {
                    return Err(ClientError::Session(SessionError::Crypto(
                        "the caller's certificate does not match the one the server introduced"
                            .into(),
                    )));
                }
                let (transport, sdp) =
                    Transport::answer(&self.host.ice(), sdp, ev_tx.clone()).await?;
                self.transport = Some(transport);
                let caps = self
                    .host
                    .my_cert()
                    .ok_or(ClientError::Profile(ProfileError::NoIdentity))?
                    .caps;
                self.signal(&Signal::Answer { sdp, caps });
            }
            Signal::Answer { sdp, .. } => match &self.transport {
                Some(t) => t.accept_answer(sdp).await?,
                None => {
                    return Err(ClientError::Session(SessionError::Crypto(
                        "answer before offer".into(),
                    )))
                }
            },
            Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
            } => {
                if let Some(t) = &self.transport {
                    if let Err(e) = t
                        .add_candidate(Candidate {
                            candidate,
                            sdp_mid,
                            sdp_mline_index,
                        })
                        .await
                    {
                        self.host.emit(Event::Warning {
                            message: format!("ignored an ICE candidate: {e}"),
                        });
                    }
                }
            }
            Signal::Abort => {
                return Err(ClientError::Session(SessionError::Crypto(
                    "the peer aborted the session".into(),
                )))
            }
            Signal::Restart { sdp } => {
                let (Some(t), true, false) =
                    (&self.transport, self.live.is_open(), self.live.is_caller())
                else {
                    return Err(ClientError::Session(SessionError::Crypto(
                        "unexpected ICE restart".into(),
                    )));
                };
                // A restart that cannot be applied is not fatal: the chat may still recover, or
                // it ends when the window runs out.
                match t.accept_restart(sdp).await {
                    Ok(answer) => self.signal(&Signal::RestartAnswer { sdp: answer }),
                    Err(e) => self.host.emit(Event::Warning {
                        message: format!("could not apply an ICE restart: {e}"),
                    }),
                }
                if self.live.restart_offered() {
                    self.host.emit(Event::SessionReconnecting {
                        session: self.id.clone(),
                    });
                }
            }
            Signal::RestartAnswer { sdp } => {
                let (Some(t), true) = (&self.transport, self.live.is_caller()) else {
                    return Err(ClientError::Session(SessionError::Crypto(
                        "unexpected ICE restart answer".into(),
                    )));
                };
                if let Err(e) = t.accept_answer(sdp).await {
                    self.host.emit(Event::Warning {
                        message: format!("could not apply an ICE restart answer: {e}"),
                    });
                }
            }
        }
        Ok(())
    }
}
