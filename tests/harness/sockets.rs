//! Many sockets from one load tool (the server benches): lean WebSocket clients bound to chosen
//! loopback addresses, authenticated as raw devices or not, and a process's resident memory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::raw::RawDevice;

pub type Ws = WebSocketStream<TcpStream>;

/// The `i`th of many client addresses, `per` sockets each: 127.`block`.x.y.
pub fn source(block: u8, i: usize, per: usize) -> IpAddr {
    let a = i / per;
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (a / 250) as u8,
        (a % 250) as u8 + 1,
    ))
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// A WebSocket to `server`'s `/v1/ws` from `local`, with a 4 KiB read buffer on this side so tens
/// of thousands of clients fit in the load tool's memory.
pub async fn open(server: SocketAddr, local: IpAddr) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(local, 0))?;
    let tcp = sock.connect(server).await?;
    let cfg = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(format!("ws://{server}/v1/ws"), tcp, Some(cfg))
            .await?;
    Ok(ws)
}

/// The next text message (30 s at most).
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed"))??;
        if let Message::Text(t) = m {
            return Ok(t.as_str().to_string());
        }
    }
}

pub async fn next_json(ws: &mut Ws) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&next_text(ws).await?)?)
}

/// An authenticated AnonChat device socket (`origin`: the server's URL, which the device signs).
pub async fn device(
    server: SocketAddr,
    origin: &str,
    d: &RawDevice,
    local: IpAddr,
) -> anyhow::Result<Ws> {
    let mut ws = open(server, local).await?;
    let challenge = next_json(&mut ws).await?;
    let nonce = anonchat_proto::Key32::from_base64(challenge["nonce"].as_str().unwrap_or(""))?;
    let auth = json!({"v": 1, "t": "auth", "username": d.username.as_str(),
        "device_id": d.cert.device_id, "sig": d.auth_sig(&nonce.0, origin)});
    ws.send(Message::text(auth.to_string())).await?;
    let ok = next_json(&mut ws).await?;
    anyhow::ensure!(ok["t"] == "auth_ok", "{ok}");
    Ok(ws)
}

/// A socket to the echo baseline (`echo.rs`), answered once so the server has set it up.
pub async fn echo(server: SocketAddr, local: IpAddr) -> anyhow::Result<Ws> {
    let mut ws = open(server, local).await?;
    ws.send(Message::text("hi")).await?;
    next_text(&mut ws).await?;
    Ok(ws)
}
