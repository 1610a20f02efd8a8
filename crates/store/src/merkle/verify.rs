//! Offline verification of a data directory: every Merkle tree rebuilt from the stored
//! events (sealed segments, read straight from their Parquet files, and the journal's
//! unsealed tail) and compared leaf by leaf with the tree files.
//!
//! It reads and never writes, so it can run on a stopped server's directory or on a copy;
//! on a running server, events sealed or expired during the run may be reported falsely.
//! Memory: one tree's events at a time, about 100 bytes per event.
//!
//! What it can tell:
//! - an event whose stored JSON no longer hashes to its leaf: **altered**;
//! - a leaf whose event is in no segment and no journal file: **dropped**, unless retention
//!   recorded dropping a segment of that tree whose positions span it (`expired`), and no
//!   more such leaves are missing than retention dropped;
//! - a stored event at a position its tree has no leaf for, or past the end of the log:
//!   **inserted**.
//!
//! Events after the trees' position but within the log (a follower that had not caught up
//! when the server stopped) are counted as pending: no tree covers them yet.
//!
//! The tree files themselves are Trailkeeper's to change too, so the root of the tree
//! rebuilt from the events is also computed at the sizes the caller asks for (its signed
//! checkpoints), where a signature settles what the root was.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use trailkeeper_core::merkle::{Frontier, Hash, leaf_hash, tree_hash};

use super::tree::{CHUNKS_FILE, LEAVES_FILE, decode_record};
use super::{CHUNK_LEAVES, RECORD_BYTES, TreeId, read_state};
use crate::segment::read_all_rows;
use crate::{StoreError, expired, journal, sealed_segments};

/// Something verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The stored event no longer hashes to its leaf.
    Altered { seq: u64, leaf_index: u64, event_id: String, location: String },
    /// A leaf whose event is stored nowhere, and retention did not drop it.
    Dropped { seq: u64, leaf_index: u64 },
    /// A stored event at a log position its tree has no leaf for (or a second event at one).
    Inserted { seq: u64, event_id: String, location: String },
    /// More leaves are missing within segments retention dropped than those segments held.
    ExpiredOvercount { missing: u64, expired: u64 },
    /// A segment that cannot be read; the leaves of its events show as dropped.
    Unreadable { location: String, detail: String },
    /// The tree's own files contradict themselves.
    TreeFiles { detail: String },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Altered { seq, leaf_index, event_id, location } => {
                write!(
                    f,
                    "altered: event {event_id} (seq {seq}, leaf {leaf_index}) in {location} no longer matches its leaf"
                )
            }
            Finding::Dropped { seq, leaf_index } => write!(
                f,
                "dropped: the event at seq {seq} (leaf {leaf_index}) is in no segment or journal file, and retention did not drop it"
            ),
            Finding::Inserted { seq, event_id, location } => {
                write!(f, "inserted: event {event_id} (seq {seq}) in {location} is not a leaf of its tree")
            }
            Finding::ExpiredOvercount { missing, expired } => write!(
                f,
                "dropped: {missing} leaves are missing within expired segments, which held only {expired} events"
            ),
            Finding::Unreadable { location, detail } => write!(f, "unreadable: {location}: {detail}"),
            Finding::TreeFiles { detail } => write!(f, "tree files: {detail}"),
        }
    }
}

/// What verification found for one tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeVerification {
    pub id: TreeId,
    /// The tree's durable size, as its state records it.
    pub leaves: u64,
    /// Leaves whose stored event hashes to them.
    pub matched: u64,
    /// Leaves whose events retention dropped.
    pub expired: u64,
    /// Stored events after the trees' position: not leaves yet, so not checked.
    pub pending: u64,
    pub findings: Vec<Finding>,
    /// The root of the tree rebuilt from the stored events (the tree's own leaf hashes
    /// standing in for events that are missing), at each asked size it reaches.
    pub rebuilt_roots: BTreeMap<u64, Hash>,
    /// How many leaves the rebuilt tree has.
    pub rebuilt_size: u64,
}

/// What verification found in a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Every event at or before this log position should be a leaf.
    pub through_seq: u64,
    pub trees: Vec<TreeVerification>,
}

impl Verification {
    pub fn findings(&self) -> impl Iterator<Item = (&TreeId, &Finding)> {
        self.trees.iter().flat_map(|tree| tree.findings.iter().map(move |finding| (&tree.id, finding)))
    }
}

/// One stored event as the verifier sees it.
struct StoredLeaf {
    seq: u64,
    hash: Hash,
    event_id: Box<str>,
    /// Index into the tree's list of locations.
    location: u32,
}

/// Where the events of one tree are stored.
#[derive(Default)]
struct TreeSources {
    segments: Vec<PathBuf>,
    /// Unsealed events from the journal: (seq, leaf hash, eventID).
    journal: Vec<(u64, Hash, String)>,
}

#[derive(Deserialize)]
struct EventIdOnly {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
}

/// Verifies every tree of the data directory `root`. `sizes` names, per tree, the sizes at
/// which the rebuilt tree's root is wanted (usually those of its checkpoints).
pub fn verify_store(root: &Path, sizes: &BTreeMap<TreeId, Vec<u64>>) -> Result<Verification, StoreError> {
    let merkle_dir = root.join("merkle");
    let state = read_state(&merkle_dir)?;
    let through_seq = state.through_seq();
    let (sealed_through_seq, segment_paths) = sealed_segments(root)?;
    let expired = expired::read(root)?;

    let mut trees: BTreeMap<TreeId, (u64, TreeSources)> = BTreeMap::new();
    for (id, size) in state.sizes() {
        trees.entry(id).or_default().0 = size;
    }
    for path in segment_paths {
        let Some(id) = tree_of_segment(root, &path) else {
            return Err(StoreError::Corrupt {
                path,
                offset: 0,
                what: "manifest",
                detail: "a listed segment is not under segments/account=<id>/region=<region>/".to_owned(),
            });
        };
        trees.entry(id).or_default().1.segments.push(path);
    }
    let mut log_end = sealed_through_seq;
    journal::read_only(&root.join("journal"), |entry| {
        if entry.seq <= sealed_through_seq {
            return;
        }
        let event_id = serde_json::from_slice::<EventIdOnly>(entry.event.json)
            .ok()
            .and_then(|event| event.event_id)
            .unwrap_or_default();
        log_end = log_end.max(entry.seq);
        let id = TreeId::new(entry.event.account_id, entry.event.region);
        trees.entry(id).or_default().1.journal.push((entry.seq, leaf_hash(entry.event.json), event_id));
    })?;

    let mut verified = Vec::with_capacity(trees.len());
    for (id, (size, sources)) in trees {
        let expired_ranges: Vec<(u64, u64, u64)> = expired
            .iter()
            .filter(|segment| segment.account_id == id.account_id && segment.region == id.region)
            .map(|segment| (segment.min_seq, segment.max_seq, segment.event_count))
            .collect();
        let wanted = sizes.get(&id).cloned().unwrap_or_default();
        let tree_dir = id.dir(&merkle_dir);
        let positions = Positions { through_seq, log_end };
        verified.push(verify_tree(root, &tree_dir, id, size, positions, sources, &expired_ranges, wanted)?);
    }
    Ok(Verification { through_seq, trees: verified })
}

/// The tree a segment belongs to, from its Hive-style folders.
fn tree_of_segment(root: &Path, path: &Path) -> Option<TreeId> {
    let relative = path.strip_prefix(root.join("segments")).ok()?;
    let mut parts = relative.components().map(|part| part.as_os_str().to_str());
    let account_id = parts.next()??.strip_prefix("account=")?;
    let region = parts.next()??.strip_prefix("region=")?;
    Some(TreeId::new(account_id, region))
}

/// Where the trees and the log end.
#[derive(Debug, Clone, Copy)]
struct Positions {
    /// Every event at or before this position should be a leaf.
    through_seq: u64,
    /// The log's last position, as the manifest and the journal tell it. The log never
    /// hands out an event past it, so no tree would ever take such an event in.
    log_end: u64,
}

impl Positions {
    /// Whether a stored event at `seq` must be a leaf; `Err(())` for a position the log
    /// could never have given it.
    fn expects_leaf(&self, seq: u64) -> Result<bool, ()> {
        if seq <= self.through_seq {
            Ok(true)
        } else if seq <= self.log_end {
            Ok(false)
        } else {
            Err(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn verify_tree(
    root: &Path,
    tree_dir: &Path,
    id: TreeId,
    size: u64,
    positions: Positions,
    sources: TreeSources,
    expired_ranges: &[(u64, u64, u64)],
    mut wanted: Vec<u64>,
) -> Result<TreeVerification, StoreError> {
    let mut findings = Vec::new();
    let mut locations: Vec<String> = Vec::new();
    let mut stored: Vec<StoredLeaf> = Vec::new();
    let mut pending = 0u64;
    for path in &sources.segments {
        let location = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let index = locations.len() as u32;
        let mut rows = Vec::new();
        let read =
            read_all_rows(path, |row| rows.push((row.seq, leaf_hash(row.event_json.as_bytes()), row.event_id.into())));
        match read {
            Ok(_) => {
                for (seq, hash, event_id) in rows {
                    let seq = u64::try_from(seq).unwrap_or(0);
                    match positions.expects_leaf(seq) {
                        Ok(true) => stored.push(StoredLeaf { seq, hash, event_id, location: index }),
                        Ok(false) => pending += 1,
                        Err(()) => findings.push(Finding::Inserted {
                            seq,
                            event_id: event_id.into(),
                            location: location.clone(),
                        }),
                    }
                }
            }
            Err(error) => findings.push(Finding::Unreadable { location: location.clone(), detail: error.to_string() }),
        }
        locations.push(location);
    }
    let journal_location = locations.len() as u32;
    locations.push("the journal".to_owned());
    for (seq, hash, event_id) in sources.journal {
        if seq > positions.through_seq {
            pending += 1;
        } else {
            stored.push(StoredLeaf { seq, hash, event_id: event_id.into(), location: journal_location });
        }
    }
    stored.sort_by_key(|leaf| leaf.seq);

    let mut leaves = LeafReader::open(tree_dir, size)?;
    wanted.sort_unstable();
    wanted.dedup();
    let mut wanted = wanted.into_iter().peekable();
    let mut rebuilt = Frontier::new();
    let mut rebuilt_roots = BTreeMap::new();
    if let Some(size) = wanted.next_if_eq(&0) {
        rebuilt_roots.insert(size, rebuilt.root());
    }
    let mut add_to_rebuilt = |hash: Hash, rebuilt: &mut Frontier| {
        rebuilt.push(hash, |_| {});
        while wanted.peek().is_some_and(|&size| size <= rebuilt.size()) {
            if let Some(size) = wanted.next()
                && size == rebuilt.size()
            {
                rebuilt_roots.insert(size, rebuilt.root());
            }
        }
    };

    let (mut matched, mut expired_missing) = (0u64, 0u64);
    let mut events = stored.into_iter().peekable();
    let mut next_leaf = leaves.next(&mut findings)?;
    loop {
        let event_seq = events.peek().map(|event| event.seq);
        match (next_leaf, event_seq) {
            (None, None) => break,
            (Some((index, seq, leaf)), Some(event_seq)) if seq == event_seq => {
                let Some(event) = events.next() else { break };
                if event.hash == leaf {
                    matched += 1;
                } else {
                    findings.push(Finding::Altered {
                        seq,
                        leaf_index: index,
                        event_id: event.event_id.into(),
                        location: locations[event.location as usize].clone(),
                    });
                }
                add_to_rebuilt(event.hash, &mut rebuilt);
                next_leaf = leaves.next(&mut findings)?;
            }
            (Some((index, seq, leaf)), event_seq) if event_seq.is_none_or(|event_seq| seq < event_seq) => {
                if expired_ranges.iter().any(|&(min, max, _)| (min..=max).contains(&seq)) {
                    expired_missing += 1;
                } else {
                    findings.push(Finding::Dropped { seq, leaf_index: index });
                }
                add_to_rebuilt(leaf, &mut rebuilt);
                next_leaf = leaves.next(&mut findings)?;
            }
            _ => {
                // No leaf at this position, or a second event at one.
                let Some(event) = events.next() else { break };
                findings.push(Finding::Inserted {
                    seq: event.seq,
                    event_id: event.event_id.into(),
                    location: locations[event.location as usize].clone(),
                });
                add_to_rebuilt(event.hash, &mut rebuilt);
            }
        }
    }
    leaves.finish(&mut findings);
    let expired_events: u64 = expired_ranges.iter().map(|&(_, _, count)| count).sum();
    if expired_missing > expired_events {
        findings.push(Finding::ExpiredOvercount { missing: expired_missing, expired: expired_events });
    }
    Ok(TreeVerification {
        id,
        leaves: size,
        matched,
        expired: expired_missing,
        pending,
        findings,
        rebuilt_roots,
        rebuilt_size: rebuilt.size(),
    })
}

/// Streams a tree's leaves and checks, as it goes, that positions increase and that each
/// complete chunk's record in `chunks` is the chunk's first position and subtree hash.
struct LeafReader {
    leaves: Option<BufReader<File>>,
    size: u64,
    index: u64,
    last_seq: Option<u64>,
    chunks: Vec<(u64, Hash)>,
    chunk: Vec<(u64, Hash)>,
}

impl LeafReader {
    fn open(dir: &Path, size: u64) -> Result<LeafReader, StoreError> {
        if size == 0 {
            return Ok(LeafReader {
                leaves: None,
                size,
                index: 0,
                last_seq: None,
                chunks: Vec::new(),
                chunk: Vec::new(),
            });
        }
        let open = |name: &str| {
            let path = dir.join(name);
            File::open(&path).map_err(StoreError::io(&path))
        };
        let leaves = open(LEAVES_FILE)?;
        let chunks_path = dir.join(CHUNKS_FILE);
        let mut chunk_bytes = Vec::new();
        open(CHUNKS_FILE)?.read_to_end(&mut chunk_bytes).map_err(StoreError::io(&chunks_path))?;
        let chunks = chunk_bytes.chunks_exact(RECORD_BYTES).map(decode_record).collect();
        Ok(LeafReader {
            leaves: Some(BufReader::with_capacity(1 << 20, leaves)),
            size,
            index: 0,
            last_seq: None,
            chunks,
            chunk: Vec::with_capacity(CHUNK_LEAVES as usize),
        })
    }

    /// The next leaf as (index, seq, hash), or `None` past the tree's size.
    fn next(&mut self, findings: &mut Vec<Finding>) -> Result<Option<(u64, u64, Hash)>, StoreError> {
        let Some(reader) = self.leaves.as_mut().filter(|_| self.index < self.size) else {
            return Ok(None);
        };
        let mut record = [0u8; RECORD_BYTES];
        if let Err(error) = reader.read_exact(&mut record) {
            findings.push(Finding::TreeFiles {
                detail: format!("the leaf file ends at leaf {} of {}: {error}", self.index, self.size),
            });
            self.leaves = None;
            return Ok(None);
        }
        let (seq, hash) = decode_record(&record);
        if self.last_seq.is_some_and(|last| seq <= last) {
            findings.push(Finding::TreeFiles {
                detail: format!("leaf {} has seq {seq}, not after the leaf before it", self.index),
            });
        }
        self.last_seq = Some(seq);
        self.chunk.push((seq, hash));
        if self.chunk.len() as u64 == CHUNK_LEAVES {
            let number = self.index / CHUNK_LEAVES;
            let expected = (self.chunk[0].0, tree_hash(&self.chunk.iter().map(|&(_, hash)| hash).collect::<Vec<_>>()));
            if self.chunks.get(number as usize) != Some(&expected) {
                findings.push(Finding::TreeFiles {
                    detail: format!(
                        "the chunk record of leaves {}..{} does not match those leaves",
                        number * CHUNK_LEAVES,
                        (number + 1) * CHUNK_LEAVES
                    ),
                });
            }
            self.chunk.clear();
        }
        let index = self.index;
        self.index += 1;
        Ok(Some((index, seq, hash)))
    }

    fn finish(&self, findings: &mut Vec<Finding>) {
        let complete = self.size / CHUNK_LEAVES;
        if (self.chunks.len() as u64) < complete {
            findings.push(Finding::TreeFiles {
                detail: format!("{} chunk records for {complete} complete chunks", self.chunks.len()),
            });
        }
    }
}
