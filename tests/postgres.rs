//! The server on PostgreSQL (issue 14): the core flow end to end with real clients, P2 checked
//! against PostgreSQL's catalog and contents, and a database outage answered with clear errors and
//! recovered from without a restart.

use anonchat_e2e::cli::{befriend, open_session, pair, say};
use anonchat_e2e::postgres::Postgres;
use anonchat_e2e::raw::{request, RawDevice};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

async fn on_postgres(url: &str) -> Server {
    let opts = ServerOpts {
        extra: vec!["--database-url".into(), url.into()],
        ..ServerOpts::default()
    };
    Server::start_with(opts, TempDir::new("server")).await
}

async fn register(server: &Server, d: &RawDevice) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/v1/register", server.url()))
        .json(&d.register_request(8))
        .send()
        .await
        .expect("an answer")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_on_postgres_and_it_holds_only_the_p2_rows() {
    let pg = Postgres::start();
    let url = pg.database("chat");
    let server = on_postgres(&url).await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let said = say(&mut p.a, &mut p.b, &session).await;
    let back = say(&mut p.b, &mut p.a, &session).await;

    // Exactly P2's tables and columns (and sqlx's migration ledger).
    let tables = pg.psql(
        "chat",
        "SELECT table_name || ':' || string_agg(column_name, ',' ORDER BY column_name) \
         FROM information_schema.columns WHERE table_schema = 'public' \
         GROUP BY table_name ORDER BY table_name",
    );
    let want = [
        "_sqlx_migrations:checksum,description,execution_time,installed_on,success,version",
        "accounts:ak_pub,always_require_code,code_format,discovery_mode,fvc_salt,presence,static_code_hash,username",
        "ak_rotations:new_ak,old_ak,rowid,sig_new,sig_old,ts,username",
        "devices:caps,cert,device_id,dk_curve25519,dk_ed25519,revocation,revoked,rowid,username",
        "friendships:sig_a,sig_b,user_a,user_b",
        "tombstones:expires_at,name_hash",
    ];
    assert_eq!(tables.lines().collect::<Vec<_>>(), want);
    // Two accounts, their devices, one friendship; no chat text, no address anywhere.
    assert_eq!(pg.psql("chat", "SELECT count(*) FROM accounts").trim(), "2");
    assert_eq!(
        pg.psql("chat", "SELECT count(*) FROM friendships").trim(),
        "1"
    );
    let mut dump = String::new();
    for t in [
        "accounts",
        "devices",
        "friendships",
        "tombstones",
        "ak_rotations",
    ] {
        dump += &pg.psql("chat", &format!("SELECT t::text FROM {t} t"));
    }
    assert!(dump.contains(&p.a_name), "the directory holds the names");
    for secret in [said.as_str(), back.as_str(), "127.0.0.1"] {
        assert!(
            !dump.contains(secret),
            "{secret} is in the database:\n{dump}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_clear_error_and_the_server_recovers() {
    let mut pg = Postgres::start();
    let url = pg.database("outage");
    let server = on_postgres(&url).await;
    let a = RawDevice::new(&unique("pga"));
    assert_eq!(register(&server, &a).await, 200);
    let mut wa = a.connect(&server.url()).await;

    pg.stop();
    assert_eq!(
        register(&server, &RawDevice::new(&unique("pgb"))).await,
        500
    );
    let e = request(&mut wa, 1, json!({"t": "list_friends"})).await;
    assert_eq!(e["code"], "internal", "{e}");
    let health = reqwest::get(format!("{}/healthz", server.url()))
        .await
        .expect("healthz");
    assert_eq!(
        health.text().await.expect("body"),
        "ok",
        "the server stays up"
    );
    assert_eq!(request(&mut wa, 2, json!({"t": "ping"})).await["t"], "pong");

    // Back: the pool reconnects by itself.
    pg.run();
    assert_eq!(
        register(&server, &RawDevice::new(&unique("pgc"))).await,
        200
    );
    let friends = request(&mut wa, 3, json!({"t": "list_friends"})).await;
    assert_eq!(friends["t"], "friends", "{friends}");
    assert!(
        server.log().contains("store failure"),
        "the outage is in the log"
    );
}
