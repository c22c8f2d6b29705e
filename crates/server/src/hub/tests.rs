//! The hub's answers are functions of the time handed in (`Now`), so time-dependent rules are
//! tested here by passing instants, not by sleeping.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_proto::wire::ClientMsg;
use anonchat_proto::{Caps, DeviceCert, Key32, Sig64, Username};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::{Hub, HubConfig, Refusal, Session, RECENTLY_ACTIVE};
use crate::clock::Now;
use crate::store::Store;

async fn hub(backoff_after: u32) -> Hub {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let cfg = HubConfig {
        ring_timeout: Duration::from_secs(30),
        wake_intents: true,
        quiet: true,
        gate_per_minute: 600,
        gate_burst: 600,
        gate_floor: Duration::ZERO,
        contact_pow_bits: 8,
        backoff_after,
        pow_after: 0,
        metrics: Arc::new(crate::metrics::Metrics::default()),
        turn: crate::turn::Turn::new(vec![], vec![], None, Duration::from_secs(600)).unwrap(),
        cluster: None,
    };
    Hub::new(store, Zeroizing::new([7; 32]), cfg)
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

fn at(t0: Instant, after: Duration) -> Now {
    Now {
        at: t0 + after,
        unix: 1_800_000_000 + after.as_secs(),
    }
}

fn cert(username: &Username, device_id: &str) -> DeviceCert {
    DeviceCert {
        v: 1,
        username: username.clone(),
        device_id: device_id.to_string(),
        dk_ed25519: Key32([1; 32]),
        dk_curve25519: Key32([2; 32]),
        caps: Caps::default(),
        created_at: 1_800_000_000,
        sig: Sig64([3; 64]),
    }
}

#[tokio::test]
async fn recently_active_lasts_fifteen_minutes_from_when_the_last_device_left() {
    let hub = hub(0).await;
    let (alice, t0) = (user("alice"), Instant::now());
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let token = CancellationToken::new();
    let attached = hub
        .attach(
            alice.clone(),
            cert(&alice, "dev-a"),
            ip,
            &token,
            at(t0, Duration::ZERO),
        )
        .await;
    assert_eq!(
        hub.presence_anywhere(&alice, at(t0, Duration::ZERO)).await,
        (true, true)
    );
    let left = Duration::from_secs(60);
    hub.detach(&attached.session, at(t0, left)).await;
    let just_before = left + RECENTLY_ACTIVE - Duration::from_millis(1);
    assert_eq!(
        hub.presence_anywhere(&alice, at(t0, just_before)).await,
        (false, true)
    );
    let after = left + RECENTLY_ACTIVE;
    assert_eq!(
        hub.presence_anywhere(&alice, at(t0, after)).await,
        (false, false)
    );
    // The ticker forgets it at the same moment.
    hub.tick(at(t0, after));
    assert!(hub.lock().last_seen.is_empty());
}

#[tokio::test]
async fn a_friend_request_waits_its_ttl_from_the_time_it_was_made() {
    let hub = hub(0).await;
    let (a, b, t0) = (user("alice"), user("bobby"), Instant::now());
    let made = Duration::from_secs(5);
    hub.keep_request(&a, &b, Sig64([9; 64]), at(t0, made))
        .await
        .unwrap();
    let ttl = crate::requests::TTL;
    let last = made + ttl - Duration::from_millis(1);
    assert_eq!(
        hub.waiting_request(&a, &b, at(t0, last)).await,
        Some(Sig64([9; 64]))
    );
    assert_eq!(hub.waiting_request(&a, &b, at(t0, made + ttl)).await, None);
}

#[tokio::test]
async fn the_failure_backoff_counts_down_from_the_time_handed_in() {
    let hub = hub(3).await;
    let s = Session {
        device_id: "dev-m".into(),
        username: user("mallory"),
        conn_id: 1,
        ip: "127.0.0.1".parse().unwrap(),
    };
    // In the past, so the gated answers' hold (to a floor of zero after `now`) does not wait.
    let t0 = Instant::now()
        .checked_sub(Duration::from_secs(60))
        .unwrap_or_else(Instant::now);
    for _ in 0..5 {
        hub.record_failure(&s, at(t0, Duration::ZERO)).await;
    }
    let lookup = || ClientMsg::Lookup {
        username: user("nobody"),
        code: None,
        pow: None,
    };
    // Five failures with a backoff after three: four seconds from the last one.
    let wait = |r: Result<_, Refusal>| match r {
        Err(Refusal::RateLimited(Some(why))) => why,
        other => panic!("expected the backoff, got {:?}", other.map(|_| ())),
    };
    let early = hub
        .handle(&s, lookup(), at(t0, Duration::from_secs(1)))
        .await;
    assert_eq!(wait(early), "too many unanswered requests; wait 3 s");
    // Once it has passed the gate answers (not found), and that failure starts a longer wait.
    let later = Duration::from_secs(4);
    let gated = hub.handle(&s, lookup(), at(t0, later)).await;
    assert!(
        matches!(gated, Err(Refusal::NotFound)),
        "{:?}",
        gated.map(|_| ())
    );
    let next = hub
        .handle(&s, lookup(), at(t0, later + Duration::from_secs(1)))
        .await;
    assert_eq!(wait(next), "too many unanswered requests; wait 7 s");
}
