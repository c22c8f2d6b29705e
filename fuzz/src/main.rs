//! One afl binary for every harness in `anonchat_proto::fuzz` and `anonchat_client::fuzz`:
//! `anonchat-fuzz TARGET` under `cargo afl fuzz`, or `anonchat-fuzz --seeds DIR` to write each
//! target's seed corpus.

use anonchat_proto::fuzz::Harness;

/// A target's seed corpus by name.
type Seeds = fn(&str) -> Vec<Vec<u8>>;

/// Every target, with its seeds.
fn targets() -> impl Iterator<Item = (&'static str, Harness, Seeds)> {
    let proto = anonchat_proto::fuzz::TARGETS
        .iter()
        .map(|&(n, f)| (n, f, anonchat_proto::fuzz::seeds::seeds as Seeds));
    let client = anonchat_client::fuzz::TARGETS
        .iter()
        .map(|&(n, f)| (n, f, anonchat_client::fuzz::seeds as Seeds));
    proto.chain(client)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--seeds") {
        let dir = std::path::PathBuf::from(args.get(2).expect("--seeds DIR"));
        for (name, _, seeds) in targets() {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("seed dir");
            for (i, s) in seeds(name).iter().enumerate() {
                std::fs::write(d.join(format!("seed{i}")), s).expect("seed file");
            }
        }
        return;
    }
    let name = args.get(1).expect("a target name");
    let target = targets()
        .find(|(n, _, _)| n == name)
        .map(|(_, f, _)| f)
        .unwrap_or_else(|| panic!("no target {name}"));
    afl::fuzz!(|data: &[u8]| {
        let _ = target(data);
    });
}
