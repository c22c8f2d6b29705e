//! Safety numbers: Signal's numeric fingerprint (version 0 hashing, 5200 iterations), 60 digits
//! identical on both sides. Our inputs are the 32-byte account key and the username as stable id.

use sha2::{Digest, Sha512};

use crate::{Key32, Username};

pub const ITERATIONS: u32 = 5200;

/// One party's 30 digits.
pub fn party_digits(key: &[u8], stable_id: &[u8], iterations: u32) -> String {
    let mut hash = {
        let mut h = Sha512::new();
        h.update([0u8, 0u8]);
        h.update(key);
        h.update(stable_id);
        h.update(key);
        h.finalize()
    };
    for _ in 1..iterations {
        let mut h = Sha512::new();
        h.update(hash);
        h.update(key);
        hash = h.finalize();
    }
    hash[..30]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect()
}

/// The 60 digits for a pair of parties, the lower half first, so both sides see the same.
pub fn digits_for(local: (&[u8], &[u8]), remote: (&[u8], &[u8]), iterations: u32) -> String {
    let l = party_digits(local.0, local.1, iterations);
    let r = party_digits(remote.0, remote.1, iterations);
    if l <= r {
        l + &r
    } else {
        r + &l
    }
}

/// The safety number between two accounts.
pub fn safety_number(a: &Username, ak_a: &Key32, b: &Username, ak_b: &Key32) -> String {
    digits_for(
        (&ak_a.0, a.as_str().as_bytes()),
        (&ak_b.0, b.as_str().as_bytes()),
        ITERATIONS,
    )
}

/// 60 digits as 12 groups of 5, for display.
pub fn grouped(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // libsignal's published vector (rust/protocol/src/fingerprint.rs, version 0 / 5200 iterations).
    const ALICE_KEY: &str = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868";
    const BOB_KEY: &str = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b";
    const EXPECTED: &str = "300354477692869396892869876765458257569162576843440918079131";

    #[test]
    fn libsignal_vector_from_both_sides() {
        let (a, b) = (hex(ALICE_KEY), hex(BOB_KEY));
        let alice_view = digits_for((&a, b"+14152222222"), (&b, b"+14153333333"), 5200);
        let bob_view = digits_for((&b, b"+14153333333"), (&a, b"+14152222222"), 5200);
        assert_eq!(alice_view, EXPECTED);
        assert_eq!(bob_view, EXPECTED);
    }

    #[test]
    fn own_inputs_are_symmetric_and_key_bound() {
        let (a, b) = (
            Username::parse("alice").unwrap(),
            Username::parse("bob").unwrap(),
        );
        let (ka, kb) = (Key32([1; 32]), Key32([2; 32]));
        let n = safety_number(&a, &ka, &b, &kb);
        assert_eq!(n.len(), 60);
        assert_eq!(n, safety_number(&b, &kb, &a, &ka));
        assert_ne!(n, safety_number(&a, &Key32([3; 32]), &b, &kb));
        assert_eq!(grouped(&n).split(' ').count(), 12);
    }

    #[test]
    fn anonchat_form_vector() {
        // docs/protocol.md §4: raw 32-byte account keys (no 0x05 type byte), the username as the
        // stable id. Computed independently in Python (hashlib) as well.
        let n = safety_number(
            &Username::parse("alice").unwrap(),
            &Key32([1; 32]),
            &Username::parse("bob").unwrap(),
            &Key32([2; 32]),
        );
        assert_eq!(
            grouped(&n),
            "01967 56016 84161 93702 99052 44989 02389 48933 41874 00641 97031 86220"
        );
    }
}
