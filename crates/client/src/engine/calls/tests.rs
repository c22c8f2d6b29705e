//! Every transition of the calls machine, with the races the GUI tests used to be the only ones
//! to catch: an accept before the answer to our ring, a hangup after the chat ended here, a ring
//! answered on another device, and a server connecting a call nobody took.

use std::time::{Duration, Instant};

use anonchat_proto::wire::RingEnd;
use anonchat_proto::{Key32, Username};

use super::{CallError, Calls, OnAccepted, OnConnected, OnEnded, FINISHED_KEPT};

/// Handles are plain numbers, accepts plain strings: the rules do not look inside either.
type Machine = Calls<u32, &'static str>;

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

fn t0() -> Instant {
    Instant::now()
}

#[test]
fn an_accept_for_our_ring_is_checked_against_the_callee() {
    let mut c = Machine::default();
    assert_eq!(c.ringing("r1", user("bob")), None);
    assert_eq!(c.callee("r1"), Some(&user("bob")));
    assert_eq!(
        c.ring_accepted("r1", "bob's device", Instant::now()),
        OnAccepted::Check {
            callee: user("bob"),
            accept: "bob's device",
            group: false,
        }
    );
    // A second accept (another device, or a replay) finds no ring to take.
    assert_eq!(
        c.ring_accepted("r1", "again", Instant::now()),
        OnAccepted::Held
    );
}

#[test]
fn an_accept_before_the_answer_to_our_ring_is_held_and_checked_when_the_answer_comes() {
    let mut c = Machine::default();
    let t0 = Instant::now();
    assert_eq!(c.ring_accepted("r1", "early", t0), OnAccepted::Held);
    assert_eq!(c.ringing("r1", user("bob")), Some("early"));
    // Taken: it is not waiting as an outgoing ring any more, nor held again.
    assert_eq!(c.callee("r1"), None);
    assert_eq!(c.ringing("r1", user("bob")), None);
}

#[test]
fn held_accepts_lapse_after_five_seconds_and_are_bounded() {
    let mut c = Machine::default();
    let t0 = Instant::now();
    assert_eq!(c.ring_accepted("old", "a", t0), OnAccepted::Held);
    for i in 0..20 {
        c.ring_accepted(&format!("x{i}"), "flood", t0 + Duration::from_secs(6));
    }
    // The old one lapsed when the flood came; the flood itself kept only eight.
    assert_eq!(c.ringing("old", user("bob")), None);
    let kept = (0..20)
        .filter(|i| {
            let id = format!("x{i}");
            c.ringing(&id, user("bob")).is_some()
        })
        .count();
    assert_eq!(kept, 8);
}

#[test]
fn an_accept_for_a_live_chat_id_is_not_held() {
    let mut c = Machine::default();
    c.ringing("r1", user("bob"));
    assert!(matches!(
        c.ring_accepted("r1", "bob", Instant::now()),
        OnAccepted::Check { .. }
    ));
    c.start("r1", 7).unwrap();
    assert_eq!(
        c.ring_accepted("r1", "forged", Instant::now()),
        OnAccepted::Held
    );
    // Nothing was kept for a later `ringing` under that id to pick up.
    assert_eq!(c.ringing("r1", user("bob")), None);
}

#[test]
fn only_a_ring_answered_here_connects() {
    let mut c = Machine::default();
    // A server connecting a ring that never rang here, or one not answered yet.
    assert_eq!(c.connected("r9"), OnConnected::NotAnswered);
    c.incoming_ring("r1", user("alice"), Key32([1; 32]))
        .unwrap();
    assert_eq!(c.connected("r1"), OnConnected::NotAnswered);
    assert_eq!(
        c.waiting().count(),
        1,
        "still ringing after the forged connect"
    );
    assert_eq!(c.accepted_here("r1"), Ok(user("alice")));
    assert_eq!(
        c.connected("r1"),
        OnConnected::Check {
            caller: user("alice"),
            ak: Key32([1; 32]),
            group: false,
        }
    );
    // Once only: a replayed connect gets nothing.
    assert_eq!(c.connected("r1"), OnConnected::NotAnswered);
    assert_eq!(c.waiting().count(), 0);
}

#[test]
fn a_declined_ring_is_gone_and_cannot_connect() {
    let mut c = Machine::default();
    c.incoming_ring("r1", user("alice"), Key32([1; 32]))
        .unwrap();
    assert_eq!(c.declined_here("r1"), Ok(user("alice")));
    assert_eq!(c.declined_here("r1"), Err(CallError::UnknownRing));
    assert_eq!(c.accepted_here("r1"), Err(CallError::UnknownRing));
    assert_eq!(c.connected("r1"), OnConnected::NotAnswered);
}

#[test]
fn a_ring_answered_elsewhere_ends_here_and_cannot_be_answered_or_connected() {
    let mut c = Machine::default();
    c.incoming_ring("r1", user("alice"), Key32([1; 32]))
        .unwrap();
    assert_eq!(c.ended("r1", RingEnd::Declined, t0()), OnEnded::Tell);
    assert_eq!(c.accepted_here("r1"), Err(CallError::UnknownRing));
    assert_eq!(c.connected("r1"), OnConnected::NotAnswered);
    // Even when the user clicked just before the news came.
    c.incoming_ring("r2", user("alice"), Key32([1; 32]))
        .unwrap();
    c.accepted_here("r2").unwrap();
    assert_eq!(c.ended("r2", RingEnd::Declined, t0()), OnEnded::Tell);
    assert_eq!(c.connected("r2"), OnConnected::NotAnswered);
}

#[test]
fn no_id_of_a_live_chat_or_ring_is_reused() {
    let mut c = Machine::default();
    c.incoming_ring("r1", user("alice"), Key32([1; 32]))
        .unwrap();
    assert_eq!(
        c.incoming_ring("r1", user("mallory"), Key32([2; 32])),
        Err(CallError::InUse)
    );
    c.ringing("r2", user("bob"));
    assert_eq!(
        c.incoming_ring("r2", user("mallory"), Key32([2; 32])),
        Err(CallError::InUse)
    );
    c.start("r3", 1).unwrap();
    assert_eq!(c.start("r3", 2), Err(CallError::InUse));
    assert_eq!(c.session("r3"), Some(&1), "the live chat's handle is kept");
    assert_eq!(
        c.incoming_ring("r3", user("mallory"), Key32([2; 32])),
        Err(CallError::InUse)
    );
    c.over("r3");
    // A finished chat's id is still refused while it is remembered.
    assert_eq!(
        c.incoming_ring("r3", user("mallory"), Key32([2; 32])),
        Err(CallError::InUse)
    );
}

#[test]
fn a_ring_end_during_a_chat_closes_its_route_and_after_it_is_quiet_once() {
    let mut c = Machine::default();
    c.start("r1", 5).unwrap();
    assert_eq!(
        c.ended("r1", RingEnd::Declined, t0()),
        OnEnded::RouteClosed(5)
    );
    c.over("r1");
    assert_eq!(c.session("r1"), None);
    // The peer's late hangup: not news; nor is it the second time, nor the end of an id this
    // device never had (the server's invention).
    assert_eq!(c.ended("r1", RingEnd::Declined, t0()), OnEnded::Quiet);
    assert_eq!(c.ended("r1", RingEnd::Declined, t0()), OnEnded::Quiet);
    assert_eq!(c.ended("never", RingEnd::Declined, t0()), OnEnded::Quiet);
    // The end of our own ring that overtook the answer to it: held, and told once the answer
    // names it; an id nobody rings is held and forgotten.
    assert_eq!(c.ended("r5", RingEnd::Timeout, t0()), OnEnded::Quiet);
    c.ringing("r5", user("bob"));
    assert_eq!(c.ended_before_ringing("r5"), Some(RingEnd::Timeout));
    assert_eq!(c.ended_before_ringing("r5"), None);
    assert_eq!(
        c.ended("r5", RingEnd::Timeout, t0()),
        OnEnded::Quiet,
        "no longer ringing"
    );
    // A ring that was ours is told.
    c.ringing("r2", user("bob"));
    assert_eq!(c.ended("r2", RingEnd::Declined, t0()), OnEnded::Tell);
    c.incoming_ring("r4", user("carol"), Key32([3; 32]))
        .unwrap();
    assert_eq!(c.ended("r4", RingEnd::Declined, t0()), OnEnded::Tell);
}

#[test]
fn an_outgoing_ring_that_ends_is_told_and_a_late_accept_is_only_held() {
    let mut c = Machine::default();
    c.ringing("r1", user("bob"));
    assert_eq!(c.ended("r1", RingEnd::Declined, t0()), OnEnded::Tell);
    assert_eq!(c.callee("r1"), None);
    assert_eq!(
        c.ring_accepted("r1", "late", Instant::now()),
        OnAccepted::Held
    );
}

#[test]
fn finished_ids_are_bounded() {
    let mut c = Machine::default();
    for i in 0..FINISHED_KEPT + 5 {
        let id = format!("r{i}");
        c.start(&id, i as u32).unwrap();
        c.over(&id);
    }
    assert!(!c.in_use("r0"), "the oldest are forgotten");
    assert!(c.in_use(&format!("r{}", FINISHED_KEPT + 4)));
    // `over` for an id that was never a session remembers nothing.
    c.over("never");
    assert!(!c.in_use("never"));
}

#[test]
fn panic_forgets_every_ring_but_not_the_chats() {
    let mut c = Machine::default();
    c.ringing("out", user("bob"));
    c.ring_accepted("early", "x", Instant::now());
    c.incoming_ring("in", user("alice"), Key32([1; 32]))
        .unwrap();
    c.accepted_here("in").unwrap();
    c.start("chat", 9).unwrap();
    c.forget_rings();
    assert_eq!(c.callee("out"), None);
    assert_eq!(c.ringing("early", user("bob")), None);
    assert_eq!(c.connected("in"), OnConnected::NotAnswered);
    assert_eq!(c.waiting().count(), 0);
    assert_eq!(c.sessions().count(), 1, "chats end through their drivers");
}

#[test]
fn a_ring_waits_for_an_answer_here_until_it_is_answered() {
    let mut c = Machine::default();
    c.incoming_ring("r1", user("alice"), Key32([1; 32]))
        .unwrap();
    c.incoming_ring("r2", user("carol"), Key32([2; 32]))
        .unwrap();
    let waiting = |c: &Machine| {
        let mut w: Vec<String> = c.waiting().map(|(id, _)| id.clone()).collect();
        w.sort();
        w
    };
    assert_eq!(waiting(&c), ["r1", "r2"]);
    c.accepted_here("r1").unwrap();
    assert_eq!(waiting(&c), ["r2"], "answered here: no longer offered");
    c.declined_here("r2").unwrap();
    assert!(waiting(&c).is_empty());
    // The answered one still connects.
    assert!(matches!(c.connected("r1"), OnConnected::Check { .. }));
}

/// A ring made or answered for a group says so when it connects: it becomes that group's link or
/// nothing (a hostile server holding the connect back until the group let go of the ring must not
/// get a chat of its own out of it).
#[test]
fn a_group_s_ring_is_marked_as_such_both_ways() {
    let mut c = Machine::default();
    assert_eq!(c.ringing_as("out", user("bob"), true), None);
    assert_eq!(
        c.ring_accepted("out", "bob's device", Instant::now()),
        OnAccepted::Check {
            callee: user("bob"),
            accept: "bob's device",
            group: true,
        }
    );
    c.incoming_ring("in", user("carol"), Key32([3; 32]))
        .unwrap();
    assert_eq!(c.accepted_for_group("in"), Ok(user("carol")));
    assert_eq!(
        c.connected("in"),
        OnConnected::Check {
            caller: user("carol"),
            ak: Key32([3; 32]),
            group: true,
        }
    );
}
