//! `Engine::execute`: each command to its engine call, each result to its reply.

use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{ApiError, Command, Reply};
use crate::Engine;

fn bytes_reply((meta, data): crate::session::AttachmentBytes) -> Value {
    json!({"meta": meta, "base64": anonchat_proto::bytes::encode_b64(&data)})
}

async fn scan_and_add(engine: &Engine, camera: u32) -> Result<Value, crate::ClientError> {
    let link = Zeroizing::new(engine.scan_contact(camera, |_| {}).await?);
    let (u, sn) = engine.add_by_link(&link).await?;
    Ok(json!({"username": u, "safety_number": sn}))
}

pub(super) fn ok(name: &str, extra: Value) -> Value {
    let mut v = json!({"reply": name, "ok": true});
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

impl Engine {
    /// Runs one command: the whole surface a front-end drives, with its reply.
    pub async fn execute(&self, cmd: Command) -> Reply {
        execute(self, cmd).await
    }
}

async fn execute(engine: &Engine, cmd: Command) -> Reply {
    // The one door: a locked profile takes nothing but unlock, its status, panic and quit.
    if !cmd.allowed_while_locked() {
        if let Err(e) = engine.check_unlocked() {
            return Reply {
                name: cmd.name(),
                result: Err(e.into()),
            };
        }
    }
    let (name, result): (&str, Result<Value, crate::ClientError>) = match cmd {
        Command::Register { username } => (
            "register",
            engine
                .register(&username)
                .await
                .map(|_| json!({"username": engine.username()})),
        ),
        Command::Whoami => (
            "whoami",
            Ok(json!({
                "username": engine.username(),
                "server": engine.server(),
                "share_link": engine.share_link(),
            })),
        ),
        Command::Connect => ("connect", engine.connect().await.map(|_| json!({}))),
        Command::AddFriend { username, code } => (
            "add_friend",
            engine
                .add_friend(&username, code.as_deref())
                .await
                .map(|sn| json!({"username": username, "safety_number": sn})),
        ),
        Command::AcceptFriend {
            username,
            safety_number,
        } => (
            "accept_friend",
            engine
                .accept_friend(&username, &safety_number)
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
        Command::FriendRequests => {
            let list: Vec<Value> = engine
                .friend_requests()
                .into_iter()
                .map(|(from, sn)| json!({"from": from, "safety_number": sn}))
                .collect();
            ("friend_requests", Ok(json!({"requests": list})))
        }
        Command::IncomingRings => {
            let list: Vec<Value> = engine
                .incoming_rings()
                .into_iter()
                .map(|(ring_id, from)| json!({"ring_id": ring_id, "from": from}))
                .collect();
            ("incoming_rings", Ok(json!({"rings": list})))
        }
        Command::CheckUsername { username } => (
            "check_username",
            anonchat_proto::Username::parse(&username)
                .map(|u| json!({"username": u.to_string()}))
                .map_err(Into::into),
        ),
        Command::SafetyNumber { username } => (
            "safety_number",
            engine
                .safety_number(&username)
                .map(|sn| json!({"username": username, "safety_number": sn})),
        ),
        Command::MarkVerified {
            username,
            safety_number,
        } => (
            "mark_verified",
            engine
                .mark_verified(&username, &safety_number)
                .await
                .map(|_| json!({})),
        ),
        Command::SetPasscode { passcode } => (
            "set_passcode",
            engine.set_passcode(passcode).await.map(|_| json!({})),
        ),
        Command::Unlock { passcode } => {
            ("unlock", engine.unlock(passcode).await.map(|_| json!({})))
        }
        Command::LockStatus => ("lock_status", Ok(json!(engine.lock_status()))),
        Command::TrustServerKey { fingerprint } => (
            "trust_server_key",
            engine
                .trust_server_key(&fingerprint)
                .await
                .map(|_| json!({})),
        ),
        Command::ServerKey => (
            "server_key",
            Ok(json!({"fingerprint": engine.server_key()})),
        ),
        Command::TrustNewKey {
            username,
            safety_number,
        } => (
            "trust_new_key",
            engine
                .trust_new_key(&username, &safety_number)
                .await
                .map(|_| json!({})),
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
                .map(|s| json!({"session": session, "id": s.id, "expires_in_ms": s.expires_in_ms})),
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
                .map(|s| json!({"id": s.id, "expires_in_ms": s.expires_in_ms})),
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
                .map(|s| json!({"id": s.id, "expires_in_ms": s.expires_in_ms})),
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
            engine.set_chat_limits(lines, mb).await.map(|_| json!({})),
        ),
        Command::SetMaxFileMb { mb } => (
            "set_max_file_mb",
            engine.set_max_file_mb(mb).await.map(|_| json!({})),
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
            engine
                .set_hide_ip(hide)
                .await
                .map(|_| json!(engine.network())),
        ),
        Command::Capture => ("capture", Ok(json!(engine.capture()))),
        Command::SetCaptureProtection { on } => (
            "set_capture_protection",
            engine.set_capture_protection(on).await.map(|c| json!(c)),
        ),
        Command::Code => ("code", engine.code().await.map(|c| json!(c))),
        Command::Qr { text, png } => (
            "qr",
            if png {
                crate::qr::png(&text)
                    .map(|b| json!({"png_base64": anonchat_proto::bytes::encode_b64(&b)}))
            } else {
                crate::qr::svg(&text).map(|s| json!({"svg": s}))
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
        Command::RetireThisDevice => (
            "retire_this_device",
            engine
                .retire_this_device(std::time::Duration::from_secs(5))
                .await
                .map(|r| json!(r)),
        ),
        Command::RotateAccountKey { keep } => (
            "rotate_account_key",
            engine.rotate_account_key(&keep).await.map(|v| json!(v)),
        ),
        Command::Block { username } => (
            "block",
            engine
                .block(&username)
                .await
                .map(|_| json!({"username": username})),
        ),
        Command::Unblock { username } => (
            "unblock",
            engine
                .unblock(&username)
                .await
                .map(|_| json!({"username": username})),
        ),
        Command::Blocked => ("blocked", Ok(json!({"blocked": engine.blocked()}))),
        Command::Panic => {
            engine.panic().await;
            ("panic", Ok(json!({})))
        }
        Command::Quit => ("quit", Ok(json!({}))),
        group => super::groups::execute(engine, group).await,
    };
    Reply {
        name,
        result: result.map_err(ApiError::from),
    }
}
