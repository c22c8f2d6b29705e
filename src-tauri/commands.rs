//! Tauri commands: each forwards to one client-engine call (or, for panic and the shortcut, to the
//! shell's own one). Errors go to the UI as `{ code, message }`; user-facing wording comes from the
//! engine ("User not found or offline.").

use anonchat_client::api::ApiError;
use anonchat_client::attachments::NewAttachment;
use anonchat_client::engine::{DeviceView, EnrollView};
use anonchat_client::session::Sent;
use anonchat_client::{ClientError, CodeView, FriendView, ModeView};
use anonchat_proto::frames::{AttachmentKind, SecretText};
use anonchat_proto::fvc::CodeFormat;
use anonchat_proto::wire::{Mode, PresenceMode};
use anonchat_proto::Username;
use serde::Serialize;
use tauri::{AppHandle, State};

use crate::AppState;

/// Errors reach the page as `{ code, message }` (the engine's `ApiError`): the UI decides on the
/// code and shows the message.
type Res<T> = Result<T, ApiError>;

fn err(e: ClientError) -> ApiError {
    e.into()
}

fn bad_input(message: String) -> ApiError {
    ApiError {
        code: "bad_input",
        message,
    }
}

#[derive(Serialize)]
pub struct Me {
    username: Option<String>,
    /// The link that adds this account without a code (the engine makes it).
    share_link: Option<String>,
    server: Option<String>,
    profile: String,
    connected: bool,
    /// This device cannot keep screenshots out (Linux): the UI says so.
    unprotected: bool,
    panic_shortcut: String,
    notify_show_name: bool,
}

#[tauri::command(rename_all = "snake_case")]
fn whoami(app: AppHandle, state: State<'_, AppState>) -> Me {
    let e = &state.engine;
    Me {
        username: e.username(),
        share_link: e.share_link(),
        server: e.server(),
        profile: state.profile.clone(),
        connected: e.is_connected(),
        unprotected: !e.caps().screen_protection,
        panic_shortcut: crate::shortcut::current(&app),
        notify_show_name: e
            .ui_setting(crate::notify::SHOW_NAME)
            .is_some_and(|v| v == "true"),
    }
}

#[tauri::command(rename_all = "snake_case")]
fn lock_status(state: State<'_, AppState>) -> anonchat_client::engine::LockView {
    state.engine.lock_status()
}

/// The passcode travels as a zeroized string, never logged.
#[tauri::command(rename_all = "snake_case")]
async fn unlock(state: State<'_, AppState>, passcode: SecretText) -> Res<()> {
    state.engine.unlock(passcode).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_passcode(state: State<'_, AppState>, passcode: Option<SecretText>) -> Res<()> {
    state.engine.set_passcode(passcode).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn register(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.register(&username).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn connect(state: State<'_, AppState>) -> Res<()> {
    state.engine.connect().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_mode(state: State<'_, AppState>, mode: Mode, always_require_code: bool) -> Res<()> {
    state
        .engine
        .set_mode(mode, always_require_code, CodeFormat::default())
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn get_mode(state: State<'_, AppState>) -> Res<ModeView> {
    state.engine.get_mode().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_presence(state: State<'_, AppState>, presence: PresenceMode) -> Res<()> {
    state.engine.set_presence(presence).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
fn network(state: State<'_, AppState>) -> anonchat_client::engine::NetworkView {
    state.engine.network()
}

#[tauri::command(rename_all = "snake_case")]
fn set_hide_ip(state: State<'_, AppState>, hide: bool) -> Res<()> {
    state.engine.set_hide_ip(hide).map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn code(state: State<'_, AppState>) -> Res<CodeView> {
    state.engine.code().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn rotate_code(state: State<'_, AppState>) -> Res<()> {
    state.engine.rotate_code().await.map_err(err)
}

/// A QR code of `text` as an SVG document.
#[tauri::command(rename_all = "snake_case")]
fn qr_svg(text: String) -> Res<String> {
    anonchat_client::qr::svg(&text).map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn add_friend(
    state: State<'_, AppState>,
    username: String,
    code: Option<String>,
) -> Res<String> {
    let code = code.filter(|c| !c.trim().is_empty());
    state
        .engine
        .add_friend(username.trim(), code.as_deref())
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn add_link(state: State<'_, AppState>, link: String) -> Res<(String, String)> {
    state.engine.add_by_link(&link).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn cameras(state: State<'_, AppState>) -> Res<Vec<anonchat_client::camera::CameraView>> {
    state.engine.cameras().await.map_err(err)
}

/// Scans for a contact QR; small JPEG previews go to `preview` as raw bytes while it looks.
#[tauri::command(rename_all = "snake_case")]
async fn scan_contact(
    state: State<'_, AppState>,
    camera: u32,
    preview: tauri::ipc::Channel,
) -> Res<String> {
    state
        .engine
        .scan_contact(camera, move |jpeg| {
            let _ = preview.send(tauri::ipc::InvokeResponseBody::Raw(jpeg.to_vec()));
        })
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
fn stop_scan(state: State<'_, AppState>) {
    state.engine.stop_scan()
}

#[tauri::command(rename_all = "snake_case")]
async fn accept_friend(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.accept_friend(&username).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn decline_friend(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.decline_friend(&username).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn friends(state: State<'_, AppState>) -> Res<Vec<FriendView>> {
    state.engine.friends().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
fn friend_requests(state: State<'_, AppState>) -> Vec<(String, String)> {
    state.engine.friend_requests()
}

#[tauri::command(rename_all = "snake_case")]
fn incoming_rings(state: State<'_, AppState>) -> Vec<(String, String)> {
    state.engine.incoming_rings()
}

#[tauri::command(rename_all = "snake_case")]
fn safety_number(state: State<'_, AppState>, username: String) -> Res<String> {
    state.engine.safety_number(&username).map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
fn mark_verified(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.mark_verified(&username).map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn trust_new_key(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.trust_new_key(&username).await.map_err(err)
}

/// The user confirmed with the server's operator that its TLS key was replaced.
#[tauri::command(rename_all = "snake_case")]
fn trust_server_key(state: State<'_, AppState>) -> Res<()> {
    state.engine.trust_server_key().map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn ring(state: State<'_, AppState>, username: String, code: Option<String>) -> Res<String> {
    let code = code.filter(|c| !c.trim().is_empty());
    state
        .engine
        .ring(&username, code.as_deref())
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn answer(state: State<'_, AppState>, ring_id: String, accept: bool) -> Res<()> {
    state.engine.answer(&ring_id, accept).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn send_text(state: State<'_, AppState>, session: String, text: SecretText) -> Res<Sent> {
    state.engine.send_text(&session, text).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn typing(state: State<'_, AppState>, session: String) -> Res<()> {
    state.engine.typing(&session).await.map_err(err)
}

/// An attachment the user picked in the page: the bytes are the raw request body, what it is comes
/// in headers (`x-session`, `x-name` URI-encoded, `x-mime`, `x-kind`, `x-view-once`).
#[tauri::command(rename_all = "snake_case")]
async fn send_attachment(
    state: State<'_, AppState>,
    request: tauri::ipc::Request<'_>,
) -> Res<Sent> {
    let tauri::ipc::InvokeBody::Raw(bytes) = request.body() else {
        return Err(bad_input("expected the file's bytes".into()));
    };
    let header = |k: &str| {
        request
            .headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let kind = match header("x-kind").as_str() {
        "image" => AttachmentKind::Image,
        "photo" => AttachmentKind::Photo,
        _ => AttachmentKind::File,
    };
    let name = percent_decode(&header("x-name"));
    let new = NewAttachment {
        name: SecretText::new(name),
        mime: header("x-mime"),
        kind,
        view_once: header("x-view-once") == "true",
        data: zeroize::Zeroizing::new(bytes.clone()),
    };
    state
        .engine
        .send_attachment(&header("x-session"), new)
        .await
        .map_err(err)
}

/// `encodeURIComponent` undone (file names may hold any character).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tauri::command(rename_all = "snake_case")]
async fn send_photo(
    state: State<'_, AppState>,
    session: String,
    camera: u32,
    view_once: bool,
) -> Res<Sent> {
    state
        .engine
        .send_photo(&session, camera, view_once)
        .await
        .map_err(err)
}

/// An attachment's bytes, raw (the page shows images from an object URL).
#[tauri::command(rename_all = "snake_case")]
async fn attachment(
    state: State<'_, AppState>,
    session: String,
    id: u64,
) -> Res<tauri::ipc::Response> {
    let (_, data) = state.engine.attachment(&session, id).await.map_err(err)?;
    Ok(tauri::ipc::Response::new(data.to_vec()))
}

#[tauri::command(rename_all = "snake_case")]
async fn open_view_once(
    state: State<'_, AppState>,
    session: String,
    id: u64,
) -> Res<tauri::ipc::Response> {
    let (_, data) = state
        .engine
        .open_view_once(&session, id)
        .await
        .map_err(err)?;
    Ok(tauri::ipc::Response::new(data.to_vec()))
}

/// "Save as…": the native dialog picks the path; the engine writes there and nowhere else.
#[tauri::command(rename_all = "snake_case")]
async fn save_attachment(
    app: AppHandle,
    state: State<'_, AppState>,
    session: String,
    id: u64,
    name: String,
) -> Res<bool> {
    use tauri_plugin_dialog::DialogExt;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_file_name(&name)
        .save_file(move |p| {
            let _ = tx.send(p);
        });
    let Some(path) = rx.await.ok().flatten() else {
        return Ok(false); // The user closed the dialog.
    };
    let path = path.into_path().map_err(|e| bad_input(e.to_string()))?;
    state
        .engine
        .save_attachment(&session, id, &path)
        .await
        .map_err(err)?;
    Ok(true)
}

#[tauri::command(rename_all = "snake_case")]
async fn cancel_transfer(state: State<'_, AppState>, session: String, id: u64) -> Res<()> {
    state
        .engine
        .cancel_transfer(&session, id)
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_timer(state: State<'_, AppState>, session: String, seconds: u32) -> Res<()> {
    state.engine.set_timer(&session, seconds).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn leave(state: State<'_, AppState>, session: String) -> Res<()> {
    state.engine.leave(&session).await.map_err(err)
}

/// The panic button: the same path as the shortcut and the tray.
#[tauri::command(rename_all = "snake_case")]
async fn panic(app: AppHandle) -> Res<u64> {
    Ok(crate::panic::run(&app).await.as_micros() as u64)
}

#[tauri::command(rename_all = "snake_case")]
fn set_panic_shortcut(app: AppHandle, shortcut: String) -> Res<()> {
    crate::shortcut::change(&app, &shortcut).map_err(bad_input)
}

#[tauri::command(rename_all = "snake_case")]
fn set_notify_show_name(state: State<'_, AppState>, show: bool) -> Res<()> {
    state
        .engine
        .set_ui_setting(
            crate::notify::SHOW_NAME,
            if show { "true" } else { "false" },
        )
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn devices(state: State<'_, AppState>) -> Res<Vec<DeviceView>> {
    state.engine.devices().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn enroll_open(state: State<'_, AppState>) -> Res<EnrollView> {
    state.engine.enroll_open().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn enroll_approve(
    state: State<'_, AppState>,
    device_id: String,
    fingerprint: String,
) -> Res<()> {
    state
        .engine
        .enroll_approve(&device_id, &fingerprint)
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn enroll_decline(state: State<'_, AppState>, device_id: String) -> Res<()> {
    state.engine.enroll_decline(&device_id).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn revoke_device(state: State<'_, AppState>, device_id: String) -> Res<()> {
    state.engine.revoke_device(&device_id).await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn rotate_account_key(
    state: State<'_, AppState>,
) -> Res<anonchat_client::engine::RotationView> {
    state.engine.rotate_account_key().await.map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
fn block(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.block(&username).map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
fn unblock(state: State<'_, AppState>, username: String) -> Res<()> {
    state.engine.unblock(&username).map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn delete_account(state: State<'_, AppState>) -> Res<()> {
    state.engine.delete_account().await.map_err(err)
}

/// Checks a username's form before anything is sent (the same rule the server applies).
#[tauri::command(rename_all = "snake_case")]
fn check_username(username: String) -> Res<String> {
    Username::parse(&username)
        .map(|u| u.to_string())
        .map_err(|e| err(e.into()))
}

pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        whoami,
        register,
        connect,
        set_mode,
        get_mode,
        set_presence,
        network,
        set_hide_ip,
        code,
        rotate_code,
        qr_svg,
        add_friend,
        add_link,
        cameras,
        scan_contact,
        stop_scan,
        accept_friend,
        decline_friend,
        friends,
        safety_number,
        mark_verified,
        trust_new_key,
        trust_server_key,
        lock_status,
        unlock,
        set_passcode,
        ring,
        incoming_rings,
        friend_requests,
        answer,
        send_text,
        typing,
        leave,
        send_attachment,
        send_photo,
        attachment,
        open_view_once,
        save_attachment,
        cancel_transfer,
        set_timer,
        panic,
        set_panic_shortcut,
        set_notify_show_name,
        devices,
        enroll_open,
        enroll_approve,
        enroll_decline,
        revoke_device,
        rotate_account_key,
        block,
        unblock,
        delete_account,
        check_username,
    ]
}
