//! Group benchmark (issue 16): groups of 3, 5 and 10 engines on loopback, each figure beside a
//! one-to-one chat between the same engines in the same run:
//! - setup: `group_start` → every pair of members connected (a 1:1 ring → both sides open);
//! - fan-out: a group text → every other member has it (a 1:1 text → the peer has it), p50/p99;
//! - files: one attachment to every other member → all have it whole, as bytes delivered per
//!   second beside one 1:1 transfer.
//!
//! All engines share this process and its two cores, with a real server process and the real
//! keychain. Run with `scripts/bench.sh`.

use std::time::{Duration, Instant};

use anonchat_client::attachments::NewAttachment;
use anonchat_client::events::MemberState;
use anonchat_client::{Engine, Event};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::frames::{AttachmentKind, SecretText};
use anyhow::{bail, Context};
use tokio::sync::mpsc;

#[path = "common.rs"]
mod common;
use common::{next, open_engine, WAIT};

const SIZES: [usize; 3] = [3, 5, 10];
const SETUPS: usize = 5;
const MESSAGES: usize = 100;
const FILE: usize = 4 * 1024 * 1024;
const FILE_RUNS: usize = 3;

/// What the members' event loops report, with when it arrived.
#[derive(Debug)]
enum Seen {
    Connected,
    Open(String),
    Message(String),
    File,
    Ended,
}

fn main() -> anyhow::Result<()> {
    // `ANONCHAT_LOG=anonchat_client=debug` shows what the engines did (a stalled link, say).
    if std::env::var_os("ANONCHAT_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("ANONCHAT_LOG"))
            .with_writer(std::io::stderr)
            .init();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn pct(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Waits until `n` reports match `pred`; returns when the last came and which nodes sent them.
async fn gather(
    rx: &mut mpsc::UnboundedReceiver<(usize, Seen, Instant)>,
    n: usize,
    pred: impl Fn(&Seen) -> bool,
) -> anyhow::Result<(Instant, Vec<(usize, Seen)>)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut last = Instant::now();
    while got.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((node, seen, at))) if pred(&seen) => {
                last = at;
                got.push((node, seen));
            }
            Ok(Some(_)) => {}
            _ => bail!(
                "timed out: {} of {n} reports, from nodes {:?}",
                got.len(),
                got.iter().map(|(node, _)| *node).collect::<Vec<_>>()
            ),
        }
    }
    Ok((last, got))
}

/// One engine's event loop: answers friend requests and rings (invites and plain ones), and
/// reports what the bench waits for.
fn serve(
    node: usize,
    engine: Engine,
    mut events: anonchat_client::events::EventReceiver,
    tx: mpsc::UnboundedSender<(usize, Seen, Instant)>,
) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let at = Instant::now();
            let seen = match ev {
                Event::FriendRequest {
                    from,
                    safety_number,
                } => {
                    let _ = engine.accept_friend(&from, &safety_number).await;
                    continue;
                }
                Event::IncomingRing { ring_id, .. } => {
                    let _ = engine.answer(&ring_id, true).await;
                    continue;
                }
                Event::GroupMember {
                    state: MemberState::Connected,
                    ..
                } => Seen::Connected,
                Event::SessionOpen { session, .. } => Seen::Open(session),
                Event::Message { text, .. } => Seen::Message(text.as_str().to_string()),
                Event::FileReceived { .. } => Seen::File,
                Event::GroupEnded { .. } => Seen::Ended,
                _ => continue,
            };
            if tx.send((node, seen, at)).is_err() {
                return;
            }
        }
    });
}

fn attachment(payload: &[u8]) -> NewAttachment {
    NewAttachment {
        name: SecretText::new("bench.bin".into()),
        mime: "application/octet-stream".into(),
        kind: AttachmentKind::File,
        view_once: false,
        data: zeroize::Zeroizing::new(payload.to_vec()),
    }
}

async fn run() -> anyhow::Result<()> {
    let server = Server::start_with(
        ServerOpts {
            extra: ServerOpts::lifted_gate(),
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let home = TempDir::new("bench-groups");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let max = *SIZES.iter().max().context("sizes")?;
    let mut nodes: Vec<(Engine, String)> = Vec::new();
    for i in 0..max {
        let name = unique(&format!("g{i}"));
        let (engine, mut events) = open_engine(&unique("pgb"), &server.url(), &home.0).await?;
        engine.register(&name).await?;
        engine.connect().await?;
        next(&mut events, "connected", |e| matches!(e, Event::Connected)).await?;
        serve(i, engine.clone(), events, tx.clone());
        nodes.push((engine, name));
    }
    let admin = nodes[0].0.clone();
    for (_, name) in &nodes[1..] {
        admin.add_friend(name, None).await?;
    }
    // The admin's own reports say when each friendship is in place: wait until it can ring all.
    let deadline = Instant::now() + WAIT;
    while admin.friends().await.map(|f| f.len()).unwrap_or(0) < max - 1 {
        anyhow::ensure!(Instant::now() < deadline, "friendships did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peer = nodes[1].1.clone();
    let payload: Vec<u8> = (0..FILE).map(|i| (i % 251) as u8).collect();

    // The 1:1 baselines, between the admin and one member.
    let mut one_setup = Vec::new();
    let mut one_text = Vec::new();
    let mut one_file = Vec::new();
    for round in 0..SETUPS {
        let t0 = Instant::now();
        let id = admin.ring(&peer, None).await?;
        let (at, _) = gather(&mut rx, 2, |s| matches!(s, Seen::Open(s) if *s == id)).await?;
        one_setup.push(at - t0);
        if round == 0 {
            for i in 0..MESSAGES {
                let text = format!("one {i:06}");
                let t0 = Instant::now();
                admin.send_text(&id, SecretText::new(text.clone())).await?;
                let (at, _) =
                    gather(&mut rx, 1, |s| matches!(s, Seen::Message(m) if *m == text)).await?;
                one_text.push(at - t0);
            }
            for _ in 0..FILE_RUNS {
                let t0 = Instant::now();
                admin.send_attachment(&id, attachment(&payload)).await?;
                let (at, _) = gather(&mut rx, 1, |s| matches!(s, Seen::File)).await?;
                one_file.push(at - t0);
            }
        }
        admin.leave(&id).await?;
    }
    let one_setup_p50 = pct(&mut one_setup, 0.5);
    let one_text_p50 = pct(&mut one_text, 0.5);
    let one_text_p99 = pct(&mut one_text, 0.99);
    let one_file_med = pct(&mut one_file, 0.5);
    let one_mbs = FILE as f64 / one_file_med.as_secs_f64() / 1e6;
    println!(
        "1:1 baseline: setup p50 {}, text p50 {} p99 {}, file {:.1} MB/s (median of {FILE_RUNS})",
        ms(one_setup_p50),
        ms(one_text_p50),
        ms(one_text_p99),
        one_mbs
    );

    for n in SIZES {
        let names: Vec<String> = nodes[1..n].iter().map(|(_, m)| m.clone()).collect();
        let mut setup = Vec::new();
        let mut fanout = Vec::new();
        let mut file = Vec::new();
        for round in 0..SETUPS {
            let t0 = Instant::now();
            let gid = admin.group_start(&names, 0).await?;
            let (at, _) = gather(&mut rx, n * (n - 1), |s| matches!(s, Seen::Connected))
                .await
                .with_context(|| format!("group of {n}, round {round}: every pair connected"))?;
            setup.push(at - t0);
            if round == 0 {
                for i in 0..MESSAGES {
                    let text = format!("group {n} {i:06}");
                    let t0 = Instant::now();
                    admin
                        .group_send(&gid, SecretText::new(text.clone()))
                        .await?;
                    let (at, _) = gather(
                        &mut rx,
                        n - 1,
                        |s| matches!(s, Seen::Message(m) if *m == text),
                    )
                    .await?;
                    fanout.push(at - t0);
                }
                for _ in 0..FILE_RUNS {
                    let t0 = Instant::now();
                    admin
                        .group_send_attachment(&gid, attachment(&payload))
                        .await?;
                    let (at, _) = gather(&mut rx, n - 1, |s| matches!(s, Seen::File)).await?;
                    file.push(at - t0);
                }
            }
            // Everyone leaves; each member's copy ends.
            admin.group_leave(&gid).await?;
            for (engine, _) in nodes.iter().take(n).skip(1) {
                for g in engine.groups() {
                    // It may have ended meanwhile (the others left first): no error then.
                    let _ = engine.group_leave(&g.group).await;
                }
            }
            gather(&mut rx, n, |s| matches!(s, Seen::Ended)).await?;
            // Reports of this round nobody waited for (joins, opens): dropped.
            while rx.try_recv().is_ok() {}
        }
        let setup_p50 = pct(&mut setup, 0.5);
        let fan_p50 = pct(&mut fanout, 0.5);
        let fan_p99 = pct(&mut fanout, 0.99);
        let file_med = pct(&mut file, 0.5);
        let per_peer = FILE as f64 / file_med.as_secs_f64() / 1e6;
        let total = per_peer * (n - 1) as f64;
        println!(
            "group of {n:2}: every pair connected p50 {} ({:.1}x 1:1 setup; {} pairs) | fan-out to {} p50 {} p99 {} ({:.1}x / {:.1}x 1:1) | file to {} peers {:.1} MB/s each, {:.1} MB/s in all ({:.2} / {:.2} of 1:1)",
            ms(setup_p50),
            setup_p50.as_secs_f64() / one_setup_p50.as_secs_f64(),
            n * (n - 1) / 2,
            n - 1,
            ms(fan_p50),
            ms(fan_p99),
            fan_p50.as_secs_f64() / one_text_p50.as_secs_f64(),
            fan_p99.as_secs_f64() / one_text_p99.as_secs_f64(),
            n - 1,
            per_peer,
            total,
            per_peer / one_mbs,
            total / one_mbs,
        );
    }
    Ok(())
}
