//! What the engine benches share: opening an engine on the OS keychain, and waiting for an event.

use std::time::Duration;

use anonchat_client::{platform_caps, Engine, EngineConfig, Event, Keychain};
use anyhow::bail;

pub const WAIT: Duration = Duration::from_secs(30);

pub type Events = anonchat_client::events::EventReceiver;

/// The first event that matches `pred` within [`WAIT`]; the error lists what came instead.
pub async fn next(
    events: &mut Events,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> anyhow::Result<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return Ok(ev),
            Ok(Some(ev)) => skipped.push(format!("{ev:?}")),
            _ => bail!("timed out waiting for {what}; skipped {skipped:?}"),
        }
    }
}

/// An engine on profile `profile` under `home`, with the real OS keychain.
pub async fn open_engine(
    profile: &str,
    server: &str,
    home: &std::path::Path,
) -> anyhow::Result<(Engine, Events)> {
    std::env::set_var("ANONCHAT_HOME", home);
    let (engine, events) = Engine::open(EngineConfig {
        profile: profile.into(),
        server: Some(server.into()),
        caps: platform_caps(),
        keychain: Keychain::os()?,
        extra_ca_pem: None,
        camera: Default::default(),
        server_pin: None,
        insecure_plain_http_on_lan: false,
    })
    .await?;
    Ok((engine, events))
}
