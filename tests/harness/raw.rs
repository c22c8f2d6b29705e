//! A hand-made protocol client, for sending the server things a real client never would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anonchat_proto::pow::{register_resource, Stamp};
use anonchat_proto::signing::{auth_bytes, one_time_key_bytes};
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
        let username = Username::parse(username).expect("username");
        let ak = SigningKey::generate(&mut rand::rngs::OsRng);
        let dk = SigningKey::generate(&mut rand::rngs::OsRng);
        let device_id = {
            let b: [u8; 16] = rand::random();
            b.iter().map(|x| format!("{:02x}", x)).collect::<String>()[..22].to_string()
        };
        let e = Key32(dk.verifying_key().to_bytes());
        let c = Key32(rand::random());
        let caps = Caps::default();
        let sig = Sig64(
            ak.sign(&DeviceCert::signing_bytes(
                &username,
                &device_id,
                &e,
                &c,
                caps,
                now(),
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
            created_at: now(),
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

    /// Connects and authenticates; returns the socket after `auth_ok`.
    pub async fn connect(&self, server: &str) -> Ws {
        let (mut ws, nonce) = Self::open(server).await;
        let sig = self.auth_sig(&nonce, server);
        send(&mut ws, json!({"v": 1, "t": "auth", "username": self.username.as_str(), "device_id": self.cert.device_id, "sig": sig})).await;
        let ok = recv(&mut ws).await.expect("auth answer");
        assert_eq!(ok["t"], "auth_ok", "{ok}");
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
