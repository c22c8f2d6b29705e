//! `anonchat-cli`: a terminal client on the AnonChat engine. Interactive (`chat`), one-shot
//! subcommands, or `--json` lines (commands in on stdin, events and replies out on stdout) for
//! scripts and tests.

mod json;
mod repl;
mod stdio;

/// Freed memory is wiped: chat text passes through buffers nobody zeroizes by hand (P4).
#[global_allocator]
static ALLOC: anonchat_client::zero_on_free::ZeroOnFree =
    anonchat_client::zero_on_free::ZeroOnFree { free_zeroes: false };

use anonchat_client::events::EventReceiver;
use anonchat_client::{platform_caps, Engine, EngineConfig, Event, Keychain};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Clone)]
#[command(
    name = "anonchat-cli",
    version,
    about = "AnonChat in a terminal: chat like a phone call, nothing kept"
)]
struct Cli {
    /// Profile name (several profiles let one person run two clients on one machine).
    #[arg(long, env = "ANONCHAT_PROFILE", default_value = "default")]
    profile: String,
    /// Server origin, e.g. http://127.0.0.1:7878. Remembered by the profile after registration.
    #[arg(long, env = "ANONCHAT_SERVER")]
    server: Option<String>,
    /// A PEM file of extra certificate authorities to trust (a self-hosted server's private CA).
    #[arg(long, env = "ANONCHAT_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// Allow plain http:// to a server on another machine. For a test network only: anyone on
    /// the way can then read the signaling and play the server.
    #[arg(
        long,
        env = "ANONCHAT_INSECURE_PLAIN_HTTP_ON_LAN",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    insecure_plain_http_on_lan: bool,
    /// JSON lines on stdin/stdout instead of a human interface.
    #[arg(long)]
    json: bool,
    /// A burner identity: a throwaway account with a random alias and a profile of its own,
    /// deleted from the server and this machine when this run ends (`--profile` is ignored).
    #[arg(
        long,
        env = "ANONCHAT_BURNER",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    burner: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Clone)]
enum Cmd {
    /// Create this profile's identity and register a username.
    Register { username: String },
    /// Join an existing account as a new device, with the code (or QR string) the old device shows.
    Enroll { code: String },
    /// Show this profile's username and server.
    Whoami,
    /// Send a friend request (with the person's code if their mode asks for one).
    Add {
        username: String,
        #[arg(long)]
        code: Option<String>,
    },
    /// List friends with presence and safety numbers.
    Friends,
    /// Show the safety number with a contact.
    Safety { username: String },
    /// Interactive chat (the default).
    Chat,
}

async fn open(cli: &Cli) -> anyhow::Result<(Engine, EventReceiver)> {
    let keychain = Keychain::os().context("opening the OS keychain")?;
    let extra_ca_pem = match &cli.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let cfg = EngineConfig {
        profile: cli.profile.clone(),
        server: cli.server.clone(),
        caps: platform_caps(),
        keychain,
        extra_ca_pem,
        camera: anonchat_client::camera::Source::for_this_build()?,
        server_pin: None,
        insecure_plain_http_on_lan: cli.insecure_plain_http_on_lan,
    };
    Engine::open(cfg).await.context("opening the profile")
}

/// A burner run: made, used (JSON lines or the chat), and deleted when it ends — erased here
/// whatever happens, its signed deletion kept for the next start if the server could not be told.
/// A run that dies before it could do either is finished by the next lasting run or app start.
async fn burner(mut cli: Cli) -> anyhow::Result<()> {
    cli.profile = anonchat_client::burner::profile_name();
    let _held = anonchat_client::profile::instance::claim(&cli.profile)?
        .context("a fresh burner profile is in use")?;
    // Only now: its own folder, locked, is no leftover to the cleaner.
    clean_leftover_burners(cli.clone());
    let (engine, mut events) = open(&cli).await?;
    let alias = engine.start_burner().await?;
    // Reachable once the server took this device, not merely once the connection started: a
    // friend request right after `whoami` must find it (lifecycle's burner test raced this).
    connected(&engine, &mut events).await?;
    eprintln!("Burner identity {alias}: deleted from the server and this machine when this ends.");
    if cli.json {
        json::run(engine, events, true).await?;
    } else {
        repl::run(engine, events, true).await?;
    }
    eprintln!("Burner identity {alias} deleted.");
    Ok(())
}

/// Burners whose run is gone (killed, crashed) or whose server could not be told are finished in
/// the background by every run that lasts (chat, `--json`, `--burner`), as the desktop app does
/// at its start: a user of the CLI alone has no other start to do it.
fn clean_leftover_burners(cli: Cli) {
    tokio::spawn(async move {
        let cli = &cli;
        let done = anonchat_client::burner::clean_leftovers(|name| async move {
            // Each on the server it remembers, not the one this run was pointed at.
            let mut one = cli.clone();
            one.profile = name;
            one.server = None;
            open(&one)
                .await
                .map(|(engine, _)| engine)
                .map_err(|e| anonchat_client::ClientError::Refused(format!("{e:#}")))
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

/// The end of a run: every chat wiped, and a burner deleted (with the connection still up).
pub(crate) async fn finish(engine: &Engine, burner: bool) -> anyhow::Result<()> {
    if burner {
        engine
            .burn(std::time::Duration::from_secs(10))
            .await
            .context("deleting the burner")
    } else {
        engine.shutdown().await;
        Ok(())
    }
}

/// Connects and waits for the server to accept this device.
pub(crate) async fn connected(engine: &Engine, events: &mut EventReceiver) -> anyhow::Result<()> {
    engine.connect().await?;
    let wait = async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, Event::Connected) {
                return Ok(());
            }
        }
        anyhow::bail!("engine stopped")
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), wait)
        .await
        .context("could not reach the server")?
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything holds a secret: a crash must not leave a core with chat in it.
    if let Err(e) = anonchat_client::hardening::forbid_core_dumps() {
        eprintln!("warning: {e}");
    }
    let cli = Cli::parse();
    // Logs go to stderr and never carry content; off unless asked for.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ANONCHAT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    if !cli.burner && anonchat_client::burner::is_burner(&cli.profile) {
        anyhow::bail!(
            "profile names starting with '{}' are for burners (they are deleted when they end)",
            anonchat_client::burner::PREFIX
        );
    }
    if !cli.burner && (cli.json || matches!(cli.cmd, None | Some(Cmd::Chat))) {
        clean_leftover_burners(cli.clone());
    }
    if cli.burner {
        return burner(cli).await;
    }
    let (engine, mut events) = open(&cli).await?;
    if cli.json {
        return json::run(engine, events, false).await;
    }
    match cli.cmd.unwrap_or(Cmd::Chat) {
        Cmd::Register { username } => {
            engine.register(&username).await?;
            println!(
                "Registered as {} on {}",
                engine.username().unwrap_or_default(),
                engine.server().unwrap_or_default()
            );
        }
        Cmd::Enroll { code } => {
            let fingerprints = tokio::spawn(async move {
                while let Some(ev) = events.recv().await {
                    if let Event::EnrollPending {
                        username,
                        fingerprint,
                    } = ev
                    {
                        println!("Joining {username}. Approve on your other device if it shows:\n  {fingerprint}");
                    }
                }
            });
            let done = engine.enroll(&code).await;
            fingerprints.abort();
            let done = done?;
            println!(
                "This device is now {} ({}).",
                done.username, done.fingerprint
            );
        }
        Cmd::Whoami => match engine.username() {
            Some(u) => println!("{u} on {}", engine.server().unwrap_or_default()),
            None => println!(
                "No identity in profile '{}' yet: run `register USERNAME`.",
                cli.profile
            ),
        },
        Cmd::Add { username, code } => {
            connected(&engine, &mut events).await?;
            let sn = engine.add_friend(&username, code.as_deref()).await?;
            println!("Friend request sent. Safety number with {username}:\n{sn}");
            engine.shutdown().await;
        }
        Cmd::Friends => {
            connected(&engine, &mut events).await?;
            for f in engine.friends().await? {
                let mark = if f.verified { " (verified)" } else { "" };
                println!(
                    "{:<32} {:<8} {}{mark}",
                    f.username,
                    if f.online { "online" } else { "offline" },
                    f.safety_number
                );
            }
            engine.shutdown().await;
        }
        Cmd::Safety { username } => println!("{}", engine.safety_number(&username)?),
        Cmd::Chat => repl::run(engine, events, false).await?,
    }
    Ok(())
}
