//! The edits the in-test fuzzing applies to valid seeds (bytes flipped, inserted, cut, spliced
//! from another seed). Public so the client's harnesses run the same way.

#[derive(Debug, Clone, Copy)]
pub enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Cut(usize, usize),
    Splice(usize, usize),
}

/// From three random numbers (a proptest strategy maps `(u8, usize, usize)` onto this).
impl From<(u8, usize, usize)> for Edit {
    fn from((kind, a, b): (u8, usize, usize)) -> Self {
        match kind % 4 {
            0 => Edit::Flip(a, b as u8),
            1 => Edit::Insert(a, b as u8),
            2 => Edit::Cut(a, b % 16),
            _ => Edit::Splice(a, b),
        }
    }
}

/// `seed` with `edits` applied in order; `other` is the donor of splices.
pub fn mutate(seed: &[u8], other: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let at = |i: usize, len: usize| i % (len + 1);
    for e in edits {
        match *e {
            Edit::Flip(i, b) if !v.is_empty() => {
                let i = i % v.len();
                v[i] ^= b;
            }
            Edit::Insert(i, b) => {
                let i = at(i, v.len());
                v.insert(i, b);
            }
            Edit::Cut(i, n) => {
                let i = at(i, v.len());
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Splice(i, j) if !other.is_empty() => {
                let i = at(i, v.len());
                let j = j % other.len();
                v.splice(i.., other[j..].iter().copied());
            }
            _ => {}
        }
    }
    v
}
