//! Olm framing: a message as one kind byte and its body (protocol §7).

use vodozemac::olm::{OlmMessage, Session};
use zeroize::Zeroizing;

use crate::error::SessionError;
use crate::ClientError;

pub(crate) fn seal(olm: &mut Session, plain: &[u8]) -> Result<Vec<u8>, ClientError> {
    let msg = olm
        .encrypt(plain)
        .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))?;
    let (kind, body) = msg.to_parts();
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(kind as u8);
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn parse_olm(blob: &[u8]) -> Result<OlmMessage, ClientError> {
    let (&kind, body) = blob
        .split_first()
        .ok_or_else(|| ClientError::Session(SessionError::Crypto("empty message".into())))?;
    OlmMessage::from_parts(usize::from(kind), body)
        .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))
}

pub(super) fn unseal(olm: &mut Session, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let msg = parse_olm(blob)?;
    olm.decrypt(&msg)
        .map(Zeroizing::new)
        .map_err(|e| ClientError::Session(SessionError::Crypto(e.to_string())))
}
