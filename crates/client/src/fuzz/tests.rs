//! The client's fuzz harnesses inside `cargo test`, mutated the way the protocol's are.

use anonchat_proto::fuzz::mutate::{mutate, Edit};
use proptest::prelude::*;

use super::*;

#[test]
fn every_seed_decodes_and_round_trips() {
    anonchat_proto::fuzz::assert_seeds_decode(TARGETS, seeds);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn mutated_inputs_never_panic_and_round_trip(
        t in 0..TARGETS.len(),
        edits in proptest::collection::vec(
            (any::<u8>(), any::<usize>(), any::<usize>()).prop_map(Edit::from), 1..6),
    ) {
        let (name, target) = TARGETS[t];
        let seeds = seeds(name);
        let input = mutate(&seeds[0], &seeds[seeds.len() - 1], &edits);
        let _ = target(&input);
    }

    #[test]
    fn random_bytes_never_panic(
        t in 0..TARGETS.len(),
        data in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = (TARGETS[t].1)(&data);
    }
}
