//! Bad input to the server (malformed JSON, oversized frames, bad signatures, replayed auth, unknown
//! rings, blobs from outside a ring, floods): a clear error, nothing changed, the server keeps serving.

use anonchat_e2e::raw::{recv, request, send, send_text, RawDevice, Ws};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use serde_json::{json, Value};

async fn healthy(server: &Server) {
    let body = reqwest::get(format!("{}/healthz", server.url()))
        .await
        .expect("healthz")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "ok");
}

async fn device(server: &Server) -> RawDevice {
    let d = RawDevice::new(&unique("raw"));
    d.register(&server.url()).await;
    d
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_refuses_bad_signatures_replays_and_strangers() {
    let server = Server::start().await;
    let url = server.url();
    let d = device(&server).await;

    // Garbage before authentication: a clear error, then the socket closes.
    let (mut ws, _) = RawDevice::open(&url).await;
    send_text(&mut ws, "{not json").await;
    let e = recv(&mut ws).await.expect("error");
    assert_eq!(code(&e), "bad_request");
    assert!(
        recv(&mut ws).await.is_none(),
        "closed after a malformed auth"
    );

    // A signature by another key.
    let (mut ws, nonce) = RawDevice::open(&url).await;
    let other = RawDevice::new("mallory");
    let mut sig = other.auth_sig(&nonce, &url);
    let e = {
        send(&mut ws, json!({"v":1,"t":"auth","username":d.username.as_str(),"device_id":d.cert.device_id,"sig":sig})).await;
        recv(&mut ws).await.expect("answer")
    };
    assert_eq!(code(&e), "unauthorized");

    // A good answer, replayed on a new socket (with a new nonce), fails.
    let (mut ws1, nonce1) = RawDevice::open(&url).await;
    sig = d.auth_sig(&nonce1, &url);
    let answer = json!({"v":1,"t":"auth","username":d.username.as_str(),"device_id":d.cert.device_id,"sig":sig});
    send(&mut ws1, answer.clone()).await;
    assert_eq!(recv(&mut ws1).await.expect("ok")["t"], "auth_ok");
    let (mut ws2, _) = RawDevice::open(&url).await;
    send(&mut ws2, answer).await;
    assert_eq!(code(&recv(&mut ws2).await.expect("answer")), "unauthorized");

    // Signed for another origin (a relayed answer from a phishing server).
    let (mut ws3, nonce3) = RawDevice::open(&url).await;
    let sig = d.auth_sig(&nonce3, "http://evil.example");
    send(&mut ws3, json!({"v":1,"t":"auth","username":d.username.as_str(),"device_id":d.cert.device_id,"sig":sig})).await;
    assert_eq!(code(&recv(&mut ws3).await.expect("answer")), "unauthorized");

    // An unknown user.
    let stranger = RawDevice::new(&unique("nobody"));
    let (mut ws4, nonce4) = RawDevice::open(&url).await;
    let sig = stranger.auth_sig(&nonce4, &url);
    send(&mut ws4, json!({"v":1,"t":"auth","username":stranger.username.as_str(),"device_id":stranger.cert.device_id,"sig":sig})).await;
    assert_eq!(code(&recv(&mut ws4).await.expect("answer")), "unauthorized");

    // The first socket still works.
    assert_eq!(request(&mut ws1, 1, json!({"t":"ping"})).await["t"], "pong");
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_out_of_place_messages_change_nothing() {
    let server = Server::start().await;
    let url = server.url();
    let (a, b, c) = (
        device(&server).await,
        device(&server).await,
        device(&server).await,
    );
    let mut wa = a.connect(&url).await;
    let mut wb = b.connect(&url).await;
    let mut wc = c.connect(&url).await;
    assert_eq!(
        request(
            &mut wb,
            1,
            json!({"t":"upload_otks","keys":[b.otk(), b.otk()]})
        )
        .await["t"],
        "ok"
    );

    // Malformed JSON, unknown types, wrong version, wrong field types: bad_request, socket stays.
    for junk in [
        "{",
        "[]",
        r#"{"v":1,"t":"launch"}"#,
        r#"{"v":9,"t":"ping"}"#,
        r#"{"v":1,"t":"ring","to":42}"#,
        r#"{"v":1,"t":"ring","to":"NOT VALID"}"#,
    ] {
        send_text(&mut wa, junk).await;
        let e = recv(&mut wa).await.expect("error answer");
        assert_eq!(code(&e), "bad_request", "{junk} → {e}");
        assert!(
            e["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "a clear reason for {junk}"
        );
    }
    // A one-time key signed by someone else is refused.
    let mut forged = c.otk();
    forged.sig = a.otk().sig;
    let e = request(&mut wc, 2, json!({"t":"upload_otks","keys":[forged]})).await;
    assert_eq!(code(&e), "bad_request");

    // Unknown ring ids.
    for msg in [
        json!({"t":"answer","ring_id":"nope","accept":true}),
        json!({"t":"relay","ring_id":"nope","blob":"AAAA"}),
        json!({"t":"hangup","ring_id":"nope"}),
    ] {
        let e = request(&mut wa, 3, msg).await;
        assert_eq!(code(&e), "bad_request");
        assert_eq!(e["detail"], "unknown ring id");
    }

    // A rings B, B answers: then C (outside the ring) can neither answer nor inject blobs.
    let ringing = request(&mut wa, 4, json!({"t":"ring","to":b.username.as_str()})).await;
    let ring_id = ringing["ring_id"].as_str().expect("ring id").to_string();
    let incoming = recv(&mut wb).await.expect("incoming ring");
    assert_eq!(incoming["t"], "incoming_ring");
    let e = request(
        &mut wc,
        5,
        json!({"t":"answer","ring_id":ring_id,"accept":true}),
    )
    .await;
    assert_eq!(e["detail"], "this device is not part of the ring");
    assert_eq!(
        request(
            &mut wb,
            6,
            json!({"t":"answer","ring_id":ring_id,"accept":true})
        )
        .await["t"],
        "ok"
    );
    let e = request(
        &mut wc,
        7,
        json!({"t":"relay","ring_id":ring_id,"blob":"AAAA"}),
    )
    .await;
    assert_eq!(e["detail"], "this device is not part of the ring");
    // The ring still works for its two parties.
    assert_eq!(
        request(
            &mut wa,
            8,
            json!({"t":"relay","ring_id":ring_id,"blob":"AQID"})
        )
        .await["t"],
        "ok"
    );
    loop {
        let m = recv(&mut wb).await.expect("relayed");
        if m["t"] == "relayed" {
            assert_eq!(m["blob"], "AQID");
            break;
        }
    }
    // An oversized blob inside a small-enough frame is refused too.
    let big =
        anonchat_proto::bytes::encode_b64(&vec![7u8; anonchat_proto::limits::MAX_RELAY_BLOB + 1]);
    let e = request(
        &mut wa,
        9,
        json!({"t":"relay","ring_id":ring_id,"blob":big}),
    )
    .await;
    assert_eq!(code(&e), "bad_request");
    // The largest blob allowed still goes through whole (the server reads with a 1 KiB buffer).
    let max = anonchat_proto::bytes::encode_b64(&vec![9u8; anonchat_proto::limits::MAX_RELAY_BLOB]);
    let sent = request(
        &mut wa,
        11,
        json!({"t":"relay","ring_id":ring_id,"blob":max}),
    )
    .await;
    assert_eq!(sent["t"], "ok", "{sent}");
    loop {
        let m = recv(&mut wb).await.expect("relayed");
        if m["t"] == "relayed" {
            assert_eq!(m["blob"], max.as_str());
            break;
        }
    }

    // An oversized frame closes that socket only.
    let huge = format!(
        r#"{{"v":1,"t":"ping","pad":"{}"}}"#,
        "x".repeat(anonchat_proto::limits::MAX_WS_MESSAGE + 1)
    );
    send_text(&mut wc, &huge).await;
    assert!(
        recv(&mut wc).await.is_none(),
        "oversized frame closes the socket"
    );
    assert_eq!(request(&mut wa, 10, json!({"t":"ping"})).await["t"], "pong");
    let _wc = c.connect(&url).await;
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_byte_identical_for_unknown_and_offline_users() {
    let server = Server::start().await;
    let url = server.url();
    let (a, offline) = (device(&server).await, device(&server).await);
    let mut wa = a.connect(&url).await;
    let unknown = unique("ghost");
    let mut answers = Vec::new();
    for (i, target) in [unknown.as_str(), offline.username.as_str()]
        .into_iter()
        .enumerate()
    {
        for t in ["lookup", "ring"] {
            let key = if t == "lookup" { "username" } else { "to" };
            let mut msg = json!({"t": t});
            msg[key] = json!(target);
            let v = request(&mut wa, 100 + i as u64, msg).await;
            assert_eq!(code(&v), "not_found");
            let mut v = v;
            v.as_object_mut().map(|o| o.remove("re"));
            answers.push(v.to_string());
        }
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // A friend request with a bad signature to an online user is refused with a reason.
    let online = device(&server).await;
    let _wo = online.connect(&url).await;
    let e = request(&mut wa, 200, json!({"t":"friend_request","to":online.username.as_str(),"sig":anonchat_proto::Sig64([0;64])})).await;
    assert_eq!(code(&e), "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_bad_requests() {
    let server = Server::start().await;
    let url = server.url();
    let http = reqwest::Client::new();
    let post = |body: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(format!("{url}/v1/register"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post")
        }
    };
    assert_eq!(post("{".into()).await.status(), 400);
    // A body over the limit: refused once one byte more than the limit has come. Only that much is
    // sent (of the 64 KiB announced): with more the server would close the connection on unread
    // bytes, and on a loaded machine the reset can beat its answer to the client.
    let big = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        s.write_all(
            b"POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 65536\r\n\r\n",
        )
        .await
        .expect("write");
        s.write_all(&vec![b'x'; anonchat_proto::limits::MAX_HTTP_BODY + 1])
            .await
            .expect("write the body");
        // The whole answer: headers, then as many body bytes as they announce.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let complete = |out: &[u8]| {
            let text = String::from_utf8_lossy(out);
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                return false;
            };
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0usize);
            body.len() >= len
        };
        while !complete(&out) {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("an answer in time")
                .expect("read");
            assert!(
                n > 0,
                "closed before a whole answer: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(out).expect("text")
    };
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    // The same JSON envelope as every other error.
    let json = big.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(json).expect("a JSON error body");
    assert_eq!(body["t"], "error");
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("16384 bytes")),
        "{body}"
    );

    let d = RawDevice::new(&unique("reg"));
    let mut weak = d.register_request(8);
    weak.pow.bits = 1;
    assert_eq!(
        post(serde_json::to_string(&weak).unwrap()).await.status(),
        400,
        "too little work"
    );
    let mut wrong_key = d.register_request(8);
    wrong_key.ak_pub = RawDevice::new("other").ak_pub();
    assert_eq!(
        post(serde_json::to_string(&wrong_key).unwrap())
            .await
            .status(),
        400,
        "cert not by the AK"
    );

    let good = serde_json::to_string(&d.register_request(8)).unwrap();
    assert_eq!(post(good.clone()).await.status(), 200);
    assert_eq!(post(good).await.status(), 400, "a spent stamp pays once");
    let twin = RawDevice {
        username: d.username.clone(),
        ..RawDevice::new(&unique("x"))
    };
    let mut again = twin.register_request(8);
    again.username = d.username.clone();
    assert_ne!(
        post(serde_json::to_string(&again).unwrap()).await.status(),
        200,
        "the name is taken"
    );
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_are_bounded_and_sigterm_shuts_down_cleanly() {
    let server = Server::start_with(
        ServerOpts {
            extra: vec!["--max-connections-per-ip".into(), "3".into()],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let mut open: Vec<Ws> = Vec::new();
    for _ in 0..3 {
        open.push(RawDevice::open(&url).await.0);
    }
    let ws_url = format!("{}/v1/ws", url.replacen("http://", "ws://", 1));
    let refused = tokio_tungstenite::connect_async(ws_url.clone()).await;
    assert!(
        refused.is_err(),
        "a fourth connection from one address is refused"
    );
    open.pop();
    // A slot frees when a socket closes (the server notices the close asynchronously).
    let mut admitted = false;
    for _ in 0..50 {
        if tokio_tungstenite::connect_async(ws_url.clone())
            .await
            .is_ok()
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(admitted);
    let status = server.terminate().await;
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_disconnected_and_server_memory_stays_bounded() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    // Unpaced, so the flood fills the socket's buffers and then its queue (pacing alone would
    // only slow it: tests/dos.rs).
    let server = Server::start_with(
        ServerOpts {
            extra: [
                "--socket-messages-per-second",
                "1000000",
                "--socket-message-burst",
                "1000000",
                "--socket-kib-per-second",
                "1000000",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let (slow, watcher) = (device(&server).await, device(&server).await);
    let mut ws_slow = slow.connect(&url).await;
    let mut ws_watch = watcher.connect(&url).await;
    assert_eq!(
        request(
            &mut ws_watch,
            1,
            json!({"t":"lookup","username":slow.username.as_str()})
        )
        .await["t"],
        "user"
    );
    let before = rss_kib(server.pid());

    // Flood requests whose answers are never read. The server answers into a bounded queue and, once
    // that is full, stops reading this socket: our sends stall (TCP backpressure).
    let ping = Message::text(r#"{"v":1,"id":1,"t":"ping"}"#);
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    let stalled = loop {
        let step = async {
            ws_slow.feed(ping.clone()).await?;
            ws_slow.flush().await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(2), step).await {
            Err(_) => break true, // The server stopped reading us.
            Ok(Err(_)) => break false,
            Ok(Ok(())) => sent += 1,
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            break false;
        }
    };
    assert!(
        stalled,
        "the server kept reading from a client that reads nothing ({sent} requests)"
    );
    let grown = rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "server memory grew by {grown} KiB while a reader stalled"
    );

    // Now someone else has something for the stalled device: its queue is full, so it is cut off.
    let ring = request(
        &mut ws_watch,
        2,
        json!({"t":"ring","to":slow.username.as_str()}),
    )
    .await;
    assert_eq!(ring["t"], "ringing");

    // The slow device is gone from presence; the server serves others as before.
    let mut gone = false;
    for i in 0..50 {
        let v = request(
            &mut ws_watch,
            10 + i,
            json!({"t":"lookup","username":slow.username.as_str()}),
        )
        .await;
        if code(&v) == "not_found" {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the disconnected device still shows as online");
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_rings_and_friend_requests_are_rate_limited_per_account_and_per_address() {
    let server = Server::start_with(
        ServerOpts {
            extra: vec![
                "--gate-per-minute".into(),
                "60".into(),
                "--gate-burst".into(),
                "5".into(),
            ],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let (a, b) = (device(&server).await, device(&server).await);
    let mut wa = a.connect(&url).await;
    let mut id = 0u64;
    for _ in 0..5 {
        assert_eq!(
            code(&ask(&mut wa, &mut id).await),
            "not_found",
            "the burst is answered"
        );
    }
    let limited = ask(&mut wa, &mut id).await;
    assert_eq!(code(&limited), "rate_limited");
    assert!(limited["detail"].as_str().is_some_and(|d| !d.is_empty()));

    // Another account from the same address shares the address's empty bucket.
    let mut wb = b.connect(&url).await;
    assert_eq!(
        code(&request(&mut wb, 1, json!({"t":"ring","to":a.username.as_str()})).await),
        "rate_limited"
    );

    // Sustained: once the buckets are empty, at most one answer per second gets through.
    let started = std::time::Instant::now();
    let (mut answered, mut sent) = (0u32, 0u32);
    while started.elapsed() < std::time::Duration::from_secs(3) {
        sent += 1;
        if code(&ask(&mut wa, &mut id).await) != "rate_limited" {
            answered += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sustained: {answered} of {sent} lookups answered in {secs:.2} s ({:.2}/s)",
        f64::from(answered) / secs
    );
    assert!(
        f64::from(answered) <= secs + 1.0,
        "{answered} answers in {secs:.2} s"
    );
    assert!(answered >= 1, "tokens come back at the configured rate");
    healthy(&server).await;
}

/// A lookup of a name nobody has, with the next request id.
async fn ask(ws: &mut Ws, id: &mut u64) -> Value {
    *id += 1;
    request(ws, *id, json!({"t": "lookup", "username": unique("ghost")})).await
}
