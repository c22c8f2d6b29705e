//! Several devices of one account (DESIGN §7): enrollment through the typed code and through the QR
//! string, rings to every device with the first answer winning, and AK-signed revocation — of a device
//! in a live chat, and of one that was offline and comes back.

use anonchat_e2e::cli::{befriend, enroll, keychain_has, pair, say, Cli, Pair};
use anonchat_e2e::server::{accounts, Server};
use anonchat_e2e::unique;
use serde_json::{json, Value};

fn device<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["device_id"] == id)
        .unwrap_or_else(|| panic!("device {id} not listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_device_by_code_rings_alongside_and_is_revoked_mid_chat() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        home,
        ..
    } = pair(&server.url()).await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;

    let a2_profile = unique("pa2");
    let mut a2 = Cli::start(&a2_profile, &home.0, &server.url()).await;
    let a2_id = enroll(&mut a, &mut a2, &a_name, false).await;
    assert!(
        keychain_has(&a2_profile),
        "the new device keeps its keys in the keychain"
    );
    // The contact list came over: the same pinned key, so the same safety number.
    let sn = |v: Value| v["safety_number"].as_str().expect("sn").to_string();
    let on_a = sn(a
        .ok(json!({"cmd": "safety_number", "username": b_name}))
        .await);
    let on_a2 = sn(a2
        .ok(json!({"cmd": "safety_number", "username": b_name}))
        .await);
    assert_eq!(on_a, on_a2);
    a2.connect().await;
    let list = a.ok(json!({"cmd": "devices"})).await;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(2));
    let listed = device(&list, &a2_id);
    assert_eq!(listed["online"], true);
    assert_eq!(listed["certified"], true);
    assert_eq!(listed["this_device"], false);

    // Bob rings alice: both devices ring; the second answers; the first stops ringing.
    let ring = b.ok(json!({"cmd": "ring", "username": a_name})).await;
    let id = ring["ring_id"].as_str().expect("ring id").to_string();
    for dev in [&mut a, &mut a2] {
        let incoming = dev.expect_event("incoming_ring").await;
        assert_eq!(incoming["ring_id"], id.as_str());
    }
    a2.ok(json!({"cmd": "answer", "ring_id": id, "accept": true}))
        .await;
    let ended = a.expect_event("ring_ended").await;
    assert_eq!(ended["reason"], "answered_elsewhere");
    b.expect_event("session_open").await;
    a2.expect_event("session_open").await;
    say(&mut b, &mut a2, &id).await;
    say(&mut a2, &mut b, &id).await;

    // The first device revokes the second while it chats: its connection is closed at once, it
    // checks the account key's signature, wipes the chat and deletes its keys; bob's side ends.
    a.ok(json!({"cmd": "revoke_device", "device_id": a2_id}))
        .await;
    a2.expect_event("device_revoked").await;
    let over = b.expect_event("session_ended").await;
    assert_eq!(over["session"], id.as_str());
    assert_eq!(over["wiped"], true);
    assert!(
        !keychain_has(&a2_profile),
        "the revoked device deleted its keys"
    );
    assert!(!home.0.join("profiles").join(&a2_profile).exists());
    let who = a2.ok(json!({"cmd": "whoami"})).await;
    assert!(who["username"].is_null(), "{who}");
    let failed = a2.call(json!({"cmd": "connect"})).await;
    assert_eq!(failed["ok"], false, "no identity left to connect with");
    let list = a.ok(json!({"cmd": "devices"})).await;
    let listed = device(&list, &a2_id);
    assert_eq!(listed["revoked"], true);
    assert_eq!(listed["online"], false);

    // Only the first device rings now.
    let ring = b.ok(json!({"cmd": "ring", "username": a_name})).await;
    let incoming = a.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], ring["ring_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_by_qr_string_revoked_while_offline_is_refused_and_wipes_itself() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        home,
        ..
    } = pair(&server.url()).await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;

    let a3_profile = unique("pa3");
    let mut a3 = Cli::start(&a3_profile, &home.0, &server.url()).await;
    let a3_id = enroll(&mut a, &mut a3, &a_name, true).await;
    a3.connect().await;
    let friends = a3.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"][0]["username"], b_name.as_str());
    a3.quit().await;

    a.ok(json!({"cmd": "revoke_device", "device_id": a3_id}))
        .await;
    let mut a3 = Cli::start(&a3_profile, &home.0, &server.url()).await;
    let who = a3.ok(json!({"cmd": "whoami"})).await;
    assert_eq!(
        who["username"],
        a_name.as_str(),
        "still has its keys while offline"
    );
    a3.ok(json!({"cmd": "connect"})).await;
    a3.expect_event("device_revoked").await;
    assert!(
        !a3.seen(|v| v["event"] == "connected"),
        "never authenticated"
    );
    assert!(!keychain_has(&a3_profile));
    assert!(!home.0.join("profiles").join(&a3_profile).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_refusals_change_nothing() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        home,
        ..
    } = pair(&server.url()).await;
    let mut n = Cli::start(&unique("pn"), &home.0, &server.url()).await;

    // A code nobody opened.
    let wrong = n.call(json!({"cmd": "enroll", "code": "ZZZZ-ZZZZ"})).await;
    assert_eq!(wrong["ok"], false);
    assert_eq!(wrong["error"], "User not found or offline.");

    // Declined by the old device.
    let open = a.ok(json!({"cmd": "enroll_open"})).await;
    n.send(json!({"cmd": "enroll", "code": open["code"]})).await;
    let req = a.expect_event("enroll_request").await;
    a.ok(json!({"cmd": "enroll_decline", "device_id": req["device_id"]}))
        .await;
    let no = n
        .expect("reply to enroll", |v| v["reply"] == "enroll")
        .await;
    assert_eq!(no["ok"], false, "{no}");
    let who = n.ok(json!({"cmd": "whoami"})).await;
    assert!(who["username"].is_null());

    // A code is good for one device: approved once, then it is spent.
    let open = a.ok(json!({"cmd": "enroll_open"})).await;
    let mut n2 = Cli::start(&unique("pn2"), &home.0, &server.url()).await;
    n2.send(json!({"cmd": "enroll", "code": open["code"]}))
        .await;
    let req = a.expect_event("enroll_request").await;
    a.ok(json!({"cmd": "enroll_approve", "device_id": req["device_id"], "fingerprint": req["fingerprint"]}))
        .await;
    n2.expect("reply to enroll", |v| {
        v["reply"] == "enroll" && v["ok"] == true
    })
    .await;
    let again = n.call(json!({"cmd": "enroll", "code": open["code"]})).await;
    assert_eq!(again["ok"], false);

    // Nobody revokes another account's device (a device giving itself up: `a_device_gives_itself_up_and_the_last_one_deletes_the_account`).
    let theirs = b
        .call(json!({"cmd": "revoke_device", "device_id": req["device_id"]}))
        .await;
    assert_eq!(theirs["ok"], false);
    let list = a.ok(json!({"cmd": "devices"})).await;
    assert!(
        list["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .all(|d| d["revoked"] == false),
        "{list}"
    );
    let _ = a_name;
}

/// Panic's "also revoke this device" (DESIGN §8), through the command both the CLI and the app
/// run: a device gives itself up — revoked on the server (AK-signed, like any revocation), its
/// keys and profile erased here; the account's last device cannot merely revoke itself, so giving
/// it up deletes the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_gives_itself_up_and_the_last_one_deletes_the_account() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        a_profile,
        home,
        ..
    } = pair(&server.url()).await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    let a2_profile = unique("pa2");
    let mut a2 = Cli::start(&a2_profile, &home.0, &server.url()).await;
    let a2_id = enroll(&mut a, &mut a2, &a_name, false).await;
    a2.connect().await;

    let gone = a2.ok(json!({"cmd": "retire_this_device"})).await;
    assert_eq!(gone["account_deleted"], false, "{gone}");
    assert_eq!(gone["server_told"], true, "{gone}");
    a2.expect_event("device_revoked").await;
    assert!(!keychain_has(&a2_profile), "its keys are erased");
    assert!(!home.0.join("profiles").join(&a2_profile).exists());
    let who = a2.ok(json!({"cmd": "whoami"})).await;
    assert!(who["username"].is_null(), "{who}");
    let list = a.ok(json!({"cmd": "devices"})).await;
    assert_eq!(device(&list, &a2_id)["revoked"], true, "{list}");

    // Now the only device: revoking itself is refused by the server (it would orphan the account).
    let mine = list["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["this_device"] == true)
        .expect("this device")["device_id"]
        .clone();
    let own = a
        .call(json!({"cmd": "revoke_device", "device_id": mine}))
        .await;
    assert_eq!(own["ok"], false, "{own}");
    assert!(accounts(&server.database_url()).await.contains(&a_name));

    // Giving it up deletes the account.
    let gone = a.ok(json!({"cmd": "retire_this_device"})).await;
    assert_eq!(gone["account_deleted"], true, "{gone}");
    assert_eq!(gone["server_told"], true, "{gone}");
    assert!(!keychain_has(&a_profile), "its keys are erased");
    assert!(
        !accounts(&server.database_url()).await.contains(&a_name),
        "the account is gone from the server"
    );
    let ring = b.call(json!({"cmd": "ring", "username": a_name})).await;
    assert_eq!(ring["ok"], false, "{ring}");
}
