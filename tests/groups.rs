//! Groups (DESIGN §10) with real processes: a server behind a recording proxy, one CLI per member,
//! a mesh of real WebRTC sessions over loopback with pairwise Olm. The members other than the
//! admin are friends of the admin only: the admin's signed roster introduces them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anonchat_e2e::cli::{enroll, Cli};
use anonchat_e2e::group::{expect_ended, expect_gone, people, say_to_all, start};
use anonchat_e2e::proxy::{proxied, rewrite, Dir, Proxy, Tamper};
use anonchat_e2e::{canary, unique, TempDir};
use serde_json::{json, Value};

/// How soon the others must see a member that vanished (the figure).
const GONE_WITHIN: Duration = Duration::from_secs(6);

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// No canary, roster or SDP ever crossed the server in clear (P1).
fn nothing_in_clear(proxy: &Proxy, canaries: &[String]) {
    let rec = proxy.recorded();
    for c in canaries {
        assert!(
            !contains(&rec, c),
            "a group text crossed the server in clear"
        );
    }
    for marker in [
        "group_roster",
        "\"epoch\"",
        "\"members\"",
        "a=fingerprint",
        "v=0\r\n",
    ] {
        assert!(
            !contains(&rec, marker),
            "{marker} crossed the server in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_members_who_are_not_friends_text_each_other_and_members_who_go_are_gone_for_the_rest()
{
    let (_server, proxy) = proxied(None).await;
    let (people, home) = people(&proxy.url(), 4, &[]).await;
    let mut g = start(people, home).await;
    let names = g.names();
    let (alice, bob, carol, dave) = (&names[0], &names[1], &names[2], &names[3]);

    // Every member's text reaches every other member, with a receipt from each.
    let mut canaries = Vec::new();
    for from in &names {
        canaries.push(say_to_all(&mut g, from).await);
    }
    // The member list: everyone connected, the admin's safety numbers from the pinned keys.
    let gid = g.by(alice).group.clone();
    let list = g.by(alice).cli.ok(json!({"cmd": "groups"})).await;
    let view = &list["groups"][0];
    assert_eq!(view["group"], gid.as_str());
    assert_eq!(view["is_admin"], true);
    let states: Vec<&str> = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["state"].as_str())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "connected").count(), 3);
    assert_eq!(states.iter().filter(|s| **s == "me").count(), 1);

    // dave is killed: the others see him gone within the figure, and go on.
    let dave_m = g.members.remove(3);
    dave_m.cli.kill().await;
    for who in [alice.as_str(), bob.as_str(), carol.as_str()] {
        let took = expect_gone(g.by(who), dave, GONE_WITHIN + Duration::from_secs(1)).await;
        println!("{who} saw the killed member gone after {took:?}");
        assert!(took <= GONE_WITHIN + Duration::from_millis(500), "{took:?}");
    }
    canaries.push(say_to_all(&mut g, bob).await);

    // bob leaves: his copy is wiped, the others see him go at once.
    let bob_gid = g.by(bob).group.clone();
    g.by(bob)
        .cli
        .ok(json!({"cmd": "group_leave", "group": bob_gid}))
        .await;
    expect_ended(g.by(bob), "left").await;
    for s in g.by(bob).links.clone().into_values() {
        let gone = g
            .by(bob)
            .cli
            .call(json!({"cmd": "history", "session": s}))
            .await;
        assert_eq!(gone["ok"], false, "bob's links are wiped");
    }
    for who in [alice.as_str(), carol.as_str()] {
        expect_gone(g.by(who), bob, Duration::from_secs(3)).await;
    }
    let mut bob_m = g.members.remove(1);
    canaries.push(say_to_all(&mut g, carol).await);
    let w = canaries.last().cloned().unwrap_or_default();
    assert!(
        !bob_m
            .cli
            .seen(move |v| v["event"] == "message" && v["text"] == w.as_str()),
        "a member who left receives nothing"
    );

    // The last two: carol leaves, and the group is over for alice too, wiped on both.
    let carol_gid = g.by(carol).group.clone();
    g.by(carol)
        .cli
        .ok(json!({"cmd": "group_leave", "group": carol_gid}))
        .await;
    expect_ended(g.by(carol), "left").await;
    expect_ended(g.by(alice), "empty").await;
    let link = g.by(alice).links[carol].clone();
    let gone = g
        .by(alice)
        .cli
        .call(json!({"cmd": "history", "session": link}))
        .await;
    assert_eq!(gone["ok"], false, "the admin's copy is wiped too");
    let list = g.by(alice).cli.ok(json!({"cmd": "groups"})).await;
    assert_eq!(list["groups"], json!([]));
    nothing_in_clear(&proxy, &canaries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_device_is_revoked_is_gone_for_the_rest_at_once() {
    let (_server, proxy) = proxied(None).await;
    let (mut people, home) = people(&proxy.url(), 3, &[]).await;
    // carol has a second device, which stays online (and is rung with the invite too).
    let carol_name = people[2].1.clone();
    let mut carol2 = Cli::start(&unique("pg2"), &home.0, &proxy.url()).await;
    enroll(&mut people[2].0, &mut carol2, &carol_name, false).await;
    carol2.connect().await;
    let in_group = people[2].0.ok(json!({"cmd": "devices"})).await["devices"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["this_device"] == true).cloned())
        .and_then(|d| d["device_id"].as_str().map(str::to_string))
        .expect("the device in the group");
    let mut g = start(people, home).await;
    let names = g.names();
    say_to_all(&mut g, &names[0]).await;
    carol2
        .ok(json!({"cmd": "revoke_device", "device_id": in_group}))
        .await;
    for who in &names[..2] {
        let took = expect_gone(g.by(who), &carol_name, GONE_WITHIN).await;
        println!("{who} saw the revoked member gone after {took:?}");
    }
    expect_ended(g.by(&carol_name), "left").await;
    g.by(&carol_name).cli.expect_event("device_revoked").await;
    g.members.remove(2);
    say_to_all(&mut g, &names[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_removes_a_member_who_can_then_neither_send_nor_receive() {
    let (_server, proxy) = proxied(None).await;
    let (people, home) = people(&proxy.url(), 3, &[]).await;
    let mut g = start(people, home).await;
    let names = g.names();
    let (alice, bob, carol) = (&names[0], &names[1], &names[2]);
    let gid = g.by(alice).group.clone();
    // Only the admin may remove.
    let bob_gid = g.by(bob).group.clone();
    let refused = g
        .by(bob)
        .cli
        .call(json!({"cmd": "group_remove", "group": bob_gid, "username": carol}))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");

    g.by(alice)
        .cli
        .ok(json!({"cmd": "group_remove", "group": gid, "username": carol}))
        .await;
    expect_ended(g.by(carol), "removed").await;
    for who in [alice.as_str(), bob.as_str()] {
        expect_gone(g.by(who), carol, Duration::from_secs(3)).await;
    }
    let carol_gid = g.by(carol).group.clone();
    let cannot = g
        .by(carol)
        .cli
        .call(json!({"cmd": "group_send", "group": carol_gid, "text": canary()}))
        .await;
    assert_eq!(
        cannot["ok"], false,
        "a removed member cannot send: {cannot}"
    );
    // The two left go on; the text reaches bob only.
    let text = canary();
    let sent = g
        .by(alice)
        .cli
        .ok(json!({"cmd": "group_send", "group": gid, "text": text}))
        .await;
    assert_eq!(
        sent["sent"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec![bob.clone()])
    );
    let want = text.clone();
    g.by(bob)
        .cli
        .expect("the text", move |v| {
            v["event"] == "message" && v["text"] == want.as_str()
        })
        .await;
    let w = text.clone();
    assert!(
        !g.by(carol)
            .cli
            .seen(move |v| v["event"] == "message" && v["text"] == w.as_str()),
        "the removed member receives nothing"
    );
    let list = g.by(bob).cli.ok(json!({"cmd": "groups"})).await;
    let members: Vec<&str> = list["groups"][0]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["username"].as_str())
        .collect();
    assert!(!members.contains(&carol.as_str()), "{list}");
    nothing_in_clear(&proxy, &[text]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_timer_expires_texts_on_every_member_and_files_and_photos_reach_all_byte_exact() {
    let fixtures = TempDir::new("group-files");
    let photo = fixtures.0.join("camera.png");
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    img.save(&photo).expect("camera fixture");
    let env = [("ANONCHAT_SYNTHETIC_CAMERA", photo.to_str().expect("utf-8"))];
    let (_server, proxy) = proxied(None).await;
    let (people, home) = people(&proxy.url(), 3, &env).await;
    let mut g = start(people, home).await;
    let names = g.names();
    let (alice, bob, carol) = (names[0].clone(), names[1].clone(), names[2].clone());
    let gid = g.by(&alice).group.clone();

    // A file, read once and sent to both, arrives byte-exact at each.
    let file = fixtures.0.join("notes.bin");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &bytes).expect("fixture");
    let sent = g
        .by(&alice)
        .cli
        .ok(json!({"cmd": "group_send_file", "group": gid, "path": file}))
        .await;
    let photo_sent = g
        .by(&alice)
        .cli
        .ok(json!({"cmd": "group_send_photo", "group": gid, "camera": 0}))
        .await;
    for answer in [&sent, &photo_sent] {
        // One transfer for the group: the same id (with one key and the chunks sealed once) on
        // every member's link.
        assert_eq!(
            answer["sent"][&bob]["id"], answer["sent"][&carol]["id"],
            "{answer}"
        );
    }
    let mut photos = Vec::new();
    for who in [&bob, &carol] {
        let m = g.by(who);
        let session = m.links[&alice].clone();
        for (what, id) in [
            ("file", sent["sent"][who]["id"].clone()),
            ("photo", photo_sent["sent"][who]["id"].clone()),
        ] {
            let s = session.clone();
            let want = id.clone();
            m.cli
                .expect(what, move |v| {
                    v["event"] == "file_received" && v["session"] == s && v["id"] == want
                })
                .await;
            let got = m
                .cli
                .ok(json!({"cmd": "attachment", "session": session, "id": id}))
                .await;
            let b64 = got["base64"].as_str().expect("bytes");
            let data = anonchat_proto::bytes::decode_b64(b64).expect("base64");
            if what == "file" {
                assert_eq!(data, bytes, "{who} got the file byte-exact");
            } else {
                photos.push(data);
            }
        }
    }
    assert_eq!(photos.len(), 2);
    assert_eq!(
        photos[0], photos[1],
        "one photo, the same bytes to everyone"
    );
    assert!(photos[0].starts_with(&[0xff, 0xd8]), "a JPEG");

    // The admin sets a group timer of 5 s: every member is told, and a text expires everywhere.
    g.by(&alice)
        .cli
        .ok(json!({"cmd": "group_timer", "group": gid, "seconds": 5}))
        .await;
    for who in [&alice, &bob, &carol] {
        let m = g.by(who);
        let group = m.group.clone();
        m.cli
            .expect("group_timer", move |v| {
                v["event"] == "group_timer" && v["group"] == group.as_str() && v["seconds"] == 5
            })
            .await;
    }
    // A member cannot change it on one link (a peer that sends the frame anyway is not heeded:
    // the session core's unit tests).
    let carol_link = g.by(&carol).links[&bob].clone();
    let refused = g
        .by(&carol)
        .cli
        .call(json!({"cmd": "set_timer", "session": carol_link, "seconds": 0}))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    let bob_link = g.by(&bob).links[&carol].clone();
    let refused = g
        .by(&bob)
        .cli
        .call(json!({"cmd": "set_timer", "session": bob_link, "seconds": 0}))
        .await;
    assert_eq!(refused["ok"], false, "{refused}");
    let text = say_to_all(&mut g, &bob).await;
    for who in [&alice, &bob, &carol] {
        let m = g.by(who);
        let sessions: Vec<String> = m.links.values().cloned().collect();
        for s in sessions {
            let history = m.cli.ok(json!({"cmd": "history", "session": s})).await;
            let lines = history["lines"].as_array().cloned().unwrap_or_default();
            let has = lines.iter().any(|l| l["text"] == text.as_str());
            if !has {
                continue;
            }
            let s2 = s.clone();
            m.cli
                .expect_within(Duration::from_secs(10), "expired", move |v| {
                    v["event"] == "expired" && v["session"] == s2
                })
                .await;
            let history = m.cli.ok(json!({"cmd": "history", "session": s})).await;
            let lines = history["lines"].as_array().cloned().unwrap_or_default();
            assert!(
                !lines.iter().any(|l| l["text"] == text.as_str()),
                "{who}: the text is wiped at the group's timer"
            );
        }
    }
    nothing_in_clear(&proxy, &[text]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cannot_slip_another_device_or_a_stranger_into_a_group() {
    // The "server" swaps a member's device for another device of the same account (a valid
    // certificate under the member's own key) when it connects that member's ring to another.
    let swap: Arc<Mutex<Option<(String, Value)>>> = Arc::default();
    let s2 = swap.clone();
    let tamper: Tamper = Arc::new(move |dir, text| {
        let Some((device, cert)) = s2.lock().expect("swap").clone() else {
            return text;
        };
        rewrite(dir, text, Dir::ToClient, "ring_connected", |v| {
            if v["peer"]["device_id"] == device.as_str() {
                v["peer"] = cert.clone();
            }
        })
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let (mut people, home) = people(&proxy.url(), 3, &[]).await;
    // bob enrolls a second device, then closes it: its certificate is genuine.
    let bob_name = people[1].1.clone();
    let mut bob2 = Cli::start(&unique("pg2"), &home.0, &proxy.url()).await;
    enroll(&mut people[1].0, &mut bob2, &bob_name, false).await;
    bob2.quit().await;
    let second = proxy
        .recorded_messages("enroll_approve")
        .first()
        .map(|m| m["cert"].clone())
        .expect("the second device's certificate");
    let first = people[1].0.ok(json!({"cmd": "devices"})).await["devices"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["this_device"] == true).cloned())
        .and_then(|d| d["device_id"].as_str().map(str::to_string))
        .expect("bob's first device id");
    *swap.lock().expect("swap") = Some((first, second));

    // alice starts the group; bob (older) rings carol, and carol is told the other device rings.
    let names: Vec<String> = people.iter().map(|(_, n)| n.clone()).collect();
    let (mut admin, alice) = people.remove(0);
    admin
        .ok(json!({"cmd": "group_start", "members": [names[1], names[2]]}))
        .await;
    let mut members = Vec::new();
    for (mut cli, name) in people {
        let ring = cli.expect_event("incoming_ring").await;
        cli.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
            .await;
        cli.expect_event("group_joined").await;
        members.push((cli, name));
    }
    let (carol, carol_name) = &mut members[1];
    let failed = carol
        .expect_within(Duration::from_secs(30), "the swapped device refused", |v| {
            v["event"] == "session_failed"
                && v["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("not the one the group's roster names"))
        })
        .await;
    println!("{carol_name}: {failed}");
    let bob = names[1].clone();
    assert!(
        !carol.seen(|v| v["event"] == "group_member"
            && v["state"] == "connected"
            && v["username"] == bob.as_str()),
        "no link to a device the roster does not name"
    );

    // A stranger's ring with the group's token (recorded from the real one), and a ring from a
    // member whose link is not awaited: declined, no session.
    let ring = proxy
        .recorded_messages("incoming_ring")
        .into_iter()
        .find(|m| m["group"].is_string())
        .expect("a group ring was recorded");
    let mut forged = ring.clone();
    forged["ring_id"] = json!("forged-ring-1");
    forged["from"] = json!(alice);
    assert_eq!(proxy.inject(&names[2], &forged), 1);
    let (carol, _) = &mut members[1];
    carol
        .expect("declined", |v| {
            v["event"] == "warning"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no member this device awaits"))
        })
        .await;
    let mut stranger = ring.clone();
    stranger["ring_id"] = json!("forged-ring-2");
    stranger["from"] = json!(unique("stranger"));
    assert_eq!(proxy.inject(&names[2], &stranger), 1);
    let (carol, _) = &mut members[1];
    carol
        .expect("the stranger declined", |v| {
            v["event"] == "warning"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no member this device awaits"))
        })
        .await;
    for forged in ["forged-ring-1", "forged-ring-2"] {
        assert!(
            !carol.seen(|v| v["session"] == forged),
            "no session for {forged}"
        );
    }
    drop(admin);
}
