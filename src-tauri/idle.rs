//! When the app wipes and locks without being asked (DESIGN §8): after a stretch without the user's
//! input, when the OS locks the screen, when the machine is about to sleep. A pure machine — time
//! passed in, the decision returned — driven by `autolock.rs`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The user's choices, kept in the encrypted profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoLock {
    /// Seconds without input before open chats end and the window locks; 0 is off.
    pub idle_seconds: u32,
    pub on_screen_lock: bool,
    pub on_suspend: bool,
}

impl Default for AutoLock {
    /// On, 10 minutes; the OS's lock and suspend wipe too.
    fn default() -> Self {
        Self {
            idle_seconds: 600,
            on_screen_lock: true,
            on_suspend: true,
        }
    }
}

/// The shortest idle timeout a setting may ask for (the UI offers minutes; tests ask for less).
pub const MIN_IDLE_SECONDS: u32 = 2;
/// A day: longer is as good as off, and the setting should say so.
pub const MAX_IDLE_SECONDS: u32 = 86_400;

impl AutoLock {
    /// Checks a setting that came from the page.
    pub fn checked(self) -> Result<Self, String> {
        match self.idle_seconds {
            0 | MIN_IDLE_SECONDS..=MAX_IDLE_SECONDS => Ok(self),
            s => Err(format!(
                "the idle timeout is off (0) or {MIN_IDLE_SECONDS}–{MAX_IDLE_SECONDS} seconds, not {s}"
            )),
        }
    }
}

/// Why the app wiped on its own; the lock page says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Idle,
    ScreenLock,
    Suspend,
}

impl Why {
    /// The word the lock page reads from its address.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Idle => "idle",
            Why::ScreenLock => "screen_lock",
            Why::Suspend => "suspend",
        }
    }
}

/// What the OS said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsSignal {
    ScreenLocked,
    Suspending,
}

pub struct Idle {
    settings: AutoLock,
    last_input: Instant,
    /// Fired since the last input: the lock happens once, not every tick after.
    fired: bool,
}

impl Idle {
    pub fn new(settings: AutoLock, now: Instant) -> Self {
        Self {
            settings,
            last_input: now,
            fired: false,
        }
    }

    pub fn settings(&self) -> AutoLock {
        self.settings
    }

    /// New settings count from now (a shorter timeout does not fire for the past at once).
    pub fn set(&mut self, settings: AutoLock, now: Instant) {
        self.settings = settings;
        self.input(now);
    }

    /// The user did something in the window.
    pub fn input(&mut self, now: Instant) {
        self.last_input = now;
        self.fired = false;
    }

    /// Whether the idle timeout ran out just now (once per stretch without input).
    pub fn tick(&mut self, now: Instant) -> Option<Why> {
        if self.fired || self.settings.idle_seconds == 0 {
            return None;
        }
        let after = Duration::from_secs(self.settings.idle_seconds.into());
        if now.saturating_duration_since(self.last_input) >= after {
            self.fired = true;
            return Some(Why::Idle);
        }
        None
    }

    /// What an OS signal means under the settings. Always acted on, fired or not: the screen
    /// locking while the app already sits locked costs nothing, and missing one costs a chat.
    pub fn os(&mut self, signal: OsSignal) -> Option<Why> {
        let why = match signal {
            OsSignal::ScreenLocked if self.settings.on_screen_lock => Why::ScreenLock,
            OsSignal::Suspending if self.settings.on_suspend => Why::Suspend,
            _ => return None,
        };
        self.fired = true;
        Some(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn fires_once_after_the_timeout_without_input_and_again_only_after_input() {
        let t0 = Instant::now();
        let mut idle = Idle::new(AutoLock::default(), t0);
        assert_eq!(idle.tick(t0 + secs(599)), None);
        assert_eq!(idle.tick(t0 + secs(600)), Some(Why::Idle));
        assert_eq!(idle.tick(t0 + secs(601)), None, "once");
        assert_eq!(idle.tick(t0 + secs(6000)), None, "still once");
        idle.input(t0 + secs(6000));
        assert_eq!(idle.tick(t0 + secs(6599)), None);
        assert_eq!(idle.tick(t0 + secs(6600)), Some(Why::Idle));
    }

    #[test]
    fn input_puts_the_timeout_off() {
        let t0 = Instant::now();
        let mut idle = Idle::new(AutoLock::default(), t0);
        idle.input(t0 + secs(500));
        assert_eq!(idle.tick(t0 + secs(700)), None);
        assert_eq!(idle.tick(t0 + secs(1100)), Some(Why::Idle));
    }

    #[test]
    fn off_never_fires_and_new_settings_count_from_now() {
        let t0 = Instant::now();
        let off = AutoLock {
            idle_seconds: 0,
            ..AutoLock::default()
        };
        let mut idle = Idle::new(off, t0);
        assert_eq!(idle.tick(t0 + secs(1_000_000)), None);
        let short = AutoLock {
            idle_seconds: 5,
            ..AutoLock::default()
        };
        idle.set(short, t0 + secs(1_000_000));
        assert_eq!(idle.tick(t0 + secs(1_000_004)), None, "not for the past");
        assert_eq!(idle.tick(t0 + secs(1_000_005)), Some(Why::Idle));
    }

    #[test]
    fn os_signals_follow_their_settings() {
        let t0 = Instant::now();
        let mut idle = Idle::new(AutoLock::default(), t0);
        assert_eq!(idle.os(OsSignal::ScreenLocked), Some(Why::ScreenLock));
        assert_eq!(idle.os(OsSignal::Suspending), Some(Why::Suspend));
        // The idle timeout does not fire again on top of an OS lock before new input.
        assert_eq!(idle.tick(t0 + secs(600)), None);
        let neither = AutoLock {
            on_screen_lock: false,
            on_suspend: false,
            ..AutoLock::default()
        };
        idle.set(neither, t0);
        assert_eq!(idle.os(OsSignal::ScreenLocked), None);
        assert_eq!(idle.os(OsSignal::Suspending), None);
        assert_eq!(idle.tick(t0 + secs(600)), Some(Why::Idle), "idle still on");
    }

    #[test]
    fn settings_from_the_page_are_checked() {
        let with = |s| AutoLock {
            idle_seconds: s,
            ..AutoLock::default()
        };
        assert!(with(0).checked().is_ok());
        assert!(with(2).checked().is_ok());
        assert!(with(86_400).checked().is_ok());
        assert!(with(1).checked().is_err());
        assert!(with(86_401).checked().is_err());
    }
}
