//! What the P3 tests need to see whether chat reached the disk: fixtures with canaries, strace
//! logs read for paths written, and byte searches through every file a client could have left.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A file of `mib` MiB: a random megabyte repeated, with the canary at the start, middle and end.
pub fn big_file(path: &Path, canary: &str, mib: usize) {
    let block: Vec<u8> = (0..1024 * 1024).map(|_| rand::random::<u8>()).collect();
    let mut data = Vec::with_capacity(mib * 1024 * 1024);
    while data.len() < mib * 1024 * 1024 {
        data.extend_from_slice(&block);
    }
    for at in [0, data.len() / 2, data.len() - canary.len()] {
        data[at..at + canary.len()].copy_from_slice(canary.as_bytes());
    }
    std::fs::write(path, data).unwrap();
}

/// A real PNG with the canary after its end (decoders ignore what follows IEND).
pub fn png_with(path: &Path, canary: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    let mut bytes = out.into_inner();
    bytes.extend_from_slice(canary.as_bytes());
    std::fs::write(path, &bytes).unwrap();
    bytes
}

pub fn b64(v: &Value) -> Vec<u8> {
    anonchat_proto::bytes::decode_b64(v["base64"].as_str().expect("base64")).expect("base64")
}

/// Every file under `root`, recursively.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    memchr::memmem::find_iter(hay, needle).count()
}

/// Paths a process opened for writing (or created, renamed, linked), from an strace log.
pub fn written_paths(log: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in log.lines() {
        let writes = line.contains("O_WRONLY")
            || line.contains("O_RDWR")
            || line.contains("O_CREAT")
            || ["creat(", "rename", "link(", "linkat(", "mkdir", "symlink"]
                .iter()
                .any(|s| line.contains(s));
        if !writes || line.contains("= -1 ") {
            continue;
        }
        for path in line.split('"').skip(1).step_by(2) {
            out.insert(path.to_string());
        }
    }
    out
}

/// Of the paths written, those outside the profiles' folder that are not the path the user chose
/// to save to (device and kernel files aside).
pub fn written_outside(written: &BTreeSet<String>, profiles: &Path, saved: &Path) -> Vec<String> {
    let (profiles, saved) = (profiles.display().to_string(), saved.display().to_string());
    written
        .iter()
        .filter(|p| {
            !p.starts_with(&profiles)
                && **p != saved
                && !["/dev/", "/proc/", "/sys/"]
                    .iter()
                    .any(|d| p.starts_with(d))
        })
        .cloned()
        .collect()
}
