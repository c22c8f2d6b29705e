//! P5: "offline", "no such user", "wrong code" and "right code but offline" get byte-identical answers
//! whose timing a client cannot tell apart (two-sample Kolmogorov–Smirnov, p > 0.01 for each pair
//! against "no such user"). 10 000 requests per case, interleaved so machine noise hits all alike.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use anonchat_e2e::raw::{recv, request, send_text, RawDevice, Ws};
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::{unique, TempDir};
use anonchat_proto::fvc::{CodeFormat, Fvc};
use anonchat_proto::pow::{contact_resource, Stamp};
use anonchat_proto::{Key32, Username};
use serde_json::{json, Value};

fn per_case() -> usize {
    std::env::var("ANONCHAT_ENUM_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Proof-of-work bits this test's server asks of a request with a code (kept tiny: the stamp is
/// checked on the measured path, but minting is not what is measured).
const POW_BITS: u8 = 1;

/// A lookup with a code and a fresh stamp: every request this test sends has that one shape.
fn lookup(id: u64, from: &str, username: &str, code: &str) -> Value {
    let (from, to) = (
        Username::parse(from).expect("name"),
        Username::parse(username).expect("name"),
    );
    let stamp = Stamp::mint_from(
        &contact_resource(&from, &to),
        POW_BITS,
        now(),
        rand::random(),
    );
    json!({"v": 1, "id": id, "t": "lookup", "username": username, "code": code, "pow": stamp})
}

/// Sends one lookup and returns the answer's exact text (with the request id blanked) and the time.
async fn timed(ws: &mut Ws, id: u64, from: &str, username: &str, code: &str) -> (String, Duration) {
    let msg = lookup(id, from, username, code);
    // This loop sends each request right after the previous answer, so anything periodic on either
    // side (a timer tick, a housekeeping task) would meet each case at the phase its preparation
    // time sets. A random pause of up to a millisecond spreads every case over all phases alike.
    let pause = Duration::from_micros(rand::random::<u64>() % 1000);
    let spin = Instant::now();
    while spin.elapsed() < pause {
        std::hint::spin_loop();
    }
    let text = msg.to_string(); // Serialized before the clock starts.
    let t0 = Instant::now();
    assert!(send_text(ws, &text).await, "send");
    let answer = recv(ws).await.expect("answer");
    let took = t0.elapsed();
    let mut text = answer.to_string();
    text = text.replace(&format!("\"re\":{id}"), "\"re\":N");
    (text, took)
}

/// The asymptotic two-sample Kolmogorov–Smirnov p-value.
fn ks_p(a: &mut [f64], b: &mut [f64]) -> (f64, f64) {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let ne = n * m / (n + m);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    if lambda < 0.2 {
        return (d, 1.0); // The series does not converge there; the distribution is 1 to 1e-9.
    }
    let p: f64 = (1..=100)
        .map(|k| {
            let k = k as f64;
            2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    (d, p.clamp(0.0, 1.0))
}

#[test]
fn ks_detects_a_shift_and_accepts_equal_samples() {
    let mut a: Vec<f64> = (0..2000).map(|i| (i % 97) as f64).collect();
    let mut b = a.clone();
    assert!(ks_p(&mut a, &mut b).1 > 0.99);
    let mut c: Vec<f64> = a.iter().map(|x| x + 10.0).collect();
    assert!(ks_p(&mut a, &mut c).1 < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_answers_are_identical_in_bytes_and_time() {
    let server = Server::start_with(
        ServerOpts {
            extra: vec![
                "--gate-per-minute".into(),
                "100000000".into(),
                "--gate-burst".into(),
                "100000000".into(),
                // 40 000 "not found" answers from one account: the failure backoff and the
                // proof-of-work demand would stop this test; they have tests of their own.
                "--backoff-after".into(),
                "0".into(),
                "--pow-after".into(),
                "0".into(),
                "--contact-pow-bits".into(),
                POW_BITS.to_string(),
            ],
            ..Default::default()
        },
        TempDir::new("server"),
    )
    .await;
    let url = server.url();
    let new = |p: &str| RawDevice::new(&unique(p));
    let (asker, offline, strict_online, strict_offline) =
        (new("ask"), new("off"), new("son"), new("sof"));
    for d in [&asker, &offline, &strict_online, &strict_offline] {
        d.register(&url).await;
    }
    // Two STRICT accounts; one stays online. The other's seed is fetched before it leaves.
    let mut s_on = strict_online.connect(&url).await;
    assert_eq!(
        request(&mut s_on, 1, json!({"t": "set_mode", "mode": "strict"})).await["t"],
        "ok"
    );
    let seed = {
        let mut s_off = strict_offline.connect(&url).await;
        assert_eq!(
            request(&mut s_off, 1, json!({"t": "set_mode", "mode": "strict"})).await["t"],
            "ok"
        );
        let v: Value = request(&mut s_off, 2, json!({"t": "fvc_seed"})).await;
        Key32::from_base64(v["seed"].as_str().expect("seed")).expect("seed bytes")
    };
    let right_code = Fvc::new(&seed.0, CodeFormat::default());
    let mut ws = asker.connect(&url).await;
    // Let the server see strict_offline's socket close before measuring.
    loop {
        let (_, _) = timed(
            &mut ws,
            0,
            asker.username.as_str(),
            strict_offline.username.as_str(),
            "x",
        )
        .await;
        let probe = request(
            &mut ws,
            1,
            lookup(
                1,
                asker.username.as_str(),
                strict_offline.username.as_str(),
                &right_code.code(now()),
            ),
        )
        .await;
        if probe["code"] == "not_found" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let n = per_case();
    let names = [
        "no such user",
        "offline",
        "wrong code",
        "right code, offline",
    ];
    let mut times: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(n)).collect();
    let mut bodies = std::collections::BTreeSet::new();
    let mut id = 10u64;
    for _ in 0..n {
        // A fresh random order each round, so no case always follows the same other case (whatever
        // one request leaves behind on the server lands on all cases alike).
        let mut order = [0usize, 1, 2, 3];
        order.shuffle(&mut rand::thread_rng());
        for case in order {
            let slot = &mut times[case];
            id += 1;
            // Every request has the same shape — a target name of one length, a 6-character code
            // and a stamp — so the cases differ only in what the server knows about the target. (A
            // request's own size moves when the server sees it complete, and the asker knows that
            // already: it is not what P5 hides.)
            let ghost = unique("gho");
            // Letters never match a digits code, so "wrong" stays wrong.
            let wrong = "abcdef".to_string();
            let (user, code) = match case {
                0 => (ghost.as_str(), wrong),
                1 => (offline.username.as_str(), wrong),
                2 => (strict_online.username.as_str(), wrong),
                _ => (strict_offline.username.as_str(), right_code.code(now())),
            };
            assert_eq!(code.len(), 6);
            let (body, took) = timed(&mut ws, id, asker.username.as_str(), user, &code).await;
            bodies.insert(body);
            slot.push(took.as_secs_f64() * 1e6);
        }
    }
    assert_eq!(bodies.len(), 1, "every answer byte-identical: {bodies:?}");
    assert!(bodies.iter().all(|b| b.contains("not_found")));
    let mut base = times[0].clone();
    for case in 1..4 {
        let (d, p) = ks_p(&mut base, &mut times[case]);
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{} vs {}: D = {d:.4}, p = {p:.3}; medians {:.0} µs / {:.0} µs",
            names[0],
            names[case],
            median(&mut base.clone()),
            median(&mut times[case].clone())
        );
        assert!(
            p > 0.01,
            "{} can be told from {} by timing (D = {d:.4}, p = {p:.4})",
            names[case],
            names[0]
        );
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
