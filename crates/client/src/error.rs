//! The engine's errors, one enum per domain: this device's profile and keys, the signaling link to
//! the server, and chats (sessions and rings). `ClientError` gathers them with the few that belong
//! to no one domain; `api::ApiError` gives each a stable code for front-ends.

use thiserror::Error;

/// This device's own keys and files.
#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("keychain: {0}")]
    Keychain(String),
    #[error("no identity in this profile yet: register first")]
    NoIdentity,
    #[error("this profile already has an identity ({0})")]
    AlreadyRegistered(String),
    #[error("profile storage: {0}")]
    Storage(String),
}

/// The link to the server, and what the server answered.
#[derive(Debug, Error)]
pub enum SignalingError {
    #[error("TLS: {0}")]
    Tls(String),
    #[error("server: {0}")]
    Http(String),
    #[error("the username is taken")]
    Taken,
    #[error("User not found or offline.")]
    NotFound,
    #[error("the server asks for proof of work first")]
    PowRequired,
    /// Past a budget of the server's (P9): worth trying again a little later.
    #[error("server: {0}")]
    RateLimited(String),
    /// The server said no, in its own words.
    #[error("server refused: {0}")]
    Refused(String),
    /// The server answered with something that is not an answer to what was asked.
    #[error("server refused: unexpected answer")]
    UnexpectedAnswer,
    #[error("not connected to the server")]
    NotConnected,
    #[error("the server's TLS key changed since this profile first connected: someone may be impersonating it. Nothing was sent. If its operator confirms the key was replaced, trust the new key")]
    ServerKeyChanged,
}

/// Chats and rings.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error("the chat is not open yet")]
    NotOpen,
    #[error("no such session")]
    UnknownSession,
    #[error("no such attachment (it may have expired or been opened)")]
    UnknownAttachment,
    #[error("no pending request or ring with that id")]
    UnknownRing,
    #[error("crypto: {0}")]
    Crypto(String),
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Signaling(#[from] SignalingError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Lock(#[from] crate::passcode::LockError),
    #[error("protocol: {0}")]
    Proto(#[from] anonchat_proto::ProtoError),
    #[error("the account key of {0} changed: verify the safety number before trusting it")]
    KeyChanged(String),
    /// An approval that does not match what the engine holds (P8).
    #[error(transparent)]
    Approval(#[from] crate::trust::Refusal),
    #[error("{0} is not a contact yet")]
    UnknownContact(String),
    #[error("{0}")]
    Camera(String),
    /// A rule of this engine refused the request (a limit, a malformed value).
    #[error("refused: {0}")]
    Refused(String),
}

impl From<crate::transport::TransportError> for ClientError {
    fn from(e: crate::transport::TransportError) -> Self {
        Self::Session(e.into())
    }
}
