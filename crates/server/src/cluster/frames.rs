//! What instances say to each other over Redis. Only instances of the same server publish on
//! these channels; they are as trusted as the instance's own memory. JSON, tagged by `t`.

use anonchat_proto::bytes::Blob;
use anonchat_proto::wire::{ErrorCode, ServerMsg, SignedOtk};
use anonchat_proto::{Caps, DeviceCert, Key32, Username};
use serde::{Deserialize, Serialize};

/// The answer to a forwarded request: `Ok` with what the request asked for (`null` if nothing),
/// or the wire's error code and detail.
pub type WireResult = Result<serde_json::Value, (ErrorCode, Option<String>)>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Frame {
    /// A server message (an encoded envelope) for the device of the channel, or for every device
    /// of the account of the channel that the receiving instance holds.
    Push {
        from: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ring: Option<RingTag>,
    },
    /// A device of the account came online on instance `from` (account channel): rings still
    /// ringing for the account ring it too.
    Attached {
        from: String,
        device: String,
    },
    /// An operation on a ring owned by the receiving instance (instance channel), by `device`.
    /// Answered with `Reply` on `from`'s channel.
    Ring {
        from: String,
        req: u64,
        ring_id: String,
        device: String,
        op: RingOp,
    },
    Reply {
        req: u64,
        result: WireResult,
    },
    /// The ring's owner asks the callee's instance (device channel) to hand the caller a claimed
    /// one-time key and both sides each other's certificates.
    Introduce {
        from: String,
        ring_id: String,
        caller_device: String,
        caller_cert: DeviceCert,
    },
    /// Close the device's socket: it was revoked (the farewell is its last message), or it
    /// connected again elsewhere.
    Kill {
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        farewell: Option<String>,
    },
    /// The device's certificate changed (account key rotation): its instance serves the new one.
    Cert {
        cert: DeviceCert,
    },
    /// A new device joins an enrollment opened through the receiving instance (instance
    /// channel). Answered with `Reply`: the enrollment's `{username, expires, sig}`.
    Join {
        from: String,
        req: u64,
        code: String,
        join: JoinRequest,
    },
    /// The opener's answer for a new device waiting on the receiving instance (instance
    /// channel); `None`: declined, replaced or ran out.
    Enrolled {
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<Box<ServerMsg>>,
    },
    /// The new device gave up (instance channel of the enrollment's instance).
    Abandon {
        code: String,
        device_id: String,
    },
    /// Claim a one-time key of `username`'s device connected to the receiving instance (its
    /// instance channel), for a session between an account's own devices. Answered with `Reply`:
    /// the key.
    Claim {
        from: String,
        req: u64,
        device: String,
        username: Username,
    },
}

/// What a joining device proved, forwarded to the enrollment's instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub device_id: String,
    pub dk_ed25519: Key32,
    pub dk_curve25519: Key32,
    pub caps: Caps,
    pub otk: SignedOtk,
}

/// Which ring a pushed message belongs to, so the callee's instance can tell the owner when its
/// device leaves, and end the ring for it if the owner dies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingTag {
    pub id: String,
    pub owner: String,
    pub stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Ringing,
    Connected,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RingOp {
    Answer {
        accept: bool,
    },
    Hangup,
    Relay {
        blob: Blob,
    },
    /// The device's socket closed.
    Gone,
    /// The introduction could not be made (no one-time key left, or the device left).
    Fail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_unknown_ones_are_refused() {
        let frames = [
            Frame::Push {
                from: "i1".into(),
                text: "{}".into(),
                ring: Some(RingTag {
                    id: "r".into(),
                    owner: "i1".into(),
                    stage: Stage::Ringing,
                }),
            },
            Frame::Attached {
                from: "i2".into(),
                device: "d".into(),
            },
            Frame::Ring {
                from: "i2".into(),
                req: 7,
                ring_id: "r".into(),
                device: "d".into(),
                op: RingOp::Relay {
                    blob: Blob(vec![1, 2, 3]),
                },
            },
            Frame::Reply {
                req: 7,
                result: Err((ErrorCode::NotFound, None)),
            },
            Frame::Kill {
                from: "i1".into(),
                farewell: None,
            },
        ];
        for f in frames {
            let text = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<Frame>(&text).unwrap(), f, "{text}");
        }
        assert!(serde_json::from_str::<Frame>(r#"{"t":"nope"}"#).is_err());
    }
}
