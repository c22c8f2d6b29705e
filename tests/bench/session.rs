//! Session benchmark: ring answered → first end-to-end message delivered, and message round trip,
//! each beside a bare WebRTC data channel between the same two processes (no signaling server, no
//! Olm), measured in the same run. Prints percentiles and ratios. Then throughput: a 64 MiB
//! attachment end to end (offer inside Olm, AEAD-sealed chunks, hash check, delivery receipt)
//! beside the same bytes in the same chunk size over a bare data channel with the same
//! backpressure.
//!
//! Run with `scripts/bench.sh` (release build, real server process, real keychain).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anonchat_client::attachments::NewAttachment;
use anonchat_client::transport::{Candidate, IceConfig, Transport, TransportEvent};
use anonchat_client::{Engine, Event};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::frames::AttachmentKind;
use anonchat_proto::frames::SecretText;
use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const SESSIONS: usize = 50;
/// Round trips and echoes measured per kind. Kept well inside the peer's flood limit
/// (`quota::FRAME_BURST` frames, refilled at `FRAMES_PER_SEC`): the echo peer counts our pings, our
/// texts and the receipts for its echoes, so 1 000 of each (3 000 frames in about two seconds)
/// gets the last echoes dropped as a flood would be, by design, and the bench waits in vain.
const PINGS: usize = 100;
/// Bytes per throughput run, and runs of each kind (alternating; the best and the median count).
const BULK: usize = 64 * 1024 * 1024;
const BULK_RUNS: usize = 9;
/// First byte of a bare bulk message: the peer counts these instead of echoing them.
const BULK_MARK: u8 = 0xB0;

#[path = "common.rs"]
mod common;
use common::{next, open_engine, WAIT};

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

/// Datagrams the kernel dropped for want of socket receive buffer, IPv4 and IPv6 (Linux only).
fn udp_receive_drops() -> Option<u64> {
    let v4 = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut rows = v4.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (rows.next()?, rows.next()?);
    let col = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    let v4: u64 = values.split_whitespace().nth(col)?.parse().ok()?;
    let v6 = std::fs::read_to_string("/proc/net/snmp6").ok()?;
    let v6: u64 = v6
        .lines()
        .find_map(|l| l.strip_prefix("Udp6RcvbufErrors"))?
        .trim()
        .parse()
        .ok()?;
    Some(v4 + v6)
}

fn pairs_in_order(e2e: &[Duration], bare: &[Duration]) -> String {
    e2e.iter()
        .zip(bare)
        .map(|(e, b)| format!("{}/{}", e.as_millis(), b.as_millis()))
        .collect::<Vec<_>>()
        .join(" ")
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
            extra: ServerOpts::lifted_gate(),
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
            .await?
            .id;
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
    // 4. Throughput, alternating E2E and bare runs.
    let payload: Vec<u8> = (0..BULK)
        .map(|i| (i as u32).wrapping_mul(2654435761) as u8)
        .collect();
    // Pairs of runs, the order flipped every other pair so neither kind always runs first.
    let (mut e2e_runs, mut bare_runs, mut pair_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let drops_before = udp_receive_drops();
    for i in 0..BULK_RUNS {
        let (e2e, bare) = if i % 2 == 0 {
            let e = e2e_transfer(&engine, &mut events, &peer_name, &payload).await?;
            (
                e,
                bare_transfer(&mut to_peer, &mut from_peer, &payload).await?,
            )
        } else {
            let b = bare_transfer(&mut to_peer, &mut from_peer, &payload).await?;
            (
                e2e_transfer(&engine, &mut events, &peer_name, &payload).await?,
                b,
            )
        };
        e2e_runs.push(e2e);
        bare_runs.push(bare);
        pair_ratios.push(bare.as_secs_f64() / e2e.as_secs_f64());
    }
    let drops = udp_receive_drops().zip(drops_before).map(|(a, b)| a - b);
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
    let mbps = |d: Duration| BULK as f64 / 1e6 / d.as_secs_f64();
    let pairs = pairs_in_order(&e2e_runs, &bare_runs);
    let (e2e_best, bare_best) = (pct(&mut e2e_runs, 0.0), pct(&mut bare_runs, 0.0));
    let (e2e_mid, bare_mid) = (pct(&mut e2e_runs, 0.5), pct(&mut bare_runs, 0.5));
    let (e2e_mbps, bare_mbps) = (mbps(e2e_best), mbps(bare_best));
    println!("throughput, {} MB, {BULK_RUNS} runs each", BULK / 1_000_000);
    row("", "best".into(), "median".into());
    row(
        "E2EE file (Olm offer, AEAD chunks, hash)",
        format!("{e2e_mbps:.1} MB/s"),
        format!("{:.1} MB/s", mbps(e2e_mid)),
    );
    row(
        "baseline: bare data channel, same chunks",
        format!("{bare_mbps:.1} MB/s"),
        format!("{:.1} MB/s", mbps(bare_mid)),
    );
    row(
        "ratio (E2E / bare)",
        format!("{:.2}", e2e_mbps / bare_mbps),
        format!("{:.2}", mbps(e2e_mid) / mbps(bare_mid)),
    );
    pair_ratios.sort_by(f64::total_cmp);
    let pair_mid = pair_ratios[pair_ratios.len() / 2];
    row(
        "ratio within each pair of runs, median",
        String::new(),
        format!("{pair_mid:.2}"),
    );
    // A run's time swings by seconds when the kernel drops datagrams (a full socket buffer while
    // the reader waits for a CPU): SCTP then waits out its 1 s minimum retransmission timeout.
    println!("pairs in order (E2EE ms / bare ms): {pairs}");
    if let Some(d) = drops {
        println!("kernel UDP receive-buffer drops during the runs (whole machine): {d}");
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: setup p50 ≤ 100 ms: {}; round trip p50 ≤ 1 ms: {}; file throughput ≥ 0.9 of bare (medians): {}",
        verdict(s50 <= Duration::from_millis(100)),
        verdict(r50 <= Duration::from_millis(1)),
        verdict(mbps(e2e_mid) / mbps(bare_mid) >= 0.9 && pair_mid >= 0.9)
    );
    drop(server);
    Ok(())
}

/// One attachment of `payload` to the peer in a fresh session: send → delivery receipt (the peer
/// checked the hash of the whole).
async fn e2e_transfer(
    engine: &Engine,
    events: &mut anonchat_client::events::EventReceiver,
    peer: &str,
    payload: &[u8],
) -> anyhow::Result<Duration> {
    let id = engine.ring(peer, None).await?;
    next(
        events,
        "open",
        |e| matches!(e, Event::SessionOpen { session, .. } if *session == id),
    )
    .await?;
    let data = zeroize::Zeroizing::new(payload.to_vec());
    let t0 = Instant::now();
    let file = engine
        .send_attachment(
            &id,
            NewAttachment {
                name: SecretText::new("bench.bin".into()),
                mime: "application/octet-stream".into(),
                kind: AttachmentKind::File,
                view_once: false,
                data,
            },
        )
        .await?
        .id;
    next(
        events,
        "file delivered",
        |e| matches!(e, Event::Receipt { session, id: m, .. } if *session == id && *m == file),
    )
    .await?;
    let took = t0.elapsed();
    engine.leave(&id).await?;
    next(
        events,
        "ended",
        |e| matches!(e, Event::SessionEnded { session, .. } if *session == id),
    )
    .await?;
    Ok(took)
}

/// The same bytes over a bare data channel to the peer process, in attachment-sized messages
/// with the same backpressure: first byte sent → the peer reports it has every byte.
async fn bare_transfer(
    to_peer: &mut tokio::process::ChildStdin,
    from_peer: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    payload: &[u8],
) -> anyhow::Result<Duration> {
    let (tx, mut rx) = mpsc::channel(256);
    let (t, sdp) = Transport::offer(&IceConfig::default(), tx).await?;
    let chunk = anonchat_proto::attach::CHUNK_SIZE;
    let expect = payload.len() + payload.len().div_ceil(chunk);
    to_peer
        .write_all(
            format!(
                "{}
",
                json!({"offer": sdp, "expect": expect})
            )
            .as_bytes(),
        )
        .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => bail!("bare channel: no open in time"),
            line = from_peer.next_line() => {
                let v: Value = serde_json::from_str(&line?.context("peer exited")?)?;
                if let Some(a) = v["answer"].as_str() {
                    t.accept_answer(a.to_string()).await?;
                } else if let Some(c) = v["cand"].as_str() {
                    t.add_candidate(Candidate { candidate: c.into(), sdp_mid: v["mid"].as_str().map(Into::into), sdp_mline_index: v["idx"].as_u64().map(|x| x as u16) }).await?;
                }
            }
            ev = rx.recv() => match ev {
                Some(TransportEvent::LocalCandidate(c)) => {
                    to_peer.write_all(format!("{}
        ", json!({"cand": c.candidate, "mid": c.sdp_mid, "idx": c.sdp_mline_index})).as_bytes()).await?;
                }
                Some(TransportEvent::Open) => break,
                Some(TransportEvent::Closed) | None => bail!("bare channel closed"),
                _ => {}
            }
        }
    }
    let bulk = t.bulk().await.context("bare channel")?;
    let t0 = Instant::now();
    for piece in payload.chunks(chunk) {
        let mut m = Vec::with_capacity(piece.len() + 1);
        m.push(BULK_MARK);
        m.extend_from_slice(piece);
        bulk.send(Bytes::from(m)).await?;
    }
    loop {
        let line = tokio::time::timeout(WAIT, from_peer.next_line())
            .await
            .context("bare transfer: the peer never reported")??
            .context("peer exited")?;
        let v: Value = serde_json::from_str(&line)?;
        if v["got"].as_u64().is_some() {
            break;
        }
    }
    let took = t0.elapsed();
    t.close().await;
    to_peer.write_all(b"{\"close\":true}\n").await?;
    Ok(took)
}

/// The peer process: accepts friends and rings, echoes every text; on stdin, bare-channel offers.
/// On a bare channel it echoes messages, except bulk ones, which it counts and reports.
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
    let (mut expect, mut got) = (0usize, 0usize);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::FriendRequest { from, safety_number }) => {
                    engine.accept_friend(&from, &safety_number).await?
                }
                Some(Event::IncomingRing { ring_id, .. }) => engine.answer(&ring_id, true).await?,
                Some(Event::Message { session, text, .. }) => { let _ = engine.send_text(&session, text).await; }
                Some(Event::SessionFailed { reason, .. }) => eprintln!("peer: a session failed: {reason}"),
                Some(_) => {}
                None => break,
            },
            line = stdin.next_line() => {
                let Some(line) = line? else { break };
                let v: Value = serde_json::from_str(&line)?;
                if let Some(sdp) = v["offer"].as_str() {
                    expect = v["expect"].as_u64().unwrap_or(0) as usize;
                    got = 0;
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
                Some(TransportEvent::Message(b)) if b.first() == Some(&BULK_MARK) => {
                    got += b.len();
                    if got >= expect {
                        out.write_all(format!("{}\n", json!({"got": got})).as_bytes()).await?;
                        out.flush().await?;
                    }
                }
                Some(TransportEvent::Message(b)) => if let Some(t) = &bare { let _ = t.send(b).await; },
                _ => {}
            }
        }
    }
    Ok(())
}
