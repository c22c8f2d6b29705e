//! Churn bench (issue 14): with 5 000 idle authenticated devices held, devices connect,
//! authenticate and leave at 1 000 per second for 60 s; then the server's RSS beside where it
//! started (goal: back within 10 %). The baseline is a minimal tokio-tungstenite server
//! (`harness/echo.rs`) under the same idle load and churn from the same load tool, in the same run.
//!
//! Run with `scripts/bench.sh` (release build, real server process).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_e2e::nginx::free_port;
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::sockets::{self, rss_kib, Ws};
use anonchat_e2e::TempDir;
use futures_util::StreamExt;

const IDLE: usize = 5_000;
/// Accounts that come and go, each many times.
const CHURNERS: usize = 1_000;
const RATE: u64 = 1_000;
const SECONDS: u64 = 60;
const PER_ADDRESS: usize = 25;

struct Figures {
    start_kib: u64,
    end_kib: u64,
    rate: f64,
}

/// Holds IDLE connections, then churns at RATE for SECONDS; RSS before and after, once every
/// churned socket is closed and `settled` says the server is back to IDLE.
async fn run<O, Fo, S, Fs>(pid: u32, open: O, settled: S) -> anyhow::Result<Figures>
where
    O: Fn(bool, usize) -> Fo + Clone + Send + Sync + 'static,
    Fo: std::future::Future<Output = anyhow::Result<Ws>> + Send,
    S: Fn() -> Fs,
    Fs: std::future::Future<Output = bool>,
{
    let idle: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(0..IDLE)
        .map(|i| open(false, i))
        .buffer_unordered(64)
        .collect()
        .await;
    let idle: Vec<Ws> = idle.into_iter().collect::<anyhow::Result<_>>()?;
    let start_kib = rss_kib(pid)?;
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut tasks = Vec::new();
    for n in 0..(RATE * SECONDS) as usize {
        tick.tick().await;
        let (open, done, failed) = (open.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            match open(true, n % CHURNERS).await {
                Ok(mut ws) => {
                    let _ = ws.close(None).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !settled().await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server never settled back to {IDLE}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end_kib = rss_kib(pid)?;
    drop(idle);
    let ok = done.load(Ordering::Relaxed);
    anyhow::ensure!(
        ok > 0,
        "no churned connection succeeded ({} failed)",
        failed.load(Ordering::Relaxed)
    );
    Ok(Figures {
        start_kib,
        end_kib,
        rate: ok as f64 / elapsed,
    })
}

fn line(name: &str, f: &Figures) -> String {
    let grown = f.end_kib as f64 - f.start_kib as f64;
    format!(
        "{name:28} RSS {:7.1} MiB → {:7.1} MiB  (+{:6.1} MiB, {:+5.1} %)  at {:6.0} connects/s",
        f.start_kib as f64 / 1024.0,
        f.end_kib as f64 / 1024.0,
        grown / 1024.0,
        100.0 * grown / f.start_kib as f64,
        f.rate
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == anonchat_e2e::echo::FLAG) {
        return anonchat_e2e::echo::serve().await;
    }
    let port = free_port();
    let mut extra = ServerOpts::lifted_gate();
    extra.extend(["--metrics-listen".to_string(), format!("127.0.0.1:{port}")]);
    let opts = ServerOpts {
        log: "warn".into(),
        extra,
        ..ServerOpts::default()
    };
    let server = Server::start_with(opts, TempDir::new("server")).await;
    let url = server.url();
    println!("registering {} accounts", IDLE + CHURNERS);
    let devices = anonchat_e2e::raw::register_many(&url, IDLE + CHURNERS, "churn").await?;
    let devices = Arc::new(devices);

    let (echo_child, echo_addr) = anonchat_e2e::echo::start().await?;
    let echo_pid = echo_child.id().ok_or_else(|| anyhow::anyhow!("echo pid"))?;
    let base = run(
        echo_pid,
        move |churn, i| {
            sockets::echo(
                echo_addr,
                sockets::source(if churn { 6 } else { 5 }, i, PER_ADDRESS),
            )
        },
        || async { true },
    )
    .await?;
    drop(echo_child);

    let (addr, origin) = (server.addr, url.clone());
    let devs = devices.clone();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let ours = run(
        server.pid(),
        move |churn, i| {
            let (devs, origin) = (devs.clone(), origin.clone());
            async move {
                let d = if churn { &devs[IDLE + i] } else { &devs[i] };
                let local = sockets::source(if churn { 8 } else { 7 }, i, PER_ADDRESS);
                sockets::device(addr, &origin, d, local).await
            }
        },
        || {
            let metrics = metrics.clone();
            async move {
                let Ok(resp) = reqwest::get(&metrics).await else {
                    return false;
                };
                let text = resp.text().await.unwrap_or_default();
                text.lines()
                    .any(|l| l == format!("anonchat_websockets {IDLE}"))
            }
        },
    )
    .await?;
    println!("churn: {IDLE} idle held, connect + authenticate + close at {RATE}/s for {SECONDS} s (goal: back within 10 %)");
    println!("{}", line("anonchat", &ours));
    println!("{}", line("tokio-tungstenite baseline", &base));
    Ok(())
}
