//! P3 for groups: three members, each CLI under strace, exchange texts, a file, an image, a photo
//! and a view-once image as a group; afterwards nothing they wrote lies outside their profiles
//! (and the one path a user chose for "Save as"), and no canary or photo byte is in any file they
//! could have left — profiles, home, temp.

use std::collections::BTreeSet;

use anonchat_e2e::disk::{
    b64, big_file, count, files_under, png_with, written_outside, written_paths,
};
use anonchat_e2e::group::{people_wrapped, say_to_all, start, Group};
use anonchat_e2e::server::Server;
use anonchat_e2e::{canary, TempDir};
use serde_json::{json, Value};

/// `from` sends the file at `path` to the group; every other member gets it whole and its bytes
/// are returned per member.
async fn send_to_all(g: &mut Group, from: &str, path: &std::path::Path, once: bool) -> Value {
    let gid = g.by(from).group.clone();
    let sent = g
        .by(from)
        .cli
        .ok(json!({"cmd": "group_send_file", "group": gid, "path": path, "view_once": once}))
        .await;
    for who in g.names().into_iter().filter(|n| n != from) {
        let m = g.by(&who);
        let session = m.links[from].clone();
        let id = sent["sent"][&who]["id"].clone();
        // A slow debug build may take a while: each progress report restarts the wait.
        loop {
            let (s, want) = (session.clone(), id.clone());
            let v = m
                .cli
                .expect("progress or the file whole", move |v| {
                    (v["event"] == "file_progress" || v["event"] == "file_received")
                        && v["session"] == s
                        && v["id"] == want
                })
                .await;
            if v["event"] == "file_received" {
                break;
            }
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_a_groups_texts_and_media_never_touch_disk() {
    let server = Server::start().await;
    let root = TempDir::new("gp3");
    let (home, tmp, fixtures, chosen) = (
        root.0.join("home"),
        root.0.join("tmp"),
        root.0.join("fixtures"),
        root.0.join("chosen"),
    );
    for d in [&home, &tmp, &fixtures, &chosen] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let camera = fixtures.join("camera.png");
    png_with(&camera, "");
    let env = [
        ("HOME", home.to_str().expect("utf-8")),
        ("TMPDIR", tmp.to_str().expect("utf-8")),
        ("ANONCHAT_SYNTHETIC_CAMERA", camera.to_str().expect("utf-8")),
    ];
    let traces: Vec<_> = (0..3)
        .map(|i| root.0.join(format!("m{i}.strace")))
        .collect();
    let strace = |i: usize| -> Vec<String> {
        let fixed = [
            "strace",
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-e",
            "trace=%file",
            "-o",
        ];
        fixed
            .iter()
            .map(|s| s.to_string())
            .chain([traces[i].display().to_string(), "--".into()])
            .collect()
    };
    let (people, profiles) = people_wrapped(&[server.url()], 3, &env, &strace).await;
    let data = profiles.0.clone();
    let mut g = start(people, profiles).await;
    let names = g.names();
    let (alice, bob, carol) = (names[0].clone(), names[1].clone(), names[2].clone());

    // Texts from every member.
    let mut canaries = Vec::new();
    for who in &names {
        canaries.push(say_to_all(&mut g, who).await);
    }

    // An 8 MiB file from a member who is not the admin; one member saves it where it chooses.
    let file_canary = canary();
    let big = fixtures.join("big.bin");
    big_file(&big, &file_canary, 8);
    let sent = send_to_all(&mut g, &bob, &big, false).await;
    let saved = chosen.join("saved.bin");
    let m = g.by(&carol);
    let session = m.links[&bob].clone();
    m.cli
        .ok(json!({"cmd": "save", "session": session, "id": sent["sent"][&carol]["id"], "path": saved}))
        .await;
    assert_eq!(
        std::fs::read(&saved).expect("saved"),
        std::fs::read(&big).expect("fixture"),
        "saved exactly what was sent"
    );
    canaries.push(file_canary);

    // An image, shown from memory at both others.
    let image_canary = canary();
    let pic = fixtures.join("pic.png");
    let pic_bytes = png_with(&pic, &image_canary);
    let sent = send_to_all(&mut g, &alice, &pic, false).await;
    for who in [&bob, &carol] {
        let m = g.by(who);
        let session = m.links[&alice].clone();
        let got = m
            .cli
            .ok(json!({"cmd": "attachment", "session": session, "id": sent["sent"][who]["id"]}))
            .await;
        assert_eq!(b64(&got), pic_bytes, "{who} has the image");
    }
    canaries.push(image_canary);

    // A photo from carol's camera.
    let gid = g.by(&carol).group.clone();
    let sent = g
        .by(&carol)
        .cli
        .ok(json!({"cmd": "group_send_photo", "group": gid, "camera": 0}))
        .await;
    let mut photo = Vec::new();
    for who in [&alice, &bob] {
        let m = g.by(who);
        let session = m.links[&carol].clone();
        let (s, id) = (session.clone(), sent["sent"][who]["id"].clone());
        m.cli
            .expect("the photo", move |v| {
                v["event"] == "file_received" && v["session"] == s && v["id"] == id
            })
            .await;
        photo = b64(&m
            .cli
            .ok(json!({"cmd": "attachment", "session": session, "id": sent["sent"][who]["id"]}))
            .await);
    }
    assert!(photo.starts_with(&[0xff, 0xd8]), "a JPEG");
    let photo_slice = photo[photo.len() / 2..photo.len() / 2 + 32].to_vec();

    // A view-once image: each recipient opens it once; the sender hears of each.
    let once_canary = canary();
    let once = fixtures.join("once.png");
    let once_bytes = png_with(&once, &once_canary);
    let sent = send_to_all(&mut g, &alice, &once, true).await;
    for who in [&bob, &carol] {
        let m = g.by(who);
        let session = m.links[&alice].clone();
        let id = sent["sent"][who]["id"].clone();
        let opened = m
            .cli
            .ok(json!({"cmd": "open_view_once", "session": session, "id": id}))
            .await;
        assert_eq!(b64(&opened), once_bytes);
        let again = m
            .cli
            .call(json!({"cmd": "open_view_once", "session": session, "id": id}))
            .await;
        assert_eq!(again["ok"], false, "opens only once: {again}");
        let session = g.by(&alice).links[who].clone();
        g.by(&alice)
            .cli
            .expect("told it was opened", move |v| {
                v["event"] == "view_once_opened" && v["session"] == session && v["id"] == id
            })
            .await;
    }
    canaries.push(once_canary);

    // The admin leaves, then the other two: the group is over everywhere.
    for who in [&alice, &bob] {
        let m = g.by(who);
        let gid = m.group.clone();
        m.cli.ok(json!({"cmd": "group_leave", "group": gid})).await;
        m.cli.expect_event("group_ended").await;
    }
    g.by(&carol).cli.expect_event("group_ended").await;
    for m in std::mem::take(&mut g.members) {
        m.cli.quit().await;
    }

    // What the three processes wrote: their profile files, the chosen path, and nothing else.
    let mut written = BTreeSet::new();
    for t in &traces {
        written.extend(written_paths(
            &std::fs::read_to_string(t).expect("strace log"),
        ));
    }
    assert!(!written.is_empty(), "strace saw the profile being written");
    let unexpected = written_outside(&written, &data, &saved);
    assert!(
        unexpected.is_empty(),
        "written outside the profiles: {unexpected:?}"
    );
    println!("files opened for writing: {written:?}");

    assert!(
        files_under(&tmp).is_empty(),
        "temp files: {:?}",
        files_under(&tmp)
    );
    let mut searched = 0;
    for f in files_under(&data).into_iter().chain(files_under(&home)) {
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
    // The search can see a canary where there is one: the file saved on purpose has three.
    let saved_bytes = std::fs::read(&saved).expect("saved");
    assert_eq!(count(&saved_bytes, canaries[3].as_bytes()), 3);
    println!(
        "searched {searched} files for {} canaries and the photo",
        canaries.len()
    );
}
