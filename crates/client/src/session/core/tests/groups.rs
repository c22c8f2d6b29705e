//! A chat that is a group's link: group frames go to the engine, the roster's timer holds, and a
//! peer cannot change it on its own.

use anonchat_proto::frames::PeerFrame;

use super::{events, open, text, ChatLimits, Effect, Event, Instant, SEC};
use crate::session::core::GroupFrame;

#[test]
fn group_frames_go_to_the_engine_and_out_sealed() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let fx = core.on_data(
        &peer.seal(&PeerFrame::GroupJoined { epoch: 3 }),
        1 << 20,
        t0,
    );
    assert!(
        matches!(fx[..], [Effect::Group(GroupFrame::Joined(3))]),
        "{fx:?}"
    );
    assert!(events(&fx).is_empty(), "nothing for the front-end");
    let fx = core.group_send(&PeerFrame::GroupJoined { epoch: 4 });
    assert_eq!(peer.read(&fx), vec![PeerFrame::GroupJoined { epoch: 4 }]);
}

#[test]
fn a_links_timer_is_the_rosters_and_a_peer_cannot_change_it() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    core.group_timer(5);
    // A member's own timer change on the link is not heeded.
    let fx = core.on_data(&peer.seal(&PeerFrame::Timer { seconds: 0 }), 1 << 20, t0);
    assert!(
        matches!(&events(&fx)[..], [Event::Warning { message }] if message.contains("roster")),
        "{fx:?}"
    );
    // The roster's 5 s still hold for what arrives next.
    let fx = core.on_data(&peer.seal(&text(1, "x")), 1 << 20, t0);
    assert!(matches!(
        events(&fx)[..],
        [Event::Message {
            expires_in_ms: Some(5000),
            ..
        }]
    ));
    assert_eq!(core.next_expiry(), Some(t0 + 5 * SEC));
}
