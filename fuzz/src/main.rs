//! One afl binary for every harness in `anonchat_proto::fuzz`: `anonchat-fuzz TARGET` under
//! `cargo afl fuzz`, or `anonchat-fuzz --seeds DIR` to write each target's seed corpus.

use anonchat_proto::fuzz::{seeds::seeds, TARGETS};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--seeds") {
        let dir = std::path::PathBuf::from(args.get(2).expect("--seeds DIR"));
        for (name, _) in TARGETS {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("seed dir");
            for (i, s) in seeds(name).iter().enumerate() {
                std::fs::write(d.join(format!("seed{i}")), s).expect("seed file");
            }
        }
        return;
    }
    let name = args.get(1).expect("a target name");
    let target = TARGETS
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no target {name}"));
    afl::fuzz!(|data: &[u8]| {
        let _ = target(data);
    });
}
