//! The server terminating TLS itself, and clients speaking `https://` and `wss://` to it.

use anonchat_e2e::cli::{befriend, open_session, say, Cli};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

/// A self-signed certificate for 127.0.0.1, made with openssl.
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=anonchat-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl could not make a certificate");
    (cert.display().to_string(), key.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_chat_through_a_server_that_terminates_tls() {
    let certs = TempDir::new("tls");
    let (cert, key) = self_signed(&certs.0);
    let server = Server::start_with(
        ServerOpts {
            extra: vec!["--tls-cert".into(), cert.clone(), "--tls-key".into(), key],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = format!("https://{}", server.addr);
    let home = TempDir::new("clients");

    // Without trusting the certificate, the client refuses to talk.
    let mut wary = Cli::start(&unique("pw"), &home.0, &url).await;
    let refused = wary
        .call(json!({"cmd": "register", "username": unique("wary")}))
        .await;
    assert_eq!(
        refused["ok"], false,
        "an untrusted certificate must be refused: {refused}"
    );

    let env = [("ANONCHAT_CA_CERT", cert.as_str())];
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let mut a = Cli::start_with_env(&unique("pa"), &home.0, &url, &env).await;
    let mut b = Cli::start_with_env(&unique("pb"), &home.0, &url, &env).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await; // wss://, device signature over the https origin
    b.connect().await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    let session = open_session(&mut a, &mut b, &b_name).await;
    say(&mut a, &mut b, &session).await;
}
