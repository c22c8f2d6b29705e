//! Request load bench (issue 14): with 5 000 idle devices connected, lookups sent open-loop at
//! 1 000, 2 000 and 5 000 per second from 200 sockets on 20 addresses; each answer's latency beyond
//! the gate's timing floor (p50/p99/p99.9), beside `ping` (not gated, no floor) at the same rate in
//! the same run. Goal: p99 ≤ 5 ms beyond the floor at 5 000/s. Limits and backoff are lifted: this
//! measures the work per request, not the abuse defences.
//!
//! Twice: one instance (the embedded default), then two instances on PostgreSQL and Redis with the
//! devices and senders spread over both — the same machine, so the second shape shows what the
//! shared state costs, not what a second machine would add.
//!
//! Run with `scripts/bench.sh` (release build, real server process); `-- one` runs the first shape
//! only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anonchat_e2e::deployment::Deployment;
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::sockets::{self, Ws};
use anonchat_e2e::TempDir;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const IDLE: usize = 5_000;
const SENDERS: usize = 200;
const RATES: [u64; 3] = [1_000, 2_000, 5_000];
const SECONDS: u64 = 6;
/// Each rate runs this many times (ping, then lookups, each time); the medians are printed.
const REPEATS: usize = 3;
const FLOOR_MS: f64 = 10.0;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends `rate` requests per second for SECONDS over the senders, open loop; the latencies (ms) of
/// the answers, in order, and how many never came.
async fn drive(
    senders: Vec<Ws>,
    rate: u64,
    gated: bool,
    seconds: u64,
) -> (Vec<Ws>, Vec<f64>, usize) {
    let per_sender = Duration::from_secs_f64(senders.len() as f64 / rate as f64);
    let count = (rate * seconds) as usize / senders.len();
    let mut tasks = Vec::new();
    for ws in senders {
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
            let reader = {
                let sent = sent.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(count);
                    while lat.len() < count {
                        let Ok(Some(Ok(Message::Text(t)))) =
                            tokio::time::timeout(Duration::from_secs(5), rx.next()).await
                        else {
                            break;
                        };
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
                            continue;
                        };
                        let Some(id) = v["re"].as_u64() else { continue };
                        if let Some(at) = sent.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                            lat.push(at.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    (rx, lat)
                })
            };
            let mut tick = tokio::time::interval(per_sender);
            // Spread the senders' phases over one interval.
            tokio::time::sleep(per_sender.mul_f64(rand::random::<f64>())).await;
            for id in 1..=count as u64 {
                tick.tick().await;
                let msg = if gated {
                    json!({"v":1,"id":id,"t":"lookup","username":format!("nobody{:08x}", rand::random::<u32>())})
                } else {
                    json!({"v":1,"id":id,"t":"ping"})
                };
                sent.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Instant::now());
                if tx.send(Message::text(msg.to_string())).await.is_err() {
                    break;
                }
            }
            let (rx, lat) = reader.await.unwrap_or_else(|_| panic!("reader"));
            let lost = count - lat.len();
            (tx.reunite(rx).ok(), lat, lost)
        }));
    }
    let (mut back, mut all, mut lost) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        if let Ok((ws, lat, l)) = t.await {
            back.extend(ws);
            all.extend(lat);
            lost += l;
        }
    }
    all.sort_by(|a, b| a.total_cmp(b));
    (back, all, lost)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let extra = [
        "--gate-per-minute",
        "10000000",
        "--gate-burst",
        "1000000",
        "--backoff-after",
        "0",
        "--pow-after",
        "0",
        "--socket-messages-per-second",
        "100000",
        "--socket-message-burst",
        "100000",
    ]
    .map(String::from)
    .to_vec();
    let opts = ServerOpts {
        log: "warn".into(),
        extra: extra.clone(),
        single: true,
        ..ServerOpts::default()
    };
    let server = Server::start_with(opts, TempDir::new("server")).await;
    let one = vec![(server.addr, server.url())];
    shape("one instance (SQLite, in-process hub)", &one).await?;
    drop(server);
    if std::env::args().any(|a| a == "one") {
        return Ok(()); // `cargo bench --bench load -- one`: the first shape only.
    }
    let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let d = Deployment::start(2, &refs).await;
    let two: Vec<_> = d.servers.iter().map(|s| (s.addr, s.url())).collect();
    shape("two instances (PostgreSQL, Redis)", &two).await
}

/// Idle devices and senders spread over `servers` (address, origin), then every rate.
async fn shape(name: &str, servers: &[(std::net::SocketAddr, String)]) -> anyhow::Result<()> {
    println!("== {name}: registering {} accounts", IDLE + SENDERS);
    let devices = anonchat_e2e::raw::register_many(&servers[0].1, IDLE + SENDERS, "load").await?;
    let on = |i: usize| &servers[i % servers.len()];
    let idle: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(0..IDLE)
        .map(|i| {
            let (addr, origin) = on(i);
            sockets::device(*addr, origin, &devices[i], sockets::source(9, i, 25))
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let _idle: Vec<Ws> = idle.into_iter().collect::<anyhow::Result<_>>()?;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let local = sockets::source(10, i, 10);
        let (addr, origin) = on(i);
        senders.push(sockets::device(*addr, origin, &devices[IDLE + i], local).await?);
    }
    println!("lookups of unknown names, open loop from {SENDERS} sockets, {IDLE} idle devices connected; {SECONDS} s per rate, medians of {REPEATS} runs");
    println!("latency beyond the {FLOOR_MS} ms gate floor, beside ping (ungated) at the same rate");
    // A warm-up, so the first rate does not pay for caches and the idle devices' arrival.
    let (s, _, _) = drive(senders, 1_000, true, 2).await;
    senders = s;
    for rate in RATES {
        let (mut look_runs, mut ping_runs, mut lost) = (Vec::new(), Vec::new(), (0, 0));
        for _ in 0..REPEATS {
            let (s, ping, ping_lost) = drive(senders, rate, false, SECONDS).await;
            let (s, look, look_lost) = drive(s, rate, true, SECONDS).await;
            senders = s;
            anyhow::ensure!(senders.len() == SENDERS, "sockets were lost");
            let beyond = |v: f64| v - FLOOR_MS;
            look_runs.push([0.5, 0.99, 0.999].map(|p| beyond(pct(&look, p))));
            ping_runs.push([0.5, 0.99, 0.999].map(|p| pct(&ping, p)));
            lost = (lost.0 + look_lost, lost.1 + ping_lost);
        }
        let (look, ping) = (medians(&look_runs), medians(&ping_runs));
        let p99s: Vec<String> = look_runs.iter().map(|r| format!("{:.2}", r[1])).collect();
        println!(
            "{rate:5}/s  lookup beyond floor p50 {:7.2}  p99 {:7.2}  p99.9 {:7.2} ms (lost {})   ping p50 {:6.2}  p99 {:6.2}  p99.9 {:6.2} ms (lost {})   p99 ratio {:.2}x   lookup p99 per run [{}]  (goal p99 <= 5 ms beyond the floor at 5 000/s)",
            look[0], look[1], look[2], lost.0, ping[0], ping[1], ping[2], lost.1,
            look[1] / ping[1].max(0.001),
            p99s.join(", "),
        );
    }
    Ok(())
}

/// The median of each column.
fn medians(runs: &[[f64; 3]]) -> [f64; 3] {
    std::array::from_fn(|i| {
        let mut col: Vec<f64> = runs.iter().map(|r| r[i]).collect();
        col.sort_by(|a, b| a.total_cmp(b));
        pct(&col, 0.5)
    })
}
