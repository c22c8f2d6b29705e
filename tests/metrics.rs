//! Prometheus metrics on their own address (issue 14): what the server did, counted, and nothing
//! about who — no username, device or address in any line (P7).

use anonchat_e2e::nginx::free_port;
use anonchat_e2e::raw::{recv, request, RawDevice};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

async fn metrics(port: u16) -> String {
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics answer");
    assert!(resp.status().is_success());
    let kind = resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    resp.text().await.expect("metrics body")
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Polls until `series` reads `want` (the server counts after it answers).
async fn wait_for(port: u16, series: &str, want: f64) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = metrics(port).await;
        if value(&text, series) == want {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never reached {want}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_name_nobody() {
    let port = free_port();
    let opts = ServerOpts {
        extra: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        ..ServerOpts::default()
    };
    let server = Server::start_with(opts, TempDir::new("server")).await;
    let url = server.url();
    let (a, b) = (RawDevice::new(&unique("mx")), RawDevice::new(&unique("mx")));
    a.register(&url).await;
    b.register(&url).await;
    let mut wa = a.connect(&url).await;
    let mut wb = b.connect(&url).await;
    let up = request(&mut wb, 1, json!({"t":"upload_otks","keys":[b.otk()]})).await;
    assert_eq!(up["t"], "ok", "{up}");

    // A rings B, B answers, A relays three bytes, A hangs up; A looks up nobody.
    let ringing = request(&mut wa, 2, json!({"t":"ring","to":b.username.as_str()})).await;
    let ring_id = ringing["ring_id"].as_str().expect("ring id").to_string();
    loop {
        if recv(&mut wb).await.expect("incoming ring")["t"] == "incoming_ring" {
            break;
        }
    }
    let answer = json!({"t":"answer","ring_id":ring_id,"accept":true});
    assert_eq!(request(&mut wb, 3, answer).await["t"], "ok");
    let relay = json!({"t":"relay","ring_id":ring_id,"blob":"AQID"});
    assert_eq!(request(&mut wa, 4, relay).await["t"], "ok");
    let nobody = json!({"t":"lookup","username":unique("nobody")});
    assert_eq!(request(&mut wa, 5, nobody).await["code"], "not_found");
    assert_eq!(
        request(&mut wa, 6, json!({"t":"hangup","ring_id":ring_id})).await["t"],
        "ok"
    );

    let text = wait_for(port, "anonchat_gate_answers_total{code=\"not_found\"}", 1.0).await;
    for (series, want) in [
        ("anonchat_websockets", 2.0),
        ("anonchat_authenticated_devices", 2.0),
        ("anonchat_registrations_total{code=\"ok\"}", 2.0),
        ("anonchat_rings_started_total", 1.0),
        ("anonchat_rings_answered_total", 1.0),
        ("anonchat_relayed_bytes_total", 3.0),
        ("anonchat_gate_answers_total{code=\"ok\"}", 1.0),
        (
            "anonchat_request_duration_seconds_count{kind=\"gated\"}",
            2.0,
        ),
        ("anonchat_store_errors_total", 0.0),
    ] {
        assert_eq!(value(&text, series), want, "{series} in\n{text}");
    }
    assert!(
        value(&text, "anonchat_answers_total{code=\"ok\"}") >= 4.0,
        "{text}"
    );
    // Nobody is named: no username, no device id, no address.
    for secret in [
        a.username.as_str(),
        b.username.as_str(),
        a.cert.device_id.as_str(),
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "{secret} appears in\n{text}");
    }

    // B leaves: the gauges follow.
    drop(wb);
    let text = wait_for(port, "anonchat_authenticated_devices", 1.0).await;
    assert_eq!(value(&text, "anonchat_websockets"), 1.0, "{text}");

    // Not on the clients' address.
    let on_main = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("answer");
    assert_eq!(on_main.status(), 404);
}
