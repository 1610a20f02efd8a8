//! The `.idx` sidecar of a sealed segment: what Event History lookups and the eventID
//! duplicate check need, its file format, and its compact in-memory form, which is loaded
//! when a lookup needs it and kept in the log's [`IndexCache`](super::IndexCache).
//!
//! File format (little-endian):
//!
//! ```text
//! magic   8  b"TKSEGIDX"
//! version 4  u32 = 3
//! crc     4  crc32c of every byte after this field
//! raw_len 8  u64, length of the body once decompressed
//! zst_len 8  u64, length of the compressed body that follows
//! body       zstd frame
//! ids        since version 3, uncompressed: one entry per row in eventID hash order
//! ```
//!
//! The body, with varints as LEB128 and strings as a varint length and UTF-8 bytes:
//! account, Region, date; `max_ingest_ms` (i64); the row count; the first row's time (i64)
//! then each later row's time minus the previous one (varint); the first row's seq (u64)
//! then each later seq minus the previous one (zigzag varint); one category tag per row;
//! the eventID hashes ([`event_id_hash`]) of all rows, sorted, the first then each gap as
//! varints (versions 1 and 2: one 32-bit hash per row, in row order); since version 2,
//! the Parquet file's rows in file order, each as the row it is here minus the previous
//! one's (zigzag varint; version 1 files hold their rows in the same order as the index);
//! then the dictionary: its entry count, and per entry (sorted by key tag, then value
//! bytes) the key tag, the value, the posting count, the posting byte length and the
//! postings. Postings are the rows holding the value in descending order: the first row,
//! then each gap minus one, as varints. Decoding walks them in the order lookups want
//! them (newest first) without a buffer.
//!
//! The ids section pairs each of the body's sorted hashes with the Parquet row of its
//! event: a check byte (the low byte of the eventID's 64-bit hash, [`IdDigest`]) then the
//! file row in 2, 3 or 4 bytes, as few as the row count needs. It is what makes the
//! duplicate check cheap whatever the size of a day: a resident hash hit reads a few bytes
//! at a known offset of this file and (if the check byte agrees) one page of the
//! `event_id` column, never the whole index. The check byte turns away all but one in 256
//! hash collisions before any Parquet page is read.
//!
//! Loaded, a row costs 4 bytes of time, 4 of seq (8 if the segment's seq range passes
//! 2^32), 1 of category, 2 of Parquet row (4 past 65,536 rows) and about one byte per
//! posting (6–8 postings per management event), and per distinct (attribute, value) 20
//! bytes of entry, 8 of probe table and the value's text: about 27 bytes per event. What
//! stays resident for every segment is smaller: the sorted eventID hashes (4 bytes per
//! event, [`IdLookup::sorted_hashes`]) and a filter of the dictionary's values
//! ([`SegmentIndex::value_hashes`]). Segments of versions 1 and 2, which have no ids
//! section, keep their file rows in hash order in memory instead (4 more bytes per event)
//! until compaction rewrites them.
//!
//! The resident eventID hash is only 32 bits because every hit is verified against the
//! stored ID anyway, and each event saves 4 bytes in memory.
//!
//! Loading must never trust the file: every count, row number and order is checked, and a
//! failure is [`StoreError::Corrupt`] naming the file and the offset (in the file for the
//! header and the ids section, in the decompressed body for the body).

use std::fs::{self, File};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use trailkeeper_core::time::format_date;
use trailkeeper_core::{Category, LookupKey};

use super::SegmentMeta;
use crate::{EventKey, StoreError, StoredEvent};

const MAGIC: [u8; 8] = *b"TKSEGIDX";
const VERSION: u32 = 3;
/// Version 1 has no file row order (its Parquet rows are in index order); versions 1 and 2
/// keep one eventID hash per row and no ids section.
const VERSION_IN_INDEX_ORDER: u32 = 1;
const HEADER_LEN: usize = 32;
/// The body is mostly varints and hashes, which zstd shrinks little; a claimed expansion
/// past this is a damaged header, refused before allocating for it.
const MAX_EXPANSION: u64 = 64;
/// Level 3: on the realistic generator the body comes out 0.1 B/event larger than at
/// level 9 (13.9 against 13.8 B/event), and sealing no longer spends a twentieth of its
/// time in zstd's lazy match finder (`--example segment_layout`).
const ZSTD_LEVEL: i32 = 3;
/// A skip entry every this many postings bounds the work of seeking into a posting list
/// (for a page token or an end time) to this many varint decodes.
const SKIP_INTERVAL: u32 = 64;

/// The in-memory lookup index of one segment. Rows are numbered in Event History order
/// (ascending [`EventKey`]); the Parquet file holds them in another order, which keeps
/// similar records together for compression (see `table::file_order`).
pub struct SegmentIndex {
    first_time_ms: i64,
    /// Each row's event time minus `first_time_ms`; one UTC day fits in 32 bits.
    time_offsets: Vec<u32>,
    seqs: Seqs,
    /// Each row's [`Category::tag`].
    categories: Vec<u8>,
    /// Each row's row number in the Parquet file.
    file_rows: FileRows,
    dictionary: Dictionary,
}

enum Seqs {
    Narrow { base: u64, offsets: Vec<u32> },
    Wide(Vec<u64>),
}

/// Two bytes a row for segments of up to 65,536 rows (nearly all of them), since every
/// byte a loaded index saves is room in the index cache.
enum FileRows {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl FileRows {
    fn new(file_rows: Vec<u32>) -> FileRows {
        match file_rows.iter().map(|&row| u16::try_from(row)).collect() {
            Ok(narrow) => FileRows::Narrow(narrow),
            Err(_) => FileRows::Wide(file_rows),
        }
    }

    fn get(&self, row: u32) -> u32 {
        match self {
            FileRows::Narrow(rows) => u32::from(rows[row as usize]),
            FileRows::Wide(rows) => rows[row as usize],
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            FileRows::Narrow(rows) => rows.capacity() * 2,
            FileRows::Wide(rows) => rows.capacity() * 4,
        }
    }
}

impl Seqs {
    fn get(&self, row: usize) -> u64 {
        match self {
            Seqs::Narrow { base, offsets } => base + u64::from(offsets[row]),
            Seqs::Wide(seqs) => seqs[row],
        }
    }
}

/// Every (lookup key, value) of the segment's Event History rows, with its posting list.
struct Dictionary {
    /// In the file's order (key tag, then value bytes). Each entry's value, postings and
    /// skips run to where the next entry's begin (the last entry's to the buffers' ends).
    entries: Vec<DictionaryEntry>,
    /// The values of all entries, back to back.
    values: String,
    /// The postings of all entries, back to back.
    postings: Vec<u8>,
    skips: Vec<Skip>,
    /// An open-addressing table of entry numbers plus one (0: empty), at most half full,
    /// so that finding a value (or its absence, the common case across many segments)
    /// costs about one probe instead of a binary search over strings.
    slots: Vec<u32>,
}

/// 20 bytes: a segment's dictionary can hold millions of high-cardinality values.
struct DictionaryEntry {
    key: u8,
    value_start: u32,
    postings_start: u32,
    count: u32,
    skips_start: u32,
}

/// A point to resume decoding a posting list: the row at a multiple of [`SKIP_INTERVAL`]
/// and the byte just after it.
#[derive(Clone, Copy)]
struct Skip {
    row: u32,
    /// Relative to the entry's first posting byte.
    next_byte: u32,
    /// How many postings follow `row`.
    remaining: u32,
}

impl SegmentIndex {
    pub(super) fn row_count(&self) -> u32 {
        // Loading refuses more rows than fit in u32.
        u32::try_from(self.time_offsets.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn key(&self, row: u32) -> EventKey {
        let row = row as usize;
        EventKey { time_ms: self.first_time_ms + i64::from(self.time_offsets[row]), seq: self.seqs.get(row) }
    }

    pub(super) fn category(&self, row: u32) -> Category {
        Category::from_tag(self.categories[row as usize]).unwrap_or(Category::Other)
    }

    /// The first row whose time is at or after `start_ms`.
    pub(super) fn first_row_at_or_after(&self, start_ms: Option<i64>) -> u32 {
        match start_ms {
            None => 0,
            Some(start) => partition_point(self.row_count(), |row| self.key(row).time_ms < start),
        }
    }

    /// The end (exclusive) of the rows at or before `end_ms` and strictly before `before`.
    pub(super) fn end_row(&self, end_ms: Option<i64>, before: Option<EventKey>) -> u32 {
        partition_point(self.row_count(), |row| {
            let key = self.key(row);
            end_ms.is_none_or(|end| key.time_ms <= end) && before.is_none_or(|before| key < before)
        })
    }

    /// Where a row is in the Parquet file.
    pub(super) fn file_row(&self, row: u32) -> u32 {
        self.file_rows.get(row)
    }

    /// The row at this place in the Parquet file. A linear search: only a found eventID
    /// asks for it.
    pub(super) fn row_of_file_row(&self, file_row: u32) -> Option<u32> {
        let position = match &self.file_rows {
            FileRows::Narrow(rows) => rows.iter().position(|&row| u32::from(row) == file_row),
            FileRows::Wide(rows) => rows.iter().position(|&row| row == file_row),
        };
        // Loading refuses more rows than fit in u32.
        position.map(|row| row as u32)
    }

    /// A cursor over the rows below `upper` holding an attribute value (case-sensitive),
    /// newest first, if any row holds it.
    pub(super) fn postings_below(&self, key: LookupKey, value: &str, upper: u32) -> Option<PostingCursor> {
        let number = self.dictionary.find(key.tag(), value)?;
        Some(self.dictionary.postings_of(number).below(number, upper))
    }

    /// The next row of a cursor from [`SegmentIndex::postings_below`] on this index.
    pub(super) fn next_posting(&self, cursor: &mut PostingCursor) -> Option<u32> {
        cursor.next(self.dictionary.postings_of(cursor.entry).bytes)
    }

    /// The [`value_hash`] of every (attribute, value) the segment's rows are found under.
    pub(super) fn value_hashes(&self) -> Vec<u32> {
        let dictionary = &self.dictionary;
        (0..dictionary.entries.len())
            .map(|number| value_hash(dictionary.entries[number].key, dictionary.value(number)))
            .collect()
    }

    /// What the index holds on the heap.
    pub(super) fn heap_bytes(&self) -> usize {
        let dictionary = &self.dictionary;
        let seqs = match &self.seqs {
            Seqs::Narrow { offsets, .. } => offsets.capacity() * 4,
            Seqs::Wide(seqs) => seqs.capacity() * 8,
        };
        self.time_offsets.capacity() * 4
            + seqs
            + self.categories.capacity()
            + self.file_rows.heap_bytes()
            + dictionary.entries.capacity() * size_of::<DictionaryEntry>()
            + dictionary.values.capacity()
            + dictionary.postings.capacity()
            + dictionary.skips.capacity() * size_of::<Skip>()
            + dictionary.slots.capacity() * 4
    }
}

/// The hash under which a segment's value filter holds an (attribute, value) pair.
pub(super) fn value_hash(key: u8, value: &str) -> u32 {
    (Dictionary::hash(key, value) >> 32) as u32
}

impl Dictionary {
    fn value(&self, number: usize) -> &str {
        let start = self.entries[number].value_start as usize;
        let end = self.entries.get(number + 1).map_or(self.values.len(), |next| next.value_start as usize);
        &self.values[start..end]
    }

    fn hash(key: u8, value: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&foldhash::fast::FixedState::with_seed(0), (key, value))
    }

    fn slot_of(&self, key: u8, value: &str) -> usize {
        Dictionary::hash(key, value) as usize & (self.slots.len() - 1)
    }

    fn postings_of(&self, number: usize) -> PostingList<'_> {
        let entry = &self.entries[number];
        let next = self.entries.get(number + 1);
        let postings_end = next.map_or(self.postings.len(), |next| next.postings_start as usize);
        let skips_end = next.map_or(self.skips.len(), |next| next.skips_start as usize);
        PostingList {
            bytes: &self.postings[entry.postings_start as usize..postings_end],
            count: entry.count,
            skips: &self.skips[entry.skips_start as usize..skips_end],
        }
    }

    /// The number of the entry for (key, value), by linear probing.
    fn find(&self, key: u8, value: &str) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut slot = self.slot_of(key, value);
        loop {
            let number = self.slots[slot].checked_sub(1)? as usize;
            if self.entries[number].key == key && self.value(number) == value {
                return Some(number);
            }
            slot = (slot + 1) & (self.slots.len() - 1);
        }
    }

    /// Fills `slots` once every entry is in.
    fn build_slots(&mut self) {
        let capacity = (self.entries.len() * 2).next_power_of_two().max(2);
        self.slots = vec![0; capacity];
        for number in 0..self.entries.len() {
            let mut slot = self.slot_of(self.entries[number].key, self.value(number));
            while self.slots[slot] != 0 {
                slot = (slot + 1) & (capacity - 1);
            }
            // Loading refuses more entries than fit in u32.
            self.slots[slot] = number as u32 + 1;
        }
    }
}

/// The first index in `0..len` where `is_before` turns false; `is_before` must be true on a
/// prefix and false after it.
fn partition_point(len: u32, is_before: impl Fn(u32) -> bool) -> u32 {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        if is_before(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

/// One value's rows, descending. Checked when the index was loaded, so decoding cannot
/// fail; it still stops quietly rather than panic if it somehow did.
struct PostingList<'a> {
    bytes: &'a [u8],
    count: u32,
    skips: &'a [Skip],
}

impl PostingList<'_> {
    /// A cursor at the first posting below `upper` of dictionary entry `entry`, this list.
    fn below(&self, entry: usize, upper: u32) -> PostingCursor {
        // Skips are in descending row order: resume from the last one still at or above
        // `upper`, then step over at most SKIP_INTERVAL postings.
        let resume = self.skips.partition_point(|skip| skip.row >= upper);
        let mut cursor = match resume.checked_sub(1).and_then(|at| self.skips.get(at)) {
            Some(skip) => PostingCursor {
                entry,
                position: skip.next_byte as usize,
                pending: Some(skip.row),
                remaining: skip.remaining,
            },
            None => {
                let mut cursor = PostingCursor { entry, position: 0, pending: None, remaining: self.count };
                cursor.pending = cursor.decode_first(self.bytes);
                cursor
            }
        };
        while cursor.pending.is_some_and(|row| row >= upper) {
            cursor.next(self.bytes);
        }
        cursor
    }
}

/// A place in one posting list. It holds no reference to the index, so that a scan can
/// own the index it reads; each step is given the list's bytes.
pub(super) struct PostingCursor {
    /// The dictionary entry whose postings these are.
    entry: usize,
    position: usize,
    /// The next row to yield.
    pending: Option<u32>,
    /// Postings after `pending` not yet decoded.
    remaining: u32,
}

impl PostingCursor {
    fn decode_first(&mut self, bytes: &[u8]) -> Option<u32> {
        self.remaining = self.remaining.checked_sub(1)?;
        let row = read_varint(bytes, &mut self.position)?;
        u32::try_from(row).ok()
    }

    fn next(&mut self, bytes: &[u8]) -> Option<u32> {
        let current = self.pending.take()?;
        if self.remaining > 0 {
            self.remaining -= 1;
            self.pending = read_varint(bytes, &mut self.position)
                .and_then(|gap| u32::try_from(gap).ok())
                .and_then(|gap| current.checked_sub(gap)?.checked_sub(1));
        }
        Some(current)
    }
}

/// The hash of an eventID that segments keep in memory and the log's day filters hold: the
/// upper half of its [`IdDigest`].
pub fn event_id_hash(event_id: &str) -> u32 {
    IdDigest::of(event_id).hash()
}

/// The 64-bit hash of an eventID. Part of the file format (version 1): FNV-1a, then a
/// 64-bit finaliser so that IDs differing only in their last characters spread out. Its
/// upper 32 bits are the [`event_id_hash`], its low byte the ids section's check byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct IdDigest(u64);

impl IdDigest {
    pub(super) fn of(event_id: &str) -> IdDigest {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in event_id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        IdDigest(hash ^ (hash >> 33))
    }

    pub(super) fn hash(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub(super) fn check(self) -> u8 {
        self.0 as u8
    }
}

/// What finds the rows of an eventID without loading the index: what an open segment keeps.
pub(super) struct IdLookup {
    /// Every row's [`event_id_hash`], sorted.
    pub(super) sorted_hashes: Vec<u32>,
    pub(super) rows: IdRows,
}

/// Where the Parquet rows of [`IdLookup::sorted_hashes`] are, in the same order.
pub(super) enum IdRows {
    /// The index file's ids section: `entry_len`-byte entries from `offset`.
    InFile { offset: u64, entry_len: usize },
    /// Indexes of versions 1 and 2 have no ids section (nor check bytes): the rows are
    /// kept in memory.
    Resident(Box<[u32]>),
}

impl IdLookup {
    /// The Parquet rows that may hold this eventID: those whose hash and (where the file
    /// keeps one) check byte match. Reads a few bytes of the index file at `path`, never
    /// the whole index.
    pub(super) fn candidate_rows(&self, path: &Path, digest: IdDigest) -> Result<Vec<u32>, StoreError> {
        let hash = digest.hash();
        let start = self.sorted_hashes.partition_point(|&stored| stored < hash);
        let end = start + self.sorted_hashes[start..].partition_point(|&stored| stored == hash);
        if start == end {
            return Ok(Vec::new());
        }
        let (offset, entry_len) = match &self.rows {
            IdRows::Resident(rows) => return Ok(rows[start..end].to_vec()),
            IdRows::InFile { offset, entry_len } => (*offset, *entry_len),
        };
        let mut entries = vec![0; (end - start) * entry_len];
        let at = offset + (start * entry_len) as u64;
        File::open(path).and_then(|file| file.read_exact_at(&mut entries, at)).map_err(StoreError::io(path))?;
        let row_count = self.sorted_hashes.len();
        let mut rows = Vec::new();
        for (place, entry) in entries.chunks_exact(entry_len).enumerate() {
            if entry[0] != digest.check() {
                continue;
            }
            let row = entry_row(entry);
            if row as usize >= row_count {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    offset: at + (place * entry_len) as u64,
                    what: "segment index",
                    detail: format!("ids entry names row {row} of {row_count}"),
                });
            }
            rows.push(row);
        }
        Ok(rows)
    }
}

/// The length of an ids section entry: the check byte and as few bytes of file row as
/// `row_count` rows need.
fn id_entry_len(row_count: usize) -> usize {
    match row_count {
        0..=0x1_0000 => 3,
        0x1_0001..=0x100_0000 => 4,
        _ => 5,
    }
}

/// The file row of an ids section entry.
fn entry_row(entry: &[u8]) -> u32 {
    let mut row = [0u8; 4];
    row[..entry.len() - 1].copy_from_slice(&entry[1..]);
    u32::from_le_bytes(row)
}

/// Encodes the index file of `events`, which are sorted by [`EventKey`] and share account,
/// Region and date (the caller has checked). `file_order` lists the rows in the order the
/// Parquet file holds them.
pub(super) fn encode(events: &[&StoredEvent], file_order: &[u32]) -> Vec<u8> {
    parts(events, file_order).encode(VERSION)
}

/// [`encode`] in an older `version` (1 or 2), to check that such files still open.
#[cfg(test)]
pub(super) fn encode_as(version: u32, events: &[&StoredEvent], file_order: &[u32]) -> Vec<u8> {
    parts(events, file_order).encode(version)
}

fn parts<'a>(events: &[&'a StoredEvent], file_order: &'a [u32]) -> IndexParts<'a> {
    let date = events.first().map(|first| format_date(first.event_time_ms)).unwrap_or_default();
    let mut by_value: crate::HashMap<(u8, &str), Vec<u32>> = crate::HashMap::default();
    let mut keys = Vec::with_capacity(events.len());
    let mut categories = Vec::with_capacity(events.len());
    let mut digests = Vec::with_capacity(events.len());
    let mut max_ingest_ms = None;
    // One walk in row order reads all an event gives the index, each event asked for
    // ahead. A walk per part, and the eventIDs' in file order, waited for them again.
    for (row, event) in crate::prefetched(events).enumerate() {
        keys.push(event.key());
        categories.push(event.category.tag());
        digests.push(IdDigest::of(event.event_id()));
        max_ingest_ms = max_ingest_ms.max(Some(event.ingest_time_ms));
        if !event.category.in_event_history() {
            continue;
        }
        for (key, value) in event.fields.attribute_values() {
            let rows = by_value.entry((key.tag(), value)).or_default();
            // Resources can repeat a value; the row is listed once.
            if rows.last() != Some(&(row as u32)) {
                rows.push(row as u32);
            }
        }
    }
    IndexParts {
        account_id: events.first().map_or("", |first| first.account_id()),
        region: events.first().map_or("", |first| first.region()),
        date,
        max_ingest_ms: max_ingest_ms.unwrap_or(0),
        keys,
        categories,
        id_digests: file_order.iter().map(|&row| digests[row as usize]).collect(),
        file_order,
        postings: by_value.into_iter().collect(),
    }
}

/// Encodes the index of one segment merged from `inputs`: each an index of the same account,
/// Region and date, with where each of its file rows went in the merged Parquet file, and
/// the eventID digest of each merged file row (see `table::merge`). Nothing is parsed
/// again: rows and posting lists are renumbered.
pub(super) fn merge(inputs: &[(&SegmentMeta, &SegmentIndex, &[u32])], digests: Vec<IdDigest>) -> Vec<u8> {
    // Every input row, in Event History order of the merged segment.
    let mut rows: Vec<(EventKey, u32, u32)> = Vec::new();
    for (input, (_, index, _)) in inputs.iter().enumerate() {
        rows.extend((0..index.row_count()).map(|row| (index.key(row), input as u32, row)));
    }
    rows.sort_unstable();
    let mut new_rows: Vec<Vec<u32>> = inputs.iter().map(|(_, index, _)| vec![0; index.row_count() as usize]).collect();
    let mut file_order = vec![0u32; rows.len()];
    for (new_row, &(_, input, row)) in rows.iter().enumerate() {
        let (_, index, file_rows) = &inputs[input as usize];
        new_rows[input as usize][row as usize] = new_row as u32;
        file_order[file_rows[index.file_row(row) as usize] as usize] = new_row as u32;
    }
    let mut by_value: crate::HashMap<(u8, &str), Vec<u32>> = crate::HashMap::default();
    for ((_, index, _), new_rows) in inputs.iter().zip(&new_rows) {
        let dictionary = &index.dictionary;
        for number in 0..dictionary.entries.len() {
            let postings = by_value.entry((dictionary.entries[number].key, dictionary.value(number))).or_default();
            let list = dictionary.postings_of(number);
            let mut cursor = list.below(number, u32::MAX);
            while let Some(row) = cursor.next(list.bytes) {
                postings.push(new_rows[row as usize]);
            }
        }
    }
    for postings in by_value.values_mut() {
        postings.sort_unstable();
    }
    let first = inputs.first().map(|(meta, _, _)| *meta);
    let row = |&(_, input, row): &(EventKey, u32, u32)| (inputs[input as usize].1, row);
    IndexParts {
        account_id: first.map_or("", |meta| meta.account_id.as_str()),
        region: first.map_or("", |meta| meta.region.as_str()),
        date: first.map_or_else(String::new, |meta| meta.date.clone()),
        max_ingest_ms: inputs.iter().map(|(meta, _, _)| meta.max_ingest_ms).max().unwrap_or(0),
        keys: rows.iter().map(|&(key, _, _)| key).collect(),
        categories: rows.iter().map(row).map(|(index, row)| index.categories[row as usize]).collect(),
        id_digests: digests,
        file_order: &file_order,
        postings: by_value.into_iter().collect(),
    }
    .encode(VERSION)
}

/// What an index file holds, before encoding: rows in [`EventKey`] order.
struct IndexParts<'a> {
    account_id: &'a str,
    region: &'a str,
    date: String,
    max_ingest_ms: i64,
    keys: Vec<EventKey>,
    categories: Vec<u8>,
    /// The eventID digest of each row of the Parquet file, in file order.
    id_digests: Vec<IdDigest>,
    /// The rows in the order the Parquet file holds them.
    file_order: &'a [u32],
    /// Each (key tag, value) of the Event History rows with its rows, ascending.
    postings: Vec<((u8, &'a str), Vec<u32>)>,
}

impl IndexParts<'_> {
    /// The file in `version`: [`VERSION`], or an older one for tests.
    fn encode(mut self, version: u32) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.keys.len() * 24);
        put_str(&mut body, self.account_id);
        put_str(&mut body, self.region);
        put_str(&mut body, &self.date);
        body.extend_from_slice(&self.max_ingest_ms.to_le_bytes());
        put_varint(&mut body, self.keys.len() as u64);

        let mut previous_time = self.keys.first().map_or(0, |key| key.time_ms);
        body.extend_from_slice(&previous_time.to_le_bytes());
        for key in self.keys.iter().skip(1) {
            put_varint(&mut body, key.time_ms.abs_diff(previous_time));
            previous_time = key.time_ms;
        }
        let mut previous_seq = self.keys.first().map_or(0, |key| key.seq);
        body.extend_from_slice(&previous_seq.to_le_bytes());
        for key in self.keys.iter().skip(1) {
            put_varint(&mut body, zigzag(key.seq.wrapping_sub(previous_seq) as i64));
            previous_seq = key.seq;
        }
        body.extend_from_slice(&self.categories);
        let mut ids = Vec::new();
        if version == VERSION {
            let mut by_hash: Vec<(IdDigest, u32)> =
                self.id_digests.iter().enumerate().map(|(file_row, &digest)| (digest, file_row as u32)).collect();
            by_hash.sort_unstable();
            let mut previous_hash = 0;
            let entry_len = id_entry_len(by_hash.len());
            ids.reserve(by_hash.len() * entry_len);
            for (digest, file_row) in by_hash {
                put_varint(&mut body, u64::from(digest.hash() - previous_hash));
                previous_hash = digest.hash();
                ids.push(digest.check());
                ids.extend_from_slice(&file_row.to_le_bytes()[..entry_len - 1]);
            }
        } else {
            let mut in_row_order = vec![0u32; self.file_order.len()];
            for (&row, digest) in self.file_order.iter().zip(&self.id_digests) {
                in_row_order[row as usize] = digest.hash();
            }
            for hash in in_row_order {
                body.extend_from_slice(&hash.to_le_bytes());
            }
        }
        if version != VERSION_IN_INDEX_ORDER {
            let mut previous_row = 0u32;
            for &row in self.file_order {
                put_varint(&mut body, zigzag(i64::from(row) - i64::from(previous_row)));
                previous_row = row;
            }
        }

        // &str orders by its bytes: the order loading checks and lookups search. The
        // postings are written descending.
        self.postings.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        put_varint(&mut body, self.postings.len() as u64);
        let mut encoded = Vec::new();
        for ((tag, value), rows) in &self.postings {
            body.push(*tag);
            put_str(&mut body, value);
            encoded.clear();
            let mut previous = None;
            for &row in rows.iter().rev() {
                match previous {
                    None => put_varint(&mut encoded, u64::from(row)),
                    Some(previous) => put_varint(&mut encoded, u64::from(previous - row - 1)),
                }
                previous = Some(row);
            }
            put_varint(&mut body, rows.len() as u64);
            put_varint(&mut body, encoded.len() as u64);
            body.extend_from_slice(&encoded);
        }

        frame(version, &body, &ids)
    }
}

/// An index file of `version` around a body and (version 3) an ids section: the header,
/// the compressed body, the section and the checksum over all of them.
pub(super) fn frame(version: u32, body: &[u8], ids: &[u8]) -> Vec<u8> {
    // Compressing a buffer in memory cannot fail; an empty body would be refused on load.
    let compressed = zstd::bulk::compress(body, ZSTD_LEVEL).unwrap_or_default();
    let mut file = Vec::with_capacity(HEADER_LEN + compressed.len() + ids.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&version.to_le_bytes());
    file.extend_from_slice(&[0; 4]);
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
    file.extend_from_slice(&compressed);
    file.extend_from_slice(ids);
    let crc = crc32c::crc32c(&file[16..]);
    file[12..16].copy_from_slice(&crc.to_le_bytes());
    file
}

/// Reads and checks an index file. The returned meta is named by its span and has no
/// `parquet_bytes` or `zstd_level`: the caller fills them in from the file names and the
/// Parquet file.
pub(super) fn load(path: &Path) -> Result<(SegmentMeta, SegmentIndex, StoredIds), StoreError> {
    let file = fs::read(path).map_err(StoreError::io(path))?;
    let corrupt = |offset: usize, detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        what: "segment index",
        detail,
    };
    if file.len() < HEADER_LEN {
        return Err(corrupt(file.len(), format!("file is {} bytes, shorter than its header", file.len())));
    }
    if file[..8] != MAGIC {
        return Err(corrupt(0, "bad magic".to_owned()));
    }
    let version = u32::from_le_bytes([file[8], file[9], file[10], file[11]]);
    if !(VERSION_IN_INDEX_ORDER..=VERSION).contains(&version) {
        return Err(corrupt(8, format!("unsupported version {version}")));
    }
    let stored_crc = u32::from_le_bytes([file[12], file[13], file[14], file[15]]);
    let actual_crc = crc32c::crc32c(&file[16..]);
    if stored_crc != actual_crc {
        return Err(corrupt(12, format!("checksum mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}")));
    }
    let raw_len = u64::from_le_bytes(file[16..24].try_into().unwrap_or_default());
    let compressed_len = u64::from_le_bytes(file[24..32].try_into().unwrap_or_default());
    let after_header = (file.len() - HEADER_LEN) as u64;
    // Only version 3 has an ids section after the body.
    if compressed_len > after_header || (version < VERSION && compressed_len != after_header) {
        return Err(corrupt(24, format!("body length {compressed_len} does not match the file")));
    }
    let ids_offset = HEADER_LEN + compressed_len as usize;
    if raw_len > compressed_len.saturating_mul(MAX_EXPANSION) {
        return Err(corrupt(16, format!("implausible body length {raw_len}")));
    }
    let body = zstd::bulk::decompress(&file[HEADER_LEN..ids_offset], raw_len as usize)
        .map_err(|error| corrupt(HEADER_LEN, format!("cannot decompress the body: {error}")))?;
    if body.len() as u64 != raw_len {
        return Err(corrupt(HEADER_LEN, format!("body is {} bytes, header says {raw_len}", body.len())));
    }
    let mut reader = BodyReader { bytes: &body, position: 0, path: path.to_path_buf() };
    let (meta, index, ids) = decode_body(&mut reader, version, file.len() as u64, ids_offset as u64)?;
    if let StoredIds::Sorted { sorted_hashes, .. } = &ids {
        let entry_len = id_entry_len(sorted_hashes.len());
        check_ids_section(&file[ids_offset..], sorted_hashes.len(), entry_len)
            .map_err(|(at, detail)| corrupt(ids_offset + at, detail))?;
    }
    Ok((meta, index, ids))
}

/// The eventID hashes as an index file holds them.
pub(super) enum StoredIds {
    /// Version 3: sorted, paired with file rows by the ids section at `ids_offset` of the
    /// file (checked on load).
    Sorted { sorted_hashes: Vec<u32>, ids_offset: u64 },
    /// Versions 1 and 2: one per row, in row order.
    PerRow(Vec<u32>),
}

impl StoredIds {
    /// What an open segment keeps to find eventIDs, given the index loaded with them. Only
    /// opening a segment asks for it: a lookup that loads the index again drops the hashes.
    pub(super) fn into_lookup(self, index: &SegmentIndex) -> IdLookup {
        match self {
            StoredIds::Sorted { sorted_hashes, ids_offset } => {
                let entry_len = id_entry_len(sorted_hashes.len());
                IdLookup { sorted_hashes, rows: IdRows::InFile { offset: ids_offset, entry_len } }
            }
            StoredIds::PerRow(hashes) => {
                let mut by_hash: Vec<(u32, u32)> =
                    hashes.into_iter().enumerate().map(|(row, hash)| (hash, index.file_row(row as u32))).collect();
                by_hash.sort_unstable();
                let (sorted_hashes, rows) = by_hash.into_iter().unzip::<_, _, Vec<u32>, Vec<u32>>();
                IdLookup { sorted_hashes, rows: IdRows::Resident(rows.into_boxed_slice()) }
            }
        }
    }
}

/// Checks that an ids section holds one entry per row and names every file row once;
/// an error is the offset in the section and what is wrong there.
fn check_ids_section(section: &[u8], row_count: usize, entry_len: usize) -> Result<(), (usize, String)> {
    if section.len() != row_count * entry_len {
        return Err((
            0,
            format!("ids section is {} bytes, not {} for {row_count} rows", section.len(), row_count * entry_len),
        ));
    }
    let mut seen = vec![false; row_count];
    for (place, entry) in section.chunks_exact(entry_len).enumerate() {
        let row = entry_row(entry) as usize;
        match seen.get_mut(row) {
            Some(seen) if !*seen => *seen = true,
            Some(_) => return Err((place * entry_len, format!("ids section names file row {row} twice"))),
            None => return Err((place * entry_len, format!("ids section names file row {row} of {row_count}"))),
        }
    }
    Ok(())
}

fn decode_body(
    reader: &mut BodyReader<'_>,
    version: u32,
    file_len: u64,
    ids_offset: u64,
) -> Result<(SegmentMeta, SegmentIndex, StoredIds), StoreError> {
    let account_id = reader.string()?.to_owned();
    let region = reader.string()?.to_owned();
    let date = reader.string()?.to_owned();
    let max_ingest_ms = reader.i64()?;
    let row_count = reader.varint()?;
    let row_count = u32::try_from(row_count)
        .ok()
        .filter(|&count| count > 0 && count as usize <= reader.remaining())
        .ok_or_else(|| reader.corrupt(format!("implausible row count {row_count}")))?;
    let rows = row_count as usize;

    let first_time_ms = reader.i64()?;
    let mut time_offsets = Vec::with_capacity(rows);
    time_offsets.push(0);
    let mut offset: u32 = 0;
    for _ in 1..rows {
        let gap = reader.varint()?;
        offset = u32::try_from(gap)
            .ok()
            .and_then(|gap| offset.checked_add(gap))
            .ok_or_else(|| reader.corrupt("event times span more than one segment can".to_owned()))?;
        time_offsets.push(offset);
    }
    let last_time_ms = first_time_ms + i64::from(offset);
    if format_date(first_time_ms) != date || format_date(last_time_ms) != date {
        return Err(reader.corrupt(format!("event times fall outside the segment's date {date}")));
    }

    let mut seqs = Vec::with_capacity(rows);
    let mut seq = reader.u64()?;
    seqs.push(seq);
    for row in 1..rows {
        let delta = unzigzag(reader.varint()?);
        seq = seq.checked_add_signed(delta).ok_or_else(|| reader.corrupt(format!("seq of row {row} overflows")))?;
        if time_offsets[row] == time_offsets[row - 1] && seq <= seqs[row - 1] {
            return Err(reader.corrupt(format!("row {row} is out of event history order")));
        }
        seqs.push(seq);
    }
    let min_seq = seqs.iter().copied().min().unwrap_or(0);
    let max_seq = seqs.iter().copied().max().unwrap_or(0);
    let seqs = match u32::try_from(max_seq - min_seq) {
        Ok(_) => Seqs::Narrow { base: min_seq, offsets: seqs.iter().map(|&seq| (seq - min_seq) as u32).collect() },
        Err(_) => Seqs::Wide(seqs),
    };

    let categories = reader.bytes(rows)?.to_vec();
    if let Some(position) = categories.iter().position(|&tag| Category::from_tag(tag).is_none()) {
        return Err(reader.corrupt(format!("row {position} has unknown category tag {}", categories[position])));
    }

    let ids = if version == VERSION {
        let mut sorted = Vec::with_capacity(rows);
        let mut hash = 0u32;
        for row in 0..rows {
            let gap = reader.varint()?;
            hash = u32::try_from(gap)
                .ok()
                .and_then(|gap| hash.checked_add(gap))
                .ok_or_else(|| reader.corrupt(format!("eventID hash {row} is past 32 bits")))?;
            sorted.push(hash);
        }
        StoredIds::Sorted { sorted_hashes: sorted, ids_offset }
    } else {
        StoredIds::PerRow(
            reader
                .bytes(rows * 4)?
                .chunks_exact(4)
                .map(|hash| u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]))
                .collect(),
        )
    };

    let file_rows = FileRows::new(if version == VERSION_IN_INDEX_ORDER {
        (0..row_count).collect()
    } else {
        decode_file_order(reader, row_count)?
    });

    let dictionary = decode_dictionary(reader, row_count)?;
    if reader.remaining() > 0 {
        return Err(reader.corrupt(format!("{} bytes follow the dictionary", reader.remaining())));
    }

    let meta = SegmentMeta {
        name: super::span(min_seq, max_seq),
        account_id,
        region,
        date,
        event_count: u64::from(row_count),
        min_time_ms: first_time_ms,
        max_time_ms: last_time_ms,
        min_seq,
        max_seq,
        max_ingest_ms,
        parquet_bytes: 0,
        index_bytes: file_len,
        zstd_level: None,
    };
    let index = SegmentIndex { first_time_ms, time_offsets, seqs, categories, file_rows, dictionary };
    Ok((meta, index, ids))
}

/// Reads the file order and returns its inverse, each row's place in the file, checking
/// that every row is placed exactly once.
fn decode_file_order(reader: &mut BodyReader<'_>, row_count: u32) -> Result<Vec<u32>, StoreError> {
    let mut file_rows = vec![u32::MAX; row_count as usize];
    let mut row = 0i64;
    for file_row in 0..row_count {
        row = row
            .checked_add(unzigzag(reader.varint()?))
            .filter(|row| (0..i64::from(row_count)).contains(row))
            .ok_or_else(|| reader.corrupt(format!("file row {file_row} names a row outside the segment")))?;
        let slot = &mut file_rows[row as usize];
        if *slot != u32::MAX {
            return Err(reader.corrupt(format!("row {row} is in the file twice")));
        }
        *slot = file_row;
    }
    Ok(file_rows)
}

fn decode_dictionary(reader: &mut BodyReader<'_>, row_count: u32) -> Result<Dictionary, StoreError> {
    let entry_count = reader.varint()?;
    if entry_count > reader.remaining() as u64 || entry_count >= u64::from(u32::MAX) {
        return Err(reader.corrupt(format!("implausible dictionary size {entry_count}")));
    }
    let mut dictionary = Dictionary {
        entries: Vec::with_capacity(entry_count as usize),
        values: String::new(),
        postings: Vec::new(),
        skips: Vec::new(),
        slots: Vec::new(),
    };
    // Offsets into the buffers are kept as u32; the body is far smaller than 4 GiB, but a
    // damaged file must not wrap them.
    let offset = |length: usize, reader: &BodyReader<'_>| {
        u32::try_from(length).map_err(|_| reader.corrupt("dictionary is larger than 4 GiB".to_owned()))
    };
    let mut previous: Option<(u8, usize)> = None;
    for _ in 0..entry_count {
        let key = reader.u8()?;
        if LookupKey::from_tag(key).is_none_or(|key| key == LookupKey::EventId) {
            return Err(reader.corrupt(format!("dictionary entry has unexpected key tag {key}")));
        }
        let value = reader.string()?;
        if let Some((previous_key, start)) = previous
            && (previous_key, &dictionary.values.as_bytes()[start..]) >= (key, value.as_bytes())
        {
            return Err(reader.corrupt("dictionary entries are not in order".to_owned()));
        }
        let value_start = dictionary.values.len();
        dictionary.values.push_str(value);
        previous = Some((key, value_start));

        let count = reader.varint()?;
        let byte_len = reader.varint()?;
        let count = u32::try_from(count)
            .ok()
            .filter(|&count| count > 0 && count <= row_count)
            .ok_or_else(|| reader.corrupt(format!("implausible posting count {count}")))?;
        let byte_len = usize::try_from(byte_len).unwrap_or(usize::MAX);
        let bytes_offset = reader.position;
        let bytes = reader.bytes(byte_len)?;
        let skips_start = dictionary.skips.len();
        check_postings(bytes, count, row_count, &mut dictionary.skips).map_err(|detail| StoreError::Corrupt {
            path: reader.path.clone(),
            offset: bytes_offset as u64,
            what: "segment index",
            detail,
        })?;
        let postings_start = dictionary.postings.len();
        dictionary.postings.extend_from_slice(bytes);
        dictionary.entries.push(DictionaryEntry {
            key,
            value_start: offset(value_start, reader)?,
            postings_start: offset(postings_start, reader)?,
            count,
            skips_start: offset(skips_start, reader)?,
        });
    }
    offset(dictionary.values.len().max(dictionary.postings.len()).max(dictionary.skips.len()), reader)?;
    dictionary.entries.shrink_to_fit();
    dictionary.values.shrink_to_fit();
    dictionary.postings.shrink_to_fit();
    dictionary.skips.shrink_to_fit();
    dictionary.build_slots();
    Ok(dictionary)
}

/// Checks that a posting list holds exactly `count` strictly descending rows below
/// `row_count` in exactly its bytes, and records its skip entries.
fn check_postings(bytes: &[u8], count: u32, row_count: u32, skips: &mut Vec<Skip>) -> Result<(), String> {
    let mut position = 0;
    let mut previous: Option<u32> = None;
    for index in 0..count {
        let value = read_varint(bytes, &mut position).ok_or("truncated posting list")?;
        let row = match previous {
            None => u32::try_from(value).ok().filter(|&row| row < row_count),
            Some(previous) => u32::try_from(value).ok().and_then(|gap| previous.checked_sub(gap)?.checked_sub(1)),
        }
        .ok_or_else(|| format!("posting {index} is out of range"))?;
        if index % SKIP_INTERVAL == 0 && index > 0 {
            skips.push(Skip { row, next_byte: position as u32, remaining: count - index - 1 });
        }
        previous = Some(row);
    }
    if position != bytes.len() {
        return Err(format!("{} bytes follow the last posting", bytes.len() - position));
    }
    Ok(())
}

/// Reads the decompressed body, turning every shortfall into [`StoreError::Corrupt`].
struct BodyReader<'a> {
    bytes: &'a [u8],
    position: usize,
    path: PathBuf,
}

impl<'a> BodyReader<'a> {
    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), offset: self.position as u64, what: "segment index", detail }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if len > self.remaining() {
            return Err(self.corrupt(format!("body ends {len} bytes early")));
        }
        let slice = &self.bytes[self.position..self.position + len];
        self.position += len;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.bytes(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let bytes = self.bytes(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(self.u64()? as i64)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        read_varint(self.bytes, &mut self.position).ok_or_else(|| self.corrupt("bad varint".to_owned()))
    }

    fn string(&mut self) -> Result<&'a str, StoreError> {
        let len = self.varint()?;
        let bytes = self.bytes(usize::try_from(len).unwrap_or(usize::MAX))?;
        std::str::from_utf8(bytes).map_err(|_| self.corrupt("string is not UTF-8".to_owned()))
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes a LEB128 varint at `*position`, advancing it; `None` if truncated or too long.
fn read_varint(bytes: &[u8], position: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*position)?;
        *position += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::{FileRows, entry_row, id_entry_len};

    #[test]
    fn ids_entries_take_as_few_row_bytes_as_the_row_count_needs() {
        for (rows, len) in [(1, 3), (65_536, 3), (65_537, 4), (16_777_216, 4), (16_777_217, 5), (u32::MAX as usize, 5)]
        {
            assert_eq!(id_entry_len(rows), len, "{rows} rows");
        }
        assert_eq!(entry_row(&[0xaa, 0xff, 0xff]), 65_535);
        assert_eq!(entry_row(&[0xaa, 0x00, 0x00, 0x01]), 65_536);
        assert_eq!(entry_row(&[0xaa, 0xff, 0xff, 0xff, 0xff]), u32::MAX);
    }

    #[test]
    fn file_rows_take_two_bytes_up_to_65536_rows_and_four_past() {
        let narrow = FileRows::new(vec![65_535, 0, 7]);
        assert!(matches!(narrow, FileRows::Narrow(_)));
        let wide = FileRows::new(vec![3, 65_536, 0]);
        assert!(matches!(wide, FileRows::Wide(_)));
        assert_eq!((0..3).map(|row| narrow.get(row)).collect::<Vec<_>>(), [65_535, 0, 7]);
        assert_eq!((0..3).map(|row| wide.get(row)).collect::<Vec<_>>(), [3, 65_536, 0]);
    }
}
