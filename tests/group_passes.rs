//! Group passes (DESIGN §10, issue 35 item 8) with real processes: the server's gate between
//! members who are not friends, a fresh pass on every removal, followed by members however many
//! groups they are in, and the passes shared by instances on Redis and on a Redis Cluster.

use std::time::{Duration, Instant};

use anonchat_e2e::deployment::Deployment;
use anonchat_e2e::group::{expect_ended, expect_gone, people, people_on, say_to_all, start};
use anonchat_e2e::proxy::{proxied, Proxy};
use anonchat_e2e::unique;
use serde_json::{json, Value};

/// The distinct pass tokens the proxy saw in `t` messages (`group_join`, `group_leave`).
fn tokens(proxy: &Proxy, t: &str) -> Vec<String> {
    let mut all: Vec<String> = proxy
        .recorded_messages(t)
        .iter()
        .filter_map(|m| m["token"].as_str().map(str::to_string))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// A removed member knows the group's id and every pass it was given: it must not ring the members
/// still in through the server's gate — which passes a ring between holders of one token past
/// STRICT, blocks and "appear offline", and whose answer says who still holds it — from its own
/// device or any other (issue 35, item 8). The admin gives the others a fresh pass the removed
/// member never sees; they hold its token and give up the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_cannot_ring_the_others_through_the_pass_it_knew() {
    let (_server, proxy) = proxied(None).await;
    let (people, home) = people(&proxy.url(), 3, &[]).await;
    let mut g = start(people, home).await;
    let names = g.names();
    let (alice, bob, carol) = (names[0].clone(), names[1].clone(), names[2].clone());
    let gid = g.by(&alice).group.clone();
    let known = tokens(&proxy, "group_join");
    assert_eq!(
        known.len(),
        1,
        "one pass while no one was removed: {known:?}"
    );
    let old = known[0].clone();

    g.by(&alice)
        .cli
        .ok(json!({"cmd": "group_remove", "group": gid, "username": carol}))
        .await;
    expect_ended(g.by(&carol), "removed").await;
    // alice, bob and carol each give up the old token; alice and bob hold a new one.
    let t0 = Instant::now();
    while proxy
        .recorded_messages("group_leave")
        .iter()
        .filter(|m| m["token"] == old.as_str())
        .count()
        < 3
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the old pass was not given up by all three: {:?}",
            proxy.recorded_messages("group_leave")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = tokens(&proxy, "group_join");
    assert_eq!(now.len(), 2, "a fresh pass after the removal: {now:?}");

    // The removed member (any device of it: a fresh account here) joins the old token and rings
    // bob with it: the gate does not open, and bob hears nothing.
    let mallory = anonchat_e2e::raw::RawDevice::new(&unique("gone"));
    mallory.register(&proxy.url()).await;
    let mut ws = mallory.connect(&proxy.url()).await;
    let joined =
        anonchat_e2e::raw::request(&mut ws, 1, json!({"t": "group_join", "token": old})).await;
    assert_eq!(joined["t"], "ok", "{joined}");
    let ring = anonchat_e2e::raw::request(
        &mut ws,
        2,
        json!({"t": "ring", "to": bob.as_str(), "group": old}),
    )
    .await;
    assert_eq!(
        ring["code"], "not_found",
        "the old pass still opens the gate to bob: {ring}"
    );
    assert!(
        !g.by(&bob).cli.seen(|v| v["event"] == "incoming_ring"),
        "bob was rung through the old pass"
    );
    // The two left still talk.
    g.members.remove(2);
    say_to_all(&mut g, &alice).await;
}

/// A device holds at most 4 passes at the server (`group_pass.rs`). A member in 4 groups follows a
/// removal's fresh pass by giving up the old one first: before (join, then leave, unanswered) it
/// was refused the new token, then gave up the old one, held none, and never linked with a member
/// added later — the group split (found by the attack review of issue 35).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_in_four_groups_still_follows_a_removal_s_fresh_pass() {
    let (_server, proxy) = proxied(None).await;
    let (mut all, home) = people(&proxy.url(), 4, &[]).await;
    let (mut dave, dave_name) = all.pop().expect("dave");
    let names: Vec<String> = all.iter().map(|(_, n)| n.clone()).collect();
    let (alice, bob, carol) = (names[0].clone(), names[1].clone(), names[2].clone());
    let mut g = start(all, home).await;
    let gid = g.by(&alice).group.clone();
    // Three more groups of alice and bob: bob (and alice) now hold 4 passes.
    for _ in 0..3 {
        g.by(&alice)
            .cli
            .ok(json!({"cmd": "group_start", "members": [bob]}))
            .await;
        let b = g.by(&bob);
        let ring = b.cli.expect_event("incoming_ring").await;
        b.cli
            .ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
            .await;
        b.cli.expect_event("group_joined").await;
    }
    g.by(&alice)
        .cli
        .ok(json!({"cmd": "group_remove", "group": gid, "username": carol}))
        .await;
    let c = carol.clone();
    g.by(&bob)
        .cli
        .expect("carol gone for bob", move |v| {
            v["event"] == "group_member" && v["state"] == "gone" && v["username"] == c.as_str()
        })
        .await;
    g.by(&alice)
        .cli
        .ok(json!({"cmd": "group_add", "group": gid, "username": dave_name}))
        .await;
    let ring = dave.expect_event("incoming_ring").await;
    dave.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
        .await;
    dave.expect_event("group_joined").await;
    let refused: Vec<Value> = proxy
        .recorded_messages("error")
        .into_iter()
        .filter(|v| {
            v["detail"]
                .as_str()
                .is_some_and(|d| d.contains("as many groups"))
        })
        .collect();
    let b = bob.clone();
    dave.expect_within(
        Duration::from_secs(25),
        "bob's link (bob in 4 groups followed the fresh pass)",
        move |v| {
            v["event"] == "group_member" && v["state"] == "connected" && v["username"] == b.as_str()
        },
    )
    .await;
    assert!(refused.is_empty(), "a pass was refused: {refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_spread_over_three_instances_on_redis_form_the_group_and_text() {
    spread_group(Deployment::start(3, &[]).await).await;
}

/// The same over a Redis Cluster, where every group pass sits in a slot of its own (their
/// refresh is one pipeline per pass, sent together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_spread_over_three_instances_on_a_redis_cluster_form_the_group_and_text() {
    spread_group(Deployment::clustered(3, &[]).await).await;
}

async fn spread_group(d: Deployment) {
    let urls: Vec<String> = (0..3).map(|i| d.url(i)).collect();
    let (people, home) = people_on(&urls, 4, &[]).await;
    let mut g = start(people, home).await;
    for from in g.names() {
        say_to_all(&mut g, &from).await;
    }
    // One leaves: the others, on other instances, see it go and go on.
    let names = g.names();
    let gid = g.by(&names[3]).group.clone();
    g.by(&names[3])
        .cli
        .ok(json!({"cmd": "group_leave", "group": gid}))
        .await;
    for who in &names[..3] {
        expect_gone(g.by(who), &names[3], Duration::from_secs(3)).await;
    }
    g.members.remove(3);
    say_to_all(&mut g, &names[1]).await;
}
