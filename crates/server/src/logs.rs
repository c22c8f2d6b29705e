//! Where the server's log goes and how long it is kept. Log lines never carry usernames, content or
//! addresses (P7); strict server mode writes none about accounts at all.
//!
//! - `--log-retention-days 0`: no log is written anywhere.
//! - `--log-dir DIR`: one file per day in DIR (`anonchat-server.YYYY-MM-DD.log`); files older than
//!   the retention are deleted at start and every hour.
//! - otherwise: standard error, kept as long as whatever supervises the process keeps it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tracing_appender::rolling::{RollingFileAppender, Rotation};

const PREFIX: &str = "anonchat-server";
const SUFFIX: &str = "log";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Off,
    Stderr,
    Files { dir: PathBuf, keep_days: u32 },
}

pub fn sink(log_dir: Option<&Path>, retention_days: u32) -> Sink {
    match (retention_days, log_dir) {
        (0, _) => Sink::Off,
        (n, Some(dir)) => Sink::Files {
            dir: dir.to_path_buf(),
            keep_days: n,
        },
        (_, None) => Sink::Stderr,
    }
}

/// Installs the global subscriber for `sink` with the `filter` (tracing syntax).
pub fn init(filter: &str, sink: &Sink) -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::new(filter);
    match sink {
        Sink::Off => {}
        Sink::Stderr => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        Sink::Files { dir, keep_days } => {
            std::fs::create_dir_all(dir)?;
            prune(dir, *keep_days, SystemTime::now())?;
            let files = RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(PREFIX)
                .filename_suffix(SUFFIX)
                .build(dir)
                .map_err(std::io::Error::other)?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(files)
                .init();
        }
    }
    Ok(())
}

/// Deletes this server's log files in `dir` last written more than `keep_days` days before `now`.
/// Returns how many went.
pub fn prune(dir: &Path, keep_days: u32, now: SystemTime) -> std::io::Result<usize> {
    let keep = Duration::from_secs(u64::from(keep_days) * 86_400);
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let written = entry.metadata()?.modified()?;
        if now.duration_since(written).unwrap_or_default() > keep {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_means_no_log_and_a_dir_means_files() {
        assert_eq!(sink(Some(Path::new("/x")), 0), Sink::Off);
        assert_eq!(sink(None, 0), Sink::Off);
        assert_eq!(sink(None, 7), Sink::Stderr);
        assert_eq!(
            sink(Some(Path::new("/x")), 7),
            Sink::Files {
                dir: "/x".into(),
                keep_days: 7
            }
        );
    }
}
