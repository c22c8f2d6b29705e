//! The interactive terminal chat. Lines starting with `/` are commands; anything else goes to the
//! current session.

use anonchat_client::events::EventReceiver;
use anonchat_client::{Engine, Event};
use anonchat_proto::frames::SecretText;

const HELP: &str = "\
/add USER [CODE] send a friend request          /accept USER   accept a friend request
/link LINK       add from an anonchat:// link     /code          your code, its countdown and link
/scan [N]        add by showing their QR to camera N (0)   /cameras  list cameras
/mode MODE       public, default or strict        /search PREFIX find public users
/friends         list friends                    /safety USER   show the safety number
/ring USER [CODE] ring someone                  /answer        answer the last incoming ring
/decline         decline the last ring           /leave         end the chat (it is wiped)
/block USER      refuse USER without asking      /unblock USER  undo that
/devices         this account's devices          /adddevice     a code + QR for a new device
/approve, /deny  let the new device in, or not   /revoke ID     cut a device off (it wipes itself)
/rotatekey       new account key (after a lost device; offline devices are signed out)
/retire          give this device up: revoked (the account deleted if it is the only one), keys erased
/trust USER      trust USER's changed key whose safety number was printed (after comparing it in person)
/send PATH       send a file (images show inline)  /once PATH  send it view-once
/photo [N]       take a photo with camera N, send it  /files     attachments in this chat
/open ID         open a view-once attachment      /save ID PATH  write an attachment there
/cancel ID       stop a transfer                 /timer SECS  auto-delete: 0, 5, 60, 3600, 86400
/hideip on|off   relay only (hide your IP) or direct
/passcode P|off  set or remove the app passcode   /unlock P     enter it (after a start or panic)
/panic           end and wipe every chat         /quit          leave and exit
Anything else is sent to the open chat.";

pub async fn run(engine: Engine, mut events: EventReceiver, burner: bool) -> anyhow::Result<()> {
    let sealed = engine.lock_status().locked && engine.username().is_none();
    if engine.username().is_none() && !sealed {
        anyhow::bail!("this profile has no identity yet: run `anonchat-cli --server URL register USERNAME` first");
    }
    if sealed {
        // The keys are sealed under the passcode: nothing connects until /unlock opens them.
        crate::out!("Locked: /unlock PASSCODE to open your keys and connect.");
    } else {
        crate::connected(&engine, &mut events).await?;
        crate::out!("Connected as {}. Chats are never stored: when either of you leaves, it is gone. /help for commands.", engine.username().unwrap_or_default());
    }
    let mut lines = crate::stdio::lines();
    let mut current: Option<String> = None;
    // The device waiting to join, with the code printed for it.
    let mut joining: Option<(String, String)> = None;
    // The other devices `/rotatekey` printed: `/rotatekey keep` keeps exactly those.
    let mut rotation_shown: Option<Vec<anonchat_client::engine::KeptDevice>> = None;
    let mut last_ring: Option<String> = None;
    // The safety numbers printed for friend requests and changed keys: /accept and /trust approve
    // exactly what was printed (P8), never what the server names later.
    let mut requests_shown: std::collections::HashMap<String, String> = Default::default();
    let mut keys_shown: std::collections::HashMap<String, String> = Default::default();
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match &ev {
                    Event::IncomingRing { ring_id, from, invite } => {
                        last_ring = Some(ring_id.clone());
                        if *invite {
                            crate::out!("* {from} rings you into a group. /answer or /decline");
                        } else {
                            crate::out!("* {from} is ringing. /answer or /decline");
                        }
                    }
                    Event::SessionOpen { session, peer, peer_unprotected, route, .. } => {
                        current = Some(session.clone());
                        crate::out!("* Chat with {peer} is open. End-to-end encrypted; nothing is kept.");
                        if route.local == "relay" {
                            crate::out!("* Relayed: {peer} cannot see your IP address.");
                        } else {
                            crate::out!("* Direct connection: {peer} can see your IP address.");
                        }
                        if *peer_unprotected {
                            crate::out!("* Your contact's screen can't be protected — screenshots may be possible.");
                        }
                    }
                    Event::PeerCaps { peer_unprotected, .. } => {
                        if *peer_unprotected {
                            crate::out!("* Your contact turned screen protection off — screenshots may be possible.");
                        } else {
                            crate::out!("* Your contact's screen is protected again.");
                        }
                    }
                    Event::SessionReconnecting { .. } => crate::out!("* Connection lost: reconnecting… (the chat is wiped if this fails)"),
                    Event::SessionResumed { route, .. } => crate::out!("* Reconnected{}.", if route.local == "relay" { " through the relay" } else { "" }),
                    Event::Message { text, .. } => crate::out!("< {}", text.as_str()),
                    Event::FileIncoming { meta, .. } => crate::out!("* Receiving #{} {} ({} bytes{})…", meta.id, meta.name.as_str(), meta.size, if meta.view_once { ", view once: /open" } else { "" }),
                    Event::FileReceived { id, .. } => crate::out!("* #{id} arrived (in memory only; /save {id} PATH to keep it)."),
                    Event::FileCancelled { id, reason, .. } => crate::out!("* Transfer #{id} stopped: {reason}."),
                    Event::ViewOnceOpened { id, .. } => crate::out!("* #{id} was opened once and is now wiped on both sides."),
                    Event::TimerSet { seconds, .. } => crate::out!("* Auto-delete is now {seconds} s."),
                    Event::Expired { ids, .. } => crate::out!("* Expired and wiped: {ids:?}"),
                    Event::Receipt { id, .. } => crate::out!("  (delivered #{id})"),
                    Event::SessionEnded { session, reason, .. } => {
                        if current.as_deref() == Some(session) { current = None; }
                        crate::out!("* Chat ended ({reason:?}). It has been wiped.");
                    }
                    Event::SessionFailed { reason, .. } => crate::out!("* Could not start the chat: {reason}"),
                    Event::RingEnded { reason, .. } => crate::out!("* Ring ended: {reason:?}"),
                    Event::FriendRequest { from, safety_number } => {
                        crate::out!("* Friend request from {from}. Safety number:\n  {safety_number}\n  /accept {from}");
                        requests_shown.insert(from.clone(), safety_number.clone());
                    }
                    Event::FriendAdded { username, .. } => crate::out!("* {username} is now a friend."),
                    Event::KeyChanged { username, safety_number, rotated } => {
                        let how = if *rotated { " (signed by the old key: they say they rotated it, but a thief of the old key could say the same)" } else { "" };
                        crate::out!("!!! The account key of {username} CHANGED{how}. Do not trust this contact until you compare the new safety number in person:\n  {safety_number}\n  /trust {username} (trusts exactly this number)");
                        keys_shown.insert(username.clone(), safety_number.clone());
                    }
                    Event::AccountKeyRotated { here, signed_out } => {
                        let by = if *here { "on this device" } else { "by another device of this account" };
                        crate::out!("* The account key was rotated {by}. Friends will see a key-change warning until they accept it.");
                        for d in signed_out { crate::out!("  signed out: {d} (add it again)"); }
                    }
                    Event::Presence { username, online, recently_active } => crate::out!("* {username} is {}", if *online { "online" } else if *recently_active { "recently active" } else { "offline" }),
                    Event::Disconnected { .. } => crate::out!("* Lost the server; reconnecting (open chats go on)."),
                    Event::Connected => crate::out!("* Connected to the server."),
                    Event::Warning { message } => crate::out!("* {message}"),
                    Event::EnrollRequest { device_id, fingerprint } => {
                        crate::out!("* A new device wants to join this account. Approve only if it shows exactly\n  {fingerprint}\n  /approve   (or /deny)");
                        joining = Some((device_id.clone(), fingerprint.clone()));
                    }
                    Event::EnrollAborted { reason } => {
                        joining = None;
                        crate::out!("!!! Adding a device was ABORTED: {reason}. Open a new one with /adddevice if you still want to.");
                    }
                    Event::Blocked { username, .. } => crate::out!("* {username} refused three times: now blocked (/unblock {username})."),
                    Event::ServerKeyChanged { server, fingerprint } => crate::out!("!!! The TLS key of {server} CHANGED since this profile first connected. Someone may be impersonating it; nothing is sent to it. Its fingerprint now:\n  {fingerprint}\n  Only if its operator confirms exactly this fingerprint: anonchat-cli --json, then {{\"cmd\": \"trust_server_key\", \"fingerprint\": \"{fingerprint}\"}}"),
                    Event::DeviceRevoked => { crate::out!("* This device was revoked from another one: its keys are deleted."); break; }
                    _ => {}
                }
            }
            line = lines.recv() => {
                let Some(line) = line else { break };
                let mut parts = line.trim().splitn(2, ' ');
                let head = parts.next().unwrap_or("");
                let arg = parts.next().unwrap_or("").trim();
                // The terminal's door, as `execute` has one: a locked profile takes nothing but the
                // passcode, panic and quit (and the help text).
                let open = matches!(head, "" | "/help" | "/unlock" | "/panic" | "/quit");
                let result = match head {
                    _ if !open && engine.check_unlocked().is_err() => engine.check_unlocked(),
                    "" => Ok(()),
                    "/help" => { crate::out!("{HELP}"); Ok(()) }
                    "/add" => {
                        let mut a = arg.split_whitespace();
                        let (user, code) = (a.next().unwrap_or(""), a.next());
                        engine.add_friend(user, code).await.map(|sn| crate::out!("Request sent. Safety number:\n  {sn}"))
                    }
                    "/link" => engine.add_by_link(arg).await.map(|(u, sn)| crate::out!("Request sent to {u}. Safety number:\n  {sn}")),
                    "/cameras" => engine.cameras().await.map(|cs| for c in cs { crate::out!("{}  {}", c.index, c.name) }),
                    "/scan" => {
                        crate::out!("Hold their contact QR up to the camera (up to a minute)…");
                        match engine.scan_contact(arg.parse().unwrap_or(0), |_| {}).await {
                            Ok(link) => engine.add_by_link(&link).await.map(|(u, sn)| crate::out!("Request sent to {u}. Safety number:\n  {sn}")),
                            Err(e) => Err(e),
                        }
                    }
                    "/code" => engine.code().await.map(|c| {
                        let qr = anonchat_client::qr::terminal(&c.link).unwrap_or_default();
                        crate::out!("{qr}\n{}  ({} s left)\n{}", c.code, c.seconds_left, c.link)
                    }),
                    "/mode" => match anonchat_proto::wire::Mode::parse(arg) {
                        Some(m) => engine.set_mode(m, false, Default::default()).await.map(|_| crate::out!("Mode: {arg}")),
                        None => { crate::out!("Modes: public, default, strict"); Ok(()) }
                    },
                    "/search" => engine.search(arg).await.map(|us| crate::out!("{}", us.join("\n"))),
                    "/accept" => match requests_shown.get(arg) {
                        Some(sn) => engine.accept_friend(arg, sn).await.map(|_| { requests_shown.remove(arg); }),
                        None => { crate::out!("No friend request from {arg} was shown."); Ok(()) }
                    },
                    "/friends" => engine.friends().await.map(|fs| for f in fs {
                        crate::out!("{:<24} {:<8} {}", f.username, if f.online { "online" } else { "offline" }, f.safety_number);
                    }),
                    "/safety" => engine.safety_number(arg).map(|sn| crate::out!("{sn}")),
                    "/trust" => match keys_shown.get(arg) {
                        Some(sn) => engine.trust_new_key(arg, sn).await.map(|_| { keys_shown.remove(arg); crate::out!("* New key of {arg} trusted (not marked verified)."); }),
                        None => { crate::out!("No key change of {arg} was shown."); Ok(()) }
                    },
                    "/ring" => {
                        let mut a = arg.split_whitespace();
                        let (user, code) = (a.next().unwrap_or(""), a.next());
                        engine.ring(user, code).await.map(|_| crate::out!("Ringing {user}…"))
                    }
                    "/answer" | "/decline" => match last_ring.take() {
                        Some(id) => engine.answer(&id, head == "/answer").await,
                        None => { crate::out!("No ring to answer."); Ok(()) }
                    },
                    "/leave" => match current.take() {
                        Some(id) => engine.leave(&id).await,
                        None => Ok(()),
                    },
                    "/block" => engine.block(arg).await,
                    "/unblock" => engine.unblock(arg).await,
                    "/devices" => engine.devices().await.map(|ds| for d in ds {
                        let state = if d.revoked { "revoked" } else if d.online { "online" } else { "offline" };
                        let this = if d.this_device { " (this one)" } else { "" };
                        crate::out!("{}  {}  {state}{this}", d.device_id, d.fingerprint);
                    }),
                    "/adddevice" => engine.enroll_open().await.map(|v| {
                        let qr = anonchat_client::qr::terminal(&v.link).unwrap_or_default();
                        crate::out!("{qr}\nOn the new device: anonchat-cli --profile NAME --server URL enroll {}\n(or scan the QR; good for {} s)", v.code, v.expires_in)
                    }),
                    // Approves exactly the device (and keys) whose code was printed.
                    "/approve" => match joining.take() {
                        Some((id, code)) => engine.enroll_approve(&id, &code).await,
                        None => { crate::out!("No device is waiting to join."); Ok(()) }
                    },
                    "/deny" => match joining.take() {
                        Some((id, _)) => engine.enroll_decline(&id).await,
                        None => { crate::out!("No device is waiting to join."); Ok(()) }
                    },
                    "/revoke" => engine.revoke_device(arg).await.map(|_| crate::out!("* Revoked. It held the account key: /rotatekey replaces it.")),
                    "/retire" => engine.retire_this_device(std::time::Duration::from_secs(5)).await.map(|r| crate::out!("* This device is erased here{}.", match (r.account_deleted, r.server_told) { (true, _) => " and the account deleted", (false, true) => " and revoked", (false, false) => "; the server was not reached: revoke it from another device" })),
                    // First the devices that would keep working, then `/rotatekey keep` rotates
                    // keeping exactly those (the fingerprints printed), signing out any other.
                    "/rotatekey" if arg == "keep" => match rotation_shown.take() {
                        Some(keep) => engine.rotate_account_key(&keep).await.map(|v| crate::out!("* New account key: {} device(s) got it, {} signed out, {} friendship(s) re-signed.", v.handed_over.len() + 1, v.signed_out.len(), v.friends_resigned)),
                        None => { crate::out!("Type /rotatekey first: it lists the devices that keep working."); Ok(()) }
                    },
                    "/rotatekey" => engine.devices().await.map(|ds| {
                        let keep: Vec<anonchat_client::engine::KeptDevice> = ds
                            .into_iter()
                            .filter(|d| !d.revoked && !d.this_device && d.certified && d.online)
                            .map(|d| anonchat_client::engine::KeptDevice { device_id: d.device_id, fingerprint: d.fingerprint })
                            .collect();
                        crate::out!("A new account key. These devices keep working (every other one is signed out):");
                        for k in &keep {
                            crate::out!("  {}  {}", k.device_id, k.fingerprint);
                        }
                        crate::out!("If you know each of them, type /rotatekey keep. Otherwise /revoke the one you do not know first.");
                        rotation_shown = Some(keep);
                    }),
                    "/unlock" => engine.unlock(SecretText::new(arg.to_string())).await.map(|_| crate::out!("* Unlocked.")),
                    "/passcode" => {
                        let new = (arg != "off").then(|| SecretText::new(arg.to_string()));
                        engine.set_passcode(new).await.map(|_| crate::out!("* Passcode saved."))
                    }
                    "/send" | "/once" | "/photo" | "/files" | "/open" | "/save" | "/cancel" | "/timer" => match &current {
                        None => { crate::out!("No open chat. /ring a friend first."); Ok(()) }
                        Some(id) => media_command(&engine, id, head, arg).await,
                    },
                    "/hideip" => engine.set_hide_ip(arg != "off").await.map(|_| {
                        let n = engine.network();
                        match (n.hide_ip, n.relay_available) {
                            (true, true) => crate::out!("Your IP is hidden: chats go through the relay."),
                            (true, false) => crate::out!("Your server has no relay: peers can still see your IP."),
                            (false, _) => crate::out!("Direct connections: peers can see your IP."),
                        }
                    }),
                    "/panic" => { engine.panic().await; current = None; crate::out!("* Everything wiped."); Ok(()) }
                    "/quit" => break,
                    _ if head.starts_with('/') => { crate::out!("Unknown command. /help"); Ok(()) }
                    _ => match &current {
                        Some(id) => engine.send_text(id, SecretText::new(line.trim().to_string())).await.map(|_| ()),
                        None => { crate::out!("No open chat. /ring a friend first."); Ok(()) }
                    },
                };
                if let Err(e) = result {
                    crate::out!("! {e}");
                }
            }
        }
    }
    crate::finish(&engine, burner).await
}

/// The chat's attachment commands.
async fn media_command(
    engine: &Engine,
    session: &str,
    head: &str,
    arg: &str,
) -> Result<(), anonchat_client::ClientError> {
    let mut args = arg.splitn(2, ' ');
    let first = args.next().unwrap_or("");
    let id = || first.parse::<u64>().unwrap_or(0);
    match head {
        "/send" | "/once" => engine
            .send_file(session, std::path::Path::new(first), head == "/once")
            .await
            .map(|s| crate::out!("Sending #{}…", s.id)),
        "/photo" => engine
            .send_photo(session, first.parse().unwrap_or(0), false)
            .await
            .map(|s| crate::out!("Photo #{} sent.", s.id)),
        "/files" => engine.attachments(session).await.map(|list| {
            for m in list {
                let who = if m.mine { "sent" } else { "received" };
                let once = if m.view_once { ", view once" } else { "" };
                crate::out!(
                    "#{}  {}  {} bytes  {who}{once}",
                    m.id,
                    m.name.as_str(),
                    m.size
                );
            }
        }),
        "/open" => engine.open_view_once(session, id()).await.map(|(m, data)| {
            crate::out!(
                "#{} {}: {} bytes, now wiped on both sides.",
                m.id,
                m.name.as_str(),
                data.len()
            )
        }),
        "/save" => engine
            .save_attachment(
                session,
                id(),
                std::path::Path::new(args.next().unwrap_or("").trim()),
            )
            .await
            .map(|_| crate::out!("Saved.")),
        "/cancel" => engine.cancel_transfer(session, id()).await,
        _ => engine
            .set_timer(session, first.parse().unwrap_or(0))
            .await
            .map(|_| crate::out!("Auto-delete: {first} s.")),
    }
}
