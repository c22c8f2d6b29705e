//! Relay bench: chat setup time and message round trip through a real coturn (both sides "hide my
//! IP", so every byte goes through the relay) beside the same two engines connected directly, in
//! the same run against the same server, modes alternating so drift hits both alike. Loopback only:
//! this prices the relay's extra hop and TURN framing, not a real network's distance.
//!
//! Run with `scripts/bench.sh` (release build, real server process, real keychain, coturn).

use std::time::{Duration, Instant};

use anonchat_client::{Engine, Event};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::turn::Coturn;
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::frames::SecretText;
use anyhow::bail;

#[path = "common.rs"]
mod common;
use common::{next, open_engine, Events, WAIT};

/// Sessions per mode (setup), round trips per mode, and how the runs are split to alternate.
const SESSIONS: usize = 30;
const PINGS: usize = 500;
const ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn engine(server: &str, home: &TempDir, name: &str) -> anyhow::Result<(Engine, Events)> {
    let (engine, mut events) = open_engine(&unique("rb"), server, &home.0).await?;
    engine.register(name).await?;
    engine.connect().await?;
    next(&mut events, "connected", |e| matches!(e, Event::Connected)).await?;
    // The relay credential is fetched right after connecting.
    let t0 = Instant::now();
    while !engine.network().relay_available {
        if t0.elapsed() > WAIT {
            bail!("the server offered no relay");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((engine, events))
}

/// The peer: accepts the friend request and every ring.
fn answer_everything(peer: Engine, mut events: Events) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::FriendRequest {
                    from,
                    safety_number,
                } => {
                    let _ = peer.accept_friend(&from, &safety_number).await;
                }
                Event::IncomingRing { ring_id, .. } => {
                    let _ = peer.answer(&ring_id, true).await;
                }
                _ => {}
            }
        }
    });
}

/// One chat: ring answered → open → first message delivered (the setup time), then `pings`
/// Olm ping/pong round trips; the route ICE chose, to check the mode took effect.
async fn chat(
    me: &Engine,
    events: &mut Events,
    peer: &str,
    pings: usize,
    rtt: &mut Vec<Duration>,
) -> anyhow::Result<(Duration, String)> {
    let id = me.ring(peer, None).await?;
    next(
        events,
        "connecting",
        |e| matches!(e, Event::Connecting { session, .. } if *session == id),
    )
    .await?;
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + WAIT;
    let route = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::SessionOpen {
                session, route: r, ..
            })) if session == id => break r.local,
            Ok(Some(Event::SessionFailed { reason, .. })) => bail!("session failed: {reason}"),
            Ok(Some(_)) => {}
            _ => bail!("timed out waiting for the session"),
        }
    };
    let msg = me.send_text(&id, SecretText::new("hello".into())).await?.id;
    next(
        events,
        "receipt",
        |e| matches!(e, Event::Receipt { session, id: m, .. } if *session == id && *m == msg),
    )
    .await?;
    let setup = t0.elapsed();
    for _ in 0..pings {
        rtt.push(me.ping(&id).await?);
    }
    me.leave(&id).await?;
    next(
        events,
        "ended",
        |e| matches!(e, Event::SessionEnded { session, .. } if *session == id),
    )
    .await?;
    Ok((setup, route))
}

fn pct(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn run() -> anyhow::Result<()> {
    let turn = Coturn::start(&unique("bench-secret"));
    let server = Server::start_with(
        ServerOpts {
            // The bench rings many times in a row: lift the per-account ring limit.
            extra: [
                turn.server_args(&turn.secret_file),
                ServerOpts::lifted_gate(),
            ]
            .concat(),
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let home = TempDir::new("relay-bench");
    let (me_name, peer_name) = (unique("rme"), unique("rpeer"));
    let (me, mut events) = engine(&server.url(), &home, &me_name).await?;
    let (peer, peer_events) = engine(&server.url(), &home, &peer_name).await?;
    let peer_handle = peer.clone();
    answer_everything(peer, peer_events);
    me.add_friend(&peer_name, None).await?;
    next(&mut events, "friend added", |e| {
        matches!(e, Event::FriendAdded { .. })
    })
    .await?;

    // (setup times, round trips) per mode: 0 direct, 1 relayed.
    let mut setup: [Vec<Duration>; 2] = Default::default();
    let mut rtt: [Vec<Duration>; 2] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..2 {
            // Flip the order every round.
            let relayed = (k + round) % 2 == 1;
            let mode = usize::from(relayed);
            me.set_hide_ip(relayed).await?;
            peer_handle.set_hide_ip(relayed).await?;
            for i in 0..SESSIONS / ROUNDS {
                let pings = if i == 0 { PINGS / ROUNDS } else { 0 };
                let (took, route) =
                    chat(&me, &mut events, &peer_name, pings, &mut rtt[mode]).await?;
                anyhow::ensure!(
                    (route == "relay") == relayed,
                    "asked for {} but ICE chose a {route} candidate",
                    if relayed { "the relay" } else { "direct" }
                );
                setup[mode].push(took);
            }
        }
    }
    me.shutdown().await;
    peer_handle.shutdown().await;

    let row = |label: &str, a: String, b: String| println!("{label:<46} {a:>12} {b:>12}");
    let ratio = |a: Duration, b: Duration| format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64());
    let (d50, d95) = (pct(&mut setup[0], 0.5), pct(&mut setup[0], 0.95));
    let (r50, r95) = (pct(&mut setup[1], 0.5), pct(&mut setup[1], 0.95));
    let (dq50, dq99) = (pct(&mut rtt[0], 0.5), pct(&mut rtt[0], 0.99));
    let (rq50, rq99) = (pct(&mut rtt[1], 0.5), pct(&mut rtt[1], 0.99));
    println!("AnonChat relay bench (coturn on loopback, release, {SESSIONS} sessions and {PINGS} round trips per mode)");
    row("", "p50".into(), "p95 / p99".into());
    row("setup through the relay (hide my IP)", ms(r50), ms(r95));
    row("baseline: setup direct", ms(d50), ms(d95));
    row("ratio (relay / direct)", ratio(r50, d50), ratio(r95, d95));
    row("round trip through the relay", ms(rq50), ms(rq99));
    row("baseline: round trip direct", ms(dq50), ms(dq99));
    row(
        "ratio (relay / direct)",
        ratio(rq50, dq50),
        ratio(rq99, dq99),
    );
    drop(server);
    drop(turn);
    Ok(())
}
