//! The Friend Verification Code: an access gate (never key material). A TOTP (RFC 6238, HMAC-SHA-256,
//! 60 s steps, ±1 step) over `seed = HMAC-SHA256(server_secret, ak_pub ‖ fvc_salt)`, shown as 6–8
//! digits or 6 Crockford base32 characters; and the `anonchat://add` share string.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::{Key32, ProtoError, Username};

/// Seconds per code.
pub const STEP: u64 = 60;
/// Codes of the previous and next step are accepted too.
pub const SKEW: u64 = 1;
pub(crate) const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CROCKFORD_LEN: usize = 6;

/// How a code is shown and typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CodeFormat {
    /// 6 to 8 decimal digits.
    Digits { digits: u8 },
    /// 6 characters of Crockford base32 (30 bits).
    Crockford,
}

impl Default for CodeFormat {
    fn default() -> Self {
        CodeFormat::Digits { digits: 6 }
    }
}

impl CodeFormat {
    pub fn validate(self) -> Result<Self, ProtoError> {
        match self {
            CodeFormat::Digits { digits } if !(6..=8).contains(&digits) => {
                Err(ProtoError::Malformed("codes have 6 to 8 digits".into()))
            }
            ok => Ok(ok),
        }
    }
}

/// `HMAC-SHA256(server_secret, ak_pub ‖ fvc_salt)`.
pub fn seed(server_secret: &[u8], ak_pub: &Key32, salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(server_secret)
        .expect("HMAC takes keys of any length");
    mac.update(&ak_pub.0);
    mac.update(salt);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// A TOTP generator/checker over one seed.
pub struct Fvc {
    totp: Totp,
    format: CodeFormat,
}

fn totp(secret: &[u8], algorithm: Algorithm, digits: u8, step: u64) -> Totp {
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(step)
        .with_skew(0)
        .with_secret(secret)
        .build_noncompliant()
}

/// RFC 4226 dynamic truncation: 31 bits out of an HMAC.
fn truncate(sig: &[u8]) -> u32 {
    let offset = usize::from(sig[sig.len() - 1] & 0x0f);
    u32::from_be_bytes([
        sig[offset],
        sig[offset + 1],
        sig[offset + 2],
        sig[offset + 3],
    ]) & 0x7fff_ffff
}

fn crockford(mut v: u32) -> String {
    let mut out = [0u8; CROCKFORD_LEN];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the user typed, in canonical form: Crockford is case-blind, reads O as 0 and I/L as 1, and
/// ignores spaces and dashes; digits ignore spaces.
pub fn normalize(code: &str, format: CodeFormat) -> String {
    code.chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| match format {
            CodeFormat::Crockford => match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                u => u,
            },
            CodeFormat::Digits { .. } => c,
        })
        .collect()
}

impl Fvc {
    pub fn new(seed: &[u8], format: CodeFormat) -> Self {
        let digits = match format {
            CodeFormat::Digits { digits } => digits,
            CodeFormat::Crockford => 6,
        };
        Self {
            totp: totp(seed, Algorithm::SHA256, digits, STEP),
            format,
        }
    }

    /// The code for the step containing unix time `t`.
    pub fn code(&self, t: u64) -> String {
        match self.format {
            CodeFormat::Digits { .. } => self.totp.generate(t).to_string(),
            CodeFormat::Crockford => crockford(truncate(self.totp.sign(t).as_ref())),
        }
    }

    /// Seconds until the code shown at `t` changes.
    pub fn seconds_left(t: u64) -> u64 {
        STEP - t % STEP
    }

    /// Whether `code` is right at `t` ± one step. Every window is computed and compared whatever the
    /// input, so the time taken says nothing about how close a guess was.
    pub fn check(&self, code: &str, t: u64) -> bool {
        let given = normalize(code, self.format);
        let step = t / STEP;
        let mut ok = false;
        for s in [step.saturating_sub(SKEW), step, step + SKEW] {
            let want = self.code(s * STEP);
            ok |= constant_time_eq(want.as_bytes(), given.as_bytes());
        }
        ok
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `anonchat://add?u=<username>&c=<code>`: a contact to add, with a code when the mode needs one.
pub fn share_link(user: &Username, code: Option<&str>) -> String {
    match code {
        Some(c) => format!("anonchat://add?u={}&c={}", user, c),
        None => format!("anonchat://add?u={}", user),
    }
}

/// Reads a share link back: `(username, code)`.
pub fn parse_share_link(link: &str) -> Result<(Username, Option<String>), ProtoError> {
    let bad = || ProtoError::Malformed("not an anonchat://add link".into());
    let query = link
        .trim()
        .strip_prefix("anonchat://add?")
        .ok_or_else(bad)?;
    let (mut user, mut code) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("u", v)) => user = Some(Username::parse(v)?),
            Some(("c", v))
                if !v.is_empty()
                    && v.len() <= 16
                    && v.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                code = Some(v.to_string())
            }
            _ => return Err(bad()),
        }
    }
    Ok((user.ok_or_else(bad)?, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_formats_have_6_to_8_digits() {
        for d in [6, 7, 8] {
            assert!(CodeFormat::Digits { digits: d }.validate().is_ok());
        }
        for d in [5, 9] {
            assert!(CodeFormat::Digits { digits: d }.validate().is_err());
        }
        assert!(CodeFormat::Crockford.validate().is_ok());
    }

    /// RFC 4226 §5.4: the HMAC-SHA-1 of its example truncates to 0x50ef7f19.
    #[test]
    fn dynamic_truncation_is_rfc_4226() {
        let sig = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(truncate(&sig), 0x50ef_7f19);
        let mut high = sig;
        high[10] = 0xd0; // The top bit is dropped.
        assert_eq!(truncate(&high), 0x50ef_7f19);
        assert_eq!(crockford(0x50ef_7f19), "8EYZRS");
        assert_eq!(crockford(0), "000000");
    }

    #[test]
    fn seconds_left_counts_down_each_step() {
        assert_eq!(STEP, 60);
        assert_eq!(Fvc::seconds_left(0), 60);
        assert_eq!(Fvc::seconds_left(59), 1);
        assert_eq!(Fvc::seconds_left(61), 59);
    }

    #[test]
    fn a_share_link_code_is_1_to_16_letters_or_digits() {
        let ok = |c: &str| parse_share_link(&format!("anonchat://add?u=alice&c={c}")).is_ok();
        assert!(ok("1") && ok("ABCDEFGH12345678"));
        assert!(!ok(""), "empty");
        assert!(!ok("ABCDEFGH123456789"), "17 characters");
        assert!(!ok("12-34"), "not alphanumeric");
    }

    /// RFC 6238 Appendix B, through the same TOTP construction the gate uses (only the hash, step and
    /// digits differ, as the appendix fixes them).
    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let table: [(u64, [&str; 3]); 6] = [
            (59, ["94287082", "46119246", "90693936"]),
            (1111111109, ["07081804", "68084774", "25091201"]),
            (1111111111, ["14050471", "67062674", "99943326"]),
            (1234567890, ["89005924", "91819424", "93441116"]),
            (2000000000, ["69279037", "90698825", "38618901"]),
            (20000000000, ["65353130", "77737706", "47863826"]),
        ];
        for (t, want) in table {
            let got = [
                totp(&sha1, Algorithm::SHA1, 8, 30).generate(t).to_string(),
                totp(&sha256, Algorithm::SHA256, 8, 30)
                    .generate(t)
                    .to_string(),
                totp(&sha512, Algorithm::SHA512, 8, 30)
                    .generate(t)
                    .to_string(),
            ];
            assert_eq!(got, want, "t = {t}");
        }
    }

    #[test]
    fn accepts_one_step_of_skew_and_no_more() {
        let s = seed(b"server", &Key32([1; 32]), b"salt");
        let f = Fvc::new(&*s, CodeFormat::Digits { digits: 6 });
        let t = 1_800_000_030;
        let code = f.code(t);
        assert_eq!(code.len(), 6);
        assert!(f.check(&code, t));
        assert!(f.check(&code, t + STEP), "a minute late is fine");
        assert!(f.check(&code, t - STEP), "a minute early is fine");
        assert!(
            !f.check(&code, t + 3 * STEP),
            "three minutes of skew is not"
        );
        assert!(!f.check(&code, t - 3 * STEP));
        assert!(!f.check("000000x", t));
    }

    #[test]
    fn salt_rotation_kills_old_codes() {
        let t = 1_800_000_000;
        let old = Fvc::new(
            &*seed(b"server", &Key32([1; 32]), b"salt-1"),
            CodeFormat::default(),
        );
        let new = Fvc::new(
            &*seed(b"server", &Key32([1; 32]), b"salt-2"),
            CodeFormat::default(),
        );
        let code = old.code(t);
        assert!(old.check(&code, t));
        // 1 in 10^6 chance of a collision; the seeds are fixed so this is deterministic.
        assert!(!new.check(&code, t));
    }

    #[test]
    fn crockford_codes_forgive_case_and_lookalikes() {
        let f = Fvc::new(&*seed(b"k", &Key32([2; 32]), b"s"), CodeFormat::Crockford);
        let t = 1_700_000_000;
        let code = f.code(t);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| CROCKFORD.contains(&b)));
        let typed = code.to_lowercase().replace('0', "o").replace('1', "l");
        assert!(f.check(&format!("{}-{}", &typed[..3], &typed[3..]), t));
        assert!(CodeFormat::Digits { digits: 9 }.validate().is_err());
    }

    #[test]
    fn share_links_round_trip() {
        let u = Username::parse("alice").unwrap();
        let link = share_link(&u, Some("123456"));
        assert_eq!(link, "anonchat://add?u=alice&c=123456");
        assert_eq!(
            parse_share_link(&link).unwrap(),
            (u.clone(), Some("123456".into()))
        );
        assert_eq!(
            parse_share_link("anonchat://add?u=alice").unwrap(),
            (u, None)
        );
        for bad in [
            "https://x",
            "anonchat://add?u=Al ice",
            "anonchat://add?u=bob&x=1",
            "anonchat://add?c=1",
        ] {
            assert!(parse_share_link(bad).is_err(), "{bad}");
        }
    }
}
