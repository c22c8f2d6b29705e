//! The server terminating TLS itself, and clients speaking `https://` and `wss://` to it.

use anonchat_e2e::cli::{befriend, open_session, say, Cli};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

/// A self-signed certificate for 127.0.0.1: the paths as text.
fn self_signed(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = anonchat_e2e::self_signed(dir);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_another_machine_is_refused() {
    let home = TempDir::new("clients");
    // A documentation address: nothing is sent anywhere, the client refuses before connecting.
    let mut c = Cli::start(&unique("pc"), &home.0, "http://203.0.113.5:7878").await;
    let refused = c
        .call(json!({"cmd": "register", "username": unique("carol")}))
        .await;
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("plain http:// is refused")),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_server_tls_key_is_a_blocking_warning_until_the_user_trusts_it() {
    let certs = TempDir::new("tls");
    let first = TempDir::new("tls1");
    let second = TempDir::new("tls2");
    let (cert1, key1) = self_signed(&first.0);
    let (cert2, key2) = self_signed(&second.0);
    let cert2_path = cert2.clone();
    // The client trusts both certificates (as it would two certificates from a public CA for the
    // same name): only the pin tells the servers apart.
    let both = certs.0.join("both.pem");
    let pem = std::fs::read_to_string(&cert1).expect("cert1")
        + &std::fs::read_to_string(&cert2).expect("cert2");
    std::fs::write(&both, pem).expect("write");
    let both = both.display().to_string();
    let server = Server::start_with(
        ServerOpts {
            extra: vec!["--tls-cert".into(), cert1, "--tls-key".into(), key1],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let addr = server.addr;
    let url = format!("https://{addr}");
    let home = TempDir::new("clients");
    let env = [("ANONCHAT_CA_CERT", both.as_str())];
    let profile = unique("pa");
    let mut a = Cli::start_with_env(&profile, &home.0, &url, &env).await;
    a.register(&unique("alice")).await;
    a.connect().await;

    // The "server" comes back with another key under the same name and address.
    let dir = server.kill().await;
    a.expect_event("disconnected").await;
    let _impostor = Server::start_with(
        ServerOpts {
            listen: addr.to_string(),
            extra: vec!["--tls-cert".into(), cert2, "--tls-key".into(), key2],
            ..Default::default()
        },
        dir,
    )
    .await;
    let warned = a.expect_event("server_key_changed").await;
    assert_eq!(warned["server"], url.as_str());
    assert_eq!(warned["fingerprint"], fingerprint(&cert2_path).as_str());
    let refused = a.call(json!({"cmd": "connect"})).await;
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("TLS key changed")),
        "{refused}"
    );
    assert!(
        !a.seen(|v| v["event"] == "connected"),
        "never connected to the impostor"
    );
    a.quit().await;

    // The pin is in the profile: a restarted client refuses too.
    let mut a = Cli::start_with_env(&profile, &home.0, &url, &env).await;
    let again = a.call(json!({"cmd": "connect"})).await;
    assert_eq!(again["ok"], false, "{again}");
    let warned = a.expect_event("server_key_changed").await;
    // The user accepts the change: the new key is pinned and the client connects.
    a.ok(json!({"cmd": "trust_server_key", "fingerprint": warned["fingerprint"]}))
        .await;
    a.connect().await;
    a.ok(json!({"cmd": "friends"})).await;
    let shown = a.ok(json!({"cmd": "server_key"})).await;
    assert_eq!(shown["fingerprint"], fingerprint(&cert2_path).as_str());
}

/// The fingerprint an operator publishes: SHA-256 of the certificate's SubjectPublicKeyInfo, as
/// `openssl` computes it, in the client's grouping.
fn fingerprint(cert: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der | sha256sum"
        ))
        .output()
        .expect("openssl");
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string();
    assert_eq!(hex.len(), 64, "{hex}");
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Issue 35, item 4 (seen on the release binaries): pinned A, warned on B, trusted — and C was
/// pinned silently, because trusting cleared the pin for the next handshake. The trust now names
/// the fingerprint the user was shown and pins exactly that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusting_a_new_server_key_pins_the_one_shown_and_a_third_is_refused_again() {
    let dirs: Vec<TempDir> = (0..3).map(|i| TempDir::new(&format!("tls{i}"))).collect();
    let pairs: Vec<(String, String)> = dirs.iter().map(|d| self_signed(&d.0)).collect();
    let certs = TempDir::new("tls");
    let all = certs.0.join("all.pem");
    let pem: String = pairs
        .iter()
        .map(|(c, _)| std::fs::read_to_string(c).expect("cert"))
        .collect();
    std::fs::write(&all, pem).expect("write");
    let all = all.display().to_string();
    let serve = |i: usize, listen: Option<String>, dir: TempDir| {
        let (cert, key) = pairs[i].clone();
        Server::start_with(
            ServerOpts {
                listen: listen.unwrap_or_else(|| "127.0.0.1:0".into()),
                extra: vec!["--tls-cert".into(), cert, "--tls-key".into(), key],
                ..Default::default()
            },
            dir,
        )
    };
    let server = serve(0, None, TempDir::new("server")).await;
    let addr = server.addr;
    let url = format!("https://{addr}");
    let home = TempDir::new("clients");
    let env = [("ANONCHAT_CA_CERT", all.as_str())];
    let mut a = Cli::start_with_env(&unique("pa"), &home.0, &url, &env).await;
    a.register(&unique("alice")).await;
    a.connect().await;
    let pinned = a.ok(json!({"cmd": "server_key"})).await;
    assert_eq!(pinned["fingerprint"], fingerprint(&pairs[0].0).as_str());

    // B answers: the user is shown B's fingerprint and compares it with the operator.
    let dir = server.kill().await;
    let b = serve(1, Some(addr.to_string()), dir).await;
    let on_b = a
        .expect("warned on B", |v| v["event"] == "server_key_changed")
        .await;
    let fp_b = fingerprint(&pairs[1].0);
    assert_eq!(on_b["fingerprint"], fp_b.as_str());
    // Before the click, C answers instead: it is refused and announced with its own fingerprint.
    let dir = b.kill().await;
    let _c = serve(2, Some(addr.to_string()), dir).await;
    let fp_c = fingerprint(&pairs[2].0);
    let want = fp_c.clone();
    a.expect("warned on C", move |v| {
        v["event"] == "server_key_changed" && v["fingerprint"] == want.as_str()
    })
    .await;
    // The user trusts what was compared (B) while C answers: refused, C is not pinned by it.
    let trusted = a
        .call(json!({"cmd": "trust_server_key", "fingerprint": fp_b}))
        .await;
    assert_eq!(trusted["code"], "not_what_was_shown", "{trusted}");
    let r = a.call(json!({"cmd": "connect"})).await;
    assert_eq!(r["ok"], false, "C is refused: {r}");
    let still = a.ok(json!({"cmd": "server_key"})).await;
    assert_ne!(still["fingerprint"], fp_c.as_str(), "C never pinned");
    // Trusting C's own fingerprint, once the operator confirms it, connects.
    a.ok(json!({"cmd": "trust_server_key", "fingerprint": fp_c}))
        .await;
    a.connect().await;
    let now = a.ok(json!({"cmd": "server_key"})).await;
    assert_eq!(now["fingerprint"], fp_c.as_str());
}
