//! Discovery modes and the Friend Verification Code, with real processes.

use anonchat_e2e::cli::{open_session, pair, Cli};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::{json, Value};

const NOT_FOUND: &str = "User not found or offline.";

fn refused(v: &Value) -> bool {
    v["ok"] == false && v["error"] == NOT_FOUND
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_needs_the_live_code_friends_bypass_it_and_rotation_kills_old_codes() {
    // This test is refused on purpose more often than the failure backoff forgives (tests/abuse.rs
    // covers that backoff); here every refusal must be the gate's own answer.
    let server = Server::start_with(
        ServerOpts {
            extra: vec!["--backoff-after".into(), "0".into()],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let mut p = pair(&server.url()).await;
    let mode = p.b.ok(json!({"cmd": "get_mode"})).await;
    assert_eq!(mode["mode"], "default", "new accounts start in DEFAULT");
    p.b.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;

    // A stranger without the code, or with a wrong one, learns nothing.
    let none =
        p.a.call(json!({"cmd": "add_friend", "username": p.b_name}))
            .await;
    assert!(refused(&none), "{none}");
    let wrong =
        p.a.call(json!({"cmd": "add_friend", "username": p.b_name, "code": "000000"}))
            .await;
    assert!(refused(&wrong), "{wrong}");
    let ring = p.a.call(json!({"cmd": "ring", "username": p.b_name})).await;
    assert!(refused(&ring), "{ring}");

    // The owner's live code opens the gate.
    let code = p.b.ok(json!({"cmd": "code"})).await;
    let c = code["code"].as_str().expect("code").to_string();
    assert_eq!(c.len(), 6);
    assert!(code["seconds_left"]
        .as_u64()
        .is_some_and(|s| (1..=60).contains(&s)));
    assert_eq!(
        code["link"],
        format!("anonchat://add?u={}&c={c}", p.b_name).as_str()
    );
    // The link's QR (PNG bytes from the engine) scans back to the same link.
    let qr =
        p.b.ok(json!({"cmd": "qr", "text": code["link"], "png": true}))
            .await;
    let png =
        anonchat_proto::bytes::decode_b64(qr["png_base64"].as_str().expect("png")).expect("base64");
    let img = image::load_from_memory(&png).expect("png").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(
        grids.first().map(|g| g.decode().expect("qr decodes").1),
        code["link"].as_str().map(String::from)
    );
    p.a.ok(json!({"cmd": "add_link", "link": code["link"]}))
        .await;
    let req = p.b.expect_event("friend_request").await;
    p.b.ok(json!({"cmd": "accept_friend", "username": p.a_name, "safety_number": req["safety_number"]}))
        .await;
    p.a.expect_event("friend_added").await;

    // Friends bypass the code…
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    p.a.ok(json!({"cmd": "leave", "session": session})).await;
    p.a.expect_event("session_ended").await;
    p.b.expect_event("session_ended").await;
    // …unless the owner wants it always.
    p.b.ok(json!({"cmd": "set_mode", "mode": "strict", "always_require_code": true}))
        .await;
    let ring = p.a.call(json!({"cmd": "ring", "username": p.b_name})).await;
    assert!(refused(&ring), "{ring}");
    let code = p.b.ok(json!({"cmd": "code"})).await;
    p.a.ok(json!({"cmd": "ring", "username": p.b_name, "code": code["code"]}))
        .await;
    p.b.expect_event("incoming_ring").await;

    // Rotating the salt kills the code and its link.
    let old = p.b.ok(json!({"cmd": "code"})).await;
    p.b.ok(json!({"cmd": "rotate_code"})).await;
    let fresh = p.b.ok(json!({"cmd": "code"})).await;
    assert_ne!(old["code"], fresh["code"]);
    let stale =
        p.a.call(json!({"cmd": "lookup", "username": p.b_name, "code": old["code"]}))
            .await;
    assert!(refused(&stale), "an old code after rotation: {stale}");
    let ok =
        p.a.ok(json!({"cmd": "lookup", "username": p.b_name, "code": fresh["code"]}))
            .await;
    assert_eq!(ok["online"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_accounts_are_searchable_and_say_offline_default_ones_do_not() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    p.b.ok(json!({"cmd": "set_mode", "mode": "public"})).await;
    let mode = p.b.ok(json!({"cmd": "get_mode"})).await;
    assert_eq!(mode["mode"], "public");

    let found =
        p.a.ok(json!({"cmd": "search", "prefix": &p.b_name[..5]}))
            .await;
    let users: Vec<String> = serde_json::from_value(found["users"].clone()).expect("users");
    assert!(users.contains(&p.b_name), "{users:?}");
    assert!(
        !users.contains(&p.a_name),
        "DEFAULT accounts are never listed: {users:?}"
    );
    let bad = p.a.call(json!({"cmd": "search", "prefix": "a%"})).await;
    assert_eq!(bad["ok"], false);

    // The engine makes the share link (front-ends never build one): it adds b, code-free.
    let who = p.b.ok(json!({"cmd": "whoami"})).await;
    let link = who["share_link"]
        .as_str()
        .expect("a share link")
        .to_string();
    assert_eq!(link, format!("anonchat://add?u={}", p.b_name));
    p.a.ok(json!({"cmd": "add_link", "link": link})).await;
    let request = p.b.expect_event("friend_request").await;
    assert_eq!(request["from"], p.a_name.as_str());

    // Offline: PUBLIC says so, DEFAULT answers like a stranger that does not exist.
    let b_name = p.b_name.clone();
    p.b.quit().await;
    let a_name = p.a_name.clone();
    let home = TempDir::new("clients");
    let mut c = Cli::start(&unique("pc"), &home.0, &server.url()).await;
    c.register(&unique("carol")).await;
    c.connect().await;
    // The server notices b's socket closing on its own schedule: wait for the answer to change.
    let mut offline = Value::Null;
    for _ in 0..50 {
        offline = c.call(json!({"cmd": "lookup", "username": b_name})).await;
        if offline["online"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(offline["ok"], true, "{offline}");
    assert_eq!(offline["online"], false);
    p.a.quit().await;
    let mut gone = Value::Null;
    for _ in 0..50 {
        gone = c.call(json!({"cmd": "lookup", "username": a_name})).await;
        if refused(&gone) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused(&gone),
        "an offline DEFAULT account is not found: {gone}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_settings_decide_what_friends_see_and_hidden_accounts_stay_ringable_by_friends() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    anonchat_e2e::cli::befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let home = TempDir::new("clients");
    let mut c = Cli::start(&unique("pc"), &home.0, &server.url()).await;
    c.register(&unique("carol")).await;
    c.connect().await;

    let seen = |v: &Value| {
        (
            v["friends"][0]["online"].clone(),
            v["friends"][0]["recently_active"].clone(),
        )
    };
    let f = p.a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(seen(&f), (json!(true), json!(false)), "exact: online");

    p.b.ok(json!({"cmd": "set_presence", "presence": "hidden"}))
        .await;
    assert_eq!(
        p.b.ok(json!({"cmd": "get_mode"})).await["presence"],
        "hidden"
    );
    let f = p.a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(seen(&f), (json!(false), json!(false)), "appear offline");
    let stranger = c.call(json!({"cmd": "lookup", "username": p.b_name})).await;
    assert!(
        refused(&stranger),
        "strangers cannot find a hidden account: {stranger}"
    );
    // …but a friend can still ring it.
    let ring = p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let incoming = p.b.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], ring["ring_id"]);
    p.b.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": false}))
        .await;
    assert_eq!(p.a.expect_event("ring_ended").await["reason"], "declined");

    p.b.ok(json!({"cmd": "set_presence", "presence": "recent"}))
        .await;
    let f = p.a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(
        seen(&f),
        (json!(false), json!(true)),
        "blurred: recently active, never the moment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_code_replaces_the_rotating_one_and_is_forgiving_about_case() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    p.b.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;
    let short =
        p.b.call(json!({"cmd": "set_static_code", "code": "abc"}))
            .await;
    assert_eq!(short["ok"], false, "too short a code is refused");
    p.b.ok(json!({"cmd": "set_static_code", "code": "Blue-Horse-42"}))
        .await;
    let no_live = p.b.call(json!({"cmd": "code"})).await;
    assert_eq!(
        no_live["ok"], false,
        "no rotating code while a static one is set"
    );

    let wrong =
        p.a.call(json!({"cmd": "lookup", "username": p.b_name, "code": "bluehorse43"}))
            .await;
    assert!(refused(&wrong), "{wrong}");
    let right =
        p.a.ok(json!({"cmd": "lookup", "username": p.b_name, "code": "bluehorse42"}))
            .await;
    assert_eq!(right["online"], true);

    // Back to the rotating code: the static one stops working.
    p.b.ok(json!({"cmd": "set_static_code"})).await;
    let stale =
        p.a.call(json!({"cmd": "lookup", "username": p.b_name, "code": "bluehorse42"}))
            .await;
    assert!(refused(&stale), "{stale}");
    let live = p.b.ok(json!({"cmd": "code"})).await;
    p.a.ok(json!({"cmd": "lookup", "username": p.b_name, "code": live["code"]}))
        .await;
}

/// libfaketime, to run a client whose clock is off (Debian's `faketime` package).
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .expect("/usr/lib")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .chain([std::path::PathBuf::from(
            "/usr/lib/faketime/libfaketime.so.1",
        )])
        .find(|p| p.exists())
        .expect("libfaketime (apt install faketime; scripts/test.sh does)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_clock_a_minute_off_still_works_three_minutes_off_does_not() {
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let mut asker = Cli::start(&unique("pk"), &home.0, &server.url()).await;
    asker.register(&unique("asker")).await;
    asker.connect().await;
    let lib = libfaketime();
    // The server's clock is the reference; the owner's device shows codes from its own clock.
    for (skew, accepted) in [
        ("+50", true),
        ("-50", true),
        ("+180", false),
        ("-180", false),
    ] {
        let name = unique("skewed");
        let env = [
            ("LD_PRELOAD", lib.to_str().expect("path")),
            ("FAKETIME", skew),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ];
        let mut owner = Cli::start_with_env(&unique("ps"), &home.0, &server.url(), &env).await;
        owner.register(&name).await;
        owner.connect().await;
        owner.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;
        let code = owner.ok(json!({"cmd": "code"})).await["code"].clone();
        let got = asker
            .call(json!({"cmd": "lookup", "username": name, "code": code}))
            .await;
        if accepted {
            assert_eq!(got["ok"], true, "clock {skew} s: within one step: {got}");
        } else {
            assert!(refused(&got), "clock {skew} s: three steps off: {got}");
        }
        owner.quit().await;
    }
}
