//! "Hide my IP" through a real coturn on loopback: the server mints short-lived TURN credentials in
//! coturn's REST scheme, clients relay every chat by default when a relay exists, direct mode is a
//! choice, credentials are renewed when they expire, and a relay that refuses means no chat rather
//! than a direct one. (Addresses across NATs: tests/nat.rs.)

use anonchat_e2e::cli::{befriend, open_session_events, pair, say, Pair};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::turn::Coturn;
use anonchat_e2e::TempDir;
use serde_json::{json, Value};

async fn server_with_relay(turn: &Coturn, secret_file: &std::path::Path, ttl: u64) -> Server {
    Server::start_with(
        ServerOpts {
            extra: [
                turn.server_args(secret_file),
                vec!["--turn-ttl-secs".into(), ttl.to_string()],
            ]
            .concat(),
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await
}

async fn friends(server: &Server) -> Pair {
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    p
}

fn local(open: &Value) -> &str {
    open["route"]["local"].as_str().unwrap_or_default()
}

async fn leave(p: &mut Pair, session: &str) {
    p.a.ok(json!({"cmd": "leave", "session": session})).await;
    p.a.expect_event("session_ended").await;
    p.b.expect_event("session_ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_relay_chats_hide_the_ip_by_default_and_direct_is_a_choice() {
    let turn = Coturn::start("relay-secret-1");
    let server = server_with_relay(&turn, &turn.secret_file, 3600).await;
    let mut p = friends(&server).await;

    let net = p.a.ok(json!({"cmd": "network"})).await;
    assert_eq!(net["relay_available"], true, "{net}");
    assert_eq!(net["hide_ip"], true, "on by default: {net}");
    assert_eq!(net["ip_hidden"], true, "{net}");

    // Both sides relayed: each one's only candidate is its relay address.
    let (id, oa, ob) = open_session_events(&mut p.a, &mut p.b, &p.b_name).await;
    assert_eq!(local(&oa), "relay", "{oa}");
    assert_eq!(local(&ob), "relay", "{ob}");
    assert_eq!(oa["route"]["remote"], "relay", "{oa}");
    say(&mut p.a, &mut p.b, &id).await;
    say(&mut p.b, &mut p.a, &id).await;
    leave(&mut p, &id).await;

    // coturn really carried it, under credentials that name nobody.
    let log = turn.log();
    assert!(log.contains("ALLOCATE processed, success"), "{log}");
    assert!(
        !log.contains(&p.a_name) && !log.contains(&p.b_name),
        "{log}"
    );

    // Only one side hides: it is still relayed on that side; the other connects from its own
    // address to the relay.
    let off = p.b.ok(json!({"cmd": "set_hide_ip", "hide": false})).await;
    assert_eq!(off["ip_hidden"], false, "{off}");
    let (id, oa, ob) = open_session_events(&mut p.a, &mut p.b, &p.b_name).await;
    assert_eq!(local(&oa), "relay", "{oa}");
    assert_ne!(local(&ob), "relay", "{ob}");
    say(&mut p.a, &mut p.b, &id).await;
    leave(&mut p, &id).await;

    // Both direct: no relay in the path (host candidates on this machine).
    p.a.ok(json!({"cmd": "set_hide_ip", "hide": false})).await;
    let (id, oa, ob) = open_session_events(&mut p.a, &mut p.b, &p.b_name).await;
    assert_ne!(local(&oa), "relay", "{oa}");
    assert_ne!(local(&ob), "relay", "{ob}");
    say(&mut p.b, &mut p.a, &id).await;
    leave(&mut p, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_turn_credentials_are_replaced_before_the_next_chat() {
    let turn = Coturn::start("relay-secret-2");
    let ttl = 2;
    let server = server_with_relay(&turn, &turn.secret_file, ttl).await;
    let mut p = friends(&server).await;
    let (id, oa, _) = open_session_events(&mut p.a, &mut p.b, &p.b_name).await;
    assert_eq!(local(&oa), "relay", "{oa}");
    leave(&mut p, &id).await;

    // Let every credential handed out so far run out (coturn refuses an expired one).
    tokio::time::sleep(std::time::Duration::from_secs(ttl + 1)).await;
    let (id, oa, ob) = open_session_events(&mut p.a, &mut p.b, &p.b_name).await;
    assert_eq!(local(&oa), "relay", "{oa}");
    assert_eq!(local(&ob), "relay", "{ob}");
    say(&mut p.a, &mut p.b, &id).await;
    leave(&mut p, &id).await;

    // Each session's allocations used credentials of their own.
    let log = turn.log();
    let users: std::collections::BTreeSet<&str> = log
        .match_indices("user <")
        .filter_map(|(i, _)| log[i + 6..].split('>').next())
        .filter(|u| !u.is_empty())
        .collect();
    assert!(users.len() >= 4, "two sessions × two sides: {users:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_means_no_chat_not_a_direct_one() {
    let turn = Coturn::start("the-real-secret");
    // The server was given another secret: coturn refuses every credential it mints.
    let wrong = TempDir::new("wrong-secret");
    let wrong_file = wrong.0.join("turn.secret");
    std::fs::write(&wrong_file, "not-the-secret").unwrap();
    let server = server_with_relay(&turn, &wrong_file, 3600).await;
    let mut p = friends(&server).await;
    let ring = p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let incoming = p.b.expect_event("incoming_ring").await;
    p.b.ok(json!({"cmd": "answer", "ring_id": incoming["ring_id"], "accept": true}))
        .await;
    // Both sides give up at once and never open; the caller says why (the callee may first
    // learn that the caller left).
    let mut reasons = Vec::new();
    for side in [&mut p.a, &mut p.b] {
        let ended = side
            .expect("the session given up", |v| {
                v["event"] == "session_open" || v["event"] == "session_failed"
            })
            .await;
        assert_eq!(ended["event"], "session_failed", "{ended}");
        assert_eq!(ended["session"], ring["ring_id"], "{ended}");
        reasons.push(ended["reason"].as_str().unwrap_or_default().to_string());
    }
    assert!(reasons[0].contains("relay refused"), "{reasons:?}");
}
