//! Group passes (DESIGN §10; `group_join`, `group_leave` and a `ring` with a `group` token).
//! Members of a group who are not friends ring each other through the gate only when both devices
//! have joined that group. What a device joins is an opaque pass token that the members derive
//! from the group's random id: the server learns no group name, roster or content, only that some
//! devices share a token — which their rings to each other show it anyway.
//!
//! RAM only (P2), gone with the device's connection, a few per device (P9). Pure, like `ring.rs`:
//! the hub asks and applies.

use std::collections::{HashMap, HashSet};

/// A group's pass token (32 opaque bytes).
pub type Token = [u8; 32];
type DeviceId = String;

/// Groups one device may be in at once.
pub const MAX_PER_DEVICE: usize = 4;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("this device is in as many groups as it may be")]
    TooMany,
}

/// Each connected device's tokens, and each token's devices (so no question scans them all).
#[derive(Default)]
pub struct Passes {
    by_device: HashMap<DeviceId, Vec<Token>>,
    by_token: HashMap<Token, HashSet<DeviceId>>,
}

impl Passes {
    /// `device` joined the group of `token`; joining twice is once.
    pub fn join(&mut self, device: &str, token: Token) -> Result<(), PassError> {
        let held = self.by_device.entry(device.to_string()).or_default();
        if held.contains(&token) {
            return Ok(());
        }
        if held.len() >= MAX_PER_DEVICE {
            return Err(PassError::TooMany);
        }
        held.push(token);
        self.by_token
            .entry(token)
            .or_default()
            .insert(device.to_string());
        Ok(())
    }

    /// `device` left the group of `token`; whether it was in it.
    pub fn leave(&mut self, device: &str, token: &Token) -> bool {
        let Some(held) = self.by_device.get_mut(device) else {
            return false;
        };
        let Some(i) = held.iter().position(|t| t == token) else {
            return false;
        };
        held.swap_remove(i);
        if held.is_empty() {
            self.by_device.remove(device);
        }
        self.forget(device, token);
        true
    }

    /// The device's connection closed: every pass of it goes.
    pub fn gone(&mut self, device: &str) {
        for token in self.by_device.remove(device).unwrap_or_default() {
            self.forget(device, &token);
        }
    }

    fn forget(&mut self, device: &str, token: &Token) {
        if let Some(devices) = self.by_token.get_mut(token) {
            devices.remove(device);
            if devices.is_empty() {
                self.by_token.remove(token);
            }
        }
    }

    /// Which of the callee's `devices` a group ring from `caller` may reach: none unless the
    /// caller's device holds the pass itself (a token alone opens nothing for a stranger), and
    /// then only the callee's devices that joined that group, not the account's others.
    /// `elsewhere`: the devices holding the token on other instances (with Redis).
    pub fn admits<'a>(
        &self,
        caller: &str,
        token: &Token,
        devices: impl IntoIterator<Item = &'a DeviceId>,
        elsewhere: &HashSet<DeviceId>,
    ) -> Vec<DeviceId> {
        let Some(holders) = self.by_token.get(token) else {
            return Vec::new();
        };
        if !holders.contains(caller) {
            return Vec::new();
        }
        devices
            .into_iter()
            .filter(|d| d.as_str() != caller && (holders.contains(*d) || elsewhere.contains(*d)))
            .cloned()
            .collect()
    }

    /// The passes `device` holds.
    pub fn tokens(&self, device: &str) -> Vec<Token> {
        self.by_device.get(device).cloned().unwrap_or_default()
    }

    /// Every pass held here, as `(token, device)` (to refresh them in Redis).
    pub fn all(&self) -> Vec<(Token, DeviceId)> {
        self.by_device
            .iter()
            .flat_map(|(d, ts)| ts.iter().map(move |t| (*t, d.clone())))
            .collect()
    }

    /// Devices holding at least one pass, and tokens held (for the memory bound's tests and
    /// metrics).
    pub fn sizes(&self) -> (usize, usize) {
        (self.by_device.len(), self.by_token.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(ids: &[&str]) -> Vec<DeviceId> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn none() -> HashSet<DeviceId> {
        HashSet::new()
    }

    #[test]
    fn a_group_ring_reaches_only_the_callee_devices_that_joined_and_only_from_a_member() {
        let mut p = Passes::default();
        let (g, other) = ([1; 32], [2; 32]);
        p.join("alice-1", g).unwrap();
        p.join("carol-1", g).unwrap();
        p.join("carol-2", other).unwrap();
        let carol = devices(&["carol-1", "carol-2", "carol-3"]);
        assert_eq!(
            p.admits("alice-1", &g, &carol, &none()),
            devices(&["carol-1"])
        );
        // A device that never joined, holding the token it somehow learned: nothing.
        assert!(p.admits("mallory-1", &g, &carol, &none()).is_empty());
        // Another of alice's devices, not in the group: nothing either.
        assert!(p.admits("alice-2", &g, &carol, &none()).is_empty());
        // A token nobody joined.
        assert!(p.admits("alice-1", &[9; 32], &carol, &none()).is_empty());
        // The other group's token does not open this one's members.
        assert!(p.admits("alice-1", &other, &carol, &none()).is_empty());
        // A device that holds it on another instance (Redis says so), and the caller holds it here.
        let far: HashSet<DeviceId> = ["carol-3".to_string()].into_iter().collect();
        assert_eq!(
            p.admits("alice-1", &g, &carol, &far),
            devices(&["carol-1", "carol-3"])
        );
        // But a caller that holds it only elsewhere (its socket is here) is no member here.
        let caller_far: HashSet<DeviceId> = ["mallory-1".to_string()].into_iter().collect();
        assert!(p.admits("mallory-1", &g, &carol, &caller_far).is_empty());
        assert_eq!(p.tokens("alice-1"), vec![g]);
        assert_eq!(p.all().len(), 3);
        // Never the caller itself.
        assert!(p
            .admits("alice-1", &g, &devices(&["alice-1"]), &none())
            .is_empty());
    }

    #[test]
    fn joins_are_bounded_per_device_and_idempotent() {
        let mut p = Passes::default();
        for i in 0..MAX_PER_DEVICE as u8 {
            p.join("d", [i; 32]).unwrap();
            p.join("d", [i; 32]).unwrap();
        }
        assert_eq!(p.join("d", [99; 32]), Err(PassError::TooMany));
        assert_eq!(p.sizes(), (1, MAX_PER_DEVICE));
        // Leaving one makes room.
        assert!(p.leave("d", &[0; 32]));
        assert!(!p.leave("d", &[0; 32]), "once");
        assert_eq!(p.join("d", [99; 32]), Ok(()));
    }

    #[test]
    fn leaving_and_disconnecting_forget_everything() {
        let mut p = Passes::default();
        let g = [1; 32];
        p.join("a", g).unwrap();
        p.join("b", g).unwrap();
        p.join("b", [2; 32]).unwrap();
        assert!(p.leave("a", &g));
        assert!(p.admits("a", &g, &devices(&["b"]), &none()).is_empty());
        assert!(!p.leave("nobody", &g));
        p.gone("b");
        assert_eq!(p.sizes(), (0, 0), "no empty entries are left behind");
        p.gone("b");
    }
}
