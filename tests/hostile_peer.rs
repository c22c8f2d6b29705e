//! A hostile peer: a real CLI client that sends more than the other side keeps, and crafted file
//! names and types. The receiver refuses past its caps with a clear reason, its memory stays flat
//! (measured from /proc), and nothing it shows comes from the peer's word about a type.

use anonchat_e2e::cli::{befriend, open_session, pair, say};
use anonchat_e2e::server::Server;
use anonchat_e2e::TempDir;
use serde_json::json;

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

const MB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_past_the_chat_cap_are_refused_and_the_receivers_memory_stays_flat() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    p.b.ok(json!({"cmd": "set_chat_limits", "mb": 30})).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let files = TempDir::new("files");
    let path = files.0.join("big.bin");
    let data: Vec<u8> = (0..25 * MB).map(|_| rand::random::<u8>()).collect();
    std::fs::write(&path, &data).expect("write");
    drop(data);

    let before = rss(p.b.pid());
    let mut refused = Vec::new();
    for round in 0..5 {
        let sent =
            p.a.ok(json!({"cmd": "send_file", "session": session, "path": path}))
                .await;
        let id = sent["id"].clone();
        let i = id.clone();
        let outcome =
            p.b.expect("received or refused", move |v| {
                (v["event"] == "file_received" || v["event"] == "file_cancelled") && v["id"] == i
            })
            .await;
        if round == 0 {
            assert_eq!(
                outcome["event"], "file_received",
                "the first fits: {outcome}"
            );
        } else {
            assert_eq!(outcome["event"], "file_cancelled", "{outcome}");
            let j = id.clone();
            let theirs =
                p.a.expect("sender told", move |v| {
                    v["event"] == "file_cancelled" && v["id"] == j
                })
                .await;
            assert_eq!(theirs["by_peer"], true);
            refused.push(outcome["reason"].as_str().unwrap_or_default().to_string());
        }
    }
    let after = rss(p.b.pid());
    assert!(
        refused
            .iter()
            .all(|r| r.contains("MB of attachments") && r.contains("at most 30 MB")),
        "a clear reason: {refused:?}"
    );
    let grew = after.saturating_sub(before);
    println!(
        "receiver RSS {} MB -> {} MB (+{} MB) for 5 x 25 MB offered, 1 kept",
        before / MB,
        after / MB,
        grew / MB
    );
    assert!(
        grew < 70 * MB,
        "memory stays near one file's worth: +{} MB",
        grew / MB
    );
    // The chat is fine: the peer was refused, not the chat.
    say(&mut p.a, &mut p.b, &session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_flood_keeps_only_the_newest_lines_and_front_ends_hear_of_the_wiped_ones() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    p.b.ok(json!({"cmd": "set_chat_limits", "lines": 200}))
        .await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let body = "x".repeat(8 * 1024);
    // Within the peer's burst: nothing is dropped, the log keeps only the newest 200.
    const N: usize = 1500;
    for i in 0..N {
        p.a.send(json!({"cmd": "send", "session": session, "text": format!("{i:05} {body}")}))
            .await;
    }
    for _ in 0..N {
        p.a.expect("reply to send", |v| v["reply"] == "send" && v["ok"] == true)
            .await;
    }
    let last = say(&mut p.a, &mut p.b, &session).await;
    let history = p.b.ok(json!({"cmd": "history", "session": session})).await;
    let lines = history["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 200, "only the newest 200 are kept");
    assert_eq!(lines.last().map(|l| l["text"].clone()), Some(json!(last)));
    // The cap wipes lines the way a timer does: front-ends hear of each.
    let wiped: usize =
        p.b.take_all(|v| v["event"] == "expired")
            .iter()
            .map(|v| v["ids"].as_array().map(Vec::len).unwrap_or(0))
            .sum();
    assert_eq!(wiped, N + 1 - 200, "every wiped line was announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_file_names_are_cleaned_and_a_claimed_image_is_shown_only_if_it_is_one() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let files = TempDir::new("files");
    // Shown as "invoice_xgnp.html"-like tricks: a right-to-left override, a backslash path, a
    // newline; the extension makes the sender claim an image, the bytes are HTML.
    let name = "..\\invoice\u{202E}lmth\n.png";
    let path = files.0.join(name);
    std::fs::write(&path, b"<html><script>alert(1)</script></html>").expect("write");
    let sent =
        p.a.ok(json!({"cmd": "send_file", "session": session, "path": path}))
            .await;
    let id = sent["id"].clone();
    let i = id.clone();
    let incoming =
        p.b.expect("file_incoming", move |v| {
            v["event"] == "file_incoming" && v["id"] == i
        })
        .await;
    let shown = incoming["name"].as_str().expect("name");
    assert_eq!(shown, "_invoicelmth.png", "{incoming}");
    assert_eq!(incoming["mime"], "application/octet-stream");
    let i = id.clone();
    let received =
        p.b.expect("file_received", move |v| {
            v["event"] == "file_received" && v["id"] == i
        })
        .await;
    assert_eq!(received["kind"], "file", "HTML is not an image: {received}");
    assert_eq!(received["mime"], "application/octet-stream");

    // A real PNG under a claimed image is one.
    let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let png = files.0.join("real.png");
    img.save(&png).expect("png");
    let sent =
        p.a.ok(json!({"cmd": "send_file", "session": session, "path": png}))
            .await;
    let i = sent["id"].clone();
    let received =
        p.b.expect("file_received", move |v| {
            v["event"] == "file_received" && v["id"] == i
        })
        .await;
    assert_eq!(received["kind"], "image");
    assert_eq!(received["mime"], "image/png");
}
