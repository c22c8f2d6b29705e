//! "When either of you leaves, it is gone from both machines" (the chat's own banner; P4), for
//! the desktop app: not only the engine's copy — WebKit's web process rendered every line, kept
//! them in its DOM, JavaScript heap and editing history, and ending the chat on the page does not
//! take them out of that process's memory. The app as a user runs it (AT-SPI and X input, no
//! WebDriver), a real server and a real CLI peer; a dump of every process of the app after a chat
//! ends finds none of its lines, whoever left (before the fix: 2 copies in the web process and 1
//! in the app's own, 12 s after the peer left), and a note the user was writing survives.

use anonchat_e2e::cli::Cli;
use anonchat_e2e::gui::{
    canaries_by_process, list_reaches, one_at_a_time, press, stage, wait_for, wait_for_focus,
    wait_for_length, web_process_replaced, web_processes, PlainApp,
};
use anonchat_e2e::{canary, unique};
use serde_json::json;

fn clean(after: &[(u32, String, usize)]) {
    assert!(
        after.iter().all(|(_, _, n)| *n == 0),
        "no line of the ended chat in any process of the app: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_that_ended_is_in_no_process_of_the_app() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("ended-gui").await;
    let app_name = unique("desk");
    let app = PlainApp::start(&display, &home.0, &unique("pe"), &server.url());
    let pid = app.pid;
    app.onboard_and_befriend(&display, &app_name, &mut bob, &bob_name)
        .await;
    let carol_name = unique("carol");
    let mut carol = Cli::start(&unique("pc"), &home.0, &server.url()).await;
    carol.register(&carol_name).await;
    carol.connect().await;
    carol
        .ok(json!({"cmd": "add_friend", "username": app_name}))
        .await;
    press(pid, &format!("Accept {carol_name}"));
    carol.expect_event("friend_added").await;
    // The contacts, where a user who was in a chat finds themselves after it.
    let call = format!("Call {bob_name} (online)");

    // The peer leaves.
    let (session, canaries) = app
        .answer_and_trade_canaries(&display, &mut bob, &app_name)
        .await;
    let rendered = web_processes(pid);
    let before = canaries_by_process(pid, &canaries, "while the chat is open");
    assert!(
        before
            .iter()
            .any(|(p, _, n)| rendered.contains(p) && *n > 0),
        "the dump finds the chat in WebKit's web process while it is open"
    );
    bob.ok(json!({"cmd": "leave", "session": session})).await;
    bob.expect_event("session_ended").await;
    web_process_replaced(pid, &rendered).await;
    wait_for(pid, &call);
    clean(&canaries_by_process(pid, &canaries, "after the peer left"));

    // The peer leaves while the app's user writes a note: the fresh page comes back on the notes,
    // with the note (carried through the shell, never written anywhere), not the chat.
    let (session, canaries) = app
        .answer_and_trade_canaries(&display, &mut bob, &app_name)
        .await;
    let rendered = web_processes(pid);
    press(pid, "Notes");
    wait_for_focus(pid, "Notes");
    let note = format!("NOTE-{}", unique("n"));
    display.type_text(&note);
    // Every key landed before the peer leaves (X input is asynchronous: keys still on their way
    // when the page is replaced were never in it).
    wait_for_length(pid, "Notes", note.len());
    bob.ok(json!({"cmd": "leave", "session": session})).await;
    bob.expect_event("session_ended").await;
    web_process_replaced(pid, &rendered).await;
    // On the notes (their Clear shows), typing on where the user was.
    wait_for(pid, "Clear");
    display.type_text("+more");
    let note = format!("{note}+more");
    wait_for_length(pid, "Notes", note.len());
    clean(&canaries_by_process(
        pid,
        &canaries,
        "after the peer left, a note kept",
    ));

    // The note shares into the next chat (it was carried whole); the app's user leaves that one.
    let (session, canaries) = app
        .answer_and_trade_canaries(&display, &mut bob, &app_name)
        .await;
    let rendered = web_processes(pid);
    press(pid, "Notes");
    press(pid, "Send to chat");
    let want = note.clone();
    bob.expect("the carried note", move |v| {
        v["event"] == "message" && v["text"] == want.as_str()
    })
    .await;
    press(pid, "Leave");
    let ended = bob.expect_event("session_ended").await;
    assert_eq!(ended["session"], session);
    assert_eq!(ended["reason"], "peer_left", "{ended}");
    web_process_replaced(pid, &rendered).await;
    wait_for(pid, &call);
    clean(&canaries_by_process(
        pid,
        &canaries,
        "after the app's user left",
    ));
    press(pid, &call);

    // One chat at a time, like a phone call: a ring answered during a chat ends that chat (its
    // peer is told) rather than leaving it open with no window to come back to; once the second
    // ends too, neither is in any process.
    let ring = bob.expect_event("incoming_ring").await;
    bob.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
        .await;
    bob.expect_event("session_open").await;
    let first = canary();
    bob.ok(json!({"cmd": "send", "session": ring["ring_id"], "text": first}))
        .await;
    list_reaches(pid, "Messages", 1);
    let second_ring = carol.ok(json!({"cmd": "ring", "username": app_name})).await;
    press(pid, "Answer");
    let ended = bob.expect_event("session_ended").await;
    assert_eq!(ended["session"], ring["ring_id"]);
    assert_eq!(ended["reason"], "peer_left", "{ended}");
    carol.expect_event("session_open").await;
    let second = canary();
    carol
        .ok(json!({"cmd": "send", "session": second_ring["ring_id"], "text": second}))
        .await;
    list_reaches(pid, "Messages", 1);
    let rendered = web_processes(pid);
    carol
        .ok(json!({"cmd": "leave", "session": second_ring["ring_id"]}))
        .await;
    carol.expect_event("session_ended").await;
    web_process_replaced(pid, &rendered).await;
    wait_for(pid, &call);
    clean(&canaries_by_process(
        pid,
        &[first, second],
        "after a ring answered during a chat, and its own end",
    ));
}
