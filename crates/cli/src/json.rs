//! `--json` mode: one JSON command per line on stdin, one JSON object per line on stdout.
//! Read → execute → print: the commands and their replies are the engine's one surface
//! (`anonchat_client::api`). Replies: `{"reply": <cmd>, "ok": true, ...}` or
//! `{"reply": <cmd>, "ok": false, "error": "...", "code": "..."}`.
//! Events: `{"event": ..., ...}` as the engine emits them.

use std::io::Write;

use anonchat_client::api::Command;
use anonchat_client::events::EventReceiver;
use anonchat_client::{Engine, Event};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use zeroize::Zeroizing;

fn emit(v: &Value) {
    let line = Zeroizing::new(v.to_string());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_str());
    let _ = out.flush();
}

fn emit_event(ev: &Event) {
    if let Ok(line) = serde_json::to_string(ev).map(Zeroizing::new) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line.as_str());
        let _ = out.flush();
    }
}

pub async fn run(engine: Engine, mut events: EventReceiver, burner: bool) -> anyhow::Result<()> {
    let printer = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            emit_event(&ev);
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    emit(&json!({"event": "ready", "username": engine.username()}));
    while let Ok(Some(line)) = lines.next_line().await {
        let line = Zeroizing::new(line);
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
