//! Usernames: NFKC, lowercase, then `[a-z0-9._-]{3,32}`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

use crate::ProtoError;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Normalizes user input (NFKC, lowercase) and checks the allowed alphabet and length.
    pub fn parse(input: &str) -> Result<Self, ProtoError> {
        let normalized: String = input.trim().nfkc().collect::<String>().to_lowercase();
        // Lowercasing can leave non-NFKC text behind (rare); normalize once more to be canonical.
        let normalized: String = normalized.nfkc().collect();
        let ok_len = (3..=32).contains(&normalized.len());
        let ok_chars = normalized.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
        if ok_len && ok_chars {
            Ok(Self(normalized))
        } else {
            Err(ProtoError::BadUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

impl Serialize for Username {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        // On the wire a username must already be canonical: no silent rewriting of signed data.
        let u = Username::parse(&s).map_err(serde::de::Error::custom)?;
        if u.0 != s {
            return Err(serde::de::Error::custom(
                "username is not in canonical form",
            ));
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_fullwidth_and_case() {
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap().as_str(), "alice");
        assert_eq!(
            Username::parse("  Bob_1.x-y ").unwrap().as_str(),
            "bob_1.x-y"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "ab",
            "",
            "a b c",
            "ålice",
            "x".repeat(33).as_str(),
            "bob!",
            "ﬁ\u{0}x",
        ] {
            assert_eq!(
                Username::parse(bad),
                Err(ProtoError::BadUsername),
                "{bad:?}"
            );
        }
        assert!(Username::parse(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn wire_form_must_be_canonical() {
        assert!(serde_json::from_str::<Username>("\"alice\"").is_ok());
        assert!(serde_json::from_str::<Username>("\"Alice\"").is_err());
    }
}
