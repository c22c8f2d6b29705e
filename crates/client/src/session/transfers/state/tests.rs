//! Every rule of a chat's attachments, with a fake clock and no session: caps and quotas on
//! offers, chunks that do not belong, the final hash, cancels from either side (and a sending task
//! that ends after its cancel), view-once on both sides, and expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_proto::attach::{self, ChunkCipher, TransferKey};
use anonchat_proto::frames::{AttachmentKind, SecretText};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::{OnChunk, OnEnd, OnSent, Transfers, MAX_INCOMING};
use crate::attachments::Meta;
use crate::quota::ChatLimits;
use crate::ClientError;

const MB: u64 = 1_000_000;

fn meta(id: u64, size: u64, mine: bool, view_once: bool) -> Meta {
    Meta {
        id,
        name: SecretText::new(format!("f{id}.png")),
        size,
        mime: "application/octet-stream".into(),
        kind: AttachmentKind::Image,
        view_once,
        mine,
    }
}

fn limits(max_items: usize, max_bytes: u64) -> ChatLimits {
    ChatLimits {
        max_items,
        max_bytes,
        ..ChatLimits::default()
    }
}

/// A PNG of `len` bytes (so it is kept as an image once received).
fn png(len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.resize(len.max(8), 7);
    b
}

/// Offers `body` as transfer `id` and sends every chunk; returns its hash.
fn arrive(t: &mut Transfers, id: u64, body: &[u8], now: Instant) -> [u8; 32] {
    let key = TransferKey::random();
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(id, body.len() as u64, false, false),
        &key,
        now,
    )
    .expect("offer taken");
    let cipher = ChunkCipher::new(&key);
    for (i, c) in body.chunks(attach::CHUNK_SIZE).enumerate() {
        let sealed = attach::seal_chunk(&cipher, id, i as u32, c);
        assert!(matches!(t.chunk(&sealed, now), OnChunk::Taken { .. }));
    }
    *blake3::hash(body).as_bytes()
}

/// What a table row is: its name, the offers taken before, the next offer, the chat's limits, and
/// whether the next is taken or why not.
type OfferCase = (
    &'static str,
    Vec<Meta>,
    Meta,
    ChatLimits,
    Result<(), &'static str>,
);

#[test]
fn offers_are_refused_past_the_size_cap_the_arrival_limit_the_quota_or_for_a_used_id() {
    let now = Instant::now();
    let key = TransferKey::random();
    let roomy = ChatLimits::default();
    let cases: Vec<OfferCase> = vec![
        ("within every limit", vec![], meta(2, MB, false, false), roomy, Ok(())),
        (
            "over this side's size cap",
            vec![],
            meta(2, 11 * MB, false, false),
            roomy,
            Err("larger than this side accepts (10 MB)"),
        ),
        (
            "one more than may arrive at once",
            (0..MAX_INCOMING as u64).map(|i| meta(10 + 2 * i, 1, false, false)).collect(),
            meta(2, 1, false, false),
            roomy,
            Err("too many attachments arriving at once"),
        ),
        (
            "an id already arriving",
            vec![meta(2, 1, false, false)],
            meta(2, 1, false, false),
            roomy,
            Err("a second offer with the same id"),
        ),
        (
            "past the chat's bytes",
            vec![meta(4, 6 * MB, false, false)],
            meta(2, 5 * MB, false, false),
            limits(100, 10 * MB),
            Err("this chat already holds 6 MB of attachments; this side keeps at most 10 MB per chat"),
        ),
        (
            "past the chat's items",
            vec![meta(4, 1, false, false)],
            meta(2, 1, false, false),
            limits(1, 10 * MB),
            Err("this chat already holds 1 attachments, as many as this side keeps"),
        ),
    ];
    for (what, before, next, lim, want) in cases {
        let mut t = Transfers::default();
        for m in before {
            t.offer(&roomy, 10 * MB, m, &key, now).expect(what);
        }
        let got = t.offer(&lim, 10 * MB, next, &key, now);
        assert_eq!(got, want.map_err(String::from), "{what}");
    }
}

#[test]
fn a_complete_transfer_is_held_as_what_its_bytes_are_and_a_bad_hash_or_a_short_one_is_not() {
    let now = Instant::now();
    let mut t = Transfers::default();
    let body = png(attach::CHUNK_SIZE * 2 + 5);
    let hash = arrive(&mut t, 2, &body, now);
    assert!(t.busy(), "bytes are arriving");
    match t.end(2, &hash, None) {
        OnEnd::Received(m) => assert_eq!(
            (m.kind, m.mime.as_str()),
            (AttachmentKind::Image, "image/png")
        ),
        other => panic!("{other:?}"),
    }
    assert!(!t.busy());
    let (m, data) = t.get(2).expect("held");
    assert_eq!((m.id, data.as_slice()), (2, body.as_slice()));
    assert!(matches!(t.end(2, &hash, None), OnEnd::Stray), "ended once");

    // A wrong hash: wiped, and the reason given.
    let hash = arrive(&mut t, 4, &body, now);
    let mut wrong = hash;
    wrong[0] ^= 1;
    assert!(
        matches!(t.end(4, &wrong, None), OnEnd::Failed(r) if r == "the file failed its integrity check")
    );
    assert!(t.get(4).is_err());

    // An end before every byte came.
    let key = TransferKey::random();
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(6, 100, false, false),
        &key,
        now,
    )
    .unwrap();
    assert!(
        matches!(t.end(6, &[0; 32], None), OnEnd::Failed(r) if r == "the file arrived incomplete")
    );
}

#[test]
fn chunks_that_do_not_belong_change_nothing_and_extra_bytes_break_the_transfer() {
    let now = Instant::now();
    let mut t = Transfers::default();
    assert_eq!(t.chunk(b"\x01", now), OnChunk::Malformed);
    let key = TransferKey::random();
    let cipher = ChunkCipher::new(&key);
    let stray = attach::seal_chunk(&cipher, 8, 0, b"abc");
    assert_eq!(
        t.chunk(&stray, now),
        OnChunk::Stray,
        "no transfer 8 arriving"
    );
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(8, 2, false, false),
        &key,
        now,
    )
    .unwrap();
    assert!(
        matches!(t.chunk(&stray, now), OnChunk::Broken { id: 8, ref reason } if reason == "more bytes than offered")
    );
    // Under another transfer's key: does not open.
    let key2 = TransferKey::random();
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(10, 3, false, false),
        &key2,
        now,
    )
    .unwrap();
    let forged = attach::seal_chunk(&cipher, 10, 0, b"abc");
    assert!(matches!(
        t.chunk(&forged, now),
        OnChunk::Broken { id: 10, .. }
    ));
}

#[test]
fn progress_is_reported_at_most_every_200_ms_and_at_the_end() {
    let t0 = Instant::now();
    let mut t = Transfers::default();
    let key = TransferKey::random();
    let cipher = ChunkCipher::new(&key);
    let body = vec![1u8; attach::CHUNK_SIZE * 3];
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(2, body.len() as u64, false, false),
        &key,
        t0,
    )
    .unwrap();
    let mut reports = Vec::new();
    for (i, (c, ms)) in body
        .chunks(attach::CHUNK_SIZE)
        .zip([50u64, 250, 260])
        .enumerate()
    {
        let sealed = attach::seal_chunk(&cipher, 2, i as u32, c);
        if let OnChunk::Taken { report, done, .. } =
            t.chunk(&sealed, t0 + Duration::from_millis(ms))
        {
            reports.push((report, done));
        }
    }
    let c = attach::CHUNK_SIZE as u64;
    assert_eq!(
        reports,
        [(false, c), (true, 2 * c), (true, 3 * c)],
        "the last always reports"
    );
}

#[test]
fn cancels_from_either_side_wipe_and_a_task_that_ends_after_its_cancel_is_stale() {
    let now = Instant::now();
    let mut t = Transfers::default();
    let data = Arc::new(Zeroizing::new(vec![1u8; 10]));
    let token = CancellationToken::new();
    t.sending(meta(1, 10, true, false), data.clone(), None, token.clone());
    assert!(t.busy());
    assert!(t.cancel(1), "a transfer in flight");
    assert!(token.is_cancelled(), "its task is told to stop");
    assert!(t.get(1).is_err(), "wiped");
    assert!(!t.cancel(1), "only once");
    assert_eq!(
        t.sent(1, false),
        OnSent::Stale,
        "the task ending later changes nothing"
    );

    // Finished or failed tasks.
    t.sending(
        meta(3, 10, true, false),
        data.clone(),
        None,
        CancellationToken::new(),
    );
    assert_eq!(t.sent(3, true), OnSent::Sent);
    assert!(t.get(3).is_ok(), "sent: still held");
    assert!(!t.cancel(3), "a finished transfer is not cancelled");
    t.sending(
        meta(5, 10, true, false),
        data,
        None,
        CancellationToken::new(),
    );
    assert_eq!(t.sent(5, false), OnSent::Failed);
    assert!(t.get(5).is_err(), "a failed send is wiped");

    // Arriving: the peer's cancel (or ours) wipes it; its late chunks are strays.
    let key = TransferKey::random();
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(2, 10, false, false),
        &key,
        now,
    )
    .unwrap();
    assert!(t.cancel(2));
    let late = attach::seal_chunk(&ChunkCipher::new(&key), 2, 0, b"x");
    assert_eq!(t.chunk(&late, now), OnChunk::Stray);
    assert!(!t.busy());
}

#[test]
fn a_view_once_from_the_peer_opens_once_and_ours_goes_when_the_peer_opens_it() {
    let now = Instant::now();
    let mut t = Transfers::default();
    let body = png(100);
    let key = TransferKey::random();
    t.offer(
        &ChatLimits::default(),
        10 * MB,
        meta(2, body.len() as u64, false, true),
        &key,
        now,
    )
    .unwrap();
    let sealed = attach::seal_chunk(&ChunkCipher::new(&key), 2, 0, &body);
    t.chunk(&sealed, now);
    assert!(matches!(
        t.end(2, blake3::hash(&body).as_bytes(), None),
        OnEnd::Received(_)
    ));
    assert!(
        matches!(t.get(2), Err(ClientError::Refused(_))),
        "not through the ordinary door"
    );
    let (_, data) = t.open_once(2).expect("opens");
    assert_eq!(data.as_slice(), body.as_slice());
    assert!(t.open_once(2).is_err(), "once");
    assert!(t.list().is_empty());

    // Ours: the ordinary door works for the sender; the peer's opening wipes it here.
    let data = Arc::new(Zeroizing::new(body));
    t.sending(
        meta(1, 100, true, true),
        data,
        None,
        CancellationToken::new(),
    );
    assert!(
        matches!(t.open_once(1), Err(ClientError::Refused(_))),
        "ours is not opened once"
    );
    assert!(t.get(1).is_ok());
    assert!(!t.opened_by_peer(3), "no such attachment");
    assert!(t.opened_by_peer(1));
    assert!(t.get(1).is_err());
    assert!(!t.opened_by_peer(1), "once");
}

#[test]
fn timed_attachments_expire_on_time_and_a_cleared_chat_holds_nothing() {
    let t0 = Instant::now();
    let mut t = Transfers::default();
    let data = Arc::new(Zeroizing::new(vec![1u8; 10]));
    let soon = t0 + Duration::from_secs(5);
    t.sending(
        meta(1, 10, true, false),
        data.clone(),
        Some(soon),
        CancellationToken::new(),
    );
    t.sending(
        meta(3, 10, true, false),
        data.clone(),
        None,
        CancellationToken::new(),
    );
    assert_eq!(t.next_expiry(), Some(soon));
    assert!(t.expire(soon - Duration::from_millis(1)).is_empty());
    assert_eq!(t.expire(soon), [1]);
    assert_eq!(t.next_expiry(), None);
    assert_eq!(t.list().iter().map(|m| m.id).collect::<Vec<_>>(), [3]);
    let token = CancellationToken::new();
    t.sending(meta(5, 10, true, false), data, None, token.clone());
    t.clear();
    assert!(token.is_cancelled() && t.list().is_empty() && !t.busy());
}
