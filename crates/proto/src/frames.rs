//! What two devices say to each other. Every one of these travels only as Olm ciphertext: signaling
//! ([`Signal`]) through the server's relay, chat ([`PeerFrame`]) on the WebRTC data channel.
//!
//! Plaintext layout: one version byte, then JSON. Parsing never copies chat text into a buffer that
//! outlives the frame without being zeroized: text bodies are [`SecretText`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::attach::TransferKey;
use crate::{limits, Caps, DeviceCert, Key32, ProtoError};

/// Chat content. Zeroized on drop; its `Debug` never shows the text.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretText(pub Zeroizing<String>);

impl SecretText {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretText({} bytes)", self.0.len())
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretText::new)
    }
}

/// Signaling between the two devices of an answered ring, relayed by the server as opaque blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Signal {
    /// Caller → callee, the Olm pre-key message that opens the session.
    Offer {
        sdp: String,
        caps: Caps,
        cert: DeviceCert,
    },
    Answer {
        sdp: String,
        caps: Caps,
    },
    Candidate {
        candidate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u16>,
    },
    /// The sender gives up on this session (for example, the certificate did not verify).
    Abort,
    /// Caller → callee, during an open chat whose path went quiet: an ICE restart offer (fresh ICE
    /// credentials, same DTLS and data channel). New candidates follow as `candidate`.
    Restart {
        sdp: String,
    },
    /// Callee → caller: the answer to `restart`.
    RestartAnswer {
        sdp: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Delivered,
    Read,
}

/// What an attachment is, so the receiver knows how to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    File,
    /// Shown inline (decoded in RAM).
    Image,
    /// A photo just taken with the sender's camera; shown inline.
    Photo,
}

/// Frames on the data channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum PeerFrame {
    Hello {
        caps: Caps,
    },
    Text {
        id: u64,
        body: SecretText,
    },
    Receipt {
        id: u64,
        kind: ReceiptKind,
    },
    Typing,
    Ping {
        n: u64,
    },
    Pong {
        n: u64,
    },
    Bye,
    /// An attachment follows as chunks sealed under `key` (see `attach`). `id` shares the
    /// sender's message numbering with `text`.
    FileOffer {
        id: u64,
        name: SecretText,
        size: u64,
        mime: String,
        kind: AttachmentKind,
        /// The receiver may open it once; then both sides wipe it and the sender is told.
        view_once: bool,
        key: TransferKey,
    },
    /// Every chunk was sent; the receiver checks the whole against this BLAKE3 hash.
    FileEnd {
        id: u64,
        blake3: Key32,
    },
    /// Either side stops a transfer; both drop what they have of it.
    FileCancel {
        id: u64,
    },
    /// The receiver opened a view-once attachment and wiped it.
    ViewOnceOpened {
        id: u64,
    },
    /// The chat's auto-delete timer (seconds; 0 is off), set by either side for both.
    Timer {
        seconds: u32,
    },
    /// Groups: the admin's newest signed roster (from the admin, or passed on by a member).
    GroupRoster {
        roster: Box<crate::group::Roster>,
    },
    /// Groups, member → admin: this device holds the roster of `epoch` and joined the group's
    /// pass at the server, so the other members may ring it now.
    GroupJoined {
        epoch: u64,
    },
}

fn encode<T: Serialize>(v: &T) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(256));
    out.push(crate::VERSION);
    // Writing into a Vec cannot fail for these types (no maps with non-string keys).
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.truncate(1);
    }
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], limit: usize) -> Result<T, ProtoError> {
    crate::wire::check_size(bytes.len(), limit)?;
    let (&v, json) = bytes
        .split_first()
        .ok_or_else(|| ProtoError::Malformed("empty frame".into()))?;
    if v != crate::VERSION {
        return Err(ProtoError::BadVersion(v));
    }
    serde_json::from_slice(json).map_err(|e| ProtoError::Malformed(e.to_string()))
}

impl Signal {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode(bytes, limits::MAX_RELAY_BLOB)
    }
}

impl PeerFrame {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let frame: Self = decode(bytes, limits::MAX_PEER_FRAME)?;
        match &frame {
            PeerFrame::Text { body, .. } => {
                crate::wire::check_size(body.0.len(), limits::MAX_TEXT)?
            }
            PeerFrame::FileOffer { name, mime, .. } => {
                crate::wire::check_size(name.0.len(), limits::MAX_FILE_NAME)?;
                crate::wire::check_size(mime.len(), limits::MAX_MIME)?;
            }
            PeerFrame::Timer { seconds } if !limits::TIMER_CHOICES.contains(seconds) => {
                return Err(ProtoError::Malformed(format!("no such timer: {seconds} s")));
            }
            _ => {}
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_text_reads_back() {
        assert_eq!(SecretText::new("hi".into()).as_str(), "hi");
    }

    #[test]
    fn file_offers_and_timers_are_checked_on_decode() {
        let offer = |name: usize, mime: usize| PeerFrame::FileOffer {
            id: 1,
            name: SecretText::new("n".repeat(name)),
            size: 3,
            mime: "m".repeat(mime),
            kind: AttachmentKind::File,
            view_once: false,
            key: crate::attach::TransferKey([1; 32]),
        };
        let (name, mime) = (limits::MAX_FILE_NAME, limits::MAX_MIME);
        assert!(PeerFrame::decode(&offer(name, mime).encode()).is_ok());
        assert!(PeerFrame::decode(&offer(name + 1, mime).encode()).is_err());
        assert!(PeerFrame::decode(&offer(name, mime + 1).encode()).is_err());
        assert!(PeerFrame::decode(&PeerFrame::Timer { seconds: 60 }.encode()).is_ok());
        assert!(PeerFrame::decode(&PeerFrame::Timer { seconds: 7 }.encode()).is_err());
    }

    #[test]
    fn frames_round_trip_and_hide_text_in_debug() {
        let f = PeerFrame::Text {
            id: 1,
            body: SecretText::new("hunter2".into()),
        };
        let bytes = f.encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(PeerFrame::decode(&bytes).unwrap(), f);
        assert!(!format!("{f:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_bad_frames() {
        assert!(PeerFrame::decode(b"").is_err());
        assert!(matches!(
            PeerFrame::decode(b"\x02{}"),
            Err(ProtoError::BadVersion(2))
        ));
        assert!(PeerFrame::decode(b"\x01{\"t\":\"nope\"}").is_err());
        let long = PeerFrame::Text {
            id: 1,
            body: SecretText::new("x".repeat(limits::MAX_TEXT + 1)),
        };
        assert!(matches!(
            PeerFrame::decode(&long.encode()),
            Err(ProtoError::TooLarge { .. })
        ));
    }
}

#[cfg(test)]
mod robustness {
    //! Every decoder that takes bytes from outside, fed random and mutated input: errors, no panics.
    use crate::wire::{ClientEnvelope, ServerEnvelope};
    use rand::{Rng, RngCore};

    use super::*;

    const SEEDS: &[&str] = &[
        r#"{"v":1,"id":3,"t":"ring","to":"bob"}"#,
        r#"{"v":1,"t":"relay","ring_id":"r","blob":"AQID"}"#,
        r#"{"v":1,"t":"auth","username":"alice","device_id":"AAAAAAAAAAAAAAAAAAAAAA","sig":"AAAA"}"#,
        r#"{"t":"text","id":1,"body":"hi"}"#,
        r#"{"t":"offer","sdp":"v=0","caps":{"screen_protection":false},"cert":{}}"#,
    ];

    #[test]
    fn decoders_never_panic() {
        let mut rng = rand::thread_rng();
        for i in 0..20_000 {
            let mut bytes: Vec<u8> = if i % 2 == 0 {
                let mut b = vec![0u8; rng.gen_range(0..200)];
                rng.fill_bytes(&mut b);
                b
            } else {
                SEEDS[i % SEEDS.len()].as_bytes().to_vec()
            };
            for _ in 0..rng.gen_range(0..4) {
                if !bytes.is_empty() {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = ClientEnvelope::parse(&text);
            let _ = ServerEnvelope::parse(&text);
            let mut framed = vec![crate::VERSION];
            framed.extend_from_slice(&bytes);
            let _ = PeerFrame::decode(&framed);
            let _ = Signal::decode(&framed);
            let _ = PeerFrame::decode(&bytes);
        }
    }
}
