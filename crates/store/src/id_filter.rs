//! A split-block Bloom filter over 32-bit eventID hashes: which (account, day) might hold
//! an event ID, for deduplication and EventId lookups.
//!
//! It replaces a hash set of the same hashes, which cost 5 bytes per bucket and up to twice
//! as many buckets as hashes (8 bytes per event on average, a sixth of the store's memory).
//! At [`BITS_PER_HASH`] bits a hash, about 1 probe in 100 for an absent hash says "maybe";
//! the caller then checks each segment's sorted hashes, as it already did for a hit.
//!
//! The layout is Parquet's split-block filter: 256-bit blocks of eight 32-bit words, one
//! bit set in every word, so a probe touches one cache line.

use crate::spread_hash;

/// At 10 bits per hash a split-block filter answers "maybe" for about 1% of absent hashes.
const BITS_PER_HASH: usize = 10;
const SALT: [u32; 8] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

#[derive(Default)]
pub(crate) struct IdFilter {
    blocks: Vec<[u32; 8]>,
    /// How many hashes the filter holds, and how many it was sized for.
    len: usize,
    capacity: usize,
}

impl IdFilter {
    /// A filter holding `hashes`, with room for at least `capacity` of them.
    pub(crate) fn with_hashes<'a>(capacity: usize, hashes: impl IntoIterator<Item = &'a u32>) -> IdFilter {
        let capacity = capacity.max(1024).next_power_of_two();
        let block_count = (capacity * BITS_PER_HASH).div_ceil(256);
        let mut filter = IdFilter { blocks: vec![[0; 8]; block_count], len: 0, capacity };
        for &hash in hashes {
            filter.set(hash);
        }
        filter
    }

    /// Whether `extra` more hashes fit without raising the false-positive rate.
    pub(crate) fn has_room_for(&self, extra: usize) -> bool {
        self.len + extra <= self.capacity
    }

    pub(crate) fn insert_all<'a>(&mut self, hashes: impl IntoIterator<Item = &'a u32>) {
        for &hash in hashes {
            self.set(hash);
        }
    }

    /// False means the hash was never inserted; true means it may have been.
    pub(crate) fn may_contain(&self, hash: u32) -> bool {
        let Some(block) = self.blocks.get(self.block_of(hash)) else {
            return false;
        };
        let key = spread_hash(hash) as u32;
        block.iter().zip(SALT).all(|(word, salt)| word & bit(key, salt) != 0)
    }

    fn set(&mut self, hash: u32) {
        let index = self.block_of(hash);
        let key = spread_hash(hash) as u32;
        for (word, salt) in self.blocks[index].iter_mut().zip(SALT) {
            *word |= bit(key, salt);
        }
        self.len += 1;
    }

    /// The block, from the high half of the spread hash, scaled to the block count; the
    /// bits come from the low half.
    fn block_of(&self, hash: u32) -> usize {
        (((spread_hash(hash) >> 32) * self.blocks.len() as u64) >> 32) as usize
    }
}

fn bit(key: u32, salt: u32) -> u32 {
    1 << (key.wrapping_mul(salt) >> 27)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(i: u32) -> u32 {
        i.wrapping_mul(0x2545_F491).rotate_left(7) ^ 0x5bd1_e995
    }

    #[test]
    fn holds_every_inserted_hash_and_few_others() {
        let inserted: Vec<u32> = (0..100_000).map(spread).collect();
        let mut filter = IdFilter::with_hashes(50_000, &inserted[..50_000]);
        assert!(!filter.has_room_for(100_000));
        filter = IdFilter::with_hashes(inserted.len(), &inserted[..50_000]);
        assert!(filter.has_room_for(50_000));
        filter.insert_all(&inserted[50_000..]);
        assert!(!filter.has_room_for(131_072 - 100_000 + 1));
        assert!(inserted.iter().all(|&hash| filter.may_contain(hash)));
        let false_positives = (100_000..300_000).map(spread).filter(|&hash| filter.may_contain(hash)).count();
        // Sized for 131,072 and holding 100,000: well under 1%.
        assert!(false_positives < 2_000, "{false_positives} of 200,000 absent hashes said maybe");
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        assert!(!IdFilter::default().may_contain(7));
        assert!(!IdFilter::with_hashes(0, &[]).may_contain(7));
    }
}
