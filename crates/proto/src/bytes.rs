//! Fixed-size byte strings that travel as unpadded standard base64 (the encoding vodozemac uses).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ProtoError;

macro_rules! fixed_bytes {
    ($name:ident, $len:expr) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn from_slice(bytes: &[u8]) -> Result<Self, ProtoError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| ProtoError::BadLength {
                    expected: $len,
                    got: bytes.len(),
                })?;
                Ok(Self(arr))
            }

            pub fn from_base64(s: &str) -> Result<Self, ProtoError> {
                let raw = decode_b64(s)?;
                Self::from_slice(&raw)
            }

            pub fn to_base64(&self) -> String {
                STANDARD_NO_PAD.encode(self.0)
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_base64())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_base64())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_base64(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_bytes!(Key32, 32);
fixed_bytes!(Sig64, 64);

/// Decodes base64 with or without padding.
pub fn decode_b64(s: &str) -> Result<Vec<u8>, ProtoError> {
    STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| ProtoError::BadBase64)
}

pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Variable-length bytes as base64 in JSON (relay blobs).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Blobs are ciphertext, but their bytes are nobody's business in a log either.
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_b64(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_b64(&s).map(Blob).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_rejects_wrong_length() {
        let k = Key32([7; 32]);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<Key32>(&json).unwrap(), k);
        assert!(serde_json::from_str::<Key32>("\"AAAA\"").is_err());
        assert!(serde_json::from_str::<Key32>("\"!!\"").is_err());
    }
}
