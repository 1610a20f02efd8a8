//! One Merkle tree on disk and in memory: the events of one (account, Region) in log order.
//!
//! Two append-only files per tree, in `<merkle dir>/account=<id>/region=<region>/`:
//!
//! - `leaves`: one 40-byte record per leaf, the event's log position (`seq`, u64
//!   little-endian) then its RFC 9162 leaf hash;
//! - `chunks`: one 40-byte record per complete chunk of [`CHUNK_LEAVES`] leaves, the
//!   chunk's first `seq` then the hash of the perfect subtree the chunk forms.
//!
//! In memory a tree keeps every complete perfect subtree of [`CHUNK_LEVEL`] and above
//! (built from `chunks` at open: about 64 bytes per chunk), the first `seq` of each chunk,
//! and the leaves after the last complete chunk. A proof therefore reads at most a few
//! chunks of `leaves` (40 KiB each) and hashes at most a few thousand nodes, whatever
//! the tree's size.
//!
//! Neither file carries checksums: the tree is recomputed from the stored events by
//! verification, and a checkpoint's signature covers its root.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trailkeeper_core::merkle::{self, CompletedSubtree, Frontier, HASH_BYTES, Hash, SubtreeSource, tree_hash};

use crate::StoreError;

/// The level of the perfect subtrees whose hashes are kept on disk and in memory.
pub const CHUNK_LEVEL: u32 = 10;
/// Leaves per chunk: `2^CHUNK_LEVEL`.
pub const CHUNK_LEAVES: u64 = 1 << CHUNK_LEVEL;
/// Bytes of one record of `leaves` and of `chunks`.
pub const RECORD_BYTES: usize = 8 + HASH_BYTES;

pub(super) const LEAVES_FILE: &str = "leaves";
pub(super) const CHUNKS_FILE: &str = "chunks";

/// One record of either file: a log position and a hash.
pub(super) fn encode_record(seq: u64, hash: &Hash, out: &mut Vec<u8>) {
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(hash);
}

pub(super) fn decode_record(bytes: &[u8]) -> (u64, Hash) {
    let mut seq = [0u8; 8];
    let mut hash = [0u8; HASH_BYTES];
    seq.copy_from_slice(&bytes[..8]);
    hash.copy_from_slice(&bytes[8..RECORD_BYTES]);
    (u64::from_le_bytes(seq), hash)
}

pub(super) struct Tree {
    dir: PathBuf,
    leaves: Arc<File>,
    chunks: Arc<File>,
    /// Leaves appended, durable or not.
    size: u64,
    /// The last leaf's log position.
    last_seq: u64,
    frontier: Frontier,
    /// `levels[i]`: the hash of every complete perfect subtree of level `CHUNK_LEVEL + i`.
    levels: Vec<Vec<Hash>>,
    /// The first log position of every complete chunk.
    chunk_first_seqs: Vec<u64>,
    /// The leaves after the last complete chunk.
    tail: Vec<(u64, Hash)>,
    /// Records appended since the last [`Tree::write_out`].
    pending_leaves: Vec<u8>,
    pending_chunks: Vec<u8>,
}

fn corrupt(path: &Path, detail: String) -> StoreError {
    StoreError::Corrupt { path: path.to_owned(), offset: 0, what: "merkle tree", detail }
}

impl Tree {
    /// Opens the tree in `dir` at `size` leaves (what the state file says is durable),
    /// creating it when `size` is 0 and cutting off records a crash left past `size`.
    pub(super) fn open(dir: &Path, size: u64) -> Result<Tree, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let open = |name: &str| {
            let path = dir.join(name);
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(StoreError::io(&path))
        };
        let (leaves, chunks) = (open(LEAVES_FILE)?, open(CHUNKS_FILE)?);
        let complete_chunks = size / CHUNK_LEAVES;
        for (file, name, records) in [(&leaves, LEAVES_FILE, size), (&chunks, CHUNKS_FILE, complete_chunks)] {
            let path = dir.join(name);
            let want = records * RECORD_BYTES as u64;
            let have = file.metadata().map_err(StoreError::io(&path))?.len();
            if have < want {
                return Err(corrupt(&path, format!("{have} bytes, but {records} durable records need {want}")));
            }
            if have > want {
                tracing::info!(path = %path.display(), bytes = have - want, "cutting off records past the tree's durable size");
                file.set_len(want).map_err(StoreError::io(&path))?;
            }
        }

        let chunks_path = dir.join(CHUNKS_FILE);
        let mut chunk_bytes = vec![0u8; complete_chunks as usize * RECORD_BYTES];
        chunks.read_exact_at(&mut chunk_bytes, 0).map_err(StoreError::io(&chunks_path))?;
        let (chunk_first_seqs, chunk_hashes): (Vec<u64>, Vec<Hash>) =
            chunk_bytes.chunks_exact(RECORD_BYTES).map(decode_record).unzip();
        let mut levels = vec![chunk_hashes];
        while let Some(below) = levels.last().filter(|below| below.len() >= 2) {
            let above = below.chunks_exact(2).map(|pair| merkle::node_hash(&pair[0], &pair[1])).collect();
            levels.push(above);
        }

        let leaves_path = dir.join(LEAVES_FILE);
        let tail_start = complete_chunks * CHUNK_LEAVES;
        let tail = read_leaves(&leaves, &leaves_path, tail_start, size - tail_start)?;
        let last_seq = match tail.last() {
            Some(&(seq, _)) => seq,
            None if size > 0 => read_leaves(&leaves, &leaves_path, size - 1, 1)?[0].0,
            None => 0,
        };

        // The frontier's peaks: one perfect subtree per set bit of the size, largest first.
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev().filter(|level| size >> level & 1 == 1) {
            let hash = if level >= CHUNK_LEVEL {
                levels
                    .get((level - CHUNK_LEVEL) as usize)
                    .and_then(|hashes| hashes.get((start >> level) as usize))
                    .copied()
                    .ok_or_else(|| corrupt(&chunks_path, format!("no subtree of level {level} at leaf {start}")))?
            } else {
                let offset = (start - tail_start) as usize;
                tree_hash(&tail[offset..offset + (1 << level)].iter().map(|&(_, hash)| hash).collect::<Vec<_>>())
            };
            peaks.push(hash);
            start += 1 << level;
        }
        let frontier = Frontier::from_peaks(size, peaks)
            .ok_or_else(|| corrupt(&chunks_path, format!("cannot rebuild the right edge of {size} leaves")))?;
        Ok(Tree {
            dir: dir.to_owned(),
            leaves: Arc::new(leaves),
            chunks: Arc::new(chunks),
            size,
            last_seq,
            frontier,
            levels,
            chunk_first_seqs,
            tail,
            pending_leaves: Vec::new(),
            pending_chunks: Vec::new(),
        })
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The root hash of every leaf appended so far.
    pub(super) fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Appends the leaf of the event at log position `seq`. Positions must increase.
    pub(super) fn append(&mut self, seq: u64, leaf: Hash) -> Result<(), StoreError> {
        if self.size > 0 && seq <= self.last_seq {
            return Err(corrupt(
                &self.dir,
                format!("leaf for position {seq} arrived after position {}", self.last_seq),
            ));
        }
        encode_record(seq, &leaf, &mut self.pending_leaves);
        self.tail.push((seq, leaf));
        let Tree { frontier, levels, chunk_first_seqs, tail, pending_chunks, .. } = self;
        frontier.push(leaf, |subtree: CompletedSubtree| {
            if subtree.level < CHUNK_LEVEL {
                return;
            }
            let index = (subtree.level - CHUNK_LEVEL) as usize;
            if levels.len() <= index {
                levels.resize_with(index + 1, Vec::new);
            }
            levels[index].push(subtree.hash);
            if subtree.level == CHUNK_LEVEL {
                let first_seq = tail.first().map_or(seq, |&(first, _)| first);
                encode_record(first_seq, &subtree.hash, pending_chunks);
                chunk_first_seqs.push(first_seq);
                tail.clear();
            }
        });
        self.size += 1;
        self.last_seq = seq;
        Ok(())
    }

    /// Writes the records appended since the last call to the files (not yet synced).
    pub(super) fn write_out(&mut self) -> Result<(), StoreError> {
        for (file, pending, name) in [
            (&self.leaves, &mut self.pending_leaves, LEAVES_FILE),
            (&self.chunks, &mut self.pending_chunks, CHUNKS_FILE),
        ] {
            if !pending.is_empty() {
                let path = self.dir.join(name);
                (&**file).write_all(pending).map_err(StoreError::io(&path))?;
                pending.clear();
            }
        }
        Ok(())
    }

    /// The two files, to be synced without holding the tree's lock.
    pub(super) fn files(&self) -> [(Arc<File>, PathBuf); 2] {
        [(Arc::clone(&self.leaves), self.dir.join(LEAVES_FILE)), (Arc::clone(&self.chunks), self.dir.join(CHUNKS_FILE))]
    }

    /// The index of the leaf at log position `seq` among the first `size` leaves.
    pub(super) fn leaf_index(&self, seq: u64, size: u64) -> Result<Option<u64>, StoreError> {
        let complete_chunks = self.chunk_first_seqs.len() as u64;
        let index = if self.tail.first().is_some_and(|&(first, _)| seq >= first) {
            self.tail
                .binary_search_by_key(&seq, |&(seq, _)| seq)
                .ok()
                .map(|offset| complete_chunks * CHUNK_LEAVES + offset as u64)
        } else {
            let chunk = self.chunk_first_seqs.partition_point(|&first| first <= seq);
            if chunk == 0 {
                return Ok(None);
            }
            let chunk = chunk as u64 - 1;
            let leaves = read_leaves(&self.leaves, &self.dir.join(LEAVES_FILE), chunk * CHUNK_LEAVES, CHUNK_LEAVES)?;
            leaves.binary_search_by_key(&seq, |&(seq, _)| seq).ok().map(|offset| chunk * CHUNK_LEAVES + offset as u64)
        };
        Ok(index.filter(|&index| index < size))
    }

    /// A source of subtree hashes for proofs on this tree.
    pub(super) fn source(&self) -> TreeSource<'_> {
        TreeSource { tree: self, chunks: Vec::new() }
    }
}

/// Reads `count` leaf records starting at leaf `first`.
pub(super) fn read_leaves(file: &File, path: &Path, first: u64, count: u64) -> Result<Vec<(u64, Hash)>, StoreError> {
    let mut bytes = vec![0u8; count as usize * RECORD_BYTES];
    file.read_exact_at(&mut bytes, first * RECORD_BYTES as u64).map_err(StoreError::io(path))?;
    Ok(bytes.chunks_exact(RECORD_BYTES).map(decode_record).collect())
}

/// Answers for perfect subtrees: at [`CHUNK_LEVEL`] and above from memory, below it by
/// hashing the leaves of one chunk (read once per proof, or the in-memory tail).
pub(super) struct TreeSource<'a> {
    tree: &'a Tree,
    /// Leaf hashes of the chunks read so far, by chunk number.
    chunks: Vec<(u64, Vec<Hash>)>,
}

impl TreeSource<'_> {
    fn chunk(&mut self, chunk: u64) -> Result<&[Hash], StoreError> {
        let position = match self.chunks.iter().position(|(number, _)| *number == chunk) {
            Some(position) => position,
            None => {
                let complete_chunks = self.tree.chunk_first_seqs.len() as u64;
                let leaves = if chunk < complete_chunks {
                    read_leaves(
                        &self.tree.leaves,
                        &self.tree.dir.join(LEAVES_FILE),
                        chunk * CHUNK_LEAVES,
                        CHUNK_LEAVES,
                    )?
                    .into_iter()
                    .map(|(_, hash)| hash)
                    .collect()
                } else if chunk == complete_chunks {
                    self.tree.tail.iter().map(|&(_, hash)| hash).collect()
                } else {
                    Vec::new()
                };
                self.chunks.push((chunk, leaves));
                self.chunks.len() - 1
            }
        };
        Ok(&self.chunks[position].1)
    }
}

impl SubtreeSource for TreeSource<'_> {
    type Error = StoreError;

    fn perfect_subtree(&mut self, start: u64, level: u32) -> Result<Hash, StoreError> {
        let tree = self.tree;
        let missing =
            || corrupt(&tree.dir, format!("no perfect subtree of level {level} at leaf {start} in this tree"));
        if level >= CHUNK_LEVEL {
            return tree
                .levels
                .get((level - CHUNK_LEVEL) as usize)
                .and_then(|hashes| hashes.get((start >> level) as usize))
                .copied()
                .ok_or_else(missing);
        }
        let chunk = start >> CHUNK_LEVEL;
        let offset = (start - (chunk << CHUNK_LEVEL)) as usize;
        let leaves = self.chunk(chunk)?;
        leaves.get(offset..offset + (1usize << level)).map(tree_hash).ok_or_else(missing)
    }
}
