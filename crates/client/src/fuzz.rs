//! Fuzz harnesses for what the client decodes besides the protocol (`anonchat_proto::fuzz` has
//! those): the keychain record and the Olm account pickle inside it, the contacts file, and camera
//! frames read for a QR code (a code shown to the camera is a stranger's bytes). Same contract as the
//! protocol's harnesses: never panic, and what decodes encodes and decodes back to the same value.
//! `cargo test` runs them over mutated seeds; `fuzz/` runs them under afl.

use anonchat_proto::fuzz::Harness;
use image::{GrayImage, Luma};
use vodozemac::olm::{Account, AccountPickle};

use crate::camera::Frame;
use crate::identity::Identity;
use crate::profile;

pub const TARGETS: &[(&str, Harness)] = &[
    ("identity_record", identity_record),
    ("account_pickle", account_pickle),
    ("contacts_file", contacts_file),
    ("qr_frame", qr_frame),
];

/// The identity record as the keychain hands it back (the keychain is outside the process).
pub fn identity_record(data: &[u8]) -> bool {
    let Ok(id) = Identity::from_secret(data) else {
        return false;
    };
    let back = Identity::from_secret(&id.to_secret()).expect("a saved identity loads");
    assert_eq!(back.username, id.username);
    assert_eq!(back.device_id, id.device_id);
    assert_eq!(back.ak_pub(), id.ak_pub());
    assert_eq!(back.cert, id.cert);
    assert_eq!(back.passcode_hash, id.passcode_hash);
    assert_eq!(back.account.identity_keys(), id.account.identity_keys());
    true
}

/// The Olm account pickle once decrypted (vodozemac's JSON), the part of the record the pickle
/// key's MAC keeps the fuzzer from reaching through `identity_record`.
pub fn account_pickle(data: &[u8]) -> bool {
    let Ok(pickle) = serde_json::from_slice::<AccountPickle>(data) else {
        return false;
    };
    let account = Account::from_pickle(pickle);
    let again = serde_json::to_vec(&account.pickle()).expect("a pickle encodes");
    let back = serde_json::from_slice::<AccountPickle>(&again).expect("an encoded pickle decodes");
    let back = Account::from_pickle(back);
    assert_eq!(back.identity_keys(), account.identity_keys());
    assert_eq!(back.one_time_keys(), account.one_time_keys());
    true
}

/// The contacts file: opened under a fixed key (short or forged files are refused), and its
/// decrypted JSON parsed.
pub fn contacts_file(data: &[u8]) -> bool {
    let sealed = profile::open(data, &[9; 32]).is_ok();
    let Ok(plain) = profile::parse(data) else {
        return sealed;
    };
    let again = serde_json::to_vec(&plain).expect("contacts encode");
    assert_eq!(profile::parse(&again).ok(), Some(plain));
    true
}

/// A camera frame searched for a QR code: the first byte is the width less one, the rest are grey
/// pixels row by row (at most 256 rows).
pub fn qr_frame(data: &[u8]) -> bool {
    let Some((&w, pixels)) = data.split_first() else {
        return false;
    };
    let w = usize::from(w) + 1;
    let h = (pixels.len() / w).min(256);
    if h == 0 {
        return false;
    }
    let grey = GrayImage::from_fn(w as u32, h as u32, |x, y| {
        Luma([pixels[y as usize * w + x as usize]])
    });
    let rgb = image::DynamicImage::ImageLuma8(grey).to_rgb8();
    Frame::from_image(rgb).qr_text().is_some()
}

/// Valid inputs of every target: what mutations start from, and the afl corpus.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let alice = anonchat_proto::Username::parse("alice").expect("a valid name");
    let id = Identity::create(alice, anonchat_proto::Caps::default(), 7);
    match target {
        "identity_record" => vec![id.to_secret().to_vec()],
        "account_pickle" => {
            let mut account = Account::new();
            account.generate_one_time_keys(2);
            vec![serde_json::to_vec(&account.pickle()).expect("a pickle encodes")]
        }
        "contacts_file" => {
            let mut data = profile::ProfileData::default();
            data.contacts.insert(
                "bob".into(),
                profile::Contact {
                    ak_pub: id.ak_pub(),
                    verified: true,
                },
            );
            data.blocked.insert("mallory".into());
            data.ui.insert("panic".into(), "Ctrl+Shift+X".into());
            let plain = serde_json::to_vec(&data).expect("contacts encode");
            let sealed = profile::seal(&[9; 32], &data).expect("contacts seal");
            vec![plain, sealed]
        }
        "qr_frame" => vec![qr_seed("anonchat://add?u=alice&c=123456")],
        other => panic!("no seeds for {other}"),
    }
}

/// A QR code at two pixels a module, in the `qr_frame` layout.
fn qr_seed(text: &str) -> Vec<u8> {
    let img = qrcode::QrCode::new(text.as_bytes())
        .expect("a short text fits a QR code")
        .render::<Luma<u8>>()
        .module_dimensions(2, 2)
        .build();
    let w = img.width().min(256);
    let mut out = vec![(w - 1) as u8];
    for y in 0..img.height().min(256) {
        for x in 0..w {
            out.push(img.get_pixel(x, y).0[0]);
        }
    }
    out
}

#[cfg(test)]
mod tests;
