//! The server run in-process through `serve::Server`: what `main.rs` does, without a child process.

use anonchat_server::serve::{ServeError, Server};
use anonchat_server::Config;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn config(dir: &std::path::Path, db: &str) -> Config {
    Config::parse_from([
        "anonchat-server",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        db,
        "--secret-file",
        dir.join("secret").to_str().expect("a UTF-8 temp path"),
        "--log-retention-days",
        "0",
    ])
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("anonchat-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a temp dir");
    d
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn serves_until_shut_down_then_returns() {
    let dir = temp_dir("up");
    let db = format!("sqlite://{}", dir.join("db").display());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = Server::new(config(&dir, &db), listener)
        .await
        .expect("a server");
    let addr = server.local_addr().expect("bound");
    assert_eq!(server.origin(), format!("http://{addr}"));
    let stop = CancellationToken::new();
    let running = tokio::spawn(server.run(anonchat_server::logs::Sink::Off, stop.clone()));
    let health = get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let cfg = get(addr, "/v1/config").await;
    assert!(cfg.contains("\"register_pow_bits\":18"), "{cfg}");
    stop.cancel();
    running
        .await
        .expect("the server task")
        .expect("a clean shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_database_it_cannot_open_is_a_clear_error() {
    let dir = temp_dir("nodb");
    let db = format!("sqlite://{}", dir.join("missing/sub/db").display());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let err = Server::new(config(&dir, &db), listener)
        .await
        .err()
        .expect("no server without its database");
    assert!(matches!(err, ServeError::Store(_)), "{err}");
    assert!(err.to_string().starts_with("opening the database"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
