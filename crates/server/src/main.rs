//! `anonchat-server`: the directory and signaling server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anonchat_server::accept::CappedAcceptor;
use anonchat_server::client_ip::ClientIp;
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
    let client_ip =
        Arc::new(ClientIp::new(&cfg.trusted_proxy, cfg.ipv6_prefix).context("--trusted-proxy")?);
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
        client_ip: client_ip.clone(),
        pace: anonchat_server::pace::Budget {
            messages_per_second: cfg.socket_messages_per_second,
            message_burst: cfg.socket_message_burst,
            kib_per_second: cfg.socket_kib_per_second,
        },
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
        // Counted per address from the accept on, and a deadline on every request's headers (and
        // on idle keep-alive connections): a half-open request cannot hold a slot for long (P9).
        let capped = CappedAcceptor::new(cfg.max_tcp_per_ip, client_ip);
        let header_timeout = Duration::from_secs(cfg.header_timeout_secs.max(1));
        tokio::spawn(async move {
            match (&cfg.tls_cert, &cfg.tls_key) {
                (Some(cert), Some(key)) => {
                    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                        .await
                        .context("loading the TLS certificate and key")?;
                    // The TLS handshake has axum-server's own 10 s deadline.
                    let acceptor =
                        axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(capped);
                    let mut srv = axum_server::from_tcp(listener)
                        .acceptor(acceptor)
                        .handle(handle);
                    http1_with_deadlines(srv.http_builder(), header_timeout);
                    srv.serve(service).await.context("serving")
                }
                _ => {
                    let mut srv = axum_server::from_tcp(listener)
                        .acceptor(capped)
                        .handle(handle);
                    http1_with_deadlines(srv.http_builder(), header_timeout);
                    srv.serve(service).await.context("serving")
                }
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

/// HTTP/1.1 only (WebSockets need it; HTTP/2 would be a second set of slow-client paths to bound),
/// with a deadline on every request's headers.
fn http1_with_deadlines(
    b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    *b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .http1_only();
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
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
