//! Valid inputs of every fuzz target: what the in-test mutations start from, and the afl corpus.

use super::*;
use crate::frames::SecretText;
use crate::wire::{ClientMsg, ServerMsg};

fn client_seeds(alice: &Username, key: Key32) -> Vec<Vec<u8>> {
    [
        ClientMsg::Ping,
        ClientMsg::Lookup {
            username: alice.clone(),
            code: Some("123456".into()),
            pow: None,
        },
        ClientMsg::UploadOtks {
            keys: vec![crate::wire::SignedOtk {
                key,
                sig: crate::Sig64([1; 64]),
            }],
        },
        ClientMsg::KeyHistory {
            username: alice.clone(),
        },
    ]
    .into_iter()
    .map(|m| serde_json::to_vec(&ClientEnvelope::new(Some(3), m)).expect("a seed encodes"))
    .collect()
}

fn server_seeds(alice: &Username, key: Key32) -> Vec<Vec<u8>> {
    [
        ServerMsg::Pong,
        ServerMsg::User {
            username: alice.clone(),
            ak_pub: key,
            online: true,
        },
        ServerMsg::KeyRotated {
            username: alice.clone(),
            ak_pub: key,
        },
    ]
    .into_iter()
    .map(|m| serde_json::to_vec(&ServerEnvelope::new(Some(3), m)).expect("a seed encodes"))
    .collect()
}

/// Valid inputs of every target, as bytes: the seeds mutations start from (also the afl corpus).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let alice = Username::parse("alice").expect("a valid name");
    let key = Key32([7; 32]);
    match target {
        "client_envelope" => client_seeds(&alice, key),
        "server_envelope" => server_seeds(&alice, key),
        "signal" => vec![
            Signal::Answer {
                sdp: "v=0".into(),
                caps: crate::Caps::default(),
            }
            .encode()
            .to_vec(),
            Signal::Candidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
            }
            .encode()
            .to_vec(),
        ],
        "peer_frame" => vec![
            PeerFrame::Text {
                id: 1,
                body: SecretText::new("hello".into()),
            }
            .encode()
            .to_vec(),
            PeerFrame::Ping { n: 4 }.encode().to_vec(),
            PeerFrame::Timer { seconds: 60 }.encode().to_vec(),
        ],
        "handover" => vec![Handover {
            username: alice.clone(),
            ak_secret: SecretText::new("c2VjcmV0".into()),
            contacts: vec![],
            blocked: vec![alice.clone()],
        }
        .encode()
        .to_vec()],
        "enroll_link" => vec![Token {
            username: alice.clone(),
            code: "ABCD1234".into(),
            expires: 99,
            ak_pub: key,
            sig: crate::Sig64([2; 64]),
        }
        .link()
        .into_bytes()],
        "share_link" => vec![fvc::share_link(&alice, Some("123456")).into_bytes()],
        "chunk_header" => {
            let cipher = attach::ChunkCipher::new(&attach::TransferKey([3; 32]));
            vec![attach::seal_chunk(&cipher, 5, 1, b"chunk")]
        }
        "key_base64" => vec![key.to_base64().into_bytes(), b"alice".to_vec()],
        "register_request" => vec![serde_json::to_vec(&crate::wire::RegisterRequest {
            v: 1,
            username: alice.clone(),
            ak_pub: key,
            device_cert: crate::DeviceCert {
                v: 1,
                username: alice,
                device_id: "d1".into(),
                dk_ed25519: key,
                dk_curve25519: Key32([8; 32]),
                caps: crate::Caps::default(),
                created_at: 5,
                sig: crate::Sig64([3; 64]),
            },
            pow: crate::pow::Stamp {
                bits: 12,
                ts: 6,
                nonce: 7,
            },
        })
        .expect("a seed encodes")],
        "delete_request" => vec![serde_json::to_vec(&crate::wire::DeleteRequest {
            v: 1,
            username: Username::parse("alice").expect("a name"),
            ts: 1_700_000_000,
            sig: crate::Sig64([3; 64]),
        })
        .expect("a seed encodes")],
        other => panic!("no seeds for {other}"),
    }
}
