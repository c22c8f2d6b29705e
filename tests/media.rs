//! Media that never touches disk (P3), with real processes: text, a 50 MB file, an image, a camera
//! photo and a view-once image between two CLI clients over real WebRTC, each carrying a canary.
//! strace records every file either process opens for writing; afterwards their profile folders,
//! `$TMPDIR` and `$HOME` hold no canary and no temp file. Also: view-once opens once, timers
//! expire on both sides on time, the size cap and cancelling.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anonchat_e2e::cli::{befriend, open_session, pair, say, Cli};
use anonchat_e2e::disk::{
    b64, big_file, count, files_under, png_with, written_outside, written_paths,
};
use anonchat_e2e::server::Server;
use anonchat_e2e::{canary, unique, TempDir};
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_media_never_touches_disk() {
    let server = Server::start().await;
    let root = TempDir::new("p3");
    let (home, tmp, data) = (
        root.0.join("home"),
        root.0.join("tmp"),
        root.0.join("anonchat"),
    );
    let (fixtures, chosen) = (root.0.join("fixtures"), root.0.join("chosen"));
    for d in [&home, &tmp, &data, &fixtures, &chosen] {
        std::fs::create_dir_all(d).unwrap();
    }
    let camera = fixtures.join("camera.png");
    png_with(&camera, "");
    let env: Vec<(&str, &str)> = vec![
        ("HOME", home.to_str().unwrap()),
        ("TMPDIR", tmp.to_str().unwrap()),
        ("ANONCHAT_SYNTHETIC_CAMERA", camera.to_str().unwrap()),
    ];
    let strace = |who: &str| -> Vec<String> {
        [
            "strace",
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-e",
            "trace=%file",
            "-o",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            root.0.join(format!("{who}.strace")).display().to_string(),
            "--".into(),
        ])
        .collect()
    };
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let mut a = Cli::start_wrapped(&unique("pa"), &data, &server.url(), &env, &strace("a")).await;
    let mut b = Cli::start_wrapped(&unique("pb"), &data, &server.url(), &env, &strace("b")).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    let session = open_session(&mut a, &mut b, &b_name).await;

    // Text both ways.
    let mut canaries = vec![
        say(&mut a, &mut b, &session).await,
        say(&mut b, &mut a, &session).await,
    ];

    // A 50 MB file; the receiver keeps it in RAM until it asks to save it where it chooses.
    let file_canary = canary();
    let big = fixtures.join("big.bin");
    big_file(&big, &file_canary, 50);
    let sent = a
        .ok(json!({"cmd": "send_file", "session": session, "path": big, "view_once": false}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    let incoming = b.expect_event("file_incoming").await;
    assert_eq!(incoming["size"], 50 * 1024 * 1024);
    assert_eq!(incoming["kind"], "file");
    // A slow debug build may take a while: each progress report restarts the wait.
    loop {
        let v = b
            .expect("progress or the file whole", move |v| {
                (v["event"] == "file_progress" || v["event"] == "file_received") && v["id"] == id
            })
            .await;
        if v["event"] == "file_received" {
            break;
        }
        assert_eq!(v["outgoing"], false);
    }
    a.expect("a delivery receipt", move |v| {
        v["event"] == "receipt" && v["id"] == id
    })
    .await;
    assert!(a.seen(|v| v["event"] == "file_progress" && v["outgoing"] == true));
    let saved = chosen.join("saved.bin");
    b.ok(json!({"cmd": "save", "session": session, "id": id, "path": saved}))
        .await;
    assert_eq!(
        Sha256::digest(std::fs::read(&saved).unwrap()),
        Sha256::digest(std::fs::read(&big).unwrap()),
        "saved exactly what was sent"
    );
    canaries.push(file_canary);

    // An image, shown inline from memory.
    let image_canary = canary();
    let pic = fixtures.join("pic.png");
    let pic_bytes = png_with(&pic, &image_canary);
    let sent = a
        .ok(json!({"cmd": "send_file", "session": session, "path": pic}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    let incoming = b
        .expect("the offer", move |v| {
            v["event"] == "file_incoming" && v["id"] == id
        })
        .await;
    assert_eq!(incoming["kind"], "image");
    b.expect("the image", move |v| {
        v["event"] == "file_received" && v["id"] == id
    })
    .await;
    let got = b
        .ok(json!({"cmd": "attachment", "session": session, "id": id}))
        .await;
    assert_eq!(b64(&got), pic_bytes);
    canaries.push(image_canary);

    // A photo from A's camera (a synthetic source behind nokhwa's capture trait).
    let sent = a
        .ok(json!({"cmd": "send_photo", "session": session, "camera": 0}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    b.expect("the photo", move |v| {
        v["event"] == "file_received" && v["id"] == id
    })
    .await;
    let photo = b64(&b
        .ok(json!({"cmd": "attachment", "session": session, "id": id}))
        .await);
    let decoded = image::load_from_memory(&photo).expect("the photo is a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (64, 48));
    // Its entropy-coded middle is as unique as any canary.
    let photo_slice = photo[photo.len() / 2..photo.len() / 2 + 32].to_vec();

    // A view-once image: opens once, then it is gone on both sides and the sender is told.
    let once_canary = canary();
    let once = fixtures.join("once.png");
    let once_bytes = png_with(&once, &once_canary);
    let sent = a
        .ok(json!({"cmd": "send_file", "session": session, "path": once, "view_once": true}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    let incoming = b
        .expect("the offer", move |v| {
            v["event"] == "file_incoming" && v["id"] == id
        })
        .await;
    assert_eq!(incoming["view_once"], true);
    b.expect("the view-once image", move |v| {
        v["event"] == "file_received" && v["id"] == id
    })
    .await;
    let peek = b
        .call(json!({"cmd": "attachment", "session": session, "id": id}))
        .await;
    assert_eq!(
        peek["ok"], false,
        "view-once is not readable as a plain attachment: {peek}"
    );
    let opened = b
        .ok(json!({"cmd": "open_view_once", "session": session, "id": id}))
        .await;
    assert_eq!(b64(&opened), once_bytes);
    let again = b
        .call(json!({"cmd": "open_view_once", "session": session, "id": id}))
        .await;
    assert_eq!(again["ok"], false, "opens only once: {again}");
    a.expect("told it was opened", move |v| {
        v["event"] == "view_once_opened" && v["id"] == id
    })
    .await;
    for side in [&mut a, &mut b] {
        let list = side
            .ok(json!({"cmd": "attachments", "session": session}))
            .await;
        assert!(
            list["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["id"] != id),
            "wiped on both sides: {list}"
        );
    }
    canaries.push(once_canary);

    a.ok(json!({"cmd": "leave", "session": session})).await;
    a.expect_event("session_ended").await;
    b.expect_event("session_ended").await;
    a.quit().await;
    b.quit().await;

    // What the two processes wrote: their profile files, the path chosen for "Save as", and
    // nothing else (devices aside).
    let mut written = BTreeSet::new();
    for who in ["a", "b"] {
        let log = std::fs::read_to_string(root.0.join(format!("{who}.strace"))).unwrap();
        written.extend(written_paths(&log));
    }
    let unexpected = written_outside(&written, &data, &saved);
    assert!(
        unexpected.is_empty(),
        "written outside the profile: {unexpected:?}"
    );
    println!("files opened for writing: {written:?}");

    // No canary, no photo bytes, no temp file anywhere the clients could have left one.
    assert!(
        files_under(&tmp).is_empty(),
        "temp files: {:?}",
        files_under(&tmp)
    );
    let mut searched = 0;
    for f in files_under(&data)
        .into_iter()
        .chain(files_under(&home))
        .chain(files_under(&tmp))
    {
        let bytes = std::fs::read(&f).unwrap_or_default();
        searched += 1;
        for c in &canaries {
            assert_eq!(
                count(&bytes, c.as_bytes()),
                0,
                "{c} found in {}",
                f.display()
            );
        }
        assert_eq!(
            count(&bytes, &photo_slice),
            0,
            "photo bytes in {}",
            f.display()
        );
    }
    // The check can see a canary where there is one: the file saved on purpose has three.
    let saved_bytes = std::fs::read(&saved).unwrap();
    assert_eq!(count(&saved_bytes, canaries[2].as_bytes()), 3);
    println!("searched {searched} files under the profile folder, $HOME and $TMPDIR: no canary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_expire_on_both_sides_on_time() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    // Without a timer nothing says it expires.
    let untimed =
        p.a.ok(json!({"cmd": "send", "session": session, "text": "stays"}))
            .await;
    assert!(untimed["expires_in_ms"].is_null(), "{untimed}");
    let got = p.b.expect_event("message").await;
    assert!(got["expires_in_ms"].is_null(), "{got}");
    let bad =
        p.a.call(json!({"cmd": "set_timer", "session": session, "seconds": 7}))
            .await;
    assert_eq!(bad["ok"], false, "only the listed timers: {bad}");
    p.a.ok(json!({"cmd": "set_timer", "session": session, "seconds": 5}))
        .await;
    let set = p.b.expect_event("timer_set").await;
    assert_eq!(
        (set["seconds"].as_u64(), set["by_peer"].as_bool()),
        (Some(5), Some(true))
    );

    let text = canary();
    let sent_at = Instant::now();
    let sent =
        p.a.ok(json!({"cmd": "send", "session": session, "text": text}))
            .await;
    let id = sent["id"].as_u64().unwrap();
    let want = text.clone();
    let got =
        p.b.expect("the message", move |v| {
            v["event"] == "message" && v["text"] == want.as_str()
        })
        .await;
    let received_at = Instant::now();
    // Each side's engine says when it wipes the item, so front-ends count down to its deadline
    // and never compute one of their own.
    for (side, said) in [("sender", &sent), ("receiver", &got)] {
        let ms = said["expires_in_ms"]
            .as_u64()
            .expect("an expiry while a timer is set");
        assert!(
            (4_500..=5_000).contains(&ms),
            "{side}: expires in {ms} ms, timer 5 s"
        );
    }
    for (side, from) in [(&mut p.a, sent_at), (&mut p.b, received_at)] {
        side.expect("expiry", move |v| {
            v["event"] == "expired"
                && v["ids"]
                    .as_array()
                    .is_some_and(|ids| ids.contains(&json!(id)))
        })
        .await;
        let after = from.elapsed();
        assert!(
            after >= Duration::from_millis(4900) && after <= Duration::from_secs(6),
            "expired after {after:?}, set to 5 s"
        );
        // The timed line is gone; the one sent before the timer stays.
        let history = side.ok(json!({"cmd": "history", "session": session})).await;
        let texts: Vec<&str> = history["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["text"].as_str())
            .collect();
        assert_eq!(texts, vec!["stays"], "{history}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_cap_and_cancelling_stop_transfers_on_both_sides() {
    let server = Server::start().await;
    let mut p = pair(&server.url()).await;
    befriend(&mut p.a, &p.a_name, &mut p.b, &p.b_name).await;
    let session = open_session(&mut p.a, &mut p.b, &p.b_name).await;
    let dir = TempDir::new("cap");

    // Bob takes files up to 1 MB: a 2 MB one is refused, and Alice is told.
    p.b.ok(json!({"cmd": "set_max_file_mb", "mb": 1})).await;
    let two = dir.0.join("two.bin");
    std::fs::write(&two, vec![7u8; 2_000_000]).unwrap();
    let sent =
        p.a.ok(json!({"cmd": "send_file", "session": session, "path": two}))
            .await;
    let id = sent["id"].as_u64().unwrap();
    let refused = p.b.expect_event("file_cancelled").await;
    assert!(
        refused["reason"].as_str().unwrap().contains("larger"),
        "{refused}"
    );
    let told = p.a.expect_event("file_cancelled").await;
    assert_eq!(
        (told["id"].as_u64(), told["by_peer"].as_bool()),
        (Some(id), Some(true))
    );

    // Bob cancels a big transfer as it starts; both sides drop it and the chat goes on.
    p.b.ok(json!({"cmd": "set_max_file_mb"})).await;
    let big = dir.0.join("big.bin");
    std::fs::write(&big, vec![1u8; 40_000_000]).unwrap();
    let sent =
        p.a.ok(json!({"cmd": "send_file", "session": session, "path": big}))
            .await;
    let id = sent["id"].as_u64().unwrap();
    p.b.expect_event("file_incoming").await;
    p.b.ok(json!({"cmd": "cancel_transfer", "session": session, "id": id}))
        .await;
    let mine = p.b.expect_event("file_cancelled").await;
    assert_eq!(mine["by_peer"], false);
    let theirs = p.a.expect_event("file_cancelled").await;
    assert_eq!(
        (theirs["id"].as_u64(), theirs["by_peer"].as_bool()),
        (Some(id), Some(true))
    );
    assert!(!p.b.seen(|v| v["event"] == "file_received"));
    say(&mut p.a, &mut p.b, &session).await;
}
