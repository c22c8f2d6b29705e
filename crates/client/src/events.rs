//! What the engine tells a front-end. Serializable so the CLI can print them as JSON lines.

use anonchat_proto::frames::{ReceiptKind, SecretText};
use anonchat_proto::wire::RingEnd;
use anonchat_proto::Caps;
use serde::Serialize;

/// Events a front-end has not read yet, at most (then new ones are dropped, never memory grown).
pub const EVENT_QUEUE: usize = 4096;

/// Where a front-end reads the engine's events.
pub type EventReceiver = tokio::sync::mpsc::Receiver<Event>;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Connected and authenticated to the signaling server.
    Connected,
    /// Lost the signaling server; reconnecting with backoff. Open chats go on.
    Disconnected {
        retry_in_ms: u64,
    },
    FriendRequest {
        from: String,
        safety_number: String,
    },
    FriendAdded {
        username: String,
        safety_number: String,
    },
    FriendRemoved {
        username: String,
    },
    Presence {
        username: String,
        online: bool,
        /// The friend shows only "recently active".
        recently_active: bool,
    },
    /// A pinned account key changed. Nothing with this contact proceeds until the user trusts the
    /// new key after comparing safety numbers.
    KeyChanged {
        username: String,
        safety_number: String,
        /// The contact's own rotation statements lead from the pinned key to the new one: the
        /// holder of the old key made the new one (still to be accepted: a thief of the old key
        /// could have done it too).
        rotated: bool,
    },
    /// This account's key was replaced: on this device (`here`), or by another device of the
    /// account, whose handover this device took. `signed_out`: devices revoked on the way.
    AccountKeyRotated {
        here: bool,
        signed_out: Vec<String>,
    },
    IncomingRing {
        ring_id: String,
        from: String,
        /// The caller rings this account into a group it starts (the roster comes once answered).
        #[serde(default)]
        invite: bool,
    },
    Ringing {
        ring_id: String,
        to: String,
    },
    RingEnded {
        ring_id: String,
        reason: RingEnd,
    },
    /// The ring was answered and the peer's certificate checked: the connection is being set up.
    Connecting {
        session: String,
        peer: String,
    },
    /// The data channel is open: end-to-end encrypted chat can flow.
    SessionOpen {
        session: String,
        peer: String,
        peer_caps: Caps,
        /// The peer cannot keep screenshots out: show the banner, watermark the chat.
        peer_unprotected: bool,
        /// How the connection runs: through the relay, or direct (the peer sees our address).
        route: Route,
    },
    /// The peer's capabilities changed mid-chat (it turned its capture protection off, or back
    /// on where its certificate allows): show or hide the banner and the watermark.
    PeerCaps {
        session: String,
        peer_caps: Caps,
        peer_unprotected: bool,
    },
    /// The open chat's path went quiet: an ICE restart through the server is trying to repair it.
    /// It resumes ([`Event::SessionResumed`]) or ends and wipes within `RESTART_WINDOW`.
    SessionReconnecting {
        session: String,
    },
    /// Frames flow again after a repair, perhaps on another route (for example, the relay).
    SessionResumed {
        session: String,
        route: Route,
    },
    Message {
        session: String,
        id: u64,
        text: SecretText,
        /// Milliseconds until the engine wipes it (a timer is set), counted from this event.
        expires_in_ms: Option<u64>,
    },
    /// A message we sent was delivered (or read) on the other side.
    Receipt {
        session: String,
        id: u64,
        kind: ReceiptKind,
    },
    Typing {
        session: String,
    },
    /// The peer is sending an attachment (it stays in RAM; fetch it once `file_received`).
    FileIncoming {
        session: String,
        #[serde(flatten)]
        meta: crate::attachments::Meta,
    },
    FileProgress {
        session: String,
        id: u64,
        done: u64,
        total: u64,
        outgoing: bool,
    },
    /// An incoming attachment arrived whole and matched the sender's hash. `kind` and `mime` are
    /// what its bytes are (sniffed: only allowed image types are shown inline), not what the peer
    /// claimed.
    FileReceived {
        session: String,
        id: u64,
        kind: anonchat_proto::frames::AttachmentKind,
        mime: String,
        /// As for `message`: the engine's wipe deadline, from this event.
        expires_in_ms: Option<u64>,
    },
    /// Every chunk of an outgoing attachment left; a `delivered` receipt follows.
    FileSent {
        session: String,
        id: u64,
    },
    /// A transfer stopped before the end, and what there was of it is wiped.
    FileCancelled {
        session: String,
        id: u64,
        by_peer: bool,
        reason: String,
    },
    /// The peer opened a view-once attachment of ours; both copies are wiped.
    ViewOnceOpened {
        session: String,
        id: u64,
    },
    /// The chat's auto-delete timer changed (0: off).
    TimerSet {
        session: String,
        seconds: u32,
        by_peer: bool,
    },
    /// Messages and attachments whose timer ran out; they are wiped on this side.
    Expired {
        session: String,
        ids: Vec<u64>,
    },
    /// The session is over and every buffer of it was zeroized on this side.
    SessionEnded {
        session: String,
        reason: EndReason,
        wiped: bool,
    },
    /// A session could not be set up (for example a certificate did not verify).
    SessionFailed {
        session: String,
        reason: String,
    },
    /// This (new) device joined an enrollment and waits for the old device to approve. The user
    /// compares `fingerprint` (the comparison code: 25 digits over the account key and this
    /// device's keys) with the one the old device shows.
    EnrollPending {
        username: String,
        fingerprint: String,
    },
    /// A new device wants to join this account: approve only if `fingerprint` (the comparison
    /// code) matches the one the new device shows; the approval must name it.
    EnrollRequest {
        device_id: String,
        fingerprint: String,
    },
    /// The enrollment was aborted: a second device tried to join it (the server may be tampering),
    /// or an approval named another code. Nothing was approved; open a new one to try again.
    EnrollAborted {
        reason: String,
    },
    /// The server answered with another TLS key than the one this profile pinned: nothing is sent
    /// to it until the user trusts the new key (`trust_server_key`). Loud and blocking.
    ServerKeyChanged {
        server: String,
        /// The refused key's fingerprint: what the operator publishes, what `trust_server_key`
        /// takes.
        fingerprint: String,
    },
    /// Another device of this account revoked this one (signature checked): chats were wiped, and
    /// the keychain entry and profile folder deleted.
    DeviceRevoked,
    /// Rings and friend requests from this account are now refused without asking
    /// (`automatic`: after repeated refusals).
    Blocked {
        username: String,
        automatic: bool,
    },
    /// Something went wrong that the user may want to know about; nothing was changed.
    Warning {
        message: String,
    },
    /// This device is in a group (its admin's roster names it; the admin: it started one).
    /// `group` is the group's id on this device only.
    GroupJoined {
        group: String,
        admin: String,
        members: Vec<String>,
        timer: u32,
    },
    /// A member was added, connected (its link is `session`: that session's messages, receipts
    /// and files are the member's in the group), or is gone (left, removed, lost).
    GroupMember {
        group: String,
        username: String,
        state: MemberState,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// The group-wide auto-delete timer, from the admin's signed roster.
    GroupTimer {
        group: String,
        seconds: u32,
    },
    /// The group is over on this device and its copy is wiped.
    GroupEnded {
        group: String,
        reason: GroupEndReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Added,
    Connected,
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupEndReason {
    /// This device left (or panicked).
    Left,
    /// The admin removed this device.
    Removed,
    /// Every other member is gone.
    Empty,
}

/// The ICE candidate kinds of a session's connection: "host", "srflx", "prflx" or "relay".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Ours: "relay" means the peer only ever sees the relay's address, never ours.
    pub local: String,
    pub remote: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// We left.
    Left,
    /// The peer said `bye`.
    PeerLeft,
    /// The data channel closed or ICE failed.
    ChannelClosed,
    /// Three pings went unanswered.
    PeerLost,
    /// Panic wipe.
    Panic,
    /// The peer kept sending far faster than a person could (a flood): this side ended it.
    Flooded,
}
