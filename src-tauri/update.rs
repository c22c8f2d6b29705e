//! Signed updates (`tauri-plugin-updater`). Nothing is checked unless the user asks: "Check now",
//! or the setting "Check for updates when AnonChat starts" (off by default — a check tells the
//! update server this machine's IP address, that it runs AnonChat, and which version and system).
//! An update is installed only if its minisign signature verifies against the release key built
//! into the app *and* the signature names the version the server announced
//! (`requireSignedVersion`), so a server can neither forge an update nor pass an old signed one off
//! as new. The manifest and the download are bounded and held in memory (the app reads the
//! manifest itself and hands it to the plugin, whose own check would read any length); nothing is
//! installed before it verifies.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, Url};
use tauri_plugin_updater::{Update, UpdaterExt};

use crate::AppState;

const SETTING: &str = "updates";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("the update endpoint is not a URL: {0}")]
    Endpoint(String),
    #[error("checking for updates failed: {0}")]
    Check(String),
    #[error("no update was offered: check first")]
    NoOffer,
    #[error("downloading the update failed: {0}")]
    Download(String),
    #[error("the update is larger than {} MiB: refused", MAX_DOWNLOAD >> 20)]
    TooLarge,
    #[error("the update server's answer is larger than {} KiB: refused", MAX_MANIFEST >> 10)]
    ManifestTooLarge,
    #[error("This update is not signed by AnonChat's release key for version {version}; it was not installed ({why}).")]
    NotSigned { version: String, why: String },
    #[error("installing the update failed: {0}")]
    Install(String),
    #[error("saving the setting failed: {0}")]
    Setting(String),
}

impl UpdateError {
    /// The code the page decides on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Endpoint(_) | Self::NoOffer | Self::Setting(_) => "bad_input",
            Self::Check(_) | Self::Download(_) | Self::ManifestTooLarge => "unavailable",
            Self::TooLarge | Self::NotSigned { .. } => "update_not_signed",
            Self::Install(_) => "update_failed",
        }
    }
}
/// No release comes near this; a server sending more is refused before it fills memory.
const MAX_DOWNLOAD: usize = 512 << 20;
/// A release manifest is a few hundred bytes per platform.
const MAX_MANIFEST: usize = 64 << 10;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpdateSettings {
    pub check_at_start: bool,
}

/// What Settings shows: the choice, and whom a check talks to.
#[derive(Serialize)]
pub struct UpdateView {
    pub check_at_start: bool,
    pub server: String,
    pub version: String,
    /// An update found earlier (by the check at start) and not installed yet.
    pub offer: Option<Offer>,
}

/// An update the server offered and the user may install.
#[derive(Serialize, Clone)]
pub struct Offer {
    pub version: String,
    pub notes: Option<String>,
}

/// The update last offered: installing takes it from here, so the page never names a URL.
#[derive(Default)]
pub struct Pending(Mutex<Option<Update>>);

/// The plugin with the release key from `tauri.conf.json`. A debug build takes a test key from
/// the environment, so the tests can sign updates; a release build never does.
pub fn plugin() -> tauri::plugin::TauriPlugin<tauri::Wry, tauri_plugin_updater::Config> {
    #[allow(unused_mut)]
    let mut builder = tauri_plugin_updater::Builder::new();
    #[cfg(debug_assertions)]
    if let Ok(key) = std::env::var("ANONCHAT_TEST_UPDATE_PUBKEY") {
        builder = builder.pubkey(key);
    }
    builder.build()
}

fn endpoint(app: &AppHandle) -> Result<Option<Url>, UpdateError> {
    match &app.state::<AppState>().update_endpoint {
        Some(e) => Url::parse(e)
            .map(Some)
            .map_err(|e| UpdateError::Endpoint(e.to_string())),
        None => Ok(None),
    }
}

fn updater(app: &AppHandle) -> Result<tauri_plugin_updater::Updater, UpdateError> {
    // Only the plugin's rules and its install are used (the manifest and the download are ours),
    // but it refuses to build without an endpoint: `--update-endpoint` counts when the config has none.
    let mut builder = app.updater_builder();
    if let Some(url) = endpoint(app)? {
        builder = builder
            .endpoints(vec![url])
            .map_err(|e| UpdateError::Endpoint(e.to_string()))?;
    }
    builder
        .build()
        .map_err(|e| UpdateError::Check(e.to_string()))
}

/// Where a check asks: `--update-endpoint`, else the first endpoint of `tauri.conf.json`.
fn manifest_url(app: &AppHandle) -> Result<Option<Url>, UpdateError> {
    let configured = || {
        app.config()
            .plugins
            .0
            .get("updater")
            .and_then(|u| u.get("endpoints"))
            .and_then(|e| e.get(0))
            .and_then(|e| e.as_str())
            .and_then(|e| Url::parse(e).ok())
    };
    Ok(endpoint(app)?.or_else(configured))
}

/// The host a check talks to, as Settings names it.
fn server(app: &AppHandle) -> String {
    manifest_url(app)
        .ok()
        .flatten()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "no update server".into())
}

/// The release manifest, read up to `MAX_MANIFEST` (`None`: the server says there is nothing).
async fn fetch_manifest(url: Url) -> Result<Option<serde_json::Value>, UpdateError> {
    let failed = |e: reqwest::Error| UpdateError::Check(e.to_string());
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(failed)?;
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(failed)?;
    if response.status() == reqwest::StatusCode::NO_CONTENT {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_MANIFEST {
            return Err(UpdateError::ManifestTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| UpdateError::Check(format!("the answer is not a release manifest ({e})")))
}

pub fn saved(app: &AppHandle) -> UpdateSettings {
    app.state::<AppState>()
        .engine
        .ui_setting(SETTING)
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

pub fn view(app: &AppHandle) -> UpdateView {
    UpdateView {
        check_at_start: saved(app).check_at_start,
        server: server(app),
        version: app.package_info().version.to_string(),
        offer: pending(app).as_ref().map(offer),
    }
}

pub async fn change(app: &AppHandle, settings: UpdateSettings) -> Result<(), UpdateError> {
    let json = serde_json::to_string(&settings).map_err(|e| UpdateError::Setting(e.to_string()))?;
    app.state::<AppState>()
        .engine
        .set_ui_setting(SETTING, &json)
        .await
        .map_err(|e| UpdateError::Setting(e.to_string()))
}

fn offer(u: &Update) -> Offer {
    Offer {
        version: u.version.clone(),
        notes: u.body.clone(),
    }
}

/// Asks the update server; an offer is kept for `install`.
pub async fn check(app: &AppHandle) -> Result<Option<Offer>, UpdateError> {
    let url = manifest_url(app)?
        .ok_or_else(|| UpdateError::Endpoint("no update server is configured".into()))?;
    let found = match fetch_manifest(url).await? {
        // The plugin's own rules from here: the target, the version comparison, and (always, for
        // a manifest handed in) a signature that must name the announced version.
        Some(manifest) => updater(app)?
            .restore_update(manifest)
            .map_err(|e| UpdateError::Check(e.to_string()))?,
        None => None,
    };
    let offer = found.as_ref().map(offer);
    *pending(app) = found;
    Ok(offer)
}

/// At start, if the user chose so: an offer goes to the page as the event `update`.
pub fn check_at_start(app: &AppHandle) {
    if !saved(app).check_at_start {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        match check(&app).await {
            Ok(Some(offer)) => {
                use tauri::Emitter;
                let _ = app.emit("update", offer);
            }
            Ok(None) => {}
            Err(e) => tracing::info!(error = %e, "no update check"),
        }
    });
}

fn pending(app: &AppHandle) -> std::sync::MutexGuard<'_, Option<Update>> {
    let p = app.state::<Pending>().inner();
    // A panic while holding it left plain data behind: go on with it.
    p.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// Downloads the offered update, verifies its signature and version, and installs it (it takes
/// effect at the next start). A failed check leaves the installed app untouched.
pub async fn install(app: &AppHandle) -> Result<String, UpdateError> {
    let update = pending(app).clone().ok_or(UpdateError::NoOffer)?;
    let bytes = download(&update).await?;
    // `install` verifies the signature and the signed version before it touches anything.
    update.install(&bytes).map_err(|e| match e {
        tauri_plugin_updater::Error::Minisign(_)
        | tauri_plugin_updater::Error::MissingSignedVersion
        | tauri_plugin_updater::Error::SignedVersionMismatch { .. }
        | tauri_plugin_updater::Error::Base64(_)
        | tauri_plugin_updater::Error::SignatureUtf8(_) => UpdateError::NotSigned {
            version: update.version.clone(),
            why: e.to_string(),
        },
        e => UpdateError::Install(e.to_string()),
    })?;
    *pending(app) = None;
    Ok(update.version)
}

async fn download(update: &Update) -> Result<Vec<u8>, UpdateError> {
    let failed = |e: reqwest::Error| UpdateError::Download(e.to_string());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(failed)?;
    let mut response = client
        .get(update.download_url.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(failed)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if bytes.len() + chunk.len() > MAX_DOWNLOAD {
            return Err(UpdateError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
