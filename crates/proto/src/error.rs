use thiserror::Error;

/// Everything that can be wrong with bytes that came from a wire.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("username must be 3-32 characters of a-z, 0-9, '.', '_' or '-'")]
    BadUsername,
    #[error("bad base64 in field")]
    BadBase64,
    #[error("expected {expected} bytes, got {got}")]
    BadLength { expected: usize, got: usize },
    #[error("signature does not verify")]
    BadSignature,
    #[error("not a valid public key")]
    BadKey,
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    #[error("message of {size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{count} {what} are over the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("proof of work is insufficient or stale")]
    BadProofOfWork,
    #[error("the server asks for {bits} bits of proof of work, more than the {max} a client pays (about 2^{max} hashes): refusing")]
    PowTooHard { bits: u8, max: u8 },
}
