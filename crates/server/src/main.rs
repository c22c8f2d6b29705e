//! `anonchat-server`: the directory and signaling server.

use anonchat_server::serve::Server;
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
    let listener = std::net::TcpListener::bind(cfg.listen)
        .with_context(|| format!("binding {}", cfg.listen))?;
    let server = Server::new(cfg, listener).await?;
    // Tests and scripts read this line to learn the port when listening on :0. The socket is
    // listening already: connections made from here on queue until the server accepts them.
    println!(
        "anonchat-server listening on {} (origin {})",
        server.local_addr()?,
        server.origin()
    );
    if let Some(addr) = server.metrics_addr() {
        println!("anonchat-server metrics on http://{addr}/metrics");
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    server.run(log_sink, shutdown).await?;
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
