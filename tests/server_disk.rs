//! P2: after a scenario that touches every feature, the server's database holds only what DESIGN P2
//! lists — and no message text, no IP address, no code in clear.

use std::collections::BTreeMap;

use anonchat_e2e::cli::{open_session, say, Cli};
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};
use serde_json::json;
use sqlx::Row;

/// Every table and column the server may keep. Anything else on disk fails the test.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "_sqlx_migrations",
        &[
            "version",
            "description",
            "installed_on",
            "success",
            "checksum",
            "execution_time",
        ],
    ),
    (
        "accounts",
        &[
            "username",
            "ak_pub",
            "discovery_mode",
            "always_require_code",
            "fvc_salt",
            "code_format",
            "presence",
            "static_code_hash",
        ],
    ),
    (
        "devices",
        &[
            "device_id",
            "username",
            "dk_ed25519",
            "dk_curve25519",
            "caps",
            "cert",
            "revoked",
            "revocation",
        ],
    ),
    ("friendships", &["user_a", "user_b", "sig_a", "sig_b"]),
    ("tombstones", &["name_hash", "expires_at"]),
    (
        "ak_rotations",
        &["username", "old_ak", "new_ak", "ts", "sig_old", "sig_new"],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_disk_holds_only_what_p2_allows() {
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let mut a = Cli::start(&unique("pa"), &home.0, &server.url()).await;
    let mut b = Cli::start(&unique("pb"), &home.0, &server.url()).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;

    // Every feature so far: modes and codes, friends, rings, chat, search, rotation.
    b.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;
    let code = b.ok(json!({"cmd": "code"})).await["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    a.ok(json!({"cmd": "lookup", "username": b_name, "code": code}))
        .await;
    let sn = befriend_with_code(&mut a, &a_name, &mut b, &b_name, &code).await;
    let session = open_session(&mut a, &mut b, &b_name).await;
    let mut sent = vec![
        say(&mut a, &mut b, &session).await,
        say(&mut b, &mut a, &session).await,
    ];
    a.ok(json!({"cmd": "leave", "session": session})).await;
    b.expect_event("session_ended").await;
    a.ok(json!({"cmd": "set_mode", "mode": "public"})).await;
    b.ok(json!({"cmd": "search", "prefix": &a_name[..5]})).await;
    b.ok(json!({"cmd": "rotate_code"})).await;
    a.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;
    a.ok(json!({"cmd": "set_static_code", "code": "QuietRiver77"}))
        .await;
    sent.push("QUIETRIVER77".into());
    sent.push("QuietRiver77".into());
    let later = b.ok(json!({"cmd": "code"})).await["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    sent.push(sn.replace(' ', ""));
    // A second device enrolled through a code, then revoked.
    let open = a.ok(json!({"cmd": "enroll_open"})).await;
    let enroll_code = open["code"].as_str().unwrap_or_default().to_string();
    let mut a2 = Cli::start(&unique("pa2"), &home.0, &server.url()).await;
    a2.send(json!({"cmd": "enroll", "code": enroll_code})).await;
    let req = a.expect_event("enroll_request").await;
    a.ok(json!({"cmd": "enroll_approve", "device_id": req["device_id"], "fingerprint": req["fingerprint"]}))
        .await;
    a2.expect("reply to enroll", |v| {
        v["reply"] == "enroll" && v["ok"] == true
    })
    .await;
    a.ok(json!({"cmd": "revoke_device", "device_id": req["device_id"]}))
        .await;
    sent.push(enroll_code.replace('-', ""));
    a2.quit().await;
    // ... and the account key rotated after it (a transition statement is kept on disk).
    a.ok(json!({"cmd": "rotate_account_key", "keep": []})).await;
    a.quit().await;
    b.quit().await;

    let db = server.dir.0.join("server.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open db");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&pool)
        .await
        .expect("tables")
    {
        let table: String = t.get("name");
        let cols = sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .fetch_all(&pool)
            .await
            .expect("columns");
        found.insert(
            table,
            cols.iter().map(|c| c.get::<String, _>("name")).collect(),
        );
    }
    let allowed: BTreeMap<String, Vec<String>> = ALLOWED
        .iter()
        .map(|(t, cs)| (t.to_string(), cs.iter().map(|c| c.to_string()).collect()))
        .collect();
    assert_eq!(found, allowed, "the server's tables and columns");
    let accounts: i64 = sqlx::query("SELECT count(*) AS n FROM accounts")
        .fetch_one(&pool)
        .await
        .expect("count")
        .get("n");
    assert_eq!(accounts, 2);
    pool.close().await;

    // Nothing in clear anywhere in the files: no message, no safety number, no code, no address.
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(&server.dir.0)
        .expect("server dir")
        .flatten()
    {
        if f.file_name().to_string_lossy().starts_with("server.db") {
            bytes.extend(std::fs::read(f.path()).expect("db file"));
        }
    }
    assert!(
        bytes.windows(a_name.len()).any(|w| w == a_name.as_bytes()),
        "usernames are stored (so the search is real)"
    );
    for secret in sent.iter().chain([&code, &later, &"127.0.0.1".to_string()]) {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} found on the server's disk"
        );
    }
}

async fn befriend_with_code(
    a: &mut Cli,
    a_name: &str,
    b: &mut Cli,
    b_name: &str,
    code: &str,
) -> String {
    let sent = a
        .ok(json!({"cmd": "add_friend", "username": b_name, "code": code}))
        .await;
    let req = b.expect_event("friend_request").await;
    b.ok(
        json!({"cmd": "accept_friend", "username": a_name, "safety_number": req["safety_number"]}),
    )
    .await;
    a.expect_event("friend_added").await;
    sent["safety_number"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
