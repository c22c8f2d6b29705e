//! `anonchat-server`: the directory and signaling server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anonchat_server::http::{router, App};
use anonchat_server::hub::{Hub, HubConfig};
use anonchat_server::limits::PerIp;
use anonchat_server::store::Store;
use anonchat_server::Config;
use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    let log_sink = anonchat_server::logs::sink(cfg.log_dir.as_deref(), cfg.log_retention_days);
    anonchat_server::logs::init(&cfg.log, &log_sink).context("opening the log folder")?;

    // The dependency tree carries two rustls backends; choose one for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::open(&cfg.database_url)
        .await
        .context("opening the database")?;
    let secret = anonchat_server::config::load_or_create_secret(&cfg.secret_file)
        .with_context(|| format!("reading the server secret {}", cfg.secret_file.display()))?;
    let listener = std::net::TcpListener::bind(cfg.listen)
        .with_context(|| format!("binding {}", cfg.listen))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let app = Arc::new(App {
        hub: Hub::new(
            store.clone(),
            secret,
            HubConfig {
                ring_timeout: Duration::from_secs(cfg.ring_timeout_secs),
                wake_intents: !cfg.strict,
                quiet: cfg.strict,
                gate_per_minute: cfg.gate_per_minute,
                gate_burst: cfg.gate_burst,
                gate_floor: Duration::from_millis(cfg.gate_floor_ms),
                contact_pow_bits: cfg.contact_pow_bits,
                backoff_after: cfg.backoff_after,
                pow_after: cfg.pow_after,
                turn: anonchat_server::config::turn(&cfg).context("TURN configuration")?,
            },
        ),
        quiet: cfg.strict,
        origin: cfg.origin(bound),
        pow_bits: cfg.register_pow_bits,
        per_ip: PerIp::new(cfg.max_connections_per_ip),
        shutdown: shutdown.clone(),
        spent: Mutex::new(HashMap::new()),
    });

    let ticker = {
        let app = app.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = every.tick() => app.hub.tick(Instant::now()),
                    _ = hourly.tick() => {
                        if let anonchat_server::logs::Sink::Files { dir, keep_days } = &log_sink {
                            let _ = anonchat_server::logs::prune(dir, *keep_days, std::time::SystemTime::now());
                        }
                    }
                    _ = stop.cancelled() => break,
                }
            }
        })
    };

    let handle = axum_server::Handle::new();
    let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = {
        let handle = handle.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            match (&cfg.tls_cert, &cfg.tls_key) {
                (Some(cert), Some(key)) => {
                    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                        .await
                        .context("loading the TLS certificate and key")?;
                    // Signaling is many small messages: no Nagle delay on them.
                    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                        .acceptor(axum_server::accept::NoDelayAcceptor::new());
                    axum_server::from_tcp(listener)
                        .acceptor(acceptor)
                        .handle(handle)
                        .serve(service)
                        .await
                        .context("serving")
                }
                _ => axum_server::from_tcp(listener)
                    .acceptor(axum_server::accept::NoDelayAcceptor::new())
                    .handle(handle)
                    .serve(service)
                    .await
                    .context("serving"),
            }
        })
    };
    match handle.listening().await {
        // Tests and scripts read this line to learn the port when listening on :0.
        Some(addr) => println!(
            "anonchat-server listening on {addr} (origin {})",
            app.origin
        ),
        None => return server.await.context("server task")?,
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    let _ = ticker.await;
    server.await.context("server task")??;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
