//! A recording, optionally tampering, proxy between clients and the server. WebSocket traffic is
//! proxied message by message (client frames are masked on the wire, so a byte-level recording would
//! hide a canary); plain HTTP is piped byte for byte. Everything is recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// Rewrites a WebSocket text message in flight.
pub type Tamper = Arc<dyn Fn(Dir, String) -> String + Send + Sync>;

pub struct Proxy {
    pub addr: SocketAddr,
    pub record: Arc<Mutex<Vec<u8>>>,
    listener: Option<TcpListener>,
}

impl Proxy {
    pub async fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        Proxy {
            addr: listener.local_addr().expect("proxy addr"),
            record: Arc::default(),
            listener: Some(listener),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn run(&mut self, upstream: SocketAddr, tamper: Option<Tamper>) {
        let listener = self.listener.take().expect("proxy already running");
        let record = self.record.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                let tamper = tamper.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 16];
                    let n = stream.peek(&mut head).await.unwrap_or(0);
                    if head[..n].starts_with(b"GET /v1/ws") {
                        ws(stream, upstream, record, tamper).await;
                    } else {
                        pipe(stream, upstream, record).await;
                    }
                });
            }
        });
    }

    pub fn recorded(&self) -> Vec<u8> {
        self.record.lock().expect("record").clone()
    }
}

fn note(record: &Mutex<Vec<u8>>, bytes: &[u8]) {
    let mut r = record.lock().expect("record");
    r.extend_from_slice(bytes);
    r.push(b'\n');
}

async fn ws(
    client: TcpStream,
    upstream: SocketAddr,
    record: Arc<Mutex<Vec<u8>>>,
    tamper: Option<Tamper>,
) {
    let Ok(client) = tokio_tungstenite::accept_async(client).await else {
        return;
    };
    let Ok((server, _)) = tokio_tungstenite::connect_async(format!("ws://{upstream}/v1/ws")).await
    else {
        return;
    };
    let (mut c_tx, mut c_rx) = client.split();
    let (mut s_tx, mut s_rx) = server.split();
    let (rec1, t1) = (record.clone(), tamper.clone());
    let up = async move {
        while let Some(Ok(m)) = c_rx.next().await {
            let m = match m {
                Message::Text(t) => {
                    note(&rec1, t.as_bytes());
                    let t = match &t1 {
                        Some(f) => f(Dir::ToServer, t.to_string()),
                        None => t.to_string(),
                    };
                    Message::text(t)
                }
                Message::Binary(b) => {
                    note(&rec1, &b);
                    Message::Binary(b)
                }
                Message::Close(_) => break,
                other => other,
            };
            if s_tx.send(m).await.is_err() {
                break;
            }
        }
        let _ = s_tx.close().await;
    };
    let down = async move {
        while let Some(Ok(m)) = s_rx.next().await {
            let m = match m {
                Message::Text(t) => {
                    note(&record, t.as_bytes());
                    let t = match &tamper {
                        Some(f) => f(Dir::ToClient, t.to_string()),
                        None => t.to_string(),
                    };
                    Message::text(t)
                }
                Message::Close(_) => break,
                other => other,
            };
            if c_tx.send(m).await.is_err() {
                break;
            }
        }
        let _ = c_tx.close().await;
    };
    tokio::select! {
        _ = up => {},
        _ = down => {},
    }
}

async fn pipe(mut client: TcpStream, upstream: SocketAddr, record: Arc<Mutex<Vec<u8>>>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let rec2 = record.clone();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            note(&record, &buf[..n]);
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = sr.read(&mut buf).await {
            if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            note(&rec2, &buf[..n]);
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}
