//! The leaf hashes of many records at once.
//!
//! SHA-256 of one message is a chain of 64 dependent rounds per 64-byte block, so the SHA
//! extensions hash one record at a time, about 1.2 GB/s on the machine BENCHMARKS.md
//! describes, however idle the vector units are. Records are independent of one another: with AVX-512,
//! sixteen of them are hashed side by side, one in each 32-bit lane of the registers
//! (multi-buffer hashing), and a lane whose record is done takes the next record while the
//! others go on. Elsewhere each record is hashed alone.

use super::{Hash, leaf_hash};

/// Below this many records the lanes would mostly idle; each is hashed alone.
const MIN_BATCH: usize = 8;

/// [`leaf_hash`] of each of `leaves`, in order.
pub fn leaf_hashes(leaves: &[&[u8]]) -> Vec<Hash> {
    #[cfg(target_arch = "x86_64")]
    if leaves.len() >= MIN_BATCH && x16::available() {
        return x16::leaf_hashes(leaves);
    }
    leaves.iter().map(|leaf| leaf_hash(leaf)).collect()
}

/// The blocks of `0x00 ‖ leaf` padded as SHA-256 pads a message: `0x80`, zeros, and the
/// message's length in bits in the last eight bytes.
fn padded_blocks(leaf: &[u8]) -> usize {
    (leaf.len() + 1 + 9).div_ceil(64)
}

/// Block `index` of the padded `0x00 ‖ leaf`. A block wholly inside the leaf is borrowed
/// from it; the first and the last ones are assembled in `scratch`.
fn block<'a>(leaf: &'a [u8], index: usize, scratch: &'a mut [u8; 64]) -> &'a [u8; 64] {
    let start = 64 * index;
    if let Some(inside) = start.checked_sub(1).and_then(|from| leaf.get(from..from + 64)) {
        return inside.try_into().expect("64 bytes");
    }
    scratch.fill(0);
    let message_len = leaf.len() + 1;
    if start < message_len {
        // Byte 0 of the message is the leaf prefix 0x00, already in place.
        let from = start.max(1);
        let end = message_len.min(start + 64);
        scratch[from - start..end - start].copy_from_slice(&leaf[from - 1..end - 1]);
    }
    if (start..start + 64).contains(&message_len) {
        scratch[message_len - start] = 0x80;
    }
    if index + 1 == padded_blocks(leaf) {
        scratch[56..].copy_from_slice(&(message_len as u64 * 8).to_be_bytes());
    }
    scratch
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x16 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_i32gather_epi32, _mm512_loadu_si512, _mm512_mask_blend_epi32,
        _mm512_ror_epi32, _mm512_set1_epi32, _mm512_setzero_si512, _mm512_shuffle_epi8, _mm512_srli_epi32,
        _mm512_storeu_si512, _mm512_ternarylogic_epi32,
    };

    use super::{Hash, block, padded_blocks};

    const LANES: usize = 16;

    const INITIAL: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    const ROUND_CONSTANTS: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// `vpshufb` indices that turn each big-endian 32-bit word into a little-endian one.
    const BYTE_SWAP: [u8; 64] = {
        let mut indices = [0; 64];
        let mut at = 0;
        while at < 64 {
            indices[at] = (at & !3 | (3 - at % 4)) as u8 % 16;
            at += 1;
        }
        indices
    };

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw")
    }

    pub(super) fn leaf_hashes(leaves: &[&[u8]]) -> Vec<Hash> {
        let mut hashes = vec![[0; 32]; leaves.len()];
        assert!(available(), "AVX-512 F and BW are required");
        // SAFETY: the CPU has AVX-512 F and BW, checked just above.
        unsafe { hash_all(leaves, &mut hashes) };
        hashes
    }

    /// A record in a lane: where its hash goes, and which of its blocks comes next.
    #[derive(Clone, Copy)]
    struct Job<'a> {
        leaf: &'a [u8],
        index: usize,
        next_block: usize,
        blocks: usize,
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    fn hash_all(leaves: &[&[u8]], hashes: &mut [Hash]) {
        let mut pending = leaves.iter().enumerate();
        let mut jobs: [Option<Job<'_>>; LANES] = [None; LANES];
        let mut state = [_mm512_setzero_si512(); 8];
        // Each lane's next block, gathered into words across the lanes.
        let mut blocks = [[0u8; 64]; LANES];
        let mut scratch = [0u8; 64];
        // SAFETY: BYTE_SWAP is 64 bytes; the load may be unaligned.
        let byte_swap = unsafe { _mm512_loadu_si512(BYTE_SWAP.as_ptr().cast()) };
        let lane_offsets = {
            let offsets: [i32; LANES] = std::array::from_fn(|lane| (lane * 16) as i32);
            // SAFETY: as above, 64 bytes.
            unsafe { _mm512_loadu_si512(offsets.as_ptr().cast()) }
        };
        loop {
            let mut fresh = 0u16;
            for (lane, job) in jobs.iter_mut().enumerate() {
                if job.is_none()
                    && let Some((index, leaf)) = pending.next()
                {
                    *job = Some(Job { leaf, index, next_block: 0, blocks: padded_blocks(leaf) });
                    fresh |= 1 << lane;
                }
            }
            if jobs.iter().all(Option::is_none) {
                return;
            }
            for (word, initial) in state.iter_mut().zip(INITIAL) {
                *word = _mm512_mask_blend_epi32(fresh, *word, _mm512_set1_epi32(initial as i32));
            }
            for (job, lane_block) in jobs.iter().zip(&mut blocks) {
                if let Some(job) = job {
                    *lane_block = *block(job.leaf, job.next_block, &mut scratch);
                    // Sixteen records advancing a block at a time are too slow a stream for
                    // the hardware prefetcher to follow: ask for the lane's block after next.
                    if let Some(ahead) = job.leaf.get(64 * job.next_block + 128) {
                        crate::prefetch::prefetch(ahead);
                    }
                }
            }
            let mut words = [_mm512_setzero_si512(); 16];
            for (at, word) in words.iter_mut().enumerate() {
                let offsets = _mm512_add_epi32(lane_offsets, _mm512_set1_epi32(at as i32));
                // SAFETY: each offset is at most 15 * 16 + 15 words into `blocks`, which
                // holds 16 * 16.
                let gathered = unsafe { _mm512_i32gather_epi32::<4>(offsets, blocks.as_ptr().cast()) };
                *word = _mm512_shuffle_epi8(gathered, byte_swap);
            }
            compress(&mut state, &words);
            let mut done = 0u16;
            for (lane, job) in jobs.iter_mut().enumerate() {
                if let Some(job) = job {
                    job.next_block += 1;
                    if job.next_block == job.blocks {
                        done |= 1 << lane;
                    }
                }
            }
            if done != 0 {
                let mut lanes = [[0u32; LANES]; 8];
                for (values, word) in lanes.iter_mut().zip(&state) {
                    // SAFETY: 16 u32s are 64 bytes; the store may be unaligned.
                    unsafe { _mm512_storeu_si512(values.as_mut_ptr().cast(), *word) };
                }
                for (lane, job) in jobs.iter_mut().enumerate() {
                    if done & (1 << lane) != 0
                        && let Some(job) = job.take()
                    {
                        for (bytes, values) in hashes[job.index].chunks_exact_mut(4).zip(&lanes) {
                            bytes.copy_from_slice(&values[lane].to_be_bytes());
                        }
                    }
                }
            }
        }
    }

    /// One SHA-256 compression in every lane: `words` are the lanes' blocks, word by word.
    #[target_feature(enable = "avx512f")]
    fn compress(state: &mut [__m512i; 8], words: &[__m512i; 16]) {
        let add = |a, b| _mm512_add_epi32(a, b);
        // Ternary logic tables: XOR of three (0x96), choose: first ? second : third (0xca),
        // majority (0xe8).
        let xor3 = |a, b, c| _mm512_ternarylogic_epi32::<0x96>(a, b, c);
        let big_sigma0 = |x| xor3(_mm512_ror_epi32::<2>(x), _mm512_ror_epi32::<13>(x), _mm512_ror_epi32::<22>(x));
        let big_sigma1 = |x| xor3(_mm512_ror_epi32::<6>(x), _mm512_ror_epi32::<11>(x), _mm512_ror_epi32::<25>(x));
        let small_sigma0 = |x| xor3(_mm512_ror_epi32::<7>(x), _mm512_ror_epi32::<18>(x), _mm512_srli_epi32::<3>(x));
        let small_sigma1 = |x| xor3(_mm512_ror_epi32::<17>(x), _mm512_ror_epi32::<19>(x), _mm512_srli_epi32::<10>(x));
        let mut w = *words;
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        // Written out sixteen times over, with the indices as literals, so that the message
        // schedule stays in registers and the renaming of a..h costs no moves.
        macro_rules! rounds {
            ($group:ident; $($at:literal)+) => {$(
                if $group > 0 {
                    w[$at] = add(
                        add(w[$at], small_sigma0(w[($at + 1) % 16])),
                        add(w[($at + 9) % 16], small_sigma1(w[($at + 14) % 16])),
                    );
                }
                let constant = _mm512_set1_epi32(ROUND_CONSTANTS[$group * 16 + $at] as i32);
                let t1 = add(add(add(h, big_sigma1(e)), add(_mm512_ternarylogic_epi32::<0xca>(e, f, g), constant)), w[$at]);
                let t2 = add(big_sigma0(a), _mm512_ternarylogic_epi32::<0xe8>(a, b, c));
                h = g;
                g = f;
                f = e;
                e = add(d, t1);
                d = c;
                c = b;
                b = a;
                a = add(t1, t2);
            )+};
        }
        for group in 0..4 {
            rounds!(group; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        }
        for (word, round) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *word = add(*word, round);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every length around the block boundaries of the padding, and a few long ones.
    fn lengths() -> Vec<usize> {
        (0..300).chain([1000, 1495, 4095, 4096, 65_537]).collect()
    }

    #[test]
    fn blocks_are_the_padded_message() {
        for len in lengths() {
            let leaf: Vec<u8> = (0..len).map(|at| (at * 7 + 3) as u8).collect();
            let mut padded = vec![0x00];
            padded.extend_from_slice(&leaf);
            padded.push(0x80);
            while padded.len() % 64 != 56 {
                padded.push(0);
            }
            padded.extend_from_slice(&((len as u64 + 1) * 8).to_be_bytes());
            let mut scratch = [0; 64];
            let blocks: Vec<u8> =
                (0..padded_blocks(&leaf)).flat_map(|index| *block(&leaf, index, &mut scratch)).collect();
            assert_eq!(blocks, padded, "length {len}");
        }
    }

    #[test]
    fn many_at_once_equal_one_at_a_time() {
        let leaves: Vec<Vec<u8>> =
            lengths().into_iter().map(|len| (0..len).map(|at| (at * 31 + len) as u8).collect()).collect();
        let slices: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
        // Every batch size up to a few rounds of lanes, each starting at another length, so
        // that lanes finish and refill at every offset.
        for count in 0..=40 {
            for start in [0, 5, 53, 120] {
                let batch = &slices[start..start + count];
                let expected: Vec<Hash> = batch.iter().map(|leaf| leaf_hash(leaf)).collect();
                assert_eq!(leaf_hashes(batch), expected, "{count} leaves from {start}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        if x16::available() {
            let expected: Vec<Hash> = slices.iter().map(|leaf| leaf_hash(leaf)).collect();
            assert_eq!(x16::leaf_hashes(&slices), expected);
            assert_eq!(x16::leaf_hashes(&slices[..3]), expected[..3]);
        }
    }

    proptest! {
        #[test]
        fn any_leaves_hash_as_one_at_a_time(leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 0..60)) {
            let slices: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
            let expected: Vec<Hash> = slices.iter().map(|leaf| leaf_hash(leaf)).collect();
            prop_assert_eq!(leaf_hashes(&slices), expected);
        }
    }
}
