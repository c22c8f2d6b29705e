//! The AnonChat client engine: identity in the OS keychain, the signaling connection, WebRTC
//! sessions with Olm inside, chat state only in RAM (zeroized), and an event stream for front-ends.
//! It knows nothing of Tauri or HTML; the CLI and the desktop app both drive [`Engine`].

pub mod api;
pub mod attachments;
pub mod burner;
pub mod camera;
pub mod capture;
pub mod engine;
pub mod enrollment;
pub mod error;
pub mod events;
pub mod fuzz;
pub mod group;
pub mod hardening;
pub mod identity;
pub mod keychain;
pub mod passcode;
pub mod profile;
pub mod qr;
pub mod quota;
pub mod sealed;
pub mod session;
pub mod signaling;
pub mod tls;
pub mod transport;
pub mod trust;
pub mod zero_on_free;

pub use engine::{CodeView, Engine, EngineConfig, FriendView, ModeView};
pub use error::{ClientError, ProfileError, SessionError, SignalingError};
pub use events::{EndReason, Event};
pub use keychain::Keychain;

/// What this build of the client can promise its peers.
pub fn platform_caps() -> anonchat_proto::Caps {
    // Debug builds only: a test stands in for a system that can protect the window.
    #[cfg(debug_assertions)]
    if std::env::var_os("ANONCHAT_TEST_SCREEN_PROTECTION").is_some_and(|v| v == "1") {
        return anonchat_proto::Caps {
            screen_protection: true,
        };
    }
    anonchat_proto::Caps {
        // What the OS really does (capture.rs): Windows and macOS before 15 only.
        screen_protection: capture::protected(capture::this_os()),
    }
}
