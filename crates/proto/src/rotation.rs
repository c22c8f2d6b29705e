//! Account-key rotation (DESIGN P8, lost devices): a transition statement signed by both the old and
//! the new account key, and the walk a contact makes from the key it pinned to the key the server
//! names now. A chain that verifies lets the contact's warning say "the owner rotated the key"; it
//! is still a warning the contact accepts, because a thief holding the old key could rotate too.

use serde::{Deserialize, Serialize};

use crate::signing::{verify, SigningBytes};
use crate::{Key32, ProtoError, Sig64, Username};

/// Rotations the server keeps and answers per account (older ones are dropped first).
pub const MAX_HISTORY: usize = 64;

/// "`username` replaced account key `old_ak` with `new_ak` at `ts`", signed by both keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AkRotation {
    pub username: Username,
    pub old_ak: Key32,
    pub new_ak: Key32,
    /// Unix seconds.
    pub ts: u64,
    /// The old account key over [`AkRotation::signing_bytes`]: the owner of the old key made this.
    pub sig_old: Sig64,
    /// The new account key over the same bytes: whoever made it holds the new key.
    pub sig_new: Sig64,
}

impl AkRotation {
    pub fn signing_bytes(username: &Username, old_ak: &Key32, new_ak: &Key32, ts: u64) -> Vec<u8> {
        SigningBytes::new("ak-rotation")
            .str(username.as_str())
            .bytes(&old_ak.0)
            .bytes(&new_ak.0)
            .u64(ts)
            .finish()
    }

    /// Both signatures verify and the key really changes.
    pub fn verify(&self) -> Result<(), ProtoError> {
        if self.old_ak == self.new_ak {
            return Err(ProtoError::Malformed(
                "a rotation must change the key".into(),
            ));
        }
        let bytes = Self::signing_bytes(&self.username, &self.old_ak, &self.new_ak, self.ts);
        verify(&self.old_ak, &bytes, &self.sig_old)?;
        verify(&self.new_ak, &bytes, &self.sig_new)
    }
}

/// How a contact's pinned key relates to the key the server names now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Every step from the pinned key to the current one is a verified rotation of this account.
    Rotated { steps: usize },
    /// No verified path: the key was replaced without the old key's consent (or the server hid it).
    Unexplained,
}

/// Walks `history` (oldest first) from `pinned`, following only rotations of `username` whose both
/// signatures verify, and says whether the walk ends at `current`. Entries that do not continue the
/// walk are ignored, so a server cannot break a genuine chain by padding it, nor forge one.
pub fn follow(
    username: &Username,
    pinned: &Key32,
    current: &Key32,
    history: &[AkRotation],
) -> Chain {
    let mut at = *pinned;
    let mut steps = 0;
    for r in history.iter().take(MAX_HISTORY) {
        if &r.username == username && r.old_ak == at && r.verify().is_ok() {
            at = r.new_ak;
            steps += 1;
        }
    }
    if steps > 0 && &at == current {
        Chain::Rotated { steps }
    } else {
        Chain::Unexplained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn pubk(k: &SigningKey) -> Key32 {
        Key32(k.verifying_key().to_bytes())
    }

    fn rotation(name: &str, old: &SigningKey, new: &SigningKey, ts: u64) -> AkRotation {
        let username = Username::parse(name).unwrap();
        let bytes = AkRotation::signing_bytes(&username, &pubk(old), &pubk(new), ts);
        AkRotation {
            username,
            old_ak: pubk(old),
            new_ak: pubk(new),
            ts,
            sig_old: Sig64(old.sign(&bytes).to_bytes()),
            sig_new: Sig64(new.sign(&bytes).to_bytes()),
        }
    }

    #[test]
    fn signing_bytes_worked_example() {
        // docs/protocol.md §3.
        let u = Username::parse("alice").unwrap();
        let b = AkRotation::signing_bytes(&u, &Key32([1; 32]), &Key32([2; 32]), 1_700_000_000);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            format!(
                "616e6f6e636861742f763100616b2d726f746174696f6e00\
                 00000005616c696365\
                 00000020{}00000020{}\
                 000000006553f100",
                "01".repeat(32),
                "02".repeat(32)
            )
        );
    }

    #[test]
    fn both_signatures_are_needed() {
        let (a, b, c) = (key(1), key(2), key(3));
        let good = rotation("alice", &a, &b, 5);
        assert!(good.verify().is_ok());
        let mut only_new = good.clone();
        only_new.sig_old = rotation("alice", &c, &b, 5).sig_old;
        assert_eq!(only_new.verify(), Err(ProtoError::BadSignature));
        let mut only_old = good.clone();
        only_old.sig_new = rotation("alice", &a, &c, 5).sig_new;
        assert_eq!(only_old.verify(), Err(ProtoError::BadSignature));
        let mut other_user = good.clone();
        other_user.username = Username::parse("mallory").unwrap();
        assert_eq!(other_user.verify(), Err(ProtoError::BadSignature));
        let mut later = good;
        later.ts = 6;
        assert_eq!(later.verify(), Err(ProtoError::BadSignature));
        assert!(rotation("alice", &a, &a, 5).verify().is_err());
    }

    #[test]
    fn follows_a_chain_of_several_steps_and_ignores_padding() {
        let (a, b, c, m) = (key(1), key(2), key(3), key(9));
        let u = Username::parse("alice").unwrap();
        let history = vec![
            rotation("alice", &m, &a, 1), // before our pin: not on the path
            rotation("alice", &a, &b, 2),
            rotation("bob", &b, &m, 3), // another account's statement
            rotation("alice", &b, &c, 4),
        ];
        assert_eq!(
            follow(&u, &pubk(&a), &pubk(&c), &history),
            Chain::Rotated { steps: 2 }
        );
        assert_eq!(
            follow(&u, &pubk(&b), &pubk(&c), &history),
            Chain::Rotated { steps: 1 }
        );
        // The chain stops short of the key the server names: unexplained.
        assert_eq!(
            follow(&u, &pubk(&a), &pubk(&m), &history),
            Chain::Unexplained
        );
        // No history, or the same key: nothing was rotated.
        assert_eq!(follow(&u, &pubk(&a), &pubk(&c), &[]), Chain::Unexplained);
        assert_eq!(
            follow(&u, &pubk(&c), &pubk(&c), &history),
            Chain::Unexplained
        );
    }

    #[test]
    fn a_forged_link_breaks_the_chain() {
        let (a, b, m) = (key(1), key(2), key(9));
        let u = Username::parse("alice").unwrap();
        // The server's key "rotated in" with only its own signature over alice's old key.
        let mut forged = rotation("alice", &a, &m, 2);
        forged.sig_old = rotation("alice", &b, &m, 2).sig_old;
        assert_eq!(
            follow(&u, &pubk(&a), &pubk(&m), &[forged]),
            Chain::Unexplained
        );
    }
}
