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
//! check; the Parquet file ([`table`]) is read only for the JSON of the rows a lookup
//! returns and to verify an eventID hash hit. An open segment keeps in memory only what
//! decides whether it is worth reading: its sorted eventID hashes and a filter of the
//! (attribute, value) pairs of its rows. The index itself is loaded when a lookup needs it
//! and kept in the log's [`IndexCache`]: an open segment costs about 6 bytes per event
//! instead of its index's 24–29. Finding an eventID never loads the index: a hash hit
//! reads its few entries of the index file's ids section and the `event_id` page of the
//! rows they name.
//!
//! A segment that retention dropped or a merge replaced ([`Segment::retire`],
//! [`merge_segments`]) keeps its files until the last reader lets go of it: a lookup that
//! took the segment before it was dropped may still load its index.
//!
//! This module must never change a sealed file (retention and compaction delete the pair
//! whole, and a merge writes a new pair), never
//! report an eventID as present without comparing the stored ID itself (a false duplicate
//! would drop an acknowledged event), and never panic on what it reads from disk: damaged
//! files are [`StoreError::Corrupt`] or [`StoreError::Parquet`].

mod cache;
mod index;

pub use cache::{CacheStats, EventCache, IndexCache, PageCache};
pub use index::event_id_hash;
use index::{IdDigest, IdLookup};
mod moved;
mod table;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use trailkeeper_core::LookupKey;
use trailkeeper_core::time::format_date;

use crate::fsutil::sync_dir;
use crate::hash_filter::HashFilter;
use crate::{EventKey, HistoryKind, StoreError, StoredEvent, day_of};

use index::{PostingCursor, SegmentIndex, value_hash};
use table::{EventTable, TableLayout};

/// What a segment holds, as read from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// The file stem of both files: `<min_seq:020>-<max_seq:020>`, the segment's span,
    /// with `-<n>` after it for the n-th segment of that span a merge wrote over one still
    /// open (see [`merge_segments`]).
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
    /// The zstd level its Parquet file was written at; `None` for files written before
    /// the level was kept in them.
    pub zstd_level: Option<i32>,
}

/// One row a scan matched: its Event History key and its row number in the Parquet file,
/// which [`Segment::read_json`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub key: EventKey,
    pub row: u32,
}

/// Bits per (attribute, value) in a segment's value filter: about one absent value in 1,000
/// passes, so a lookup of a value that few segments hold loads few indexes it did not need.
const VALUE_FILTER_BITS: usize = 16;

/// An open sealed segment: what decides whether it can hold an eventID or a value, and its
/// Parquet metadata (with the offset index), so that a lookup reads only the data pages of
/// the rows it returns. The index is loaded on demand.
pub struct Segment {
    meta: SegmentMeta,
    parquet_path: PathBuf,
    index_path: PathBuf,
    /// Every row's eventID hash, sorted, and where to find the rows they belong to.
    ids: IdLookup,
    /// The [`value_hash`]es of the (attribute, value) pairs in the index's dictionary.
    values: HashFilter,
    table: EventTable,
    /// Names this open segment in the caches. A segment's first sequence number would not
    /// do: a merged segment starts where the first of the segments it replaces did, and
    /// both can be open at once while readers finish with the old ones.
    cache_id: u64,
    /// Set once the segment was dropped from the log (retention, or compaction replaced
    /// it): its files go when it is dropped.
    retired: AtomicBool,
}

/// The source of [`Segment::cache_id`]s.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// The zstd level the sealer writes records at.
pub(crate) const SEALED_ZSTD_LEVEL: i32 = TableLayout::DEFAULT.zstd_level;

/// Writes one sealed segment from events that share account, Region and UTC date of event
/// time, and returns it opened. Crash-safe as [`write_files`] says; writing the same events
/// again gives the same names.
pub fn write_segment(root: &Path, events: &[&StoredEvent]) -> Result<Segment, StoreError> {
    write_segment_with(root, events, &TableLayout::DEFAULT, None)
}

/// [`write_segment`], with the new segment's index left in `indexes`: fresh events are the
/// ones lookups ask for.
pub fn write_segment_cached(root: &Path, events: &[&StoredEvent], indexes: &IndexCache) -> Result<Segment, StoreError> {
    write_segment_with(root, events, &TableLayout::DEFAULT, Some(indexes))
}

fn write_segment_with(
    root: &Path,
    events: &[&StoredEvent],
    layout: &TableLayout,
    indexes: Option<&IndexCache>,
) -> Result<Segment, StoreError> {
    let Some(first) = events.first() else {
        return Err(invalid_input(root, "a segment needs at least one event"));
    };
    let date = format_date(first.event_time_ms);
    for value in [first.account_id(), first.region()] {
        if !is_partition_value(value) {
            return Err(invalid_input(root, format!("{value:?} cannot name a partition directory")));
        }
    }
    // The first read of each event, asked for ahead: each key is read here once, since
    // comparing or scanning through the references chased them through memory again.
    let mut keyed: Vec<(EventKey, &StoredEvent)> = Vec::with_capacity(events.len());
    for event in crate::prefetched(events) {
        if event.account_id() != first.account_id() || event.region() != first.region() {
            return Err(invalid_input(root, "events of one segment must share account and region"));
        }
        if day_of(event.event_time_ms) != day_of(first.event_time_ms) {
            return Err(invalid_input(root, "events of one segment must share the UTC date of their event time"));
        }
        keyed.push((event.key(), event));
    }
    keyed.sort_unstable_by_key(|&(key, _)| key);
    if keyed.windows(2).any(|pair| pair[0].0.seq == pair[1].0.seq) {
        return Err(invalid_input(root, "two events of one segment have the same seq"));
    }
    let min_seq = keyed.iter().map(|(key, _)| key.seq).min().unwrap_or(0);
    let max_seq = keyed.iter().map(|(key, _)| key.seq).max().unwrap_or(0);
    let sorted: Vec<&StoredEvent> = keyed.into_iter().map(|(_, event)| event).collect();
    let name = span(min_seq, max_seq);

    let dir = root
        .join(format!("account={}", first.account_id()))
        .join(format!("region={}", first.region()))
        .join(format!("date={date}"));
    create_dirs_durably(root, &dir)?;
    let parquet_path = write_files(&dir, &name, |parquet_tmp| {
        let file_order = table::file_order(&sorted);
        // The index first, while `file_order` has just read each event's fields: writing
        // the table streams every record through the cache.
        let index = index::encode(&sorted, &file_order);
        let in_file: Vec<&StoredEvent> = file_order.iter().map(|&row| sorted[row as usize]).collect();
        table::write(parquet_tmp, &in_file, layout)?;
        Ok(index)
    })?;
    match indexes {
        Some(indexes) => Segment::open_cached(&parquet_path, indexes),
        None => Segment::open(&parquet_path),
    }
}

/// Merges segments of one partition (account, Region, date) into one new segment, which it
/// returns opened with its index left in `indexes`. The inputs are not changed: replacing
/// them in the manifest and deleting them is the caller's.
///
/// Fewer, larger segments are what compaction is for: rows grouped by caller span more of
/// each page (sealed segments hold a few seconds of ingest each), a lookup opens fewer
/// indexes, and an open segment's fixed costs are paid less often. The merged file is
/// written at `zstd_level`, off the ingest path. Records are copied as stored, so the
/// merged segment reads back byte for byte what its inputs did.
pub fn merge_segments(
    root: &Path,
    inputs: &[&Segment],
    zstd_level: i32,
    indexes: &IndexCache,
) -> Result<Segment, StoreError> {
    let Some(first) = inputs.first() else {
        return Err(invalid_input(root, "a merge needs at least one segment"));
    };
    fn partition(meta: &SegmentMeta) -> (&str, &str, &str) {
        (&meta.account_id, &meta.region, &meta.date)
    }
    if inputs.iter().any(|input| partition(&input.meta) != partition(&first.meta)) {
        return Err(invalid_input(root, "merged segments must share account, Region and date"));
    }
    if !is_partition_value(&first.meta.account_id) || !is_partition_value(&first.meta.region) {
        return Err(invalid_input(root, "the segments' account or Region cannot name a partition directory"));
    }
    let min_seq = inputs.iter().map(|input| input.meta.min_seq).min().unwrap_or(0);
    let max_seq = inputs.iter().map(|input| input.meta.max_seq).max().unwrap_or(0);
    let span = span(min_seq, max_seq);
    // An input of the same span (one segment written again alone, or one whose span holds
    // the others') keeps its files until its last reader lets go: the merged segment takes
    // the next rewrite number instead of its name.
    let name = match inputs.iter().filter_map(|input| rewrite_number(&input.meta.name, &span)).max() {
        None => span,
        Some(latest) => format!("{span}-{}", latest + 1),
    };
    let loaded = inputs.iter().map(|input| input.index(indexes)).collect::<Result<Vec<_>, _>>()?;
    let layout = TableLayout { zstd_level, ..TableLayout::DEFAULT };
    let dir = first.parquet_path.parent().unwrap_or(root).to_path_buf();
    let parquet_path = write_files(&dir, &name, |parquet_tmp| {
        let paths: Vec<&Path> = inputs.iter().map(|input| input.parquet_path.as_path()).collect();
        let written = table::merge(parquet_tmp, &paths, &layout)?;
        let parts: Vec<(&SegmentMeta, &SegmentIndex, &[u32])> = inputs
            .iter()
            .zip(&loaded)
            .zip(&written.placed)
            .map(|((input, index), placed)| (&input.meta, &**index, placed.as_slice()))
            .collect();
        Ok(index::merge(&parts, written.digests))
    })?;
    let merged = Segment::open_cached(&parquet_path, indexes)?;
    let expected: u64 = inputs.iter().map(|input| input.meta.event_count).sum();
    if merged.meta.event_count != expected {
        merged.retire();
        return Err(StoreError::Corrupt {
            path: parquet_path,
            offset: 0,
            what: "merged segment",
            detail: format!("{} events, not the {expected} of its inputs", merged.meta.event_count),
        });
    }
    Ok(merged)
}

/// The name of the segment that holds log positions `min_seq` to `max_seq`: its span.
fn span(min_seq: u64, max_seq: u64) -> String {
    format!("{min_seq:020}-{max_seq:020}")
}

/// Which segment of the span `span` (see [`span`]) the segment named `name` is: 0 for the
/// span itself, n for `<span>-<n>`; `None` for a segment of another span.
fn rewrite_number(name: &str, span: &str) -> Option<u64> {
    match name.strip_prefix(span)? {
        "" => Some(0),
        rest => rest.strip_prefix('-').filter(|n| n.bytes().all(|b| b.is_ascii_digit()))?.parse().ok(),
    }
}

/// Writes a segment's two files into `dir` as `<name>.parquet` and `<name>.idx`: `write`
/// writes the Parquet file at the temporary path it is given and returns the index file's
/// bytes. Returns the Parquet path.
///
/// Crash safety: both files are written under temporary names and fsynced, then the `.idx`
/// is renamed into place before the `.parquet`, and the directory is fsynced. So a
/// `.parquet` never exists without its `.idx`; after a crash at most a `*.tmp` file or an
/// orphan `.idx` is left behind.
fn write_files(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<Vec<u8>, StoreError>,
) -> Result<PathBuf, StoreError> {
    let parquet_path = dir.join(format!("{name}.parquet"));
    let index_path = dir.join(format!("{name}.idx"));
    let parquet_tmp = dir.join(format!("{name}.parquet.tmp"));
    let index_tmp = dir.join(format!("{name}.idx.tmp"));
    let written = (|| {
        let index_bytes = write(&parquet_tmp)?;
        write_file_synced(&index_tmp, &index_bytes)?;
        fs::rename(&index_tmp, &index_path).map_err(StoreError::io(&index_path))?;
        fs::rename(&parquet_tmp, &parquet_path).map_err(StoreError::io(&parquet_path))?;
        sync_dir(dir)
    })();
    if let Err(error) = written {
        // Leftover temporary files are harmless but waste space; the error that matters
        // is the one being returned.
        let _ = fs::remove_file(&parquet_tmp);
        let _ = fs::remove_file(&index_tmp);
        return Err(error);
    }
    Ok(parquet_path)
}

impl Segment {
    /// Opens a sealed segment from its `.parquet` path; the `.idx` beside it is loaded
    /// and checked (magic, version, checksum, structure), what decides whether the segment
    /// is worth reading is kept, and the Parquet footer with its offset index is cached.
    pub fn open(parquet_path: &Path) -> Result<Segment, StoreError> {
        Segment::open_with_index(parquet_path).map(|(segment, _)| segment)
    }

    /// [`Segment::open`], leaving the index it read in `indexes`.
    pub fn open_cached(parquet_path: &Path, indexes: &IndexCache) -> Result<Segment, StoreError> {
        let (segment, index) = Segment::open_with_index(parquet_path)?;
        indexes.insert(segment.cache_id, Arc::new(index));
        Ok(segment)
    }

    fn open_with_index(parquet_path: &Path) -> Result<(Segment, SegmentIndex), StoreError> {
        let index_path = parquet_path.with_extension("idx");
        let (mut meta, index, ids) = index::load(&index_path)?;
        let stem = parquet_path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
        if rewrite_number(stem, &meta.name).is_none() {
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
        meta.name = stem.to_owned();
        meta.parquet_bytes = table.file_bytes();
        meta.zstd_level = table.zstd_level();
        let values = HashFilter::exact(VALUE_FILTER_BITS, &index.value_hashes());
        let segment = Segment {
            meta,
            parquet_path: parquet_path.to_path_buf(),
            index_path,
            ids: ids.into_lookup(&index),
            values,
            table,
            cache_id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            retired: AtomicBool::new(false),
        };
        Ok((segment, index))
    }

    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    pub fn parquet_path(&self) -> &Path {
        &self.parquet_path
    }

    /// The [`event_id_hash`] of every event in the segment, sorted, so that the log can
    /// keep one set per account and day for deduplication.
    pub fn event_id_hashes(&self) -> &[u32] {
        &self.ids.sorted_hashes
    }

    /// Whether any row is found under this (attribute, value): false is certain, true is
    /// almost always right (about one absent value in 1,000 says true).
    fn may_hold(&self, key: LookupKey, value: &str) -> bool {
        self.values.may_contain(value_hash(key.tag(), value))
    }

    /// The segment's index, from `indexes` or else read from its file and left there.
    fn index(&self, indexes: &IndexCache) -> Result<Arc<SegmentIndex>, StoreError> {
        if let Some(index) = indexes.get(self.cache_id) {
            return Ok(index);
        }
        let (meta, index, _) = index::load(&self.index_path)?;
        if rewrite_number(&self.meta.name, &meta.name).is_none() || meta.event_count != self.meta.event_count {
            return Err(StoreError::Corrupt {
                path: self.index_path.clone(),
                offset: 0,
                what: "segment index",
                detail: format!("the index changed since segment {} was opened", self.meta.name),
            });
        }
        let index = Arc::new(index);
        indexes.insert(self.cache_id, Arc::clone(&index));
        Ok(index)
    }

    /// Whether some row's eventID has this [`event_id_hash`].
    pub fn may_hold_event_id(&self, hash: u32) -> bool {
        self.ids.sorted_hashes.binary_search(&hash).is_ok()
    }

    /// Whether an event with this eventID is in the segment, whatever its category. A hash
    /// hit is confirmed by reading the stored eventID from the Parquet file; the index is
    /// not loaded.
    pub fn contains_event_id(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.event_id_row(event_id)?.is_some())
    }

    /// The Parquet row of the event with this eventID, if the segment holds it.
    fn event_id_row(&self, event_id: &str) -> Result<Option<u32>, StoreError> {
        let candidates = self.ids.candidate_rows(&self.index_path, IdDigest::of(event_id))?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let stored = self.table.read_event_ids(&candidates)?;
        Ok(candidates.into_iter().zip(stored).find(|(_, id)| id.as_ref() == event_id.as_bytes()).map(|(row, _)| row))
    }

    /// The index row of the event in this Parquet row, with the index.
    fn index_row(&self, file_row: u32, indexes: &IndexCache) -> Result<(Arc<SegmentIndex>, u32), StoreError> {
        let index = self.index(indexes)?;
        match index.row_of_file_row(file_row) {
            Some(row) => Ok((index, row)),
            None => Err(StoreError::Corrupt {
                path: self.index_path.clone(),
                offset: 0,
                what: "segment index",
                detail: format!("no row is at file row {file_row}"),
            }),
        }
    }

    /// The Parquet row and key of the event with this eventID, whatever its category. A hash hit
    /// is confirmed by reading the stored eventID.
    pub fn find_event_id(&self, event_id: &str, indexes: &IndexCache) -> Result<Option<(u32, EventKey)>, StoreError> {
        let Some(file_row) = self.event_id_row(event_id)? else {
            return Ok(None);
        };
        let (index, row) = self.index_row(file_row, indexes)?;
        Ok(Some((file_row, index.key(row))))
    }

    /// The rows of `kind` within the bounds, matching `attribute` if given, newest first.
    /// Lazy: each `next` does only the work to find one more row. The index is loaded only
    /// if the segment may hold the attribute's value.
    pub fn scan(
        &self,
        indexes: &IndexCache,
        kind: HistoryKind,
        attribute: Option<(LookupKey, &str)>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        before: Option<EventKey>,
    ) -> Result<Scan, StoreError> {
        let (index, event_id_row) = match attribute {
            Some((LookupKey::EventId, event_id)) => {
                let Some(file_row) = self.event_id_row(event_id)? else {
                    return Ok(Scan::Empty);
                };
                let (index, row) = self.index_row(file_row, indexes)?;
                (index, Some(row))
            }
            Some((key, value)) if !self.may_hold(key, value) => return Ok(Scan::Empty),
            _ => (self.index(indexes)?, None),
        };
        let lower = index.first_row_at_or_after(start_ms);
        let upper = index.end_row(end_ms, before);
        let source = match (attribute, event_id_row) {
            (_, Some(row)) => RowSource::One(Some(row)),
            (None, None) => RowSource::Descending { next: upper },
            (Some((key, value)), None) => match index.postings_below(key, value, upper) {
                Some(cursor) => RowSource::Postings(cursor),
                None => return Ok(Scan::Empty),
            },
        };
        Ok(Scan::Rows(Rows { index, kind, lower, upper, source }))
    }

    /// The rows whose log position is in `(after, through]`, as `(key, Parquet row)` in seq
    /// order.
    pub fn rows_in_seq_range(
        &self,
        after: u64,
        through: u64,
        indexes: &IndexCache,
    ) -> Result<Vec<(EventKey, u32)>, StoreError> {
        if self.meta.max_seq <= after || self.meta.min_seq > through {
            return Ok(Vec::new());
        }
        let index = self.index(indexes)?;
        let mut rows: Vec<(EventKey, u32)> = (0..index.row_count())
            .map(|row| (index.key(row), index.file_row(row)))
            .filter(|&(key, _)| key.seq > after && key.seq <= through)
            .collect();
        rows.sort_unstable_by_key(|&(key, _)| key.seq);
        Ok(rows)
    }

    /// Marks the segment as dropped (by retention, or replaced by a merge): its files are
    /// deleted once the last holder lets go of it.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// The stored JSON text of the given Parquet rows, in the order asked, through `cache`.
    pub fn read_json(&self, rows: &[u32], cache: &PageCache) -> Result<Vec<Bytes>, StoreError> {
        if let Some(&row) = rows.iter().find(|&&row| u64::from(row) >= self.meta.event_count) {
            return Err(invalid_input(&self.parquet_path, format!("row {row} is past the segment's end")));
        }
        self.table.read_json(rows, cache, self.cache_id)
    }

    /// [`Segment::read_json`] through `events` first: what lookups read. A record asked for
    /// again costs a hash probe instead of decoding its pages.
    pub fn read_events(&self, rows: &[u32], pages: &PageCache, events: &EventCache) -> Result<Vec<Bytes>, StoreError> {
        let mut texts: Vec<Option<Bytes>> = rows.iter().map(|&row| events.get((self.cache_id, row))).collect();
        let missing: Vec<u32> =
            rows.iter().zip(&texts).filter(|(_, text)| text.is_none()).map(|(&row, _)| row).collect();
        let read = self.read_json(&missing, pages)?;
        let holes = rows.iter().zip(&mut texts).filter(|(_, text)| text.is_none());
        for ((&row, text), json) in holes.zip(read) {
            // A record as read may be a slice of a decoded page, which it would keep alive.
            let owned = Bytes::copy_from_slice(&json);
            events.insert((self.cache_id, row), owned.clone());
            *text = Some(owned);
        }
        texts.into_iter().collect::<Option<Vec<Bytes>>>().ok_or_else(|| StoreError::Parquet {
            path: self.parquet_path.clone(),
            detail: "a row asked for was not read back".to_owned(),
        })
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

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.retired.load(Ordering::Acquire) {
            return;
        }
        for path in [&self.parquet_path, &self.index_path] {
            if let Err(error) = fs::remove_file(path) {
                tracing::warn!(path = %path.display(), %error, "could not delete an expired segment file");
            }
        }
    }
}

/// Where a scan takes its candidate rows from; every source yields rows in descending order.
enum RowSource {
    /// Every row below `next`.
    Descending { next: u32 },
    /// The posting list of one lookup attribute value.
    Postings(PostingCursor),
    /// The row of one eventID.
    One(Option<u32>),
}

impl RowSource {
    fn next(&mut self, index: &SegmentIndex) -> Option<u32> {
        match self {
            RowSource::Descending { next } => {
                *next = next.checked_sub(1)?;
                Some(*next)
            }
            RowSource::Postings(cursor) => index.next_posting(cursor),
            RowSource::One(row) => row.take(),
        }
    }
}

/// The rows one [`Segment::scan`] finds, newest first.
pub enum Scan {
    /// The segment holds no row under the asked value; its index was not loaded.
    Empty,
    Rows(Rows),
}

impl Iterator for Scan {
    type Item = SegmentRow;

    fn next(&mut self) -> Option<SegmentRow> {
        match self {
            Scan::Empty => None,
            Scan::Rows(rows) => rows.next(),
        }
    }
}

/// A scan over a loaded index, which it holds while it runs.
pub struct Rows {
    index: Arc<SegmentIndex>,
    kind: HistoryKind,
    /// Rows below this are older than the start bound.
    lower: u32,
    /// Rows at or above this are newer than the end bound or not before the page token.
    upper: u32,
    source: RowSource,
}

impl Iterator for Rows {
    type Item = SegmentRow;

    fn next(&mut self) -> Option<SegmentRow> {
        loop {
            let row = self.source.next(&self.index)?;
            if row < self.lower {
                return None;
            }
            if row >= self.upper || !self.kind.includes(self.index.category(row)) {
                continue;
            }
            return Some(SegmentRow { key: self.index.key(row), row: self.index.file_row(row) });
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
