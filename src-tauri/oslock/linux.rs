//! Linux: the session bus's screensavers and logind on the system bus (zbus).

use futures_util::StreamExt;
use zbus::{Connection, MessageStream};

use super::{meaning, OnSignal};

async fn listen(
    conn: &Connection,
    rule: &str,
    my_session: Option<String>,
    on: OnSignal,
) -> zbus::Result<()> {
    let mut stream = MessageStream::for_match_rule(rule, conn, Some(16)).await?;
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else { continue };
        let header = msg.header();
        let (Some(interface), Some(member), Some(path)) =
            (header.interface(), header.member(), header.path())
        else {
            continue;
        };
        let arg = msg.body().deserialize::<bool>().ok();
        if let Some(signal) = meaning(
            interface.as_str(),
            member.as_str(),
            path.as_str(),
            arg,
            my_session.as_deref(),
        ) {
            on(signal);
        }
    }
    Ok(())
}

pub async fn session_bus(on: OnSignal) -> zbus::Result<()> {
    let conn = Connection::session().await?;
    listen(&conn, "type='signal',member='ActiveChanged'", None, on).await
}

pub async fn system_bus(on: OnSignal) -> zbus::Result<()> {
    let conn = Connection::system().await?;
    // This process's session, so another user's lock does not end our chats.
    let my_session = conn
        .call_method(
            Some("org.freedesktop.login1"),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "GetSessionByPID",
            &(std::process::id()),
        )
        .await
        .ok()
        .and_then(|r| {
            r.body()
                .deserialize::<zbus::zvariant::OwnedObjectPath>()
                .ok()
        })
        .map(|p| p.as_str().to_string());
    listen(
        &conn,
        "type='signal',sender='org.freedesktop.login1'",
        my_session,
        on,
    )
    .await
}
