//! Anti-abuse beyond the token buckets (DESIGN §5): a growing backoff after `not_found` answers, a
//! proof-of-work stamp after repeated failures and always with a code (STRICT first contact), and
//! clients that block a requester after repeated refusals or by hand.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anonchat_e2e::cli::{pair, Cli, Pair};
use anonchat_e2e::raw::{request, RawDevice, Ws};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::pow::{contact_resource, Stamp};
use anonchat_proto::Username;
use serde_json::{json, Value};

const POW_BITS: u8 = 8;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn stamp(from: &Username, to: &str) -> Value {
    let to = Username::parse(to).expect("name");
    json!(Stamp::mint_from(
        &contact_resource(from, &to),
        POW_BITS,
        now(),
        rand::random()
    ))
}

/// Looks `who` up until the server stops holding the request back; returns the answer and how long
/// the backoff lasted from `since`.
async fn lookup_when_allowed(
    ws: &mut Ws,
    id: &mut u64,
    msg: impl Fn() -> Value,
    since: Instant,
) -> (Value, Duration) {
    loop {
        *id += 1;
        let a = request(ws, *id, msg()).await;
        if a["code"] != "rate_limited" {
            return (a, since.elapsed());
        }
        let detail = a["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("wait"), "a backoff says how long: {a}");
        // Polling a backoff that is itself the subject: each try is refused until it ends.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_answers_bring_a_growing_backoff_then_proof_of_work() {
    let server = Server::start_with(
        ServerOpts {
            extra: vec![
                "--backoff-after".into(),
                "2".into(),
                "--pow-after".into(),
                "4".into(),
                "--contact-pow-bits".into(),
                POW_BITS.to_string(),
            ],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let (asker, target) = (
        RawDevice::new(&unique("ask")),
        RawDevice::new(&unique("tgt")),
    );
    asker.register(&url).await;
    target.register(&url).await;
    let _target_online = target.connect(&url).await;
    let mut ws = asker.connect(&url).await;
    let me = asker.username.clone();
    let mut id = 0;
    let ghost = |_: ()| json!({"t": "lookup", "username": unique("ghost")});

    // A code always needs a stamp, failures or not; a stamp pays once.
    let t = target.username.as_str();
    id += 1;
    let no_stamp = request(
        &mut ws,
        id,
        json!({"t": "lookup", "username": t, "code": "123456"}),
    )
    .await;
    assert_eq!(no_stamp["code"], "pow_required", "{no_stamp}");
    let paid = stamp(&me, t);
    id += 1;
    let with = request(
        &mut ws,
        id,
        json!({"t": "lookup", "username": t, "code": "123456", "pow": paid}),
    )
    .await;
    assert_eq!(
        with["t"], "user",
        "DEFAULT account: the code is not needed: {with}"
    );
    id += 1;
    let again = request(
        &mut ws,
        id,
        json!({"t": "lookup", "username": t, "code": "123456", "pow": paid}),
    )
    .await;
    assert_eq!(again["code"], "bad_request", "{again}");

    // Two failures are free; then 1 s, then 2 s before the next request is served.
    for _ in 0..2 {
        id += 1;
        assert_eq!(request(&mut ws, id, ghost(())).await["code"], "not_found");
    }
    let second = Instant::now();
    let (a, waited) = lookup_when_allowed(&mut ws, &mut id, || ghost(()), second).await;
    assert_eq!(a["code"], "not_found");
    assert!(
        waited >= Duration::from_millis(900),
        "first backoff ~1 s, was {waited:?}"
    );
    let third = Instant::now();
    let (a, waited) = lookup_when_allowed(&mut ws, &mut id, || ghost(()), third).await;
    assert_eq!(a["code"], "not_found");
    assert!(
        waited >= Duration::from_millis(1900),
        "second backoff ~2 s, was {waited:?}"
    );

    // Four failures: from now on every gated request carries a stamp, even without a code.
    let fourth = Instant::now();
    let (a, _) = lookup_when_allowed(
        &mut ws,
        &mut id,
        || json!({"t": "lookup", "username": t}),
        fourth,
    )
    .await;
    assert_eq!(a["code"], "pow_required", "{a}");
    id += 1;
    let a = request(
        &mut ws,
        id,
        json!({"t": "lookup", "username": t, "pow": stamp(&me, t)}),
    )
    .await;
    assert_eq!(a["t"], "user", "{a}");
    assert_eq!(a["online"], true);

    // Someone else from the same address is not held back: the address gets four times the room.
    let other = RawDevice::new(&unique("oth"));
    other.register(&url).await;
    let mut ws2 = other.connect(&url).await;
    let a = request(&mut ws2, 1, json!({"t": "lookup", "username": t})).await;
    assert_eq!(a["t"], "user", "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requesters_are_blocked_automatically_and_by_hand() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        b_profile,
        home,
        ..
    } = pair(&server.url()).await;

    // B declines three rings from A: A is blocked on B's side.
    for i in 0..3 {
        let ring = a.ok(json!({"cmd": "ring", "username": b_name})).await;
        let incoming = b.expect_event("incoming_ring").await;
        assert_eq!(incoming["ring_id"], ring["ring_id"]);
        b.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": false}))
            .await;
        let ended = a.expect_event("ring_ended").await;
        assert_eq!(ended["reason"], "declined", "ring {i}");
    }
    let blocked = b.expect_event("blocked").await;
    assert_eq!(blocked["username"], a_name.as_str());
    assert_eq!(blocked["automatic"], true);

    // Now A's rings and friend requests are refused without B being asked.
    let ring = a.ok(json!({"cmd": "ring", "username": b_name})).await;
    let ended = a.expect_event("ring_ended").await;
    assert_eq!(ended["ring_id"], ring["ring_id"]);
    assert_eq!(ended["reason"], "declined");
    a.ok(json!({"cmd": "add_friend", "username": b_name})).await;
    let friends = b.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"], json!([]));
    assert!(!b.seen(|v| v["event"] == "incoming_ring" || v["event"] == "friend_request"));

    // The block is kept in the (encrypted) profile across restarts; unblocking lets A through.
    b.quit().await;
    let mut b = Cli::start(&b_profile, &home.0, &server.url()).await;
    b.connect().await;
    let list = b.ok(json!({"cmd": "blocked"})).await;
    assert_eq!(list["blocked"], json!([a_name]));
    b.ok(json!({"cmd": "unblock", "username": a_name})).await;
    let ring = a.ok(json!({"cmd": "ring", "username": b_name})).await;
    let incoming = b.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], ring["ring_id"]);
    b.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": false}))
        .await;
    a.expect_event("ring_ended").await;

    // Blocking by hand works at once.
    b.ok(json!({"cmd": "block", "username": a_name})).await;
    let ring = a.ok(json!({"cmd": "ring", "username": b_name})).await;
    let ended = a.expect_event("ring_ended").await;
    assert_eq!(ended["ring_id"], ring["ring_id"]);
    assert!(!b.seen(|v| v["event"] == "incoming_ring"));
}
