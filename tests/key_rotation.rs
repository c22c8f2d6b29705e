//! Rotating the account key after a lost device (DESIGN P8): on real server and CLI processes the
//! remaining devices are re-certified and get the new key end to end, offline ones are signed out,
//! friends see a warning that says the owner rotated it (and must still accept it), and every
//! friendship edge ends up signed over both current keys. Then the attacks: a server that swaps
//! the key with a forged statement, or feeds a device a forged rotation, changes nothing.

use anonchat_e2e::cli::{befriend, enroll, keychain_has, open_session, pair, say, Cli};
use anonchat_e2e::proxy::{proxied, rewrite, Dir, Tamper};
use anonchat_e2e::raw::{request, RawDevice};
use anonchat_e2e::server::Server;
use anonchat_e2e::unique;
use anonchat_proto::rotation::AkRotation;
use anonchat_proto::signing::friend_bytes;
use anonchat_proto::wire::{ServerEnvelope, ServerMsg};
use anonchat_proto::{DeviceCert, Key32, Sig64, Username};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sqlx::Row;

fn sn(v: &Value) -> String {
    v["safety_number"].as_str().expect("safety number").into()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A rotation of `username` from `old` (whose secret the signer may not have) to `new`.
fn statement(
    username: &Username,
    old: Key32,
    sig_old: &SigningKey,
    new: &SigningKey,
) -> AkRotation {
    let new_ak = Key32(new.verifying_key().to_bytes());
    let ts = now();
    let bytes = AkRotation::signing_bytes(username, &old, &new_ak, ts);
    AkRotation {
        username: username.clone(),
        old_ak: old,
        new_ak,
        ts,
        sig_old: Sig64(sig_old.sign(&bytes).to_bytes()),
        sig_new: Sig64(new.sign(&bytes).to_bytes()),
    }
}

/// The devices `ids` as `cli`'s device list shows them: what a rotation keeps.
async fn shown(cli: &mut Cli, ids: &[&str]) -> Value {
    let list = cli.ok(json!({"cmd": "devices"})).await;
    let kept: Vec<Value> = list["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| ids.contains(&d["device_id"].as_str().unwrap_or("")))
        .map(|d| json!({"device_id": d["device_id"], "fingerprint": d["fingerprint"]}))
        .collect();
    assert_eq!(kept.len(), ids.len(), "{list}");
    json!(kept)
}

/// Whoever holds a lost device can enroll a device of their own with it (it holds the account
/// key) before the owner revokes the lost one. A rotation hands the new key only to the devices
/// the owner kept from the list shown — with the fingerprints shown — so the thief's device is
/// signed out, not handed the new key (issue 35, item 11: before, every certified device online
/// got it). A kept device the server now lists under another key refuses the whole rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_keeps_only_the_devices_the_owner_kept_not_one_a_thief_added() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    // alice's second device a2 (kept), and the lost one.
    let mut a2 = Cli::start(&unique("pa2"), &p.home.0, &server.url()).await;
    let a2_id = enroll(&mut p.a, &mut a2, &p.a_name, false).await;
    a2.connect().await;
    let mut lost = Cli::start(&unique("plost"), &p.home.0, &server.url()).await;
    let lost_id = enroll(&mut p.a, &mut lost, &p.a_name, false).await;
    lost.connect().await;
    // What alice's list shows her: she will keep a2.
    let keep = shown(&mut p.a, &[&a2_id]).await;

    // The thief, with the lost device, adds one of their own.
    let mut thief = Cli::start(&unique("pthief"), &p.home.0, &server.url()).await;
    let thief_id = enroll(&mut lost, &mut thief, &p.a_name, false).await;
    thief.connect().await;

    p.a.ok(json!({"cmd": "revoke_device", "device_id": lost_id}))
        .await;
    // A kept device listed with another fingerprint than the one shown: nothing happens.
    let mut wrong = keep.clone();
    wrong[0]["fingerprint"] = json!("0000 0000 0000 0000");
    let refused =
        p.a.call(json!({"cmd": "rotate_account_key", "keep": wrong}))
            .await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["code"], "not_what_was_shown", "{refused}");
    let list = p.a.ok(json!({"cmd": "devices"})).await;
    assert!(
        list["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .all(|d| d["device_id"] != thief_id.as_str() || d["revoked"] == false),
        "a refused rotation signed nothing out: {list}"
    );

    let view =
        p.a.ok(json!({"cmd": "rotate_account_key", "keep": keep}))
            .await;
    assert_eq!(view["handed_over"], json!([a2_id]), "{view}");
    assert_eq!(view["signed_out"], json!([thief_id]), "{view}");
    a2.expect_event("account_key_rotated").await;
    thief.expect_event("device_revoked").await;
    assert!(
        !thief.seen(|v| v["event"] == "account_key_rotated"),
        "the thief's device got the new key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_online_devices_signs_out_offline_ones_and_friends_must_accept_it() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    let before = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;

    // Alice has three devices: this one, a2 online, a3 (the lost one) offline.
    let mut a2 = Cli::start(&unique("pa2"), &p.home.0, &server.url()).await;
    let a2_id = enroll(&mut p.a, &mut a2, &p.a_name, false).await;
    a2.connect().await;
    let a3_profile = unique("pa3");
    let mut a3 = Cli::start(&a3_profile, &p.home.0, &server.url()).await;
    let a3_id = enroll(&mut p.a, &mut a3, &p.a_name, true).await;
    a3.quit().await;

    // alice keeps both devices her list shows (a3 too: it is offline, so still signed out).
    let keep = shown(&mut p.a, &[&a2_id, &a3_id]).await;
    let view =
        p.a.ok(json!({"cmd": "rotate_account_key", "keep": keep}))
            .await;
    assert_eq!(view["signed_out"], json!([a3_id]), "{view}");
    assert_eq!(view["handed_over"], json!([a2_id]), "{view}");
    assert_eq!(view["friends_resigned"], 1, "{view}");
    let on_a2 = a2.expect_event("account_key_rotated").await;
    assert_eq!(on_a2["here"], false);

    // Both remaining devices now hold the same new key: the same new safety number with bob.
    let safety = |who: &str| json!({"cmd": "safety_number", "username": who});
    let after = sn(&p.a.ok(safety(&p.b_name)).await);
    assert_ne!(after, before);
    assert_eq!(sn(&a2.ok(safety(&p.b_name)).await), after);
    // ... and each device's new certificate verifies with the key it holds.
    let list = a2.ok(json!({"cmd": "devices"})).await;
    for d in list["devices"].as_array().expect("devices") {
        let revoked = d["device_id"] == a3_id.as_str();
        assert_eq!(d["revoked"], revoked, "{d}");
        if !revoked {
            assert_eq!(d["certified"], true, "{d}");
        }
    }

    // Bob is warned at once with the new number, then told it was a signed rotation, and nothing
    // proceeds until he accepts.
    let first = p.b.expect_event("key_changed").await;
    assert_eq!(first["username"], p.a_name.as_str());
    assert_eq!(sn(&first), after);
    let warned =
        p.b.expect("key_changed, rotated", |v| {
            v["event"] == "key_changed" && v["rotated"] == true
        })
        .await;
    assert_eq!(warned["username"], p.a_name.as_str());
    assert_eq!(sn(&warned), after);
    p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let ended = p.a.expect_event("ring_ended").await;
    assert_eq!(
        ended["reason"], "declined",
        "bob refuses the ring without asking"
    );
    assert!(!p.b.seen(|v| v["event"] == "incoming_ring"));
    assert_eq!(sn(&p.b.ok(safety(&p.a_name)).await), before, "still pinned");
    p.b.ok(json!({"cmd": "trust_new_key", "username": p.a_name, "safety_number": warned["safety_number"]}))
        .await;
    assert_eq!(sn(&p.b.ok(safety(&p.a_name)).await), after);
    let session = open_session(&mut p.b, &mut p.a, &p.a_name).await;
    say(&mut p.b, &mut p.a, &session).await;
    say(&mut p.a, &mut p.b, &session).await;

    // a2 speaks for the account with the new key: the server checks its friend signature.
    let (c_name, mut c) = (
        unique("carol"),
        Cli::start(&unique("pc"), &p.home.0, &server.url()).await,
    );
    c.register(&c_name).await;
    c.connect().await;
    befriend(&mut a2, &p.a_name, &mut c, &c_name).await;

    // The lost device, back online, is refused and wipes itself.
    let mut a3 = Cli::start(&a3_profile, &p.home.0, &server.url()).await;
    a3.ok(json!({"cmd": "connect"})).await;
    a3.expect_event("device_revoked").await;
    assert!(!keychain_has(&a3_profile));

    // On disk: alice's key is the new one, her rotation is kept, and both halves of the edge
    // with bob verify over both current keys (bob re-signed his after trusting).
    let (alice, bob) = (
        Username::parse(&p.a_name).unwrap(),
        Username::parse(&p.b_name).unwrap(),
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database_url())
        .await
        .expect("db");
    let key = |name: &str| {
        let pool = pool.clone();
        let name = name.to_string();
        async move {
            let r = sqlx::query("SELECT ak_pub FROM accounts WHERE username = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .expect("account");
            Key32::from_slice(&r.get::<Vec<u8>, _>("ak_pub")).expect("key")
        }
    };
    let (ka, kb) = (key(&p.a_name).await, key(&p.b_name).await);
    let rotations = sqlx::query("SELECT new_ak FROM ak_rotations WHERE username = $1")
        .bind(&p.a_name)
        .fetch_all(&pool)
        .await
        .expect("rotations");
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].get::<Vec<u8>, _>("new_ak"), ka.0.to_vec());
    let edge = friend_bytes(&alice, &ka, &bob, &kb);
    let row = sqlx::query("SELECT user_a, sig_a, sig_b FROM friendships WHERE user_a IN ($1, $2) AND user_b IN ($1, $2)")
        .bind(&p.a_name)
        .bind(&p.b_name)
        .fetch_one(&pool)
        .await
        .expect("edge");
    let (sig_a, sig_b) = (
        Sig64::from_slice(&row.get::<Vec<u8>, _>("sig_a")).expect("sig"),
        Sig64::from_slice(&row.get::<Vec<u8>, _>("sig_b")).expect("sig"),
    );
    let (k_first, k_second) = if row.get::<String, _>("user_a") == p.a_name {
        (ka, kb)
    } else {
        (kb, ka)
    };
    anonchat_proto::signing::verify(&k_first, &edge, &sig_a).expect("first half over the new keys");
    anonchat_proto::signing::verify(&k_second, &edge, &sig_b)
        .expect("second half over the new keys");
}

/// `c` signed anew by `k` (what a rotation does to every device's certificate).
fn recert(c: &DeviceCert, k: &SigningKey) -> DeviceCert {
    let mut c = c.clone();
    c.sig = Sig64(k.sign(&c.bytes_to_sign()).to_bytes());
    c
}

fn forged(msg: ServerMsg) -> Value {
    serde_json::to_value(ServerEnvelope::new(None, msg)).expect("envelope")
}

fn key_of(v: &Value) -> Key32 {
    Key32::from_base64(v["ak_pub"].as_str().expect("ak_pub")).expect("key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_swapped_with_a_forged_rotation_statement_is_an_unexplained_change() {
    // The "server" answers every key_history with a statement from alice's key to its own, signed
    // by its own key and by a key that is not alice's.
    let server_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let lie: std::sync::Arc<std::sync::Mutex<Option<AkRotation>>> = Default::default();
    let told = lie.clone();
    let tamper: Tamper = std::sync::Arc::new(move |dir, text| {
        rewrite(dir, text, Dir::ToClient, "key_history", |v| {
            if let Some(r) = told.lock().expect("lie").clone() {
                v["rotations"] = json!([r]);
            }
        })
    });
    let (_server, proxy) = proxied(Some(tamper)).await;
    let mut p = pair(&proxy.url()).await;
    let before = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let alice = Username::parse(&p.a_name).expect("name");
    let alice_ak = key_of(&proxy.recorded_messages("friend_request_in")[0]);
    let not_alice = SigningKey::generate(&mut rand::rngs::OsRng);
    let r = statement(&alice, alice_ak, &not_alice, &server_key);
    *lie.lock().expect("lie") = Some(r.clone());

    let push = forged(ServerMsg::KeyRotated {
        username: alice.clone(),
        ak_pub: r.new_ak,
    });
    assert_eq!(proxy.inject(&p.b_name, &push), 1);
    let warned = p.b.expect_event("key_changed").await;
    assert_eq!(warned["username"], p.a_name.as_str());
    assert_eq!(
        warned["rotated"], false,
        "a statement the old key did not sign explains nothing: {warned}"
    );
    // Bob asked for alice's rotations (after warning: the warning never waits for the server)
    // and got the forged one; once he has it (a round trip later), still no "rotated".
    proxy.recorded_at_least("key_history", 2).await;
    p.b.ok(json!({"cmd": "friends"})).await;
    assert!(
        !p.b.seen(|v| v["event"] == "key_changed" && v["rotated"] == true),
        "a forged statement never makes the change a rotation"
    );
    let pinned =
        p.b.ok(json!({"cmd": "safety_number", "username": p.a_name}))
            .await;
    assert_eq!(sn(&pinned), before, "the pinned key stays until bob trusts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_rotation_sent_to_the_account_s_own_devices_changes_nothing() {
    let (_server, proxy) = proxied(None).await;
    let mut p = pair(&proxy.url()).await;
    let before = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let mut a2 = Cli::start(&unique("pa2"), &p.home.0, &proxy.url()).await;
    let a2_id = enroll(&mut p.a, &mut a2, &p.a_name, false).await;
    a2.connect().await;
    // A round trip after the connect: a2's one-time keys went out before it, so they are recorded.
    a2.ok(json!({"cmd": "friends"})).await;
    let alice = Username::parse(&p.a_name).expect("name");
    let alice_ak = key_of(&proxy.recorded_messages("friend_request_in")[0]);
    let a2_cert: DeviceCert =
        serde_json::from_value(proxy.recorded_messages("enrolled")[0]["cert"].clone())
            .expect("a2 cert");
    assert_eq!(a2_cert.device_id, a2_id);
    let a2_otk = proxy
        .recorded_messages("upload_otks")
        .iter()
        .flat_map(|m| m["keys"].as_array().cloned().unwrap_or_default())
        .filter_map(|k| serde_json::from_value::<anonchat_proto::wire::SignedOtk>(k).ok())
        .find(|k| {
            anonchat_proto::signing::verify(
                &a2_cert.dk_ed25519,
                &anonchat_proto::signing::one_time_key_bytes(&a2_id, &k.key),
                &k.sig,
            )
            .is_ok()
        })
        .expect("one of a2's one-time keys, which the server holds");

    // The server "rotates" alice to its own key, with everything a real rotation carries made by
    // itself: its own device certified by its key, and a genuine Olm handover of its key's secret
    // to a2's one-time key. Only the old key's signature is missing (the server cannot make it).
    let server_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let server_device = vodozemac::olm::Account::new();
    let ids = server_device.identity_keys();
    let mut by = a2_cert.clone();
    by.device_id = "AAAAAAAAAAAAAAAAAAAAAA".into();
    by.dk_ed25519 = Key32(*ids.ed25519.as_bytes());
    by.dk_curve25519 = Key32(ids.curve25519.to_bytes());
    let mut olm = server_device
        .create_outbound_session(
            vodozemac::olm::SessionConfig::version_1(),
            vodozemac::Curve25519PublicKey::from_bytes(a2_cert.dk_curve25519.0),
            vodozemac::Curve25519PublicKey::from_bytes(a2_otk.key.0),
        )
        .expect("outbound session");
    let handover = anonchat_proto::enroll::Handover {
        username: alice.clone(),
        ak_secret: anonchat_proto::frames::SecretText::new(anonchat_proto::bytes::encode_b64(
            &server_key.to_bytes(),
        )),
        contacts: vec![],
        blocked: vec![],
    };
    // The blob as the protocol frames it: the Olm message type byte, then the message.
    let (kind, body) = olm
        .encrypt(&*handover.encode())
        .expect("encrypt")
        .to_parts();
    let blob = [vec![kind as u8], body].concat();
    let not_alice = SigningKey::generate(&mut rand::rngs::OsRng);
    let msg = forged(ServerMsg::AccountKeyRotated {
        rotation: Box::new(statement(&alice, alice_ak, &not_alice, &server_key)),
        cert: recert(&a2_cert, &server_key),
        by: recert(&by, &server_key),
        blob: anonchat_proto::bytes::Blob(blob),
    });
    assert_eq!(proxy.inject(&p.a_name, &msg), 2);
    for dev in [&mut p.a, &mut a2] {
        dev.expect("warning", |v| {
            v["event"] == "warning"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("account-key rotation"))
        })
        .await;
        let kept = dev
            .ok(json!({"cmd": "safety_number", "username": p.b_name}))
            .await;
        assert_eq!(sn(&kept), before, "the account key stays");
        assert!(!dev.seen(|v| v["event"] == "account_key_rotated"));
    }
    // And the key still speaks for the account: a chat with a2 opens as before.
    let session = open_session(&mut p.b, &mut a2, &p.a_name).await;
    say(&mut p.b, &mut a2, &session).await;
}

/// `ws` sends `msg` as request `id`; the answer must be an error (nothing changed).
async fn refused(ws: &mut anonchat_e2e::raw::Ws, id: u64, msg: Value, why: &str) {
    let answer = request(ws, id, msg).await;
    assert_eq!(answer["t"], "error", "{why}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_rotations_that_do_not_hold() {
    let server = Server::start().await;
    let url = server.url();
    let d1 = RawDevice::new(&unique("alice"));
    d1.register(&url).await;
    let d2 = d1.another_device();
    let mut ws1 = d1.connect(&url).await;
    d1.enroll(&mut ws1, &d2, &url).await;
    let mut ws2 = d2.connect(&url).await;
    let up = request(&mut ws2, 1, json!({"t": "upload_otks", "keys": [d2.otk()]})).await;
    assert_eq!(up["t"], "ok", "{up}");

    let new = SigningKey::generate(&mut rand::rngs::OsRng);
    let good = statement(&d1.username, d1.ak_pub(), &d1.ak, &new);
    let certs = json!([recert(&d1.cert, &new), recert(&d2.cert, &new)]);
    let handovers = json!([{"device_id": d2.cert.device_id, "blob": anonchat_proto::bytes::encode_b64(b"olm")}]);
    let rotate = |rotation: &AkRotation, certs: &Value, handovers: &Value| json!({"t": "rotate_account_key", "rotation": rotation, "certs": certs, "handovers": handovers});

    let not_old = SigningKey::generate(&mut rand::rngs::OsRng);
    let only_new = statement(&d1.username, d1.ak_pub(), &not_old, &new);
    refused(
        &mut ws1,
        10,
        rotate(&only_new, &certs, &handovers),
        "old key did not sign",
    )
    .await;
    let elsewhere = statement(
        &d1.username,
        Key32(not_old.verifying_key().to_bytes()),
        &not_old,
        &new,
    );
    refused(
        &mut ws1,
        11,
        rotate(&elsewhere, &certs, &handovers),
        "not the key on record",
    )
    .await;
    let one_cert = json!([recert(&d1.cert, &new)]);
    refused(
        &mut ws1,
        12,
        rotate(&good, &one_cert, &handovers),
        "a device left uncertified",
    )
    .await;
    let old_certs = json!([d1.cert, d2.cert]);
    refused(
        &mut ws1,
        13,
        rotate(&good, &old_certs, &handovers),
        "certificates by the old key",
    )
    .await;
    refused(
        &mut ws1,
        14,
        rotate(&good, &certs, &json!([])),
        "a device without the new key",
    )
    .await;
    let history = json!({"t": "key_history", "username": d1.username.as_str()});
    let none = request(&mut ws1, 15, history.clone()).await;
    assert_eq!(none["rotations"], json!([]), "{none}");

    // Only the account's own devices' one-time keys can be claimed.
    let stranger = RawDevice::new(&unique("mallory"));
    stranger.register(&url).await;
    let mut ws3 = stranger.connect(&url).await;
    let claim = json!({"t": "claim_device_otk", "device_id": d2.cert.device_id});
    refused(&mut ws3, 16, claim.clone(), "another account's device").await;
    let otk = request(&mut ws1, 17, claim).await;
    assert_eq!(otk["t"], "device_otk", "{otk}");
    // ... and a stranger cannot read the account's key history either.
    refused(&mut ws3, 18, history.clone(), "not a friend").await;

    let ok = request(&mut ws1, 19, rotate(&good, &certs, &handovers)).await;
    assert_eq!(ok["t"], "ok", "{ok}");
    loop {
        let m = anonchat_e2e::raw::recv(&mut ws2)
            .await
            .expect("rotation on d2");
        if m["t"] == "account_key_rotated" {
            assert_eq!(
                m["cert"],
                serde_json::to_value(recert(&d2.cert, &new)).expect("cert")
            );
            break;
        }
    }
    let kept = request(&mut ws1, 20, history).await;
    assert_eq!(kept["rotations"], json!([good]), "{kept}");
    refused(&mut ws1, 21, rotate(&good, &certs, &handovers), "replayed").await;
}
