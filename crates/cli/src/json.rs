//! `--json` mode: one JSON command per line on stdin, one JSON object per line on stdout.
//! Replies: `{"reply": <cmd>, "ok": true, ...}` or `{"reply": <cmd>, "ok": false, "error": "..."}`.
//! Events: `{"event": ..., ...}` as the engine emits them.

use std::io::Write;

use anonchat_client::events::EventReceiver;
use anonchat_client::{Engine, Event};
use anonchat_proto::frames::SecretText;
use anonchat_proto::fvc::CodeFormat;
use anonchat_proto::wire::{Mode, PresenceMode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use zeroize::Zeroizing;

#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum Command {
    Register {
        username: String,
    },
    Whoami,
    Connect,
    AddFriend {
        username: String,
        #[serde(default)]
        code: Option<String>,
    },
    Lookup {
        username: String,
        #[serde(default)]
        code: Option<String>,
    },
    AddLink {
        link: String,
    },
    /// The cameras there are.
    Cameras,
    /// Reads camera `camera` until a contact's share QR shows up, then adds that contact.
    ScanContact {
        #[serde(default)]
        camera: u32,
    },
    StopScan,
    SetMode {
        mode: Mode,
        #[serde(default)]
        always_require_code: bool,
        #[serde(default)]
        format: CodeFormat,
    },
    GetMode,
    SetPresence {
        presence: PresenceMode,
    },
    /// "Hide my IP" and whether the server has a relay.
    Network,
    SetHideIp {
        hide: bool,
    },
    Code,
    /// A QR code of `text` (a share link, say) as SVG, or as PNG bytes in base64.
    Qr {
        text: String,
        #[serde(default)]
        png: bool,
    },
    RotateCode,
    SetStaticCode {
        #[serde(default)]
        code: Option<String>,
    },
    DeleteAccount,
    Search {
        prefix: String,
    },
    AcceptFriend {
        username: String,
    },
    DeclineFriend {
        username: String,
    },
    Unfriend {
        username: String,
    },
    Friends,
    SafetyNumber {
        username: String,
    },
    MarkVerified {
        username: String,
    },
    TrustNewKey {
        username: String,
    },
    /// The server's TLS key changed and its operator confirmed it: pin the new one.
    TrustServerKey,
    /// Sets, changes or (with none) removes the app passcode.
    SetPasscode {
        #[serde(default)]
        passcode: Option<SecretText>,
    },
    /// Enters the app passcode: unlocks, and covers sensitive actions for a minute.
    Unlock {
        passcode: SecretText,
    },
    LockStatus,
    Ring {
        username: String,
        #[serde(default)]
        code: Option<String>,
    },
    Answer {
        ring_id: String,
        accept: bool,
    },
    Send {
        session: String,
        text: SecretText,
    },
    Typing {
        session: String,
    },
    History {
        session: String,
    },
    Sessions,
    Leave {
        session: String,
    },
    /// Sends a file from disk (images are shown inline by the peer).
    SendFile {
        session: String,
        path: std::path::PathBuf,
        #[serde(default)]
        view_once: bool,
    },
    /// Takes a photo with camera `camera` and sends it.
    SendPhoto {
        session: String,
        #[serde(default)]
        camera: u32,
        #[serde(default)]
        view_once: bool,
    },
    Attachments {
        session: String,
    },
    /// An attachment's bytes, in base64.
    Attachment {
        session: String,
        id: u64,
    },
    OpenViewOnce {
        session: String,
        id: u64,
    },
    /// Writes an attachment to `path`, the only place it is ever written.
    Save {
        session: String,
        id: u64,
        path: std::path::PathBuf,
    },
    CancelTransfer {
        session: String,
        id: u64,
    },
    SetTimer {
        session: String,
        seconds: u32,
    },
    SetMaxFileMb {
        #[serde(default)]
        mb: Option<u32>,
    },
    SetChatLimits {
        #[serde(default)]
        lines: Option<u32>,
        #[serde(default)]
        mb: Option<u32>,
    },
    /// Old device: a code and QR string for adding a new device.
    EnrollOpen,
    /// New device: join with the code or the QR string; answers once the old device decided.
    Enroll {
        code: String,
    },
    EnrollApprove {
        device_id: String,
        /// The comparison code the user was shown (the `fingerprint` of `enroll_request`).
        fingerprint: String,
    },
    EnrollDecline {
        device_id: String,
    },
    Devices,
    Block {
        username: String,
    },
    Unblock {
        username: String,
    },
    Blocked,
    RevokeDevice {
        device_id: String,
    },
    RotateAccountKey,
    Panic,
    Quit,
}

fn emit(v: &Value) {
    let line = Zeroizing::new(v.to_string());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_str());
    let _ = out.flush();
}

fn emit_event(ev: &Event) {
    if let Ok(line) = serde_json::to_string(ev).map(Zeroizing::new) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line.as_str());
        let _ = out.flush();
    }
}

fn bytes_reply((meta, data): anonchat_client::session::AttachmentBytes) -> Value {
    json!({"meta": meta, "base64": anonchat_proto::bytes::encode_b64(&data)})
}

async fn scan_and_add(engine: &Engine, camera: u32) -> Result<Value, anonchat_client::ClientError> {
    let link = Zeroizing::new(engine.scan_contact(camera, |_| {}).await?);
    let (u, sn) = engine.add_by_link(&link).await?;
    Ok(json!({"username": u, "safety_number": sn}))
}

pub async fn run(engine: Engine, mut events: EventReceiver) -> anyhow::Result<()> {
    let printer = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            emit_event(&ev);
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    emit(&json!({"event": "ready", "username": engine.username()}));
    while let Ok(Some(line)) = lines.next_line().await {
        let line = Zeroizing::new(line);
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Command = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                emit(&json!({"reply": "invalid", "ok": false, "error": e.to_string()}));
                continue;
            }
        };
        if matches!(cmd, Command::Quit) {
            break;
        }
        // Commands run concurrently so a slow one (a ring) does not hold up the next.
        let engine = engine.clone();
        tokio::spawn(async move {
            let reply = execute(&engine, cmd).await;
            emit(&reply);
        });
    }
    engine.shutdown().await;
    printer.abort();
    emit(&json!({"event": "bye"}));
    Ok(())
}

fn ok(name: &str, extra: Value) -> Value {
    let mut v = json!({"reply": name, "ok": true});
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

async fn execute(engine: &Engine, cmd: Command) -> Value {
    let (name, result): (&str, Result<Value, anonchat_client::ClientError>) = match cmd {
        Command::Register { username } => (
            "register",
            engine
                .register(&username)
                .await
                .map(|_| json!({"username": engine.username()})),
        ),
        Command::Whoami => (
            "whoami",
            Ok(json!({"username": engine.username(), "server": engine.server()})),
        ),
        Command::Connect => ("connect", engine.connect().await.map(|_| json!({}))),
        Command::AddFriend { username, code } => (
            "add_friend",
            engine
                .add_friend(&username, code.as_deref())
                .await
                .map(|sn| json!({"username": username, "safety_number": sn})),
        ),
        Command::AcceptFriend { username } => (
            "accept_friend",
            engine
                .accept_friend(&username)
                .await
                .map(|_| json!({"username": username})),
        ),
        Command::DeclineFriend { username } => (
            "decline_friend",
            engine.decline_friend(&username).await.map(|_| json!({})),
        ),
        Command::Unfriend { username } => (
            "unfriend",
            engine.unfriend(&username).await.map(|_| json!({})),
        ),
        Command::Friends => (
            "friends",
            engine.friends().await.map(|f| json!({"friends": f})),
        ),
        Command::SafetyNumber { username } => (
            "safety_number",
            engine
                .safety_number(&username)
                .map(|sn| json!({"username": username, "safety_number": sn})),
        ),
        Command::MarkVerified { username } => (
            "mark_verified",
            engine.mark_verified(&username).map(|_| json!({})),
        ),
        Command::SetPasscode { passcode } => (
            "set_passcode",
            engine.set_passcode(passcode).await.map(|_| json!({})),
        ),
        Command::Unlock { passcode } => {
            ("unlock", engine.unlock(passcode).await.map(|_| json!({})))
        }
        Command::LockStatus => ("lock_status", Ok(json!(engine.lock_status()))),
        Command::TrustServerKey => (
            "trust_server_key",
            engine.trust_server_key().map(|_| json!({})),
        ),
        Command::TrustNewKey { username } => (
            "trust_new_key",
            engine.trust_new_key(&username).await.map(|_| json!({})),
        ),
        Command::Ring { username, code } => (
            "ring",
            engine
                .ring(&username, code.as_deref())
                .await
                .map(|id| json!({"ring_id": id})),
        ),
        Command::Answer { ring_id, accept } => (
            "answer",
            engine
                .answer(&ring_id, accept)
                .await
                .map(|_| json!({"ring_id": ring_id})),
        ),
        Command::Send { session, text } => (
            "send",
            engine
                .send_text(&session, text)
                .await
                .map(|id| json!({"session": session, "id": id})),
        ),
        Command::Typing { session } => ("typing", engine.typing(&session).await.map(|_| json!({}))),
        Command::History { session } => (
            "history",
            engine.history(&session).await.map(|h| json!({"lines": h})),
        ),
        Command::Sessions => ("sessions", Ok(json!({"sessions": engine.sessions()}))),
        Command::Leave { session } => ("leave", engine.leave(&session).await.map(|_| json!({}))),
        Command::SendFile {
            session,
            path,
            view_once,
        } => (
            "send_file",
            engine
                .send_file(&session, &path, view_once)
                .await
                .map(|id| json!({"id": id})),
        ),
        Command::SendPhoto {
            session,
            camera,
            view_once,
        } => (
            "send_photo",
            engine
                .send_photo(&session, camera, view_once)
                .await
                .map(|id| json!({"id": id})),
        ),
        Command::Attachments { session } => (
            "attachments",
            engine
                .attachments(&session)
                .await
                .map(|a| json!({"attachments": a})),
        ),
        Command::Attachment { session, id } => (
            "attachment",
            engine.attachment(&session, id).await.map(bytes_reply),
        ),
        Command::OpenViewOnce { session, id } => (
            "open_view_once",
            engine.open_view_once(&session, id).await.map(bytes_reply),
        ),
        Command::Save { session, id, path } => (
            "save",
            engine
                .save_attachment(&session, id, &path)
                .await
                .map(|_| json!({})),
        ),
        Command::CancelTransfer { session, id } => (
            "cancel_transfer",
            engine
                .cancel_transfer(&session, id)
                .await
                .map(|_| json!({})),
        ),
        Command::SetTimer { session, seconds } => (
            "set_timer",
            engine.set_timer(&session, seconds).await.map(|_| json!({})),
        ),
        Command::SetChatLimits { lines, mb } => (
            "set_chat_limits",
            engine.set_chat_limits(lines, mb).map(|_| json!({})),
        ),
        Command::SetMaxFileMb { mb } => (
            "set_max_file_mb",
            engine.set_max_file_mb(mb).map(|_| json!({})),
        ),
        Command::Lookup { username, code } => (
            "lookup",
            match anonchat_proto::Username::parse(&username) {
                Ok(u) => engine
                    .lookup(&u, code.as_deref())
                    .await
                    .map(|(_, online)| json!({"username": username, "online": online})),
                Err(e) => Err(e.into()),
            },
        ),
        Command::AddLink { link } => (
            "add_link",
            engine
                .add_by_link(&link)
                .await
                .map(|(u, sn)| json!({"username": u, "safety_number": sn})),
        ),
        Command::Cameras => (
            "cameras",
            engine.cameras().await.map(|c| json!({"cameras": c})),
        ),
        Command::ScanContact { camera } => ("scan_contact", scan_and_add(engine, camera).await),
        Command::StopScan => {
            engine.stop_scan();
            ("stop_scan", Ok(json!({})))
        }
        Command::SetMode {
            mode,
            always_require_code,
            format,
        } => (
            "set_mode",
            engine
                .set_mode(mode, always_require_code, format)
                .await
                .map(|_| json!({})),
        ),
        Command::GetMode => ("get_mode", engine.get_mode().await.map(|m| json!(m))),
        Command::SetPresence { presence } => (
            "set_presence",
            engine.set_presence(presence).await.map(|_| json!({})),
        ),
        Command::Network => ("network", Ok(json!(engine.network()))),
        Command::SetHideIp { hide } => (
            "set_hide_ip",
            engine.set_hide_ip(hide).map(|_| json!(engine.network())),
        ),
        Command::Code => ("code", engine.code().await.map(|c| json!(c))),
        Command::Qr { text, png } => (
            "qr",
            if png {
                anonchat_client::qr::png(&text)
                    .map(|b| json!({"png_base64": anonchat_proto::bytes::encode_b64(&b)}))
            } else {
                anonchat_client::qr::svg(&text).map(|s| json!({"svg": s}))
            },
        ),
        Command::DeleteAccount => (
            "delete_account",
            engine.delete_account().await.map(|_| json!({})),
        ),
        Command::SetStaticCode { code } => (
            "set_static_code",
            engine
                .set_static_code(code.as_deref())
                .await
                .map(|_| json!({})),
        ),
        Command::RotateCode => ("rotate_code", engine.rotate_code().await.map(|_| json!({}))),
        Command::Search { prefix } => (
            "search",
            engine.search(&prefix).await.map(|u| json!({"users": u})),
        ),
        Command::EnrollOpen => ("enroll_open", engine.enroll_open().await.map(|v| json!(v))),
        Command::Enroll { code } => ("enroll", engine.enroll(&code).await.map(|v| json!(v))),
        Command::EnrollApprove {
            device_id,
            fingerprint,
        } => (
            "enroll_approve",
            engine
                .enroll_approve(&device_id, &fingerprint)
                .await
                .map(|_| json!({"device_id": device_id})),
        ),
        Command::EnrollDecline { device_id } => (
            "enroll_decline",
            engine.enroll_decline(&device_id).await.map(|_| json!({})),
        ),
        Command::Devices => (
            "devices",
            engine.devices().await.map(|d| json!({"devices": d})),
        ),
        Command::RevokeDevice { device_id } => (
            "revoke_device",
            engine.revoke_device(&device_id).await.map(|_| json!({})),
        ),
        Command::RotateAccountKey => (
            "rotate_account_key",
            engine.rotate_account_key().await.map(|v| json!(v)),
        ),
        Command::Block { username } => (
            "block",
            engine
                .block(&username)
                .map(|_| json!({"username": username})),
        ),
        Command::Unblock { username } => (
            "unblock",
            engine
                .unblock(&username)
                .map(|_| json!({"username": username})),
        ),
        Command::Blocked => ("blocked", Ok(json!({"blocked": engine.blocked()}))),
        Command::Panic => {
            engine.panic().await;
            ("panic", Ok(json!({})))
        }
        Command::Quit => ("quit", Ok(json!({}))),
    };
    match result {
        Ok(extra) => ok(name, extra),
        Err(e) => json!({"reply": name, "ok": false, "error": e.to_string()}),
    }
}
