//! Account deletion: AK-signed, rows gone, the name reserved by a keyed-hash tombstone, and nothing of
//! the account left on the device.

use anonchat_e2e::cli::{befriend, burner_profiles, keychain_has, pair, Cli, Pair};
use anonchat_e2e::server::{accounts, Server, ServerOpts};
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

/// A `--burner` run of the CLI under `home` on `server`: the run, its alias, and its profile (the
/// one folder marked as a burner's).
async fn cli_burner(home: &std::path::Path, server: &str) -> (Cli, String, String) {
    let mut burner =
        Cli::start_with_env("ignored", home, server, &[("ANONCHAT_BURNER", "1")]).await;
    let alias = burner.ok(json!({"cmd": "whoami"})).await["username"]
        .as_str()
        .expect("an alias")
        .to_string();
    let profile = burner_profiles(home)
        .into_iter()
        .find(|p| home.join("profiles").join(p).join("burner").is_file())
        .expect("the burner's profile");
    (burner, alias, profile)
}

/// Waits until `profile`'s folder under `home` is gone.
async fn folder_gone(home: &std::path::Path, profile: &str) {
    let dir = home.join("profiles").join(profile);
    let t0 = std::time::Instant::now();
    while dir.exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "{profile} is still on disk: {:?}",
            std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A burner whose server is away when its run ends is erased from this machine at once — keys,
/// keychain entry, contacts — keeping only its signed deletion (no key in it); the next lasting
/// run of the CLI sends that deletion once the server is back, and the account is gone there too
/// (issue 35, item 9: before, the keys and profile stayed on disk, and only the desktop app ever
/// cleaned up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burner_is_erased_here_even_when_the_server_is_away_and_deleted_there_later() {
    let single = || ServerOpts {
        single: true,
        ..Default::default()
    };
    let server = Server::start_with(single(), TempDir::new("server")).await;
    let (addr, db) = (server.addr, server.database_url());
    let home = TempDir::new("burner-away");
    let (mut burner, alias, profile) = cli_burner(&home.0, &server.url()).await;
    assert!(keychain_has(&profile));
    assert!(accounts(&db).await.contains(&alias));

    let dir = server.kill().await;
    burner.expect_event("disconnected").await;
    burner.send(json!({"cmd": "quit"})).await;
    let _ = burner.wait().await;
    assert!(
        !keychain_has(&profile),
        "the keys left the keychain at once"
    );
    let left: Vec<String> = std::fs::read_dir(home.0.join("profiles").join(&profile))
        .expect("the signed deletion is kept")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    assert_eq!(
        left,
        vec!["deletion.json".to_string()],
        "nothing but the deletion"
    );
    let kept =
        std::fs::read_to_string(home.0.join("profiles").join(&profile).join("deletion.json"))
            .expect("deletion");
    let kept: serde_json::Value = serde_json::from_str(&kept).expect("json");
    let mut fields: Vec<&str> = kept
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort();
    assert_eq!(fields, ["server", "server_pin", "sig", "ts", "username"]);

    // The server comes back with the account still there; a chat run of the CLI (any profile)
    // finishes the leftover.
    let server = Server::start_with(
        ServerOpts {
            listen: addr.to_string(),
            ..single()
        },
        dir,
    )
    .await;
    assert!(accounts(&db).await.contains(&alias));
    let mut other = Cli::start(&unique("po"), &home.0, &server.url()).await;
    folder_gone(&home.0, &profile).await;
    assert!(
        !accounts(&db).await.contains(&alias),
        "the account is deleted on the server"
    );
    other.ok(json!({"cmd": "whoami"})).await;
}

/// A burner run killed outright leaves its profile behind; the next lasting CLI run deletes it
/// on the server and here (before, only the desktop app's start did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cli_burner_is_finished_by_the_next_cli_run() {
    let server = Server::start().await;
    let home = TempDir::new("burner-killed");
    let (burner, alias, profile) = cli_burner(&home.0, &server.url()).await;
    burner.kill().await;
    assert!(keychain_has(&profile), "a killed run could erase nothing");
    let _other = Cli::start(&unique("po"), &home.0, &server.url()).await;
    folder_gone(&home.0, &profile).await;
    assert!(!keychain_has(&profile));
    assert!(!accounts(&server.database_url()).await.contains(&alias));
}

/// `POST /v1/delete` takes only a deletion the account key signed, recently: a forged, altered,
/// stale or malformed one changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_deletion_without_a_session_takes_only_the_account_key_s_signature() {
    use anonchat_e2e::raw::RawDevice;
    use ed25519_dalek::Signer;
    let server = Server::start().await;
    let name = unique("del");
    let dev = RawDevice::new(&name);
    dev.register(&server.url()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let signed = |key: &ed25519_dalek::SigningKey, user: &str, ts: u64| {
        let u = anonchat_proto::Username::parse(user).expect("name");
        let sig = key.sign(&anonchat_proto::signing::delete_account_bytes(&u, ts));
        json!({"v": 1, "username": user, "ts": ts, "sig": anonchat_proto::Sig64(sig.to_bytes())})
    };
    let http = reqwest::Client::new();
    let post = |body: String| {
        let http = http.clone();
        let url = format!("{}/v1/delete", server.url());
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let stranger = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut altered = signed(&dev.ak, &name, now);
    altered["ts"] = json!(now + 1);
    for (why, body, want) in [
        (
            "another key",
            signed(&stranger, &name, now).to_string(),
            400,
        ),
        ("altered after signing", altered.to_string(), 400),
        (
            "signed 15 days ago",
            signed(&dev.ak, &name, now - 15 * 86_400).to_string(),
            400,
        ),
        (
            "signed an hour ahead",
            signed(&dev.ak, &name, now + 3600).to_string(),
            400,
        ),
        ("not json", "{".to_string(), 400),
        (
            "another version",
            {
                let mut b = signed(&dev.ak, &name, now);
                b["v"] = json!(9);
                b.to_string()
            },
            400,
        ),
        (
            "no such account",
            signed(&stranger, &unique("ghost"), now).to_string(),
            404,
        ),
    ] {
        let (status, body) = post(body).await;
        assert_eq!(status, want, "{why}: {body}");
        assert!(
            accounts(&server.database_url()).await.contains(&name),
            "{why} deleted it"
        );
    }
    // Signed a day ago by the account key (a burner's, resent at the next start): taken.
    let (status, body) = post(signed(&dev.ak, &name, now - 86_400).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert!(!accounts(&server.database_url()).await.contains(&name));
    // Sent again: the account is gone, and says so.
    let (status, _) = post(signed(&dev.ak, &name, now).to_string()).await;
    assert_eq!(status, 404);
}

/// A leftover burner is finished on the server it was made on, not the one the CLI run that
/// finds it points at: before, the cleaner burnt it against that other server, which answered
/// "no such account", and the keys were erased here while the account stayed on its own server
/// (found by the attack review of issue 35).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_burner_is_deleted_on_its_own_server_not_the_one_the_cli_runs_against() {
    let single = || ServerOpts {
        single: true,
        ..Default::default()
    };
    let a = Server::start_with(single(), TempDir::new("server-a")).await;
    let b = Server::start_with(single(), TempDir::new("server-b")).await;
    let home = TempDir::new("burner-two-servers");
    let (burner, alias, profile) = cli_burner(&home.0, &a.url()).await;
    burner.kill().await;
    assert!(accounts(&a.database_url()).await.contains(&alias));
    // A lasting CLI run of another profile, against another server.
    let _other = Cli::start(&unique("po"), &home.0, &b.url()).await;
    folder_gone(&home.0, &profile).await;
    assert!(
        !accounts(&a.database_url()).await.contains(&alias),
        "the burner's account stays on its own server"
    );
}

/// Only a burner is ever burnt: an ordinary run may not take a `burner-…` profile name, and a
/// folder so named that was never marked as a burner's is left alone by the cleaner (before, any
/// profile so named had its account deleted by the next lasting run — found by the attack review
/// of issue 35).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_burners_are_burnt_whatever_a_profile_is_named() {
    let server = Server::start().await;
    let home = TempDir::new("burner-named");
    let named = unique("burner-w");
    let refused = tokio::process::Command::new(anonchat_e2e::bin("anonchat-cli"))
        .args(["--profile", &named, "--server", &server.url(), "whoami"])
        .env("ANONCHAT_HOME", &home.0)
        .output()
        .await
        .expect("run the CLI");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("are for burners"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // An unmarked folder named like a burner's, and a real leftover burner beside it.
    let unmarked = home.0.join("profiles").join(unique("burner-x"));
    std::fs::create_dir_all(&unmarked).expect("folder");
    std::fs::write(unmarked.join("kept"), b"the user's").expect("file");
    let (burner, _, leftover) = cli_burner(&home.0, &server.url()).await;
    burner.kill().await;
    let _other = Cli::start(&unique("po"), &home.0, &server.url()).await;
    // The cleaner's one pass over the folders is done once the real leftover is gone.
    folder_gone(&home.0, &leftover).await;
    assert!(
        unmarked.join("kept").is_file(),
        "the unmarked folder was touched"
    );
}
