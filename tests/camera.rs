//! Adding a contact with the webcam, with real processes: the CLI's camera is a synthetic source
//! behind nokhwa's own capture trait (there is no camera here), showing the contact's share QR.

use anonchat_e2e::cli::Cli;
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

const NO_CAMERA: &str = "No camera found. Connect a camera, or add the contact by username.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn showing_their_qr_to_the_camera_sends_them_a_request() {
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let (a_name, b_name) = (unique("alice"), unique("bob"));

    // Bob is in Strict mode: only his live code (inside the QR) lets a stranger reach him.
    let mut b = Cli::start(&unique("pb"), &home.0, &server.url()).await;
    b.register(&b_name).await;
    b.connect().await;
    b.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;
    let code = b.ok(json!({"cmd": "code"})).await;
    let qr = b
        .ok(json!({"cmd": "qr", "text": code["link"], "png": true}))
        .await;
    let png = anonchat_proto::bytes::decode_b64(qr["png_base64"].as_str().expect("png")).unwrap();
    let camera = home.0.join("camera.png");
    std::fs::write(&camera, &png).unwrap();

    let camera_env = camera.to_str().unwrap();
    let mut a = Cli::start_with_env(
        &unique("pa"),
        &home.0,
        &server.url(),
        &[("ANONCHAT_SYNTHETIC_CAMERA", camera_env)],
    )
    .await;
    a.register(&a_name).await;
    a.connect().await;
    let cams = a.ok(json!({"cmd": "cameras"})).await;
    assert_eq!(cams["cameras"].as_array().map(Vec::len), Some(1));
    let added = a.ok(json!({"cmd": "scan_contact", "camera": 0})).await;
    assert_eq!(added["username"], b_name.as_str());
    let req = b.expect_event("friend_request").await;
    assert_eq!(req["from"], a_name.as_str());
    // Both sides compute the same safety number from the keys the server vouched for.
    assert_eq!(req["safety_number"], added["safety_number"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_camera_the_user_is_told_so_plainly() {
    // The real platform enumeration (V4L2 here): this machine has no camera.
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let mut a = Cli::start(&unique("pa"), &home.0, &server.url()).await;
    let cams = a.call(json!({"cmd": "cameras"})).await;
    assert_eq!(cams["ok"], false, "{cams}");
    assert_eq!(cams["error"], NO_CAMERA);
    let scan = a.call(json!({"cmd": "scan_contact", "camera": 0})).await;
    assert_eq!(scan["ok"], false, "{scan}");
    assert_eq!(scan["error"], NO_CAMERA);
}
