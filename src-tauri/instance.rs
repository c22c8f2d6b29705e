//! One instance per profile: an exclusive lock on a file in the profile's folder, held while the app
//! runs (the OS releases it when the process ends, however it ends).

use std::fs::{File, OpenOptions};

use anyhow::Context;

/// The held lock, or `None` if another instance holds it.
pub fn claim(profile: &str) -> anyhow::Result<Option<File>> {
    let dir = anonchat_client::profile::profile_dir(profile)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("instance.lock"))
        .context("opening the instance lock")?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the instance lock"),
    }
}
