//! A hand-made protocol client, for sending the server things a real client never would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anonchat_proto::pow::{register_resource, Stamp};
use anonchat_proto::signing::{
    auth_bytes, enroll_join_bytes, enroll_token_bytes, one_time_key_bytes,
};
use anonchat_proto::wire::{RegisterRequest, SignedOtk};
use anonchat_proto::{Caps, DeviceCert, Key32, Sig64, Username};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct RawDevice {
    pub username: Username,
    pub ak: SigningKey,
    pub dk: SigningKey,
    pub cert: DeviceCert,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RawDevice {
    pub fn new(username: &str) -> Self {
        let ak = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::with_ak(Username::parse(username).expect("username"), ak)
    }

    /// Another device of the same account (same account key, new device key and certificate); it
    /// exists on the server once enrolled (`enroll`).
    pub fn another_device(&self) -> Self {
        Self::with_ak(self.username.clone(), self.ak.clone())
    }

    fn with_ak(username: Username, ak: SigningKey) -> Self {
        let dk = SigningKey::generate(&mut rand::rngs::OsRng);
        let device_id = {
            let b: [u8; 16] = rand::random();
            b.iter().map(|x| format!("{:02x}", x)).collect::<String>()[..22].to_string()
        };
        let e = Key32(dk.verifying_key().to_bytes());
        let c = Key32(rand::random());
        let caps = Caps::default();
        // One reading of the clock: the certificate must carry the time it was signed over.
        let created_at = now();
        let sig = Sig64(
            ak.sign(&DeviceCert::signing_bytes(
                &username, &device_id, &e, &c, caps, created_at,
            ))
            .to_bytes(),
        );
        let cert = DeviceCert {
            v: 1,
            username: username.clone(),
            device_id,
            dk_ed25519: e,
            dk_curve25519: c,
            caps,
            created_at,
            sig,
        };
        Self {
            username,
            ak,
            dk,
            cert,
        }
    }

    pub fn ak_pub(&self) -> Key32 {
        Key32(self.ak.verifying_key().to_bytes())
    }

    pub fn register_request(&self, bits: u8) -> RegisterRequest {
        let resource = register_resource(&self.username, &self.ak_pub());
        RegisterRequest {
            v: 1,
            username: self.username.clone(),
            ak_pub: self.ak_pub(),
            device_cert: self.cert.clone(),
            pow: Stamp::mint(&resource, bits, now()),
        }
    }

    pub async fn register(&self, server: &str) {
        let resp = reqwest::Client::new()
            .post(format!("{server}/v1/register"))
            .json(&self.register_request(8))
            .send()
            .await
            .expect("register request");
        assert!(resp.status().is_success(), "register: {}", resp.status());
    }

    pub fn auth_sig(&self, nonce: &[u8; 32], origin: &str) -> Sig64 {
        Sig64(
            self.dk
                .sign(&auth_bytes(
                    nonce,
                    origin,
                    &self.username,
                    &self.cert.device_id,
                ))
                .to_bytes(),
        )
    }

    pub fn otk(&self) -> SignedOtk {
        let key = Key32(rand::random());
        SignedOtk {
            sig: Sig64(
                self.dk
                    .sign(&one_time_key_bytes(&self.cert.device_id, &key))
                    .to_bytes(),
            ),
            key,
        }
    }

    /// Opens a socket and returns it with the challenge nonce, unauthenticated.
    pub async fn open(server: &str) -> (Ws, [u8; 32]) {
        let url = format!("{}/v1/ws", server.replacen("http://", "ws://", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let challenge = recv(&mut ws).await.expect("challenge");
        assert_eq!(challenge["t"], "challenge");
        let nonce =
            Key32::from_base64(challenge["nonce"].as_str().expect("nonce")).expect("nonce bytes");
        (ws, nonce.0)
    }

    /// Like `open`, from the local address `local` (any 127.x.y.z reaches a loopback server), so
    /// one machine can play several IP addresses.
    pub async fn open_from(server: &str, local: std::net::IpAddr) -> (Ws, [u8; 32]) {
        let host = server.trim_start_matches("http://");
        let addr: std::net::SocketAddr = host.parse().expect("server address");
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(std::net::SocketAddr::new(local, 0))
            .expect("bind");
        let tcp = sock.connect(addr).await.expect("tcp connect");
        let url = format!("ws://{host}/v1/ws");
        let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
            .await
            .expect("ws handshake");
        let challenge = recv(&mut ws).await.expect("challenge");
        let nonce =
            Key32::from_base64(challenge["nonce"].as_str().expect("nonce")).expect("nonce bytes");
        (ws, nonce.0)
    }

    /// Like `open_from`, but a refusal is an `Err` with the server's HTTP status and body.
    pub async fn open_from_checked(
        server: &str,
        local: std::net::IpAddr,
    ) -> Result<(Ws, [u8; 32]), String> {
        let host = server.trim_start_matches("http://");
        let addr: std::net::SocketAddr = host.parse().map_err(|e| format!("{e}"))?;
        let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        sock.bind(std::net::SocketAddr::new(local, 0))
            .map_err(|e| e.to_string())?;
        let tcp = sock.connect(addr).await.map_err(|e| e.to_string())?;
        let url = format!("ws://{host}/v1/ws");
        let mut ws = match tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)).await {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                return Err(format!("{} {body}", resp.status()));
            }
            Err(e) => return Err(e.to_string()),
        };
        let challenge = recv(&mut ws).await.ok_or("no challenge")?;
        let nonce = Key32::from_base64(challenge["nonce"].as_str().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        Ok((ws, nonce.0))
    }

    /// Answers the challenge; `Err` with what the server said instead of `auth_ok`.
    pub async fn authenticate_checked(
        &self,
        ws: &mut Ws,
        nonce: &[u8; 32],
        server: &str,
    ) -> Result<(), String> {
        let sig = self.auth_sig(nonce, server);
        send(ws, json!({"v": 1, "t": "auth", "username": self.username.as_str(), "device_id": self.cert.device_id, "sig": sig})).await;
        match recv(ws).await {
            Some(ok) if ok["t"] == "auth_ok" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    /// `connect`, from the local address `local`.
    pub async fn connect_from(&self, server: &str, local: std::net::IpAddr) -> Ws {
        let (mut ws, nonce) = Self::open_from(server, local).await;
        self.authenticate(&mut ws, &nonce, server).await;
        ws
    }

    async fn authenticate(&self, ws: &mut Ws, nonce: &[u8; 32], server: &str) {
        let sig = self.auth_sig(nonce, server);
        send(ws, json!({"v": 1, "t": "auth", "username": self.username.as_str(), "device_id": self.cert.device_id, "sig": sig})).await;
        let ok = recv(ws).await.expect("auth answer");
        assert_eq!(ok["t"], "auth_ok", "{ok}");
    }

    /// Enrolls `new` (from `another_device`) through this device's open socket `ws`, by the raw
    /// protocol: open with an AK-signed token, join with the new key's proof, approve with the
    /// certificate (the handover blob is opaque to the server; a real client puts Olm there).
    pub async fn enroll(&self, ws: &mut Ws, new: &RawDevice, server: &str) {
        let code = "ABCD1234";
        let expires = now() + 120;
        let sig = Sig64(
            self.ak
                .sign(&enroll_token_bytes(&self.username, code, expires))
                .to_bytes(),
        );
        let opened = request(
            ws,
            9001,
            json!({"t": "enroll_open", "code": code, "expires": expires, "sig": sig}),
        )
        .await;
        assert_eq!(opened["t"], "ok", "{opened}");
        let (mut nws, nonce) = Self::open(server).await;
        let c = &new.cert;
        let join_sig = Sig64(
            new.dk
                .sign(&enroll_join_bytes(
                    &nonce,
                    server,
                    code,
                    &c.device_id,
                    &c.dk_ed25519,
                    &c.dk_curve25519,
                    c.caps,
                ))
                .to_bytes(),
        );
        send(
            &mut nws,
            json!({"v": 1, "t": "enroll_join", "code": code, "device_id": c.device_id,
            "dk_ed25519": c.dk_ed25519, "dk_curve25519": c.dk_curve25519, "caps": c.caps,
            "otk": new.otk(), "sig": join_sig}),
        )
        .await;
        let pending = recv(&mut nws).await.expect("pending");
        assert_eq!(pending["t"], "enroll_pending", "{pending}");
        loop {
            let m = recv(ws).await.expect("enroll request");
            if m["t"] == "enroll_request" {
                break;
            }
        }
        let approved = request(
            ws,
            9002,
            json!({"t": "enroll_approve", "device_id": c.device_id,
            "cert": c, "blob": anonchat_proto::bytes::encode_b64(b"opaque")}),
        )
        .await;
        assert_eq!(approved["t"], "ok", "{approved}");
        let done = recv(&mut nws).await.expect("enrolled");
        assert_eq!(done["t"], "enrolled", "{done}");
    }

    /// Connects and authenticates; returns the socket after `auth_ok`.
    pub async fn connect(&self, server: &str) -> Ws {
        let (mut ws, nonce) = Self::open(server).await;
        self.authenticate(&mut ws, &nonce, server).await;
        ws
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("ws send");
}

pub async fn send_text(ws: &mut Ws, s: &str) -> bool {
    ws.send(Message::text(s.to_string())).await.is_ok()
}

/// The next JSON message, or `None` if the socket closed (or nothing came in 10 s).
pub async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
            .ok()?;
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Sends a request with an id and returns the server's answer to it (skipping events).
pub async fn request(ws: &mut Ws, id: u64, mut v: Value) -> Value {
    v["v"] = json!(1);
    v["id"] = json!(id);
    send(ws, v).await;
    loop {
        let m = recv(ws).await.expect("answer");
        if m["re"] == id {
            return m;
        }
    }
}

/// `n` fresh accounts registered on `server` (16 at a time), each with one device; names carry
/// their index, so they cannot collide however many there are.
pub async fn register_many(server: &str, n: usize, prefix: &str) -> anyhow::Result<Vec<RawDevice>> {
    let http = reqwest::Client::new();
    let run: u32 = rand::random::<u32>() & 0xff_ffff;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let http = http.clone();
            async move {
                let d = RawDevice::new(&format!("{prefix}{i}x{run:06x}"));
                let resp = http
                    .post(format!("{server}/v1/register"))
                    .json(&d.register_request(8))
                    .send()
                    .await?;
                let status = resp.status();
                anyhow::ensure!(
                    status.is_success(),
                    "register: {status} {}",
                    resp.text().await?
                );
                Ok(d)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<anyhow::Result<RawDevice>>>()
        .await
        .into_iter()
        .collect()
}
