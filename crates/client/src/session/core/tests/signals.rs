//! The signal rules as a table: which signal may come in which state, what the driver is told to
//! do, and what fails the session (during setup, anything out of place means tampering).

use anonchat_proto::frames::Signal;
use anonchat_proto::Caps;

use super::super::{SignalError, Step};
use super::{callee, cert, open, ChatCore, ChatLimits, Effect, Event, Instant, Peer};

fn offer(cert: anonchat_proto::DeviceCert) -> Signal {
    Signal::Offer {
        sdp: "v=0 offer".into(),
        caps: Caps::default(),
        cert,
    }
}

fn answer() -> Signal {
    Signal::Answer {
        sdp: "v=0 answer".into(),
        caps: Caps::default(),
    }
}

fn candidate() -> Signal {
    Signal::Candidate {
        candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
    }
}

fn restart() -> Signal {
    Signal::Restart {
        sdp: "v=0 restart".into(),
    }
}

fn restart_answer() -> Signal {
    Signal::RestartAnswer {
        sdp: "v=0 restart answer".into(),
    }
}

/// What a signal led to, in a word (`Err` holds the reason the session fails).
fn outcome(core: &mut ChatCore, s: &Signal) -> Result<&'static str, String> {
    match core.on_signal_plain(&s.encode()) {
        Ok(Step::Done(fx)) if fx.is_empty() => Ok("nothing"),
        Ok(Step::Done(_)) => Ok("told"),
        Ok(Step::Answer { sdp }) if sdp == "v=0 offer" => Ok("answer it"),
        Ok(Step::AcceptAnswer { sdp }) if sdp == "v=0 answer" => Ok("accept the answer"),
        Ok(Step::AddCandidate(c)) if c.sdp_mid.as_deref() == Some("0") => Ok("add the candidate"),
        Ok(Step::Restart {
            reconnecting: true, ..
        }) => Ok("restart, tell"),
        Ok(Step::Restart {
            reconnecting: false,
            ..
        }) => Ok("restart"),
        Ok(Step::RestartAnswer { .. }) => Ok("accept the restart answer"),
        Ok(other) => panic!("unexpected step {other:?}"),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn the_callee_takes_one_offer_from_the_introduced_device_then_only_what_fits() {
    let t0 = Instant::now();
    let (mut core, peer) = callee(ChatLimits::default(), t0);
    let stranger = cert("alice", [7; 32]);
    let rows: Vec<(Signal, Result<&str, &str>)> = vec![
        (answer(), Err("answer before offer")),
        (candidate(), Ok("nothing")),
        (restart(), Err("unexpected ICE restart")),
        (offer(stranger), Err("does not match")),
        (offer(peer.cert.clone()), Ok("answer it")),
        (offer(peer.cert.clone()), Err("unexpected second offer")),
        (candidate(), Ok("add the candidate")),
        (restart(), Err("unexpected ICE restart")), // not open yet
        (restart_answer(), Err("unexpected ICE restart answer")), // only a caller takes it
        (Signal::Abort, Err("aborted")),
    ];
    for (i, (signal, want)) in rows.into_iter().enumerate() {
        match (outcome(&mut core, &signal), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "row {i}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "row {i}: {got}"),
            (got, want) => panic!("row {i}: {got:?}, expected {want:?}"),
        }
    }
    // Open: the caller's restarts are taken; the front-end is told once per break.
    core.opened(t0);
    assert_eq!(outcome(&mut core, &restart()), Ok("restart, tell"));
    assert_eq!(outcome(&mut core, &restart()), Ok("restart"));
    assert!(core.on_signal_plain(b"\x01{\"t\":\"nonsense\"}").is_err());
}

#[test]
fn the_caller_takes_answers_and_restart_answers_but_no_offer_or_restart() {
    let t0 = Instant::now();
    let (callee_core, _) = callee(ChatLimits::default(), t0);
    let peer_cert = callee_core.peer_cert().clone();
    let mut core = ChatCore::new(
        "c".into(),
        peer_cert.clone(),
        Caps::default(),
        true,
        ChatLimits::default(),
        t0,
    );
    core.offer_made();
    core.opened(t0);
    assert_eq!(outcome(&mut core, &answer()), Ok("accept the answer"));
    assert_eq!(outcome(&mut core, &candidate()), Ok("add the candidate"));
    assert_eq!(
        outcome(&mut core, &restart_answer()),
        Ok("accept the restart answer")
    );
    assert!(
        outcome(&mut core, &offer(peer_cert)).is_err(),
        "the caller made the offer"
    );
    assert!(
        outcome(&mut core, &restart()).is_err(),
        "the callee never offers restarts"
    );
}

#[test]
fn a_blob_that_does_not_decrypt_fails_setup_but_is_dropped_once_open() {
    let t0 = Instant::now();
    let (mut core, _) = callee(ChatLimits::default(), t0);
    let forged = b"\x01not from the peer".to_vec();
    assert!(matches!(
        core.on_relayed(&forged),
        Err(SignalError::Undecryptable(_))
    ));

    let (mut core, mut peer2): (ChatCore, Peer) = open(ChatLimits::default(), t0);
    match core.on_relayed(&forged) {
        Ok(Step::Done(fx)) => assert!(matches!(&fx[..], [Effect::Emit(Event::Warning { .. })])),
        other => panic!("dropped with a warning, not {other:?}"),
    }
    // A replay of a real one is refused by Olm the same way.
    let real = super::seal(&mut peer2.olm, &candidate().encode()).expect("seals");
    assert!(matches!(core.on_relayed(&real), Ok(Step::Done(fx)) if fx.is_empty()));
    assert!(matches!(core.on_relayed(&real), Ok(Step::Done(fx)) if fx.len() == 1));
    // And our own signals reach the peer sealed.
    let fx = core.signal(&candidate());
    assert_eq!(peer2.signals(&fx), vec![candidate()]);
}
