//! Rings: the only way a chat starts. A pure state machine (no sockets, time passed in), so every
//! transition is unit-tested; the hub turns its outcomes into messages.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use anonchat_proto::wire::RingEnd;
use anonchat_proto::Username;

pub const RING_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an answered ring may keep relaying signaling blobs. The route lasts the whole chat, so
/// the two devices can repair a broken path (an ICE restart); it goes when either hangs up (at the
/// chat's end) or disconnects. This only bounds memory if both clients forget to hang up.
pub const ROUTE_TTL: Duration = Duration::from_secs(12 * 3600);

type DeviceId = String;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingState {
    Ringing { devices: HashSet<DeviceId> },
    Answered { callee_device: DeviceId },
}

#[derive(Debug, Clone)]
pub struct Ring {
    pub caller: Username,
    pub caller_device: DeviceId,
    pub callee: Username,
    pub state: RingState,
    pub deadline: Instant,
}

/// Who must hear what after a transition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `(ring id, device, reason)`: tell this device the ring ended.
    pub ended: Vec<(String, DeviceId, RingEnd)>,
    /// `(ring id, caller device, callee device)`: the hub introduces the two devices.
    pub answered: Option<(String, DeviceId, DeviceId)>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("unknown ring id")]
    Unknown,
    #[error("this device is not part of the ring")]
    NotParty,
    #[error("the ring is not in a state that allows this")]
    WrongState,
    #[error("this device has as many rings open as it may")]
    Busy,
}

/// Rings a device may hold at once: the ones it started plus the ones it answered (P9). Being
/// rung does not count, so nobody can use up another device's share by ringing it.
pub const MAX_PER_DEVICE: usize = 32;

/// Every ring, with indexes so that no transition scans them all (P9): by device (socket closed),
/// by callee while ringing (a device came online), by deadline (expiry), and each device's load.
pub struct Rings {
    map: HashMap<String, Ring>,
    timeout: Duration,
    by_device: HashMap<DeviceId, HashSet<String>>,
    ringing_for: HashMap<Username, HashSet<String>>,
    deadlines: BTreeSet<(Instant, String)>,
    load: HashMap<DeviceId, usize>,
}

impl Default for Rings {
    fn default() -> Self {
        Self::new(RING_TIMEOUT)
    }
}

fn add(index: &mut HashMap<DeviceId, HashSet<String>>, device: &str, id: &str) {
    index
        .entry(device.to_string())
        .or_default()
        .insert(id.to_string());
}

fn drop_from<K: std::hash::Hash + Eq + Clone>(
    index: &mut HashMap<K, HashSet<String>>,
    key: &K,
    id: &str,
) {
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

impl Rings {
    /// `timeout`: how long a ring rings (and a wake intent waits for a device) before it ends.
    pub fn new(timeout: Duration) -> Self {
        Self {
            map: HashMap::new(),
            timeout,
            by_device: HashMap::new(),
            ringing_for: HashMap::new(),
            deadlines: BTreeSet::new(),
            load: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Rings `device` started or answered that are still alive.
    pub fn load(&self, device: &str) -> usize {
        self.load.get(device).copied().unwrap_or(0)
    }

    fn add_load(&mut self, device: &str) {
        *self.load.entry(device.to_string()).or_default() += 1;
    }

    fn sub_load(&mut self, device: &str) {
        if let Some(n) = self.load.get_mut(device) {
            *n -= 1;
            if *n == 0 {
                self.load.remove(device);
            }
        }
    }

    /// Takes a ring out of the map and every index.
    fn remove(&mut self, id: &str) -> Option<Ring> {
        let ring = self.map.remove(id)?;
        self.deadlines.remove(&(ring.deadline, id.to_string()));
        drop_from(&mut self.by_device, &ring.caller_device, id);
        self.sub_load(&ring.caller_device);
        match &ring.state {
            RingState::Ringing { devices } => {
                for d in devices {
                    drop_from(&mut self.by_device, d, id);
                }
                drop_from(&mut self.ringing_for, &ring.callee, id);
            }
            RingState::Answered { callee_device } => {
                drop_from(&mut self.by_device, callee_device, id);
                let callee_device = callee_device.clone();
                self.sub_load(&callee_device);
            }
        }
        Some(ring)
    }

    /// `Busy` when the caller's device already holds `MAX_PER_DEVICE` rings.
    pub fn start(
        &mut self,
        id: String,
        caller: Username,
        caller_device: DeviceId,
        callee: Username,
        devices: HashSet<DeviceId>,
        now: Instant,
    ) -> Result<(), RingError> {
        if self.load(&caller_device) >= MAX_PER_DEVICE {
            return Err(RingError::Busy);
        }
        let deadline = now + self.timeout;
        add(&mut self.by_device, &caller_device, &id);
        for d in &devices {
            add(&mut self.by_device, d, &id);
        }
        self.add_load(&caller_device);
        self.ringing_for
            .entry(callee.clone())
            .or_default()
            .insert(id.clone());
        self.deadlines.insert((deadline, id.clone()));
        self.map.insert(
            id,
            Ring {
                caller,
                caller_device,
                callee,
                state: RingState::Ringing { devices },
                deadline,
            },
        );
        Ok(())
    }

    /// A device of `callee` came online: it joins every ring still ringing for that account (a
    /// friend's wake intent, or a ring to the account's other devices). Returns `(ring id, caller)`.
    pub fn wake(
        &mut self,
        callee: &Username,
        device: &str,
        now: Instant,
    ) -> Vec<(String, Username)> {
        let mut woken = Vec::new();
        for id in self.ringing_for.get(callee).into_iter().flatten() {
            let Some(ring) = self.map.get_mut(id) else {
                continue;
            };
            if let RingState::Ringing { devices } = &mut ring.state {
                if ring.deadline > now && devices.insert(device.to_string()) {
                    woken.push((id.clone(), ring.caller.clone()));
                }
            }
        }
        for (id, _) in &woken {
            add(&mut self.by_device, device, id);
        }
        woken
    }

    /// Only the devices it started with ring (a group's ring, or an invite into one: a device
    /// coming online later did not join the group and was not asked).
    pub fn close_to_wakes(&mut self, id: &str) {
        if let Some(ring) = self.map.get(id) {
            drop_from(&mut self.ringing_for, &ring.callee, id);
        }
    }

    /// Whether a ring is ringing for the account (its devices coming online would join it).
    pub fn ringing_for(&self, callee: &Username) -> bool {
        self.ringing_for.get(callee).is_some_and(|r| !r.is_empty())
    }

    pub fn get(&self, id: &str) -> Option<&Ring> {
        self.map.get(id)
    }

    /// `Busy` when accepting would take the answering device over `MAX_PER_DEVICE`.
    pub fn answer(
        &mut self,
        id: &str,
        device: &str,
        accept: bool,
        now: Instant,
    ) -> Result<Outcome, RingError> {
        let busy = self.load(device) >= MAX_PER_DEVICE;
        let ring = self.map.get_mut(id).ok_or(RingError::Unknown)?;
        let RingState::Ringing { devices } = &mut ring.state else {
            return Err(RingError::WrongState);
        };
        if !devices.contains(device) {
            return Err(RingError::NotParty);
        }
        let mut out = Outcome::default();
        if !accept {
            devices.remove(device);
            let empty = devices.is_empty();
            let caller_device = ring.caller_device.clone();
            drop_from(&mut self.by_device, &device.to_string(), id);
            if empty {
                out.ended
                    .push((id.to_string(), caller_device, RingEnd::Declined));
                self.remove(id);
            }
            return Ok(out);
        }
        if busy {
            return Err(RingError::Busy);
        }
        let others: Vec<DeviceId> = devices
            .iter()
            .filter(|d| d.as_str() != device)
            .cloned()
            .collect();
        out.ended = others
            .iter()
            .map(|d| (id.to_string(), d.clone(), RingEnd::AnsweredElsewhere))
            .collect();
        out.answered = Some((
            id.to_string(),
            ring.caller_device.clone(),
            device.to_string(),
        ));
        ring.state = RingState::Answered {
            callee_device: device.to_string(),
        };
        let old = std::mem::replace(&mut ring.deadline, now + ROUTE_TTL);
        let (new, callee) = (ring.deadline, ring.callee.clone());
        for d in &others {
            drop_from(&mut self.by_device, d, id);
        }
        drop_from(&mut self.ringing_for, &callee, id);
        self.deadlines.remove(&(old, id.to_string()));
        self.deadlines.insert((new, id.to_string()));
        self.add_load(device);
        Ok(out)
    }

    /// Either party ends the ring (caller cancels) or releases an answered route.
    pub fn hangup(&mut self, id: &str, device: &str) -> Result<Outcome, RingError> {
        let ring = self.map.get(id).ok_or(RingError::Unknown)?;
        let mut out = Outcome::default();
        match &ring.state {
            RingState::Ringing { devices } => {
                if ring.caller_device != device {
                    return Err(RingError::NotParty);
                }
                out.ended = devices
                    .iter()
                    .map(|d| (id.to_string(), d.clone(), RingEnd::Cancelled))
                    .collect();
            }
            RingState::Answered { callee_device } => {
                // The other side learns the route is gone: harmless once its session is open, and
                // a session still being set up fails at once instead of waiting for a timeout.
                let other = if ring.caller_device == device {
                    callee_device
                } else if callee_device == device {
                    &ring.caller_device
                } else {
                    return Err(RingError::NotParty);
                };
                out.ended
                    .push((id.to_string(), other.clone(), RingEnd::Cancelled));
            }
        }
        self.remove(id);
        Ok(out)
    }

    /// The other device of an answered ring, for relaying.
    pub fn route(&self, id: &str, from: &str) -> Result<&str, RingError> {
        let ring = self.map.get(id).ok_or(RingError::Unknown)?;
        let RingState::Answered { callee_device } = &ring.state else {
            return Err(RingError::WrongState);
        };
        if ring.caller_device == from {
            Ok(callee_device)
        } else if callee_device == from {
            Ok(&ring.caller_device)
        } else {
            Err(RingError::NotParty)
        }
    }

    /// Ends a ring whose answering device could not be introduced (no one-time key left).
    pub fn fail(&mut self, id: &str) -> Outcome {
        let mut out = Outcome::default();
        if let Some(ring) = self.remove(id) {
            out.ended
                .push((id.to_string(), ring.caller_device, RingEnd::Unavailable));
            if let RingState::Answered { callee_device } = ring.state {
                out.ended
                    .push((id.to_string(), callee_device, RingEnd::Unavailable));
            }
        }
        out
    }

    /// A device's socket closed: only the rings it is part of are looked at.
    pub fn device_gone(&mut self, device: &str) -> Outcome {
        let mut out = Outcome::default();
        let ids: Vec<String> = self
            .by_device
            .get(device)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            let Some(ring) = self.map.get_mut(&id) else {
                continue;
            };
            match &mut ring.state {
                RingState::Ringing { devices } => {
                    if ring.caller_device == device {
                        out.ended.extend(
                            devices
                                .iter()
                                .map(|d| (id.clone(), d.clone(), RingEnd::Cancelled)),
                        );
                        self.remove(&id);
                    } else if devices.remove(device) {
                        drop_from(&mut self.by_device, &device.to_string(), &id);
                        if devices.is_empty() {
                            out.ended.push((
                                id.clone(),
                                ring.caller_device.clone(),
                                RingEnd::Unavailable,
                            ));
                            self.remove(&id);
                        }
                    }
                }
                // A live session does not need the server; one still being set up learns at once.
                RingState::Answered { callee_device } => {
                    let other = if ring.caller_device == device {
                        callee_device.clone()
                    } else if callee_device == device {
                        ring.caller_device.clone()
                    } else {
                        continue;
                    };
                    out.ended.push((id.clone(), other, RingEnd::Unavailable));
                    self.remove(&id);
                }
            }
        }
        out
    }

    /// Rings past their deadline, earliest first, without looking at the others: ringing ones
    /// time out for everyone, stale routes vanish.
    pub fn expire(&mut self, now: Instant) -> Outcome {
        let mut out = Outcome::default();
        while let Some((deadline, id)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            let Some(ring) = self.remove(&id) else {
                continue;
            };
            if let RingState::Ringing { devices } = &ring.state {
                // No device ever came for it: the account was not reachable.
                let why = if devices.is_empty() {
                    RingEnd::Unavailable
                } else {
                    RingEnd::Timeout
                };
                out.ended
                    .push((id.clone(), ring.caller_device.clone(), why));
                out.ended.extend(
                    devices
                        .iter()
                        .map(|d| (id.clone(), d.clone(), RingEnd::Timeout)),
                );
            }
        }
        out
    }

    /// Every index agrees with the map (for tests).
    #[cfg(test)]
    fn consistent(&self) -> bool {
        let indexed: usize = self.by_device.values().map(HashSet::len).sum();
        let parties: usize = self
            .map
            .values()
            .map(|r| {
                1 + match &r.state {
                    RingState::Ringing { devices } => devices.len(),
                    RingState::Answered { .. } => 1,
                }
            })
            .sum();
        let loads: usize = self.load.values().sum();
        let expected_load: usize = self
            .map
            .values()
            .map(|r| 1 + usize::from(matches!(r.state, RingState::Answered { .. })))
            .sum();
        indexed == parties && self.deadlines.len() == self.map.len() && loads == expected_load
    }
}

#[cfg(test)]
mod tests;
