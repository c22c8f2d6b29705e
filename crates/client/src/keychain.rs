//! Secrets in the OS keychain (Keychain, Credential Manager, Secret Service) through `keyring-core`.
//! One entry per profile holds the account key, the Olm account pickle and the profile key.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use zeroize::Zeroizing;

use crate::error::ProfileError;
use crate::ClientError;

const SERVICE: &str = "anonchat";

#[derive(Clone)]
pub struct Keychain {
    store: Arc<CredentialStore>,
}

fn err(e: keyring_core::Error) -> ClientError {
    ClientError::Profile(ProfileError::Keychain(explain(&e.to_string())))
}

/// Turns the Secret Service's less helpful messages into something a user can act on.
fn explain(msg: &str) -> String {
    if msg.contains("result not returned from SS API") {
        format!("the keyring is locked and could not prompt to unlock it ({msg})")
    } else if msg.contains("org.freedesktop.secrets was not provided") {
        format!(
            "no Secret Service is running (install and start gnome-keyring or KeePassXC) ({msg})"
        )
    } else if msg.contains("Failed to connect to address") {
        format!("no D-Bus session bus: start the app inside a desktop session ({msg})")
    } else {
        msg.to_string()
    }
}

impl Keychain {
    /// The platform's keychain.
    pub fn os() -> Result<Self, ClientError> {
        #[cfg(target_os = "linux")]
        let store: Arc<CredentialStore> =
            zbus_secret_service_keyring_store::Store::new().map_err(err)?;
        #[cfg(target_os = "macos")]
        let store: Arc<CredentialStore> =
            apple_native_keyring_store::keychain::Store::new().map_err(err)?;
        #[cfg(target_os = "windows")]
        let store: Arc<CredentialStore> =
            windows_native_keyring_store::Store::new().map_err(err)?;
        Ok(Self { store })
    }

    /// An in-memory keychain, for unit tests of pure logic.
    pub fn in_memory() -> Result<Self, ClientError> {
        Ok(Self {
            store: keyring_core::mock::Store::new().map_err(err)?,
        })
    }

    fn entry(&self, profile: &str) -> Result<Entry, ClientError> {
        Entry::new_in_store(&self.store, SERVICE, &format!("profile:{profile}")).map_err(err)
    }

    pub fn load(&self, profile: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
        match self.entry(profile)?.get_secret() {
            Ok(s) => Ok(Some(Zeroizing::new(s))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    pub fn save(&self, profile: &str, secret: &[u8]) -> Result<(), ClientError> {
        self.entry(profile)?.set_secret(secret).map_err(err)
    }

    pub fn delete(&self, profile: &str) -> Result<(), ClientError> {
        match self.entry(profile)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}
