//! The chat machine with a fake clock and a real Olm peer (two in-memory vodozemac accounts): every
//! effect it returns is looked at — a frame it sends is opened by the peer and read, so a send
//! that silently went nowhere fails here.

use std::time::{Duration, Instant};

use anonchat_proto::frames::{PeerFrame, ReceiptKind, SecretText, Signal};
use anonchat_proto::{Caps, DeviceCert, Key32, Username};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};

use super::super::liveness::{SetupFailure, PEER_SILENCE, PING_INTERVAL, RESTART_WINDOW};
use super::super::olm::{seal, unseal};
use super::{ChatCore, Effect, Exit};
use crate::error::SessionError;
use crate::events::{EndReason, Event};
use crate::quota::ChatLimits;
use crate::ClientError;

mod caps;
mod files;
mod groups;
mod signals;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// The other device: its Olm session with the machine under test.
struct Peer {
    olm: Session,
    cert: DeviceCert,
}

impl Peer {
    fn seal(&mut self, frame: &PeerFrame) -> Vec<u8> {
        seal(&mut self.olm, &frame.encode()).expect("the peer seals")
    }

    /// Every frame the effects send over the data channel, opened and decoded in order.
    fn read(&mut self, fx: &[Effect]) -> Vec<PeerFrame> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Send(blob) => Some(blob),
                _ => None,
            })
            .map(|blob| {
                let plain = unseal(&mut self.olm, blob).expect("the peer opens what was sent");
                PeerFrame::decode(&plain).expect("a frame")
            })
            .collect()
    }

    /// Every signal the effects relay, opened and decoded in order.
    fn signals(&mut self, fx: &[Effect]) -> Vec<Signal> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Relay(blob) => Some(blob),
                _ => None,
            })
            .map(|blob| Signal::decode(&unseal(&mut self.olm, blob).expect("opens")).expect("ok"))
            .collect()
    }
}

fn events(fx: &[Effect]) -> Vec<&Event> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

fn cert(name: &str, curve: [u8; 32]) -> DeviceCert {
    DeviceCert {
        v: 1,
        username: Username::parse(name).expect("name"),
        device_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        dk_ed25519: Key32([0; 32]),
        dk_curve25519: Key32(curve),
        caps: Caps::default(),
        created_at: 0,
        sig: anonchat_proto::Sig64([0; 64]),
    }
}

/// A callee-side machine holding the inbound Olm session from the peer's pre-key message (not
/// yet open), and the peer.
fn callee(limits: ChatLimits, t0: Instant) -> (ChatCore, Peer) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().expect("a key");
    let mut out = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .expect("outbound");
    let OlmMessage::PreKey(pre) = out.encrypt(b"first").expect("encrypts") else {
        panic!("pre-key message expected")
    };
    let inbound = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre)
        .expect("inbound");
    let peer = cert("alice", alice.curve25519_key().to_bytes());
    let mut core = ChatCore::new("s".into(), peer.clone(), Caps::default(), false, limits, t0);
    core.set_olm(inbound.session);
    (
        core,
        Peer {
            olm: out,
            cert: peer,
        },
    )
}

/// The same, open at `t0`; the peer has read our `hello`.
fn open(limits: ChatLimits, t0: Instant) -> (ChatCore, Peer) {
    let (mut core, mut peer) = callee(limits, t0);
    let fx = core.opened(t0);
    assert!(matches!(peer.read(&fx)[..], [PeerFrame::Hello { .. }]));
    (core, peer)
}

fn text(id: u64, body: &str) -> PeerFrame {
    PeerFrame::Text {
        id,
        body: SecretText::new(body.into()),
    }
}

#[test]
fn a_first_frame_opens_the_chat_once_and_is_answered() {
    let t0 = Instant::now();
    let (mut core, mut peer) = callee(ChatLimits::default(), t0);
    assert!(!core.is_open());
    let fx = core.on_data(&peer.seal(&text(1, "hi")), 1 << 20, t0 + MS);
    // `hello` first, then the open is told, then the text and its receipt.
    assert!(matches!(fx[1], Effect::Opened { .. }));
    let frames = peer.read(&fx);
    assert!(matches!(frames[0], PeerFrame::Hello { .. }));
    assert_eq!(
        frames[1],
        PeerFrame::Receipt {
            id: 1,
            kind: ReceiptKind::Delivered
        }
    );
    assert!(
        matches!(events(&fx)[..], [Event::Message { id: 1, text, expires_in_ms: None, .. }] if text.as_str() == "hi")
    );
    assert!(
        core.opened(t0 + 2 * MS).is_empty(),
        "the open event after it changes nothing"
    );
    assert_eq!(core.history().len(), 1);
}

#[test]
fn bad_frames_from_a_peer_are_dropped_and_change_nothing() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let oversized = text(1, &"x".repeat(anonchat_proto::limits::MAX_TEXT + 1));
    let bad: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\x01not olm at all".to_vec(),
        seal(&mut peer.olm, b"\x01{not json").expect("seals"),
        seal(&mut peer.olm, b"\x02{\"t\":\"bye\"}").expect("seals"), // wrong version
        seal(&mut peer.olm, b"\x01{\"t\":\"self_destruct\"}").expect("seals"),
        peer.seal(&oversized),
    ];
    for blob in &bad {
        let fx = core.on_data(blob, 1 << 20, t0);
        assert!(
            matches!(events(&fx)[..], [Event::Warning { .. }]) && fx.len() == 1,
            "one warning, nothing else: {fx:?}"
        );
    }
    assert!(core.history().is_empty(), "nothing was added to the chat");
    // The session still works: a good text arrives; `bye` ends it.
    let fx = core.on_data(&peer.seal(&text(7, "still here")), 1 << 20, t0);
    assert_eq!(peer.read(&fx).len(), 1, "its receipt");
    let fx = core.on_data(&peer.seal(&PeerFrame::Bye), 1 << 20, t0);
    assert!(matches!(fx[..], [Effect::End(EndReason::PeerLeft)]));
}

#[test]
fn each_informing_frame_from_the_peer_gives_its_event_and_nothing_else() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let receipt = |id| PeerFrame::Receipt {
        id,
        kind: ReceiptKind::Delivered,
    };
    // (frame, the events it gives, the frames it sends back)
    type Told = fn(&[&Event]) -> bool;
    let table: Vec<(PeerFrame, Told, Vec<PeerFrame>)> = vec![
        (
            receipt(4),
            |e: &[&Event]| {
                matches!(
                    e,
                    [Event::Receipt {
                        id: 4,
                        kind: ReceiptKind::Delivered,
                        ..
                    }]
                )
            },
            vec![],
        ),
        (
            PeerFrame::Typing,
            |e: &[&Event]| matches!(e, [Event::Typing { .. }]),
            vec![],
        ),
        (
            PeerFrame::Hello {
                caps: Caps::default(),
            },
            |e: &[&Event]| e.is_empty(),
            vec![],
        ),
        // A pong nobody asked for: no probe answered, nothing told.
        (
            PeerFrame::Pong { n: 99 },
            |e: &[&Event]| e.is_empty(),
            vec![],
        ),
        (
            PeerFrame::Ping { n: 3 },
            |e: &[&Event]| e.is_empty(),
            vec![PeerFrame::Pong { n: 3 }],
        ),
        (
            PeerFrame::ViewOnceOpened { id: 8 },
            |e: &[&Event]| e.is_empty(),
            vec![],
        ),
        (
            PeerFrame::FileCancel { id: 8 },
            |e: &[&Event]| e.is_empty(),
            vec![],
        ),
    ];
    for (frame, told, answered) in table {
        let fx = core.on_data(&peer.seal(&frame), 1 << 20, t0 + SEC);
        assert!(told(&events(&fx)), "{frame:?} told {fx:?}");
        assert_eq!(peer.read(&fx), answered, "{frame:?}");
        assert!(
            !fx.iter()
                .any(|e| matches!(e, Effect::End(_) | Effect::Pong { .. })),
            "{frame:?}"
        );
    }
    assert!(core.history().is_empty(), "none of them is a line");
}

#[test]
fn a_text_flood_keeps_the_log_within_its_cap_then_ends_the_chat() {
    let t0 = Instant::now();
    let limits = ChatLimits {
        max_lines: 100,
        max_log_bytes: 400,
        ..ChatLimits::default()
    };
    let (mut core, mut peer) = open(limits, t0);
    let (mut messages, mut warnings, mut wiped, mut sent) = (0u64, 0, 0usize, 0u64);
    // All at one instant of the fake clock: the bucket never refills, so the counts are exact.
    let end = loop {
        sent += 1;
        let fx = core.on_data(&peer.seal(&text(sent * 2, "flood")), 1 << 20, t0);
        assert!(
            core.history().len() <= 100,
            "the log stays within its line cap"
        );
        assert!(core.log.bytes() <= 400, "and its byte cap");
        for ev in events(&fx) {
            match ev {
                Event::Message { .. } => messages += 1,
                Event::Warning { .. } => warnings += 1,
                Event::Expired { ids, .. } => wiped += ids.len(),
                _ => {}
            }
        }
        if let Some(Effect::End(reason)) = fx.last() {
            break *reason;
        }
        assert!(sent < 20_000, "a flood must end the chat");
    };
    assert_eq!(end, EndReason::Flooded);
    let burst = crate::quota::FRAME_BURST as u64;
    assert_eq!(
        messages, burst,
        "the burst passes; dropped frames raise no event"
    );
    assert_eq!(sent, burst + u64::from(crate::quota::FLOOD_DROPS));
    assert_eq!(warnings, 1, "the first drop is told, once");
    // 400 bytes hold 80 five-byte lines: the byte cap binds first.
    assert_eq!(core.history().len(), 80);
    assert_eq!(
        wiped as u64,
        messages - 80,
        "front-ends hear of every wiped line"
    );
}

#[test]
fn texts_both_ways_follow_the_timer_and_expire_on_the_clock() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    assert!(matches!(core.set_timer(7), Err(ClientError::Refused(_))));
    let fx = core.set_timer(5).expect("a timer choice");
    assert_eq!(peer.read(&fx), vec![PeerFrame::Timer { seconds: 5 }]);
    assert!(matches!(
        events(&fx)[..],
        [Event::TimerSet {
            seconds: 5,
            by_peer: false,
            ..
        }]
    ));

    // Ours: ids are even on the callee's side and step by two (the caller's are odd).
    let body = SecretText::new("mine".into());
    let (id, blob) = core.seal_text(&body).expect("sealed");
    assert_eq!(id, 2);
    assert_eq!(peer.read(&[Effect::Send(blob)]), vec![text(2, "mine")]);
    let (sent, fx) = core.text_sent(id, body, t0);
    assert!(fx.is_empty());
    assert_eq!((sent.id, sent.expires_in_ms), (2, Some(5000)));
    assert_eq!(
        core.seal_text(&SecretText::new("x".into())).expect("ok").0,
        4
    );

    // Theirs, a second later, under the same timer.
    let fx = core.on_data(&peer.seal(&text(1, "theirs")), 1 << 20, t0 + SEC);
    assert!(matches!(
        events(&fx)[..],
        [Event::Message {
            id: 1,
            expires_in_ms: Some(5000),
            ..
        }]
    ));
    assert_eq!(core.next_expiry(), Some(t0 + 5 * SEC));
    assert!(core.expire(t0 + 5 * SEC - MS).is_empty());
    let fx = core.expire(t0 + 5 * SEC);
    assert!(matches!(&events(&fx)[..], [Event::Expired { ids, .. }] if ids == &[2]));
    let fx = core.expire(t0 + 6 * SEC);
    assert!(matches!(&events(&fx)[..], [Event::Expired { ids, .. }] if ids == &[1]));
    assert!(core.history().is_empty() && core.next_expiry().is_none());

    // The peer turns it off: new lines keep.
    let fx = core.on_data(
        &peer.seal(&PeerFrame::Timer { seconds: 0 }),
        1 << 20,
        t0 + 7 * SEC,
    );
    assert!(matches!(
        events(&fx)[..],
        [Event::TimerSet {
            seconds: 0,
            by_peer: true,
            ..
        }]
    ));
    core.on_data(&peer.seal(&text(3, "kept")), 1 << 20, t0 + 8 * SEC);
    assert_eq!(core.next_expiry(), None);
}

#[test]
fn nothing_goes_out_before_the_chat_is_open_or_past_the_text_limit() {
    let t0 = Instant::now();
    let (mut core, _) = callee(ChatLimits::default(), t0);
    let not_open =
        |r: Result<_, ClientError>| matches!(r, Err(ClientError::Session(SessionError::NotOpen)));
    assert!(not_open(
        core.seal_text(&SecretText::new("early".into())).map(|_| ())
    ));
    assert!(not_open(core.set_timer(5).map(|_| ())));
    assert!(core.probe(t0).is_none());
    assert!(core.typing(t0).is_empty() && core.bye().is_empty());
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let long = SecretText::new("x".repeat(anonchat_proto::limits::MAX_TEXT + 1));
    assert!(core.seal_text(&long).is_err());
    assert_eq!(peer.read(&core.bye()), vec![PeerFrame::Bye]);
}

#[test]
fn a_probe_measures_its_round_trip_and_the_peer_s_pings_are_answered() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let (n, fx) = core.probe(t0).expect("open");
    assert_eq!(peer.read(&fx), vec![PeerFrame::Ping { n }]);
    let fx = core.on_data(&peer.seal(&PeerFrame::Pong { n }), 1 << 20, t0 + 30 * MS);
    assert!(matches!(fx[..], [Effect::Pong { n: m, rtt }] if m == n && rtt == 30 * MS));
    let fx = core.on_data(&peer.seal(&PeerFrame::Pong { n }), 1 << 20, t0 + 40 * MS);
    assert!(fx.is_empty(), "a pong answers once");
    let fx = core.on_data(&peer.seal(&PeerFrame::Ping { n: 9 }), 1 << 20, t0 + 50 * MS);
    assert_eq!(peer.read(&fx), vec![PeerFrame::Pong { n: 9 }]);
}

#[test]
fn typing_goes_out_at_most_once_per_interval() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let sent: Vec<usize> = [0, 500, 1999, 2000, 2100]
        .into_iter()
        .map(|ms| peer.read(&core.typing(t0 + ms * MS)).len())
        .collect();
    assert_eq!(sent, vec![1, 0, 0, 1, 0]);
}

#[test]
fn the_clock_drives_pings_repair_and_the_end() {
    let t0 = Instant::now();
    // The callee pings and reports the break, but only the caller offers ICE restarts.
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    assert!(core.tick(t0 + MS, true).is_empty());
    let fx = core.tick(t0 + PING_INTERVAL, true);
    assert!(matches!(peer.read(&fx)[..], [PeerFrame::Ping { .. }]));
    let quiet = t0 + PEER_SILENCE + MS;
    let fx = core.tick(quiet, false);
    assert!(matches!(
        events(&fx)[..],
        [Event::SessionReconnecting { .. }]
    ));
    assert!(!fx.iter().any(|e| matches!(e, Effect::RestartIce)));
    let fx = core.on_data(
        &peer.seal(&PeerFrame::Hello {
            caps: Caps::default(),
        }),
        1 << 20,
        quiet,
    );
    assert!(matches!(fx[..], [Effect::Resumed]), "frames again: resumed");
    let gone = quiet + PEER_SILENCE + RESTART_WINDOW + MS;
    assert!(matches!(
        core.tick(gone, false).last(),
        Some(Effect::End(EndReason::PeerLost))
    ));

    // Without the route no repair is possible: the end comes at the silence limit.
    let (mut core, _) = open(ChatLimits::default(), t0);
    core.route_closed(t0);
    assert!(matches!(
        core.tick(quiet, false)[..],
        [Effect::End(EndReason::PeerLost)]
    ));

    // A setup that never opens fails, naming the step (the driver fills it in).
    let (mut core, _) = callee(ChatLimits::default(), t0);
    let fx = core.tick(t0 + super::super::SETUP_TIMEOUT + MS, false);
    assert!(matches!(fx[..], [Effect::Fail(SetupFailure::TimedOut)]));
}

#[test]
fn a_caller_offers_an_ice_restart_when_the_path_goes_quiet() {
    let t0 = Instant::now();
    let (core, _) = callee(ChatLimits::default(), t0);
    let mut caller = ChatCore::new(
        "c".into(),
        core.peer_cert().clone(),
        Caps::default(),
        true,
        ChatLimits::default(),
        t0,
    );
    // Only the liveness rules matter here: no Olm session is needed to offer a restart.
    caller.opened(t0);
    let fx = caller.tick(t0 + PEER_SILENCE + MS, false);
    assert!(fx.iter().any(|e| matches!(e, Effect::RestartIce)));
    assert!(!core.is_caller() && caller.is_caller());
}

/// A view-once image from the peer: offered, chunked, finished; opened once here, which tells the
/// peer; a second open is refused.
#[test]
fn the_end_wipes_everything_and_says_how_it_ended() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    core.on_data(&peer.seal(&text(1, "secret")), 1 << 20, t0);
    core.probe(t0);
    let (release, ev) = core.finish(Exit::Ended(EndReason::Left));
    assert!(release, "the route lasted the chat; it is released");
    assert!(matches!(
        ev,
        Event::SessionEnded {
            reason: EndReason::Left,
            wiped: true,
            ..
        }
    ));
    assert!(core.history().is_empty() && !core.has_olm() && !core.is_open());
    assert!(core.probe(t0).is_none() && core.bye().is_empty());

    let (mut core, _) = callee(ChatLimits::default(), t0);
    core.route_closed(t0);
    let (release, ev) = core.finish(Exit::Failed("no path".into()));
    assert!(!release, "the server already dropped the route");
    assert!(matches!(ev, Event::SessionFailed { reason, .. } if reason == "no path"));
}
