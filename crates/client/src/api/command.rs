//! The one list of commands every front-end sends (the CLI's `--json` lines, the desktop app's
//! `execute`), as JSON objects tagged by `cmd`.

use anonchat_proto::frames::SecretText;
use anonchat_proto::fvc::CodeFormat;
use anonchat_proto::wire::{Mode, PresenceMode};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Register {
        username: String,
    },
    Whoami,
    Connect,
    AddFriend {
        username: String,
        #[serde(default)]
        code: Option<String>,
    },
    Lookup {
        username: String,
        #[serde(default)]
        code: Option<String>,
    },
    AddLink {
        link: String,
    },
    /// The cameras there are.
    Cameras,
    /// Reads camera `camera` until a contact's share QR shows up, then adds that contact.
    ScanContact {
        #[serde(default)]
        camera: u32,
    },
    StopScan,
    SetMode {
        mode: Mode,
        #[serde(default)]
        always_require_code: bool,
        #[serde(default)]
        format: CodeFormat,
    },
    GetMode,
    SetPresence {
        presence: PresenceMode,
    },
    /// "Hide my IP" and whether the server has a relay.
    Network,
    SetHideIp {
        hide: bool,
    },
    /// Whether the window is kept out of screenshots and recordings, where the OS can do it.
    Capture,
    /// Turns that off (peers are told and show their banner) or back on.
    SetCaptureProtection {
        on: bool,
    },
    Code,
    /// A QR code of `text` (a share link, say) as SVG, or as PNG bytes in base64.
    Qr {
        text: String,
        #[serde(default)]
        png: bool,
    },
    RotateCode,
    SetStaticCode {
        #[serde(default)]
        code: Option<String>,
    },
    DeleteAccount,
    Search {
        prefix: String,
    },
    AcceptFriend {
        username: String,
        /// The safety number the request showed (P8: the approval binds to it).
        safety_number: String,
    },
    DeclineFriend {
        username: String,
    },
    Unfriend {
        username: String,
    },
    Friends,
    /// Friend requests waiting for an answer (for a front-end that (re)loads).
    FriendRequests,
    /// Rings waiting for this device's answer (for a front-end that (re)loads).
    IncomingRings,
    /// A username's form checked as the server checks it, nothing sent; replies the canonical form.
    CheckUsername {
        username: String,
    },
    SafetyNumber {
        username: String,
    },
    MarkVerified {
        username: String,
        /// The safety number the user compared.
        safety_number: String,
    },
    TrustNewKey {
        username: String,
        /// The new key's safety number the `key_changed` warning showed.
        safety_number: String,
    },
    /// The server's TLS key changed and its operator confirmed it: pin the key with this
    /// fingerprint (the one `server_key_changed` showed), and no other.
    TrustServerKey {
        fingerprint: String,
    },
    /// The server's TLS key pinned by this profile, as a fingerprint operators can publish.
    ServerKey,
    /// Sets, changes or (with none) removes the app passcode.
    SetPasscode {
        #[serde(default)]
        passcode: Option<SecretText>,
    },
    /// Enters the app passcode: unlocks, and covers sensitive actions for a minute.
    Unlock {
        passcode: SecretText,
    },
    LockStatus,
    Ring {
        username: String,
        #[serde(default)]
        code: Option<String>,
    },
    Answer {
        ring_id: String,
        accept: bool,
    },
    Send {
        session: String,
        text: SecretText,
    },
    Typing {
        session: String,
    },
    History {
        session: String,
    },
    Sessions,
    Leave {
        session: String,
    },
    /// Sends a file from disk (images are shown inline by the peer).
    SendFile {
        session: String,
        path: std::path::PathBuf,
        #[serde(default)]
        view_once: bool,
    },
    /// Takes a photo with camera `camera` and sends it.
    SendPhoto {
        session: String,
        #[serde(default)]
        camera: u32,
        #[serde(default)]
        view_once: bool,
    },
    Attachments {
        session: String,
    },
    /// An attachment's bytes, in base64.
    Attachment {
        session: String,
        id: u64,
    },
    OpenViewOnce {
        session: String,
        id: u64,
    },
    /// Writes an attachment to `path`, the only place it is ever written.
    Save {
        session: String,
        id: u64,
        path: std::path::PathBuf,
    },
    CancelTransfer {
        session: String,
        id: u64,
    },
    SetTimer {
        session: String,
        seconds: u32,
    },
    SetMaxFileMb {
        #[serde(default)]
        mb: Option<u32>,
    },
    SetChatLimits {
        #[serde(default)]
        lines: Option<u32>,
        #[serde(default)]
        mb: Option<u32>,
    },
    /// Old device: a code and QR string for adding a new device.
    EnrollOpen,
    /// New device: join with the code or the QR string; answers once the old device decided.
    Enroll {
        code: String,
    },
    EnrollApprove {
        device_id: String,
        /// The comparison code the user was shown (the `fingerprint` of `enroll_request`).
        fingerprint: String,
    },
    EnrollDecline {
        device_id: String,
    },
    Devices,
    Block {
        username: String,
    },
    Unblock {
        username: String,
    },
    Blocked,
    RevokeDevice {
        device_id: String,
    },
    /// Revokes this device (deletes the account if it is the only one) and erases it here.
    RetireThisDevice,
    /// `keep`: the devices the user saw listed and keeps, each with the fingerprint shown; every
    /// other device is signed out.
    RotateAccountKey {
        keep: Vec<crate::engine::KeptDevice>,
    },
    /// Starts a group with this device as admin and rings these friends into it.
    GroupStart {
        members: Vec<String>,
        #[serde(default)]
        timer: u32,
    },
    GroupAdd {
        group: String,
        username: String,
    },
    GroupRemove {
        group: String,
        username: String,
    },
    GroupTimer {
        group: String,
        seconds: u32,
    },
    /// A text to every connected member.
    GroupSend {
        group: String,
        text: SecretText,
    },
    /// A file from disk to every connected member.
    GroupSendFile {
        group: String,
        path: std::path::PathBuf,
        #[serde(default)]
        view_once: bool,
    },
    /// A photo with camera `camera` to every connected member.
    GroupSendPhoto {
        group: String,
        #[serde(default)]
        camera: u32,
        #[serde(default)]
        view_once: bool,
    },
    GroupLeave {
        group: String,
    },
    Groups,
    Panic,
    Quit,
}

impl Command {
    /// The command's name as front-ends send it (`cmd`), which is also its reply's name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Register { .. } => "register",
            Command::Whoami => "whoami",
            Command::Connect => "connect",
            Command::AddFriend { .. } => "add_friend",
            Command::Lookup { .. } => "lookup",
            Command::AddLink { .. } => "add_link",
            Command::Cameras => "cameras",
            Command::ScanContact { .. } => "scan_contact",
            Command::StopScan => "stop_scan",
            Command::SetMode { .. } => "set_mode",
            Command::GetMode => "get_mode",
            Command::SetPresence { .. } => "set_presence",
            Command::Network => "network",
            Command::SetHideIp { .. } => "set_hide_ip",
            Command::Capture => "capture",
            Command::SetCaptureProtection { .. } => "set_capture_protection",
            Command::Code => "code",
            Command::Qr { .. } => "qr",
            Command::RotateCode => "rotate_code",
            Command::SetStaticCode { .. } => "set_static_code",
            Command::DeleteAccount => "delete_account",
            Command::Search { .. } => "search",
            Command::AcceptFriend { .. } => "accept_friend",
            Command::DeclineFriend { .. } => "decline_friend",
            Command::Unfriend { .. } => "unfriend",
            Command::Friends => "friends",
            Command::FriendRequests => "friend_requests",
            Command::IncomingRings => "incoming_rings",
            Command::CheckUsername { .. } => "check_username",
            Command::SafetyNumber { .. } => "safety_number",
            Command::MarkVerified { .. } => "mark_verified",
            Command::TrustNewKey { .. } => "trust_new_key",
            Command::TrustServerKey { .. } => "trust_server_key",
            Command::ServerKey => "server_key",
            Command::SetPasscode { .. } => "set_passcode",
            Command::Unlock { .. } => "unlock",
            Command::LockStatus => "lock_status",
            Command::Ring { .. } => "ring",
            Command::Answer { .. } => "answer",
            Command::Send { .. } => "send",
            Command::Typing { .. } => "typing",
            Command::History { .. } => "history",
            Command::Sessions => "sessions",
            Command::Leave { .. } => "leave",
            Command::SendFile { .. } => "send_file",
            Command::SendPhoto { .. } => "send_photo",
            Command::Attachments { .. } => "attachments",
            Command::Attachment { .. } => "attachment",
            Command::OpenViewOnce { .. } => "open_view_once",
            Command::Save { .. } => "save",
            Command::CancelTransfer { .. } => "cancel_transfer",
            Command::SetTimer { .. } => "set_timer",
            Command::SetMaxFileMb { .. } => "set_max_file_mb",
            Command::SetChatLimits { .. } => "set_chat_limits",
            Command::EnrollOpen => "enroll_open",
            Command::Enroll { .. } => "enroll",
            Command::EnrollApprove { .. } => "enroll_approve",
            Command::EnrollDecline { .. } => "enroll_decline",
            Command::Devices => "devices",
            Command::Block { .. } => "block",
            Command::Unblock { .. } => "unblock",
            Command::Blocked => "blocked",
            Command::RevokeDevice { .. } => "revoke_device",
            Command::RetireThisDevice => "retire_this_device",
            Command::RotateAccountKey { .. } => "rotate_account_key",
            Command::GroupStart { .. } => "group_start",
            Command::GroupAdd { .. } => "group_add",
            Command::GroupRemove { .. } => "group_remove",
            Command::GroupTimer { .. } => "group_timer",
            Command::GroupSend { .. } => "group_send",
            Command::GroupSendFile { .. } => "group_send_file",
            Command::GroupSendPhoto { .. } => "group_send_photo",
            Command::GroupLeave { .. } => "group_leave",
            Command::Groups => "groups",
            Command::Panic => "panic",
            Command::Quit => "quit",
        }
    }

    /// What a locked profile still takes (DESIGN §8): everything else is refused at the door
    /// ([`crate::Engine::execute`]), so a local user at a locked app can change nothing — not
    /// "hide my IP", not a block, not the server's key.
    pub fn allowed_while_locked(&self) -> bool {
        matches!(
            self,
            Command::Unlock { .. } | Command::LockStatus | Command::Panic | Command::Quit
        )
    }
    /// Whether the command names a file on this machine. A front-end whose input is a web page (the
    /// desktop app) refuses these: there the user picks files in the shell's own dialogs, so script
    /// in the page can never make the engine read or write a path of its choosing.
    pub fn names_a_path(&self) -> bool {
        matches!(
            self,
            Command::SendFile { .. } | Command::Save { .. } | Command::GroupSendFile { .. }
        )
    }
}
