//! Chats on the engine: what a front-end asks of an open session (send, typing, history, ping,
//! leave). Each goes to the session's own task, which alone holds the chat.

use std::time::Duration;

use anonchat_proto::frames::SecretText;
use tokio::sync::oneshot;

use super::{lock, Engine};
use crate::error::SessionError;
use crate::session::{Cmd, Line, Sent, SessionHandle};
use crate::ClientError;

impl Engine {
    pub(super) fn session(&self, id: &str) -> Result<SessionHandle, ClientError> {
        lock(&self.inner.calls)
            .session(id)
            .cloned()
            .ok_or(ClientError::Session(SessionError::UnknownSession))
    }

    /// Sends a text; returns its id (receipts name it) and when it is wiped.
    pub async fn send_text(&self, session: &str, text: SecretText) -> Result<Sent, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(Cmd::SendText(text, tx))
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))?;
        rx.await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))?
    }

    pub async fn typing(&self, session: &str) -> Result<(), ClientError> {
        let s = self.session(session)?;
        s.tx.send(Cmd::Typing)
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))
    }

    /// The chat so far, from RAM.
    pub async fn history(&self, session: &str) -> Result<Vec<Line>, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(Cmd::History(tx))
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))?;
        rx.await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))
    }

    /// One end-to-end encrypted round trip to the peer of `session`.
    pub async fn ping(&self, session: &str) -> Result<Duration, ClientError> {
        let s = self.session(session)?;
        let (tx, rx) = oneshot::channel();
        s.tx.send(Cmd::Ping(tx))
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))?;
        rx.await
            .map_err(|_| ClientError::Session(SessionError::NotOpen))
    }

    pub async fn leave(&self, session: &str) -> Result<(), ClientError> {
        let s = self.session(session)?;
        s.tx.send(Cmd::Leave)
            .await
            .map_err(|_| ClientError::Session(SessionError::UnknownSession))
    }

    /// Open sessions: `(session id, peer)`.
    pub fn sessions(&self) -> Vec<(String, String)> {
        lock(&self.inner.calls)
            .sessions()
            .map(|(id, h)| (id.clone(), h.peer.to_string()))
            .collect()
    }
}
