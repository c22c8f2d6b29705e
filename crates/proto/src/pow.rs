//! Proof-of-work stamps (hashcash style): SHA-256 over the stamp's signing bytes must start with
//! `bits` zero bits. A stamp names what it pays for (`resource`) and when it was made.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::signing::SigningBytes;
use crate::ProtoError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub bits: u8,
    /// Unix seconds when the stamp was made.
    pub ts: u64,
    pub nonce: u64,
}

/// The most work a client does for one stamp: 2^24 hashes is a few seconds on a laptop. A server
/// asking for more (by mistake or to burn its users' CPU) gets a clear refusal, not a hung client.
pub const MAX_CLIENT_BITS: u8 = 24;

/// Whether a client should pay `bits` at all.
pub fn affordable(bits: u8) -> Result<u8, ProtoError> {
    if bits > MAX_CLIENT_BITS {
        Err(ProtoError::PowTooHard {
            bits,
            max: MAX_CLIENT_BITS,
        })
    } else {
        Ok(bits)
    }
}

/// Oldest (and furthest in the future) a stamp may be, in seconds.
pub const MAX_AGE_SECS: u64 = 300;

/// What a registration pays for: the name and the account key it will be bound to.
pub fn register_resource(username: &crate::Username, ak_pub: &crate::Key32) -> Vec<u8> {
    SigningBytes::new("register")
        .str(username.as_str())
        .bytes(&ak_pub.0)
        .finish()
}

/// What a lookup, ring or friend request pays for: this requester reaching that account.
pub fn contact_resource(from: &crate::Username, to: &crate::Username) -> Vec<u8> {
    SigningBytes::new("contact")
        .str(from.as_str())
        .str(to.as_str())
        .finish()
}

impl Stamp {
    fn digest(resource: &[u8], bits: u8, ts: u64, nonce: u64) -> [u8; 32] {
        let bytes = SigningBytes::new("pow")
            .bytes(resource)
            .u64(u64::from(bits))
            .u64(ts)
            .u64(nonce)
            .finish();
        Sha256::digest(bytes).into()
    }

    /// Searches for a nonce. Expected work is 2^bits hashes.
    pub fn mint(resource: &[u8], bits: u8, ts: u64) -> Self {
        Self::mint_from(resource, bits, ts, 0)
    }

    /// Like `mint`, searching from `start`: give a random start when the same resource may be paid
    /// for twice within a second (a server takes each stamp once).
    pub fn mint_from(resource: &[u8], bits: u8, ts: u64, start: u64) -> Self {
        let mut nonce = start;
        loop {
            if leading_zero_bits(&Self::digest(resource, bits, ts, nonce)) >= u32::from(bits) {
                return Self { bits, ts, nonce };
            }
            nonce = nonce.wrapping_add(1);
        }
    }

    /// The stamp's hash, which a server remembers to refuse the same stamp twice.
    pub fn id(&self, resource: &[u8]) -> [u8; 32] {
        Self::digest(resource, self.bits, self.ts, self.nonce)
    }

    pub fn check(&self, resource: &[u8], min_bits: u8, now: u64) -> Result<(), ProtoError> {
        let fresh = self.ts.abs_diff(now) <= MAX_AGE_SECS;
        let hard_enough = self.bits >= min_bits && self.bits <= 64;
        let solved = leading_zero_bits(&self.id(resource)) >= u32::from(self.bits);
        if fresh && hard_enough && solved {
            Ok(())
        } else {
            Err(ProtoError::BadProofOfWork)
        }
    }
}

fn leading_zero_bits(h: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in h {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        let mut h = [0xffu8; 32];
        assert_eq!(leading_zero_bits(&h), 0);
        h[0] = 0;
        h[1] = 0x10;
        assert_eq!(leading_zero_bits(&h), 11);
        h[1] = 0;
        h[2] = 0x01;
        assert_eq!(leading_zero_bits(&h), 23);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
    }

    /// The stamp's hash is SHA-256 over the documented layout (docs/protocol.md §5).
    #[test]
    fn a_stamp_id_is_sha256_of_its_layout() {
        let stamp = Stamp {
            bits: 3,
            ts: 4,
            nonce: 5,
        };
        let field = |b: &[u8]| [(b.len() as u32).to_be_bytes().as_slice(), b].concat();
        let layout = [
            b"anonchat/v1\0pow\0".to_vec(),
            field(b"res"),
            3u64.to_be_bytes().to_vec(),
            4u64.to_be_bytes().to_vec(),
            5u64.to_be_bytes().to_vec(),
        ]
        .concat();
        let want: [u8; 32] = Sha256::digest(layout).into();
        assert_eq!(stamp.id(b"res"), want);
    }

    #[test]
    fn a_client_pays_at_most_max_client_bits() {
        assert_eq!(affordable(MAX_CLIENT_BITS), Ok(MAX_CLIENT_BITS));
        assert_eq!(affordable(0), Ok(0));
        assert!(matches!(
            affordable(MAX_CLIENT_BITS + 1),
            Err(ProtoError::PowTooHard { bits: 25, max: 24 })
        ));
        assert!(affordable(255).is_err());
    }

    #[test]
    fn worked_example_of_docs_protocol_md() {
        // §4: alice reaching bob, 8 bits, ts 1764100000: the first nonce from 0 that solves it.
        let res = contact_resource(
            &crate::Username::parse("alice").unwrap(),
            &crate::Username::parse("bob").unwrap(),
        );
        let s = Stamp::mint(&res, 8, 1_764_100_000);
        assert_eq!(s.nonce, 151);
        let id: String = s.id(&res).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            id,
            "00e4327d08ecec39850ddc86b2243776e0ba51cac0bf09a5d13aec5cd61eddc7"
        );
    }

    #[test]
    fn mint_then_check() {
        let s = Stamp::mint(b"r", 12, 1000);
        assert!(s.check(b"r", 12, 1000).is_ok());
        assert!(s.check(b"r", 12, 1000 + MAX_AGE_SECS + 1).is_err(), "stale");
        assert!(s.check(b"other", 12, 1000).is_err(), "bound to resource");
        assert!(s.check(b"r", 13, 1000).is_err(), "too easy for the server");
        let mut forged = s.clone();
        forged.nonce += 1;
        // A neighbouring nonce almost never solves the puzzle too; check the hash says so.
        if leading_zero_bits(&forged.id(b"r")) < 12 {
            assert!(forged.check(b"r", 12, 1000).is_err());
        }
    }
}
