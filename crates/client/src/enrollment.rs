//! The old device's side of adding a device (DESIGN §7) as a pure state machine: which join
//! request the user is looking at, and whether an approval still names exactly it.
//!
//! A server that lies can replace the joining device's keys after the user compared the codes, or
//! answer one open enrollment with several joins. An enrollment is for one device: the first join
//! is shown with its comparison code; any further join (under the same device id or another) aborts
//! the enrollment, and an approval must carry the code the user was shown for that very request.

use anonchat_proto::enroll::normalize_compare_code;
use anonchat_proto::wire::SignedOtk;
use anonchat_proto::{Caps, Key32};

/// A new device that joined this device's enrollment, waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub device_id: String,
    pub dk_ed25519: Key32,
    pub dk_curve25519: Key32,
    pub caps: Caps,
    pub otk: SignedOtk,
    /// The comparison code over this account and exactly these keys.
    pub compare: String,
}

#[derive(Debug, Default)]
enum Phase {
    /// No enrollment open here.
    #[default]
    Idle,
    /// Open, no device joined yet.
    Open,
    Requested(Box<JoinRequest>),
    /// A second join came: nothing is approved until the user opens a new enrollment.
    Aborted,
}

/// What to do with a join request the server passed on.
#[derive(Debug, PartialEq, Eq)]
pub enum OnJoin {
    /// Show it to the user with its comparison code.
    Show { device_id: String, compare: String },
    /// Tell the user loudly; decline these device ids at the server.
    Abort { decline: Vec<String> },
    /// Not news (no enrollment is open here): drop it with a warning.
    Ignore,
}

/// Why an approval was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("no device is waiting with that id")]
    NoRequest,
    #[error("the enrollment was aborted: a second device tried to join it")]
    Aborted,
    #[error(
        "the code does not match the waiting device: the enrollment is aborted, start it again"
    )]
    CodeMismatch,
}

#[derive(Debug, Default)]
pub struct EnrollGate {
    phase: Phase,
}

impl EnrollGate {
    /// A new enrollment opened here (the server keeps one per device: it replaces the last).
    pub fn open(&mut self) {
        self.phase = Phase::Open;
    }

    pub fn clear(&mut self) {
        self.phase = Phase::Idle;
    }

    pub fn on_join(&mut self, req: JoinRequest) -> OnJoin {
        match std::mem::take(&mut self.phase) {
            Phase::Idle => OnJoin::Ignore,
            Phase::Open => {
                let out = OnJoin::Show {
                    device_id: req.device_id.clone(),
                    compare: req.compare.clone(),
                };
                self.phase = Phase::Requested(Box::new(req));
                out
            }
            Phase::Requested(first) => {
                self.phase = Phase::Aborted;
                let mut decline = vec![first.device_id];
                if !decline.contains(&req.device_id) {
                    decline.push(req.device_id);
                }
                OnJoin::Abort { decline }
            }
            Phase::Aborted => {
                self.phase = Phase::Aborted;
                OnJoin::Abort {
                    decline: vec![req.device_id],
                }
            }
        }
    }

    /// The user approves `device_id` having been shown `compare`: hands back the request only if
    /// both name the waiting one. A wrong code aborts (the request changed under the user's eyes).
    pub fn approve(&mut self, device_id: &str, compare: &str) -> Result<JoinRequest, ApproveError> {
        match std::mem::take(&mut self.phase) {
            Phase::Requested(r) if r.device_id == device_id => {
                if normalize_compare_code(compare) == normalize_compare_code(&r.compare) {
                    Ok(*r)
                } else {
                    self.phase = Phase::Aborted;
                    Err(ApproveError::CodeMismatch)
                }
            }
            Phase::Aborted => {
                self.phase = Phase::Aborted;
                Err(ApproveError::Aborted)
            }
            other => {
                self.phase = other;
                Err(ApproveError::NoRequest)
            }
        }
    }

    /// The user declines: the enrollment is over either way.
    pub fn decline(&mut self) {
        self.phase = Phase::Idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_proto::Sig64;

    fn req(id: &str, key: u8) -> JoinRequest {
        JoinRequest {
            device_id: id.into(),
            dk_ed25519: Key32([key; 32]),
            dk_curve25519: Key32([key + 1; 32]),
            caps: Caps::default(),
            otk: SignedOtk {
                key: Key32([key + 2; 32]),
                sig: Sig64([0; 64]),
            },
            compare: format!("{key:05} 00000 00000 00000 00000"),
        }
    }

    #[test]
    fn a_join_without_an_open_enrollment_is_ignored() {
        let mut g = EnrollGate::default();
        assert_eq!(g.on_join(req("d1", 1)), OnJoin::Ignore);
        assert_eq!(g.approve("d1", "00001"), Err(ApproveError::NoRequest));
    }

    #[test]
    fn the_first_join_is_shown_and_approved_with_its_code() {
        let mut g = EnrollGate::default();
        g.open();
        let r = req("d1", 1);
        assert_eq!(
            g.on_join(r.clone()),
            OnJoin::Show {
                device_id: "d1".into(),
                compare: r.compare.clone()
            }
        );
        assert_eq!(g.approve("d2", &r.compare), Err(ApproveError::NoRequest));
        assert_eq!(g.approve("d1", "00001-00000 00000 00000 00000"), Ok(r));
        assert_eq!(
            g.approve("d1", "00001 00000 00000 00000 00000"),
            Err(ApproveError::NoRequest),
            "approved once"
        );
    }

    #[test]
    fn a_second_join_under_the_same_id_aborts_and_nothing_is_approved() {
        let mut g = EnrollGate::default();
        g.open();
        let genuine = req("d1", 1);
        g.on_join(genuine.clone());
        assert_eq!(
            g.on_join(req("d1", 7)),
            OnJoin::Abort {
                decline: vec!["d1".into()]
            }
        );
        assert_eq!(
            g.approve("d1", &genuine.compare),
            Err(ApproveError::Aborted)
        );
        // Still aborted for any later join, until the user opens a new enrollment.
        assert_eq!(
            g.on_join(req("d3", 3)),
            OnJoin::Abort {
                decline: vec!["d3".into()]
            }
        );
        g.open();
        assert!(matches!(g.on_join(req("d4", 4)), OnJoin::Show { .. }));
    }

    #[test]
    fn a_second_join_under_another_id_aborts_both() {
        let mut g = EnrollGate::default();
        g.open();
        g.on_join(req("d1", 1));
        assert_eq!(
            g.on_join(req("d2", 2)),
            OnJoin::Abort {
                decline: vec!["d1".into(), "d2".into()]
            }
        );
    }

    #[test]
    fn an_approval_with_another_code_aborts() {
        let mut g = EnrollGate::default();
        g.open();
        g.on_join(req("d1", 1));
        assert_eq!(
            g.approve("d1", "99999 00000 00000 00000 00000"),
            Err(ApproveError::CodeMismatch)
        );
        assert_eq!(
            g.approve("d1", "00001 00000 00000 00000 00000"),
            Err(ApproveError::Aborted)
        );
    }

    #[test]
    fn declining_ends_the_enrollment() {
        let mut g = EnrollGate::default();
        g.open();
        g.on_join(req("d1", 1));
        g.decline();
        assert_eq!(g.on_join(req("d2", 2)), OnJoin::Ignore);
    }
}
