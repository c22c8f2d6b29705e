//! The suite under a hostile server (P8, issue 35): with `ANONCHAT_E2E_HOSTILE=1`, every server a
//! test starts — unless the test plays the server itself (its own proxy), pins the address, or
//! speaks TLS — sits behind a proxy that plays a catalogue of server moves on every message class
//! while the flows run, and the flows must still work. When the server is dropped the proxy checks
//! what the clients did with the moves, whatever they were:
//!
//! | message to a client | the server's moves after it |
//! |---|---|
//! | `incoming_ring` | the same ring again (replay); a ring under a fresh id from the same caller with a group token nobody holds |
//! | `ring_accepted`, `ring_connected` | the same again; the same peer under a fresh ring id nobody rang or answered |
//! | `relayed` | the same blob again (replay) |
//! | `ring_ended` | `ring_ended` for an id it forged before, and for one nobody ever had |
//! | `presence` | the same again; `key_rotated` and `friend_added` naming an account nobody asked for, with a key of its own |
//!
//! Whatever the moves, afterwards: no forged ring was answered, no ring answered twice, and no
//! blob was relayed on a forged one (no session without an accept); no client asked about, rang,
//! accepted or signed for an account the server made up (nothing pinned on its word); the flows
//! themselves assert that no live chat or group link ended and that every text arrived. Client
//! and server messages are told apart by their types (`key_history` by its `rotations`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rand::Rng;
use serde_json::{json, Value};

use crate::proxy::{Mischief, Proxy};
use crate::server::{Server, ServerOpts};
use crate::TempDir;

/// Whether the suite runs under the hostile server.
pub fn enabled() -> bool {
    std::env::var("ANONCHAT_E2E_HOSTILE").is_ok_and(|v| v == "1")
}

/// What the proxy forged, to check the clients against.
#[derive(Default)]
struct Forged {
    rings: HashSet<String>,
    names: HashSet<String>,
}

/// What watches a hostile proxy's clients, kept alive by the server; checks them when dropped.
pub struct Hostile {
    record: Arc<Mutex<Vec<u8>>>,
    forged: Arc<Mutex<Forged>>,
    /// The proxy this mode put in front (not one of the test's own), and its accepting task.
    front: Option<(Proxy, tokio::task::JoinHandle<()>)>,
}

fn ring_id() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..22)
        .map(|_| char::from(A[rng.gen_range(0..A.len())]))
        .collect()
}

fn key() -> String {
    anonchat_proto::Key32(rand::random()).to_base64()
}

fn msg(t: &str, mut body: Value) -> Value {
    body["v"] = json!(1);
    body["t"] = json!(t);
    body
}

/// The catalogue: the moves after `v` (see the table above), noting what was forged.
fn moves(v: &Value, forged: &Mutex<Forged>) -> Vec<Value> {
    let mut f = forged.lock().expect("forged");
    let fresh = |f: &mut Forged| {
        let id = ring_id();
        f.rings.insert(id.clone());
        id
    };
    match v["t"].as_str().unwrap_or("") {
        "incoming_ring" => {
            let mut group = v.clone();
            group["ring_id"] = json!(fresh(&mut f));
            group["group"] = json!(key());
            group["invite"] = json!(false);
            vec![v.clone(), group]
        }
        "ring_accepted" | "ring_connected" => {
            let mut other = v.clone();
            other["ring_id"] = json!(fresh(&mut f));
            vec![v.clone(), other]
        }
        "relayed" => vec![v.clone()],
        "ring_ended" => {
            let old = f.rings.iter().next().cloned();
            let mut out: Vec<Value> = old
                .into_iter()
                .map(|id| msg("ring_ended", json!({"ring_id": id, "reason": "declined"})))
                .collect();
            let never = fresh(&mut f);
            out.push(msg(
                "ring_ended",
                json!({"ring_id": never, "reason": "cancelled"}),
            ));
            out
        }
        "presence" => {
            let name = format!("forged{:08x}", rand::random::<u32>());
            f.names.insert(name.clone());
            vec![
                v.clone(),
                msg("key_rotated", json!({"username": name, "ak_pub": key()})),
                msg("friend_added", json!({"username": name, "ak_pub": key()})),
            ]
        }
        _ => Vec::new(),
    }
}

/// The catalogue's moves for a proxy whose record is `record`, and the watch that checks them.
pub fn catalogue(record: Arc<Mutex<Vec<u8>>>) -> (Mischief, Hostile) {
    let forged: Arc<Mutex<Forged>> = Arc::default();
    let book = forged.clone();
    let mischief: Mischief = Arc::new(move |v| moves(v, &book));
    let watch = Hostile {
        record,
        forged,
        front: None,
    };
    (mischief, watch)
}

/// Starts `opts` as one server behind the hostile proxy; `server.url()` is the proxy's.
pub async fn start(mut opts: ServerOpts, dir: TempDir) -> Server {
    let mut proxy = Proxy::bind().await;
    opts.public_url = Some(proxy.url());
    let server = Server::spawn(opts, dir).await;
    let (mischief, mut watch) = catalogue(proxy.record.clone());
    let accepting = proxy.run_with(server.addr, None, Some(mischief));
    let front = proxy.addr;
    watch.front = Some((proxy, accepting));
    server.behind(front, watch)
}

impl Hostile {
    /// What the clients did with the moves (see the module's table); empty when nothing was taken.
    pub fn violations(&self) -> Vec<String> {
        let f = self.forged.lock().expect("forged");
        let mut out = Vec::new();
        // Each ring answered yes at most once, by one device of one account: a replayed ring is
        // never answered twice.
        let mut answered: HashSet<String> = HashSet::new();
        let text = String::from_utf8_lossy(&self.record.lock().expect("record")).into_owned();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let id = v["ring_id"].as_str().unwrap_or("");
            match v["t"].as_str().unwrap_or("") {
                "answer" if v["accept"] == true && f.rings.contains(id) => {
                    out.push(format!("a forged ring was answered: {line}"))
                }
                "answer" if v["accept"] == true && !answered.insert(id.to_string()) => {
                    out.push(format!("a ring was answered twice: {line}"))
                }
                "relay" if f.rings.contains(id) => {
                    out.push(format!("a session ran on a forged ring: {id}"))
                }
                // The client's own requests and rings name no account the server made up.
                "key_history" | "ring" | "friend_request" | "friend_resign" | "lookup"
                | "friend_accept" | "unfriend"
                    if v.get("rotations").is_none() =>
                {
                    let named = [&v["username"], &v["to"], &v["from"]];
                    if named
                        .iter()
                        .any(|n| n.as_str().is_some_and(|n| f.names.contains(n)))
                    {
                        out.push(format!("a client acted on a made-up account: {line}"));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some((_, accepting)) = &self.front {
            accepting.abort();
        }
        if std::thread::panicking() {
            return;
        }
        let bad = self.violations();
        assert!(
            bad.is_empty(),
            "the clients took the hostile server's moves:\n{}",
            bad.join("\n")
        );
    }
}
