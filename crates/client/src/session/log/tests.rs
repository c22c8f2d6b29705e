//! The chat log's caps and timers on a fake clock.

use std::time::{Duration, Instant};

use anonchat_proto::frames::SecretText;

use super::ChatLog;
use crate::quota::ChatLimits;

fn text(s: &str) -> SecretText {
    SecretText::new(s.to_string())
}

fn log(max_lines: usize, max_log_bytes: usize) -> ChatLog {
    ChatLog::new(ChatLimits {
        max_lines,
        max_log_bytes,
        ..ChatLimits::default()
    })
}

fn ids(log: &ChatLog) -> Vec<u64> {
    log.lines().iter().map(|l| l.id).collect()
}

#[test]
fn the_oldest_lines_go_first_past_the_line_cap() {
    let t = Instant::now();
    let mut l = log(3, 1000);
    for id in 1..=3 {
        assert!(l.push(id, true, text("hi"), t).is_empty());
    }
    assert_eq!(l.push(4, false, text("hi"), t), vec![1]);
    assert_eq!(ids(&l), vec![2, 3, 4]);
}

#[test]
fn the_oldest_lines_go_first_past_the_byte_cap_and_an_oversized_line_goes_too() {
    let t = Instant::now();
    let mut l = log(100, 10);
    l.push(1, true, text("aaaa"), t);
    l.push(2, true, text("bbbb"), t);
    assert_eq!(l.push(3, true, text("cccc"), t), vec![1]);
    assert_eq!(ids(&l), vec![2, 3]);
    // A line over the whole cap wipes everything, itself included: nothing stays over the cap.
    assert_eq!(
        l.push(4, true, text("x".repeat(11).as_str()), t),
        vec![2, 3, 4]
    );
    assert!(ids(&l).is_empty());
    assert!(
        l.push(5, true, text("ok"), t).is_empty(),
        "the byte count was kept right"
    );
}

#[test]
fn without_a_timer_nothing_expires() {
    let t = Instant::now();
    let mut l = log(10, 1000);
    l.push(1, true, text("a"), t);
    assert_eq!(l.next_expiry(), None);
    assert!(l.expire(t + Duration::from_secs(86_400)).is_empty());
}

#[test]
fn a_timer_applies_to_lines_made_after_it_and_each_expires_on_its_own() {
    let t = Instant::now();
    let s = |n: u64| t + Duration::from_secs(n);
    let mut l = log(10, 1000);
    l.push(1, true, text("before"), t);
    l.set_timer(30);
    l.push(2, true, text("a"), s(0));
    l.push(3, false, text("b"), s(10));
    assert_eq!(l.expiry_from(s(5)), Some(s(35)));
    assert_eq!(l.next_expiry(), Some(s(30)));
    assert!(l.expire(s(29)).is_empty());
    assert_eq!(l.expire(s(30)), vec![2], "at the instant, not after");
    assert_eq!(l.next_expiry(), Some(s(40)));
    assert_eq!(l.expire(s(100)), vec![3]);
    assert_eq!(ids(&l), vec![1], "the line from before the timer stays");
    // Turned off: new lines stay.
    l.set_timer(0);
    l.push(4, true, text("c"), s(100));
    assert_eq!(l.next_expiry(), None);
}

#[test]
fn expiry_keeps_the_byte_count_right() {
    let t = Instant::now();
    let mut l = log(100, 8);
    l.set_timer(5);
    l.push(1, true, text("aaaa"), t);
    l.set_timer(0);
    l.push(2, true, text("bbbb"), t);
    assert_eq!(l.expire(t + Duration::from_secs(5)), vec![1]);
    assert!(
        l.push(3, true, text("cccc"), t).is_empty(),
        "room for four bytes again"
    );
}

#[test]
fn clear_wipes_every_line() {
    let t = Instant::now();
    let mut l = log(10, 1000);
    l.set_timer(60);
    l.push(1, true, text("a"), t);
    l.clear();
    assert!(l.lines().is_empty());
    assert_eq!(l.next_expiry(), None);
}
