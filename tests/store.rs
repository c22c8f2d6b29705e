//! The store suite (issue 14): one set of checks over the server's persistent rows, run against every
//! backend — SQLite (the embedded default) and a real PostgreSQL (a private instance on loopback).

use anonchat_e2e::postgres::Postgres;
use anonchat_e2e::TempDir;
use anonchat_proto::fvc::CodeFormat;
use anonchat_proto::rotation::AkRotation;
use anonchat_proto::wire::{Mode, PresenceMode};
use anonchat_proto::{Caps, DeviceCert, Key32, Sig64, Username};
use anonchat_server::store::{Backend, Store, StoreError, MAX_DEVICES};

fn user(name: &str) -> Username {
    Username::parse(name).expect("a valid name")
}

fn cert(user: &Username, id: u8) -> DeviceCert {
    DeviceCert {
        v: 1,
        username: user.clone(),
        device_id: format!("{id:022}"),
        dk_ed25519: Key32([id; 32]),
        dk_curve25519: Key32([id; 32]),
        caps: Caps::default(),
        created_at: 0,
        sig: Sig64([0; 64]),
    }
}

/// Every check, on one store.
async fn suite(store: &Store) {
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol_x"));
    // Accounts: registered once; a second registration of the name or the device is `Taken`.
    store
        .register(&alice, &Key32([1; 32]), &cert(&alice, 1), b"salt-a")
        .await
        .expect("register alice");
    assert!(matches!(
        store
            .register(&alice, &Key32([9; 32]), &cert(&alice, 90), b"s")
            .await,
        Err(StoreError::Taken)
    ));
    assert!(matches!(
        store
            .register(&bob, &Key32([2; 32]), &cert(&alice, 1), b"s")
            .await,
        Err(StoreError::Taken)
    ));
    store
        .register(&bob, &Key32([2; 32]), &cert(&bob, 2), b"salt-b")
        .await
        .expect("register bob");
    store
        .register(&carol, &Key32([3; 32]), &cert(&carol, 3), b"salt-c")
        .await
        .expect("register carol");
    assert_eq!(
        store.account_key(&alice).await.unwrap(),
        Some(Key32([1; 32]))
    );
    assert_eq!(store.account_key(&user("nobody")).await.unwrap(), None);

    // Gate settings: defaults, then each setter.
    let row = store.account(&alice).await.unwrap().expect("alice's row");
    assert_eq!(row.mode, Mode::Default);
    assert!(!row.always_require_code);
    assert_eq!(row.fvc_salt, b"salt-a");
    assert_eq!(row.format, CodeFormat::Digits { digits: 6 });
    assert_eq!(row.presence, PresenceMode::Exact);
    assert_eq!(row.static_code_hash, None);
    store
        .set_mode(&alice, Mode::Public, true, CodeFormat::Crockford, None)
        .await
        .unwrap();
    let row = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(
        (row.mode, row.always_require_code, row.format),
        (Mode::Public, true, CodeFormat::Crockford)
    );
    assert_eq!(
        row.fvc_salt, b"salt-a",
        "no new salt given: the old one stays"
    );
    store
        .set_mode(
            &alice,
            Mode::Public,
            false,
            CodeFormat::Digits { digits: 8 },
            Some(b"new"),
        )
        .await
        .unwrap();
    store
        .set_presence(&alice, PresenceMode::Recent)
        .await
        .unwrap();
    store
        .set_static_code(&alice, Some("$argon2id$x"))
        .await
        .unwrap();
    let row = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(row.fvc_salt, b"new");
    assert_eq!(row.format, CodeFormat::Digits { digits: 8 });
    assert_eq!(row.presence, PresenceMode::Recent);
    assert_eq!(row.static_code_hash.as_deref(), Some("$argon2id$x"));
    store.set_static_code(&alice, None).await.unwrap();
    store.rotate_salt(&alice, b"rotated").await.unwrap();
    let row = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(
        (row.static_code_hash, row.fvc_salt),
        (None, b"rotated".to_vec())
    );

    // Search: PUBLIC accounts only, by prefix, in name order; `_` is a letter, not a wildcard.
    store
        .set_mode(&carol, Mode::Public, false, CodeFormat::default(), None)
        .await
        .unwrap();
    assert_eq!(
        store.search_public("", 10).await.unwrap(),
        vec![alice.clone(), carol.clone()]
    );
    assert_eq!(
        store.search_public("a", 10).await.unwrap(),
        vec![alice.clone()]
    );
    assert_eq!(
        store.search_public("carol_", 10).await.unwrap(),
        vec![carol.clone()]
    );
    assert!(store.search_public("caro_x", 10).await.unwrap().is_empty());
    assert_eq!(store.search_public("", 1).await.unwrap().len(), 1);
    assert!(
        store.search_public("b", 10).await.unwrap().is_empty(),
        "bob is not public"
    );

    // Devices: up to the limit, listed in the order added, revoked with the signed revocation.
    for i in 10..(10 + MAX_DEVICES as u8 - 1) {
        store.add_device(&cert(&alice, i)).await.unwrap();
    }
    assert!(matches!(
        store.add_device(&cert(&alice, 99)).await,
        Err(StoreError::Taken)
    ));
    let listed = store.devices(&alice).await.unwrap();
    assert_eq!(listed.len(), MAX_DEVICES as usize);
    assert_eq!(
        listed[0].0.device_id,
        cert(&alice, 1).device_id,
        "in the order added"
    );
    assert_eq!(listed[1].0.device_id, cert(&alice, 10).device_id);
    let id = cert(&alice, 10).device_id;
    assert!(!store
        .revoke_device(&bob, &id, 5, &Sig64([7; 64]))
        .await
        .unwrap());
    assert!(store
        .revoke_device(&alice, &id, 5, &Sig64([7; 64]))
        .await
        .unwrap());
    let row = store.device(&id).await.unwrap().expect("device row");
    assert_eq!(row.username, alice);
    assert_eq!(row.dk_ed25519, Key32([10; 32]));
    assert!(row.revoked);
    assert_eq!(row.revocation, Some((5, Sig64([7; 64]))));
    assert_eq!(store.device("nope").await.unwrap().map(|d| d.revoked), None);

    // Friendships: one edge whichever side stores it, listed with keys and presence.
    store
        .add_friendship(&bob, &Sig64([2; 64]), &alice, &Sig64([1; 64]))
        .await
        .unwrap();
    store
        .add_friendship(&alice, &Sig64([1; 64]), &carol, &Sig64([3; 64]))
        .await
        .unwrap();
    assert!(store.are_friends(&alice, &bob).await.unwrap());
    assert!(store.are_friends(&bob, &alice).await.unwrap());
    assert!(!store.are_friends(&bob, &carol).await.unwrap());
    // The gate's one query: the account (if any) and the friendship, from either side.
    let (found, friends) = store.gate_facts(&bob, &alice).await.unwrap();
    assert_eq!(found.map(|a| a.ak_pub), Some(Key32([1; 32])));
    assert!(friends);
    let (found, friends) = store.gate_facts(&alice, &bob).await.unwrap();
    assert_eq!(found, store.account(&bob).await.unwrap());
    assert!(friends);
    let (found, friends) = store.gate_facts(&bob, &carol).await.unwrap();
    assert_eq!(found.map(|a| a.ak_pub), Some(Key32([3; 32])));
    assert!(!friends);
    let (found, friends) = store.gate_facts(&alice, &user("nobody")).await.unwrap();
    assert!(found.is_none() && !friends);
    let friends = store.friends(&alice).await.unwrap();
    assert_eq!(
        friends,
        vec![
            (bob.clone(), Key32([2; 32]), PresenceMode::Exact),
            (carol.clone(), Key32([3; 32]), PresenceMode::Exact)
        ]
    );
    assert!(store
        .resign_edge(&bob, &alice, &Sig64([4; 64]))
        .await
        .unwrap());
    assert!(!store
        .resign_edge(&bob, &carol, &Sig64([4; 64]))
        .await
        .unwrap());
    assert!(store.remove_friendship(&carol, &alice).await.unwrap());
    assert!(!store.remove_friendship(&carol, &alice).await.unwrap());

    // Key rotation: only from the key on record; the history in order.
    let rot = |old: u8, new: u8, ts: u64| AkRotation {
        username: bob.clone(),
        old_ak: Key32([old; 32]),
        new_ak: Key32([new; 32]),
        ts,
        sig_old: Sig64([old; 64]),
        sig_new: Sig64([new; 64]),
    };
    let mut bob_cert = cert(&bob, 2);
    bob_cert.sig = Sig64([5; 64]);
    assert!(!store
        .rotate_account_key(&rot(9, 5, 1), &[bob_cert.clone()])
        .await
        .unwrap());
    assert!(store
        .rotate_account_key(&rot(2, 5, 1), &[bob_cert.clone()])
        .await
        .unwrap());
    assert!(store
        .rotate_account_key(&rot(5, 6, 2), &[bob_cert.clone()])
        .await
        .unwrap());
    assert_eq!(store.account_key(&bob).await.unwrap(), Some(Key32([6; 32])));
    assert_eq!(
        store.key_history(&bob).await.unwrap(),
        vec![rot(2, 5, 1), rot(5, 6, 2)]
    );
    assert_eq!(store.devices(&bob).await.unwrap()[0].0.sig, Sig64([5; 64]));

    // Deleting an account takes its devices, friendships and rotations, and leaves a tombstone
    // that expires.
    store.delete_account(&bob, &[8; 32], 100).await.unwrap();
    assert_eq!(store.account_key(&bob).await.unwrap(), None);
    assert!(store
        .device(&cert(&bob, 2).device_id)
        .await
        .unwrap()
        .is_none());
    assert!(!store.are_friends(&alice, &bob).await.unwrap());
    assert!(store.key_history(&bob).await.unwrap().is_empty());
    assert!(store.tombstoned(&[8; 32], 99).await.unwrap());
    assert!(!store.tombstoned(&[8; 32], 100).await.unwrap(), "expired");
    assert!(!store.tombstoned(&[8; 32], 0).await.unwrap(), "and removed");
}

#[tokio::test]
async fn the_suite_on_sqlite() {
    let dir = TempDir::new("store");
    let store = Store::open(&format!("sqlite://{}", dir.0.join("s.db").display()))
        .await
        .expect("open sqlite");
    assert_eq!(store.backend(), Backend::Sqlite);
    suite(&store).await;
    store.close().await;
}

#[tokio::test]
async fn the_suite_on_postgres() {
    let pg = Postgres::start();
    let url = pg.database("suite");
    let store = Store::open(&url).await.expect("open postgres");
    assert_eq!(store.backend(), Backend::Postgres);
    suite(&store).await;
    store.close().await;
    // Opening again runs no migration twice.
    let again = Store::open(&url).await.expect("reopen postgres");
    assert!(again.account_key(&user("alice")).await.unwrap().is_some());
    again.close().await;
}
