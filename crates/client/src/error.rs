use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("keychain: {0}")]
    Keychain(String),
    #[error("no identity in this profile yet: register first")]
    NoIdentity,
    #[error("this profile already has an identity ({0})")]
    AlreadyRegistered(String),
    #[error("profile storage: {0}")]
    Profile(String),
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
    #[error("server refused: {0}")]
    Refused(String),
    #[error("not connected to the server")]
    NotConnected,
    #[error("protocol: {0}")]
    Proto(#[from] anonchat_proto::ProtoError),
    #[error("the account key of {0} changed: verify the safety number before trusting it")]
    KeyChanged(String),
    #[error("{0} is not a contact yet")]
    UnknownContact(String),
    #[error("the chat is not open yet")]
    NotOpen,
    #[error("no such session")]
    UnknownSession,
    #[error("no such attachment (it may have expired or been opened)")]
    UnknownAttachment,
    #[error("no pending request or ring with that id")]
    UnknownRing,
    #[error("{0}")]
    Camera(String),
    #[error("the server's TLS key changed since this profile first connected: someone may be impersonating it. Nothing was sent. If its operator confirms the key was replaced, trust the new key")]
    ServerKeyChanged,
    #[error(transparent)]
    Lock(#[from] crate::passcode::LockError),
    #[error("crypto: {0}")]
    Crypto(String),
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
}
