//! Notifications never carry content: "Incoming chat", and the caller's name only if the user allowed
//! it. Shown only when the window is not in front.

use anonchat_client::Event;
use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;

use crate::AppState;

pub const SHOW_NAME: &str = "notify_show_name";

/// The notification text for an event, if it gets one. Pure, so it is unit-tested.
pub fn text(ev: &Event, show_name: bool) -> Option<String> {
    match ev {
        Event::IncomingRing { from, .. } if show_name => Some(format!("Incoming chat from {from}")),
        Event::IncomingRing { .. } => Some("Incoming chat".into()),
        Event::FriendRequest { .. } => Some("New contact request".into()),
        _ => None,
    }
}

pub fn on_event(app: &AppHandle, ev: &Event) {
    if crate::window::in_front(app) {
        return;
    }
    let show_name = app
        .state::<AppState>()
        .engine
        .ui_setting(SHOW_NAME)
        .is_some_and(|v| v == "true");
    if let Some(body) = text(ev, show_name) {
        let _ = app
            .notification()
            .builder()
            .title("AnonChat")
            .body(body)
            .show();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_proto::frames::SecretText;

    #[test]
    fn notifications_name_the_caller_only_when_allowed_and_never_carry_content() {
        let ring = Event::IncomingRing {
            ring_id: "r".into(),
            from: "alice".into(),
            invite: false,
        };
        assert_eq!(text(&ring, false).as_deref(), Some("Incoming chat"));
        assert_eq!(
            text(&ring, true).as_deref(),
            Some("Incoming chat from alice")
        );
        let msg = Event::Message {
            session: "s".into(),
            id: 1,
            text: SecretText::new("secret words".into()),
            expires_in_ms: None,
        };
        assert_eq!(text(&msg, true), None, "no notification carries a message");
    }
}
