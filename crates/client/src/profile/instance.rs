//! One running front-end per profile: an exclusive lock on a file in the profile's folder, held
//! while it runs (the OS releases it when the process ends, however it ends). A burner whose lock
//! is free is a leftover (`burner.rs`).

use std::fs::{File, OpenOptions};

use crate::error::ProfileError;
use crate::ClientError;

fn storage(what: &str, e: std::io::Error) -> ClientError {
    ClientError::Profile(ProfileError::Storage(format!("{what}: {e}")))
}

/// The held lock, or `None` if another process holds it.
pub fn claim(profile: &str) -> Result<Option<File>, ClientError> {
    let dir = super::profile_dir(profile)?;
    std::fs::create_dir_all(&dir).map_err(|e| storage("creating the profile folder", e))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("instance.lock"))
        .map_err(|e| storage("opening the instance lock", e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(storage("locking the instance lock", e)),
    }
}
