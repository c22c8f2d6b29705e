//! No cheap denial of service (DESIGN P9), on the real server: half-open requests from one address,
//! a real nginx in front with many client addresses behind it, outsiders filling the server's
//! tables, and the existence oracles of registration, search and presence.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anonchat_e2e::nginx::{free_port, Nginx};
use anonchat_e2e::raw::{request, RawDevice, Ws};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::signing::friend_bytes;
use anonchat_proto::Sig64;
use ed25519_dalek::Signer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn local(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `server` from `from` (any 127.x address reaches loopback).
async fn tcp_from(server: SocketAddr, from: IpAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from, 0))?;
    sock.connect(server).await
}

/// This test process opens over a thousand sockets: lift its own soft limit to the hard one.
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("address")
}

/// `GET /healthz` by hand from `from`; the status line, or why not.
async fn healthz_from(server: SocketAddr, from: IpAddr) -> Result<String, String> {
    let mut s = tcp_from(server, from).await.map_err(|e| e.to_string())?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// Whether the server closed `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_requests_from_one_address_cannot_starve_the_server() {
    // The server gets the usual soft limit of 1024 descriptors: 1 100 held connections would
    // exhaust it without a per-address cap at accept.
    let server = Server::start_with(
        ServerOpts {
            wrapper: vec![
                "sh".into(),
                "-c".into(),
                "ulimit -n 1024 && exec \"$@\"".into(),
                "sh".into(),
            ],
            extra: vec!["--header-timeout-secs".into(), "2".into()],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    raise_fd_limit();
    let addr = addr_of(&server.url());
    let mut held = Vec::new();
    for _ in 0..1100 {
        let Ok(mut s) = tcp_from(addr, local(1)).await else {
            continue;
        };
        // Headers that never end.
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_ok()
        {
            held.push(s);
        }
    }
    // Another address is served at once (it would wait for a free descriptor otherwise).
    let other = tokio::time::timeout(Duration::from_secs(5), healthz_from(addr, local(2))).await;
    assert!(
        matches!(&other, Ok(Ok(line)) if line.contains("200")),
        "healthz from another address while 1 100 half-open requests are held: {other:?}"
    );
    // The ones over the address's cap were closed at once; the rest at the header deadline.
    let mut open_after_deadline = 0;
    for s in &mut held {
        if !closed_within(s, Duration::from_secs(10)).await {
            open_after_deadline += 1;
        }
    }
    assert_eq!(open_after_deadline, 0, "every half-open request is closed");
    assert!(
        healthz_from(addr, local(1))
            .await
            .is_ok_and(|l| l.contains("200")),
        "the address is served again once its slots are free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_each_client_is_limited_by_its_own_address() {
    let port = free_port();
    let proxied = format!("http://127.0.0.1:{port}");
    let server = Server::start_with(
        ServerOpts {
            public_url: Some(proxied.clone()),
            extra: vec!["--trusted-proxy".into(), "127.0.0.1".into()],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let nginx = Nginx::start(port, addr_of(&server.url()));
    let url = nginx.url();
    let abuser = RawDevice::new(&unique("abuser"));
    let victim = RawDevice::new(&unique("victim"));
    abuser.register(&url).await;
    victim.register(&url).await;
    let mut a = abuser.connect_from(&url, local(2)).await;
    let mut v = victim.connect_from(&url, local(3)).await;
    // The abuser empties its address's bucket (burst 20) with lookups (answered ones: no
    // failure backoff involved, only the bucket).
    let mut limited = false;
    for i in 0..40 {
        let ans = request(
            &mut a,
            100 + i,
            json!({"t": "lookup", "username": victim.username.as_str()}),
        )
        .await;
        if ans["code"] == "rate_limited" {
            limited = true;
            break;
        }
        assert_eq!(ans["t"], "user", "{ans}");
    }
    assert!(limited, "the abuser is limited");
    // The victim, another client of the same proxy, is not.
    let ans = request(
        &mut v,
        1,
        json!({"t": "lookup", "username": abuser.username.as_str()}),
    )
    .await;
    assert_eq!(ans["t"], "user", "answered, not rate limited: {ans}");
}

/// A connected raw account.
async fn online(url: &str, name: &str) -> (RawDevice, Ws) {
    let d = RawDevice::new(&unique(name));
    d.register(url).await;
    let ws = d.connect(url).await;
    (d, ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_cannot_fill_the_tables_for_everyone() {
    let mut extra = ServerOpts::lifted_gate();
    extra.extend(["--max-connections-per-ip", "100", "--max-tcp-per-ip", "200"].map(String::from));
    let server = Server::start_with(
        ServerOpts {
            extra,
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let (spammer, mut ws) = online(&url, "spam").await;
    let mut targets = Vec::new();
    for _ in 0..33 {
        targets.push(online(&url, "t").await);
    }
    let friend_request = |to: &RawDevice| {
        let sig = Sig64(
            spammer
                .ak
                .sign(&friend_bytes(
                    &spammer.username,
                    &spammer.ak_pub(),
                    &to.username,
                    &to.ak_pub(),
                ))
                .to_bytes(),
        );
        json!({"t": "friend_request", "to": to.username.as_str(), "sig": sig})
    };
    // One account may have 32 requests waiting; the 33rd is refused with a reason.
    let mut answers: Vec<Value> = Vec::new();
    for (i, (t, _)) in targets.iter().enumerate() {
        answers.push(request(&mut ws, 10 + i as u64, friend_request(t)).await);
    }
    assert!(answers[..32].iter().all(|a| a["t"] == "ok"), "{answers:?}");
    assert_eq!(answers[32]["code"], "rate_limited", "{}", answers[32]);
    // Another account's request to the same target goes through.
    let (other, mut ows) = online(&url, "other").await;
    let (t, _) = &targets[32];
    let sig = Sig64(
        other
            .ak
            .sign(&friend_bytes(
                &other.username,
                &other.ak_pub(),
                &t.username,
                &t.ak_pub(),
            ))
            .to_bytes(),
    );
    let ok = request(
        &mut ows,
        1,
        json!({"t": "friend_request", "to": t.username.as_str(), "sig": sig}),
    )
    .await;
    assert_eq!(ok["t"], "ok", "{ok}");

    // Rings: a device holds at most 32 at once; being rung does not use up the callee's share.
    let callee = targets[0].0.username.clone();
    let mut rang: Vec<Value> = Vec::new();
    for i in 0..33 {
        rang.push(
            request(
                &mut ws,
                100 + i,
                json!({"t": "ring", "to": callee.as_str()}),
            )
            .await,
        );
    }
    assert!(rang[..32].iter().all(|a| a["t"] == "ringing"), "{rang:?}");
    assert_eq!(rang[32]["code"], "rate_limited", "{}", rang[32]);
    let theirs = request(
        &mut targets[1].1,
        1,
        json!({"t": "ring", "to": spammer.username.as_str()}),
    )
    .await;
    assert_eq!(
        theirs["t"], "ringing",
        "the spammer's callee can still ring: {theirs}"
    );
}

/// Whether a WebSocket upgrade from `from` is admitted now (101) rather than refused (429).
async fn ws_admitted(server: SocketAddr, from: IpAddr) -> bool {
    let Ok(mut s) = tcp_from(server, from).await else {
        return false;
    };
    let hello = "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if s.write_all(hello.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 101")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_search_and_presence_are_no_free_oracles() {
    let dir = TempDir::new("server");
    let db = dir.0.join("server.db");
    // One socket per address, so a freed slot shows the server noticed a socket closed.
    let server = Server::start_with(
        ServerOpts {
            extra: vec!["--max-connections-per-ip".into(), "1".into()],
            ..Default::default()
        },
        dir,
    )
    .await;
    let url = server.url();
    let mode = std::fs::metadata(&db).expect("db").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database is the server's alone: {mode:o}");

    // "Recently active" holds for strangers: after the account leaves, a stranger's lookup is
    // answered as while it was online.
    let blurred = RawDevice::new(&unique("blur"));
    blurred.register(&url).await;
    let mut bws = blurred.connect_from(&url, local(9)).await;
    let set = request(
        &mut bws,
        1,
        json!({"t": "set_presence", "presence": "recent"}),
    )
    .await;
    assert_eq!(set["t"], "ok");
    let stranger = RawDevice::new(&unique("stranger"));
    stranger.register(&url).await;
    let mut sws = stranger.connect_from(&url, local(11)).await;
    let look = json!({"t": "lookup", "username": blurred.username.as_str()});
    let while_online = request(&mut sws, 1, look.clone()).await;
    assert_eq!(while_online["t"], "user", "{while_online}");
    drop(bws);
    // Its address's only slot frees once the server has handled the close (after the detach).
    let addr = addr_of(&url);
    let mut tries = 0;
    while !ws_admitted(addr, local(9)).await {
        tries += 1;
        assert!(tries < 100, "the closed socket's slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = request(&mut sws, 2, look).await;
    assert_eq!(
        (after["t"].clone(), after["online"].clone()),
        (json!("user"), json!(false)),
        "the same answer as while it was online: {after}"
    );

    // Search is priced like a lookup.
    let mut last = Value::Null;
    for i in 0..30 {
        last = request(&mut sws, 10 + i, json!({"t": "search", "prefix": "abc"})).await;
        if last["code"] == "rate_limited" {
            break;
        }
    }
    assert_eq!(last["code"], "rate_limited", "{last}");

    // Registration answers "taken" (names are unique) — but no more often than a lookup would
    // answer, from another address here so the buckets above do not count.
    let client = reqwest::Client::builder()
        .local_address(local(5))
        .build()
        .expect("client");
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let again = RawDevice::new(blurred.username.as_str());
        let r = client
            .post(format!("{url}/v1/register"))
            .json(&again.register_request(8))
            .send()
            .await
            .expect("register");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&409), "{statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&429),
        "then rate limited: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_one_time_key_batch_is_refused_before_any_signature_is_checked() {
    let server = Server::start().await;
    let url = server.url();
    let (d, mut ws) = online(&url, "otk").await;
    let keys: Vec<Value> = (0..30).map(|_| json!(d.otk())).collect();
    let ok = request(&mut ws, 1, json!({"t": "upload_otks", "keys": keys})).await;
    assert_eq!(ok["t"], "ok");
    // 30 more, each with a bad signature: over the cap of 50, which is checked first (no
    // signature work for a batch that is refused anyway).
    let bad: Vec<Value> = (0..30)
        .map(|_| {
            let mut k = json!(d.otk());
            k["sig"] = json!(Sig64([7; 64]));
            k
        })
        .collect();
    let refused = request(&mut ws, 2, json!({"t": "upload_otks", "keys": bad})).await;
    assert_eq!(refused["code"], "bad_request");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most 50")),
        "{refused}"
    );
}

/// The account's upkeep — key history, re-signed edges, key rotation, group passes — each reads or
/// writes the store (or Redis): it has budgets per address and per account like the gated
/// requests, not only the socket's pace (P9; issue 35, item 12). Before, 55 `key_history` in a
/// row were all answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_upkeep_has_budgets_per_address_and_account() {
    // A slow refill (10 a minute for upkeep, bursts of 50): nothing comes back during the test.
    // One process: behind the spread pass's balancer every client has the balancer's address.
    let server = Server::start_with(
        ServerOpts {
            extra: ["--gate-per-minute", "1", "--gate-burst", "5"]
                .map(String::from)
                .to_vec(),
            single: true,
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let (alice, bob, carol) = (
        RawDevice::new(&unique("alice")),
        RawDevice::new(&unique("bob")),
        RawDevice::new(&unique("carol")),
    );
    for d in [&alice, &bob, &carol] {
        d.register(&url).await;
    }
    let mut a = alice.connect_from(&url, local(20)).await;
    let me = alice.username.as_str();
    for id in 0..55u64 {
        anonchat_e2e::raw::send(
            &mut a,
            json!({"v": 1, "id": id, "t": "key_history", "username": me}),
        )
        .await;
    }
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 55 {
        let m = anonchat_e2e::raw::recv(&mut a).await.expect("an answer");
        if let Some(id) = m["re"].as_u64() {
            answers.insert(id, m);
        }
    }
    let ok = answers.values().filter(|m| m["t"] == "key_history").count();
    let limited = answers
        .values()
        .filter(|m| m["code"] == "rate_limited")
        .count();
    assert_eq!((ok, limited), (50, 5), "{answers:?}");
    // The account's group passes share that budget; its gated requests do not.
    let join = request(
        &mut a,
        100,
        json!({"t": "group_join", "token": anonchat_proto::Key32([1; 32])}),
    )
    .await;
    assert_eq!(join["code"], "rate_limited", "{join}");
    let looked = request(
        &mut a,
        101,
        json!({"t": "lookup", "username": bob.username.as_str()}),
    )
    .await;
    assert_ne!(looked["code"], "rate_limited", "{looked}");
    // Another account behind the same address is held back by the address's budget…
    let mut b = bob.connect_from(&url, local(20)).await;
    let theirs = request(
        &mut b,
        1,
        json!({"t": "key_history", "username": bob.username.as_str()}),
    )
    .await;
    assert_eq!(theirs["code"], "rate_limited", "{theirs}");
    // …the same account from another address by the account's…
    let mut a2 = alice.connect_from(&url, local(21)).await;
    let again = request(&mut a2, 1, json!({"t": "key_history", "username": me})).await;
    assert_eq!(again["code"], "rate_limited", "{again}");
    // …and someone else elsewhere is not held back at all.
    let mut c = carol.connect_from(&url, local(22)).await;
    let fine = request(
        &mut c,
        1,
        json!({"t": "key_history", "username": carol.username.as_str()}),
    )
    .await;
    assert_eq!(fine["t"], "key_history", "{fine}");
}
