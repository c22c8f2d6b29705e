//! `--json` mode: one JSON command per line on stdin, one JSON object per line on stdout.
//! Read → execute → print: the commands and their replies are the engine's one surface
//! (`anonchat_client::api`). Replies: `{"reply": <cmd>, "ok": true, ...}` or
//! `{"reply": <cmd>, "ok": false, "error": "...", "code": "..."}`.
//! Events: `{"event": ..., ...}` as the engine emits them.

use anonchat_client::api::Command;
use anonchat_client::events::EventReceiver;
use anonchat_client::{Engine, Event};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::stdio::print_line;

fn emit(v: &Value) {
    print_line(&Zeroizing::new(v.to_string()));
}

fn emit_event(ev: &Event) {
    if let Ok(line) = serde_json::to_string(ev).map(Zeroizing::new) {
        print_line(&line);
    }
}

pub async fn run(engine: Engine, mut events: EventReceiver, burner: bool) -> anyhow::Result<()> {
    let printer = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            emit_event(&ev);
        }
    });
    let mut lines = crate::stdio::lines();
    emit(&json!({"event": "ready", "username": engine.username()}));
    while let Some(line) = lines.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Command = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                emit(
                    &json!({"reply": "invalid", "ok": false, "error": e.to_string(), "code": "invalid"}),
                );
                continue;
            }
        };
        if matches!(cmd, Command::Quit) {
            break;
        }
        // Commands run concurrently so a slow one (a ring) does not hold up the next.
        let engine = engine.clone();
        tokio::spawn(async move {
            let reply = engine.execute(cmd).await;
            emit(&reply.to_json());
        });
    }
    let ended = crate::finish(&engine, burner).await;
    printer.abort();
    emit(&json!({"event": "bye"}));
    ended
}
