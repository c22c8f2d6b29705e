//! Attachments of one session (DESIGN §6): files, images and camera photos, in RAM only. The
//! bytes go out on a task of the session's (`session/transfers.rs`) as AEAD-sealed chunks under a
//! per-transfer key (`anonchat_proto::attach`) with the channel's backpressure; incoming ones are assembled into a
//! buffer sized once from the offer (no reallocation leaves copies behind), checked against the
//! sender's hash, and wiped with the session, on expiry, on cancel, or after a view-once opening.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_proto::attach::{self, ChunkCipher, TransferKey};
use anonchat_proto::frames::{AttachmentKind, SecretText};
use zeroize::Zeroizing;

/// Progress events at most this often per transfer (and always at the end).
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// An attachment as a front-end sees it (its bytes are fetched separately).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Meta {
    pub id: u64,
    pub name: SecretText,
    pub size: u64,
    pub mime: String,
    pub kind: AttachmentKind,
    pub view_once: bool,
    /// Sent by this side.
    pub mine: bool,
}

/// What a front-end hands over to send.
pub struct NewAttachment {
    pub name: SecretText,
    pub mime: String,
    pub kind: AttachmentKind,
    pub view_once: bool,
    pub data: Zeroizing<Vec<u8>>,
}

/// A complete attachment held in RAM.
pub(crate) struct Held {
    pub meta: Meta,
    pub data: Arc<Zeroizing<Vec<u8>>>,
    pub expires: Option<Instant>,
}

/// An attachment arriving.
pub(crate) struct Incoming {
    pub meta: Meta,
    cipher: ChunkCipher,
    pub data: Zeroizing<Vec<u8>>,
    pub next: u32,
    /// Wiped on drop (it holds state derived from the plaintext).
    hash: blake3::Hasher,
    pub last_progress: Instant,
}

pub(crate) enum ChunkOutcome {
    Progress,
    /// Something is wrong with this transfer: cancel it, with this reason.
    Broken(String),
}

impl Incoming {
    pub fn new(meta: Meta, key: &TransferKey, now: Instant) -> Self {
        // Sized once from the offer (already checked against the cap): growing the buffer would
        // leave unwiped copies of the first part in freed memory.
        let data = Zeroizing::new(Vec::with_capacity(meta.size as usize));
        Incoming {
            meta,
            cipher: ChunkCipher::new(key),
            data,
            next: 0,
            hash: blake3::Hasher::new(),
            last_progress: now,
        }
    }

    pub fn take_chunk(&mut self, frame: &[u8]) -> ChunkOutcome {
        let plain_len = frame
            .len()
            .saturating_sub(attach::CHUNK_HEADER + attach::TAG) as u64;
        if self.data.len() as u64 + plain_len > self.meta.size {
            return ChunkOutcome::Broken("more bytes than offered".into());
        }
        let start = self.data.len();
        let (id, next) = (self.meta.id, self.next);
        if let Err(e) = attach::open_chunk_into(&self.cipher, id, next, frame, &mut self.data) {
            return ChunkOutcome::Broken(e.to_string());
        }
        self.hash.update(&self.data[start..]);
        self.next += 1;
        ChunkOutcome::Progress
    }

    /// Whether the whole arrived and matches the sender's hash.
    pub fn verify(self, blake3: &[u8; 32]) -> Result<(Meta, Zeroizing<Vec<u8>>), String> {
        if self.data.len() as u64 != self.meta.size {
            return Err("the file arrived incomplete".into());
        }
        // `blake3::Hash` compares in constant time.
        if self.hash.finalize() != blake3::Hash::from_bytes(*blake3) {
            return Err("the file failed its integrity check".into());
        }
        Ok((self.meta, self.data))
    }

    pub fn progress_due(&mut self, now: Instant) -> bool {
        let done = self.data.len() as u64 == self.meta.size;
        if done || now.saturating_duration_since(self.last_progress) >= PROGRESS_EVERY {
            self.last_progress = now;
            return true;
        }
        false
    }
}

/// A media type from a file name's extension (enough for what a chat shows inline).
/// Image types a front-end may decode, each recognised by its leading bytes. Never the peer's word:
/// a peer-chosen type would have WebKit decode (or run) whatever it names.
pub fn sniff_image(data: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if data.starts_with(PNG) {
        Some("image/png")
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// What an arrived attachment is shown as: an inline image only if its bytes are an allowed image
/// type; anything else is a file of unknown type.
pub fn received_kind(claimed: AttachmentKind, data: &[u8]) -> (AttachmentKind, &'static str) {
    match (claimed, sniff_image(data)) {
        (AttachmentKind::Image | AttachmentKind::Photo, Some(mime)) => (claimed, mime),
        _ => (AttachmentKind::File, UNKNOWN_MIME),
    }
}

pub const UNKNOWN_MIME: &str = "application/octet-stream";

/// Most characters of a peer's file name kept.
const MAX_NAME_CHARS: usize = 120;

/// A peer's file name made safe to show and to offer in a Save dialog: no control or format
/// characters (bidi overrides that make `exe.txt` look like `txt.exe`, zero-width joiners), no path
/// separators or characters Windows refuses, no leading dots, at most 120 characters.
pub fn safe_file_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| !is_invisible(*c))
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "file".into()
    } else {
        trimmed.to_string()
    }
}

/// Control characters, bidi controls and zero-width characters (Unicode Cc and the Cf that matter).
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{FFF9}'..='\u{FFFB}')
}

pub fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_proto::attach::CHUNK_SIZE;

    #[test]
    fn peer_file_names_lose_bidi_controls_separators_and_control_characters() {
        assert_eq!(safe_file_name("report\u{202E}fdp.exe"), "reportfdp.exe");
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("a\nb\tc\u{0}d"), "abcd");
        assert_eq!(safe_file_name("C:\\x\u{200B}y.txt"), "C__xy.txt");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("\u{2066}\u{2069} "), "file");
        assert_eq!(safe_file_name(&"é".repeat(500)).chars().count(), 120);
        assert_eq!(safe_file_name("holiday photo.jpg"), "holiday photo.jpg");
    }

    #[test]
    fn only_sniffed_allowed_images_render_inline() {
        let png = b"\x89PNG\r\n\x1a\n....";
        assert_eq!(
            received_kind(AttachmentKind::Image, png),
            (AttachmentKind::Image, "image/png")
        );
        assert_eq!(
            received_kind(AttachmentKind::Photo, &[0xFF, 0xD8, 0xFF, 0xE0]),
            (AttachmentKind::Photo, "image/jpeg")
        );
        assert_eq!(
            received_kind(AttachmentKind::Image, b"RIFF\0\0\0\0WEBPVP8 "),
            (AttachmentKind::Image, "image/webp")
        );
        for evil in [
            &b"<svg onload=alert(1)>"[..],
            b"<html><script>",
            b"GIF8",
            b"",
        ] {
            assert_eq!(
                received_kind(AttachmentKind::Image, evil),
                (AttachmentKind::File, UNKNOWN_MIME)
            );
        }
        assert_eq!(
            received_kind(AttachmentKind::File, png),
            (AttachmentKind::File, UNKNOWN_MIME),
            "a file stays a file"
        );
    }

    fn meta(size: u64) -> Meta {
        Meta {
            id: 9,
            name: SecretText::new("a.bin".into()),
            size,
            mime: "application/octet-stream".into(),
            kind: AttachmentKind::File,
            view_once: false,
            mine: false,
        }
    }

    #[test]
    fn assembles_checks_the_hash_and_refuses_extra_bytes() {
        let key = TransferKey::random();
        let cipher = ChunkCipher::new(&key);
        let body: Vec<u8> = (0..(CHUNK_SIZE * 2 + 10)).map(|i| i as u8).collect();
        let mut inc = Incoming::new(meta(body.len() as u64), &key, Instant::now());
        for (i, c) in body.chunks(CHUNK_SIZE).enumerate() {
            let sealed = attach::seal_chunk(&cipher, 9, i as u32, c);
            assert!(matches!(inc.take_chunk(&sealed), ChunkOutcome::Progress));
        }
        let (_, data) = inc.verify(blake3::hash(&body).as_bytes()).unwrap();
        assert_eq!(&*data, &body);

        // A wrong hash, and a sender that sends more than it offered.
        let mut inc = Incoming::new(meta(3), &key, Instant::now());
        assert!(matches!(
            inc.take_chunk(&attach::seal_chunk(&cipher, 9, 0, b"abc")),
            ChunkOutcome::Progress
        ));
        assert!(inc.verify(&[0u8; 32]).is_err());
        let mut inc = Incoming::new(meta(3), &key, Instant::now());
        assert!(matches!(
            inc.take_chunk(&attach::seal_chunk(&cipher, 9, 0, b"abcd")),
            ChunkOutcome::Broken(_)
        ));
        // Chunks out of order are refused.
        let mut inc = Incoming::new(meta(10), &key, Instant::now());
        assert!(matches!(
            inc.take_chunk(&attach::seal_chunk(&cipher, 9, 1, b"abc")),
            ChunkOutcome::Broken(_)
        ));
    }
}
