//! The group commands, each to its engine call.

use serde_json::{json, Value};

use super::Command;
use crate::session::Sent;
use crate::{ClientError, Engine};

/// Each member's id of what was sent (receipts name it per member).
fn per_member(sent: Vec<(String, Sent)>) -> Value {
    let ids: serde_json::Map<String, Value> = sent
        .into_iter()
        .map(|(who, s)| (who, json!({"id": s.id, "expires_in_ms": s.expires_in_ms})))
        .collect();
    json!({ "sent": ids })
}

pub(super) async fn execute(
    engine: &Engine,
    cmd: Command,
) -> (&'static str, Result<Value, ClientError>) {
    match cmd {
        Command::GroupStart { members, timer } => (
            "group_start",
            engine
                .group_start(&members, timer)
                .await
                .map(|g| json!({ "group": g })),
        ),
        Command::GroupAdd { group, username } => (
            "group_add",
            engine.group_add(&group, &username).await.map(|_| json!({})),
        ),
        Command::GroupRemove { group, username } => (
            "group_remove",
            engine
                .group_remove(&group, &username)
                .await
                .map(|_| json!({})),
        ),
        Command::GroupTimer { group, seconds } => (
            "group_timer",
            engine.group_timer(&group, seconds).await.map(|_| json!({})),
        ),
        Command::GroupSend { group, text } => (
            "group_send",
            engine.group_send(&group, text).await.map(per_member),
        ),
        Command::GroupSendFile {
            group,
            path,
            view_once,
        } => (
            "group_send_file",
            engine
                .group_send_file(&group, &path, view_once)
                .await
                .map(per_member),
        ),
        Command::GroupSendPhoto {
            group,
            camera,
            view_once,
        } => (
            "group_send_photo",
            engine
                .group_send_photo(&group, camera, view_once)
                .await
                .map(per_member),
        ),
        Command::GroupLeave { group } => (
            "group_leave",
            engine.group_leave(&group).await.map(|_| json!({})),
        ),
        Command::Groups => ("groups", Ok(json!({ "groups": engine.groups() }))),
        _ => (
            "unknown",
            Err(ClientError::Refused("not a group command".into())),
        ),
    }
}
