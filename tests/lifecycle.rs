//! Account deletion: AK-signed, rows gone, the name reserved by a keyed-hash tombstone, and nothing of
//! the account left on the device.

use anonchat_e2e::cli::{befriend, keychain_has, pair, Cli, Pair};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::json;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_it_everywhere_and_reserves_the_name() {
    let server = Server::start().await;
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        b_profile: pb,
        home,
        ..
    } = pair(&server.url()).await;
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
    assert!(!keychain_has(&pb), "the keychain entry is gone");

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

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database_url())
        .await
        .expect("db");
    for (table, col) in [
        ("accounts", "username"),
        ("devices", "username"),
        ("friendships", "user_a"),
        ("friendships", "user_b"),
    ] {
        let n: i64 = sqlx::query(&format!(
            "SELECT count(*) AS n FROM {table} WHERE {col} = $1"
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

/// Two friends; `b` has quit. Returns the clients, b's profile, and the folder the profiles live in.
async fn friends_with_b_offline(server: &Server) -> (Cli, String, String, String, TempDir) {
    let Pair {
        mut a,
        mut b,
        a_name,
        b_name,
        b_profile: pb,
        home,
        ..
    } = pair(&server.url()).await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    b.quit().await;
    a.expect("b offline", |v| {
        v["event"] == "presence" && v["online"] == false
    })
    .await;
    (a, a_name, b_name, pb, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friends_ring_waits_for_an_offline_account_and_rings_the_first_device_that_connects() {
    let server = Server::start().await;
    let (mut a, _a_name, b_name, pb, home) = friends_with_b_offline(&server).await;
    let ring = a.ok(json!({"cmd": "ring", "username": b_name})).await;
    let mut b = Cli::start(&pb, &home.0, &server.url()).await;
    b.connect().await;
    let incoming = b.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], ring["ring_id"]);
    b.ok(json!({"cmd": "answer", "ring_id": incoming["ring_id"], "accept": true}))
        .await;
    a.expect_event("session_open").await;
    b.expect_event("session_open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_wake_intent_says_not_reachable_and_a_strict_server_keeps_none() {
    let short = Server::start_with(
        ServerOpts {
            extra: vec!["--ring-timeout-secs".into(), "2".into()],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let (mut a, ..) = friends_with_b_offline(&short).await;
    let b_name = a.ok(json!({"cmd": "friends"})).await["friends"][0]["username"].clone();
    a.ok(json!({"cmd": "ring", "username": b_name})).await;
    let ended = a.expect_event("ring_ended").await;
    assert_eq!(ended["reason"], "unavailable");

    let strict = Server::start_with(
        ServerOpts {
            extra: vec!["--strict".into()],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let (mut a, _, b_name, ..) = friends_with_b_offline(&strict).await;
    let refused = a.call(json!({"cmd": "ring", "username": b_name})).await;
    assert_eq!(
        refused["error"], "User not found or offline.",
        "no wake intents in strict mode"
    );
    assert!(
        !strict.log().contains("account"),
        "strict mode logs nothing about accounts: {}",
        strict.log()
    );
}

/// Starts a server that logs to `logs` with the given retention, registers one account on it, and
/// returns the name.
async fn register_once_with_logs(logs: &std::path::Path, days: &str) -> (Server, String) {
    let server = Server::start_with(
        ServerOpts {
            extra: vec![
                "--log-dir".into(),
                logs.display().to_string(),
                "--log-retention-days".into(),
                days.into(),
            ],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let home = TempDir::new("clients");
    let name = unique("logged");
    let mut c = Cli::start(&unique("pl"), &home.0, &server.url()).await;
    c.register(&name).await;
    c.quit().await;
    (server, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_are_kept_for_the_retention_and_zero_keeps_no_log() {
    let logs = TempDir::new("logs");
    let old = logs.0.join("anonchat-server.2026-01-01.log");
    let recent = logs.0.join("anonchat-server.2026-11-24.log");
    let unrelated = logs.0.join("notes.txt");
    for f in [&old, &recent, &unrelated] {
        std::fs::write(f, "x\n").expect("seed file");
    }
    for (f, age) in [
        (&old, "3 days ago"),
        (&recent, "1 day ago"),
        (&unrelated, "9 days ago"),
    ] {
        let ok = std::process::Command::new("touch")
            .args(["-d", age])
            .arg(f)
            .status()
            .expect("touch");
        assert!(ok.success());
    }
    let (server, name) = register_once_with_logs(&logs.0, "2").await;
    assert!(!old.exists(), "a log file past the retention is deleted");
    assert!(recent.exists(), "a log file within the retention is kept");
    assert!(
        unrelated.exists(),
        "only the server's own files are touched"
    );
    let today: String = std::fs::read_dir(&logs.0)
        .expect("log dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path() != recent && e.path() != unrelated)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        today.contains("account registered"),
        "today's file: {today:?}"
    );
    assert!(!today.contains(&name), "no username in the log");
    assert!(
        server.log().is_empty(),
        "nothing on standard error: {}",
        server.log()
    );

    let none = TempDir::new("nolog");
    let (server, _) = register_once_with_logs(&none.0, "0").await;
    let files: Vec<_> = std::fs::read_dir(&none.0)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        files.is_empty(),
        "retention 0 writes no log file: {files:?}"
    );
    assert!(
        server.log().is_empty(),
        "nor anything on standard error: {}",
        server.log()
    );
}

/// `anonchat-cli --burner`: a throwaway account under a random alias with a profile and keychain
/// entry of its own, usable at once, and deleted from the server and this machine when the run
/// ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_burner_is_deleted_when_its_run_ends() {
    let server = Server::start().await;
    let home = TempDir::new("burner-cli");
    let mut bob = Cli::start(&unique("pb"), &home.0, &server.url()).await;
    bob.register(&unique("bob")).await;
    bob.connect().await;
    let burner = Cli::start_with_env(
        "ignored",
        &home.0,
        &server.url(),
        &[("ANONCHAT_BURNER", "1")],
    )
    .await;
    let mut burner = burner;
    let alias = burner.ok(json!({"cmd": "whoami"})).await["username"]
        .as_str()
        .expect("an alias")
        .to_string();
    let profiles: Vec<String> = std::fs::read_dir(home.0.join("profiles"))
        .expect("profiles")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("burner-"))
        .collect();
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    assert!(keychain_has(&profiles[0]));
    // Reachable at once.
    bob.ok(json!({"cmd": "add_friend", "username": alias}))
        .await;
    burner.expect_event("friend_request").await;

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database_url())
        .await
        .expect("db");
    let count = |name: String| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT count(*) AS n FROM accounts WHERE username = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .expect("count")
                .get::<i64, _>("n")
        }
    };
    assert_eq!(count(alias.clone()).await, 1);
    burner.send(json!({"cmd": "quit"})).await;
    assert!(burner.wait().await.success(), "the run ended cleanly");
    assert_eq!(
        count(alias.clone()).await,
        0,
        "the account is gone from the server"
    );
    assert!(
        !home.0.join("profiles").join(&profiles[0]).exists(),
        "and its profile"
    );
    assert!(!keychain_has(&profiles[0]), "and its keychain entry");
}
