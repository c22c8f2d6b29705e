//! Session benchmark: ring answered → first end-to-end message delivered, and message round trip,
//! each beside a bare WebRTC data channel between the same two processes (no signaling server, no
//! Olm), measured in the same run. Prints percentiles and ratios.
//!
//! Run with `scripts/bench.sh` (release build, real server process, real keychain).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anonchat_client::transport::{Candidate, IceConfig, Transport, TransportEvent};
use anonchat_client::{platform_caps, Engine, EngineConfig, Event, Keychain};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::frames::SecretText;
use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const SESSIONS: usize = 50;
const PINGS: usize = 1000;
const WAIT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("--peer") {
        rt.block_on(peer(&args[2], &args[3], &args[4]))
    } else {
        rt.block_on(parent())
    }
}

async fn next(
    events: &mut mpsc::UnboundedReceiver<Event>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> anyhow::Result<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return Ok(ev),
            Ok(Some(ev)) => skipped.push(format!("{ev:?}")),
            _ => bail!("timed out waiting for {what}; skipped {skipped:?}"),
        }
    }
}

async fn open_engine(
    profile: &str,
    server: &str,
    home: &std::path::Path,
) -> anyhow::Result<(Engine, mpsc::UnboundedReceiver<Event>)> {
    std::env::set_var("ANONCHAT_HOME", home);
    let (engine, events) = Engine::open(EngineConfig {
        profile: profile.into(),
        server: Some(server.into()),
        caps: platform_caps(),
        keychain: Keychain::os()?,
        extra_ca_pem: None,
        camera: Default::default(),
    })
    .await?;
    Ok((engine, events))
}

fn pct(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The bench process: a server, a peer process, and both measurements.
async fn parent() -> anyhow::Result<()> {
    // The bench rings 50 times in a row: lift the per-account limit on rings for it.
    let server = Server::start_with(
        ServerOpts {
            extra: vec![
                "--gate-per-minute".into(),
                "100000".into(),
                "--gate-burst".into(),
                "10000".into(),
            ],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let home = TempDir::new("bench");
    let me_name = unique("bench");
    let peer_name = unique("peer");
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["--peer", &server.url(), &unique("pp"), &peer_name])
        .env("ANONCHAT_HOME", &home.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_peer = child.stdin.take().context("peer stdin")?;
    let mut from_peer = BufReader::new(child.stdout.take().context("peer stdout")?).lines();
    let ready = from_peer.next_line().await?.context("peer exited")?;
    anyhow::ensure!(ready == "ready", "peer said {ready}");

    let (engine, mut events) = open_engine(&unique("pm"), &server.url(), &home.0).await?;
    engine.register(&me_name).await?;
    engine.connect().await?;
    next(&mut events, "connected", |e| matches!(e, Event::Connected)).await?;
    engine.add_friend(&peer_name, None).await?;
    next(&mut events, "friend added", |e| {
        matches!(e, Event::FriendAdded { .. })
    })
    .await?;

    // 1. Setup: ring answered (certificate checked) → first message's delivery receipt.
    let mut setup = Vec::new();
    for _ in 0..SESSIONS {
        let id = engine.ring(&peer_name, None).await?;
        next(
            &mut events,
            "connecting",
            |e| matches!(e, Event::Connecting { session, .. } if *session == id),
        )
        .await?;
        let t0 = Instant::now();
        next(
            &mut events,
            "open",
            |e| matches!(e, Event::SessionOpen { session, .. } if *session == id),
        )
        .await?;
        let msg = engine
            .send_text(&id, SecretText::new("hello".into()))
            .await?;
        next(
            &mut events,
            "receipt",
            |e| matches!(e, Event::Receipt { session, id: m, .. } if *session == id && *m == msg),
        )
        .await?;
        setup.push(t0.elapsed());
        engine.leave(&id).await?;
        next(
            &mut events,
            "ended",
            |e| matches!(e, Event::SessionEnded { session, .. } if *session == id),
        )
        .await?;
    }

    // 2. Round trip: an Olm-encrypted ping frame and its pong, the engine's own probe; and a text
    // to the peer's front-end and its echo back (with the delivery receipts both ways).
    let id = engine.ring(&peer_name, None).await?;
    next(
        &mut events,
        "open",
        |e| matches!(e, Event::SessionOpen { session, .. } if *session == id),
    )
    .await?;
    let mut rtt = Vec::new();
    for _ in 0..PINGS {
        rtt.push(engine.ping(&id).await?);
    }
    let mut echo = Vec::new();
    for i in 0..PINGS {
        let text = format!("ping {i:08}");
        let t0 = Instant::now();
        engine.send_text(&id, SecretText::new(text.clone())).await?;
        next(
            &mut events,
            "echo",
            |e| matches!(e, Event::Message { text: t, .. } if t.as_str() == text),
        )
        .await?;
        echo.push(t0.elapsed());
    }
    engine.leave(&id).await?;

    // 3. The same two processes over a bare data channel: SDP over the pipe, no Olm, no server.
    let (mut bare_setup, mut bare_rtt) = (Vec::new(), Vec::new());
    for round in 0..SESSIONS {
        let (tx, mut rx) = mpsc::channel(256);
        let t0 = Instant::now();
        let (t, sdp) = Transport::offer(&IceConfig::default(), tx).await?;
        to_peer
            .write_all(format!("{}\n", json!({"offer": sdp})).as_bytes())
            .await?;
        let mut open = false;
        let mut answered = false;
        let pings = if round + 1 == SESSIONS { PINGS } else { 0 };
        let mut sent_at = None;
        let mut n = 0;
        loop {
            tokio::select! {
                line = from_peer.next_line() => {
                    let v: Value = serde_json::from_str(&line?.context("peer exited")?)?;
                    if let Some(sdp) = v["answer"].as_str() {
                        t.accept_answer(sdp.to_string()).await?;
                        answered = true;
                    } else if let Some(c) = v["cand"].as_str() {
                        if answered {
                            let _ = t.add_candidate(Candidate { candidate: c.into(), sdp_mid: v["mid"].as_str().map(Into::into), sdp_mline_index: v["idx"].as_u64().map(|x| x as u16) }).await;
                        }
                    }
                }
                ev = rx.recv() => match ev.context("transport gone")? {
                    TransportEvent::LocalCandidate(c) => {
                        to_peer.write_all(format!("{}\n", json!({"cand": c.candidate, "mid": c.sdp_mid, "idx": c.sdp_mline_index})).as_bytes()).await?;
                    }
                    TransportEvent::Open if !open => {
                        open = true;
                        t.send(Bytes::from_static(b"hello")).await?;
                    }
                    TransportEvent::Message(_) => {
                        if n == 0 {
                            bare_setup.push(t0.elapsed());
                        } else if let Some(s) = sent_at {
                            bare_rtt.push(Instant::now() - s);
                        }
                        if n == pings {
                            break;
                        }
                        n += 1;
                        sent_at = Some(Instant::now());
                        t.send(Bytes::from(format!("ping {n:08}"))).await?;
                    }
                    _ => {}
                }
            }
        }
        t.close().await;
        to_peer.write_all(b"{\"close\":true}\n").await?;
    }
    engine.shutdown().await;

    let (s50, s95, b50, b95) = (
        pct(&mut setup, 0.50),
        pct(&mut setup, 0.95),
        pct(&mut bare_setup, 0.50),
        pct(&mut bare_setup, 0.95),
    );
    let (r50, r99, q50, q99) = (
        pct(&mut rtt, 0.50),
        pct(&mut rtt, 0.99),
        pct(&mut bare_rtt, 0.50),
        pct(&mut bare_rtt, 0.99),
    );
    let (e50, e99) = (pct(&mut echo, 0.50), pct(&mut echo, 0.99));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let row = |label: &str, a: String, b: String| println!("{label:<46} {a:>12} {b:>12}");
    println!(
        "AnonChat session bench (loopback, release, {SESSIONS} sessions, {PINGS} round trips)"
    );
    row("", "p50".into(), "p95 / p99".into());
    row(
        "setup: ring answered → first msg delivered",
        ms(s50),
        ms(s95),
    );
    row("baseline: bare data channel → first echo", ms(b50), ms(b95));
    row(
        "ratio (E2E / bare)",
        format!("{:.2}x", ratio(s50, b50)),
        format!("{:.2}x", ratio(s95, b95)),
    );
    row("round trip: Olm ping → pong over the DC", ms(r50), ms(r99));
    row("baseline: bare data channel echo", ms(q50), ms(q99));
    row(
        "ratio (E2E / bare)",
        format!("{:.2}x", ratio(r50, q50)),
        format!("{:.2}x", ratio(r99, q99)),
    );
    row(
        "text → peer app → echo text (+2 receipts)",
        ms(e50),
        ms(e99),
    );
    row(
        "ratio (E2E / bare)",
        format!("{:.2}x", ratio(e50, q50)),
        format!("{:.2}x", ratio(e99, q99)),
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: setup p50 ≤ 100 ms: {}; round trip p50 ≤ 1 ms: {}",
        verdict(s50 <= Duration::from_millis(100)),
        verdict(r50 <= Duration::from_millis(1))
    );
    drop(server);
    Ok(())
}

/// The peer process: accepts friends and rings, echoes every text; on stdin, bare-channel offers.
async fn peer(server: &str, profile: &str, name: &str) -> anyhow::Result<()> {
    let home = std::env::var_os("ANONCHAT_HOME").context("ANONCHAT_HOME")?;
    let (engine, mut events) = open_engine(profile, server, std::path::Path::new(&home)).await?;
    engine.register(name).await?;
    engine.connect().await?;
    next(&mut events, "connected", |e| matches!(e, Event::Connected)).await?;
    let mut out = tokio::io::stdout();
    out.write_all(b"ready\n").await?;
    out.flush().await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let (btx, mut brx) = mpsc::channel(256);
    let mut bare: Option<Transport> = None;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::FriendRequest { from, .. }) => engine.accept_friend(&from).await?,
                Some(Event::IncomingRing { ring_id, .. }) => engine.answer(&ring_id, true).await?,
                Some(Event::Message { session, text, .. }) => { let _ = engine.send_text(&session, text).await; }
                Some(_) => {}
                None => break,
            },
            line = stdin.next_line() => {
                let Some(line) = line? else { break };
                let v: Value = serde_json::from_str(&line)?;
                if let Some(sdp) = v["offer"].as_str() {
                    let (t, answer) = Transport::answer(&IceConfig::default(), sdp.to_string(), btx.clone()).await?;
                    out.write_all(format!("{}\n", json!({"answer": answer})).as_bytes()).await?;
                    out.flush().await?;
                    bare = Some(t);
                } else if let Some(c) = v["cand"].as_str() {
                    if let Some(t) = &bare {
                        let _ = t.add_candidate(Candidate { candidate: c.into(), sdp_mid: v["mid"].as_str().map(Into::into), sdp_mline_index: v["idx"].as_u64().map(|x| x as u16) }).await;
                    }
                } else if v["close"] == true {
                    if let Some(t) = bare.take() { t.close().await; }
                }
            }
            ev = brx.recv() => match ev {
                Some(TransportEvent::LocalCandidate(c)) => {
                    out.write_all(format!("{}\n", json!({"cand": c.candidate, "mid": c.sdp_mid, "idx": c.sdp_mline_index})).as_bytes()).await?;
                    out.flush().await?;
                }
                Some(TransportEvent::Message(b)) => if let Some(t) = &bare { let _ = t.send(b).await; },
                _ => {}
            }
        }
    }
    Ok(())
}
