//! `hello` mid-chat: a peer that turns its capture protection off is shown unprotected at once,
//! and no `hello` can add a protection its certificate does not claim.

use super::*;

fn protected(caps: bool) -> Caps {
    Caps {
        screen_protection: caps,
    }
}

/// Open, with a peer whose certificate claims capture protection.
fn open_with_protected_peer(t0: Instant) -> (ChatCore, Peer) {
    let (mut core, mut peer) = callee(ChatLimits::default(), t0);
    core.peer_cert.caps = protected(true);
    core.peer_caps = protected(true);
    let fx = core.opened(t0);
    assert!(matches!(
        fx[..],
        [Effect::Send(_), Effect::Opened { peer_caps }] if peer_caps.screen_protection
    ));
    assert!(matches!(peer.read(&fx)[..], [PeerFrame::Hello { .. }]));
    (core, peer)
}

fn caps_events(fx: &[Effect]) -> Vec<bool> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            Event::PeerCaps {
                peer_unprotected,
                peer_caps,
                ..
            } => {
                assert_eq!(*peer_unprotected, !peer_caps.screen_protection);
                Some(*peer_unprotected)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_turning_protection_off_and_on_is_shown_each_time() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open_with_protected_peer(t0);
    let hello = |peer: &mut Peer, on: bool| {
        peer.seal(&PeerFrame::Hello {
            caps: protected(on),
        })
    };
    // The hello at open says what the certificate says: nothing changes.
    let fx = core.on_data(&hello(&mut peer, true), 1 << 20, t0 + MS);
    assert!(caps_events(&fx).is_empty());
    let fx = core.on_data(&hello(&mut peer, false), 1 << 20, t0 + 2 * MS);
    assert_eq!(caps_events(&fx), [true], "unprotected now");
    let fx = core.on_data(&hello(&mut peer, false), 1 << 20, t0 + 3 * MS);
    assert!(caps_events(&fx).is_empty(), "told once");
    let fx = core.on_data(&hello(&mut peer, true), 1 << 20, t0 + 4 * MS);
    assert_eq!(caps_events(&fx), [false], "protected again");
}

#[test]
fn a_hello_cannot_add_a_protection_the_certificate_lacks() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let lie = peer.seal(&PeerFrame::Hello {
        caps: protected(true),
    });
    let fx = core.on_data(&lie, 1 << 20, t0 + MS);
    assert!(caps_events(&fx).is_empty());
    assert!(!core.peer_caps.screen_protection);
}

#[test]
fn our_own_change_is_told_in_the_hello_at_open_or_at_once_when_open() {
    let t0 = Instant::now();
    let (mut core, mut peer) = callee(ChatLimits::default(), t0);
    core.my_caps = protected(true);
    // Not open yet: nothing to send; the hello at open carries it.
    assert!(core.set_my_caps(protected(false)).is_empty());
    let fx = core.opened(t0);
    assert_eq!(
        peer.read(&fx),
        [PeerFrame::Hello {
            caps: protected(false)
        }]
    );
    let fx = core.set_my_caps(protected(true));
    assert_eq!(
        peer.read(&fx),
        [PeerFrame::Hello {
            caps: protected(true)
        }]
    );
    assert!(core.set_my_caps(protected(true)).is_empty(), "no change");
}
