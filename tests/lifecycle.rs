//! Account deletion: AK-signed, rows gone, the name reserved by a keyed-hash tombstone, and nothing of
//! the account left on the device.

use anonchat_e2e::cli::{befriend, Cli};
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};
use serde_json::json;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_it_everywhere_and_reserves_the_name() {
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let pb = unique("pb");
    let mut a = Cli::start(&unique("pa"), &home.0, &server.url()).await;
    let mut b = Cli::start(&pb, &home.0, &server.url()).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    assert!(home.0.join("profiles").join(&pb).exists());

    b.ok(json!({"cmd": "delete_account"})).await;
    let who = b.ok(json!({"cmd": "whoami"})).await;
    assert!(
        who["username"].is_null(),
        "the engine forgot the identity: {who}"
    );
    assert!(
        !home.0.join("profiles").join(&pb).exists(),
        "the profile folder is gone"
    );
    let listed = std::process::Command::new("secret-tool")
        .args([
            "search",
            "--all",
            "service",
            "anonchat",
            "username",
            &format!("profile:{pb}"),
        ])
        .output()
        .expect("secret-tool");
    let out = String::from_utf8_lossy(&listed.stdout).to_string()
        + &String::from_utf8_lossy(&listed.stderr);
    assert!(
        !out.contains(&format!("profile:{pb}")),
        "the keychain entry is gone: {out}"
    );

    // On the server: no friend left, not found, the name taken for now.
    let friends = a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"], json!([]));
    let gone = a.call(json!({"cmd": "lookup", "username": b_name})).await;
    assert_eq!(gone["error"], "User not found or offline.");
    let mut squatter = Cli::start(&unique("px"), &home.0, &server.url()).await;
    let taken = squatter
        .call(json!({"cmd": "register", "username": b_name}))
        .await;
    assert_eq!(taken["ok"], false);
    assert_eq!(taken["error"], "the username is taken");

    let db = server.dir.0.join("server.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("db");
    for (table, col) in [
        ("accounts", "username"),
        ("devices", "username"),
        ("friendships", "user_a"),
        ("friendships", "user_b"),
    ] {
        let n: i64 = sqlx::query(&format!(
            "SELECT count(*) AS n FROM {table} WHERE {col} = ?"
        ))
        .bind(&b_name)
        .fetch_one(&pool)
        .await
        .expect("count")
        .get("n");
        assert_eq!(n, 0, "{table}.{col} still names the deleted account");
    }
    let stones = sqlx::query("SELECT name_hash, expires_at FROM tombstones")
        .fetch_all(&pool)
        .await
        .expect("tombstones");
    assert_eq!(stones.len(), 1);
    let hash: Vec<u8> = stones[0].get("name_hash");
    assert_eq!(hash.len(), 32);
    assert!(!hash.windows(b_name.len()).any(|w| w == b_name.as_bytes()));
    let expires: i64 = stones[0].get("expires_at");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    assert!(
        (expires - now - 30 * 86_400).abs() < 120,
        "reserved for 30 days"
    );
}
