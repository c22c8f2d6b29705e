//! Rings: the only way a chat starts. A pure state machine (no sockets, time passed in), so every
//! transition is unit-tested; the hub turns its outcomes into messages.

use std::collections::{HashMap, HashSet};
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
}

pub struct Rings {
    map: HashMap<String, Ring>,
    timeout: Duration,
}

impl Default for Rings {
    fn default() -> Self {
        Self::new(RING_TIMEOUT)
    }
}

impl Rings {
    /// `timeout`: how long a ring rings (and a wake intent waits for a device) before it ends.
    pub fn new(timeout: Duration) -> Self {
        Self {
            map: HashMap::new(),
            timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn start(
        &mut self,
        id: String,
        caller: Username,
        caller_device: DeviceId,
        callee: Username,
        devices: HashSet<DeviceId>,
        now: Instant,
    ) {
        self.map.insert(
            id,
            Ring {
                caller,
                caller_device,
                callee,
                state: RingState::Ringing { devices },
                deadline: now + self.timeout,
            },
        );
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
        for (id, ring) in self.map.iter_mut() {
            if let RingState::Ringing { devices } = &mut ring.state {
                if &ring.callee == callee
                    && ring.deadline > now
                    && devices.insert(device.to_string())
                {
                    woken.push((id.clone(), ring.caller.clone()));
                }
            }
        }
        woken
    }

    pub fn get(&self, id: &str) -> Option<&Ring> {
        self.map.get(id)
    }

    pub fn answer(
        &mut self,
        id: &str,
        device: &str,
        accept: bool,
        now: Instant,
    ) -> Result<Outcome, RingError> {
        let ring = self.map.get_mut(id).ok_or(RingError::Unknown)?;
        let RingState::Ringing { devices } = &mut ring.state else {
            return Err(RingError::WrongState);
        };
        if !devices.contains(device) {
            return Err(RingError::NotParty);
        }
        let mut out = Outcome::default();
        if accept {
            out.ended = devices
                .iter()
                .filter(|d| d.as_str() != device)
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
            ring.deadline = now + ROUTE_TTL;
        } else {
            devices.remove(device);
            if devices.is_empty() {
                out.ended.push((
                    id.to_string(),
                    ring.caller_device.clone(),
                    RingEnd::Declined,
                ));
                self.map.remove(id);
            }
        }
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
        self.map.remove(id);
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
        if let Some(ring) = self.map.remove(id) {
            out.ended
                .push((id.to_string(), ring.caller_device, RingEnd::Unavailable));
            if let RingState::Answered { callee_device } = ring.state {
                out.ended
                    .push((id.to_string(), callee_device, RingEnd::Unavailable));
            }
        }
        out
    }

    /// A device's socket closed.
    pub fn device_gone(&mut self, device: &str) -> Outcome {
        let mut out = Outcome::default();
        self.map.retain(|id, ring| match &mut ring.state {
            RingState::Ringing { devices } => {
                if ring.caller_device == device {
                    out.ended.extend(
                        devices
                            .iter()
                            .map(|d| (id.clone(), d.clone(), RingEnd::Cancelled)),
                    );
                    false
                } else if devices.remove(device) && devices.is_empty() {
                    out.ended
                        .push((id.clone(), ring.caller_device.clone(), RingEnd::Unavailable));
                    false
                } else {
                    true
                }
            }
            // A live session does not need the server; one still being set up learns at once.
            RingState::Answered { callee_device } => {
                let other = if ring.caller_device == device {
                    callee_device.clone()
                } else if callee_device == device {
                    ring.caller_device.clone()
                } else {
                    return true;
                };
                out.ended.push((id.clone(), other, RingEnd::Unavailable));
                false
            }
        });
        out
    }

    /// Rings past their deadline: ringing ones time out for everyone, stale routes vanish.
    pub fn expire(&mut self, now: Instant) -> Outcome {
        let mut out = Outcome::default();
        self.map.retain(|id, ring| {
            if ring.deadline > now {
                return true;
            }
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
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(now: Instant) -> Rings {
        let mut r = Rings::default();
        r.start(
            "r1".into(),
            Username::parse("alice").unwrap(),
            "a1".into(),
            Username::parse("bob").unwrap(),
            ["b1".to_string(), "b2".to_string()].into_iter().collect(),
            now,
        );
        r
    }

    #[test]
    fn first_accept_wins_others_answered_elsewhere() {
        let now = Instant::now();
        let mut r = setup(now);
        let out = r.answer("r1", "b2", true, now).unwrap();
        assert_eq!(out.answered, Some(("r1".into(), "a1".into(), "b2".into())));
        assert_eq!(
            out.ended,
            vec![("r1".into(), "b1".into(), RingEnd::AnsweredElsewhere)]
        );
        assert_eq!(r.answer("r1", "b1", true, now), Err(RingError::WrongState));
        assert_eq!(r.route("r1", "a1"), Ok("b2"));
        assert_eq!(r.route("r1", "b2"), Ok("a1"));
        assert_eq!(r.route("r1", "b1"), Err(RingError::NotParty));
        assert_eq!(r.route("nope", "a1"), Err(RingError::Unknown));
    }

    /// Alice rings Bob, who has no device online.
    fn wake_intent(now: Instant) -> (Rings, Username) {
        let mut r = Rings::new(Duration::from_secs(30));
        let bob = Username::parse("bob").unwrap();
        let alice = Username::parse("alice").unwrap();
        r.start(
            "w".into(),
            alice,
            "a1".into(),
            bob.clone(),
            HashSet::new(),
            now,
        );
        (r, bob)
    }

    #[test]
    fn a_wake_intent_rings_the_first_device_to_come_in_time() {
        let now = Instant::now();
        let (mut r, bob) = wake_intent(now);
        assert!(r
            .wake(&Username::parse("carol").unwrap(), "c1", now)
            .is_empty());
        let woken = r.wake(&bob, "b1", now + Duration::from_secs(10));
        assert_eq!(
            woken,
            vec![("w".to_string(), Username::parse("alice").unwrap())]
        );
        assert!(r.wake(&bob, "b1", now).is_empty(), "once per device");
        assert!(r.answer("w", "b1", true, now).unwrap().answered.is_some());
    }

    #[test]
    fn a_wake_intent_nobody_answers_ends_as_unavailable() {
        let now = Instant::now();
        let (mut r, bob) = wake_intent(now);
        let out = r.expire(now + Duration::from_secs(30));
        assert_eq!(
            out.ended,
            vec![("w".into(), "a1".into(), RingEnd::Unavailable)]
        );
        assert!(
            r.wake(&bob, "b1", now + Duration::from_secs(31)).is_empty(),
            "too late"
        );
    }

    #[test]
    fn all_decline_tells_caller() {
        let now = Instant::now();
        let mut r = setup(now);
        assert!(r.answer("r1", "b1", false, now).unwrap().ended.is_empty());
        let out = r.answer("r1", "b2", false, now).unwrap();
        assert_eq!(
            out.ended,
            vec![("r1".into(), "a1".into(), RingEnd::Declined)]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn times_out_after_30s_for_everyone() {
        let now = Instant::now();
        let mut r = setup(now);
        assert!(r.expire(now + Duration::from_secs(29)).ended.is_empty());
        let out = r.expire(now + RING_TIMEOUT);
        assert_eq!(out.ended.len(), 3);
        assert!(out.ended.iter().all(|(_, _, why)| *why == RingEnd::Timeout));
        assert!(r.is_empty());
    }

    #[test]
    fn strangers_cannot_answer_or_hang_up() {
        let now = Instant::now();
        let mut r = setup(now);
        assert_eq!(r.answer("r1", "x9", true, now), Err(RingError::NotParty));
        assert_eq!(r.hangup("r1", "b1"), Err(RingError::NotParty));
        assert_eq!(r.answer("zz", "b1", true, now), Err(RingError::Unknown));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn caller_leaving_cancels_ringing_devices() {
        let now = Instant::now();
        let mut r = setup(now);
        let mut ended = r.device_gone("a1").ended;
        ended.sort();
        assert_eq!(
            ended,
            vec![
                ("r1".into(), "b1".into(), RingEnd::Cancelled),
                ("r1".into(), "b2".into(), RingEnd::Cancelled)
            ]
        );
    }

    #[test]
    fn answered_route_dropped_and_other_side_told_when_a_device_leaves() {
        let now = Instant::now();
        let mut r = setup(now);
        r.answer("r1", "b1", true, now).unwrap();
        assert_eq!(
            r.device_gone("b1").ended,
            vec![("r1".into(), "a1".into(), RingEnd::Unavailable)]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn hangup_of_answered_route_tells_the_other_side() {
        let now = Instant::now();
        let mut r = setup(now);
        r.answer("r1", "b1", true, now).unwrap();
        assert_eq!(
            r.hangup("r1", "b1").unwrap().ended,
            vec![("r1".into(), "a1".into(), RingEnd::Cancelled)]
        );
        assert_eq!(r.route("r1", "a1"), Err(RingError::Unknown));
    }
}
