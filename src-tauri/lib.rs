//! The AnonChat desktop app: a thin Tauri shell over the client engine. Each command forwards to one
//! engine call (`commands.rs`), engine events go to the UI as the Tauri event `engine`, and the shell
//! adds only what a desktop needs: the tray (`tray.rs`), the global panic shortcut (`shortcut.rs`),
//! panic itself (`panic.rs`), the wipes nobody asked for — idle, screen lock, sleep (`idle.rs`,
//! `autolock.rs`, `oslock.rs`), content-free notifications (`notify.rs`), one instance per profile
//! (`instance.rs`) and the window (`window.rs`).

mod autolock;
mod clipboard;
mod commands;
mod idle;
mod instance;
mod notify;
mod oslock;
mod page_wipe;
mod panic;
mod residue;
pub mod scrub;
mod shortcut;
mod tray;
mod update;
mod window;

use anonchat_client::events::EventReceiver;
use anonchat_client::{platform_caps, Engine, EngineConfig, Keychain};
use anyhow::Context;
use tauri::Manager;

/// A mutex of plain data: a panic while it was held left that data behind, and it is used as is.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every command and handler reaches through Tauri's state.
pub struct AppState {
    pub engine: Engine,
    /// The profile's name, shown in the window title.
    pub profile: String,
    /// A burner identity: deleted when the app quits or its lifetime ends.
    pub burner: bool,
    /// How the app was started (a burner started from it gets the same server and CA).
    pub server: Option<String>,
    pub ca_cert: Option<std::path::PathBuf>,
    pub insecure_plain_http_on_lan: bool,
    /// `--update-endpoint URL`: where update checks go instead of `tauri.conf.json`'s endpoint.
    pub update_endpoint: Option<String>,
}

/// The profile and server come from the environment (or `--profile NAME --server URL`), like the CLI.
struct Options {
    profile: String,
    server: Option<String>,
    ca_cert: Option<std::path::PathBuf>,
    /// `--insecure-plain-http-on-lan`: plain http:// to another machine (test networks only).
    insecure_plain_http_on_lan: bool,
    /// `--burner [--burner-minutes N]`: a throwaway identity, with its lifetime if one was chosen
    /// (N may be a fraction: 0.5 is thirty seconds).
    burner: bool,
    burner_lifetime: Option<std::time::Duration>,
    /// `--server-pin FINGERPRINT`: the server's TLS key a new profile expects (a burner gets its
    /// main profile's).
    server_pin: Option<[u8; 32]>,
    update_endpoint: Option<String>,
}

/// A burner's lifetime from `--burner-minutes`: more than nothing, at most a week; anything else
/// (not a number, negative, endless) means no lifetime but the app's run.
fn lifetime(minutes: &str) -> Option<std::time::Duration> {
    let m: f64 = minutes.parse().ok()?;
    (m > 0.0 && m <= 7.0 * 24.0 * 60.0).then(|| std::time::Duration::from_secs_f64(m * 60.0))
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        profile: std::env::var("ANONCHAT_PROFILE").unwrap_or_else(|_| "default".into()),
        server: std::env::var("ANONCHAT_SERVER").ok(),
        ca_cert: std::env::var_os("ANONCHAT_CA_CERT").map(Into::into),
        insecure_plain_http_on_lan: std::env::var_os("ANONCHAT_INSECURE_PLAIN_HTTP_ON_LAN")
            .is_some_and(|v| v == "1" || v == "true"),
        burner: false,
        burner_lifetime: None,
        server_pin: None,
        update_endpoint: std::env::var("ANONCHAT_UPDATE_ENDPOINT").ok(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => o.profile = args.next().unwrap_or(o.profile),
            "--server" => o.server = args.next().or(o.server),
            "--ca-cert" => o.ca_cert = args.next().map(Into::into).or(o.ca_cert),
            "--insecure-plain-http-on-lan" => o.insecure_plain_http_on_lan = true,
            "--burner" => o.burner = true,
            "--burner-minutes" => o.burner_lifetime = args.next().and_then(|m| lifetime(&m)),
            "--server-pin" => {
                o.server_pin = args
                    .next()
                    .and_then(|f| anonchat_client::trust::parse_fingerprint(&f))
            }
            "--update-endpoint" => o.update_endpoint = args.next().or(o.update_endpoint),
            _ => {}
        }
    }
    o
}

fn open_engine(o: &Options) -> anyhow::Result<(Engine, EventReceiver)> {
    tauri::async_runtime::block_on(open_profile(o, &o.profile, o.server.clone()))
        .context("opening the profile")
}

async fn open_profile(
    o: &Options,
    profile: &str,
    server: Option<String>,
) -> Result<(Engine, EventReceiver), anonchat_client::ClientError> {
    let extra_ca_pem = match &o.ca_cert {
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            anonchat_client::ClientError::Refused(format!("reading {}: {e}", p.display()))
        })?),
        None => None,
    };
    let cfg = EngineConfig {
        profile: profile.to_string(),
        server,
        caps: platform_caps(),
        keychain: Keychain::os()?,
        extra_ca_pem,
        camera: anonchat_client::camera::Source::for_this_build()?,
        server_pin: o.server_pin,
        insecure_plain_http_on_lan: o.insecure_plain_http_on_lan,
    };
    Engine::open(cfg).await
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ANONCHAT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = start() {
        eprintln!("AnonChat: {e:#}");
        std::process::exit(1);
    }
}

fn start() -> anyhow::Result<()> {
    let mut o = options();
    if o.burner {
        o.profile = anonchat_client::burner::profile_name();
    } else if anonchat_client::burner::is_burner(&o.profile) {
        anyhow::bail!(
            "profile names starting with '{}' are for burners (they are deleted when they end)",
            anonchat_client::burner::PREFIX
        );
    }
    let _instance = match instance::claim(&o.profile)? {
        Some(lock) => lock,
        None => {
            eprintln!(
                "AnonChat is already running for profile '{}'; look for it in the tray.",
                o.profile
            );
            return Ok(());
        }
    };
    let (engine, events) = open_engine(&o)?;
    if o.burner {
        tauri::async_runtime::block_on(engine.start_burner())
            .context("making the burner identity")?;
    }
    let state = AppState {
        engine,
        profile: o.profile.clone(),
        burner: o.burner,
        server: o.server.clone(),
        ca_cert: o.ca_cert.clone(),
        insecure_plain_http_on_lan: o.insecure_plain_http_on_lan,
        update_endpoint: o.update_endpoint.clone(),
    };
    let lifetime = o.burner.then_some(o.burner_lifetime).flatten();
    // A registered profile connects at once, while the window is being built (a burner already
    // did); a new one waits for onboarding.
    if !o.burner && state.engine.username().is_some() {
        let engine = state.engine.clone();
        tauri::async_runtime::spawn(async move {
            let _ = engine.connect().await;
        });
    }
    clean_leftover_burners(o);
    tauri::Builder::default()
        .plugin(shortcut::plugin())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(update::plugin())
        .manage(state)
        .manage(update::Pending::default())
        .manage(page_wipe::PageWipe::default())
        .invoke_handler(commands::handler())
        .setup(move |app| {
            let handle = app.handle().clone();
            window::create(&handle)?;
            tray::create(&handle)?;
            shortcut::register_saved(&handle);
            autolock::start(&handle);
            update::check_at_start(&handle);
            forward_events(handle.clone(), events);
            if let Some(lifetime) = lifetime {
                let app = handle.clone();
                let life = anonchat_client::burner::Lifetime::new(
                    lifetime,
                    std::time::Instant::now(),
                    std::time::SystemTime::now(),
                );
                tauri::async_runtime::spawn(async move {
                    life.ends().await;
                    // Quitting burns it (below).
                    app.exit(0);
                });
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("starting the window system")?
        .run(|app, event| {
            if let tauri::RunEvent::ExitRequested { code, .. } = event {
                // Quitting wipes: every chat ends with `bye` and is zeroized first. A burner's
                // account is deleted too (or, with the server away, at the next start). The
                // chats ending start no fresh page.
                page_wipe::replaced(app, true);
                let state = app.state::<AppState>();
                let engine = state.engine.clone();
                if state.burner {
                    let burnt = tauri::async_runtime::block_on(
                        engine.burn(std::time::Duration::from_secs(5)),
                    );
                    if let Err(e) = burnt {
                        tracing::warn!(error = %e, "the burner was not deleted");
                    }
                } else {
                    tauri::async_runtime::block_on(engine.shutdown());
                }
                // Everything of the app is wiped and shut down by now. WebKitGTK's own teardown
                // after its web process was ended can still crash (SIGSEGV after "panic also
                // quits", seen in CI), so a quit is not left to it. A restart (an update) is.
                #[cfg(target_os = "linux")]
                if code == Some(0) {
                    // SAFETY: ends this process only; nothing is left to flush (logs go to the
                    // unbuffered stderr), and WebKit's processes end when their link to it closes.
                    unsafe { libc::_exit(0) }
                }
            }
        });
    Ok(())
}

/// Burners whose app is gone (crashed, killed) are deleted in the background at every start.
fn clean_leftover_burners(o: Options) {
    tauri::async_runtime::spawn(async move {
        let o = &o;
        let done = anonchat_client::burner::clean_leftovers(|name| async move {
            // Each remembers its own server.
            open_profile(o, &name, None).await.map(|(engine, _)| engine)
        })
        .await;
        for (name, result) in done {
            match result {
                Ok(()) => tracing::info!(profile = %name, "a leftover burner was deleted"),
                Err(e) => tracing::warn!(profile = %name, error = %e, "a leftover burner stays"),
            }
        }
    });
}

/// Engine events to the UI (and, when the window is not in front, to notifications).
fn forward_events(app: tauri::AppHandle, mut events: EventReceiver) {
    tauri::async_runtime::spawn(async move {
        while let Some(ev) = events.recv().await {
            notify::on_event(&app, &ev);
            page_wipe::on_event(&app, ev);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_burner_lifetime_is_a_positive_number_of_minutes_up_to_a_week() {
        assert_eq!(super::lifetime("60"), Some(Duration::from_secs(3600)));
        assert_eq!(super::lifetime("0.1"), Some(Duration::from_secs(6)));
        assert_eq!(super::lifetime("10080"), Some(Duration::from_secs(604_800)));
        for bad in ["0", "-1", "NaN", "inf", "10081", "1e9", "ten", ""] {
            assert_eq!(super::lifetime(bad), None, "{bad}");
        }
    }
}
