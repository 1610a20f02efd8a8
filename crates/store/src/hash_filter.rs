//! A split-block Bloom filter over 32-bit hashes. The log keeps one per (account, day) of
//! eventID hashes, which tells deduplication and EventId lookups which days might hold an
//! event ID, and one per segment of its (attribute, value) pairs, which tells a lookup
//! whether to load the segment's index at all.
//!
//! The day filters replaced hash sets of the same hashes, which cost 5 bytes per bucket and
//! up to twice as many buckets as hashes (8 bytes per event on average, a sixth of the
//! store's memory). At [`BITS_PER_HASH`] bits a hash, about 1 probe in 100 for an absent
//! hash says "maybe"; the caller then checks each segment's sorted hashes, as it already
//! did for a hit.
//!
//! The layout is Parquet's split-block filter: 256-bit blocks of eight 32-bit words, one
//! bit set in every word, so a probe touches one cache line.

use crate::spread_hash;

/// At 10 bits per hash a split-block filter answers "maybe" for about 1% of absent hashes.
const BITS_PER_HASH: usize = 10;
const SALT: [u32; 8] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

#[derive(Default)]
pub(crate) struct HashFilter {
    blocks: Vec<[u32; 8]>,
    /// How many hashes the filter holds, and how many it was sized for.
    len: usize,
    capacity: usize,
}

impl HashFilter {
    /// A filter holding `hashes`, with room for at least `capacity` of them.
    /// Rounded up to a power of two of at least 1,024, at [`BITS_PER_HASH`] bits each.
    pub(crate) fn with_hashes<'a>(capacity: usize, hashes: impl IntoIterator<Item = &'a u32>) -> HashFilter {
        let mut filter = HashFilter::sized(capacity.max(1024).next_power_of_two(), BITS_PER_HASH);
        filter.insert_all(hashes);
        filter
    }

    /// A filter of exactly `hashes` at `bits_per_hash` bits each, for a set that never grows.
    pub(crate) fn exact(bits_per_hash: usize, hashes: &[u32]) -> HashFilter {
        let mut filter = HashFilter::sized(hashes.len(), bits_per_hash);
        filter.insert_all(hashes);
        filter
    }

    fn sized(capacity: usize, bits_per_hash: usize) -> HashFilter {
        let block_count = (capacity * bits_per_hash).div_ceil(256).max(1);
        HashFilter { blocks: vec![[0; 8]; block_count], len: 0, capacity }
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
        let mut filter = HashFilter::with_hashes(50_000, &inserted[..50_000]);
        assert!(!filter.has_room_for(100_000));
        filter = HashFilter::with_hashes(inserted.len(), &inserted[..50_000]);
        assert!(filter.has_room_for(50_000));
        filter.insert_all(&inserted[50_000..]);
        assert!(!filter.has_room_for(131_072 - 100_000 + 1));
        assert!(inserted.iter().all(|&hash| filter.may_contain(hash)));
        let false_positives = (100_000..300_000).map(spread).filter(|&hash| filter.may_contain(hash)).count();
        // Sized for 131,072 and holding 100,000: well under 1%.
        assert!(false_positives < 2_000, "{false_positives} of 200,000 absent hashes said maybe");
    }

    #[test]
    fn an_exact_filter_holds_its_hashes_and_few_others() {
        let inserted: Vec<u32> = (0..3_000).map(spread).collect();
        let filter = HashFilter::exact(16, &inserted);
        assert_eq!(filter.blocks.len(), (3_000 * 16usize).div_ceil(256));
        assert!(inserted.iter().all(|&hash| filter.may_contain(hash)));
        let false_positives = (3_000..203_000).map(spread).filter(|&hash| filter.may_contain(hash)).count();
        // At 16 bits a hash, about 1 in 1,000.
        assert!(false_positives < 400, "{false_positives} of 200,000 absent hashes said maybe");
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        assert!(!HashFilter::default().may_contain(7));
        assert!(!HashFilter::with_hashes(0, &[]).may_contain(7));
        assert!(!HashFilter::exact(16, &[]).may_contain(7));
    }
}
