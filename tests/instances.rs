//! Many instances on one PostgreSQL and one Redis (issue 14): every flow with its clients spread
//! over instances, what Redis holds (P2), and failover.

use std::time::Duration;

use anonchat_e2e::cli::{befriend, enroll, open_session, pair, pair_on, say, Cli};
use anonchat_e2e::deployment::Deployment;
use anonchat_e2e::raw::{request, RawDevice};
use anonchat_e2e::server::ServerOpts;
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_ring_and_chat_across_instances_and_presence_follows() {
    friends_flow(Deployment::start(2, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rediss_friends_ring_chat_and_presence_follow() {
    friends_flow(Deployment::over_tls(2, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_friends_ring_chat_and_presence_follow() {
    friends_flow(Deployment::clustered(2, &[]).await).await;
}

async fn friends_flow(d: Deployment) {
    let mut p = pair_on(&d.url(0), &d.url(1)).await;
    // The request is made through instance 0 and accepted through instance 1.
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    // A ring from 0 to 1, answered on 1; signaling relayed both ways between the instances.
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    say(&mut p.a, &mut p.b, &session).await;
    say(&mut p.b, &mut p.a, &session).await;
    p.a.ok(json!({"cmd": "leave", "session": session})).await;
    p.a.expect_event("session_ended").await;
    p.b.expect_event("session_ended").await;
    // And the other way round.
    let session = open_session(&mut p.b, &mut p.a, &p.a_name).await;
    say(&mut p.b, &mut p.a, &session).await;
    // The friend list on 0 sees b online on 1.
    let friends = p.a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"][0]["online"], true, "{friends}");
    // b leaves instance 1: a, on instance 0, hears it.
    p.b.quit().await;
    p.a.expect("b offline", |v| {
        v["event"] == "presence" && v["online"] == false
    })
    .await;
    let friends = p.a.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"][0]["online"], false, "{friends}");
    // b comes back on instance 0's neighbour: a hears that too.
    let mut b = Cli::start(&p.b_profile, &p.home.0, &d.url(1)).await;
    b.connect().await;
    p.a.expect("b online", |v| {
        v["event"] == "presence" && v["online"] == true
    })
    .await;
}

/// The suite's spread shape (`ANONCHAT_E2E_INSTANCES`, harness/spread.rs) really puts one test's
/// clients on different instances: each instance's log shows one device connecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spread_shape_puts_two_clients_on_two_instances() {
    let opts = ServerOpts {
        log: "anonchat_server=debug".into(),
        ..ServerOpts::default()
    };
    let server = anonchat_e2e::spread::start(2, opts, TempDir::new("server")).await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    say(&mut p.a, &mut p.b, &session).await;
    let logs = server.instance_logs();
    let per_instance: Vec<usize> = logs
        .iter()
        .map(|l| l.matches("device connected").count())
        .collect();
    assert_eq!(per_instance, [1, 1], "{logs:#?}");
}

/// A second device enrolled through another instance rings alongside the first, on a third;
/// the first answer wins and the other hears `answered_elsewhere`; a revocation made on one
/// instance closes the device's socket on another, with the signed notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_on_three_instances_enroll_ring_and_revoke() {
    devices_flow(Deployment::start(3, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_devices_enroll_ring_and_revoke() {
    devices_flow(Deployment::clustered(3, &[]).await).await;
}

async fn devices_flow(d: Deployment) {
    let mut p = pair_on(&d.url(0), &d.url(1)).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let mut b2 = Cli::start(&unique("pb2"), &p.home.0, &d.url(2)).await;
    let b2_id = enroll(&mut p.b, &mut b2, &p.b_name, false).await;
    b2.connect().await;
    let list = p.b.ok(json!({"cmd": "devices"})).await;
    let listed = list["devices"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["device_id"] == b2_id.as_str()).cloned())
        .expect("b2 listed");
    assert_eq!(listed["online"], true, "b2 online on instance 2: {list}");

    let ring = p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let id = ring["ring_id"].as_str().expect("ring id").to_string();
    for dev in [&mut p.b, &mut b2] {
        let incoming = dev.expect_event("incoming_ring").await;
        assert_eq!(incoming["ring_id"], id.as_str());
    }
    b2.ok(json!({"cmd": "answer", "ring_id": id, "accept": true}))
        .await;
    let ended = p.b.expect_event("ring_ended").await;
    assert_eq!(ended["reason"], "answered_elsewhere");
    p.a.expect_event("session_open").await;
    b2.expect_event("session_open").await;
    say(&mut p.a, &mut b2, &id).await;
    say(&mut b2, &mut p.a, &id).await;

    p.b.ok(json!({"cmd": "revoke_device", "device_id": b2_id}))
        .await;
    b2.expect_event("device_revoked").await;
    let over = p.a.expect_event("session_ended").await;
    assert_eq!(over["session"], id.as_str());
    // Only the first device rings now.
    let ring = p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let incoming = p.b.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], ring["ring_id"]);
}

/// Kill the instance one side of a chat is on: the chat goes on peer to peer, that client
/// reconnects through the balancer to the other instance within its backoff, and is reachable
/// there: it is rung, answers, and chats again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_dies_mid_chat_and_its_client_comes_back_through_the_balancer() {
    let mut d = Deployment::balanced(2, &["--presence-ttl-secs", "3"]).await;
    let home = TempDir::new("clients");
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let (mut a, a_on) = d.connect_behind(&home, &a_name, 1).await;
    let (mut b, b_on) = d.connect_behind(&home, &b_name, 2).await;
    assert_ne!(a_on, b_on, "the balancer spread them");
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    let session = open_session(&mut a, &mut b, &b_name).await;
    say(&mut a, &mut b, &session).await;

    let dead = d.servers.remove(a_on);
    dead.kill().await;
    a.expect_event("disconnected").await;
    say(&mut a, &mut b, &session).await;
    say(&mut b, &mut a, &session).await;
    a.expect_event("connected").await;
    a.ok(json!({"cmd": "leave", "session": session})).await;
    b.expect_event("session_ended").await;
    // a is reachable on the surviving instance.
    let session = open_session(&mut b, &mut a, &a_name).await;
    say(&mut b, &mut a, &session).await;
}

/// A ring whose caller's instance dies ends cleanly for the callee on another instance (within
/// the presence TTL), and the dead instance's device stops counting as online: its friend is
/// told so (a surviving instance announces the dead one's accounts), as after a clean leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_in_flight_on_a_dead_instance_ends_for_the_callee() {
    let mut d = Deployment::start(2, &["--presence-ttl-secs", "3"]).await;
    let mut p = pair_on(&d.url(0), &d.url(1)).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let ring = p.a.ok(json!({"cmd": "ring", "username": p.b_name})).await;
    let incoming = p.b.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], ring["ring_id"]);
    let dead = d.servers.remove(0);
    dead.kill().await;
    let ended = p.b.expect_event("ring_ended").await;
    assert_eq!(ended["ring_id"], ring["ring_id"]);
    assert_eq!(ended["reason"], "cancelled");
    p.b.expect("a offline, pushed by the surviving instance", |v| {
        v["event"] == "presence" && v["online"] == false
    })
    .await;
    let friends = p.b.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"][0]["online"], false, "{friends}");
}

/// Asks for the friend list (every 200 ms, for at most 20 s) until its first friend's `online`
/// is `want`: for state nobody announces (an entry lapsing or coming back in Redis).
async fn friend_online_becomes(c: &mut Cli, want: bool) {
    let t0 = std::time::Instant::now();
    loop {
        let friends = c.ok(json!({"cmd": "friends"})).await;
        if friends["friends"][0]["online"] == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "online did not become {want} in 20 s: {friends}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Redis restarts (empty): the instances reconnect by themselves, presence re-converges from
/// their refreshes, and rings cross instances again; the chat meanwhile goes on peer to peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_and_presence_and_routing_come_back() {
    let mut d = Deployment::start(2, &["--presence-ttl-secs", "3"]).await;
    let mut p = pair_on(&d.url(0), &d.url(1)).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    d.redis.stop();
    say(&mut p.a, &mut p.b, &session).await;
    d.redis.run();
    say(&mut p.b, &mut p.a, &session).await;
    p.a.ok(json!({"cmd": "leave", "session": session})).await;
    p.b.expect_event("session_ended").await;
    // Re-converged: b's entry is back (each instance refreshes three times per TTL).
    friend_online_becomes(&mut p.a, true).await;
    // Routing too: the device channels were subscribed again.
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    say(&mut p.a, &mut p.b, &session).await;
}

fn stamp(from: &str, to: &str) -> serde_json::Value {
    use anonchat_proto::pow::{contact_resource, Stamp};
    use anonchat_proto::Username;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (from, to) = (
        Username::parse(from).expect("name"),
        Username::parse(to).expect("name"),
    );
    json!(Stamp::mint_from(
        &contact_resource(&from, &to),
        8,
        now,
        rand::random()
    ))
}

/// Spreading requests over instances buys an attacker nothing: the failure backoff, a spent
/// stamp and the address's token bucket follow the requester from one instance to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_stamps_and_buckets_are_shared_by_the_instances() {
    shared_counters(Deployment::start(2, &COUNTED).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_backoff_stamps_and_buckets_are_shared() {
    shared_counters(Deployment::clustered(2, &COUNTED).await).await;
}

const COUNTED: [&str; 8] = [
    "--gate-per-minute",
    "1",
    "--gate-burst",
    "4",
    "--backoff-after",
    "2",
    "--contact-pow-bits",
    "8",
];

async fn shared_counters(d: Deployment) {
    let (u0, u1) = (d.url(0), d.url(1));
    let [asker, asker2, asker3, target] =
        ["ask", "ask", "ask", "tgt"].map(|p| RawDevice::new(&unique(p)));
    for dev in [&asker, &asker2, &asker3, &target] {
        dev.register(&u0).await;
    }
    let _online = target.connect(&u1).await;
    let ghost = || json!({"t": "lookup", "username": unique("ghost")});

    // Two failures through instance 0 (two tokens of the address's four) …
    let mut ws = asker.connect(&u0).await;
    for id in 1..=2 {
        assert_eq!(request(&mut ws, id, ghost()).await["code"], "not_found");
    }
    // … and instance 1 holds the same device back (no token taken).
    drop(ws);
    let mut ws = asker.connect(&u1).await;
    let held = request(&mut ws, 3, ghost()).await;
    assert_eq!(held["code"], "rate_limited", "{held}");
    assert!(
        held["detail"].as_str().unwrap_or_default().contains("wait"),
        "{held}"
    );

    // A stamp paid through instance 0 (a third token) is spent on instance 1 too (a fourth).
    let t = target.username.as_str();
    let paid = stamp(asker2.username.as_str(), t);
    let coded = |pow: &serde_json::Value| json!({"t": "lookup", "username": t, "code": "123456", "pow": pow});
    let mut ws2 = asker2.connect(&u0).await;
    let first = request(&mut ws2, 1, coded(&paid)).await;
    assert_eq!(first["t"], "user", "{first}");
    drop(ws2);
    let mut ws2 = asker2.connect(&u1).await;
    let again = request(&mut ws2, 2, coded(&paid)).await;
    assert_eq!(again["code"], "bad_request", "{again}");

    // The address's bucket is empty everywhere now, for another account as well.
    let mut ws3 = asker3.connect(&u1).await;
    let limited = request(&mut ws3, 1, ghost()).await;
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    assert!(
        limited["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("too many requests"),
        "{limited}"
    );
}

/// What Redis holds during a chat, with a friend request waiting and an enrollment open (P2):
/// every key carries a TTL, and no key or value holds a name, an address, a code, a safety
/// number or a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_only_expiring_keys_and_no_names_addresses_codes_or_content() {
    what_redis_holds(Deployment::start(2, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_holds_only_expiring_keys_and_no_names_addresses_codes_or_content() {
    what_redis_holds(Deployment::clustered(2, &[]).await).await;
}

async fn what_redis_holds(d: Deployment) {
    let mut p = pair_on(&d.url(0), &d.url(1)).await;
    let sn = befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let said = say(&mut p.a, &mut p.b, &session).await;
    let mut c = Cli::start(&unique("pc"), &p.home.0, &d.url(1)).await;
    let c_name = unique("carol");
    c.register(&c_name).await;
    c.connect().await;
    c.ok(json!({"cmd": "add_friend", "username": p.a_name}))
        .await;
    p.a.expect_event("friend_request").await;
    let open = p.b.ok(json!({"cmd": "enroll_open"})).await;
    let code = open["code"].as_str().expect("code").replace('-', "");

    let contents = d.redis_contents();
    assert!(
        contents.len() >= 5,
        "presence, requests, buckets: {contents:#?}"
    );
    let kinds: Vec<&str> = contents.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(kinds.iter().any(|k| k.ends_with(":on")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.contains(":fr:")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.starts_with("ac:{e:")), "{kinds:?}");
    assert!(kinds.iter().any(|k| k.ends_with(":accounts")), "{kinds:?}");
    let words = sn.split_whitespace().collect::<Vec<_>>().join(" ");
    for (key, ttl, value) in &contents {
        assert!(*ttl > 0, "{key} has no TTL ({ttl})");
        let all = format!("{key} {value}");
        for secret in [
            p.a_name.as_str(),
            p.b_name.as_str(),
            c_name.as_str(),
            said.as_str(),
            "127.0.0.1",
            code.as_str(),
            words.as_str(),
            session.as_str(),
        ] {
            assert!(!all.contains(secret), "{key} holds {secret}: {value}");
        }
    }
}

/// A Redis that would write rings and presence to disk (RDB snapshots or an append-only file)
/// is refused at start-up with the reason; `--redis-allow-persistence` starts anyway, warning
/// loudly. The embedded default never needs Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_persists_is_refused_unless_allowed_and_then_warned_about() {
    use anonchat_e2e::redis::Redis;
    for (flags, what) in [
        (vec!["--save", "60 1"], "RDB snapshots"),
        (vec!["--appendonly", "yes"], "append-only file"),
    ] {
        let redis = Redis::start_with(flags.iter().map(|s| s.to_string()).collect());
        let dir = TempDir::new("refused");
        let run = |allow: bool| {
            let mut c = server_on_redis(&["--redis-url", &redis.url()], &dir);
            if allow {
                c.arg("--redis-allow-persistence");
            }
            c
        };
        let err = refused_at_start(run(false)).await;
        assert!(err.contains(what) && err.contains("P2"), "{err}");

        let mut allowed = tokio::process::Command::from(run(true));
        allowed
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = allowed.spawn().expect("run the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let banner = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("started in time")
            .expect("stdout")
            .unwrap_or_default();
        assert!(banner.contains("listening on"), "{banner}");
        child.kill().await.expect("kill");
        let mut warned = String::new();
        tokio::io::AsyncReadExt::read_to_string(
            child.stderr.as_mut().expect("stderr"),
            &mut warned,
        )
        .await
        .expect("read stderr");
        assert!(warned.contains("REDIS PERSISTS TO DISK"), "{warned}");
        // Logged in as no user of its own: the deploy advice is said at start too.
        assert!(warned.contains("names no ACL user"), "{warned}");
    }
}

/// The friend-request signature `from` makes for `to` (a request, or the acceptance of one).
fn friend_sig(from: &RawDevice, to: &RawDevice) -> anonchat_proto::Sig64 {
    use ed25519_dalek::Signer;
    let bytes = anonchat_proto::signing::friend_bytes(
        &from.username,
        &from.ak_pub(),
        &to.username,
        &to.ak_pub(),
    );
    anonchat_proto::Sig64(from.ak.sign(&bytes).to_bytes())
}

/// Sends a request and returns its answer, keeping the presence events that came before it.
async fn ask(
    ws: &mut anonchat_e2e::raw::Ws,
    id: u64,
    mut v: serde_json::Value,
    presence: &mut Vec<serde_json::Value>,
) -> serde_json::Value {
    v["v"] = json!(1);
    v["id"] = json!(id);
    anonchat_e2e::raw::send(ws, v).await;
    loop {
        let m = anonchat_e2e::raw::recv(ws).await.expect("answer");
        if m["re"] == id {
            return m;
        }
        if m["t"] == "presence" {
            presence.push(m);
        }
    }
}

/// A device drops its socket and reconnects at once to the same instance, again and again, its
/// new socket answering the challenge the moment the old one closes, each time with a ring from
/// its friend in flight. Whichever of the old
/// socket's leave and the new one's arrival reaches Redis first, its presence entry survives: its
/// friend on the other instance sees it online afterwards (checked for two seconds, far inside
/// the refresh that would repair a lost entry), and the last presence news it got says online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reconnecting_at_once_stays_online_for_friends_elsewhere() {
    let lifted = ["--gate-per-minute", "100000", "--gate-burst", "1000"];
    let d = Deployment::start(2, &[&["--presence-ttl-secs", "600"][..], &lifted].concat()).await;
    let (a, b) = (RawDevice::new(&unique("ra")), RawDevice::new(&unique("rb")));
    a.register(&d.url(0)).await;
    b.register(&d.url(1)).await;
    let mut wa = a.connect(&d.url(0)).await;
    let mut wb = b.connect(&d.url(1)).await;
    let mut presence = Vec::new();
    let asked = ask(
        &mut wa,
        1,
        json!({"t": "friend_request", "to": b.username.as_str(), "sig": friend_sig(&a, &b)}),
        &mut presence,
    )
    .await;
    assert_eq!(asked["t"], "ok", "{asked}");
    let accepted = request(
        &mut wb,
        2,
        json!({"t": "friend_accept", "from": a.username.as_str(), "sig": friend_sig(&b, &a)}),
    )
    .await;
    assert_eq!(accepted["t"], "ok", "{accepted}");
    let mut id = 10;
    for round in 0..40 {
        // A ring in flight, owned by a's instance: b's leave then has to tell that instance
        // before it removes the presence entry, which is when the new socket can overtake it.
        id += 2;
        let up = request(&mut wb, id, json!({"t": "upload_otks", "keys": [b.otk()]})).await;
        assert_eq!(up["t"], "ok", "{up}");
        let rung = ask(
            &mut wa,
            id + 1,
            json!({"t": "ring", "to": b.username.as_str()}),
            &mut presence,
        )
        .await;
        assert_eq!(rung["t"], "ringing", "{rung}");
        loop {
            let m = anonchat_e2e::raw::recv(&mut wb).await;
            let m = m.unwrap_or_else(|| panic!("round {round}: no ring came; {presence:?}"));
            if m["t"] == "incoming_ring" {
                break;
            }
        }
        let (mut next, nonce) = RawDevice::open(&d.url(1)).await;
        let _ = futures_util::SinkExt::close(&mut wb).await;
        b.authenticate_checked(&mut next, &nonce, &d.url(1))
            .await
            .expect("reconnected");
        wb = next;
    }
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(2) {
        id += 1;
        let friends = ask(&mut wa, id, json!({"t": "list_friends"}), &mut presence).await;
        assert_eq!(friends["friends"][0]["online"], true, "{friends}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if let Some(last) = presence.last() {
        assert_eq!(last["online"], true, "{presence:#?}");
    }
}

/// An instance that stalls past the presence TTL (SIGSTOP) is taken for dead: a survivor tells
/// its users' friends they went offline. When it runs again, its refresh finds it was reaped and
/// tells them again that its users are here — its sockets never closed, so nothing else would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_taken_for_dead_that_comes_back_announces_its_users_again() {
    let d = Deployment::start(2, &["--presence-ttl-secs", "3"]).await;
    let mut p = pair_on(&d.url(0), &d.url(1)).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &d.servers[0].pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig}");
    };
    signal("-STOP");
    p.b.expect("a offline while its instance is stopped", |v| {
        v["event"] == "presence" && v["online"] == false
    })
    .await;
    signal("-CONT");
    p.b.expect("a online again once its instance runs", |v| {
        v["event"] == "presence" && v["online"] == true
    })
    .await;
    let friends = p.b.ok(json!({"cmd": "friends"})).await;
    assert_eq!(friends["friends"][0]["online"], true, "{friends}");
}

/// On a Redis Cluster every node is checked for persistence, not only the seeds given in
/// `--redis-url`: a node that writes to disk but was left out of the seeds would hold rings and
/// presence on its disk all the same (issue 35, item 10; before, only the seeds were asked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_node_that_persists_is_refused_even_when_it_is_no_seed() {
    let cluster = anonchat_e2e::redis::RedisCluster::start();
    let said = cluster.nodes[2].cli(&["CONFIG", "SET", "save", "60 1"]);
    assert!(said.contains("OK"), "{said}");
    let dir = TempDir::new("refused");
    let seed = cluster.nodes[0].url();
    let err = refused_at_start(server_on_redis(
        &["--redis-cluster", "--redis-url", &seed],
        &dir,
    ))
    .await;
    assert!(err.contains("RDB snapshots") && err.contains("P2"), "{err}");
}

/// One server process on Redis (`redis` its flags), its SQLite and secret in `dir`.
fn server_on_redis(redis: &[&str], dir: &TempDir) -> std::process::Command {
    let mut c = std::process::Command::new(anonchat_e2e::bin("anonchat-server"));
    c.args(["--listen", "127.0.0.1:0"])
        .args(redis)
        .arg("--database-url")
        .arg(format!("sqlite://{}/s.db", dir.0.display()))
        .arg("--secret-file")
        .arg(dir.0.join("s.secret"));
    c
}

/// Runs `server`, which must refuse to start and exit; returns what it said.
async fn refused_at_start(server: std::process::Command) -> String {
    let refused = tokio::process::Command::from(server)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), refused)
        .await
        .expect("the server refused to start, and exited")
        .expect("run the server");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "refused: {err}");
    err
}
