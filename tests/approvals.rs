//! Every approval binds to what the user was shown (P8, issue 35): a server that names another key
//! after the user compared a safety number gets nothing trusted, signed or pinned by the user's
//! click. Real server and CLI processes, the "server" played by a tampering proxy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anonchat_e2e::cli::{befriend, open_session, pair, say};
use anonchat_e2e::proxy::{proxied, Dir, Tamper};
use anonchat_proto::signing::friend_bytes;
use anonchat_proto::wire::{ServerEnvelope, ServerMsg};
use anonchat_proto::{Key32, Sig64, Username};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

fn forged(msg: ServerMsg) -> Value {
    serde_json::to_value(ServerEnvelope::new(None, msg)).expect("envelope")
}

fn sn(v: &Value) -> String {
    v["safety_number"].as_str().expect("safety number").into()
}

/// A tamper that withholds every `t` answer to clients once `armed`.
fn withholding(t: &'static str, armed: Arc<AtomicBool>) -> Tamper {
    Arc::new(move |dir, text| {
        let hit = dir == Dir::ToClient
            && armed.load(Ordering::SeqCst)
            && serde_json::from_str::<Value>(&text).is_ok_and(|v| v["t"] == t);
        if hit {
            String::new()
        } else {
            text
        }
    })
}

/// Issue 35, item 1 (seen on the release binaries): bob rotated honestly and alice compared the
/// right number; the server then pushed its own key for bob and withheld `key_history`; alice's
/// "trust" pinned the server's key. Now the warning comes at once, and the trust names the number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusting_a_changed_key_pins_the_number_compared_not_the_key_the_server_named_last() {
    let armed = Arc::new(AtomicBool::new(false));
    let (_server, proxy) = proxied(Some(withholding("key_history", armed.clone()))).await;
    let mut p = pair(&proxy.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    armed.store(true, Ordering::SeqCst);

    p.b.ok(json!({"cmd": "rotate_account_key", "keep": []}))
        .await;
    let bob_sees = sn(&p
        .b
        .ok(json!({"cmd": "safety_number", "username": p.a_name}))
        .await);
    // Warned at once with the new number, whatever the server does with the history (it used to
    // wait up to 15 s for an answer the server never gave).
    let warned =
        p.a.expect_within(Duration::from_secs(5), "key_changed at once", |v| {
            v["event"] == "key_changed"
        })
        .await;
    assert_eq!(sn(&warned), bob_sees, "the number alice compares with bob");

    // After the comparison, the server names a key of its own for bob.
    let bob = Username::parse(&p.b_name).expect("name");
    let theirs = Key32(
        SigningKey::generate(&mut rand::rngs::OsRng)
            .verifying_key()
            .to_bytes(),
    );
    let push = forged(ServerMsg::KeyRotated {
        username: bob,
        ak_pub: theirs,
    });
    assert_eq!(proxy.inject(&p.a_name, &push), 1);
    let compared = bob_sees.clone();
    let swapped =
        p.a.expect("the server's key, announced too", move |v| {
            v["event"] == "key_changed" && v["safety_number"] != compared.as_str()
        })
        .await;

    // Alice trusts what she compared: exactly bob's key is pinned.
    p.a.ok(json!({"cmd": "trust_new_key", "username": p.b_name, "safety_number": bob_sees}))
        .await;
    let pinned =
        p.a.ok(json!({"cmd": "safety_number", "username": p.b_name}))
            .await;
    assert_eq!(sn(&pinned), bob_sees);
    // The server's key is no longer waiting: nothing can trust it by that warning.
    let late =
        p.a.call(json!({"cmd": "trust_new_key", "username": p.b_name, "safety_number": swapped["safety_number"]}))
            .await;
    assert_eq!(late["ok"], false, "{late}");
    assert_eq!(late["code"], "nothing_pending", "{late}");
    assert_eq!(
        sn(&p
            .a
            .ok(json!({"cmd": "safety_number", "username": p.b_name}))
            .await),
        bob_sees
    );
    // And the chat opens with the real bob.
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    say(&mut p.a, &mut p.b, &session).await;
}

/// A number that is not the one held is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusting_or_verifying_with_a_number_not_shown_is_refused() {
    let (_server, proxy) = proxied(None).await;
    let mut p = pair(&proxy.url()).await;
    let before = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    p.b.ok(json!({"cmd": "rotate_account_key", "keep": []}))
        .await;
    let warned = p.a.expect_event("key_changed").await;
    let wrong = before.clone();
    for shown in [wrong.as_str(), "", "12345"] {
        let r =
            p.a.call(json!({"cmd": "trust_new_key", "username": p.b_name, "safety_number": shown}))
                .await;
        assert_eq!(r["code"], "not_what_was_shown", "{shown}: {r}");
    }
    assert_eq!(
        sn(&p
            .a
            .ok(json!({"cmd": "safety_number", "username": p.b_name}))
            .await),
        before,
        "still the old pin"
    );
    // Marking verified binds to the number compared too.
    let r = p
        .a
        .call(json!({"cmd": "mark_verified", "username": p.b_name, "safety_number": sn(&warned)}))
        .await;
    assert_eq!(r["code"], "not_what_was_shown", "{r}");
    p.a.ok(json!({"cmd": "mark_verified", "username": p.b_name, "safety_number": before}))
        .await;
    p.a.ok(json!({"cmd": "trust_new_key", "username": p.b_name, "safety_number": warned["safety_number"]}))
        .await;
}

/// `accept_friend` had the same shape: it signed whatever request the server delivered last. The
/// request shown now stays, and the acceptance names its number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_a_friend_request_the_server_replaced_after_it_was_shown_signs_nothing() {
    let (_server, proxy) = proxied(None).await;
    let mut p = pair(&proxy.url()).await;
    p.a.ok(json!({"cmd": "add_friend", "username": p.b_name}))
        .await;
    let shown = p.b.expect_event("friend_request").await;

    // The server delivers a second "request from alice" under a key of its own, validly signed.
    let fake = SigningKey::generate(&mut rand::rngs::OsRng);
    let fake_ak = Key32(fake.verifying_key().to_bytes());
    let alice = Username::parse(&p.a_name).expect("name");
    let bob = Username::parse(&p.b_name).expect("name");
    let bob_ak: Key32 = serde_json::from_value(
        proxy
            .recorded_messages("user")
            .first()
            .expect("alice's lookup of bob was recorded")["ak_pub"]
            .clone(),
    )
    .expect("bob's key");
    let sig = Sig64(
        fake.sign(&friend_bytes(&alice, &fake_ak, &bob, &bob_ak))
            .to_bytes(),
    );
    let push = forged(ServerMsg::FriendRequestIn {
        from: alice,
        ak_pub: fake_ak,
        sig,
    });
    assert_eq!(proxy.inject(&p.b_name, &push), 1);
    // The request shown stays: the second one is refused with a warning, never shown instead.
    p.b.expect("the second request refused", |v| {
        v["event"] == "warning"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("second friend request"))
    })
    .await;
    assert!(!p
        .b
        .seen(|v| v["event"] == "friend_request" && v["safety_number"] != shown["safety_number"]));
    let held = p.b.ok(json!({"cmd": "friend_requests"})).await;
    assert_eq!(held["requests"][0]["safety_number"], shown["safety_number"]);

    // A number that is not the one held signs nothing.
    let wrong = number_under(&p.b_name, &bob_ak, &p.a_name, &fake_ak);
    let r =
        p.b.call(json!({"cmd": "accept_friend", "username": p.a_name, "safety_number": wrong}))
            .await;
    assert_eq!(r["code"], "not_what_was_shown", "{r}");
    assert!(proxy.recorded_messages("friend_accept").is_empty());
    // Bob accepts what he was shown: alice's own key is the one signed and pinned.
    p.b.ok(json!({"cmd": "accept_friend", "username": p.a_name, "safety_number": shown["safety_number"]}))
        .await;
    let pinned =
        p.b.ok(json!({"cmd": "safety_number", "username": p.a_name}))
            .await;
    assert_eq!(pinned["safety_number"], shown["safety_number"]);
    p.a.expect_event("friend_added").await;
}

/// The safety number `me` would see for `them` under `their_ak`.
fn number_under(me: &str, my_ak: &Key32, them: &str, their_ak: &Key32) -> String {
    let me = Username::parse(me).expect("name");
    let them = Username::parse(them).expect("name");
    anonchat_proto::safety::grouped(&anonchat_proto::safety::safety_number(
        &me, my_ak, &them, their_ak,
    ))
}
