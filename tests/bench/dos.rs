//! Denial-of-service bench (DESIGN P9): a victim's request latency while attackers on many
//! loopback addresses flood each expensive path, beside the same victim with no attacker in the
//! same run (goal: victim p99 ≤ 2× baseline p99), and `/healthz` latency while 2 000 half-open
//! requests are held. Medians over repeats; the machine is noisy.
//!
//! Run with `scripts/bench.sh` (release build, real server processes).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anonchat_e2e::raw::{recv, request, send, RawDevice, Ws};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::Sig64;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Within a socket's burst of 200 messages, so the victim is never paced itself.
const SAMPLES: usize = 150;
const REPEATS: usize = 3;
/// Attacking addresses (127.0.1.x), each with its own account and socket.
const ATTACKERS: u8 = 16;

fn local(a: u8, b: u8) -> IpAddr {
    IpAddr::from([127, 0, a, b])
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("address")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// p50 and p99 of `SAMPLES` sequential `list_friends` on a fresh socket of the victim, in ms.
async fn victim_latency(victim: &RawDevice, url: &str) -> (f64, f64) {
    let mut ws = victim.connect_from(url, local(3, 1)).await;
    let ws = &mut ws;
    let mut ms = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let t0 = Instant::now();
        let a = request(ws, 1_000_000 + i as u64, json!({"t": "list_friends"})).await;
        assert_eq!(a["t"], "friends", "{a}");
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    (pct(&ms, 0.5), pct(&ms, 0.99))
}

/// p50 and p99 of `SAMPLES` `/healthz` requests from a fresh address each time, in ms.
async fn healthz_latency(server: SocketAddr) -> (f64, f64) {
    let mut ms = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let t0 = Instant::now();
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(SocketAddr::new(local(2, (i % 250) as u8 + 1), 0))
            .expect("bind");
        let mut s = sock.connect(server).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        assert!(out.starts_with(b"HTTP/1.1 200"));
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    (pct(&ms, 0.5), pct(&ms, 0.99))
}

/// One attacker: keeps sending `msg` (refused or not) as fast as answers come back.
async fn hammer(
    mut ws: Ws,
    msg: serde_json::Value,
    stop: Arc<AtomicBool>,
    total: Arc<std::sync::atomic::AtomicU64>,
) -> u64 {
    let mut sent = 0u64;
    for _ in 0..8 {
        send(&mut ws, msg.clone()).await;
    }
    // Every request is answered (refusals too), so each answer is the cue for the next one.
    while !stop.load(Ordering::Relaxed) {
        if recv(&mut ws).await.is_none() {
            break;
        }
        send(&mut ws, msg.clone()).await;
        sent += 1;
        total.fetch_add(1, Ordering::Relaxed);
    }
    sent
}

type Attack = fn(&RawDevice) -> serde_json::Value;

fn refused_otk_batch(d: &RawDevice) -> serde_json::Value {
    // 50 keys: refused once the device holds any (the cap), as in the attack.
    let keys: Vec<_> = (0..50).map(|_| d.otk()).collect();
    json!({"v": 1, "t": "upload_otks", "keys": keys})
}

fn bad_sig_otk_batch(d: &RawDevice) -> serde_json::Value {
    let keys: Vec<_> = (0..50)
        .map(|_| {
            let mut k = json!(d.otk());
            k["sig"] = json!(Sig64([7; 64]));
            k
        })
        .collect();
    json!({"v": 1, "t": "upload_otks", "keys": keys})
}

fn lookup_nobody(_: &RawDevice) -> serde_json::Value {
    json!({"v": 1, "t": "lookup", "username": "nobody-here"})
}

fn search(_: &RawDevice) -> serde_json::Value {
    json!({"v": 1, "t": "search", "prefix": "abc"})
}

/// Each attacker on its own address, hammering with `attack`.
async fn attackers(
    url: &str,
    devices: &[RawDevice],
    attack: Attack,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let mut ws = d.connect_from(url, local(1, i as u8 + 1)).await;
        // Fill the cap once, so every later batch is refused.
        let _ = request(&mut ws, 1, refused_otk_batch(d)).await;
        let msg = attack(d);
        tasks.push(tokio::spawn(hammer(ws, msg, stop.clone(), total.clone())));
    }
    // Measure the steady state: every attacker has spent its socket's burst (400 messages).
    while total.load(Ordering::Relaxed) < u64::from(ATTACKERS) * 500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let server = Server::start_with(ServerOpts::default(), TempDir::new("server")).await;
    let url = server.url();
    let victim = RawDevice::new(&unique("victim"));
    victim.register(&url).await;
    // Registered once (registration is rate limited per address too).
    let mut devices = Vec::new();
    for _ in 0..ATTACKERS {
        let d = RawDevice::new(&unique("atk"));
        d.register(&url).await;
        devices.push(d);
    }

    println!("victim: list_friends, {SAMPLES} sequential requests; {ATTACKERS} attacking addresses; medians of {REPEATS} repeats");
    let attacks: [(&str, Attack); 4] = [
        ("refused upload_otks batches", refused_otk_batch),
        ("upload_otks with bad signatures", bad_sig_otk_batch),
        ("lookups of nobody", lookup_nobody),
        ("search", search),
    ];
    for (name, attack) in attacks {
        let (mut base99, mut hit99, mut base50, mut hit50, mut ratio) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            let (b50, b99) = victim_latency(&victim, &url).await;
            let stop = Arc::new(AtomicBool::new(false));
            let tasks = attackers(&url, &devices, attack, &stop).await;
            let (a50, a99) = victim_latency(&victim, &url).await;
            stop.store(true, Ordering::Relaxed);
            let mut sent = 0;
            for t in tasks {
                sent += t.await.unwrap_or(0);
            }
            anyhow::ensure!(sent > 0, "the attack sent nothing");
            base50.push(b50);
            base99.push(b99);
            hit50.push(a50);
            hit99.push(a99);
            ratio.push(a99 / b99);
        }
        println!(
            "{name:34} p50 {:6.2} ms (baseline {:6.2})  p99 {:6.2} ms (baseline {:6.2})  p99 ratio {:.2}x (goal <= 2x)",
            median(hit50),
            median(base50),
            median(hit99),
            median(base99),
            median(ratio)
        );
    }

    // /healthz with 2 000 half-open requests held from 50 addresses (40 each, under the cap).
    let addr = addr_of(&url);
    let (mut base, mut held_p, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let (_, b99) = healthz_latency(addr).await;
        let mut held: Vec<TcpStream> = Vec::new();
        for i in 0..2000u32 {
            let sock = TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(local(4, (i % 50) as u8 + 1), 0))?;
            let mut s = sock.connect(addr).await?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await?;
            held.push(s);
        }
        let (_, h99) = healthz_latency(addr).await;
        drop(held);
        base.push(b99);
        held_p.push(h99);
        ratio.push(h99 / b99);
        // Let the server drop the held ones before the next baseline.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "{:34} p99 {:6.2} ms (baseline {:6.2})  ratio {:.2}x (goal <= 2x)",
        "/healthz, 2 000 half-open held",
        median(held_p),
        median(base),
        median(ratio)
    );
    Ok(())
}
