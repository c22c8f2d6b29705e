//! Attachments through the chat machine: view-once from the peer, an offer past the size cap,
//! and ours offered, finished or cancelled — each checked in what the peer reads and is told.

use anonchat_proto::attach::{self, ChunkCipher, TransferKey};
use anonchat_proto::frames::{AttachmentKind, PeerFrame, ReceiptKind, SecretText};
use anonchat_proto::Key32;
use zeroize::Zeroizing;

use super::{events, open, ChatLimits, Event, Instant, MS};
use crate::attachments::NewAttachment;

#[test]
fn a_view_once_image_from_the_peer_opens_once_and_the_peer_is_told() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
    body.resize(3 * attach::CHUNK_SIZE / 2, 7);
    let key = TransferKey::random();
    let offer = PeerFrame::FileOffer {
        id: 1,
        name: SecretText::new("../../etc/x.png".into()),
        size: body.len() as u64,
        mime: "text/html".into(),
        kind: AttachmentKind::Image,
        view_once: true,
        key: key.clone(),
    };
    let fx = core.on_data(&peer.seal(&offer), 1 << 20, t0);
    let [Event::FileIncoming { meta, .. }] = &events(&fx)[..] else {
        panic!("offer taken: {fx:?}")
    };
    assert!(
        !meta.name.as_str().contains('/'),
        "the peer's name is cleaned"
    );
    assert_eq!(
        meta.mime,
        crate::attachments::UNKNOWN_MIME,
        "its type is not believed"
    );
    let cipher = ChunkCipher::new(&key);
    for (i, c) in body.chunks(attach::CHUNK_SIZE).enumerate() {
        core.on_data(&attach::seal_chunk(&cipher, 1, i as u32, c), 1 << 20, t0);
    }
    let end = PeerFrame::FileEnd {
        id: 1,
        blake3: Key32(*blake3::hash(&body).as_bytes()),
    };
    let fx = core.on_data(&peer.seal(&end), 1 << 20, t0);
    assert!(matches!(
        events(&fx)[..],
        [Event::FileReceived { id: 1, .. }]
    ));
    assert_eq!(
        peer.read(&fx),
        vec![PeerFrame::Receipt {
            id: 1,
            kind: ReceiptKind::Delivered
        }]
    );
    assert!(
        core.attachment(1).is_err(),
        "a view-once attachment is not read as a plain one"
    );
    let ((_, bytes), fx) = core.open_view_once(1).expect("opens once");
    assert_eq!(bytes.as_slice(), body.as_slice());
    assert_eq!(peer.read(&fx), vec![PeerFrame::ViewOnceOpened { id: 1 }]);
    assert!(core.open_view_once(1).is_err(), "and only once");
}

#[test]
fn an_offer_past_the_size_cap_is_cancelled_and_the_peer_told_why() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let offer = PeerFrame::FileOffer {
        id: 3,
        name: SecretText::new("big.bin".into()),
        size: 2_000_000,
        mime: String::new(),
        kind: AttachmentKind::File,
        view_once: false,
        key: TransferKey::random(),
    };
    // The cap is read per offer: the user may lower it mid-chat.
    let fx = core.on_data(&peer.seal(&offer), 1_000_000, t0);
    assert_eq!(peer.read(&fx), vec![PeerFrame::FileCancel { id: 3 }]);
    assert!(matches!(
        events(&fx)[..],
        [Event::FileCancelled {
            id: 3,
            by_peer: false,
            ..
        }]
    ));
    assert!(core.attachments().is_empty());
}

#[test]
fn our_attachment_is_offered_then_finished_or_cancelled_once() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let new = |name: &str| NewAttachment {
        name: SecretText::new(name.into()),
        mime: "image/png".into(),
        kind: AttachmentKind::Image,
        view_once: false,
        data: Zeroizing::new(vec![1; 10]),
    };
    core.admit_send(&new("a.png")).expect("admitted");
    let (out, sent, fx) = core.begin_send(new("a.png"), t0);
    assert_eq!(sent.id, 2);
    assert!(matches!(
        &peer.read(&fx)[..],
        [PeerFrame::FileOffer {
            id: 2,
            size: 10,
            ..
        }]
    ));
    let fx = core.bulk_done(2, Ok([9; 32]), t0 + MS);
    assert_eq!(
        peer.read(&fx),
        vec![PeerFrame::FileEnd {
            id: 2,
            blake3: Key32([9; 32])
        }]
    );
    assert!(matches!(events(&fx)[..], [Event::FileSent { id: 2, .. }]));
    assert!(!out.cancel.is_cancelled());

    // Cancelled mid-send: the task is stopped, the peer told once; the task's late end says nothing.
    let (out, _, fx) = core.begin_send(new("b.png"), t0);
    peer.read(&fx);
    let fx = core.cancel_transfer(4, "cancelled");
    assert_eq!(peer.read(&fx), vec![PeerFrame::FileCancel { id: 4 }]);
    assert!(out.cancel.is_cancelled());
    assert!(core.cancel_transfer(4, "again").is_empty());
    assert!(core.bulk_done(4, Err("stopped".into()), t0).is_empty());
}

#[test]
fn a_shared_attachment_is_offered_under_its_own_id_and_key_unless_the_id_is_taken() {
    let t0 = Instant::now();
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let shared = crate::session::SharedAttachment::new(NewAttachment {
        name: SecretText::new("g.bin".into()),
        mime: String::new(),
        kind: AttachmentKind::File,
        view_once: false,
        data: Zeroizing::new(vec![5; 100]),
    });
    assert!(
        (1 << 52..1 << 53).contains(&shared.id),
        "far from the chat's counters, exact in JavaScript"
    );
    let (cancel, sent, fx) = core.begin_shared(&shared, t0).expect("offered");
    assert_eq!(sent.id, shared.id);
    let [PeerFrame::FileOffer { id, key, size, .. }] = &peer.read(&fx)[..] else {
        panic!("one offer")
    };
    assert_eq!((*id, *size), (shared.id, 100));
    assert!(
        *key == shared.key,
        "the group's one key, inside this chat's Olm"
    );
    assert!(!cancel.is_cancelled());
    assert_eq!(
        core.attachment(shared.id).expect("held").1.as_slice(),
        &[5; 100][..]
    );

    // The peer picked the same id for one of its own: ours is refused on this chat, theirs kept.
    let (mut core, mut peer) = open(ChatLimits::default(), t0);
    let theirs = PeerFrame::FileOffer {
        id: shared.id,
        name: SecretText::new("theirs.bin".into()),
        size: 1,
        mime: String::new(),
        kind: AttachmentKind::File,
        view_once: false,
        key: TransferKey::random(),
    };
    core.on_data(&peer.seal(&theirs), 1 << 20, t0);
    assert!(matches!(
        core.begin_shared(&shared, t0),
        Err(crate::ClientError::Refused(_))
    ));
}
