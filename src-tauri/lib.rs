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
mod panic;
pub mod scrub;
mod shortcut;
mod tray;
mod window;

use anonchat_client::events::EventReceiver;
use anonchat_client::{platform_caps, Engine, EngineConfig, Keychain};
use anyhow::Context;
use tauri::{Emitter, Manager};

/// What every command and handler reaches through Tauri's state.
pub struct AppState {
    pub engine: Engine,
    /// The profile's name, shown in the window title.
    pub profile: String,
}

/// The profile and server come from the environment (or `--profile NAME --server URL`), like the CLI.
struct Options {
    profile: String,
    server: Option<String>,
    ca_cert: Option<std::path::PathBuf>,
    /// `--insecure-plain-http-on-lan`: plain http:// to another machine (test networks only).
    insecure_plain_http_on_lan: bool,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        profile: std::env::var("ANONCHAT_PROFILE").unwrap_or_else(|_| "default".into()),
        server: std::env::var("ANONCHAT_SERVER").ok(),
        ca_cert: std::env::var_os("ANONCHAT_CA_CERT").map(Into::into),
        insecure_plain_http_on_lan: std::env::var_os("ANONCHAT_INSECURE_PLAIN_HTTP_ON_LAN")
            .is_some_and(|v| v == "1" || v == "true"),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => o.profile = args.next().unwrap_or(o.profile),
            "--server" => o.server = args.next().or(o.server),
            "--ca-cert" => o.ca_cert = args.next().map(Into::into).or(o.ca_cert),
            "--insecure-plain-http-on-lan" => o.insecure_plain_http_on_lan = true,
            _ => {}
        }
    }
    o
}

fn open_engine(o: &Options) -> anyhow::Result<(Engine, EventReceiver)> {
    let extra_ca_pem = match &o.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let cfg = EngineConfig {
        profile: o.profile.clone(),
        server: o.server.clone(),
        caps: platform_caps(),
        keychain: Keychain::os().context("opening the OS keychain")?,
        extra_ca_pem,
        camera: anonchat_client::camera::Source::for_this_build()?,
        insecure_plain_http_on_lan: o.insecure_plain_http_on_lan,
    };
    tauri::async_runtime::block_on(Engine::open(cfg)).context("opening the profile")
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
    let o = options();
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
    let state = AppState {
        engine,
        profile: o.profile.clone(),
    };
    tauri::Builder::default()
        .plugin(shortcut::plugin())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .manage(state)
        .invoke_handler(commands::handler())
        .setup(move |app| {
            let handle = app.handle().clone();
            window::create(&handle)?;
            tray::create(&handle)?;
            shortcut::register_saved(&handle);
            autolock::start(&handle);
            forward_events(handle.clone(), events);
            // A registered profile connects at once; a new one waits for onboarding.
            let engine = handle.state::<AppState>().engine.clone();
            if engine.username().is_some() {
                tauri::async_runtime::spawn(async move {
                    let _ = engine.connect().await;
                });
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("starting the window system")?
        .run(|app, event| {
            if let tauri::RunEvent::ExitRequested { .. } = event {
                // Quitting wipes: every chat ends with `bye` and is zeroized first.
                let engine = app.state::<AppState>().engine.clone();
                tauri::async_runtime::block_on(engine.shutdown());
            }
        });
    Ok(())
}

/// Engine events to the UI (and, when the window is not in front, to notifications).
fn forward_events(app: tauri::AppHandle, mut events: EventReceiver) {
    tauri::async_runtime::spawn(async move {
        while let Some(ev) = events.recv().await {
            notify::on_event(&app, &ev);
            let _ = app.emit("engine", &ev);
        }
    });
}
