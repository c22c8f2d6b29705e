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

/// Rewrites a WebSocket text message in flight; an empty string withholds it (a server that
/// never answers, or a client message the server never got).
pub type Tamper = Arc<dyn Fn(Dir, String) -> String + Send + Sync>;

/// A malicious server's own moves: for each message on its way to a client, what it sends that
/// client after it (forged, replayed or duplicated messages). See `hostile.rs`.
pub type Mischief = Arc<dyn Fn(&serde_json::Value) -> Vec<serde_json::Value> + Send + Sync>;

/// A proxied WebSocket: the account it authenticated as (once it did), and a way to send it
/// messages the server never sent (a malicious server's own).
struct Conn {
    username: Arc<Mutex<Option<String>>>,
    inject: tokio::sync::mpsc::UnboundedSender<String>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub record: Arc<Mutex<Vec<u8>>>,
    listener: Option<TcpListener>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

impl Proxy {
    pub async fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        Proxy {
            addr: listener.local_addr().expect("proxy addr"),
            record: Arc::default(),
            listener: Some(listener),
            conns: Arc::default(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn run(&mut self, upstream: SocketAddr, tamper: Option<Tamper>) {
        self.run_with(upstream, tamper, None);
    }

    /// As [`Proxy::run`], with `mischief` adding messages after each one to a client. Returns the
    /// accepting task (aborting it frees the port; connections already made go on).
    pub fn run_with(
        &mut self,
        upstream: SocketAddr,
        tamper: Option<Tamper>,
        mischief: Option<Mischief>,
    ) -> tokio::task::JoinHandle<()> {
        let listener = self.listener.take().expect("proxy already running");
        let record = self.record.clone();
        let conns = self.conns.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                let tamper = tamper.clone();
                let mischief = mischief.clone();
                let conns = conns.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 16];
                    let n = stream.peek(&mut head).await.unwrap_or(0);
                    if head[..n].starts_with(b"GET /v1/ws") {
                        let (inject, injected) = tokio::sync::mpsc::unbounded_channel();
                        let username = Arc::new(Mutex::new(None));
                        conns.lock().expect("conns").push(Conn {
                            username: username.clone(),
                            inject,
                        });
                        let hooks = Hooks { tamper, mischief };
                        ws(stream, upstream, record, hooks, username, injected).await;
                    } else {
                        pipe(stream, upstream, record).await;
                    }
                });
            }
        })
    }

    pub fn recorded(&self) -> Vec<u8> {
        self.record.lock().expect("record").clone()
    }

    /// The JSON messages recorded so far whose `t` is `t` (either direction).
    pub fn recorded_messages(&self, t: &str) -> Vec<serde_json::Value> {
        self.recorded()
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
            .filter(|v| v["t"] == t)
            .collect()
    }

    /// Waits (up to 10 s) until at least `n` messages of type `t` were recorded; returns them.
    pub async fn recorded_at_least(&self, t: &str, n: usize) -> Vec<serde_json::Value> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let seen = self.recorded_messages(t);
            if seen.len() >= n {
                return seen;
            }
            assert!(
                std::time::Instant::now() < until,
                "only {} {t} recorded",
                seen.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Sends `msg` to every live WebSocket of `username` as if the server had (a malicious one).
    /// Returns how many sockets it went to.
    pub fn inject(&self, username: &str, msg: &serde_json::Value) -> usize {
        let text = msg.to_string();
        let conns = self.conns.lock().expect("conns");
        conns
            .iter()
            .filter(|c| c.username.lock().expect("name").as_deref() == Some(username))
            .filter(|c| c.inject.send(text.clone()).is_ok())
            .count()
    }
}

fn note(record: &Mutex<Vec<u8>>, bytes: &[u8]) {
    let mut r = record.lock().expect("record");
    r.extend_from_slice(bytes);
    r.push(b'\n');
}

struct Hooks {
    tamper: Option<Tamper>,
    mischief: Option<Mischief>,
}

async fn ws(
    client: TcpStream,
    upstream: SocketAddr,
    record: Arc<Mutex<Vec<u8>>>,
    hooks: Hooks,
    username: Arc<Mutex<Option<String>>>,
    mut injected: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let Hooks { tamper, mischief } = hooks;
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
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                        if v["t"] == "auth" {
                            if let Some(u) = v["username"].as_str() {
                                *username.lock().expect("name") = Some(u.to_string());
                            }
                        }
                    }
                    let t = match &t1 {
                        Some(f) => f(Dir::ToServer, t.to_string()),
                        None => t.to_string(),
                    };
                    if t.is_empty() {
                        continue;
                    }
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
        loop {
            let m = tokio::select! {
                m = s_rx.next() => match m {
                    Some(Ok(m)) => m,
                    _ => break,
                },
                Some(forged) = injected.recv() => {
                    note(&record, forged.as_bytes());
                    if c_tx.send(Message::text(forged)).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            let mut extra = Vec::new();
            let m = match m {
                Message::Text(t) => {
                    note(&record, t.as_bytes());
                    let t = match &tamper {
                        Some(f) => f(Dir::ToClient, t.to_string()),
                        None => t.to_string(),
                    };
                    if t.is_empty() {
                        continue;
                    }
                    if let (Some(f), Ok(v)) = (&mischief, serde_json::from_str(&t)) {
                        extra = f(&v);
                    }
                    Message::text(t)
                }
                Message::Close(_) => break,
                other => other,
            };
            if c_tx.send(m).await.is_err() {
                break;
            }
            // Not recorded: a test reading the record sees the server's own traffic.
            for forged in extra {
                if c_tx.send(Message::text(forged.to_string())).await.is_err() {
                    break;
                }
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

/// A real server whose public origin is a proxy in front of it (optionally tampering). Under the
/// hostile server (`hostile.rs`) a proxy the test does not tamper with itself plays the catalogue.
pub async fn proxied(tamper: Option<Tamper>) -> (crate::server::Server, Proxy) {
    let mut proxy = Proxy::bind().await;
    let server = crate::server::Server::start_with(
        crate::server::ServerOpts {
            public_url: Some(proxy.url()),
            ..Default::default()
        },
        crate::TempDir::new("server"),
    )
    .await;
    if tamper.is_none() && crate::hostile::enabled() {
        let (mischief, watch) = crate::hostile::catalogue(proxy.record.clone());
        proxy.run_with(server.addr, None, Some(mischief));
        return (server.watched(watch), proxy);
    }
    proxy.run(server.addr, tamper);
    (server, proxy)
}

/// A tamper that rewrites messages of type `t` going in `want` with `f`, and passes the rest.
pub fn rewrite(
    dir: Dir,
    text: String,
    want: Dir,
    t: &str,
    f: impl Fn(&mut serde_json::Value),
) -> String {
    if dir != want {
        return text;
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return text;
    };
    if v["t"] != t {
        return text;
    }
    f(&mut v);
    v.to_string()
}
