//! Every transition of the ring state machine.

use super::*;

fn setup(now: Instant) -> Rings {
    let mut r = Rings::default();
    r.start(
        "r1".into(),
        Username::parse("alice").unwrap(),
        "a1".into(),
        Username::parse("bob").unwrap(),
        ["b1".to_string(), "b2".to_string()].into_iter().collect(),
        now,
    )
    .unwrap();
    r
}

#[test]
fn first_accept_wins_others_answered_elsewhere() {
    let now = Instant::now();
    let mut r = setup(now);
    let out = r.answer("r1", "b2", true, now).unwrap();
    assert_eq!(out.answered, Some(("r1".into(), "a1".into(), "b2".into())));
    assert_eq!(
        out.ended,
        vec![("r1".into(), "b1".into(), RingEnd::AnsweredElsewhere)]
    );
    assert_eq!(r.answer("r1", "b1", true, now), Err(RingError::WrongState));
    assert_eq!(r.route("r1", "a1"), Ok("b2"));
    assert_eq!(r.route("r1", "b2"), Ok("a1"));
    assert_eq!(r.route("r1", "b1"), Err(RingError::NotParty));
    assert_eq!(r.route("nope", "a1"), Err(RingError::Unknown));
}

/// Alice rings Bob, who has no device online.
fn wake_intent(now: Instant) -> (Rings, Username) {
    let mut r = Rings::new(Duration::from_secs(30));
    let bob = Username::parse("bob").unwrap();
    let alice = Username::parse("alice").unwrap();
    r.start(
        "w".into(),
        alice,
        "a1".into(),
        bob.clone(),
        HashSet::new(),
        now,
    )
    .unwrap();
    (r, bob)
}

#[test]
fn a_wake_intent_rings_the_first_device_to_come_in_time() {
    let now = Instant::now();
    let (mut r, bob) = wake_intent(now);
    assert!(r
        .wake(&Username::parse("carol").unwrap(), "c1", now)
        .is_empty());
    let woken = r.wake(&bob, "b1", now + Duration::from_secs(10));
    assert_eq!(
        woken,
        vec![("w".to_string(), Username::parse("alice").unwrap())]
    );
    assert!(r.wake(&bob, "b1", now).is_empty(), "once per device");
    assert!(r.answer("w", "b1", true, now).unwrap().answered.is_some());
}

#[test]
fn a_ring_closed_to_wakes_rings_only_its_first_devices() {
    let now = Instant::now();
    let mut r = setup(now);
    let bob = Username::parse("bob").unwrap();
    assert!(r.ringing_for(&bob));
    r.close_to_wakes("r1");
    r.close_to_wakes("nope");
    assert!(!r.ringing_for(&bob));
    assert!(
        r.wake(&bob, "b3", now).is_empty(),
        "a device coming later is not asked"
    );
    // The devices it started with still answer it.
    assert!(r.answer("r1", "b1", true, now).unwrap().answered.is_some());
}

#[test]
fn a_wake_intent_nobody_answers_ends_as_unavailable() {
    let now = Instant::now();
    let (mut r, bob) = wake_intent(now);
    let out = r.expire(now + Duration::from_secs(30));
    assert_eq!(
        out.ended,
        vec![("w".into(), "a1".into(), RingEnd::Unavailable)]
    );
    assert!(
        r.wake(&bob, "b1", now + Duration::from_secs(31)).is_empty(),
        "too late"
    );
}

#[test]
fn all_decline_tells_caller() {
    let now = Instant::now();
    let mut r = setup(now);
    assert!(r.answer("r1", "b1", false, now).unwrap().ended.is_empty());
    let out = r.answer("r1", "b2", false, now).unwrap();
    assert_eq!(
        out.ended,
        vec![("r1".into(), "a1".into(), RingEnd::Declined)]
    );
    assert!(r.is_empty());
}

#[test]
fn times_out_after_30s_for_everyone() {
    let now = Instant::now();
    let mut r = setup(now);
    assert!(r.expire(now + Duration::from_secs(29)).ended.is_empty());
    let out = r.expire(now + RING_TIMEOUT);
    assert_eq!(out.ended.len(), 3);
    assert!(out.ended.iter().all(|(_, _, why)| *why == RingEnd::Timeout));
    assert!(r.is_empty());
}

#[test]
fn strangers_cannot_answer_or_hang_up() {
    let now = Instant::now();
    let mut r = setup(now);
    assert_eq!(r.answer("r1", "x9", true, now), Err(RingError::NotParty));
    assert_eq!(r.hangup("r1", "b1"), Err(RingError::NotParty));
    assert_eq!(r.answer("zz", "b1", true, now), Err(RingError::Unknown));
    assert_eq!(r.len(), 1);
}

#[test]
fn caller_leaving_cancels_ringing_devices() {
    let now = Instant::now();
    let mut r = setup(now);
    let mut ended = r.device_gone("a1").ended;
    ended.sort();
    assert_eq!(
        ended,
        vec![
            ("r1".into(), "b1".into(), RingEnd::Cancelled),
            ("r1".into(), "b2".into(), RingEnd::Cancelled)
        ]
    );
}

#[test]
fn answered_route_dropped_and_other_side_told_when_a_device_leaves() {
    let now = Instant::now();
    let mut r = setup(now);
    r.answer("r1", "b1", true, now).unwrap();
    assert_eq!(
        r.device_gone("b1").ended,
        vec![("r1".into(), "a1".into(), RingEnd::Unavailable)]
    );
    assert!(r.is_empty());
}

#[test]
fn hangup_of_answered_route_tells_the_other_side() {
    let now = Instant::now();
    let mut r = setup(now);
    r.answer("r1", "b1", true, now).unwrap();
    assert_eq!(
        r.hangup("r1", "b1").unwrap().ended,
        vec![("r1".into(), "a1".into(), RingEnd::Cancelled)]
    );
    assert_eq!(r.route("r1", "a1"), Err(RingError::Unknown));
}

#[test]
fn a_device_holds_at_most_its_share_of_rings_and_being_rung_does_not_count() {
    let now = Instant::now();
    let mut r = Rings::default();
    let (alice, bob) = (
        Username::parse("alice").unwrap(),
        Username::parse("bob").unwrap(),
    );
    let ring = |r: &mut Rings, id: String, caller: &str, callee_devices: &[&str]| {
        r.start(
            id,
            alice.clone(),
            caller.into(),
            bob.clone(),
            callee_devices.iter().map(|d| d.to_string()).collect(),
            now,
        )
    };
    for i in 0..MAX_PER_DEVICE {
        ring(&mut r, format!("r{i}"), "a1", &["b1"]).unwrap();
    }
    assert_eq!(
        ring(&mut r, "over".into(), "a1", &["b1"]),
        Err(RingError::Busy)
    );
    assert!(r.consistent());
    // b1 was rung 32 times: it can still ring, and answer up to its own share.
    ring(&mut r, "b-rings".into(), "b1", &["c1"]).unwrap();
    for i in 0..MAX_PER_DEVICE - 1 {
        r.answer(&format!("r{i}"), "b1", true, now).unwrap();
    }
    let last = format!("r{}", MAX_PER_DEVICE - 1);
    assert_eq!(r.answer(&last, "b1", true, now), Err(RingError::Busy));
    assert!(r.consistent());
    // Hanging up frees the share on both sides.
    r.hangup("r0", "a1").unwrap();
    r.answer(&last, "b1", true, now).unwrap();
    ring(&mut r, "again".into(), "a1", &["b2"]).unwrap();
    assert!(r.consistent());
}

#[test]
fn the_indexes_follow_every_transition() {
    let now = Instant::now();
    let mut r = setup(now);
    r.answer("r1", "b1", false, now).unwrap();
    assert!(r.consistent());
    r.wake(&Username::parse("bob").unwrap(), "b3", now);
    assert!(r.consistent());
    let out = r.device_gone("b2");
    assert!(out.ended.is_empty(), "b3 still rings");
    assert!(r.consistent());
    r.answer("r1", "b3", true, now).unwrap();
    assert!(r.consistent());
    let out = r.device_gone("a1");
    assert_eq!(
        out.ended,
        vec![("r1".into(), "b3".into(), RingEnd::Unavailable)]
    );
    assert!(r.is_empty() && r.consistent());
    assert_eq!(r.load("a1") + r.load("b3"), 0);
    // Expiry takes only what is due, earliest first.
    let mut r = setup(now);
    r.start(
        "r2".into(),
        Username::parse("carol").unwrap(),
        "c1".into(),
        Username::parse("bob").unwrap(),
        HashSet::new(),
        now + Duration::from_secs(5),
    )
    .unwrap();
    let out = r.expire(now + RING_TIMEOUT);
    assert_eq!(out.ended.len(), 3, "r1: caller and two devices");
    assert_eq!(r.len(), 1);
    assert!(r.consistent());
}

#[test]
fn an_answered_route_lives_for_the_chat_then_expires() {
    let now = Instant::now();
    let mut r = setup(now);
    assert_eq!((r.len(), r.is_empty()), (1, false));
    assert!(r.get("r1").is_some_and(|ring| ring.caller_device == "a1"));
    r.answer("r1", "b1", true, now).unwrap();
    // Long past the ring timeout the route still relays (an ICE restart may need it) ...
    assert!(r
        .expire(now + Duration::from_secs(11 * 3600))
        .ended
        .is_empty());
    assert_eq!(r.route("r1", "a1"), Ok("b1"));
    // ... until its 12 hours are up.
    r.expire(now + ROUTE_TTL);
    assert_eq!(r.route("r1", "a1"), Err(RingError::Unknown));
    assert!(r.is_empty() && r.get("r1").is_none());
    assert_eq!(r.len(), 0);
}

#[test]
fn a_wake_intent_at_its_deadline_is_over() {
    let now = Instant::now();
    let (mut r, bob) = wake_intent(now);
    assert!(r.wake(&bob, "b1", now + RING_TIMEOUT).is_empty());
    assert_eq!(
        r.wake(&bob, "b1", now + RING_TIMEOUT - Duration::from_millis(1))
            .len(),
        1
    );
}

#[test]
fn a_failed_introduction_ends_the_ring_for_both_devices() {
    let now = Instant::now();
    let mut r = setup(now);
    r.answer("r1", "b2", true, now).unwrap();
    let out = r.fail("r1");
    assert_eq!(
        out.ended,
        vec![
            ("r1".into(), "a1".into(), RingEnd::Unavailable),
            ("r1".into(), "b2".into(), RingEnd::Unavailable)
        ]
    );
    assert!(r.is_empty() && r.consistent());
    assert_eq!(r.fail("r1"), Outcome::default(), "once");
}
