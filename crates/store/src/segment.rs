//! Sealed segments: the immutable, on-disk form of the event log. A segment holds the events
//! of one (account, Region, UTC date of event time) as one Parquet file, laid out Hive-style
//! so that DuckDB, Athena, Trino and Spark read it as it is:
//!
//! ```text
//! <root>/account=<account_id>/region=<region>/date=<YYYY-MM-DD>/<min_seq:020>-<max_seq:020>.parquet
//!                                                              /<min_seq:020>-<max_seq:020>.idx
//! ```
//!
//! The `.idx` sidecar ([`index`]) answers Event History lookups and the eventID duplicate
//! check from memory; the Parquet file ([`table`]) is read only for the JSON of the rows a
//! lookup returns and to verify an eventID hash hit.
//!
//! This module must never change a sealed file (retention deletes the pair whole), never
//! report an eventID as present without comparing the stored ID itself (a false duplicate
//! would drop an acknowledged event), and never panic on what it reads from disk: damaged
//! files are [`StoreError::Corrupt`] or [`StoreError::Parquet`].

mod cache;
mod index;

pub use cache::PageCache;
pub use index::event_id_hash;
mod table;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use trailkeeper_core::LookupKey;
use trailkeeper_core::time::format_date;

use crate::fsutil::sync_dir;
use crate::{EventKey, HistoryKind, StoreError, StoredEvent};

use index::{PostingCursor, SegmentIndex};
use table::{EventTable, TableLayout};

/// What a segment holds, as read from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// `<min_seq:020>-<max_seq:020>`: the file stem of both files.
    pub name: String,
    pub account_id: String,
    pub region: String,
    /// The UTC date of every event's time, `YYYY-MM-DD`.
    pub date: String,
    pub event_count: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    /// The latest ingest time of any event; retention counts from here.
    pub max_ingest_ms: i64,
    pub parquet_bytes: u64,
    pub index_bytes: u64,
}

/// One row a scan matched: its Event History key and its row number in the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub key: EventKey,
    pub row: u32,
}

/// An open sealed segment: its lookup index in memory and its Parquet metadata (with the
/// offset index) cached, so that a lookup reads only the data pages of the rows it returns.
pub struct Segment {
    meta: SegmentMeta,
    parquet_path: PathBuf,
    index_path: PathBuf,
    index: SegmentIndex,
    table: EventTable,
}

/// Writes one sealed segment from events that share account, Region and UTC date of event
/// time, and returns it opened.
///
/// Crash safety: both files are written under temporary names and fsynced, then the `.idx`
/// is renamed into place before the `.parquet`, and the directory is fsynced. So a
/// `.parquet` never exists without its `.idx`; after a crash at most a `*.tmp` file or an
/// orphan `.idx` is left behind, and writing the same events again gives the same names.
pub fn write_segment(root: &Path, events: &[&StoredEvent]) -> Result<Segment, StoreError> {
    write_segment_with(root, events, &TableLayout::DEFAULT)
}

fn write_segment_with(root: &Path, events: &[&StoredEvent], layout: &TableLayout) -> Result<Segment, StoreError> {
    let Some(first) = events.first() else {
        return Err(invalid_input(root, "a segment needs at least one event"));
    };
    let date = format_date(first.event_time_ms);
    for value in [first.account_id(), first.region()] {
        if !is_partition_value(value) {
            return Err(invalid_input(root, format!("{value:?} cannot name a partition directory")));
        }
    }
    for event in events {
        if event.account_id() != first.account_id() || event.region() != first.region() {
            return Err(invalid_input(root, "events of one segment must share account and region"));
        }
        if format_date(event.event_time_ms) != date {
            return Err(invalid_input(root, "events of one segment must share the UTC date of their event time"));
        }
    }
    let mut sorted: Vec<&StoredEvent> = events.to_vec();
    sorted.sort_unstable_by_key(|event| event.key());
    if sorted.windows(2).any(|pair| pair[0].seq == pair[1].seq) {
        return Err(invalid_input(root, "two events of one segment have the same seq"));
    }
    let min_seq = sorted.iter().map(|event| event.seq).min().unwrap_or(0);
    let max_seq = sorted.iter().map(|event| event.seq).max().unwrap_or(0);
    let name = format!("{min_seq:020}-{max_seq:020}");

    let dir = root
        .join(format!("account={}", first.account_id()))
        .join(format!("region={}", first.region()))
        .join(format!("date={date}"));
    create_dirs_durably(root, &dir)?;
    let parquet_path = dir.join(format!("{name}.parquet"));
    let index_path = dir.join(format!("{name}.idx"));
    let parquet_tmp = dir.join(format!("{name}.parquet.tmp"));
    let index_tmp = dir.join(format!("{name}.idx.tmp"));

    let written = (|| {
        table::write(&parquet_tmp, &sorted, layout)?;
        let index_bytes = index::encode(&sorted);
        write_file_synced(&index_tmp, &index_bytes)?;
        fs::rename(&index_tmp, &index_path).map_err(StoreError::io(&index_path))?;
        fs::rename(&parquet_tmp, &parquet_path).map_err(StoreError::io(&parquet_path))?;
        sync_dir(&dir)
    })();
    if let Err(error) = written {
        // Leftover temporary files are harmless but waste space; the error that matters
        // is the one being returned.
        let _ = fs::remove_file(&parquet_tmp);
        let _ = fs::remove_file(&index_tmp);
        return Err(error);
    }
    Segment::open(&parquet_path)
}

impl Segment {
    /// Opens a sealed segment from its `.parquet` path; the `.idx` beside it is loaded
    /// and checked (magic, version, checksum, structure) and the Parquet footer with its
    /// offset index is cached.
    pub fn open(parquet_path: &Path) -> Result<Segment, StoreError> {
        let index_path = parquet_path.with_extension("idx");
        let (mut meta, index) = index::load(&index_path)?;
        let stem = parquet_path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
        if stem != meta.name {
            return Err(StoreError::Corrupt {
                path: index_path,
                offset: 0,
                what: "segment index",
                detail: format!("index describes segment {} but sits beside {stem}", meta.name),
            });
        }
        let table = EventTable::open(parquet_path)?;
        if table.num_rows() != meta.event_count {
            return Err(StoreError::Corrupt {
                path: parquet_path.to_path_buf(),
                offset: 0,
                what: "segment",
                detail: format!("parquet has {} rows, index has {}", table.num_rows(), meta.event_count),
            });
        }
        meta.parquet_bytes = table.file_bytes();
        Ok(Segment { meta, parquet_path: parquet_path.to_path_buf(), index_path, index, table })
    }

    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The [`event_id_hash`] of every event in the segment, sorted, so that the log can
    /// keep one set per account and day for deduplication.
    pub fn event_id_hashes(&self) -> &[u32] {
        self.index.event_id_hashes()
    }

    /// The segment's files, Parquet first, for retention to delete.
    pub fn paths(&self) -> [PathBuf; 2] {
        [self.parquet_path.clone(), self.index_path.clone()]
    }

    /// Whether an event with this eventID is in the segment, whatever its category. A hash
    /// hit in the index is confirmed by reading the stored eventID from the Parquet file.
    pub fn contains_event_id(&self, event_id: &str) -> Result<bool, StoreError> {
        let candidates = self.index.event_id_candidates(event_id);
        if candidates.is_empty() {
            return Ok(false);
        }
        let stored = self.table.read_event_ids(&candidates)?;
        Ok(stored.iter().any(|id| id.as_ref() == event_id.as_bytes()))
    }

    /// The row and key of the event with this eventID, whatever its category. A hash hit
    /// in the index is confirmed by reading the stored eventID.
    pub fn find_event_id(&self, event_id: &str) -> Result<Option<(u32, EventKey)>, StoreError> {
        let mut candidates = self.index.event_id_candidates(event_id);
        if candidates.is_empty() {
            return Ok(None);
        }
        candidates.sort_unstable();
        candidates.dedup();
        let stored = self.table.read_event_ids(&candidates)?;
        Ok(candidates
            .iter()
            .zip(stored)
            .find(|(_, id)| id.as_ref() == event_id.as_bytes())
            .map(|(&row, _)| (row, self.index.key(row))))
    }

    /// The rows of `kind` within the bounds, matching `attribute` if given, newest first.
    /// Lazy: each `next` does only the work to find one more row.
    pub fn scan<'a>(
        &'a self,
        kind: HistoryKind,
        attribute: Option<(LookupKey, &'a str)>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        before: Option<EventKey>,
    ) -> impl Iterator<Item = SegmentRow> + 'a {
        let lower = self.index.first_row_at_or_after(start_ms);
        let upper = self.index.end_row(end_ms, before);
        let (source, verify_event_id) = match attribute {
            None => (RowSource::Descending { next: upper }, None),
            Some((LookupKey::EventId, event_id)) => {
                let mut rows = self.index.event_id_candidates(event_id);
                rows.sort_unstable_by(|a, b| b.cmp(a));
                (RowSource::Candidates(rows.into_iter()), Some(event_id))
            }
            Some((key, value)) => match self.index.postings(key, value) {
                Some(postings) => (RowSource::Postings(postings.below(upper)), None),
                None => (RowSource::Candidates(Vec::new().into_iter()), None),
            },
        };
        Scan { segment: self, kind, lower, upper, source, verify_event_id }
    }

    /// The rows whose log position is in `(after, through]`, as `(key, row)` in seq order.
    pub fn rows_in_seq_range(&self, after: u64, through: u64) -> Vec<(EventKey, u32)> {
        if self.meta.max_seq <= after || self.meta.min_seq > through {
            return Vec::new();
        }
        let mut rows: Vec<(EventKey, u32)> = (0..self.index.row_count())
            .map(|row| (self.index.key(row), row))
            .filter(|&(key, _)| key.seq > after && key.seq <= through)
            .collect();
        rows.sort_unstable_by_key(|&(key, _)| key.seq);
        rows
    }

    /// The stored JSON text of the given rows, in the order asked, through `cache`.
    pub fn read_json(&self, rows: &[u32], cache: &PageCache) -> Result<Vec<Bytes>, StoreError> {
        if let Some(&row) = rows.iter().find(|&&row| u64::from(row) >= self.meta.event_count) {
            return Err(invalid_input(&self.parquet_path, format!("row {row} is past the segment's end")));
        }
        self.table.read_json(rows, cache, self.meta.min_seq)
    }
}

/// One row of a segment's Parquet file as [`read_all_rows`] hands it over.
#[derive(Debug, Clone, Copy)]
pub struct RawRow<'a> {
    /// The `seq` column.
    pub seq: i64,
    pub event_id: &'a str,
    pub event_json: &'a str,
}

/// Reads every row of a segment's Parquet file, in file order, from the file alone: the
/// `.idx` sidecar, the offset index and the page cache are not used. This is how an
/// offline verifier sees a segment, whatever was done to the file or its sidecar.
pub fn read_all_rows(parquet_path: &Path, visit: impl FnMut(RawRow<'_>)) -> Result<u64, StoreError> {
    table::read_all_rows(parquet_path, visit)
}

/// Where a scan takes its candidate rows from; every source yields rows in descending order.
enum RowSource<'a> {
    /// Every row below `next`.
    Descending { next: u32 },
    /// The posting list of one lookup attribute value.
    Postings(PostingCursor<'a>),
    /// A few rows known up front: eventID hash hits.
    Candidates(std::vec::IntoIter<u32>),
}

impl RowSource<'_> {
    fn next(&mut self) -> Option<u32> {
        match self {
            RowSource::Descending { next } => {
                *next = next.checked_sub(1)?;
                Some(*next)
            }
            RowSource::Postings(cursor) => cursor.next(),
            RowSource::Candidates(rows) => rows.next(),
        }
    }
}

struct Scan<'a> {
    segment: &'a Segment,
    kind: HistoryKind,
    /// Rows below this are older than the start bound.
    lower: u32,
    /// Rows at or above this are newer than the end bound or not before the page token.
    upper: u32,
    source: RowSource<'a>,
    /// For an eventID lookup, the ID each hash hit must be checked against.
    verify_event_id: Option<&'a str>,
}

impl Iterator for Scan<'_> {
    type Item = SegmentRow;

    fn next(&mut self) -> Option<SegmentRow> {
        loop {
            let row = self.source.next()?;
            if row < self.lower {
                return None;
            }
            if row >= self.upper || !self.kind.includes(self.segment.index.category(row)) {
                continue;
            }
            if let Some(event_id) = self.verify_event_id
                && !self.event_id_matches(row, event_id)
            {
                continue;
            }
            return Some(SegmentRow { key: self.segment.index.key(row), row });
        }
    }
}

impl Scan<'_> {
    fn event_id_matches(&self, row: u32, event_id: &str) -> bool {
        match self.segment.table.read_event_ids(&[row]) {
            Ok(stored) => stored.iter().any(|id| id.as_ref() == event_id.as_bytes()),
            // The iterator cannot return the error. Keeping the row is the lesser harm: a
            // hash hit is almost surely the event, and the caller's read_json of this row
            // reads the same file and reports the failure.
            Err(error) => {
                tracing::warn!(%error, row, "cannot verify an eventID hash hit; keeping the row");
                true
            }
        }
    }
}

/// An error for input the caller should never have passed; it is not a fault of the disk.
fn invalid_input(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::io(path)(io::Error::new(io::ErrorKind::InvalidInput, message.into()))
}

/// Partition values become directory names, so they must not be able to walk the tree or
/// confuse Hive-style readers (`=`, `/`).
fn is_partition_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Creates `dir` (below `root`) and fsyncs every directory whose entries changed, so the
/// new partition directories survive a power loss along with the files renamed into them.
fn create_dirs_durably(root: &Path, dir: &Path) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(path) = current {
        if path.is_dir() {
            break;
        }
        missing.push(path);
        current = path.parent();
    }
    fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent()
            && parent.starts_with(root)
        {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let file = File::create(path).map_err(StoreError::io(path))?;
    io::Write::write_all(&mut &file, bytes).map_err(StoreError::io(path))?;
    file.sync_all().map_err(StoreError::io(path))
}
