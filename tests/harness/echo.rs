//! The benches' baseline server: a minimal tokio-tungstenite WebSocket server with a 4 KiB read
//! buffer (the leanest configuration of the same stack) that echoes text. A bench runs it as a
//! child of itself: `start()` re-executes the bench with `--echo-server`, whose `main` then calls
//! `serve()`.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The flag that makes a bench binary the echo server.
pub const FLAG: &str = "--echo-server";

/// Accepts and echoes until killed; prints the address first.
pub async fn serve() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let cfg = WebSocketConfig::default().read_buffer_size(4096);
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(cfg)).await
            else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                if m.is_text() && ws.send(m).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// This bench binary again, as the echo server (killed when the child is dropped).
pub async fn start() -> anyhow::Result<(Child, SocketAddr)> {
    use tokio::io::AsyncBufReadExt;
    let mut child = Command::new(std::env::current_exe()?)
        .arg(FLAG)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or_else(|| anyhow::anyhow!("echo server did not start"))?;
    Ok((child, line.parse()?))
}
