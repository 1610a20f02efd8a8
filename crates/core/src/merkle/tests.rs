//! RFC 6962/9162 reference vectors, and properties: every leaf of every tree size is
//! provable, every consistency proof verifies, and every tampering is detected.

use proptest::prelude::*;

use super::*;

fn unhex(text: &str) -> Hash {
    let mut hash = [0u8; HASH_BYTES];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).unwrap();
    }
    hash
}

/// The Certificate Transparency reference leaves (RFC 6962 test data, reused by RFC 9162
/// implementations) and the root of each prefix of them, sizes 0 to 8.
const REFERENCE_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];
const REFERENCE_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn reference_leaves() -> Vec<Hash> {
    REFERENCE_LEAVES.iter().map(|data| leaf_hash(data)).collect()
}

/// Distinct leaves for trees of any size.
fn leaves(count: u64) -> Vec<Hash> {
    (0..count).map(|index| leaf_hash(format!("event {index}").as_bytes())).collect()
}

/// A source that checks every question against the contract of [`SubtreeSource`].
struct StrictSource<'a> {
    leaves: &'a [Hash],
    size: u64,
}

impl SubtreeSource for StrictSource<'_> {
    type Error = MissingLeaves;

    fn perfect_subtree(&mut self, start: u64, level: u32) -> Result<Hash, MissingLeaves> {
        assert_eq!(start % (1 << level), 0, "subtree at {start} of level {level} is not aligned");
        assert!(start + (1 << level) <= self.size, "subtree at {start} of level {level} passes size {}", self.size);
        LeafHashes(self.leaves).perfect_subtree(start, level)
    }
}

fn root_of(leaves: &[Hash], size: u64) -> Hash {
    root(&mut StrictSource { leaves, size }, size).unwrap()
}

fn inclusion(leaves: &[Hash], index: u64, size: u64) -> Vec<Hash> {
    inclusion_proof(&mut StrictSource { leaves, size }, index, size).unwrap()
}

fn consistency(leaves: &[Hash], old_size: u64, new_size: u64) -> Vec<Hash> {
    consistency_proof(&mut StrictSource { leaves, size: new_size }, old_size, new_size).unwrap()
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut changed = *hash;
    changed[bit / 8 % HASH_BYTES] ^= 1 << (bit % 8);
    changed
}

#[test]
fn hashes_leaves_nodes_and_the_empty_tree_with_rfc_prefixes() {
    assert_eq!(empty_tree_hash(), unhex(REFERENCE_ROOTS[0]));
    assert_eq!(leaf_hash(b""), unhex(REFERENCE_ROOTS[1]));
    let (left, right) = (leaf_hash(b"l"), leaf_hash(b"r"));
    let mut joined = vec![0x01];
    joined.extend_from_slice(&left);
    joined.extend_from_slice(&right);
    assert_eq!(node_hash(&left, &right), <[u8; 32]>::from(Sha256::digest(&joined)));
    assert_ne!(node_hash(&left, &right), node_hash(&right, &left));
}

#[test]
fn matches_the_reference_roots() {
    let leaves = reference_leaves();
    for size in 0..=8 {
        assert_eq!(root_of(&leaves, size), unhex(REFERENCE_ROOTS[size as usize]), "size {size}");
        assert_eq!(tree_hash(&leaves[..size as usize]), unhex(REFERENCE_ROOTS[size as usize]), "size {size}");
    }
}

#[test]
fn matches_the_reference_proofs() {
    let leaves = reference_leaves();
    let expected = |hashes: &[&str]| hashes.iter().map(|text| unhex(text)).collect::<Vec<_>>();
    assert_eq!(
        inclusion(&leaves, 0, 8),
        expected(&[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ])
    );
    assert_eq!(
        inclusion(&leaves, 5, 8),
        expected(&[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ])
    );
    assert_eq!(
        consistency(&leaves, 2, 8),
        expected(&[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ])
    );
    assert_eq!(
        consistency(&leaves, 6, 8),
        expected(&[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ])
    );
}

#[test]
fn every_leaf_of_every_small_tree_is_provable() {
    let all = leaves(70);
    for size in 1..=70 {
        let root = root_of(&all, size);
        for index in 0..size {
            let proof = inclusion(&all, index, size);
            assert_eq!(verify_inclusion(&all[index as usize], index, size, &proof, &root), Ok(()), "{index}/{size}");
        }
    }
}

#[test]
fn every_pair_of_small_trees_is_consistent() {
    let all = leaves(70);
    for new_size in 0..=70 {
        let new_root = root_of(&all, new_size);
        for old_size in 0..=new_size {
            let proof = consistency(&all, old_size, new_size);
            let old_root = root_of(&all, old_size);
            assert_eq!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &proof),
                Ok(()),
                "{old_size}→{new_size}"
            );
        }
    }
}

#[test]
fn refuses_impossible_questions() {
    let all = leaves(8);
    let mut source = LeafHashes(&all);
    assert_eq!(inclusion_proof(&mut source, 8, 8), Err(ProofError::IndexOutOfRange { index: 8, size: 8 }));
    assert_eq!(inclusion_proof(&mut source, 0, 0), Err(ProofError::IndexOutOfRange { index: 0, size: 0 }));
    assert_eq!(consistency_proof(&mut source, 5, 3), Err(ProofError::SizesOutOfOrder { old_size: 5, new_size: 3 }));
    assert_eq!(
        inclusion_proof(&mut source, 0, 9),
        Err(ProofError::Source(MissingLeaves { start: 8, end: 9, held: 8 })),
        "a source without the leaves says so"
    );
    let root = tree_hash(&all);
    assert_eq!(verify_inclusion(&all[0], 8, 8, &[], &root), Err(VerifyError::IndexOutOfRange { index: 8, size: 8 }));
    assert_eq!(
        verify_consistency(8, 4, &root, &root, &[]),
        Err(VerifyError::SizesOutOfOrder { old_size: 8, new_size: 4 })
    );
}

#[test]
fn degenerate_consistency_cases() {
    let all = leaves(8);
    let (root4, root5) = (tree_hash(&all[..4]), tree_hash(&all[..5]));
    assert_eq!(verify_consistency(4, 4, &root4, &root4, &[]), Ok(()));
    assert_eq!(verify_consistency(4, 4, &root4, &root5, &[]), Err(VerifyError::RootMismatch));
    assert_eq!(verify_consistency(4, 4, &root4, &root4, &[root4]), Err(VerifyError::WrongLength));
    assert_eq!(verify_consistency(0, 5, &empty_tree_hash(), &root5, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 5, &root4, &root5, &[]), Err(VerifyError::RootMismatch));
    assert_eq!(verify_consistency(0, 5, &empty_tree_hash(), &root5, &[root4]), Err(VerifyError::WrongLength));
    assert_eq!(verify_consistency(3, 5, &tree_hash(&all[..3]), &root5, &[]), Err(VerifyError::WrongLength));
}

#[test]
fn the_frontier_grows_the_same_tree_and_reports_each_perfect_subtree_once() {
    let all = leaves(300);
    let mut frontier = Frontier::new();
    let mut reported = Vec::new();
    assert_eq!(frontier.root(), empty_tree_hash());
    for (index, leaf) in all.iter().enumerate() {
        frontier.push(*leaf, |subtree| reported.push(subtree));
        let size = index as u64 + 1;
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.root(), tree_hash(&all[..size as usize]), "size {size}");
        let rebuilt = Frontier::from_peaks(size, frontier.peaks().to_vec()).unwrap();
        assert_eq!(rebuilt, frontier);
    }
    // Every aligned perfect subtree of the 300 leaves, and nothing else, exactly once.
    let mut expected = Vec::new();
    for level in 0..=8u32 {
        let width = 1u64 << level;
        for start in (0..300).step_by(width as usize).filter(|start| start + width <= 300) {
            let hash = tree_hash(&all[start as usize..(start + width) as usize]);
            expected.push(CompletedSubtree { start, level, hash });
        }
    }
    reported.sort_by_key(|subtree| (subtree.level, subtree.start));
    assert_eq!(reported, expected);
    assert_eq!(Frontier::from_peaks(3, vec![all[0]]), None, "3 leaves make two peaks");
}

fn tree_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1u64..600).prop_flat_map(|size| (Just(size), 0..size))
}

fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
    (1u64..600).prop_flat_map(|new_size| (0..=new_size, Just(new_size)))
}

proptest! {
    #[test]
    fn every_leaf_is_provable_and_every_tampering_detected(
        (size, index) in tree_and_index(),
        other in any::<u64>(),
        bit in 0usize..256,
    ) {
        let all = leaves(size + 1);
        let root = root_of(&all, size);
        let leaf = all[index as usize];
        let proof = inclusion(&all, index, size);
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

        // Another leaf, the same leaf with one bit changed, another index.
        prop_assert!(verify_inclusion(&flip(&leaf, bit), index, size, &proof, &root).is_err());
        let other_index = (index + 1 + other % size.max(2)) % size;
        if other_index != index {
            prop_assert!(verify_inclusion(&leaf, other_index, size, &proof, &root).is_err());
            prop_assert!(verify_inclusion(&all[other_index as usize], index, size, &proof, &root).is_err());
        }
        // Another tree size, with the root that size really has.
        let other_size = 1 + other % (size + 1);
        if other_size != size && index < other_size {
            let other_root = root_of(&all, other_size);
            prop_assert!(verify_inclusion(&leaf, index, other_size, &proof, &other_root).is_err());
        }
        // Another root; each proof element changed; a proof cut short or padded.
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, bit)).is_err());
        for position in 0..proof.len() {
            let mut changed = proof.clone();
            changed[position] = flip(&changed[position], bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &changed, &root).is_err());
        }
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root).is_err());
        }
        let mut padded = proof.clone();
        padded.push(leaf);
        prop_assert!(verify_inclusion(&leaf, index, size, &padded, &root).is_err());
    }

    #[test]
    fn every_consistency_proof_verifies_and_every_tampering_is_detected(
        (old_size, new_size) in two_sizes(),
        bit in 0usize..256,
    ) {
        let all = leaves(new_size);
        let (old_root, new_root) = (root_of(&all, old_size), root_of(&all, new_size));
        let proof = consistency(&all, old_size, new_size);
        prop_assert_eq!(verify_consistency(old_size, new_size, &old_root, &new_root, &proof), Ok(()));

        prop_assert!(verify_consistency(old_size, new_size, &flip(&old_root, bit), &new_root, &proof).is_err());
        // Every tree extends the empty one, whatever its root.
        if old_size > 0 {
            prop_assert!(verify_consistency(old_size, new_size, &old_root, &flip(&new_root, bit), &proof).is_err());
        }
        for position in 0..proof.len() {
            let mut changed = proof.clone();
            changed[position] = flip(&changed[position], bit);
            prop_assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &changed).is_err());
        }
        if !proof.is_empty() {
            prop_assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &proof[1..]).is_err());
            prop_assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &proof[..proof.len() - 1]).is_err());
        }
        let mut padded = proof.clone();
        padded.push(new_root);
        prop_assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &padded).is_err());
        // A history rewritten below the old size is inconsistent with the old root.
        if old_size > 0 && old_size < new_size {
            let mut rewritten = all.clone();
            rewritten[(bit as u64 % old_size) as usize] = leaf_hash(b"rewritten");
            let rewritten_root = root_of(&rewritten, new_size);
            let rewritten_proof = consistency(&rewritten, old_size, new_size);
            prop_assert!(verify_consistency(old_size, new_size, &old_root, &rewritten_root, &rewritten_proof).is_err());
        }
    }
}
