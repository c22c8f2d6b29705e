//! Idle connections bench (issue 14): server RSS per idle authenticated WebSocket, at growing N,
//! beside a minimal tokio-tungstenite server (4 KiB read buffer, the leanest configuration of the
//! same stack) holding the same N plain WebSockets from the same load tool in the same run.
//! Goal: ≤ 8 KiB per idle authenticated connection.
//!
//! Connections come from many loopback addresses (30 each, under the server's default per-address
//! caps). N stops at 19 000: this machine's open-file limit is 20 000 per process and cannot be
//! raised (setrlimit is refused even to root), and the server holds one descriptor per socket.
//!
//! Run with `scripts/bench.sh` (release build, real server process).

use std::time::{Duration, Instant};

use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::sockets::{self, rss_kib, Ws};
use anonchat_e2e::TempDir;
use futures_util::StreamExt;

const STEPS: [usize; 4] = [1_000, 5_000, 10_000, 19_000];
const PER_ADDRESS: usize = 30;
/// Connections being opened at once.
const PARALLEL: usize = 64;

/// Opens connections `from..to` with `open`, PARALLEL at a time.
async fn open_range<F, Fut>(from: usize, to: usize, open: F) -> anyhow::Result<Vec<Ws>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Ws>>,
{
    let opened: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(from..to)
        .map(open)
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// RSS per connection at each step: (N, KiB per connection).
async fn measure<F, Fut>(pid: u32, open: F) -> anyhow::Result<Vec<(usize, f64)>>
where
    F: Fn(usize) -> Fut + Copy,
    Fut: std::future::Future<Output = anyhow::Result<Ws>>,
{
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let mut held = Vec::new();
    let mut out = Vec::new();
    for n in STEPS {
        let more = open_range(held.len(), n, open).await?;
        held.extend(more);
        let rss = rss_kib(pid)?;
        out.push((n, (rss.saturating_sub(before)) as f64 / n as f64));
    }
    // Every connection must still be open when measured: the server closes sockets idle for 90 s.
    anyhow::ensure!(
        started.elapsed() < Duration::from_secs(85),
        "connecting took {:?}: early sockets may have timed out",
        started.elapsed()
    );
    drop(held);
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == anonchat_e2e::echo::FLAG) {
        return anonchat_e2e::echo::serve().await;
    }
    let opts = ServerOpts {
        log: "warn".into(),
        extra: ServerOpts::lifted_gate(),
        ..ServerOpts::default()
    };
    let server = Server::start_with(opts, TempDir::new("server")).await;
    let url = server.url();
    let max = STEPS[STEPS.len() - 1];
    println!("registering {max} accounts");
    let devices = anonchat_e2e::raw::register_many(&url, max, "idle").await?;

    let (echo_child, echo_addr) = anonchat_e2e::echo::start().await?;
    let echo_pid = echo_child.id().ok_or_else(|| anyhow::anyhow!("echo pid"))?;
    let base = measure(echo_pid, |i| {
        sockets::echo(echo_addr, sockets::source(1, i, PER_ADDRESS))
    })
    .await?;
    drop(echo_child);

    let devices = &devices;
    let url = &url;
    let ours = measure(server.pid(), |i| {
        sockets::device(
            server.addr,
            url,
            &devices[i],
            sockets::source(1, i, PER_ADDRESS),
        )
    })
    .await?;

    println!("idle connections: server RSS per connection (KiB), beside a tokio-tungstenite server with a 4 KiB read buffer");
    for ((n, a), (_, b)) in ours.iter().zip(&base) {
        println!(
            "N {n:6}: anonchat {a:7.1} KiB   baseline {b:6.1} KiB   ratio {:.2}x   (goal <= 8 KiB)",
            a / b
        );
    }
    Ok(())
}
