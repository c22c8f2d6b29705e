//! The frame path of a session, with two in-memory Olm accounts and a recording host (no
//! transport: these are the pure decoding and state rules).

use super::*;
use std::sync::Mutex;
use vodozemac::olm::{Account, OlmMessage, SessionConfig};

use crate::error::ProfileError;

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl SessionHost for Recorder {
    fn relay(&self, _: &str, _: Vec<u8>) {}
    fn hangup(&self, _: &str) {}
    fn emit(&self, ev: Event) {
        self.0.lock().unwrap().push(ev);
    }
    fn outbound_session(
        &self,
        _: Curve25519PublicKey,
        _: Curve25519PublicKey,
    ) -> Result<Session, ClientError> {
        Err(ClientError::Profile(ProfileError::NoIdentity))
    }
    fn inbound_session(
        &self,
        _: Curve25519PublicKey,
        _: &PreKeyMessage,
    ) -> Result<(Session, Zeroizing<Vec<u8>>), ClientError> {
        Err(ClientError::Profile(ProfileError::NoIdentity))
    }
    fn my_cert(&self) -> Option<DeviceCert> {
        None
    }
    fn ice(&self) -> IceConfig {
        IceConfig::default()
    }
    fn session_over(&self, _: &str) {}
}

/// Alice's outbound session and a chat on Bob's side that holds the matching inbound one.
fn pair() -> (Session, Chat, Arc<Recorder>) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    let mut out = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let first = out
        .encrypt(
            PeerFrame::Hello {
                caps: Caps::default(),
            }
            .encode()
            .as_slice(),
        )
        .unwrap();
    let OlmMessage::PreKey(pre) = first else {
        panic!("pre-key message expected")
    };
    let inbound = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre)
        .unwrap();
    let host = Arc::new(Recorder::default());
    let cert = DeviceCert {
        v: 1,
        username: Username::parse("alice").unwrap(),
        device_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        dk_ed25519: Key32([0; 32]),
        dk_curve25519: Key32(alice.curve25519_key().to_bytes()),
        caps: Caps::default(),
        created_at: 0,
        sig: anonchat_proto::Sig64([0; 64]),
    };
    let chat = Chat {
        id: "s".into(),
        peer: cert.username.clone(),
        peer_cert: cert,
        host: host.clone(),
        olm: Some(inbound.session),
        transport: None,
        log: ChatLog::new(ChatLimits {
            max_lines: 100,
            ..ChatLimits::default()
        }),
        rate: FrameRate::new(Instant::now()),
        next_id: 1,
        live: {
            let mut live = Liveness::new(false, Instant::now());
            live.opened(Instant::now());
            live
        },
        typing: Default::default(),
        ping_n: 0,
        probes: Default::default(),
        files: super::transfers::state::Transfers::default(),
    };
    (out, chat, host)
}

fn seal_raw(olm: &mut Session, plain: &[u8]) -> Vec<u8> {
    seal(olm, plain).unwrap()
}

#[tokio::test]
async fn bad_frames_from_a_peer_are_dropped_and_change_nothing() {
    let (mut alice, mut chat, host) = pair();
    let oversized = PeerFrame::Text {
        id: 1,
        body: SecretText::new("x".repeat(anonchat_proto::limits::MAX_TEXT + 1)),
    };
    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),                                             // empty
        b"\x01not olm at all".to_vec(),                         // not an Olm message
        seal_raw(&mut alice, b"\x01{not json"),                 // malformed JSON inside Olm
        seal_raw(&mut alice, b"\x02{\"t\":\"bye\"}"),           // wrong version
        seal_raw(&mut alice, b"\x01{\"t\":\"self_destruct\"}"), // unknown frame
        seal_raw(&mut alice, &oversized.encode()),              // over the text limit
    ];
    for frame in &bad {
        assert_eq!(
            chat.on_frame(frame).await,
            None,
            "a bad frame must not end the session"
        );
    }
    let warnings = host
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Warning { .. }))
        .count();
    assert_eq!(warnings, bad.len(), "each bad frame is reported");
    assert!(chat.log.lines().is_empty(), "nothing was added to the chat");

    // The session still works: a good text arrives and is logged; `bye` ends it.
    let good = seal_raw(
        &mut alice,
        &PeerFrame::Text {
            id: 7,
            body: SecretText::new("still here".into()),
        }
        .encode(),
    );
    assert_eq!(chat.on_frame(&good).await, None);
    assert!(host
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Message { id: 7, text, .. } if text.as_str() == "still here")));
    assert_eq!(chat.log.lines().len(), 1);
    let bye = seal_raw(&mut alice, &PeerFrame::Bye.encode());
    assert_eq!(chat.on_frame(&bye).await, Some(EndReason::PeerLeft));
}

#[tokio::test]
async fn a_text_flood_keeps_the_log_within_its_cap_then_ends_the_chat() {
    let (mut alice, mut chat, host) = pair();
    let mut ended = None;
    let mut sent = 0u64;
    let started = Instant::now();
    while ended.is_none() && sent < 20_000 {
        sent += 1;
        let frame = PeerFrame::Text {
            id: sent * 2,
            body: SecretText::new(format!("flood {sent}")),
        };
        ended = chat.on_frame(&seal_raw(&mut alice, &frame.encode())).await;
        assert!(
            chat.log.lines().len() <= 100,
            "the log stays within its cap"
        );
    }
    assert_eq!(ended, Some(EndReason::Flooded));
    let burst = crate::quota::FRAME_BURST as u64;
    assert!(
        sent >= burst + u64::from(crate::quota::FLOOD_DROPS) - 1,
        "the burst passes, then {} drops: {sent}",
        crate::quota::FLOOD_DROPS
    );
    let events = host.0.lock().unwrap();
    let messages = events
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count() as u64;
    // What the rate refilled while this ran (a debug build is slow) passes too; no more.
    let refilled = (started.elapsed().as_secs_f64() * crate::quota::FRAMES_PER_SEC) as u64;
    assert!(
        messages <= burst + refilled + 1,
        "dropped frames raise no event: {messages}"
    );
    let wiped: usize = events
        .iter()
        .map(|e| match e {
            Event::Expired { ids, .. } => ids.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(
        wiped as u64,
        messages - 100,
        "front-ends hear of every wiped line"
    );
    assert_eq!(
        chat.log.bytes(),
        chat.log
            .lines()
            .iter()
            .map(|l| l.text.as_str().len())
            .sum::<usize>()
    );
}
