//! Burst bench: how many lookups a flood gets answered once the token buckets are empty — from one
//! IP address (several accounts behind it) and from one account (two devices on two addresses) —
//! beside the same flood against a server whose buckets never run dry, in the same run.
//!
//! Run with `scripts/bench.sh` (release build, real server processes).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anonchat_e2e::raw::{recv, send, RawDevice, Ws};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anyhow::bail;
use serde_json::json;
use tokio::sync::{mpsc, watch};

/// How long answers are counted once every flooder has been refused at least once.
const WINDOW: Duration = Duration::from_secs(20);
/// Lookups each flooder keeps in flight.
const IN_FLIGHT: u64 = 16;
/// Accounts flooding from the one address.
const ACCOUNTS: usize = 5;

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// Keeps `IN_FLIGHT` lookups of `target` in flight on `ws`; tells `refused` the first time it is
/// rate-limited; counts answered and refused lookups that arrive inside the window.
async fn flood(
    mut ws: Ws,
    target: String,
    refused: mpsc::UnboundedSender<()>,
    window: watch::Receiver<Option<Window>>,
) -> anyhow::Result<(u64, u64)> {
    let (mut answered, mut limited) = (0u64, 0u64);
    let mut told = false;
    let mut id = 0u64;
    let lookup = |id: u64| json!({"v": 1, "id": id, "t": "lookup", "username": target});
    for _ in 0..IN_FLIGHT {
        id += 1;
        send(&mut ws, lookup(id)).await;
    }
    loop {
        let Some(m) = recv(&mut ws).await else {
            bail!("the server closed a flooder's socket")
        };
        let now = Instant::now();
        let w = *window.borrow();
        if w.is_some_and(|w| now >= w.end) {
            return Ok((answered, limited));
        }
        let inside = w.is_some_and(|w| now >= w.start);
        match (m["t"].as_str(), m["code"].as_str()) {
            (Some("user"), _) => answered += u64::from(inside),
            (Some("error"), Some("rate_limited")) => {
                limited += u64::from(inside);
                if !told {
                    told = true;
                    let _ = refused.send(());
                }
            }
            (Some("error"), _) => bail!("unexpected answer {m}"),
            _ => continue, // An event, not an answer.
        }
        id += 1;
        send(&mut ws, lookup(id)).await;
    }
}

/// Floods from `sockets`; returns answered lookups per second over the window, which starts once
/// every flooder has been refused once (buckets empty) — or at once when the server never refuses.
async fn run(sockets: Vec<Ws>, target: &str, limited: bool) -> anyhow::Result<f64> {
    let n = sockets.len();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (window_tx, window_rx) = watch::channel(None);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(flood(ws, target.to_string(), tx.clone(), window_rx.clone())))
        .collect();
    if limited {
        for _ in 0..n {
            if tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .ok()
                .flatten()
                .is_none()
            {
                bail!("the buckets never ran dry");
            }
        }
    }
    let start = Instant::now();
    window_tx.send_replace(Some(Window {
        start,
        end: start + WINDOW,
    }));
    let mut answered = 0;
    for t in tasks {
        answered += t.await??.0;
    }
    Ok(answered as f64 / WINDOW.as_secs_f64())
}

async fn start(limited: bool) -> Server {
    let extra = if limited {
        Vec::new()
    } else {
        [
            "--gate-per-minute",
            "100000000",
            "--gate-burst",
            "100000000",
        ]
        .map(String::from)
        .to_vec()
    };
    Server::start_with(
        ServerOpts {
            extra,
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await
}

/// A registered account that stays online to be looked up.
async fn target(url: &str) -> (RawDevice, Ws) {
    let t = RawDevice::new(&unique("target"));
    t.register(url).await;
    let ws = t.connect(url).await;
    (t, ws)
}

/// Several accounts, all from 127.0.0.1.
async fn one_ip(limited: bool) -> anyhow::Result<f64> {
    let server = start(limited).await;
    let url = server.url();
    let (t, _online) = target(&url).await;
    let mut sockets = Vec::new();
    for _ in 0..ACCOUNTS {
        let d = RawDevice::new(&unique("flood"));
        d.register(&url).await;
        sockets.push(d.connect(&url).await);
    }
    run(sockets, t.username.as_str(), limited).await
}

/// One account with two devices, each on its own address (127.0.0.2 and 127.0.0.3).
async fn one_account(limited: bool) -> anyhow::Result<f64> {
    let server = start(limited).await;
    let url = server.url();
    let (t, _online) = target(&url).await;
    let first = RawDevice::new(&unique("flood"));
    first.register(&url).await;
    let second = first.another_device();
    let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse()?, "127.0.0.3".parse()?);
    let mut ws1 = first.connect_from(&url, a).await;
    first.enroll(&mut ws1, &second, &url).await;
    let ws2 = second.connect_from(&url, b).await;
    run(vec![ws1, ws2], t.username.as_str(), limited).await
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    println!(
        "gate burst bench: lookups answered per second once the buckets are empty ({} s window)",
        WINDOW.as_secs()
    );
    println!(
        "{:<40} {:>12} {:>22} {:>10}",
        "", "limited", "baseline (no limit)", "ratio"
    );
    let mut worst: f64 = 0.0;
    for (name, limited, baseline) in [
        (
            format!("one IP, {ACCOUNTS} accounts"),
            one_ip(true).await?,
            one_ip(false).await?,
        ),
        (
            "one account, 2 devices on 2 IPs".to_string(),
            one_account(true).await?,
            one_account(false).await?,
        ),
    ] {
        worst = worst.max(limited);
        println!(
            "{name:<40} {:>10.2}/s {:>20.1}/s {:>10.5}",
            limited,
            baseline,
            limited / baseline
        );
    }
    // The buckets refill at one token per second; a count over a window may catch one extra.
    let met = worst <= 1.0 + 1.0 / WINDOW.as_secs_f64();
    println!(
        "target: sustained answered lookups <= 1 per second: {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(())
}
