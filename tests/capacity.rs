//! At the process's open-file limit (issue 14): new connections are refused at once with a clear
//! answer instead of hanging, and `/healthz` keeps answering. The server runs under `ulimit -n 256`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anonchat_e2e::raw::RawDevice;
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use futures_util::StreamExt;

const LIMIT: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_open_file_limit_new_sockets_are_refused_and_healthz_answers() {
    let opts = ServerOpts {
        wrapper: vec![
            "sh".into(),
            "-c".into(),
            format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""),
        ],
        extra: ServerOpts::lifted_gate(),
        ..ServerOpts::default()
    };
    let server = Server::start_with(opts, TempDir::new("server")).await;
    let url = server.url();
    let http = reqwest::Client::new();
    let mut devices = Vec::new();
    for _ in 0..LIMIT {
        let d = RawDevice::new(&unique("cap"));
        let resp = http
            .post(format!("{url}/v1/register"))
            .json(&d.register_request(8))
            .send()
            .await
            .expect("register");
        assert!(resp.status().is_success());
        devices.push(d);
    }

    // More authenticated sockets than the process has descriptors, 25 per address.
    let mut held = Vec::new();
    let mut refused = None;
    for (i, d) in devices.iter().enumerate() {
        let local = IpAddr::V4(Ipv4Addr::new(127, 3, 0, (i / 25) as u8 + 1));
        let opened = tokio::time::timeout(Duration::from_secs(5), async {
            let (mut ws, nonce) = RawDevice::open_from_checked(&url, local).await?;
            d.authenticate_checked(&mut ws, &nonce, &url).await?;
            Ok::<_, String>(ws)
        })
        .await;
        match opened {
            Ok(Ok(ws)) => held.push(ws),
            Ok(Err(answer)) => {
                refused = Some(answer);
                break;
            }
            Err(_) => panic!("socket {i} neither opened nor was refused within 5 s (the server hangs at its limit)"),
        }
    }
    let answer = refused.expect("the server refuses sockets before it runs out of descriptors");
    assert!(
        answer.contains("503") && answer.contains("full"),
        "a clear answer: {answer}"
    );
    assert!(
        held.len() > LIMIT / 2,
        "most of the limit is usable: {}",
        held.len()
    );

    // The health check and registration still answer while the sockets are held.
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("{url}/healthz")),
    )
    .await
    .expect("/healthz answers in time")
    .expect("/healthz");
    assert_eq!(health.text().await.expect("body"), "ok");
    // The held sockets still work.
    let ws = held.last_mut().expect("a held socket");
    anonchat_e2e::raw::send(ws, serde_json::json!({"v":1,"t":"ping","id":7})).await;
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("an answer")
        .expect("a frame")
        .expect("a message");
    assert!(pong.to_text().unwrap_or("").contains("pong"));
    // Closing some makes room again.
    held.truncate(held.len() - 10);
    let d = &devices[devices.len() - 1];
    let local = IpAddr::V4(Ipv4Addr::new(127, 3, 1, 1));
    let reopened = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok((mut ws, nonce)) = RawDevice::open_from_checked(&url, local).await {
                if d.authenticate_checked(&mut ws, &nonce, &url).await.is_ok() {
                    return ws;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "room again once sockets close");
}
