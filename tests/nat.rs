//! Real networks: two homes behind their own NAT routers and a public network with the server
//! and coturn, built from Linux network namespaces (tests/harness/netns.rs). Needs root, as CI
//! runs; elsewhere each test says it was skipped. Cases: (a) NAT that allows hole punching → a
//! direct session through STUN-discovered addresses; (b) UDP between the homes blocked → the
//! relay; (c) relay only ("hide my IP", the default with a relay) → a packet capture in each home
//! shows no packet to or from the other home; (e) a link cut mid-chat → the side that still reaches
//! the server tries to repair the path, none comes back, both sides end and wipe (after 5 s + the
//! 10 s repair window); and a direct chat whose path is blocked mid-chat → an ICE restart moves the
//! same session onto the relay.
//! (d), expired TURN credentials replaced before the next chat, is in tests/relay.rs.

use std::process::{Child, Command, Stdio};

use anonchat_e2e::cli::{befriend, open_session_events, say, Cli};
use anonchat_e2e::netns::{Net, HOST_A, HOST_B, PUBLIC, ROUTER_A, ROUTER_B};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::turn::Coturn;
use anonchat_e2e::{unique, TempDir};
use serde_json::{json, Value};

/// The namespaces' server is on a documentation address over plain http (no TLS in a test
/// network): the clients need the loudly named flag for that.
const LAN_HTTP: &[(&str, &str)] = &[("ANONCHAT_INSECURE_PLAIN_HTTP_ON_LAN", "1")];

/// The server (and, with `relay`, coturn) in the public network; a client in each home.
struct World {
    a: Cli,
    b: Cli,
    b_name: String,
    _clients: TempDir,
    _server: Server,
    _turn: Option<Coturn>,
    net: Net,
}

async fn world(relay: bool, block_udp: bool) -> Option<World> {
    if !Net::available() {
        println!("skipped: building network namespaces needs root and iptables");
        return None;
    }
    let net = Net::build();
    if block_udp {
        net.block_udp_between_homes();
    }
    let turn = relay.then(|| Coturn::start_in(&net.exec("pub"), PUBLIC, "nat-secret"));
    let extra = match &turn {
        Some(t) => t.server_args(&t.secret_file),
        // STUN alone (a coturn answers binding requests without credentials).
        None => vec!["--stun-url".into(), format!("stun:{PUBLIC}:3478")],
    };
    let stun_only = if turn.is_none() {
        Some(Coturn::start_in(&net.exec("pub"), PUBLIC, "unused"))
    } else {
        None
    };
    let server = Server::start_with(
        ServerOpts {
            listen: format!("{PUBLIC}:7878"),
            extra,
            wrapper: net.exec("pub"),
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let clients = TempDir::new("nat-clients");
    let url = server.url();
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let mut a =
        Cli::start_wrapped(&unique("pa"), &clients.0, &url, LAN_HTTP, &net.exec("ha")).await;
    let mut b =
        Cli::start_wrapped(&unique("pb"), &clients.0, &url, LAN_HTTP, &net.exec("hb")).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    Some(World {
        a,
        b,
        b_name,
        _clients: clients,
        _server: server,
        _turn: turn.or(stun_only),
        net,
    })
}

fn route(open: &Value) -> (String, String) {
    let r = &open["route"];
    (
        r["local"].as_str().unwrap_or_default().to_string(),
        r["remote"].as_str().unwrap_or_default().to_string(),
    )
}

/// tcpdump inside a home, on its link to the router.
struct Capture {
    child: Child,
    file: std::path::PathBuf,
    _dir: TempDir,
}

impl Capture {
    fn start(net: &Net, home: &str) -> Capture {
        let dir = TempDir::new("pcap");
        let file = dir.0.join("home.pcap");
        let log = dir.0.join("tcpdump.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns(&format!("h{home}"))])
            .args([
                "tcpdump",
                "-Z",
                "root",
                "--immediate-mode",
                "-i",
                &net.home_if(home),
                "-n",
                "-U",
                "-w",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("tcpdump log"))
            .spawn()
            .expect("tcpdump (apt install tcpdump)");
        // It says "listening on …" once it captures.
        let t0 = std::time::Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "tcpdump did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Capture {
            child,
            file,
            _dir: dir,
        }
    }

    /// Stops the capture; how many packets match `filter`.
    fn count(&mut self, filter: &str) -> usize {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.count_again(filter)
    }

    fn count_again(&self, filter: &str) -> usize {
        let out = Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&self.file)
            .arg(filter)
            .output()
            .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_session_through_two_nats_by_hole_punching() {
    let Some(mut w) = world(false, false).await else {
        return;
    };
    let mut cap = Capture::start(&w.net, "a");
    let (id, oa, ob) = open_session_events(&mut w.a, &mut w.b, &w.b_name).await;
    // Each side reaches the other at its router's public address, learned through STUN (or from
    // the peer's own checks): not a relay, not a private address.
    for open in [&oa, &ob] {
        let (local, remote) = route(open);
        assert_ne!(local, "relay", "{open}");
        assert!(remote == "srflx" || remote == "prflx", "{open}");
    }
    say(&mut w.a, &mut w.b, &id).await;
    say(&mut w.b, &mut w.a, &id).await;
    // Direct means the packets go straight to the other home (what relay-only must prevent; the
    // capture in the relay-only test below uses the same filter).
    let between = cap.count(&format!("host {ROUTER_B} or host {HOST_B}"));
    assert!(between > 0, "a direct chat goes between the homes");
    println!("direct: {between} packets between the homes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_udp_between_the_homes_blocked_the_relay_carries_the_chat() {
    let Some(mut w) = world(true, true).await else {
        return;
    };
    // Bob allows direct connections; the homes cannot reach each other: the relay carries it.
    w.b.ok(json!({"cmd": "set_hide_ip", "hide": false})).await;
    let (id, oa, ob) = open_session_events(&mut w.a, &mut w.b, &w.b_name).await;
    let relayed = [&oa, &ob].iter().any(|o| {
        let (l, r) = route(o);
        l == "relay" || r == "relay"
    });
    assert!(relayed, "{oa} {ob}");
    say(&mut w.a, &mut w.b, &id).await;
    say(&mut w.b, &mut w.a, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_the_ip_no_packet_ever_goes_between_the_homes() {
    let Some(mut w) = world(true, false).await else {
        return;
    };
    let (mut cap_a, mut cap_b) = (Capture::start(&w.net, "a"), Capture::start(&w.net, "b"));
    let (id, oa, ob) = open_session_events(&mut w.a, &mut w.b, &w.b_name).await;
    assert_eq!(route(&oa).0, "relay", "{oa}");
    assert_eq!(route(&ob).0, "relay", "{ob}");
    for _ in 0..3 {
        say(&mut w.a, &mut w.b, &id).await;
        say(&mut w.b, &mut w.a, &id).await;
    }
    w.a.ok(json!({"cmd": "leave", "session": id})).await;
    w.a.expect_event("session_ended").await;
    w.b.expect_event("session_ended").await;
    let in_a = cap_a.count(&format!("host {ROUTER_B} or host {HOST_B}"));
    let in_b = cap_b.count(&format!("host {ROUTER_A} or host {HOST_A}"));
    assert_eq!(
        (in_a, in_b),
        (0, 0),
        "packets between the homes (A saw, B saw)"
    );

    // The captures do see the chat: it went to and from the relay.
    let mut cap = Capture::start(&w.net, "a");
    let (id, _, _) = open_session_events(&mut w.a, &mut w.b, &w.b_name).await;
    say(&mut w.a, &mut w.b, &id).await;
    let to_relay = cap.count(&format!("udp and host {PUBLIC}"));
    assert!(to_relay > 0, "the capture saw the relayed chat");
    println!("packets between the homes: 0 and 0; to and from the relay: {to_relay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_direct_path_dies_an_ice_restart_moves_the_chat_to_the_relay() {
    let Some(mut w) = world(true, false).await else {
        return;
    };
    // Both allow direct connections: the chat runs straight between the homes.
    for side in [&mut w.a, &mut w.b] {
        side.ok(json!({"cmd": "set_hide_ip", "hide": false})).await;
    }
    let (id, oa, ob) = open_session_events(&mut w.a, &mut w.b, &w.b_name).await;
    for open in [&oa, &ob] {
        let (local, remote) = route(open);
        assert!(local != "relay" && remote != "relay", "{open}");
    }
    say(&mut w.a, &mut w.b, &id).await;

    // The direct path dies; the server and the relay are still there.
    w.net.block_udp_between_homes();
    for side in [&mut w.a, &mut w.b] {
        let r = side.expect_event("session_reconnecting").await;
        assert_eq!(r["session"], id.as_str());
    }
    let mut routes = Vec::new();
    for side in [&mut w.a, &mut w.b] {
        let r = side.expect_event("session_resumed").await;
        assert_eq!(r["session"], id.as_str());
        routes.push(route(&r));
    }
    assert!(
        routes.iter().any(|(l, r)| l == "relay" || r == "relay"),
        "the chat resumed through the relay: {routes:?}"
    );
    // The same session goes on (same Olm session, same chat log): no new ring, nothing wiped.
    say(&mut w.a, &mut w.b, &id).await;
    say(&mut w.b, &mut w.a, &id).await;
    let history = w.a.call(json!({"cmd": "history", "session": id})).await;
    assert_eq!(
        history["lines"].as_array().map(Vec::len),
        Some(3),
        "the chat before the break is still there: {history}"
    );
    assert!(!w.a.seen(|v| v["event"] == "session_ended"));
    assert!(!w.b.seen(|v| v["event"] == "session_ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_mid_chat_ends_and_wipes_on_both_sides() {
    let Some(mut w) = world(false, false).await else {
        return;
    };
    let (id, _, _) = open_session_events(&mut w.a, &mut w.b, &w.b_name).await;
    say(&mut w.a, &mut w.b, &id).await;
    w.net.cut("a");
    // Bob still reaches the server, so the chat first tries to repair itself; no path comes back.
    let t0 = std::time::Instant::now();
    let r = w.b.expect_event("session_reconnecting").await;
    assert_eq!(r["session"], id.as_str());
    for side in [&mut w.a, &mut w.b] {
        let ended = side.expect_event("session_ended").await;
        assert_eq!(ended["session"], id.as_str());
        assert_eq!(ended["wiped"], true, "{ended}");
        assert!(
            ended["reason"] == "peer_lost" || ended["reason"] == "channel_closed",
            "{ended}"
        );
        let history = side.call(json!({"cmd": "history", "session": id})).await;
        assert_eq!(history["ok"], false, "the session is gone: {history}");
    }
    println!("link cut → both ended and wiped after {:?}", t0.elapsed());
}
