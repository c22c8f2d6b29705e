//! Adding a device to an account (DESIGN §7): the AK-signed enrollment token with its 8-character
//! code and QR string, the fingerprint both devices show, and what the old device hands the new one
//! (inside an Olm message the server cannot read).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::frames::SecretText;
use crate::fvc::CROCKFORD;
use crate::signing::{enroll_token_bytes, verify};
use crate::{Key32, ProtoError, Sig64, Username};

/// Characters of an enrollment code (Crockford base32: 40 bits).
pub const CODE_LEN: usize = 8;
/// How long an enrollment token is good for.
pub const TOKEN_TTL_SECS: u64 = 300;
/// Contacts handed over at most (keeps the handover inside one relay blob).
pub const MAX_HANDOVER_CONTACTS: usize = 100;

/// A fresh code from 5 random bytes.
pub fn code_from_bytes(b: [u8; 5]) -> String {
    let mut v = b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let mut out = [0u8; CODE_LEN];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A typed code in canonical form (case-blind, O→0, I/L→1, spaces and dashes ignored), or `None` if
/// it cannot be a code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            u => u,
        })
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| CROCKFORD.contains(&b))).then_some(code)
}

/// `ABCD-EFGH`: easier to read aloud and type.
pub fn display_code(code: &str) -> String {
    if code.len() == CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// The enrollment token: which account, the code, until when, and the account key's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub username: Username,
    pub code: String,
    pub expires: u64,
    pub ak_pub: Key32,
    pub sig: Sig64,
}

impl Token {
    /// Checks the account key's signature and the expiry.
    pub fn verify(&self, now: u64) -> Result<(), ProtoError> {
        verify(
            &self.ak_pub,
            &enroll_token_bytes(&self.username, &self.code, self.expires),
            &self.sig,
        )?;
        if now > self.expires || self.expires > now + TOKEN_TTL_SECS + 60 {
            return Err(ProtoError::Malformed(
                "the enrollment token has expired".into(),
            ));
        }
        Ok(())
    }

    /// `anonchat://enroll?u=…&c=…&e=…&k=…&s=…` (keys in URL-safe base64): the QR string.
    pub fn link(&self) -> String {
        format!(
            "anonchat://enroll?u={}&c={}&e={}&k={}&s={}",
            self.username,
            self.code,
            self.expires,
            URL_SAFE_NO_PAD.encode(self.ak_pub.0),
            URL_SAFE_NO_PAD.encode(self.sig.0)
        )
    }

    pub fn parse_link(link: &str) -> Result<Self, ProtoError> {
        let bad = || ProtoError::Malformed("not an anonchat://enroll link".into());
        let query = link
            .trim()
            .strip_prefix("anonchat://enroll?")
            .ok_or_else(bad)?;
        let (mut u, mut c, mut e, mut k, mut s) = (None, None, None, None, None);
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').ok_or_else(bad)?;
            let raw = || URL_SAFE_NO_PAD.decode(value).map_err(|_| bad());
            match name {
                "u" => u = Some(Username::parse(value)?),
                "c" => c = Some(normalize_code(value).ok_or_else(bad)?),
                "e" => e = Some(value.parse::<u64>().map_err(|_| bad())?),
                "k" => k = Some(Key32::from_slice(&raw()?)?),
                "s" => s = Some(Sig64::from_slice(&raw()?)?),
                _ => return Err(bad()),
            }
        }
        Ok(Self {
            username: u.ok_or_else(bad)?,
            code: c.ok_or_else(bad)?,
            expires: e.ok_or_else(bad)?,
            ak_pub: k.ok_or_else(bad)?,
            sig: s.ok_or_else(bad)?,
        })
    }
}

/// Digits of the enrollment comparison code: 25 (five groups of five, ≈ 83 bits).
pub const COMPARE_GROUPS: usize = 5;

/// The code both devices show before the old one approves (DESIGN §7). It covers everything the
/// approval hands the account secret to: the account (name and key, as the new device was told) and
/// the joining device (its id and both Olm keys, as the old device was told). A server that swaps
/// any of them on either side makes the two screens differ. Each group is 5 big-endian bytes of
/// SHA-256 over the bytes below, mod 100000, zero-padded: ≈ 83 bits in all.
pub fn enroll_compare_code(
    username: &Username,
    ak_pub: &Key32,
    device_id: &str,
    dk_ed25519: &Key32,
    dk_curve25519: &Key32,
) -> String {
    let bytes = crate::signing::SigningBytes::new("enroll-compare")
        .str(username.as_str())
        .bytes(&ak_pub.0)
        .str(device_id)
        .bytes(&dk_ed25519.0)
        .bytes(&dk_curve25519.0)
        .finish();
    let h = Sha256::digest(bytes);
    let groups: Vec<String> = h
        .chunks(5)
        .take(COMPARE_GROUPS)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000;
            format!("{n:05}")
        })
        .collect();
    groups.join(" ")
}

/// A typed or shown comparison code in canonical form (digits only), for comparing what the user
/// confirmed with what this device computed.
pub fn normalize_compare_code(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// A short name for a device in lists (not a security check: 12 digits from its Ed25519 key).
pub fn device_fingerprint(dk_ed25519: &Key32) -> String {
    let h = Sha256::new()
        .chain_update(b"anonchat/v1 device fingerprint\0")
        .chain_update(dk_ed25519.0)
        .finalize();
    let n =
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % 1_000_000_000_000;
    let d = format!("{n:012}");
    format!("{} {} {}", &d[..4], &d[4..8], &d[8..])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverContact {
    pub username: Username,
    pub ak_pub: Key32,
    #[serde(default)]
    pub verified: bool,
}

/// Old device → new device, as the plaintext of one Olm pre-key message: the account key and the
/// contact list. Layout like every peer frame: a version byte, then JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Handover {
    pub username: Username,
    /// The account key's 32 secret bytes, standard base64. Zeroized on drop.
    pub ak_secret: SecretText,
    pub contacts: Vec<HandoverContact>,
    #[serde(default)]
    pub blocked: Vec<Username>,
}

impl Handover {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(4096));
        out.push(crate::VERSION);
        // Plain strings and numbers into a Vec: cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let (&v, body) = bytes
            .split_first()
            .ok_or_else(|| ProtoError::Malformed("empty handover".into()))?;
        if v != crate::VERSION {
            return Err(ProtoError::BadVersion(v));
        }
        let h: Self =
            serde_json::from_slice(body).map_err(|e| ProtoError::Malformed(e.to_string()))?;
        if h.contacts.len() > MAX_HANDOVER_CONTACTS || h.blocked.len() > MAX_HANDOVER_CONTACTS {
            return Err(ProtoError::TooLarge {
                size: h.contacts.len().max(h.blocked.len()),
                limit: MAX_HANDOVER_CONTACTS,
            });
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_display_in_two_groups_only_when_they_are_codes() {
        assert_eq!(display_code("ABCD1234"), "ABCD-1234");
        assert_eq!(display_code("ABC"), "ABC");
        assert_eq!(
            display_code("ABCDEFé"),
            "ABCDEFé",
            "8 bytes, not 8 ASCII characters"
        );
    }

    #[test]
    fn a_token_is_good_from_now_to_its_expiry_and_not_too_far_ahead() {
        let ak = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let alice = Username::parse("alice").unwrap();
        let token = |expires: u64| {
            use ed25519_dalek::Signer;
            Token {
                username: alice.clone(),
                code: "ABCD1234".into(),
                expires,
                ak_pub: Key32(ak.verifying_key().to_bytes()),
                sig: Sig64(
                    ak.sign(&enroll_token_bytes(&alice, "ABCD1234", expires))
                        .to_bytes(),
                ),
            }
        };
        let now = 1_000_000;
        assert!(token(now).verify(now).is_ok(), "good up to its expiry");
        assert!(token(now - 1).verify(now).is_err(), "expired");
        let furthest = now + TOKEN_TTL_SECS + 60;
        assert!(token(furthest).verify(now).is_ok());
        assert!(token(furthest + 1).verify(now).is_err(), "too far ahead");
    }

    #[test]
    fn a_handover_holds_at_most_100_contacts_and_100_blocked() {
        let alice = Username::parse("alice").unwrap();
        let contact = HandoverContact {
            username: alice.clone(),
            ak_pub: Key32([1; 32]),
            verified: false,
        };
        let handover = |contacts: usize, blocked: usize| Handover {
            username: alice.clone(),
            ak_secret: SecretText::new("c2VjcmV0".into()),
            contacts: vec![contact.clone(); contacts],
            blocked: vec![alice.clone(); blocked],
        };
        let max = MAX_HANDOVER_CONTACTS;
        assert_eq!(max, 100);
        assert!(Handover::decode(&handover(max, max).encode()).is_ok());
        assert!(Handover::decode(&handover(max + 1, 0).encode()).is_err());
        assert!(Handover::decode(&handover(0, max + 1).encode()).is_err());
    }

    #[test]
    fn device_fingerprints_are_pinned() {
        // SHA-256 of the label and the key, first 8 bytes big-endian mod 10^12 (computed apart).
        assert_eq!(device_fingerprint(&Key32([1; 32])), "7618 2158 5736");
    }

    #[test]
    fn codes_are_the_40_bits_in_crockford_base32() {
        assert_eq!(code_from_bytes([0, 0, 0, 0, 0]), "00000000");
        assert_eq!(code_from_bytes([0, 0, 0, 0, 1]), "00000001");
        assert_eq!(code_from_bytes([1, 0, 0, 0, 0]), "04000000");
        assert_eq!(code_from_bytes([0x80, 0, 0, 0, 0x21]), "G0000011");
        assert_eq!(code_from_bytes([0xff; 5]), "ZZZZZZZZ");
    }
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn codes_normalize_and_display() {
        let code = code_from_bytes([0xff, 0, 0x12, 0x34, 0x56]);
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(normalize_code(&code.to_lowercase()), Some(code.clone()));
        assert_eq!(normalize_code(&display_code(&code)), Some(code.clone()));
        assert_eq!(normalize_code("oil0-1111"), Some("01101111".into()));
        assert_eq!(normalize_code("ABCDEFG"), None, "too short");
        assert_eq!(normalize_code("ABCDEFGU"), None, "U is not Crockford");
        assert_ne!(code_from_bytes([0; 5]), code_from_bytes([0, 0, 0, 0, 1]));
    }

    #[test]
    fn token_link_round_trips_and_verifies() {
        let sk = SigningKey::generate(&mut rand::rngs::OsRng);
        let username = Username::parse("alice").unwrap();
        let code = code_from_bytes([1, 2, 3, 4, 5]);
        let expires = 1_000_300;
        let t = Token {
            sig: Sig64(
                sk.sign(&enroll_token_bytes(&username, &code, expires))
                    .to_bytes(),
            ),
            username,
            code,
            expires,
            ak_pub: Key32(sk.verifying_key().to_bytes()),
        };
        let back = Token::parse_link(&t.link()).unwrap();
        assert_eq!(back, t);
        assert!(back.verify(1_000_000).is_ok());
        assert!(back.verify(1_000_301).is_err(), "expired");
        let mut other = back.clone();
        other.code = code_from_bytes([9, 9, 9, 9, 9]);
        assert!(
            other.verify(1_000_000).is_err(),
            "signature covers the code"
        );
        assert!(Token::parse_link("anonchat://add?u=alice").is_err());
        assert!(Token::parse_link(&format!("{}&x=1", t.link())).is_err());
    }

    #[test]
    fn fingerprint_is_twelve_digits_and_key_bound() {
        let a = device_fingerprint(&Key32([1; 32]));
        assert_eq!(a.len(), 14);
        assert!(a.replace(' ', "").bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(a, device_fingerprint(&Key32([2; 32])));
    }

    #[test]
    fn compare_code_covers_account_and_both_device_keys() {
        let u = Username::parse("alice").unwrap();
        let base = enroll_compare_code(
            &u,
            &Key32([1; 32]),
            "dev1",
            &Key32([2; 32]),
            &Key32([3; 32]),
        );
        assert_eq!(base.len(), 29, "five groups of five digits: {base}");
        assert_eq!(normalize_compare_code(&base).len(), 25);
        let other = Username::parse("alicf").unwrap();
        for changed in [
            enroll_compare_code(
                &other,
                &Key32([1; 32]),
                "dev1",
                &Key32([2; 32]),
                &Key32([3; 32]),
            ),
            enroll_compare_code(
                &u,
                &Key32([9; 32]),
                "dev1",
                &Key32([2; 32]),
                &Key32([3; 32]),
            ),
            enroll_compare_code(
                &u,
                &Key32([1; 32]),
                "dev2",
                &Key32([2; 32]),
                &Key32([3; 32]),
            ),
            enroll_compare_code(
                &u,
                &Key32([1; 32]),
                "dev1",
                &Key32([9; 32]),
                &Key32([3; 32]),
            ),
            enroll_compare_code(
                &u,
                &Key32([1; 32]),
                "dev1",
                &Key32([2; 32]),
                &Key32([9; 32]),
            ),
        ] {
            assert_ne!(changed, base);
        }
    }

    #[test]
    fn compare_code_known_answer() {
        // The worked example of docs/protocol.md §8.
        let u = Username::parse("alice").unwrap();
        let code = enroll_compare_code(
            &u,
            &Key32([1; 32]),
            "dev1",
            &Key32([2; 32]),
            &Key32([3; 32]),
        );
        assert_eq!(code, KNOWN_COMPARE);
    }

    const KNOWN_COMPARE: &str = "59822 96398 69221 53042 50433";

    #[test]
    fn handover_round_trips_and_refuses_garbage() {
        let h = Handover {
            username: Username::parse("alice").unwrap(),
            ak_secret: SecretText::new("c2VjcmV0".into()),
            contacts: vec![HandoverContact {
                username: Username::parse("bob").unwrap(),
                ak_pub: Key32([3; 32]),
                verified: true,
            }],
            blocked: vec![],
        };
        let back = Handover::decode(&h.encode()).unwrap();
        assert_eq!(back.contacts, h.contacts);
        assert_eq!(back.ak_secret, h.ak_secret);
        assert!(Handover::decode(b"").is_err());
        assert!(Handover::decode(b"\x02{}").is_err());
        assert!(Handover::decode(b"\x01not json").is_err());
    }
}
