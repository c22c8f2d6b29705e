//! Fuzz harnesses, one per decoder that takes bytes from outside the process (DESIGN P9). Each
//! must never panic, and whatever decodes must encode and decode back to the same value (the model
//! is vodozemac's afl targets). The same functions run briefly inside `cargo test` (proptest, over
//! mutated valid inputs: `tests` below) and for long runs under `cargo afl` (`fuzz/`).

use crate::enroll::{Handover, Token};
use crate::frames::{PeerFrame, Signal};
use crate::wire::{ClientEnvelope, ServerEnvelope};
use crate::{attach, fvc, Key32, ProtoError, Username};

/// A harness: whether the input decoded (the seeds must; afl ignores it).
pub type Harness = fn(&[u8]) -> bool;

/// Every target by name.
pub const TARGETS: &[(&str, Harness)] = &[
    ("client_envelope", client_envelope),
    ("server_envelope", server_envelope),
    ("signal", signal),
    ("peer_frame", peer_frame),
    ("handover", handover),
    ("enroll_link", enroll_link),
    ("share_link", share_link),
    ("chunk_header", chunk_header),
    ("key_base64", key_base64),
    ("register_request", register_request),
    ("delete_request", delete_request),
];

/// A re-encoding may only fail to decode for being over a size limit it did not change.
fn same_or_too_large<T: PartialEq + std::fmt::Debug>(first: &T, again: Result<T, ProtoError>) {
    match again {
        Ok(back) => assert_eq!(&back, first, "decode → encode → decode changed the value"),
        Err(ProtoError::TooLarge { .. }) => {}
        Err(e) => panic!("a decoded value did not decode again after encoding: {e}"),
    }
}

/// What the server reads from every socket.
pub fn client_envelope(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(env) = ClientEnvelope::parse(text) else {
        return false;
    };
    let again = serde_json::to_string(&env).expect("a parsed message encodes");
    same_or_too_large(&env, ClientEnvelope::parse(&again));
    true
}

/// What a client reads from the server.
pub fn server_envelope(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(env) = ServerEnvelope::parse(text) else {
        return false;
    };
    let again = serde_json::to_string(&env).expect("a parsed message encodes");
    same_or_too_large(&env, ServerEnvelope::parse(&again));
    true
}

/// A relayed signal's plaintext, from the peer.
pub fn signal(data: &[u8]) -> bool {
    let Ok(s) = Signal::decode(data) else {
        return false;
    };
    same_or_too_large(&s, Signal::decode(&s.encode()));
    true
}

/// A data-channel frame's plaintext, from the peer.
pub fn peer_frame(data: &[u8]) -> bool {
    let Ok(f) = PeerFrame::decode(data) else {
        return false;
    };
    same_or_too_large(&f, PeerFrame::decode(&f.encode()));
    true
}

/// An enrollment handover's plaintext, from the approving device.
pub fn handover(data: &[u8]) -> bool {
    let Ok(h) = Handover::decode(data) else {
        return false;
    };
    let once = h.encode();
    let back = Handover::decode(&once).expect("an encoded handover decodes");
    assert_eq!(*back.encode(), *once, "handover changed on a round trip");
    true
}

/// A `POST /v1/delete` body, from anyone.
pub fn delete_request(data: &[u8]) -> bool {
    let Ok(req) = serde_json::from_slice::<crate::wire::DeleteRequest>(data) else {
        return false;
    };
    let again = serde_json::to_vec(&req).expect("a parsed request encodes");
    assert_eq!(serde_json::from_slice(&again).ok(), Some(req));
    true
}

/// A `POST /v1/register` body, from anyone.
pub fn register_request(data: &[u8]) -> bool {
    let Ok(req) = serde_json::from_slice::<crate::wire::RegisterRequest>(data) else {
        return false;
    };
    let again = serde_json::to_vec(&req).expect("a parsed request encodes");
    assert_eq!(serde_json::from_slice(&again).ok(), Some(req));
    true
}

/// A scanned or pasted enrollment QR string.
pub fn enroll_link(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(t) = Token::parse_link(text) else {
        return false;
    };
    assert_eq!(Token::parse_link(&t.link()), Ok(t));
    true
}

/// A scanned or pasted contact share link.
pub fn share_link(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok((user, code)) = fvc::parse_share_link(text) else {
        return false;
    };
    let again = fvc::share_link(&user, code.as_deref());
    assert_eq!(fvc::parse_share_link(&again), Ok((user, code)));
    true
}

/// An attachment chunk's header, from the peer.
pub fn chunk_header(data: &[u8]) -> bool {
    if attach::chunk_header(data).is_err() {
        return false;
    }
    assert!(
        data.len() >= 13,
        "a chunk has its tag byte and 12 header bytes"
    );
    true
}

/// Keys and usernames in every message: base64 and the username rules.
pub fn key_base64(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let key = Key32::from_base64(text)
        .map(|k| assert_eq!(Key32::from_base64(&k.to_base64()), Ok(k)))
        .is_ok();
    let name = Username::parse(text)
        .map(|u| assert_eq!(Username::parse(u.as_str()), Ok(u)))
        .is_ok();
    key || name
}

/// Panics unless every seed of every target decodes (and so round-trips): the seeds are what
/// mutation starts from, and a seed that does not decode explores nothing.
pub fn assert_seeds_decode(targets: &[(&str, Harness)], seeds: fn(&str) -> Vec<Vec<u8>>) {
    for (name, target) in targets {
        for (i, s) in seeds(name).iter().enumerate() {
            assert!(target(s), "seed {i} of {name} does not decode");
        }
    }
}

pub mod mutate;
pub mod seeds;

#[cfg(test)]
mod tests;
