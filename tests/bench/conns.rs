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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anonchat_e2e::raw::RawDevice;
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::TempDir;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const STEPS: [usize; 4] = [1_000, 5_000, 10_000, 19_000];
const PER_ADDRESS: usize = 30;
/// Connections being opened at once.
const PARALLEL: usize = 64;

type Ws = WebSocketStream<TcpStream>;

/// A small read buffer on the load tool's side too, so 19 000 clients fit in its memory.
fn small() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

fn source(i: usize) -> IpAddr {
    let a = i / PER_ADDRESS;
    IpAddr::V4(Ipv4Addr::new(127, 1, (a / 250) as u8, (a % 250) as u8 + 1))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

async fn ws_from(server: SocketAddr, i: usize) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source(i), 0))?;
    let tcp = sock.connect(server).await?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{server}/v1/ws"),
        tcp,
        Some(small()),
    )
    .await?;
    Ok(ws)
}

async fn next_json(ws: &mut Ws) -> anyhow::Result<serde_json::Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed"))??;
        if let Message::Text(t) = m {
            return Ok(serde_json::from_str(t.as_str())?);
        }
    }
}

/// One authenticated AnonChat device connection.
async fn anonchat(server: SocketAddr, origin: &str, d: &RawDevice, i: usize) -> anyhow::Result<Ws> {
    let mut ws = ws_from(server, i).await?;
    let challenge = next_json(&mut ws).await?;
    let nonce = anonchat_proto::Key32::from_base64(challenge["nonce"].as_str().unwrap_or(""))?;
    let sig = d.auth_sig(&nonce.0, origin);
    let auth = json!({"v": 1, "t": "auth", "username": d.username.as_str(),
        "device_id": d.cert.device_id, "sig": sig});
    ws.send(Message::text(auth.to_string())).await?;
    let ok = next_json(&mut ws).await?;
    anyhow::ensure!(ok["t"] == "auth_ok", "{ok}");
    Ok(ws)
}

/// One connection to the echo baseline, answered once so the server has set it up.
async fn echo(server: SocketAddr, i: usize) -> anyhow::Result<Ws> {
    let mut ws = ws_from(server, i).await?;
    ws.send(Message::text("hi")).await?;
    next_text(&mut ws).await?;
    Ok(ws)
}

async fn next_text(ws: &mut Ws) -> anyhow::Result<()> {
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
        Some(Ok(Message::Text(_))) => Ok(()),
        other => anyhow::bail!("no echo: {other:?}"),
    }
}

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
    let base = measure(echo_pid, |i| echo(echo_addr, i)).await?;
    drop(echo_child);

    let devices = &devices;
    let url = &url;
    let ours = measure(server.pid(), |i| anonchat(server.addr, url, &devices[i], i)).await?;

    println!("idle connections: server RSS per connection (KiB), beside a tokio-tungstenite server with a 4 KiB read buffer");
    for ((n, a), (_, b)) in ours.iter().zip(&base) {
        println!(
            "N {n:6}: anonchat {a:7.1} KiB   baseline {b:6.1} KiB   ratio {:.2}x   (goal <= 8 KiB)",
            a / b
        );
    }
    Ok(())
}
