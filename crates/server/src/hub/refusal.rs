//! Why the hub refused a request: one error type for every answer, turned into the wire's error
//! code and detail in one place.

use anonchat_proto::wire::ErrorCode;

use crate::ring::RingError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such account, device or route, or not one this device may reach: the same answer for
    /// all of them (P5), so no detail.
    #[error("not found")]
    NotFound,
    /// Something that was there is gone (a device went offline, ran out of keys): safe to say.
    #[error("gone: {0}")]
    Gone(String),
    #[error("rate limited")]
    RateLimited(Option<String>),
    #[error("proof of work required: {0}")]
    PowRequired(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::BadRequest(_) => ErrorCode::BadRequest,
            Refusal::NotFound | Refusal::Gone(_) => ErrorCode::NotFound,
            Refusal::RateLimited(_) => ErrorCode::RateLimited,
            Refusal::PowRequired(_) => ErrorCode::PowRequired,
            Refusal::Unauthorized(_) => ErrorCode::Unauthorized,
            Refusal::Store(_) => ErrorCode::Internal,
        }
    }

    /// What the client is told besides the code. A store failure is logged here and never
    /// described to the client.
    pub fn into_detail(self) -> Option<String> {
        match self {
            Refusal::BadRequest(d)
            | Refusal::Gone(d)
            | Refusal::PowRequired(d)
            | Refusal::Unauthorized(d) => Some(d),
            Refusal::RateLimited(d) => d,
            Refusal::NotFound => None,
            Refusal::Store(e) => {
                tracing::error!(error = %e, "store failure");
                None
            }
        }
    }
}

impl From<RingError> for Refusal {
    fn from(e: RingError) -> Self {
        match e {
            RingError::Busy => Refusal::RateLimited(Some(e.to_string())),
            _ => Refusal::BadRequest(e.to_string()),
        }
    }
}

/// A bad request with this detail.
pub fn bad(detail: impl Into<String>) -> Refusal {
    Refusal::BadRequest(detail.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_details() {
        assert_eq!(Refusal::NotFound.code(), ErrorCode::NotFound);
        assert_eq!(Refusal::NotFound.into_detail(), None);
        let gone = Refusal::Gone("device went offline".into());
        assert_eq!(gone.code(), ErrorCode::NotFound);
        assert_eq!(gone.into_detail().as_deref(), Some("device went offline"));
        assert_eq!(bad("x").code(), ErrorCode::BadRequest);
        assert_eq!(bad("x").into_detail().as_deref(), Some("x"));
        assert_eq!(Refusal::RateLimited(None).code(), ErrorCode::RateLimited);
        assert_eq!(
            Refusal::PowRequired("p".into()).code(),
            ErrorCode::PowRequired
        );
        assert_eq!(
            Refusal::Unauthorized("u".into()).code(),
            ErrorCode::Unauthorized
        );
        let busy = Refusal::from(RingError::Busy);
        assert_eq!(busy.code(), ErrorCode::RateLimited);
        assert!(busy.into_detail().is_some());
        let store = Refusal::from(StoreError::Corrupt);
        assert_eq!(store.code(), ErrorCode::Internal);
        assert_eq!(
            store.into_detail(),
            None,
            "a store failure is not described"
        );
    }
}
