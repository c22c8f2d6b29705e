//! Groups (DESIGN §10): the roster the group's admin signs. A group is a call of 2–10 devices, one
//! per member; the roster is the only thing that says who is in it, so members accept a session,
//! a frame or a change only when a roster signed by the admin's account key vouches for it, and a
//! server (which relays the blobs that carry it) cannot add anyone, swap a device or replay an
//! older roster to bring back someone the admin removed.

use serde::{Deserialize, Serialize};

use crate::signing::{verify, SigningBytes};
use crate::{DeviceCert, Key32, ProtoError, Sig64, Username};

/// Members of one group at most (a mesh of 45 pairwise links).
pub const MAX_MEMBERS: usize = 10;
/// A group is a call: it lasts while two members are in it.
pub const MIN_MEMBERS: usize = 2;

/// One member: its account key (the key its device certificate is checked under) and the one
/// device of it that is in the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub ak: Key32,
    pub device: DeviceCert,
}

impl Member {
    pub fn username(&self) -> &Username {
        &self.device.username
    }
}

/// Who is in group `group` at `epoch`, and the group-wide auto-delete timer, signed by `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub v: u8,
    /// Random, chosen by the admin when the group starts; never shown to the server.
    pub group: Key32,
    /// Grows with every change the admin signs; a roster is taken only over a lower epoch.
    pub epoch: u64,
    /// Random, chosen by the admin when the group starts and again on every removal: the pass
    /// token members join at the server comes from it ([`Roster::pass_token`]), so a removed
    /// member, who never gets a roster with the new pass, can no longer ring through the gate.
    pub pass: Key32,
    pub admin: Username,
    /// Seconds, one of [`crate::limits::TIMER_CHOICES`] (0: off).
    pub timer: u32,
    /// Sorted by username, each username once; the admin among them.
    pub members: Vec<Member>,
    /// The admin's account key over [`Roster::signing_bytes`].
    pub sig: Sig64,
}

/// Why a roster was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("the roster is for another group")]
    OtherGroup,
    #[error("the roster names another admin")]
    OtherAdmin,
    #[error("the roster is not newer than the one held (epoch {got}, held {held}): a replay")]
    Stale { got: u64, held: u64 },
}

impl Roster {
    /// The bytes the admin signs: `group-roster`, then u64 version, group (32), u64 epoch, pass
    /// (32), admin, u64 timer, u64 member count, and per member its account key (32), its device
    /// certificate's own signing bytes and that certificate's signature (64).
    pub fn signing_bytes(
        group: &Key32,
        epoch: u64,
        pass: &Key32,
        admin: &Username,
        timer: u32,
        members: &[Member],
    ) -> Vec<u8> {
        let mut b = SigningBytes::new("group-roster")
            .u64(u64::from(crate::VERSION))
            .bytes(&group.0)
            .u64(epoch)
            .bytes(&pass.0)
            .str(admin.as_str())
            .u64(u64::from(timer))
            .u64(members.len() as u64);
        for m in members {
            b = b
                .bytes(&m.ak.0)
                .bytes(&m.device.bytes_to_sign())
                .bytes(&m.device.sig.0);
        }
        b.finish()
    }

    pub fn bytes_to_sign(&self) -> Vec<u8> {
        Self::signing_bytes(
            &self.group,
            self.epoch,
            &self.pass,
            &self.admin,
            self.timer,
            &self.members,
        )
    }

    /// The pass token of this roster's members at the server.
    pub fn pass_token(&self) -> Key32 {
        Key32(pass_token(&self.group, &self.pass))
    }

    /// The admin's entry.
    pub fn admin_member(&self) -> Option<&Member> {
        self.member(&self.admin)
    }

    pub fn member(&self, username: &Username) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.username().cmp(username))
            .ok()
            .map(|i| &self.members[i])
    }

    /// Well-formed, every device certified by its member's account key, and signed by the admin's
    /// account key `admin_ak` (the key the member pinned for the admin, who rang it into the group:
    /// the roster's own entry for the admin must name that key too).
    pub fn verify(&self, admin_ak: &Key32) -> Result<(), ProtoError> {
        if self.v != crate::VERSION {
            return Err(ProtoError::BadVersion(self.v));
        }
        let n = self.members.len();
        if n > MAX_MEMBERS {
            return Err(ProtoError::TooMany {
                what: "group members",
                count: n,
                limit: MAX_MEMBERS,
            });
        }
        if n < MIN_MEMBERS {
            return Err(ProtoError::Malformed(
                "a group has two members at least".into(),
            ));
        }
        if !crate::limits::TIMER_CHOICES.contains(&self.timer) {
            return Err(ProtoError::Malformed("timer".into()));
        }
        // Strictly ascending: canonical (one byte string per roster) and no one twice.
        if self
            .members
            .windows(2)
            .any(|w| w[0].username() >= w[1].username())
        {
            return Err(ProtoError::Malformed(
                "members must be sorted by username, each once".into(),
            ));
        }
        match self.admin_member() {
            Some(m) if &m.ak == admin_ak => {}
            Some(_) => return Err(ProtoError::BadSignature),
            None => return Err(ProtoError::Malformed("the admin is not a member".into())),
        }
        for m in &self.members {
            m.device.verify(&m.ak)?;
        }
        verify(admin_ak, &self.bytes_to_sign(), &self.sig)
    }

    /// Whether this roster may replace `held`: same group and admin, a higher epoch, and valid.
    pub fn follows(&self, held: &Roster) -> Result<(), RosterError> {
        if self.group != held.group {
            return Err(RosterError::OtherGroup);
        }
        let held_admin = held.admin_member().map(|m| m.ak);
        if self.admin != held.admin || self.admin_member().map(|m| m.ak) != held_admin {
            return Err(RosterError::OtherAdmin);
        }
        if self.epoch <= held.epoch {
            return Err(RosterError::Stale {
                got: self.epoch,
                held: held.epoch,
            });
        }
        let Some(admin_ak) = held_admin else {
            return Err(RosterError::OtherAdmin);
        };
        Ok(self.verify(&admin_ak)?)
    }
}

/// The pass token a member's device joins at the server so that members who are not friends may
/// ring each other (the server's `group_pass.rs`): SHA-256 over the `group-pass` bytes of the
/// group's id and the roster's pass. Only members of the current roster know the pass; the server
/// learns the token and nothing it came from.
pub fn pass_token(group: &Key32, pass: &Key32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(
        SigningBytes::new("group-pass")
            .bytes(&group.0)
            .bytes(&pass.0)
            .finish(),
    )
    .into()
}

#[cfg(test)]
mod tests;
