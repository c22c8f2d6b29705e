//! Liveness rules on a fake clock: each case is a script of inputs at given seconds and the
//! effects every tick must return.

use std::time::{Duration, Instant};

use super::{
    Do, Liveness, SetupFailure, BULK_SILENCE, PEER_SILENCE, RESTART_WINDOW, SETUP_TIMEOUT,
};
use crate::events::EndReason;

/// One input at a time offset (milliseconds since the session started).
#[derive(Clone, Copy)]
enum Step {
    Open,
    Heard,
    Bulk,
    RouteClosed,
    /// A tick with (busy, ice_connected), and what it must return.
    Tick(bool, bool, &'static [Do]),
}

fn run(caller: bool, script: &[(u64, Step)]) -> Liveness {
    let t0 = Instant::now();
    let mut live = Liveness::new(caller, t0);
    for (i, (ms, step)) in script.iter().enumerate() {
        let now = t0 + Duration::from_millis(*ms);
        match *step {
            Step::Open => {
                live.opened(now);
            }
            Step::Heard => live.heard(now),
            Step::Bulk => live.bulk(now),
            Step::RouteClosed => live.route_closed(now),
            Step::Tick(busy, ice, want) => {
                assert_eq!(live.tick(now, busy, ice), want, "step {i} at {ms} ms");
            }
        }
    }
    live
}

const S: u64 = 1000;
use Step::*;

#[test]
fn setup_fails_after_its_timeout_and_not_before() {
    let limit = SETUP_TIMEOUT.as_millis() as u64;
    run(
        true,
        &[
            (limit, Tick(false, false, &[])),
            (
                limit + 1,
                Tick(false, false, &[Do::Fail(SetupFailure::TimedOut)]),
            ),
        ],
    );
}

#[test]
fn a_route_closed_during_setup_fails_after_the_grace() {
    run(
        false,
        &[
            (S, RouteClosed),
            (3 * S, Tick(false, false, &[])),
            (
                3 * S + 1,
                Tick(false, false, &[Do::Fail(SetupFailure::PeerLeft)]),
            ),
        ],
    );
}

#[test]
fn a_channel_that_opens_within_the_grace_goes_on_without_the_route() {
    let live = run(
        false,
        &[
            (S, RouteClosed),
            (2 * S, Open),
            (4 * S, Tick(false, false, &[Do::Ping])),
        ],
    );
    assert!(!live.route_alive());
}

#[test]
fn an_open_chat_pings_every_two_seconds() {
    run(
        true,
        &[
            (0, Open),
            (S, Tick(false, false, &[])),
            (2 * S, Tick(false, false, &[Do::Ping])),
            (3 * S, Heard),
            (3 * S, Tick(false, false, &[])),
            (4 * S, Tick(false, false, &[Do::Ping])),
        ],
    );
}

#[test]
fn silence_starts_the_repair_and_the_caller_offers_restarts_every_three_seconds() {
    let quiet = PEER_SILENCE.as_millis() as u64 + 1;
    run(
        true,
        &[
            (0, Open),
            (
                quiet,
                Tick(
                    false,
                    false,
                    &[Do::Reconnecting, Do::OfferRestart, Do::Ping],
                ),
            ),
            (quiet + S, Tick(false, false, &[])),
            (
                quiet + 3 * S,
                Tick(false, false, &[Do::OfferRestart, Do::Ping]),
            ),
        ],
    );
}

#[test]
fn a_restart_that_found_a_path_is_left_to_settle() {
    let quiet = PEER_SILENCE.as_millis() as u64 + 1;
    run(
        true,
        &[
            (0, Open),
            (
                quiet,
                Tick(false, true, &[Do::Reconnecting, Do::OfferRestart, Do::Ping]),
            ),
            // ICE connected again: no new offer, though the retry time has come.
            (quiet + 4 * S, Tick(false, true, &[Do::Ping])),
            (quiet + 5 * S, Tick(false, false, &[Do::OfferRestart])),
        ],
    );
}

#[test]
fn the_callee_repairs_without_offering() {
    let quiet = PEER_SILENCE.as_millis() as u64 + 1;
    run(
        false,
        &[
            (0, Open),
            (quiet, Tick(false, false, &[Do::Reconnecting, Do::Ping])),
            (quiet + 3 * S, Tick(false, false, &[Do::Ping])),
        ],
    );
}

#[test]
fn the_chat_ends_when_the_repair_window_runs_out() {
    let window = (PEER_SILENCE + RESTART_WINDOW).as_millis() as u64;
    run(
        false,
        &[
            (0, Open),
            (window, Tick(false, false, &[Do::Reconnecting, Do::Ping])),
            (
                window + 1,
                Tick(false, false, &[Do::End(EndReason::PeerLost)]),
            ),
        ],
    );
}

#[test]
fn without_a_route_silence_ends_the_chat_at_once() {
    let quiet = PEER_SILENCE.as_millis() as u64 + 1;
    run(
        true,
        &[
            (0, Open),
            (S, RouteClosed),
            (quiet, Tick(false, false, &[Do::End(EndReason::PeerLost)])),
        ],
    );
}

#[test]
fn moving_attachments_allow_the_longer_silence() {
    let quiet = PEER_SILENCE.as_millis() as u64 + 1;
    let bulk = BULK_SILENCE.as_millis() as u64;
    // A transfer in flight, or bytes that moved within the bulk limit.
    run(
        true,
        &[
            (0, Open),
            (2 * S, Bulk),
            (quiet + S, Tick(false, false, &[Do::Ping])),
        ],
    );
    run(true, &[(0, Open), (quiet, Tick(true, false, &[Do::Ping]))]);
    run(
        true,
        &[
            (0, Open),
            (
                bulk + 1,
                Tick(true, false, &[Do::Reconnecting, Do::OfferRestart, Do::Ping]),
            ),
        ],
    );
}

#[test]
fn a_frame_ends_the_break_once_and_the_next_break_is_told_again() {
    let quiet = PEER_SILENCE.as_millis() as u64 + 1;
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut live = Liveness::new(true, t0);
    live.opened(t0);
    live.heard(at(S));
    assert!(!live.resumed(), "no break to end");
    live.tick(at(S + quiet), false, false);
    live.heard(at(S + quiet + 10));
    assert!(live.resumed(), "the break ends");
    assert!(!live.resumed(), "once");
    // A new break is told and offered again at once (the last restart was forgotten).
    assert_eq!(
        live.tick(at(2 * S + 2 * quiet), false, false)[..2],
        [Do::Reconnecting, Do::OfferRestart]
    );
}

#[test]
fn the_callee_is_told_of_a_restart_once_per_break() {
    let mut live = Liveness::new(false, Instant::now());
    live.opened(Instant::now());
    assert!(live.restart_offered());
    assert!(!live.restart_offered());
    assert!(live.resumed());
    assert!(live.restart_offered());
}

#[test]
fn opening_twice_is_once() {
    let t0 = Instant::now();
    let mut live = Liveness::new(true, t0);
    assert!(live.opened(t0));
    assert!(!live.opened(t0 + Duration::from_secs(1)));
    live.closed();
    assert!(!live.is_open());
}
