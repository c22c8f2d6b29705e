//! A malicious server (P8), played by a tampering proxy in front of the real one: it rewrites and
//! forges messages to real CLI clients. Each test is an attack seen on an earlier build.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anonchat_e2e::cli::{befriend, open_session, pair, say, Cli, Pair};
use anonchat_e2e::group::people;
use anonchat_e2e::proxy::{proxied, Dir, Proxy, Tamper};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::signing::{enroll_token_bytes, one_time_key_bytes};
use anonchat_proto::wire::{ServerEnvelope, ServerMsg, SignedOtk};
use anonchat_proto::{Caps, Key32, Sig64, Username};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

fn forged(msg: ServerMsg) -> Value {
    serde_json::to_value(ServerEnvelope::new(None, msg)).expect("envelope")
}

/// A join request for `device_id` with keys the "server" holds.
fn attacker_join(device_id: &str) -> ServerMsg {
    let dk = SigningKey::generate(&mut rand::rngs::OsRng);
    let otk = Key32(rand::random());
    ServerMsg::EnrollRequest {
        device_id: device_id.to_string(),
        dk_ed25519: Key32(dk.verifying_key().to_bytes()),
        dk_curve25519: Key32(rand::random()),
        caps: Caps::default(),
        otk: SignedOtk {
            key: otk,
            sig: Sig64(dk.sign(&one_time_key_bytes(device_id, &otk)).to_bytes()),
        },
    }
}

/// Two friends-to-be through `proxy`; the first opens an enrollment and a new device joins it by
/// the typed code. Returns them with the new device's `enroll_pending` and the old one's
/// `enroll_request`.
async fn join(proxy: &Proxy) -> (Pair, Cli, Value, Value) {
    let mut p = pair(&proxy.url()).await;
    let mut new = Cli::start(&unique("pn"), &p.home.0, &proxy.url()).await;
    let open = p.a.ok(json!({"cmd": "enroll_open"})).await;
    new.send(json!({"cmd": "enroll", "code": open["code"]}))
        .await;
    let pending = new.expect_event("enroll_pending").await;
    let req = p.a.expect_event("enroll_request").await;
    (p, new, pending, req)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_join_under_the_same_device_id_aborts_the_enrollment_and_the_account_key_stays() {
    let (_server, proxy) = proxied(None).await;
    let (mut p, mut new, pending, req) = join(&proxy).await;
    assert_eq!(req["fingerprint"], pending["fingerprint"]);
    let code = req["fingerprint"].as_str().expect("code");
    assert_eq!(
        code.chars().filter(char::is_ascii_digit).count(),
        25,
        "≥ 80 bits compared: {code}"
    );
    let id = req["device_id"].as_str().expect("id").to_string();

    // The user compared the codes; now the server slips its own keys in under the same id.
    assert_eq!(proxy.inject(&p.a_name, &forged(attacker_join(&id))), 1);
    let aborted = p.a.expect_event("enroll_aborted").await;
    assert!(
        aborted["reason"]
            .as_str()
            .is_some_and(|r| r.contains("second device")),
        "{aborted}"
    );
    // Approving what the user saw is refused now, and nothing was sealed to anyone.
    let approve =
        p.a.call(json!({"cmd": "enroll_approve", "device_id": id, "fingerprint": code}))
            .await;
    assert_eq!(approve["ok"], false, "{approve}");
    assert!(proxy.recorded_messages("enroll_approve").is_empty());
    // The new device hears it too: its enrollment ends, it has no account.
    let done = new
        .expect("reply to enroll", |v| v["reply"] == "enroll")
        .await;
    assert_eq!(done["ok"], false, "{done}");
    let who = new.ok(json!({"cmd": "whoami"})).await;
    assert!(who["username"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_code_enrollment_shows_a_different_code_when_the_server_names_another_account_key()
{
    // The server tells the new device that the account's key is one it holds, and signs the
    // token (over the code the new device sent) with it, so every signature checks out.
    let fake = SigningKey::generate(&mut rand::rngs::OsRng);
    let fake_pub = Key32(fake.verifying_key().to_bytes());
    let code = std::sync::Mutex::new(None::<String>);
    let tamper: Tamper = std::sync::Arc::new(move |dir, text| {
        let Ok(mut v) = serde_json::from_str::<Value>(&text) else {
            return text;
        };
        if dir == Dir::ToServer && v["t"] == "enroll_join" {
            *code.lock().expect("code") = v["code"].as_str().map(str::to_string);
        }
        let typed = code.lock().expect("code").clone();
        let (Some(typed), Some(u), Some(exp)) = (
            typed,
            v["username"].as_str().and_then(|u| Username::parse(u).ok()),
            v["expires"].as_u64(),
        ) else {
            return text;
        };
        if dir != Dir::ToClient || v["t"] != "enroll_pending" {
            return text;
        }
        let sig = fake.sign(&enroll_token_bytes(&u, &typed, exp)).to_bytes();
        v["ak_pub"] = json!(fake_pub.to_base64());
        v["sig"] = json!(Sig64(sig).to_base64());
        v.to_string()
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let (mut p, mut new, pending, req) = join(&proxy).await;
    assert!(
        proxy
            .recorded_messages("enroll_pending")
            .iter()
            .any(|m| m["ak_pub"] != json!(fake_pub.to_base64())),
        "the real server's answer was recorded before the rewrite"
    );
    assert_ne!(
        pending["fingerprint"], req["fingerprint"],
        "the two screens differ when the server lies about the account key"
    );
    // The user sees two codes and declines.
    p.a.ok(json!({"cmd": "enroll_decline", "device_id": req["device_id"]}))
        .await;
    let done = new
        .expect("reply to enroll", |v| v["reply"] == "enroll")
        .await;
    assert_eq!(done["ok"], false, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cannot_connect_a_call_nobody_answered() {
    let (_server, proxy) = proxied(None).await;
    let mut p = pair(&proxy.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    // One genuine call, so the "server" has alice's device certificate as bob was given it.
    let first = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    p.a.ok(json!({"cmd": "leave", "session": first})).await;
    p.b.expect_event("session_ended").await;
    let cert = proxy
        .recorded_messages("ring_connected")
        .first()
        .map(|m| m["peer"].clone())
        .expect("a ring_connected was recorded");

    let ring = p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let ring_id = ring["ring_id"].as_str().expect("ring id").to_string();
    p.b.expect_event("incoming_ring").await;
    // Bob has not answered; the server connects the call anyway.
    let msg = json!({"v": 1, "t": "ring_connected", "ring_id": ring_id, "peer": cert});
    assert_eq!(proxy.inject(&p.b_name, &msg), 1);
    let warned =
        p.b.expect("warning", |v| {
            v["event"] == "warning"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not answered"))
        })
        .await;
    assert!(
        !p.b.seen(|v| v["event"] == "connecting" && v["session"] == ring_id.as_str()),
        "no session without a click: {warned}"
    );
    // Still an ordinary ring: bob can answer it, and only then does the chat open.
    p.b.ok(json!({"cmd": "answer", "ring_id": ring_id, "accept": true}))
        .await;
    p.a.expect_event("session_open").await;
    p.b.expect_event("session_open").await;
    say(&mut p.a, &mut p.b, &ring_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_blobs_and_a_ring_reusing_a_live_chats_id_do_not_end_the_chat() {
    let (_server, proxy) = proxied(None).await;
    let mut p = pair(&proxy.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;

    // An undecryptable blob on the live chat's route, and a replay of a real one.
    let garbage = json!({"v": 1, "t": "relayed", "ring_id": session, "blob": "AQIDBAUGBwg="});
    assert_eq!(proxy.inject(&p.b_name, &garbage), 1);
    let replayed = proxy
        .recorded_messages("relayed")
        .into_iter()
        .find(|m| m["ring_id"] == session.as_str())
        .expect("a relayed blob was recorded");
    assert_eq!(proxy.inject(&p.b_name, &replayed), 1);
    for _ in 0..2 {
        p.b.expect("warning", |v| {
            v["event"] == "warning"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("dropped a relayed message"))
        })
        .await;
    }
    // A forged ring under the live chat's id, to either side.
    let a_key = proxy
        .recorded_messages("incoming_ring")
        .first()
        .map(|m| m["ak_pub"].clone())
        .expect("incoming_ring recorded");
    let ring = json!({"v": 1, "t": "incoming_ring", "ring_id": session, "from": p.a_name, "ak_pub": a_key});
    assert_eq!(proxy.inject(&p.b_name, &ring), 1);
    p.b.expect("warning", |v| {
        v["event"] == "warning"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("live chat"))
    })
    .await;

    say(&mut p.a, &mut p.b, &session).await;
    say(&mut p.b, &mut p.a, &session).await;
    assert!(!p.a.seen(|v| v["event"] == "session_ended"));
    assert!(!p.b.seen(|v| v["event"] == "session_ended"));
    assert!(
        !p.b.seen(|v| v["event"] == "incoming_ring" && v["ring_id"] == session.as_str()),
        "the forged ring was not shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_asking_for_endless_proof_of_work_gets_a_clear_refusal_not_a_hung_client() {
    let server = Server::start_with(
        ServerOpts {
            extra: ["--register-pow-bits", "40"].map(String::from).to_vec(),
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let home = TempDir::new("clients");
    let mut a = Cli::start(&unique("pa"), &home.0, &server.url()).await;
    let reply = a
        .call(json!({"cmd": "register", "username": unique("alice")}))
        .await;
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("40 bits of proof of work")),
        "{reply}"
    );
}

/// Issue 35, item 11: a rotation handed the new key to whatever devices the server listed as live.
/// Alice revoked a2 (lost, say); the server lists it again as live and hands out one of its
/// one-time keys: the new key must not be sealed to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_never_hands_the_new_key_to_a_device_this_user_revoked() {
    type Lie = Option<(String, Value)>;
    let lie: std::sync::Arc<std::sync::Mutex<Lie>> = Default::default();
    let claims: std::sync::Arc<std::sync::Mutex<Vec<u64>>> = Default::default();
    let (told, asked) = (lie.clone(), claims.clone());
    let tamper: Tamper = std::sync::Arc::new(move |dir, text| {
        let Some((id, otk)) = told.lock().expect("lie").clone() else {
            return text;
        };
        let Ok(mut v) = serde_json::from_str::<Value>(&text) else {
            return text;
        };
        match dir {
            Dir::ToServer if v["t"] == "claim_device_otk" && v["device_id"] == id.as_str() => {
                if let Some(n) = v["id"].as_u64() {
                    asked.lock().expect("claims").push(n);
                }
                text
            }
            Dir::ToClient if v["t"] == "devices" => {
                for d in v["devices"].as_array_mut().into_iter().flatten() {
                    if d["cert"]["device_id"] == id.as_str() {
                        d["revoked"] = json!(false);
                        d["online"] = json!(true);
                    }
                }
                v.to_string()
            }
            Dir::ToClient
                if v["re"]
                    .as_u64()
                    .is_some_and(|n| asked.lock().expect("claims").contains(&n)) =>
            {
                json!({"v": 1, "re": v["re"], "t": "device_otk", "device_id": id, "otk": otk})
                    .to_string()
            }
            _ => text,
        }
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let mut p = pair(&proxy.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let mut a2 = Cli::start(&anonchat_e2e::unique("pa2"), &p.home.0, &proxy.url()).await;
    let a2_id = anonchat_e2e::cli::enroll(&mut p.a, &mut a2, &p.a_name, false).await;
    a2.connect().await;
    a2.ok(json!({"cmd": "friends"})).await;
    let a2_cert: anonchat_proto::DeviceCert =
        serde_json::from_value(proxy.recorded_messages("enrolled")[0]["cert"].clone())
            .expect("a2 cert");
    let otk = proxy
        .recorded_messages("upload_otks")
        .iter()
        .flat_map(|m| m["keys"].as_array().cloned().unwrap_or_default())
        .find(|k| {
            serde_json::from_value::<SignedOtk>(k.clone()).is_ok_and(|k| {
                anonchat_proto::signing::verify(
                    &a2_cert.dk_ed25519,
                    &one_time_key_bytes(&a2_id, &k.key),
                    &k.sig,
                )
                .is_ok()
            })
        })
        .expect("one of a2's one-time keys, which the server holds");

    p.a.ok(json!({"cmd": "revoke_device", "device_id": a2_id}))
        .await;
    *lie.lock().expect("lie") = Some((a2_id.clone(), otk));
    // Kept as the list showed it before the revocation: the revocation still wins.
    let keep = json!([{
        "device_id": a2_id,
        "fingerprint": anonchat_proto::enroll::device_fingerprint(&a2_cert.dk_ed25519),
    }]);
    let view =
        p.a.ok(json!({"cmd": "rotate_account_key", "keep": keep}))
            .await;
    assert_eq!(view["handed_over"], json!([]), "{view}");
    assert_eq!(view["signed_out"], json!([a2_id]), "{view}");
    for m in proxy.recorded_messages("rotate_account_key") {
        assert!(
            !m["handovers"].to_string().contains(&a2_id),
            "the new key sealed to a revoked device: {m}"
        );
    }
}

/// A hostile server holds back the connect of a ring between two group members until the callee
/// left the group, then delivers it. The ring was answered as the group's link, so it becomes that
/// link or nothing: before, the callee's engine had forgotten the ring's group and took it for an
/// ordinary chat its user never answered (P8) — with a member of a group it left (found by the
/// attack review of issue 35).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_link_ring_withheld_until_the_callee_left_does_not_become_a_chat() {
    #[derive(Default)]
    struct Held {
        /// ring id → caller, for rings between members.
        link: HashMap<String, String>,
        /// (ring id, message) withheld on their way to a client.
        stash: Vec<(String, Value)>,
    }
    let held: Arc<Mutex<Held>> = Arc::default();
    let h = held.clone();
    let tamper: Tamper = Arc::new(move |dir, text| {
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return text;
        };
        let mut h = h.lock().expect("held");
        let id = v["ring_id"].as_str().unwrap_or_default().to_string();
        match (dir, v["t"].as_str().unwrap_or_default()) {
            (Dir::ToClient, "incoming_ring") if v["group"].is_string() => {
                let from = v["from"].as_str().unwrap_or_default().to_string();
                h.link.insert(id, from);
                text
            }
            (Dir::ToClient, "ring_accepted" | "ring_connected") if h.link.contains_key(&id) => {
                h.stash.push((id, v));
                String::new()
            }
            // The server ignores the callee's hang-up of that ring.
            (Dir::ToServer, "hangup") if h.link.contains_key(&id) => String::new(),
            _ => text,
        }
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let (mut people, _home) = people(&proxy.url(), 3, &[]).await;
    let names: Vec<String> = people.iter().map(|(_, n)| n.clone()).collect();
    let started = people[0]
        .0
        .ok(json!({"cmd": "group_start", "members": [names[1], names[2]]}))
        .await;
    assert!(started["group"].is_string());
    let mut groups = HashMap::new();
    for (cli, name) in people.iter_mut().skip(1) {
        let ring = cli.expect_event("incoming_ring").await;
        cli.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
            .await;
        let joined = cli.expect_event("group_joined").await;
        groups.insert(name.clone(), joined["group"].as_str().unwrap().to_string());
    }
    // The ring between the two members: answered by the callee, connected for neither.
    let t0 = Instant::now();
    let (ring_id, caller) = loop {
        {
            let h = held.lock().expect("held");
            if h.stash.len() >= 2 {
                let id = h.stash[0].0.clone();
                break (id.clone(), h.link[&id].clone());
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no link ring answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let callee = if caller == names[1] {
        names[2].clone()
    } else {
        names[1].clone()
    };
    let ci = names.iter().position(|n| *n == callee).unwrap();
    // The callee leaves the group; then the server connects the ring it held back.
    let gid = groups[&callee].clone();
    people[ci]
        .0
        .ok(json!({"cmd": "group_leave", "group": gid}))
        .await;
    people[ci]
        .0
        .expect("group_ended", |v| v["event"] == "group_ended")
        .await;
    let stash = held.lock().expect("held").stash.clone();
    for (_, msg) in stash {
        let to = if msg["t"] == "ring_accepted" {
            &caller
        } else {
            &callee
        };
        assert_eq!(proxy.inject(to, &msg), 1, "{to} is connected");
    }
    // The callee refuses it as the group link it was, now gone.
    let id = ring_id.clone();
    let failed = people[ci]
        .0
        .expect("the late connect refused", move |v| {
            v["event"] == "session_failed" && v["session"] == id.as_str()
        })
        .await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("group")),
        "{failed}"
    );
    let id = ring_id.clone();
    let started = people[ci].0.take_all(move |v| {
        (v["event"] == "connecting" || v["event"] == "session_open") && v["session"] == id
    });
    assert!(
        started.is_empty(),
        "{callee} left the group, and the server connected the member ring it had answered \
         as an ordinary chat with {caller} its user never accepted: {started:?}"
    );
}
