//! The core path with real processes: server, two CLI clients, WebRTC over loopback, Olm, the real
//! Secret Service.

use std::time::{Duration, Instant};

use anonchat_client::session::TYPING_EVERY;
use anonchat_e2e::cli::{befriend, keychain_has, open_session, pair, say, Cli, Pair};
use anonchat_e2e::gui::count_in_memory;
use anonchat_e2e::proxy::{proxied, rewrite, Dir, Tamper};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{canary, TempDir};
use serde_json::json;

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn befriend_chat_both_ways_with_receipts_then_leave_wipes_both_and_server_sees_only_ciphertext(
) {
    let (server, proxy) = proxied(None).await;
    let mut p = pair(&proxy.url()).await;
    let sn = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    assert_eq!(sn.split(' ').count(), 12, "12 groups of 5 digits: {sn}");
    let from_a =
        p.a.ok(json!({"cmd": "safety_number", "username": p.b_name}))
            .await;
    let from_b =
        p.b.ok(json!({"cmd": "safety_number", "username": p.a_name}))
            .await;
    assert_eq!(from_a["safety_number"], from_b["safety_number"]);

    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let mut canaries = Vec::new();
    for round in 0..3 {
        for (who, text) in [("a", canary()), ("b", canary())] {
            let (tx, rx) = if who == "a" {
                (&mut p.a, &mut p.b)
            } else {
                (&mut p.b, &mut p.a)
            };
            let sent = tx.ok(json!({"cmd": "send", "session": session, "text": format!("round {round}: {text}")})).await;
            let id = sent["id"].clone();
            let t = text.clone();
            let got = rx
                .expect("message", move |v| {
                    v["event"] == "message" && v["text"].as_str().is_some_and(|s| s.contains(&t))
                })
                .await;
            assert_eq!(got["id"], id);
            let receipt = tx
                .expect("receipt", |v| v["event"] == "receipt" && v["id"] == id)
                .await;
            assert_eq!(receipt["kind"], "delivered");
            canaries.push(text);
        }
    }
    let history = p.a.ok(json!({"cmd": "history", "session": session})).await;
    assert_eq!(
        history["lines"].as_array().map(Vec::len),
        Some(6),
        "both sides' lines are in RAM while the chat lasts"
    );
    let open: usize = count_in_memory(p.a.pid(), &canaries).iter().sum();
    assert!(open > 0, "the memory dump finds the chat while it lasts");

    p.a.ok(json!({"cmd": "leave", "session": session})).await;
    let ea = p.a.expect_event("session_ended").await;
    let eb = p.b.expect_event("session_ended").await;
    assert_eq!(
        (ea["wiped"].clone(), eb["wiped"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(ea["reason"], "left");
    assert_eq!(eb["reason"], "peer_left");
    for c in [&mut p.a, &mut p.b] {
        let gone = c.call(json!({"cmd": "history", "session": session})).await;
        assert_eq!(gone["ok"], false, "the chat is gone after it ended");
        // P4, "every buffer of that chat": not in the process's memory either — neither in the
        // lines it read nor in those it printed (their buffers, freed or reused).
        let left = count_in_memory(c.pid(), &canaries);
        assert_eq!(
            left.iter().sum::<usize>(),
            0,
            "{}: the ended chat's canaries in its memory: {left:?}",
            c.profile
        );
    }
    // The next chat opens as usual; the server's notice that the first chat's route is gone (it
    // lasted the chat) reached both before that, and was no news to either front-end.
    let again = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    assert_ne!(again, session);
    for c in [&mut p.a, &mut p.b] {
        assert!(
            !c.seen(|v| v["event"] == "ring_ended"),
            "a finished chat's route ending is not shown as a ring that ended"
        );
    }

    // P1: the server saw every byte between the clients; none of it is content or clear SDP/ICE.
    let seen = proxy.recorded();
    assert!(
        contains(&seen, "\"t\":\"relay\""),
        "the recording saw the signaling relay"
    );
    for c in &canaries {
        assert!(
            !contains(&seen, c),
            "the server received a message canary in clear"
        );
    }
    for marker in [
        "a=fingerprint",
        "ice-ufrag",
        "candidate:",
        "m=application",
        "v=0\r\n",
    ] {
        assert!(
            !contains(&seen, marker),
            "the server received SDP/ICE in clear ({marker})"
        );
    }
    let digits: String = sn.split(' ').collect();
    assert!(
        !contains(&seen, &digits) && !contains(&seen, &sn),
        "the server received the safety number"
    );

    // P7: the server's log names no user, no address, no content.
    let log = server.log();
    assert!(
        log.contains("account registered"),
        "the log is being captured: {log}"
    );
    for secret in [p.a_name.as_str(), p.b_name.as_str(), "127.0.0.1", &session] {
        assert!(
            !log.contains(secret),
            "the server log contains {secret}: {log}"
        );
    }
    for c in &canaries {
        assert!(!log.contains(c.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_goes_on_when_the_server_dies_and_clients_reconnect_when_it_is_back() {
    // One process, restarted on its own database (the spread shape's failover is instances.rs).
    let single = || ServerOpts {
        single: true,
        ..Default::default()
    };
    let first = Server::start_with(single(), TempDir::new("server")).await;
    let addr = first.addr;
    let mut p = pair(&first.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;

    let dir = first.kill().await;
    p.a.expect_event("disconnected").await;
    p.b.expect_event("disconnected").await;
    say(&mut p.a, &mut p.b, &session).await;
    say(&mut p.b, &mut p.a, &session).await;

    let _again = Server::start_with(
        ServerOpts {
            listen: addr.to_string(),
            ..single()
        },
        dir,
    )
    .await;
    p.a.expect_event("connected").await;
    p.b.expect_event("connected").await;
    // Signaling works again: friends are still friends (the database survived) and can ring.
    let friends = p.a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"][0]["username"], p.b_name.as_str());
    say(&mut p.a, &mut p.b, &session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_with_sigkill_ends_and_wipes_the_session_within_6_seconds() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let killed = Instant::now();
    p.b.kill().await;
    let ended = p.a.expect_event("session_ended").await;
    let took = killed.elapsed();
    assert_eq!(ended["session"], session.as_str());
    assert_eq!(ended["wiped"], true);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let gone =
        p.a.call(json!({"cmd": "send", "session": session, "text": "anyone?"}))
            .await;
    assert_eq!(gone["ok"], false);
}

async fn expect_setup_fails(p: &mut Pair) {
    p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let ring = p.b.expect_event("incoming_ring").await;
    p.b.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
        .await;
    p.a.expect_event("session_failed").await;
    p.b.expect_event("session_failed").await;
    assert!(
        !p.a.seen(|v| v["event"] == "session_open"),
        "caller must not connect"
    );
    assert!(
        !p.b.seen(|v| v["event"] == "session_open"),
        "callee must not connect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_swaps_the_device_certificate_gets_a_failed_session() {
    let tamper: Tamper = std::sync::Arc::new(|dir, text| {
        rewrite(dir, text, Dir::ToClient, "ring_accepted", |v| {
            // An attacker's own Curve25519 key in place of the callee's.
            let k = anonchat_proto::Key32(rand::random()).to_base64();
            v["peer"]["dk_curve25519"] = json!(k);
        })
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let mut p = pair(&proxy.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    expect_setup_fails(&mut p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_tampers_with_a_relayed_blob_gets_a_failed_session() {
    let tamper: Tamper = std::sync::Arc::new(|dir, text| {
        rewrite(dir, text, Dir::ToClient, "relayed", |v| {
            let blob = v["blob"].as_str().unwrap_or_default();
            let mut raw = anonchat_proto::bytes::decode_b64(blob).unwrap_or_default();
            let mid = raw.len() / 2;
            if let Some(b) = raw.get_mut(mid) {
                *b ^= 0x01;
            }
            v["blob"] = json!(anonchat_proto::bytes::encode_b64(&raw));
        })
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let mut p = pair(&proxy.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    expect_setup_fails(&mut p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_survives_a_restart_of_the_cli_through_the_secret_service() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        a_profile: pa,
        home,
        ..
    } = pair(&server.url()).await;
    let sn = befriend(&mut a, &a_name, &mut b, &b_name).await;
    a.quit().await;

    // The keychain really holds it: the Secret Service lists the profile's entry.
    assert!(
        keychain_has(&pa),
        "the Secret Service holds the profile's entry"
    );

    let mut a = Cli::start(&pa, &home.0, &server.url()).await;
    let who = a.ok(json!({"cmd": "whoami"})).await;
    assert_eq!(who["username"], a_name.as_str());
    a.connect().await; // authenticates with the device key from the keychain
    let again = a
        .ok(json!({"cmd": "safety_number", "username": b_name}))
        .await;
    assert_eq!(
        again["safety_number"],
        sn.as_str(),
        "pinned contact survives, decrypted with the keychain's key"
    );
    let session = open_session(&mut a, &mut b, &b_name).await;
    say(&mut a, &mut b, &session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_account_key_is_a_loud_blocking_warning() {
    // Once armed, the "server" claims the caller has a different account key.
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = armed.clone();
    let tamper: Tamper = std::sync::Arc::new(move |dir, text| {
        if !flag.load(std::sync::atomic::Ordering::SeqCst) {
            return text;
        }
        rewrite(dir, text, Dir::ToClient, "incoming_ring", |v| {
            v["ak_pub"] = json!(anonchat_proto::Key32(rand::random()).to_base64());
        })
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let mut p = pair(&proxy.url()).await;
    let sn = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    armed.store(true, std::sync::atomic::Ordering::SeqCst);

    p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let warning = p.b.expect_event("key_changed").await;
    assert_eq!(warning["username"], p.a_name.as_str());
    assert_eq!(
        warning["rotated"], false,
        "no rotation statement explains it"
    );
    assert_ne!(
        warning["safety_number"],
        sn.as_str(),
        "the warning shows the new safety number"
    );
    // Blocking: the ring is refused without asking, and the pinned number is unchanged.
    let ended = p.a.expect_event("ring_ended").await;
    assert_eq!(ended["reason"], "declined");
    assert!(!p.b.seen(|v| v["event"] == "incoming_ring"));
    let pinned =
        p.b.ok(json!({"cmd": "safety_number", "username": p.a_name}))
            .await;
    assert_eq!(pinned["safety_number"], sn.as_str());
}

/// Typing is throttled in the engine, not left to each front-end: a burst of keystrokes reaches
/// the peer as one `typing` notice per `TYPING_EVERY` (issue 15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_keystrokes_reaches_the_peer_as_one_typing_notice() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let started = Instant::now();
    for _ in 0..10 {
        p.a.ok(json!({"cmd": "typing", "session": session})).await;
    }
    let burst = started.elapsed();
    // The channel is ordered: once the text is here, every typing notice sent before it is too.
    say(&mut p.a, &mut p.b, &session).await;
    let notices = p.b.take_all(|v| v["event"] == "typing").len();
    let allowed = 1 + (burst.as_millis() / TYPING_EVERY.as_millis()) as usize;
    println!("10 keystrokes in {burst:?} -> {notices} typing notice(s)");
    assert!(
        (1..=allowed).contains(&notices),
        "{notices} notices for 10 keystrokes in {burst:?} (at most {allowed})"
    );
}

/// Capture protection turned off mid-chat (DESIGN P6's banner, issue 17 item 5): the peer is told
/// in `hello` over the open chat and shows the banner at once; turned back on, it goes; a device
/// whose certificate claims no protection cannot claim it. Alice stands in for a system that can
/// protect its window (Windows, macOS before 15) through a debug-build switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unprotected_banner_follows_the_peers_capture_setting_mid_chat() {
    let server = Server::start().await;
    let home = TempDir::new("capture");
    let (a_name, b_name) = (anonchat_e2e::unique("alice"), anonchat_e2e::unique("bob"));
    let protected = [("ANONCHAT_TEST_SCREEN_PROTECTION", "1")];
    let mut a = Cli::start_with_env(
        &anonchat_e2e::unique("pa"),
        &home.0,
        &server.url(),
        &protected,
    )
    .await;
    let mut b = Cli::start(&anonchat_e2e::unique("pb"), &home.0, &server.url()).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    assert_eq!(
        a.ok(json!({"cmd": "capture"})).await,
        json!({"reply": "capture", "ok": true, "available": true, "on": true})
    );
    let refused = b
        .call(json!({"cmd": "set_capture_protection", "on": true}))
        .await;
    assert_eq!(refused["code"], "refused", "{refused}");
    assert_eq!(b.ok(json!({"cmd": "capture"})).await["on"], false);

    let (session, oa, ob) = anonchat_e2e::cli::open_session_events(&mut a, &mut b, &b_name).await;
    assert_eq!(
        ob["peer_unprotected"], false,
        "alice's certificate claims protection"
    );
    assert_eq!(oa["peer_unprotected"], true, "bob's does not");
    let caps_told = |on: bool| {
        let s = session.clone();
        move |v: &serde_json::Value| {
            v["event"] == "peer_caps" && v["session"] == s.as_str() && v["peer_unprotected"] == !on
        }
    };
    let off = a
        .ok(json!({"cmd": "set_capture_protection", "on": false}))
        .await;
    assert_eq!(off["on"], false);
    b.expect("the banner on", caps_told(false)).await;
    a.ok(json!({"cmd": "set_capture_protection", "on": true}))
        .await;
    b.expect("the banner off", caps_told(true)).await;
    // Bob saying he is protected changes nothing on alice's side: his certificate does not say so.
    b.ok(json!({"cmd": "set_capture_protection", "on": false}))
        .await;
    say(&mut b, &mut a, &session).await;
    assert!(
        !a.seen(|v| v["event"] == "peer_caps"),
        "a claim bob's certificate lacks"
    );

    // Off stays off for the next chat: its `hello` says so as it opens.
    a.ok(json!({"cmd": "set_capture_protection", "on": false}))
        .await;
    a.ok(json!({"cmd": "leave", "session": session})).await;
    b.expect_event("session_ended").await;
    let (next, _, _) = anonchat_e2e::cli::open_session_events(&mut a, &mut b, &b_name).await;
    let s = next.clone();
    b.expect("the banner in the next chat", move |v| {
        v["event"] == "peer_caps" && v["session"] == s.as_str() && v["peer_unprotected"] == true
    })
    .await;
}
