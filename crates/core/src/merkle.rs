//! Merkle trees as RFC 9162 (Certificate Transparency 2.0) §2.1 defines them, over SHA-256:
//! the tree hash of a list of leaves, inclusion proofs (`PATH`), consistency proofs
//! (`PROOF`), and the verification algorithms of §2.1.3.2 and §2.1.4.2.
//!
//! Trailkeeper keeps one such tree per (account, Region) whose leaves are the stored
//! records, in log order. Proofs are computed over a [`SubtreeSource`], which answers for
//! *perfect* subtrees only (2^level leaves starting at a multiple of 2^level): every node
//! of an RFC 9162 tree that is not on its right edge is one, so a store that caches the
//! hashes of large perfect subtrees answers a proof on a tree of millions of leaves with a
//! few reads instead of rehashing every leaf.
//!
//! Nothing here does IO. Verification needs only the leaf, the proof and the tree head.

use sha2::{Digest, Sha256};

mod many;

pub use many::leaf_hashes;

/// Bytes in a SHA-256 hash.
pub const HASH_BYTES: usize = 32;

/// A SHA-256 hash: of a leaf, of an interior node, or the root of a tree.
pub type Hash = [u8; HASH_BYTES];

/// The hash of one leaf: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The tree hash of the empty list: SHA-256 of the empty string.
pub fn empty_tree_hash() -> Hash {
    Sha256::digest([]).into()
}

/// The tree hash of `leaves` (leaf hashes), computed from the leaves themselves. For a
/// power-of-two count this is the hash of a perfect subtree; any count is allowed.
pub fn tree_hash(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_tree_hash(),
        1 => leaves[0],
        count => {
            let split = largest_power_of_two_below(count as u64) as usize;
            node_hash(&tree_hash(&leaves[..split]), &tree_hash(&leaves[split..]))
        }
    }
}

/// Where proofs take subtree hashes from.
pub trait SubtreeSource {
    type Error;

    /// The hash of the perfect subtree over leaves `[start, start + 2^level)`. Callers ask
    /// only with `start` a multiple of `2^level`, and only for leaves inside the tree size
    /// they were given.
    fn perfect_subtree(&mut self, start: u64, level: u32) -> Result<Hash, Self::Error>;
}

/// Leaf hashes held in memory, as a [`SubtreeSource`] (for tests and small verifiers).
#[derive(Debug, Clone, Copy)]
pub struct LeafHashes<'a>(pub &'a [Hash]);

/// A [`LeafHashes`] source was asked for leaves it does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("leaves {start}..{end} are past the {held} leaves held")]
pub struct MissingLeaves {
    pub start: u64,
    pub end: u64,
    pub held: u64,
}

impl SubtreeSource for LeafHashes<'_> {
    type Error = MissingLeaves;

    fn perfect_subtree(&mut self, start: u64, level: u32) -> Result<Hash, MissingLeaves> {
        let end = start.saturating_add(1u64.checked_shl(level).unwrap_or(u64::MAX));
        let held = self.0.len() as u64;
        if end > held {
            return Err(MissingLeaves { start, end, held });
        }
        Ok(tree_hash(&self.0[start as usize..end as usize]))
    }
}

/// Why a proof could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {old_size} is larger than tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error(transparent)]
    Source(E),
}

/// Why a proof failed to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {old_size} is larger than tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongLength,
    #[error("the proof does not lead to the given root hash")]
    RootMismatch,
}

/// The largest power of two strictly below `n` (`n` ≥ 2): RFC 9162's split point `k`.
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:start+count]) for a node of the tree (count ≥ 1, `start` a multiple of the
/// power of two at or above `count`, as every node of an RFC 9162 tree is).
fn range_hash<S: SubtreeSource>(source: &mut S, start: u64, count: u64) -> Result<Hash, S::Error> {
    if count.is_power_of_two() {
        return source.perfect_subtree(start, count.trailing_zeros());
    }
    let split = largest_power_of_two_below(count);
    let left = source.perfect_subtree(start, split.trailing_zeros())?;
    let right = range_hash(source, start + split, count - split)?;
    Ok(node_hash(&left, &right))
}

/// The root hash of the tree of the first `size` leaves.
pub fn root<S: SubtreeSource>(source: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 { Ok(empty_tree_hash()) } else { range_hash(source, 0, size) }
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves, RFC 9162's
/// PATH(index, D[size]): sibling hashes from the leaf up to the root.
pub fn inclusion_proof<S: SubtreeSource>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof).map_err(ProofError::Source)?;
    Ok(proof)
}

fn path<S: SubtreeSource>(
    source: &mut S,
    index: u64,
    start: u64,
    count: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if count <= 1 {
        return Ok(());
    }
    let split = largest_power_of_two_below(count);
    if index < split {
        path(source, index, start, split, proof)?;
        proof.push(range_hash(source, start + split, count - split)?);
    } else {
        path(source, index - split, start + split, count - split, proof)?;
        proof.push(source.perfect_subtree(start, split.trailing_zeros())?);
    }
    Ok(())
}

/// The consistency proof between the trees of the first `old_size` and `new_size` leaves,
/// RFC 9162's PROOF(old_size, D[new_size]). Empty when either tree is empty or the two
/// sizes are equal.
pub fn consistency_proof<S: SubtreeSource>(
    source: &mut S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < new_size {
        subproof(source, old_size, 0, new_size, true, &mut proof).map_err(ProofError::Source)?;
    }
    Ok(proof)
}

/// SUBPROOF(old, D[start:start+count], whole): `whole` is true while the old tree's root is
/// a node the verifier already knows (it is the old root itself), so it is left out.
fn subproof<S: SubtreeSource>(
    source: &mut S,
    old: u64,
    start: u64,
    count: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if old == count {
        if !whole {
            proof.push(range_hash(source, start, count)?);
        }
        return Ok(());
    }
    let split = largest_power_of_two_below(count);
    if old <= split {
        subproof(source, old, start, split, whole, proof)?;
        proof.push(range_hash(source, start + split, count - split)?);
    } else {
        subproof(source, old - split, start + split, count - split, false, proof)?;
        proof.push(source.perfect_subtree(start, split.trailing_zeros())?);
    }
    Ok(())
}

/// Verifies that `leaf` (a leaf hash) is leaf `index` of the tree of `size` leaves whose
/// root is `root`, by the algorithm of RFC 9162 §2.1.3.2.
///
/// A proof binds the leaf to the root, not to the size: the size must come from the same
/// signed statement as the root (a checkpoint), or it proves nothing.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut node, mut last) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(VerifyError::WrongLength);
        }
        if node & 1 == 1 || node == last {
            hash = node_hash(sibling, &hash);
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(VerifyError::WrongLength);
    }
    if hash != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root`, by the algorithm of RFC 9162 §2.1.4.2. Equal
/// sizes need equal roots and an empty proof; every tree extends the empty tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if old_size > new_size {
        return Err(VerifyError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(VerifyError::WrongLength);
        }
        let matches = if old_size == 0 { *old_root == empty_tree_hash() } else { old_root == new_root };
        return if matches { Ok(()) } else { Err(VerifyError::RootMismatch) };
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(VerifyError::WrongLength);
    };
    // When the old tree is a perfect subtree of the new one, its root is the first node
    // of the path, and the proof leaves it out.
    let (start, path) = if old_size.is_power_of_two() { (old_root, proof) } else { (first, rest) };
    let (mut node, mut last) = (old_size - 1, new_size - 1);
    while node & 1 == 1 {
        node >>= 1;
        last >>= 1;
    }
    let (mut old_hash, mut new_hash) = (*start, *start);
    for sibling in path {
        if last == 0 {
            return Err(VerifyError::WrongLength);
        }
        if node & 1 == 1 || node == last {
            old_hash = node_hash(sibling, &old_hash);
            new_hash = node_hash(sibling, &new_hash);
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(VerifyError::WrongLength);
    }
    if old_hash != *old_root || new_hash != *new_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// A perfect subtree that an append completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedSubtree {
    /// Its first leaf, a multiple of `2^level`.
    pub start: u64,
    pub level: u32,
    pub hash: Hash,
}

/// The right edge of a growing tree: the roots of the perfect subtrees its leaves make up
/// (one per set bit of the size, largest first). Enough to append a leaf and to compute the
/// root, without holding the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// A frontier from its parts; `None` unless there is one peak per set bit of `size`.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Frontier> {
        (peaks.len() == size.count_ones() as usize).then_some(Frontier { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, largest subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends one leaf hash and reports, smallest first, every perfect subtree the leaf
    /// completed: the leaf itself (level 0), and each larger subtree it closes.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(CompletedSubtree)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0u32;
        completed(CompletedSubtree { start: index, level, hash });
        while (index >> level) & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(CompletedSubtree { start: (index >> level) << level, level, hash });
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The root hash of the tree so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else { return empty_tree_hash() };
        peaks.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests;
