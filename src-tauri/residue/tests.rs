use std::time::{Duration, Instant};

use anonchat_client::events::{GroupEndReason, Route};
use anonchat_client::{EndReason, Event};
use anonchat_proto::Caps;

use super::{Do, GroupEnd, Note, Residue, HANDOVER};

fn open(session: &str) -> Event {
    Event::SessionOpen {
        session: session.into(),
        peer: "bob".into(),
        peer_caps: Caps {
            screen_protection: false,
        },
        peer_unprotected: true,
        route: Route {
            local: "host".into(),
            remote: "host".into(),
        },
    }
}

fn ended(session: &str, reason: EndReason) -> Event {
    Event::SessionEnded {
        session: session.into(),
        reason,
        wiped: true,
    }
}

fn joined(group: &str) -> Event {
    Event::GroupJoined {
        group: group.into(),
        admin: "bob".into(),
        members: vec!["bob".into()],
        timer: 0,
    }
}

fn group_ended(group: &str, reason: GroupEndReason) -> Event {
    Event::GroupEnded {
        group: group.into(),
        reason,
    }
}

fn asked(now: Instant) -> Option<Do> {
    Some(Do::AskHandover {
        deadline: now + HANDOVER,
    })
}

#[test]
fn the_last_chat_ending_asks_for_the_handover_then_replaces_the_page() {
    let (mut r, t) = (Residue::default(), Instant::now());
    assert_eq!(r.event(&open("a"), t), None);
    assert_eq!(r.event(&ended("a", EndReason::PeerLeft), t), asked(t));
    assert_eq!(r.handed_over(), Some(Do::Replace(Note::Chat)));
    // Once: a second answer, or the deadline, changes nothing.
    assert_eq!(r.handed_over(), None);
    assert_eq!(r.tick(t + HANDOVER), None);
}

#[test]
fn a_page_that_does_not_answer_is_replaced_at_the_deadline() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&open("a"), t);
    assert_eq!(r.event(&ended("a", EndReason::Left), t), asked(t));
    assert_eq!(r.tick(t + HANDOVER - Duration::from_millis(1)), None);
    assert_eq!(r.tick(t + HANDOVER), Some(Do::Replace(Note::Chat)));
    assert_eq!(r.handed_over(), None, "a late answer changes nothing");
}

#[test]
fn nothing_is_replaced_while_another_chat_is_open() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&open("a"), t);
    r.event(&open("b"), t);
    assert_eq!(r.event(&ended("a", EndReason::PeerLeft), t), None);
    assert_eq!(r.event(&ended("b", EndReason::Flooded), t), asked(t));
    assert_eq!(r.handed_over(), Some(Do::Replace(Note::Flooded)));
}

#[test]
fn a_chat_opening_during_the_handover_calls_the_replacement_off() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&open("a"), t);
    r.event(&ended("a", EndReason::PeerLeft), t);
    assert_eq!(r.event(&open("b"), t), Some(Do::Release));
    assert_eq!(r.handed_over(), None);
    assert_eq!(r.tick(t + HANDOVER), None);
    // It ending asks again, and the page is replaced then.
    let later = t + Duration::from_secs(1);
    assert_eq!(
        r.event(&ended("b", EndReason::PeerLeft), later),
        asked(later)
    );
    assert_eq!(r.tick(later + HANDOVER), Some(Do::Replace(Note::Chat)));
}

#[test]
fn a_group_waits_for_its_last_link_and_its_end_and_says_so() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&joined("g"), t);
    r.event(&open("link1"), t);
    r.event(&open("link2"), t);
    assert_eq!(r.event(&ended("link1", EndReason::PeerLeft), t), None);
    assert_eq!(
        r.event(&group_ended("g", GroupEndReason::Left), t),
        None,
        "a link is still open"
    );
    assert_eq!(r.event(&ended("link2", EndReason::Left), t), asked(t));
    // The group's ending is the note, not its links'.
    assert_eq!(
        r.handed_over(),
        Some(Do::Replace(Note::Group(GroupEnd::Left)))
    );
    // And a group that ends after its links.
    r.event(&joined("h"), t);
    r.event(&open("link3"), t);
    assert_eq!(r.event(&ended("link3", EndReason::PeerLeft), t), None);
    assert_eq!(
        r.event(&group_ended("h", GroupEndReason::Empty), t),
        asked(t)
    );
    assert_eq!(
        r.handed_over(),
        Some(Do::Replace(Note::Group(GroupEnd::Empty)))
    );
}

#[test]
fn a_page_that_showed_no_chat_is_not_replaced() {
    let (mut r, t) = (Residue::default(), Instant::now());
    // A ring that failed, a session the page never saw open, a group never joined.
    assert_eq!(r.event(&ended("x", EndReason::PeerLeft), t), None);
    assert_eq!(r.event(&group_ended("g", GroupEndReason::Empty), t), None);
    assert_eq!(r.tick(t + HANDOVER), None);
    // Nor twice for one chat.
    r.event(&open("a"), t);
    r.event(&ended("a", EndReason::PeerLeft), t);
    assert_eq!(r.handed_over(), Some(Do::Replace(Note::Chat)));
    assert_eq!(r.event(&ended("a", EndReason::PeerLeft), t), None);
}

#[test]
fn a_panic_replaces_the_page_itself_and_its_echo_changes_nothing() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&joined("g"), t);
    r.event(&open("a"), t);
    r.event(&open("b"), t);
    r.event(&ended("b", EndReason::PeerLeft), t);
    r.replaced();
    assert_eq!(r.event(&group_ended("g", GroupEndReason::Left), t), None);
    assert_eq!(r.event(&ended("a", EndReason::Panic), t), None);
    assert_eq!(r.tick(t + HANDOVER), None);
    // A chat whose opening reached the machine after the panic's reset, and whose end is the
    // panic's: it is not left counted as open (which would keep every later page).
    r.event(&open("late"), t);
    assert_eq!(r.event(&ended("late", EndReason::Panic), t), None);
    r.event(&open("c"), t);
    assert_eq!(r.event(&ended("c", EndReason::PeerLeft), t), asked(t));
}

#[test]
fn a_panic_during_the_handover_calls_it_off() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&open("a"), t);
    r.event(&ended("a", EndReason::PeerLeft), t);
    r.replaced();
    assert_eq!(r.handed_over(), None);
    assert_eq!(r.tick(t + HANDOVER), None);
}

#[test]
fn a_quitting_app_starts_no_page() {
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&open("a"), t);
    r.event(&open("b"), t);
    r.event(&ended("a", EndReason::PeerLeft), t);
    r.quit();
    assert_eq!(r.event(&ended("b", EndReason::Left), t), None);
    assert_eq!(r.tick(t + HANDOVER), None);
    // Even after a panic's reset.
    r.replaced();
    r.event(&open("c"), t);
    assert_eq!(r.event(&ended("c", EndReason::Left), t), None);
    // And an ask already out is called off.
    let (mut r, t) = (Residue::default(), Instant::now());
    r.event(&open("a"), t);
    r.event(&ended("a", EndReason::Left), t);
    r.quit();
    assert_eq!(r.handed_over(), None);
    assert_eq!(r.tick(t + HANDOVER), None);
}
