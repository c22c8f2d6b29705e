//! The one command surface (issue 15): [`Command`] in, [`Reply`] out, through
//! [`Engine::execute`](crate::Engine::execute). The CLI's `--json` mode is read → execute → print,
//! and the desktop app's `execute` command is the same call, so the end-to-end tests drive exactly
//! what the app drives. Errors carry a stable `code` beside their message: front-ends decide on
//! the code and show the message.

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{ProfileError, SessionError, SignalingError};
use crate::passcode::LockError;
use crate::ClientError;

mod command;
mod execute;
mod groups;
pub use command::Command;

/// An error as a front-end gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// Stable, snake_case: what a front-end switches on (the match in `ClientError::code` below).
    pub code: &'static str,
    /// For people: what went wrong, in the engine's words.
    pub message: String,
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl ClientError {
    /// The error's stable code.
    pub fn code(&self) -> &'static str {
        use ClientError as E;
        match self {
            E::Profile(e) => match e {
                ProfileError::Keychain(_) => "keychain",
                ProfileError::NoIdentity => "no_identity",
                ProfileError::AlreadyRegistered(_) => "already_registered",
                ProfileError::Storage(_) => "profile",
            },
            E::Signaling(e) => match e {
                SignalingError::Tls(_) => "tls",
                SignalingError::Http(_) => "server",
                SignalingError::Taken => "taken",
                SignalingError::NotFound => "not_found",
                SignalingError::PowRequired => "pow_required",
                SignalingError::RateLimited(_) => "rate_limited",
                SignalingError::Refused(_) => "server_refused",
                SignalingError::UnexpectedAnswer => "unexpected_answer",
                SignalingError::NotConnected => "not_connected",
                SignalingError::ServerKeyChanged => "server_key_changed",
            },
            E::Session(e) => match e {
                SessionError::NotOpen => "not_open",
                SessionError::UnknownSession => "unknown_session",
                SessionError::UnknownAttachment => "unknown_attachment",
                SessionError::UnknownRing => "unknown_ring",
                SessionError::Crypto(_) => "crypto",
                SessionError::Transport(_) => "transport",
            },
            E::Lock(LockError::Locked) => "locked",
            E::Lock(LockError::PasscodeRequired) => "passcode_required",
            E::Lock(LockError::Wrong) => "wrong_passcode",
            E::Lock(LockError::Wait(_)) => "passcode_wait",
            E::Proto(_) => "bad_input",
            E::KeyChanged(_) => "key_changed",
            E::Approval(crate::trust::Refusal::NothingPending) => "nothing_pending",
            E::Approval(crate::trust::Refusal::NotShown) => "not_what_was_shown",
            E::UnknownContact(_) => "unknown_contact",
            E::Camera(_) => "camera",
            E::Refused(_) => "refused",
        }
    }
}

/// One command's answer: its name and what it returned.
#[derive(Debug)]
pub struct Reply {
    pub name: &'static str,
    pub result: Result<Value, ApiError>,
}

impl Reply {
    /// `{"reply": name, "ok": true, ...}` or `{"reply": name, "ok": false, "error": message,
    /// "code": code}`.
    pub fn to_json(&self) -> Value {
        match &self.result {
            Ok(extra) => execute::ok(self.name, extra.clone()),
            Err(e) => json!({"reply": self.name, "ok": false, "error": e.message, "code": e.code}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct_from_the_message() {
        let e = ApiError::from(ClientError::Lock(LockError::PasscodeRequired));
        assert_eq!(e.code, "passcode_required");
        assert_eq!(e.message, "this needs the app passcode");
        assert_eq!(
            ApiError::from(ClientError::Signaling(SignalingError::NotFound)).code,
            "not_found"
        );
        let reply = Reply {
            name: "lookup",
            result: Err(ClientError::Signaling(SignalingError::NotFound).into()),
        };
        assert_eq!(
            reply.to_json(),
            json!({"reply": "lookup", "ok": false, "error": "User not found or offline.", "code": "not_found"})
        );
        let reply = Reply {
            name: "whoami",
            result: Ok(json!({"username": "alice"})),
        };
        assert_eq!(
            reply.to_json(),
            json!({"reply": "whoami", "ok": true, "username": "alice"})
        );
    }

    #[test]
    fn a_command_line_parses_into_the_shared_list() {
        let cmd: Command =
            serde_json::from_str(r#"{"cmd":"lookup","username":"bob"}"#).expect("parses");
        assert!(matches!(cmd, Command::Lookup { .. }));
        assert!(serde_json::from_str::<Command>(r#"{"cmd":"self_destruct"}"#).is_err());
    }

    #[test]
    fn only_the_commands_that_name_a_file_are_kept_from_a_page() {
        let parse = |s: &str| serde_json::from_str::<Command>(s).expect("parses");
        assert!(
            parse(r#"{"cmd":"send_file","session":"s","path":"/etc/hostname"}"#).names_a_path()
        );
        assert!(parse(r#"{"cmd":"save","session":"s","id":1,"path":"/tmp/x"}"#).names_a_path());
        for ok in [
            r#"{"cmd":"send","session":"s","text":"hi"}"#,
            r#"{"cmd":"send_photo","session":"s"}"#,
            r#"{"cmd":"attachment","session":"s","id":1}"#,
            r#"{"cmd":"friend_requests"}"#,
            r#"{"cmd":"incoming_rings"}"#,
            r#"{"cmd":"check_username","username":"Bob"}"#,
        ] {
            assert!(!parse(ok).names_a_path(), "{ok}");
        }
    }
}
