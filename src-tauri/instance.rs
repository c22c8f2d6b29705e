//! One instance per profile (the lock is the engine's, `profile::instance`, so a CLI on the same
//! profile counts too).

use anyhow::Context;

/// The held lock, or `None` if another instance holds it.
pub fn claim(profile: &str) -> anyhow::Result<Option<std::fs::File>> {
    anonchat_client::profile::instance::claim(profile).context("claiming the profile")
}
