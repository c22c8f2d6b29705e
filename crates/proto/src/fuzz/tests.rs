//! The fuzz harnesses inside `cargo test`: each target gets valid seed inputs with random
//! mutations (bytes flipped, inserted, cut, spliced from another seed) and raw random bytes.
//! `fuzz/` runs the same functions for hours under afl.

use proptest::prelude::*;

use super::seeds::seeds;
use super::*;
use crate::fuzz::mutate::{mutate, Edit};

fn edit() -> impl Strategy<Value = Edit> {
    (any::<u8>(), any::<usize>(), any::<usize>()).prop_map(Edit::from)
}

fn all_seeds() -> Vec<(usize, Vec<u8>)> {
    TARGETS
        .iter()
        .enumerate()
        .flat_map(|(t, (name, _))| seeds(name).into_iter().map(move |s| (t, s)))
        .collect()
}

#[test]
fn every_seed_decodes_and_round_trips() {
    assert_seeds_decode(TARGETS, seeds);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn mutated_inputs_never_panic_and_round_trip(
        pick in any::<usize>(),
        other in any::<usize>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let seeds = all_seeds();
        let (t, seed) = &seeds[pick % seeds.len()];
        let (_, donor) = &seeds[other % seeds.len()];
        let input = mutate(seed, donor, &edits);
        let _ = (TARGETS[*t].1)(&input);
    }

    #[test]
    fn random_bytes_never_panic(
        t in 0..TARGETS.len(),
        data in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = (TARGETS[t].1)(&data);
    }
}
