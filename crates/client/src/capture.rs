//! Whether this device can keep its window out of screenshots and screen recordings, said
//! honestly: what the device certificate claims (and so what peers' banners show) is what the OS
//! really does.
//!
//! - Windows: `WDA_EXCLUDEFROMCAPTURE` (Tauri's content protection) keeps the window out of every
//!   capture API: protected.
//! - macOS before 15: `NSWindow.sharingType = none` keeps it out of the legacy capture APIs:
//!   protected. macOS 15 and later capture through ScreenCaptureKit, which ignores
//!   `sharingType`: unprotected, whatever the app sets.
//! - Linux (X11 and Wayland) and anything else: no such control: unprotected.

/// The system, as far as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Windows,
    MacOs { major: u32 },
    Linux,
    Other,
}

/// The first macOS whose capture ignores `NSWindow.sharingType`.
pub const MACOS_CAPTURE_IGNORES_SHARING_TYPE: u32 = 15;

/// Whether the window is kept out of captures on `os`.
pub fn protected(os: Os) -> bool {
    match os {
        Os::Windows => true,
        Os::MacOs { major } => major < MACOS_CAPTURE_IGNORES_SHARING_TYPE,
        Os::Linux | Os::Other => false,
    }
}

/// The system this runs on. On macOS the version comes from `sw_vers`; one that cannot be read
/// counts as the newest (unprotected: claiming protection wrongly is the worse mistake).
pub fn this_os() -> Os {
    if cfg!(target_os = "windows") {
        Os::Windows
    } else if cfg!(target_os = "macos") {
        let major = std::process::Command::new("sw_vers")
            .arg("-productVersion")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|v| macos_major(&v))
            .unwrap_or(u32::MAX);
        Os::MacOs { major }
    } else if cfg!(target_os = "linux") {
        Os::Linux
    } else {
        Os::Other
    }
}

/// `14.6.1` → 14.
pub fn macos_major(version: &str) -> Option<u32> {
    version.trim().split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_follows_what_each_os_really_does() {
        assert!(protected(Os::Windows));
        assert!(protected(Os::MacOs { major: 13 }));
        assert!(protected(Os::MacOs { major: 14 }));
        assert!(
            !protected(Os::MacOs { major: 15 }),
            "ScreenCaptureKit ignores sharingType"
        );
        assert!(!protected(Os::MacOs { major: 26 }));
        assert!(!protected(Os::MacOs { major: u32::MAX }), "unknown version");
        assert!(!protected(Os::Linux));
        assert!(!protected(Os::Other));
    }

    #[test]
    fn macos_versions_are_read_or_refused() {
        assert_eq!(macos_major("14.6.1\n"), Some(14));
        assert_eq!(macos_major("15.0"), Some(15));
        assert_eq!(macos_major("26"), Some(26));
        assert_eq!(macos_major(""), None);
        assert_eq!(macos_major("x.1"), None);
    }

    #[test]
    fn this_linux_build_claims_no_protection() {
        if cfg!(target_os = "linux") {
            assert_eq!(this_os(), Os::Linux);
            assert!(!crate::platform_caps().screen_protection);
        }
    }
}
