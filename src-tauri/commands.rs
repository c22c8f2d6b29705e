//! Tauri commands: `execute`, the engine's one command surface (the list the CLI drives too), and
//! the few only the shell can do. Errors go to the UI as `{ code, message }`; user-facing wording
//! comes from the engine ("User not found or offline.").

use anonchat_client::api::{ApiError, Command};
use anonchat_client::attachments::NewAttachment;
use anonchat_client::session::Sent;
use anonchat_client::ClientError;
use anonchat_proto::frames::{AttachmentKind, SecretText};
use serde::Serialize;
use tauri::{AppHandle, Manager, State};

use crate::AppState;

/// Errors reach the page as `{ code, message }` (the engine's `ApiError`): the UI decides on the
/// code and shows the message.
type Res<T> = Result<T, ApiError>;

fn err(e: ClientError) -> ApiError {
    e.into()
}

/// The shell's own door, as the engine's `execute` has one: a locked app takes none of the
/// shell's setters, transfers or updates (only whoami, panic, activity and the views).
fn unlocked(state: &AppState) -> Res<()> {
    state.engine.check_unlocked().map_err(err)
}

fn bad_input(message: String) -> ApiError {
    ApiError {
        code: "bad_input",
        message,
    }
}

/// The page's one door to the engine: the same command list, and the same replies, as the CLI's
/// JSON mode (`anonchat_client::api`). What only the shell can do (window, dialogs, raw bytes, the
/// panic path that also hides the window) has its own commands below.
#[tauri::command(rename_all = "snake_case")]
async fn execute(
    app: AppHandle,
    state: State<'_, AppState>,
    command: serde_json::Value,
) -> Res<serde_json::Value> {
    // Parsed here rather than by Tauri so a malformed command gets a `bad_input` code too.
    let command: Command =
        serde_json::from_value(command).map_err(|e| bad_input(format!("bad command: {e}")))?;
    if command.names_a_path() {
        return Err(ApiError {
            code: "refused",
            message: "the page never names a file: files are picked in the file dialog".into(),
        });
    }
    match command {
        Command::Panic => panic(app)
            .await
            .map(|us| serde_json::json!({ "micros": us })),
        Command::Quit => Err(ApiError {
            code: "refused",
            message: "quit from the tray".into(),
        }),
        command => {
            let unlocking = matches!(command, Command::Unlock { .. });
            let result = state.engine.execute(command).await.result;
            if unlocking && result.is_ok() {
                // Unsealed: the profile's own panic shortcut and auto-lock settings apply now.
                crate::shortcut::reload(&app);
                crate::autolock::reload(&app);
            }
            result
        }
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
    panic_quits: bool,
    panic_revokes: bool,
    /// This is a burner identity (deleted when the app quits).
    burner: bool,
}

#[tauri::command(rename_all = "snake_case")]
fn whoami(app: AppHandle, state: State<'_, AppState>) -> Me {
    let e = &state.engine;
    // A locked app tells the page nothing about the account (the lock page needs none of it).
    let open = e.check_unlocked().is_ok();
    Me {
        username: e.username().filter(|_| open),
        share_link: e.share_link().filter(|_| open),
        server: e.server().filter(|_| open),
        profile: state.profile.clone(),
        connected: e.is_connected(),
        unprotected: !e.caps().screen_protection,
        panic_shortcut: crate::shortcut::current(&app),
        notify_show_name: e
            .ui_setting(crate::notify::SHOW_NAME)
            .is_some_and(|v| v == "true"),
        panic_quits: e
            .ui_setting(crate::panic::QUITS)
            .is_some_and(|v| v == "true"),
        panic_revokes: e
            .ui_setting(crate::panic::REVOKES)
            .is_some_and(|v| v == "true"),
        burner: state.burner,
    }
}

/// Scans for a contact QR; small JPEG previews go to `preview` as raw bytes while it looks.
#[tauri::command(rename_all = "snake_case")]
async fn scan_contact(
    state: State<'_, AppState>,
    camera: u32,
    preview: tauri::ipc::Channel,
) -> Res<String> {
    unlocked(&state)?;
    state
        .engine
        .scan_contact(camera, move |jpeg| {
            let _ = preview.send(tauri::ipc::InvokeResponseBody::Raw(jpeg.to_vec()));
        })
        .await
        .map_err(err)
}

/// What an attachment the page sends is, from its headers (`x-name` URI-encoded, `x-mime`,
/// `x-kind`, `x-view-once`), with the raw request body as its bytes.
fn picked(request: &tauri::ipc::Request<'_>) -> Res<NewAttachment> {
    let tauri::ipc::InvokeBody::Raw(bytes) = request.body() else {
        return Err(bad_input("expected the file's bytes".into()));
    };
    let kind = match header(request, "x-kind").as_str() {
        "image" => AttachmentKind::Image,
        "photo" => AttachmentKind::Photo,
        _ => AttachmentKind::File,
    };
    Ok(NewAttachment {
        name: SecretText::new(percent_decode(&header(request, "x-name"))),
        mime: header(request, "x-mime"),
        kind,
        view_once: header(request, "x-view-once") == "true",
        data: zeroize::Zeroizing::new(bytes.clone()),
    })
}

fn header(request: &tauri::ipc::Request<'_>, k: &str) -> String {
    request
        .headers()
        .get(k)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// An attachment the user picked in the page, to the chat `x-session`.
#[tauri::command(rename_all = "snake_case")]
async fn send_attachment(
    state: State<'_, AppState>,
    request: tauri::ipc::Request<'_>,
) -> Res<Sent> {
    unlocked(&state)?;
    let new = picked(&request)?;
    state
        .engine
        .send_attachment(&header(&request, "x-session"), new)
        .await
        .map_err(err)
}

/// An attachment the user picked in the page, to every connected member of the group `x-group`:
/// what each member's copy is called on its link, by member.
#[tauri::command(rename_all = "snake_case")]
async fn send_group_attachment(
    state: State<'_, AppState>,
    request: tauri::ipc::Request<'_>,
) -> Res<serde_json::Value> {
    unlocked(&state)?;
    let new = picked(&request)?;
    let sent = state
        .engine
        .group_send_attachment(&header(&request, "x-group"), new)
        .await
        .map_err(err)?;
    // The shape of the `group_send*` commands' answers: `{"sent": {member: {id, expires_in_ms}}}`.
    let sent: std::collections::BTreeMap<String, Sent> = sent.into_iter().collect();
    Ok(serde_json::json!({ "sent": sent }))
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

/// An attachment's bytes, raw (the page shows images from an object URL).
#[tauri::command(rename_all = "snake_case")]
async fn attachment(
    state: State<'_, AppState>,
    session: String,
    id: u64,
) -> Res<tauri::ipc::Response> {
    unlocked(&state)?;
    let (_, data) = state.engine.attachment(&session, id).await.map_err(err)?;
    Ok(tauri::ipc::Response::new(data.to_vec()))
}

#[tauri::command(rename_all = "snake_case")]
async fn open_view_once(
    state: State<'_, AppState>,
    session: String,
    id: u64,
) -> Res<tauri::ipc::Response> {
    unlocked(&state)?;
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
    unlocked(&state)?;
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

/// The panic button: the same path as the shortcut and the tray.
#[tauri::command(rename_all = "snake_case")]
async fn panic(app: AppHandle) -> Res<u64> {
    Ok(crate::panic::run(&app).await.as_micros() as u64)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_panic_shortcut(app: AppHandle, shortcut: String) -> Res<()> {
    unlocked(&app.state::<AppState>())?;
    crate::shortcut::change(&app, &shortcut)
        .await
        .map_err(bad_input)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_notify_show_name(state: State<'_, AppState>, show: bool) -> Res<()> {
    unlocked(&state)?;
    state
        .engine
        .set_ui_setting(
            crate::notify::SHOW_NAME,
            if show { "true" } else { "false" },
        )
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_panic_quits(state: State<'_, AppState>, quits: bool) -> Res<()> {
    unlocked(&state)?;
    state
        .engine
        .set_ui_setting(crate::panic::QUITS, if quits { "true" } else { "false" })
        .await
        .map_err(err)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_panic_revokes(state: State<'_, AppState>, revokes: bool) -> Res<()> {
    unlocked(&state)?;
    if revokes {
        // Turning it on arms a deletion: the passcode, like deleting the account.
        state.engine.sensitive_allowed().map_err(err)?;
    }
    state
        .engine
        .set_ui_setting(
            crate::panic::REVOKES,
            if revokes { "true" } else { "false" },
        )
        .await
        .map_err(err)
}

/// Keeps the window out of screenshots and recordings, or stops (where the OS can do it). Peers
/// never see a protection the window lacks: turned off, they are told before the window changes;
/// turned on, the window changes before they are told.
#[tauri::command(rename_all = "snake_case")]
async fn set_capture_protection(
    app: AppHandle,
    state: State<'_, AppState>,
    on: bool,
) -> Res<anonchat_client::engine::CaptureView> {
    unlocked(&state)?;
    let window = app.get_webview_window(crate::window::LABEL);
    let protect = |on: bool| match &window {
        Some(w) => w
            .set_content_protected(on)
            .map_err(|e| bad_input(e.to_string())),
        None => Ok(()),
    };
    if on {
        protect(true)?;
    }
    let view = state.engine.set_capture_protection(on).await.map_err(err)?;
    if !on {
        protect(false)?;
    }
    Ok(view)
}

/// Starts a burner identity beside this one: the app again, as a process of its own with a fresh
/// throwaway profile on the same server; it deletes itself when it quits or after `minutes`.
#[tauri::command(rename_all = "snake_case")]
fn new_burner(state: State<'_, AppState>, minutes: Option<u64>) -> Res<()> {
    unlocked(&state)?;
    let exe = std::env::current_exe().map_err(|e| bad_input(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--burner");
    if let Some(m) = minutes.filter(|m| *m > 0) {
        cmd.args(["--burner-minutes", &m.to_string()]);
    }
    if let Some(s) = state.server.clone().or_else(|| state.engine.server()) {
        cmd.args(["--server", &s]);
    }
    if let Some(ca) = &state.ca_cert {
        cmd.arg("--ca-cert").arg(ca);
    }
    // The server's key this profile pinned: the burner refuses any other from its first connection.
    if let Some(pin) = state.engine.server_key() {
        cmd.args(["--server-pin", &pin.replace(' ', "")]);
    }
    if state.insecure_plain_http_on_lan {
        cmd.arg("--insecure-plain-http-on-lan");
    }
    // Its own profile, whatever this one's came from.
    cmd.env_remove("ANONCHAT_PROFILE");
    // Nobody drives it over WebDriver: incognito, as every other run.
    cmd.env_remove("TAURI_WEBVIEW_AUTOMATION");
    let mut child = cmd.spawn().map_err(|e| bad_input(e.to_string()))?;
    // Reaped when it ends, so no zombie waits for this app to quit.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Copies a code or link the page shows; it leaves the clipboard again after a while. Returns
/// after how many seconds.
#[tauri::command(rename_all = "snake_case")]
fn copy(app: AppHandle, text: String) -> Res<u64> {
    unlocked(&app.state::<AppState>())?;
    if text.len() > 4096 {
        return Err(bad_input("only codes and links are copied".into()));
    }
    crate::clipboard::copy(&app, text)
        .map(|d| d.as_secs())
        .map_err(bad_input)
}

/// The user did something in the window: the idle timeout starts again.
#[tauri::command(rename_all = "snake_case")]
fn activity(app: AppHandle) {
    crate::autolock::input(&app);
}

#[tauri::command(rename_all = "snake_case")]
fn auto_lock(app: AppHandle) -> crate::idle::AutoLock {
    crate::autolock::current(&app)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_auto_lock(app: AppHandle, settings: crate::idle::AutoLock) -> Res<()> {
    unlocked(&app.state::<AppState>())?;
    crate::autolock::change(&app, settings)
        .await
        .map_err(bad_input)
}

fn update_error(e: crate::update::UpdateError) -> ApiError {
    ApiError {
        code: e.code(),
        message: e.to_string(),
    }
}

#[tauri::command(rename_all = "snake_case")]
fn updates(app: AppHandle) -> crate::update::UpdateView {
    crate::update::view(&app)
}

#[tauri::command(rename_all = "snake_case")]
async fn set_updates(app: AppHandle, settings: crate::update::UpdateSettings) -> Res<()> {
    unlocked(&app.state::<AppState>())?;
    crate::update::change(&app, settings)
        .await
        .map_err(update_error)
}

/// Asks the update server now (the user pressed "Check now").
#[tauri::command(rename_all = "snake_case")]
async fn check_update(app: AppHandle) -> Res<Option<crate::update::Offer>> {
    unlocked(&app.state::<AppState>())?;
    crate::update::check(&app).await.map_err(update_error)
}

/// Installs the update last offered, if its signature holds. Returns its version.
#[tauri::command(rename_all = "snake_case")]
async fn install_update(app: AppHandle) -> Res<String> {
    unlocked(&app.state::<AppState>())?;
    crate::update::install(&app).await.map_err(update_error)
}

/// Starts the app again (after an update): quitting wipes first, as always.
#[tauri::command(rename_all = "snake_case")]
fn restart(app: AppHandle) {
    app.request_restart();
}

pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        execute,
        whoami,
        scan_contact,
        send_attachment,
        send_group_attachment,
        attachment,
        open_view_once,
        save_attachment,
        panic,
        set_panic_shortcut,
        set_notify_show_name,
        set_panic_quits,
        set_panic_revokes,
        set_capture_protection,
        new_burner,
        activity,
        copy,
        auto_lock,
        set_auto_lock,
        updates,
        set_updates,
        check_update,
        install_update,
        restart,
        crate::page_wipe::hand_over,
        crate::page_wipe::take_over,
    ]
}
