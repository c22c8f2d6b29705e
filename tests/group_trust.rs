//! A group admin's roster never overrides this user's own trust (P8, issue 35 item 3): a member
//! this user blocked gets no link — neither rung nor answered — and the user is told; the rest of
//! the group goes on. Real server and CLI processes.

use anonchat_e2e::group::people;
use anonchat_e2e::server::Server;
use serde_json::{json, Value};

fn connected_to(who: &str) -> impl Fn(&Value) -> bool {
    let who = who.to_string();
    move |v| v["event"] == "group_member" && v["state"] == "connected" && v["username"] == who
}

/// Seen on the release binaries: a user who blocked mallory was rung and connected to her
/// because an admin added her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_member_gets_no_link_whatever_the_admin_s_roster_says() {
    let server = Server::start().await;
    let (mut people, _home) = people(&server.url(), 3, &[]).await;
    let names: Vec<String> = people.iter().map(|(_, n)| n.clone()).collect();
    let (admin, bob, mallory) = (names[0].clone(), names[1].clone(), names[2].clone());
    people[1]
        .0
        .ok(json!({"cmd": "block", "username": mallory}))
        .await;

    let started = people[0]
        .0
        .ok(json!({"cmd": "group_start", "members": [bob, mallory]}))
        .await;
    assert!(started["group"].is_string(), "{started}");
    for (cli, _) in people.iter_mut().skip(1) {
        let ring = cli.expect_event("incoming_ring").await;
        assert_eq!(ring["from"], admin.as_str());
        cli.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
            .await;
        cli.expect_event("group_joined").await;
        cli.expect("linked with the admin", connected_to(&admin))
            .await;
    }
    let bob_cli = &mut people[1].0;
    let m = mallory.clone();
    let told = bob_cli
        .expect("told why there is no link", move |v| {
            v["event"] == "warning"
                && v["message"].as_str().is_some_and(|t| {
                    t.contains(&format!("no group link with {m}")) && t.contains("blocked")
                })
        })
        .await;
    let m = mallory.clone();
    bob_cli
        .expect("mallory shown gone", move |v| {
            v["event"] == "group_member" && v["state"] == "gone" && v["username"] == m.as_str()
        })
        .await;
    assert!(
        !bob_cli.seen(connected_to(&mallory)),
        "no link with a blocked member: {told}"
    );
    assert!(
        !bob_cli.seen(|v| v["event"] == "incoming_ring" && v["invite"] != true),
        "no ring from her was shown"
    );

    // The rest of the group goes on: the admin's text reaches both.
    let gid = started["group"].as_str().expect("group").to_string();
    let text = anonchat_e2e::canary();
    people[0]
        .0
        .ok(json!({"cmd": "group_send", "group": gid, "text": text}))
        .await;
    for (cli, _) in people.iter_mut().skip(1) {
        let want = text.clone();
        cli.expect("the admin's text", move |v| {
            v["event"] == "message" && v["text"] == want.as_str()
        })
        .await;
    }
}
