//! A Bloom filter of the folded event ids, so that ingest looks an id up in
//! the `event_id` table only when the id may be there: almost never for a
//! new event. A "no" is exact; a "maybe" is checked in the table.
//!
//! Blocked (one 512-bit block per id, 8 bits set in it: one cache miss per
//! check) and scalable (a full filter is kept and a four times larger one
//! started, so it never needs the ids again). It takes 64-bit hashes of the
//! ids, from the hot tier's randomly seeded hasher (`Hot::hash_id`): ids
//! come from outside, and crafted collisions could only ever cost table
//! lookups, never correctness.

/// Bits per id at capacity: under 1% false positives.
const BITS_PER_ID: usize = 12;
/// Bits set per id.
const K: u32 = 8;
/// u64 words per block (512 bits, a cache line).
const WORDS: usize = 8;

#[derive(Debug)]
struct Layer {
    blocks: Vec<[u64; WORDS]>,
    len: usize,
    capacity: usize,
}

impl Layer {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1024);
        let blocks = (capacity * BITS_PER_ID).div_ceil(WORDS * 64);
        Layer {
            blocks: vec![[0; WORDS]; blocks],
            len: 0,
            capacity,
        }
    }

    /// The block of a hash: its high 32 bits mapped onto the blocks by a
    /// multiply-shift (no division).
    fn block(&self, h: u64) -> usize {
        let n = self.blocks.len() as u64;
        ((u128::from(h >> 32) * u128::from(n)) >> 32) as usize
    }

    /// The 8 bits (word, mask) of a hash in its block, drawn from a mix of
    /// the hash.
    fn bits(h: u64) -> impl Iterator<Item = (usize, u64)> {
        let mut x = h.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (h >> 29);
        (0..K).map(move |_| {
            let pos = (x & 511) as usize;
            x = x.rotate_right(9) ^ x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (pos / 64, 1u64 << (pos % 64))
        })
    }

    fn insert(&mut self, h: u64) {
        let b = self.block(h);
        if let Some(block) = self.blocks.get_mut(b) {
            for (w, bit) in Self::bits(h) {
                block[w] |= bit;
            }
        }
        self.len += 1;
    }

    fn may_contain(&self, h: u64) -> bool {
        let b = self.block(h);
        self.blocks
            .get(b)
            .is_some_and(|block| Self::bits(h).all(|(w, bit)| block[w] & bit != 0))
    }
}

/// A set of ids that answers "certainly not in it" or "maybe in it".
#[derive(Debug)]
pub(crate) struct IdFilter {
    layers: Vec<Layer>,
}

impl Default for IdFilter {
    fn default() -> Self {
        IdFilter::with_capacity(0)
    }
}

impl IdFilter {
    /// An empty filter sized for `capacity` ids before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        IdFilter {
            layers: vec![Layer::new(capacity)],
        }
    }

    /// Adds an id, by its hash.
    pub(crate) fn insert(&mut self, h: u64) {
        let full = self.layers.last().is_none_or(|l| l.len >= l.capacity);
        if full {
            let capacity = self.layers.last().map_or(0, |l| l.capacity * 4);
            self.layers.push(Layer::new(capacity));
        }
        if let Some(layer) = self.layers.last_mut() {
            layer.insert(h);
        }
    }

    /// False only if the id (its hash) was never added.
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        self.layers.iter().any(|l| l.may_contain(h))
    }

    /// Ids added.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.layers.iter().map(|l| l.len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn h(s: &str) -> u64 {
        static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
        SEED.get_or_init(Default::default).hash_one(s)
    }

    #[test]
    fn a_full_layer_has_under_one_percent_false_positives() {
        let mut f = IdFilter::with_capacity(100_000);
        for i in 0..100_000 {
            f.insert(h(&format!("evt-{i}")));
        }
        assert_eq!(f.layers.len(), 1);
        let false_positives = (100_000..200_000)
            .filter(|i| f.may_contain(h(&format!("evt-{i}"))))
            .count();
        assert!(false_positives < 1_000, "{false_positives}");
    }

    #[test]
    fn every_added_id_is_maybe_in_it_and_few_others_are() {
        let mut f = IdFilter::with_capacity(1000);
        for i in 0..50_000 {
            f.insert(h(&format!("evt-{i}")));
        }
        assert_eq!(f.len(), 50_000);
        assert!((0..50_000).all(|i| f.may_contain(h(&format!("evt-{i}")))));
        let false_positives = (50_000..150_000)
            .filter(|i| f.may_contain(h(&format!("evt-{i}"))))
            .count();
        // Each layer under 1% at capacity, four layers.
        assert!(false_positives < 3_000, "{false_positives}");
    }
}
