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

/// The object path of the logind session this app belongs to. `GetSession("auto")` is the caller's
/// session, or — for a process outside any session, as apps launched by a desktop into systemd
/// user scopes are — the user's graphical session; logind before systemd 243 only answers
/// `GetSessionByPID`, for processes inside a session.
async fn my_session(conn: &Connection) -> Option<String> {
    let path = |reply: zbus::Result<zbus::Message>| {
        reply.ok().and_then(|r| {
            r.body()
                .deserialize::<zbus::zvariant::OwnedObjectPath>()
                .ok()
                .map(|p| p.as_str().to_string())
        })
    };
    let auto = conn
        .call_method(LOGIND, MANAGER_PATH, MANAGER, "GetSession", &("auto",))
        .await;
    if let Some(p) = path(auto) {
        return Some(p);
    }
    let by_pid = conn
        .call_method(
            LOGIND,
            MANAGER_PATH,
            MANAGER,
            "GetSessionByPID",
            &(std::process::id(),),
        )
        .await;
    path(by_pid)
}

const LOGIND: Option<&str> = Some("org.freedesktop.login1");
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: Option<&str> = Some("org.freedesktop.login1.Manager");

pub async fn system_bus(on: OnSignal) -> zbus::Result<()> {
    let conn = Connection::system().await?;
    // This process's session, so another user's lock does not end our chats.
    let my_session = my_session(&conn).await;
    if my_session.is_none() {
        tracing::info!("logind named no session for this app: only sleep is listened to");
    }
    listen(
        &conn,
        "type='signal',sender='org.freedesktop.login1'",
        my_session,
        on,
    )
    .await
}
