//! [`EventLog`]: the journal, the hot tables and the sealed segments as one store.
//!
//! Two threads own the moving parts. The writer takes append requests from a bounded
//! queue, drops duplicates, writes one journal frame per request and syncs once per
//! round (group commit), publishes the events to the active hot table, and only then
//! acknowledges. When the active table is large or old enough it is frozen and the
//! journal moves to a new file. The sealer writes each frozen table out as segments,
//! records them in the manifest, and deletes the journal files they came from.
//!
//! Readers take the state lock for reading only long enough to collect candidates; the
//! writer and sealer take it for writing only to swap tables and segment lists.

use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use trailkeeper_core::record::{RecordDefaults, parse_record};
use trailkeeper_core::{LookupKey, ParsedRecord};

use crate::compaction::{self, SegmentSize};
use crate::error::{ErrorKind, StoreError};
use crate::expired;
use crate::fsutil;
use crate::hash_filter::HashFilter;
use crate::hot::{HotTable, IdHash, ScanBounds};
use crate::journal::{self, JournalEntry, JournalWriter};
use crate::segment::{
    CacheStats, EventCache, IndexCache, PageCache, SEALED_ZSTD_LEVEL, Segment, SegmentMeta, event_id_hash,
    merge_segments, write_segment_cached,
};
use crate::{EventKey, HashMap, HashSet, StoredEvent, day_of};

/// How the log batches, seals and pushes back. Defaults suit one machine.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Freeze the active hot table once it holds this many bytes.
    pub seal_after_bytes: usize,
    /// Freeze the active hot table once its oldest event is this old.
    pub seal_after: Duration,
    /// Refuse appends (overload) while more than this many bytes wait for the writer.
    pub max_pending_bytes: usize,
    /// Refuse appends while this many frozen tables wait for the sealer.
    pub max_frozen_tables: usize,
    /// How long [`EventLog::append_waiting`] waits for the writer or the sealer to make room
    /// before it refuses. A seal of a full table takes a second or two under load; a
    /// caller that waits through one keeps the machine busy, where one that is refused
    /// backs off and leaves the CPU idle while the sealer catches up.
    pub max_append_wait: Duration,
    /// `fdatasync` every journal write. Only tests that measure nothing turn this off.
    pub sync: bool,
    /// Bytes of decoded segment pages kept for lookups (0 disables the cache).
    pub page_cache_bytes: usize,
    /// Bytes of records that lookups read, kept whole (0 disables the cache).
    pub event_cache_bytes: usize,
    /// Bytes of segment indexes kept in memory for lookups (0: each lookup reads the
    /// indexes it needs from disk).
    pub index_cache_bytes: usize,
    /// Merge small sealed segments in the background ([`crate::compaction`]).
    pub compact: bool,
    /// How long a partition must go without a new segment before what is left of its small
    /// segments is merged regardless of tiers.
    pub compact_settle: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            seal_after_bytes: 256 * 1024 * 1024,
            seal_after: Duration::from_secs(300),
            max_pending_bytes: 128 * 1024 * 1024,
            max_frozen_tables: 3,
            max_append_wait: Duration::from_secs(2),
            sync: true,
            page_cache_bytes: 128 * 1024 * 1024,
            event_cache_bytes: 256 * 1024 * 1024,
            index_cache_bytes: 512 * 1024 * 1024,
            compact: true,
            compact_settle: Duration::from_secs(120),
        }
    }
}

/// A record on its way into the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub record: ParsedRecord,
    pub ingest_time_ms: i64,
}

/// What became of one appended record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Stored {
        seq: u64,
    },
    /// The account already has an event with this eventID; nothing was written.
    Duplicate,
}

/// Whose events a query may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    Only(Vec<String>),
    All,
}

/// One event a history query returns.
#[derive(Debug, Clone)]
pub struct FoundEvent {
    pub key: EventKey,
    pub json: Bytes,
}

/// One event in log order, as consumers that follow the log (trails) read it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub seq: u64,
    pub event_time_ms: i64,
    /// Shared by the entries of one read that have the same account (Region): a batch
    /// holds the events of a few partitions, and a name per entry was two allocations per
    /// event for the followers.
    pub account_id: Arc<str>,
    pub region: Arc<str>,
    pub json: Bytes,
}

impl LogEntry {
    fn hot(event: &StoredEvent, (account_id, region): PartitionNames) -> LogEntry {
        LogEntry { seq: event.seq, event_time_ms: event.event_time_ms, account_id, region, json: event.json.clone() }
    }

    fn sealed(key: EventKey, (account_id, region): PartitionNames, json: Bytes) -> LogEntry {
        LogEntry { seq: key.seq, event_time_ms: key.time_ms, account_id, region, json }
    }
}

/// An account and Region as [`LogEntry`] holds them.
type PartitionNames = (Arc<str>, Arc<str>);

fn partition_names(account_id: &str, region: &str) -> PartitionNames {
    (Arc::from(account_id), Arc::from(region))
}

/// What [`EventLog::read_log`] found: every event with a log position in `(after, through]`.
/// Positions may have gaps (retention), so `through` is what the reader's cursor moves to.
#[derive(Debug, Clone, Default)]
pub struct LogRead {
    pub entries: Vec<LogEntry>,
    pub through: u64,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct LogStats {
    pub hot_events: usize,
    pub frozen_tables: usize,
    pub segments: usize,
    pub sealed_events: u64,
    pub sealed_bytes: u64,
    pub next_seq: u64,
    pub pending_bytes: usize,
    /// What the lookup caches hold now, and how often they answered.
    pub page_cache: CacheStats,
    pub event_cache: CacheStats,
    pub index_cache: CacheStats,
}

type Done = Box<dyn FnOnce(Result<Vec<AppendOutcome>, StoreError>) + Send>;

struct AppendRequest {
    events: Vec<NewEvent>,
    /// The events' journal payload, encoded and compressed on the caller's thread so that
    /// the single writer does as little as possible per event.
    payload: journal::Payload,
    done: Done,
}

fn payload_entry(event: &NewEvent) -> journal::PayloadEntry<'_> {
    journal::PayloadEntry {
        event_time_ms: event.record.event_time_ms,
        ingest_time_ms: event.ingest_time_ms,
        account_id: event.record.fields.account_id(),
        region: event.record.fields.region(),
        json: &event.record.json,
    }
}

#[derive(Default)]
struct Queue {
    requests: VecDeque<AppendRequest>,
    pending_bytes: usize,
    closing: bool,
}

#[derive(Default)]
struct State {
    active: HotTable,
    /// When the first event entered the active table.
    active_since: Option<Instant>,
    frozen: Vec<Arc<HotTable>>,
    segments: SegmentSet,
    sealed_through_seq: u64,
    next_seq: u64,
}

impl State {
    /// Whether the log already holds an event with this record's (account, eventID), whose
    /// hash in the hot tables is `hash`.
    fn contains(&self, record: &ParsedRecord, hash: IdHash) -> Result<bool, StoreError> {
        let (account_id, event_id) = (record.fields.account_id(), record.fields.event_id());
        if self.active.contains(hash, account_id, event_id)
            || self.frozen.iter().any(|table| table.contains(hash, account_id, event_id))
        {
            return Ok(true);
        }
        self.segments.contains(account_id, event_id, record.event_time_ms)
    }
}

/// The sealed segments, indexed two ways: by stream (account → Region) for lookups, newest
/// first, and by account and UTC day of event time for deduplication.
#[derive(Default)]
struct SegmentSet {
    by_stream: HashMap<String, HashMap<String, Vec<Arc<Segment>>>>,
    by_account_day: HashMap<String, HashMap<i64, DaySegments>>,
}

/// The segments of one account and day (any Region), with the event-ID hashes of all
/// their events in one filter: a new event costs one probe however many segments there
/// are, and only a "maybe" (a duplicate, or about 1 in 100 new IDs) searches the segments'
/// hashes.
#[derive(Default)]
struct DaySegments {
    segments: Vec<Arc<Segment>>,
    id_filter: HashFilter,
}

impl DaySegments {
    fn add(&mut self, segment: Arc<Segment>) {
        let hashes = segment.event_id_hashes();
        if !self.id_filter.has_room_for(hashes.len()) {
            self.id_filter = filter_with_room(&self.segments, hashes.len());
        }
        self.id_filter.insert_all(hashes);
        self.segments.push(segment);
    }

    /// The filter keeps the removed segment's hashes: they only cost a "maybe" now and
    /// then, while rebuilding it from the other segments' hashes would happen under the
    /// state lock. Retention drops old days whole, and an emptied day goes with its filter.
    fn remove(&mut self, removed: &Arc<Segment>) {
        self.segments.retain(|segment| !Arc::ptr_eq(segment, removed));
    }

    /// `merged` holds the events of `inputs`, so the filter already has its hashes.
    fn replace(&mut self, inputs: &[Arc<Segment>], merged: Arc<Segment>) {
        self.segments.retain(|segment| !inputs.iter().any(|input| Arc::ptr_eq(segment, input)));
        self.segments.push(merged);
    }
}

/// A filter of `segments`' hashes with room for `extra` more and as many again as it then
/// holds: rebuilding when full costs O(1) per hash overall.
fn filter_with_room(segments: &[Arc<Segment>], extra: usize) -> HashFilter {
    let count: usize = segments.iter().map(|segment| segment.event_id_hashes().len()).sum();
    HashFilter::with_hashes(2 * (count + extra), segments.iter().flat_map(|segment| segment.event_id_hashes()))
}

/// New segments about to be published, with new filters for the days they would overfill,
/// built beforehand: a day's filter holds millions of hashes, and rebuilding it under the
/// state lock would hold up every acknowledgement.
struct Publication {
    segments: Vec<Arc<Segment>>,
    filters: Vec<((String, i64), HashFilter)>,
}

/// The order of a stream's segments: descending by their newest event, which lets a
/// lookup stop at the first segment older than a full page.
fn newest_first(segment: &Arc<Segment>) -> std::cmp::Reverse<(i64, u64)> {
    std::cmp::Reverse((segment.meta().max_time_ms, segment.meta().max_seq))
}

impl SegmentSet {
    /// Prepares `segments` for [`SegmentSet::publish`]. Only manifest writers change the
    /// segment set, so while the caller holds the manifest lock, what this reads stays true.
    fn prepare(state: &RwLock<State>, segments: Vec<Arc<Segment>>) -> Publication {
        let mut new_by_day: BTreeMap<(String, i64), usize> = BTreeMap::new();
        for segment in &segments {
            let meta = segment.meta();
            *new_by_day.entry((meta.account_id.clone(), day_of(meta.min_time_ms))).or_default() +=
                segment.event_id_hashes().len();
        }
        let mut to_grow = Vec::new();
        {
            let state = state.read().unwrap_or_else(PoisonError::into_inner);
            for ((account_id, day), extra) in new_by_day {
                let existing = state.segments.by_account_day.get(&account_id).and_then(|days| days.get(&day));
                if existing.is_none_or(|existing| !existing.id_filter.has_room_for(extra)) {
                    let existing = existing.map(|existing| existing.segments.clone()).unwrap_or_default();
                    to_grow.push(((account_id, day), existing, extra));
                }
            }
        }
        let filters =
            to_grow.into_iter().map(|(day, existing, extra)| (day, filter_with_room(&existing, extra))).collect();
        Publication { segments, filters }
    }

    /// Installs the prepared filters, which then have room for the new segments' hashes.
    fn publish(&mut self, publication: Publication) {
        for ((account_id, day), filter) in publication.filters {
            self.by_account_day.entry(account_id).or_default().entry(day).or_default().id_filter = filter;
        }
        for segment in publication.segments {
            self.add(segment);
        }
    }

    fn add(&mut self, segment: Arc<Segment>) {
        let stream = self.stream_mut(segment.meta());
        stream.push(Arc::clone(&segment));
        stream.sort_by_key(newest_first);
        self.day_mut(segment.meta()).add(Arc::clone(&segment));
    }

    fn stream_mut(&mut self, meta: &SegmentMeta) -> &mut Vec<Arc<Segment>> {
        self.by_stream.entry(meta.account_id.clone()).or_default().entry(meta.region.clone()).or_default()
    }

    fn day_mut(&mut self, meta: &SegmentMeta) -> &mut DaySegments {
        self.by_account_day.entry(meta.account_id.clone()).or_default().entry(day_of(meta.min_time_ms)).or_default()
    }

    fn remove(&mut self, removed: &Arc<Segment>) {
        let meta = removed.meta();
        let keep = |segment: &Arc<Segment>| !Arc::ptr_eq(segment, removed);
        if let Some(list) = self.by_stream.get_mut(&meta.account_id).and_then(|regions| regions.get_mut(&meta.region)) {
            list.retain(keep);
        }
        if let Some(days) = self.by_account_day.get_mut(&meta.account_id) {
            let day = day_of(meta.min_time_ms);
            if let Some(segments) = days.get_mut(&day) {
                segments.remove(removed);
                if segments.segments.is_empty() {
                    days.remove(&day);
                }
            }
        }
    }

    /// Puts `merged` where `inputs` were: one stream, one day.
    fn replace(&mut self, inputs: &[Arc<Segment>], merged: Arc<Segment>) {
        let stream = self.stream_mut(merged.meta());
        stream.retain(|segment| !inputs.iter().any(|input| Arc::ptr_eq(segment, input)));
        stream.push(Arc::clone(&merged));
        stream.sort_by_key(newest_first);
        self.day_mut(merged.meta()).replace(inputs, Arc::clone(&merged));
    }

    /// The segments of one stream, newest first.
    fn stream(&self, account_id: &str, region: &str) -> &[Arc<Segment>] {
        self.by_stream.get(account_id).and_then(|regions| regions.get(region)).map_or(&[], Vec::as_slice)
    }

    fn accounts_in<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.by_stream
            .iter()
            .filter(move |(_, regions)| regions.contains_key(region))
            .map(|(account, _)| account.as_str())
    }

    /// An event ID names one event, and a retried record carries the same eventTime, so
    /// only the segments of the event's own date (in any Region) can hold a duplicate.
    fn contains(&self, account_id: &str, event_id: &str, event_time_ms: i64) -> Result<bool, StoreError> {
        let Some(day) = self.by_account_day.get(account_id).and_then(|days| days.get(&day_of(event_time_ms))) else {
            return Ok(false);
        };
        let hash = event_id_hash(event_id);
        if !day.id_filter.may_contain(hash) {
            return Ok(false);
        }
        for segment in &day.segments {
            if segment.may_hold_event_id(hash) && segment.contains_event_id(event_id)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The segments of an account (any day, any Region) whose index holds this eventID hash.
    fn with_event_id_hash(&self, account_id: &str, hash: u32) -> impl Iterator<Item = &Arc<Segment>> {
        self.by_account_day
            .get(account_id)
            .into_iter()
            .flat_map(|days| days.values())
            .filter(move |day| day.id_filter.may_contain(hash))
            .flat_map(|day| day.segments.iter())
            .filter(move |segment| segment.may_hold_event_id(hash))
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.by_stream.values().flat_map(HashMap::values).flatten()
    }
}

/// The manifest: which segments are sealed, and up to which sequence number the journal
/// is covered by them. Written whole to a temporary file and renamed into place.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    sealed_through_seq: u64,
    /// Parquet paths relative to the segments directory.
    segments: Vec<String>,
}

const MANIFEST_VERSION: u32 = 1;

struct Shared {
    root: PathBuf,
    options: LogOptions,
    state: RwLock<State>,
    queue: Mutex<Queue>,
    queue_ready: Condvar,
    /// Signalled, under the queue lock, when the writer takes the queued requests or the
    /// sealer retires a frozen table: what appends waiting for room wait on.
    room: Condvar,
    /// Serialises manifest rewrites between the sealer and retention.
    manifest_lock: Mutex<()>,
    pages: PageCache,
    events: EventCache,
    indexes: IndexCache,
    /// The positions of the readers that follow the log ([`EventLog::hold`]).
    holds: Mutex<Vec<Weak<AtomicU64>>>,
    /// Whether the journal's last write failed ([`EventLog::journal_failing`]).
    journal_failing: AtomicBool,
}

/// A reader's place in the log, which compaction respects: no segment holding a position
/// after it is merged. A merged segment groups its rows by caller across all of its log
/// positions, so reading it back in log order, a window of positions at a time, decodes
/// nearly a page per event (on a 2M-event store, 37k events/s against 175k from the
/// segments as sealed); a follower that fell behind (a trail whose bucket was unreachable)
/// catches up on the segments as they were sealed, and compaction merges them once it has
/// passed. Dropping the hold releases it.
#[derive(Debug)]
pub struct ReadHold {
    position: Arc<AtomicU64>,
}

impl ReadHold {
    /// Everything at or before `position` has been read for good: a restart of the reader
    /// starts after it.
    pub fn advance(&self, position: u64) {
        self.position.fetch_max(position, Ordering::Release);
    }
}

/// The event log. Cheap to clone; every clone is the same log.
#[derive(Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").field("root", &self.shared.root).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic: the data behind these
    // locks is left consistent at every await-free step.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventLog {
    /// Opens (or creates) the log under `root`: loads the sealed segments named in the
    /// manifest, deletes segment files a crash left unlisted, and replays the journal.
    pub fn open(root: &Path, options: LogOptions) -> Result<EventLog, StoreError> {
        keep_free_memory_while_busy();
        let journal_dir = root.join("journal");
        let segments_dir = root.join("segments");
        for dir in [root, &journal_dir, &segments_dir] {
            fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        }

        let manifest = read_manifest(root)?;
        let mut state = State { sealed_through_seq: manifest.sealed_through_seq, ..State::default() };
        let listed: HashSet<&str> = manifest.segments.iter().map(String::as_str).collect();
        // Every index is read here anyway (for the filters and the eventID hashes). Opened
        // oldest first, the cache keeps the newest: the first lookups after a restart, which
        // mostly ask for recent events, find their indexes loaded.
        let indexes = IndexCache::new(options.index_cache_bytes);
        let mut oldest_first: Vec<&String> = manifest.segments.iter().collect();
        oldest_first.sort_by_key(|relative| age_order(relative));
        for relative in oldest_first {
            let segment = Segment::open_cached(&segments_dir.join(relative), &indexes)?;
            state.segments.add(Arc::new(segment));
        }
        remove_unlisted_segments(&segments_dir, &listed)?;

        journal::remove_retired(&journal_dir)?;
        let mut replay_error = None;
        let report = journal::replay(&journal_dir, |entry| {
            if entry.seq <= manifest.sealed_through_seq || replay_error.is_some() {
                return;
            }
            match stored_event_from_journal(&entry) {
                Ok(event) => {
                    let hash = state.active.id_hash(event.account_id(), event.event_id());
                    state.active.insert(event, hash);
                }
                Err(detail) => replay_error = Some(detail),
            }
        })?;
        if let Some(detail) = replay_error {
            return Err(StoreError::Corrupt { path: journal_dir, offset: 0, what: "journal record", detail });
        }
        if !state.active.is_empty() {
            state.active_since = Some(Instant::now());
        }
        state.next_seq = report.last_seq.unwrap_or(0).max(manifest.sealed_through_seq) + 1;
        tracing::info!(
            segments = manifest.segments.len(),
            replayed_events = state.active.len(),
            torn_bytes = report.torn_bytes,
            next_seq = state.next_seq,
            "event log opened"
        );

        let writer = JournalWriter::create(&journal_dir, state.next_seq, options.sync)?;
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            state: RwLock::new(state),
            queue: Mutex::new(Queue::default()),
            queue_ready: Condvar::new(),
            room: Condvar::new(),
            manifest_lock: Mutex::new(()),
            pages: PageCache::new(options.page_cache_bytes),
            events: EventCache::new(options.event_cache_bytes),
            indexes,
            holds: Mutex::new(Vec::new()),
            journal_failing: AtomicBool::new(false),
            options,
        });
        let (seal_tx, seal_rx) = mpsc::channel();
        let (sealed_tx, sealed_rx) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let sealer_shared = Arc::clone(&shared);
        let compactor_shared = Arc::clone(&shared);
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.to_owned()).spawn(body).map_err(StoreError::io(root))
        };
        let mut threads = vec![
            spawn("tk-journal", Box::new(move || run_writer(&writer_shared, writer, &seal_tx)))?,
            spawn("tk-sealer", Box::new(move || run_sealer(&sealer_shared, &seal_rx, &sealed_tx)))?,
        ];
        if compactor_shared.options.compact {
            threads.push(spawn("tk-compactor", Box::new(move || run_compactor(&compactor_shared, &sealed_rx)))?);
        }
        Ok(EventLog { shared, threads: Arc::new(Mutex::new(threads)) })
    }

    /// Queues records for the writer. `done` runs on the writer thread once they are
    /// durable (or failed); it must not block. Refuses at once when the log is overloaded.
    pub fn append(
        &self,
        events: Vec<NewEvent>,
        done: impl FnOnce(Result<Vec<AppendOutcome>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.append_within(events, Duration::ZERO, done)
    }

    /// [`EventLog::append`] for callers that may block: when the log is overloaded it
    /// waits up to [`LogOptions::max_append_wait`] for room before it refuses.
    pub fn append_waiting(
        &self,
        events: Vec<NewEvent>,
        done: impl FnOnce(Result<Vec<AppendOutcome>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.append_within(events, self.shared.options.max_append_wait, done)
    }

    fn append_within(
        &self,
        events: Vec<NewEvent>,
        wait: Duration,
        done: impl FnOnce(Result<Vec<AppendOutcome>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let bytes: usize = events.iter().map(|event| event.record.json.len()).sum();
        let payload = journal::encode_payload(events.iter().map(payload_entry));
        let deadline = Instant::now() + wait;
        let mut queue = lock(&self.shared.queue);
        loop {
            if queue.closing {
                return Err(StoreError::Closed);
            }
            // The sealer changes `frozen` before it takes the queue lock to signal `room`,
            // so a change after this read wakes the wait below.
            let frozen = self.shared.state.read().unwrap_or_else(PoisonError::into_inner).frozen.len();
            let overloaded = queue.pending_bytes > 0
                && queue.pending_bytes + bytes > self.shared.options.max_pending_bytes
                || frozen >= self.shared.options.max_frozen_tables;
            if !overloaded {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Overloaded { pending_bytes: queue.pending_bytes });
            }
            queue = self.shared.room.wait_timeout(queue, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        queue.pending_bytes += bytes;
        queue.requests.push_back(AppendRequest { events, payload, done: Box::new(done) });
        drop(queue);
        self.shared.queue_ready.notify_one();
        Ok(())
    }

    /// Up to `limit` events of `region` matching `bounds`, newest first.
    pub fn lookup(
        &self,
        scope: &AccountScope,
        region: &str,
        bounds: &ScanBounds<'_>,
        limit: usize,
    ) -> Result<Vec<FoundEvent>, StoreError> {
        enum Source {
            Hot(Bytes),
            Sealed(Arc<Segment>, u32),
        }
        let mut best: BinaryHeap<std::cmp::Reverse<EventKey>> = BinaryHeap::new();
        let mut candidates: Vec<(EventKey, Source)> = Vec::new();
        let offer = |key: EventKey, best: &mut BinaryHeap<std::cmp::Reverse<EventKey>>| -> bool {
            if best.len() < limit {
                best.push(std::cmp::Reverse(key));
                true
            } else if best.peek().is_some_and(|worst| key > worst.0) {
                best.pop();
                best.push(std::cmp::Reverse(key));
                true
            } else {
                false
            }
        };

        // Each account's segments that overlap the bounds, newest first.
        let mut streams: Vec<Vec<Arc<Segment>>> = Vec::new();
        {
            let state = self.shared.state.read().unwrap_or_else(PoisonError::into_inner);
            let accounts: Vec<String> = match scope {
                AccountScope::Only(accounts) => accounts.clone(),
                AccountScope::All => {
                    let mut all: Vec<String> = state.segments.accounts_in(region).map(str::to_owned).collect();
                    for table in std::iter::once(&state.active).chain(state.frozen.iter().map(|t| &**t)) {
                        all.extend(table.accounts_in(region).map(str::to_owned));
                    }
                    all.sort();
                    all.dedup();
                    all
                }
            };
            for account in &accounts {
                for table in std::iter::once(&state.active).chain(state.frozen.iter().map(|t| &**t)) {
                    for event in table.scan(account, region, bounds, limit) {
                        if offer(event.key(), &mut best) {
                            candidates.push((event.key(), Source::Hot(event.json.clone())));
                        }
                    }
                }
                let overlaps = |segment: &&Arc<Segment>| {
                    let meta = segment.meta();
                    bounds.start_ms.is_none_or(|start| meta.max_time_ms >= start)
                        && bounds.end_ms.is_none_or(|end| meta.min_time_ms <= end)
                };
                let mut segments: Vec<Arc<Segment>> = match bounds.attribute {
                    // Only the segments whose index holds the ID's hash, found through the
                    // per-(account, day) filters, instead of a probe into every segment.
                    Some((LookupKey::EventId, event_id)) => state
                        .segments
                        .with_event_id_hash(account, event_id_hash(event_id))
                        .filter(|segment| segment.meta().region == region)
                        .filter(overlaps)
                        .cloned()
                        .collect(),
                    _ => state.segments.stream(account, region).iter().filter(overlaps).cloned().collect(),
                };
                segments.sort_by_key(newest_first);
                streams.push(segments);
            }
        }

        // Segments are read outside the state lock: a scan may load an index from disk,
        // and the writer waits for that lock to publish.
        for stream in &streams {
            for segment in stream {
                // Segments are in descending order of their newest event: once the page is
                // full of newer events, no older segment of the stream can contribute.
                if best.len() >= limit && best.peek().is_some_and(|worst| segment.meta().max_time_ms < worst.0.time_ms)
                {
                    break;
                }
                let scan = segment.scan(
                    &self.shared.indexes,
                    bounds.kind,
                    bounds.attribute,
                    bounds.start_ms,
                    bounds.end_ms,
                    bounds.before,
                )?;
                for row in scan.take(limit) {
                    if !offer(row.key, &mut best) {
                        break;
                    }
                    candidates.push((row.key, Source::Sealed(Arc::clone(segment), row.row)));
                }
            }
        }

        candidates.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
        candidates.truncate(limit);
        let mut found: Vec<Option<FoundEvent>> = Vec::with_capacity(candidates.len());
        // Rows to read per segment, each with its position in the page.
        type SegmentReads = Vec<(Arc<Segment>, Vec<(usize, u32)>)>;
        let mut reads: SegmentReads = Vec::new();
        for (position, (key, source)) in candidates.into_iter().enumerate() {
            match source {
                Source::Hot(json) => found.push(Some(FoundEvent { key, json })),
                Source::Sealed(segment, row) => {
                    found.push(Some(FoundEvent { key, json: Bytes::new() }));
                    match reads.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &segment)) {
                        Some((_, rows)) => rows.push((position, row)),
                        None => reads.push((segment, vec![(position, row)])),
                    }
                }
            }
        }
        for (segment, rows) in reads {
            let rows_asked: Vec<u32> = rows.iter().map(|(_, row)| *row).collect();
            let texts = segment.read_events(&rows_asked, &self.shared.pages, &self.shared.events)?;
            for ((position, _), json) in rows.into_iter().zip(texts) {
                if let Some(Some(event)) = found.get_mut(position) {
                    event.json = json;
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Whether the journal's last write failed (a full disk, an I/O error): until a write
    /// succeeds, every append fails. A caller that answers before its append is durable
    /// waits for the append while this holds, so that it fails too.
    pub fn journal_failing(&self) -> bool {
        self.shared.journal_failing.load(Ordering::Acquire)
    }

    /// The log position of the newest acknowledged event (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.shared.state.read().unwrap_or_else(PoisonError::into_inner).next_seq.saturating_sub(1)
    }

    /// The event of `account_id` with this eventID, in any Region and of any category, as
    /// the log holds it: from memory if it is not sealed yet, else from its segment.
    pub fn find_event(&self, account_id: &str, event_id: &str) -> Result<Option<LogEntry>, StoreError> {
        let hash = event_id_hash(event_id);
        let candidates: Vec<Arc<Segment>> = {
            let state = self.shared.state.read().unwrap_or_else(PoisonError::into_inner);
            for table in std::iter::once(&state.active).chain(state.frozen.iter().map(|table| &**table)) {
                if let Some(event) = table.find(account_id, event_id) {
                    return Ok(Some(LogEntry::hot(event, partition_names(event.account_id(), event.region()))));
                }
            }
            state.segments.with_event_id_hash(account_id, hash).cloned().collect()
        };
        for segment in candidates {
            if let Some((row, key)) = segment.find_event_id(event_id, &self.shared.indexes)? {
                let json = segment
                    .read_events(&[row], &self.shared.pages, &self.shared.events)?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let meta = segment.meta();
                return Ok(Some(LogEntry::sealed(key, partition_names(&meta.account_id, &meta.region), json)));
            }
        }
        Ok(None)
    }

    /// Holds the log for a reader that has read everything at or before `position`; see
    /// [`ReadHold`].
    pub fn hold(&self, position: u64) -> ReadHold {
        let position = Arc::new(AtomicU64::new(position));
        let mut holds = lock(&self.shared.holds);
        holds.retain(|hold| hold.strong_count() > 0);
        holds.push(Arc::downgrade(&position));
        ReadHold { position }
    }

    /// Events in log order after position `after`: at most `limit` positions' worth, never
    /// past the newest acknowledged event. Recent events come from memory; a reader that
    /// fell behind sealing reads them back from the segments.
    pub fn read_log(&self, after: u64, limit: usize) -> Result<LogRead, StoreError> {
        let limit = limit.max(1) as u64;
        // Only references are taken under the state lock: the writer waits for it to
        // publish, so copying entries or scanning segments here would hold up every
        // acknowledgement (and the followers that call this run at a lower priority).
        let mut hot: Vec<Arc<StoredEvent>> = Vec::new();
        let mut sealed: Vec<Arc<Segment>> = Vec::new();
        let (through, sealed_through);
        {
            let state = self.shared.state.read().unwrap_or_else(PoisonError::into_inner);
            let last = state.next_seq.saturating_sub(1);
            through = last.min(after.saturating_add(limit));
            sealed_through = through.min(state.sealed_through_seq);
            if after < state.sealed_through_seq {
                sealed.extend(
                    state
                        .segments
                        .all()
                        .filter(|segment| segment.meta().max_seq > after && segment.meta().min_seq <= sealed_through)
                        .cloned(),
                );
            }
            // Frozen tables are older than the active one; each holds its events in log order.
            for table in state.frozen.iter().map(|table| &**table).chain(std::iter::once(&state.active)) {
                let events = table.events();
                let start = events.partition_point(|event| event.seq <= after);
                let end = start + events[start..].partition_point(|event| event.seq <= through);
                hot.extend_from_slice(&events[start..end]);
            }
        }
        let mut names: crate::HashMap<(&str, &str), PartitionNames> = crate::HashMap::default();
        let mut entries: Vec<LogEntry> = hot
            .iter()
            .map(|event| {
                let names = names
                    .entry((event.account_id(), event.region()))
                    .or_insert_with(|| partition_names(event.account_id(), event.region()));
                LogEntry::hot(event, names.clone())
            })
            .collect();
        for segment in sealed {
            let rows = segment.rows_in_seq_range(after, sealed_through, &self.shared.indexes)?;
            if rows.is_empty() {
                continue;
            }
            let row_numbers: Vec<u32> = rows.iter().map(|&(_, row)| row).collect();
            let texts = segment.read_json(&row_numbers, &self.shared.pages)?;
            let names = partition_names(&segment.meta().account_id, &segment.meta().region);
            entries.extend(rows.iter().zip(texts).map(|(&(key, _), json)| LogEntry::sealed(key, names.clone(), json)));
        }
        entries.sort_unstable_by_key(|entry| entry.seq);
        entries.dedup_by_key(|entry| entry.seq);
        Ok(LogRead { entries, through: through.max(after) })
    }

    /// Drops every sealed segment whose newest event was recorded before `cutoff_ms`
    /// (retention). Returns what was dropped, so that the caller can record it.
    pub fn expire(&self, cutoff_ms: i64) -> Result<Vec<SegmentMeta>, StoreError> {
        // As in sealing: the manifest lock keeps the segment set still while the manifest
        // is written, and the state lock is held only to drop the segments from view.
        let _manifest = lock(&self.shared.manifest_lock);
        let (expired, kept, sealed_through_seq): (Vec<Arc<Segment>>, Vec<Arc<Segment>>, u64) = {
            let state = self.shared.state.read().unwrap_or_else(PoisonError::into_inner);
            let (expired, kept) =
                state.segments.all().cloned().partition(|segment| segment.meta().max_ingest_ms < cutoff_ms);
            (expired, kept, state.sealed_through_seq)
        };
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        // Recorded before the manifest drops them, so that a segment is never gone without
        // a durable note that retention took it (verifiers tell expiry from tampering by it).
        let metas: Vec<SegmentMeta> = expired.iter().map(|segment| segment.meta().clone()).collect();
        expired::record(&self.shared.root, &metas, cutoff_ms)?;
        write_manifest(&self.shared.root, sealed_through_seq, kept.iter())?;
        {
            let mut state = self.shared.state.write().unwrap_or_else(PoisonError::into_inner);
            for segment in &expired {
                state.segments.remove(segment);
            }
        }
        // The files go when the last Arc does: here, or when a lookup that took the
        // segment before it was dropped finishes with it.
        for segment in &expired {
            segment.retire();
        }
        Ok(metas)
    }

    pub fn stats(&self) -> LogStats {
        let pending_bytes = lock(&self.shared.queue).pending_bytes;
        let state = self.shared.state.read().unwrap_or_else(PoisonError::into_inner);
        let (mut sealed_events, mut sealed_bytes, mut segments) = (0, 0, 0);
        for segment in state.segments.all() {
            let meta = segment.meta();
            segments += 1;
            sealed_events += meta.event_count;
            sealed_bytes += meta.parquet_bytes + meta.index_bytes;
        }
        LogStats {
            hot_events: state.active.len() + state.frozen.iter().map(|t| t.len()).sum::<usize>(),
            frozen_tables: state.frozen.len(),
            segments,
            sealed_events,
            sealed_bytes,
            next_seq: state.next_seq,
            pending_bytes,
            page_cache: self.shared.pages.stats(),
            event_cache: self.shared.events.stats(),
            index_cache: self.shared.indexes.stats(),
        }
    }

    /// Finishes every queued append, seals everything, and stops the threads.
    pub fn close(&self) {
        lock(&self.shared.queue).closing = true;
        self.shared.queue_ready.notify_all();
        self.shared.room.notify_all();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("an event log thread panicked");
            }
        }
    }
}

fn stored_event_from_journal(entry: &JournalEntry<'_>) -> Result<StoredEvent, String> {
    let defaults = RecordDefaults { account_id: entry.event.account_id, region: entry.event.region };
    let mut no_new_ids = || String::new();
    let record = parse_record(entry.event.json, defaults, &mut no_new_ids)
        .map_err(|error| format!("event {}: {error}", entry.seq))?;
    if record.json != entry.event.json
        || record.fields.account_id() != entry.event.account_id
        || record.fields.region() != entry.event.region
    {
        return Err(format!("event {} changed when read back", entry.seq));
    }
    Ok(StoredEvent {
        seq: entry.seq,
        event_time_ms: entry.event.event_time_ms,
        ingest_time_ms: entry.event.ingest_time_ms,
        category: record.category,
        fields: record.fields,
        // Parsing copied the journal's text once already, and it was found the same.
        json: record.json,
        id_values: record.id_values,
    })
}

fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Io { path, source } => {
            StoreError::Io { path: path.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
        }
        StoreError::Corrupt { path, offset, what, detail } => {
            StoreError::Corrupt { path: path.clone(), offset: *offset, what, detail: detail.clone() }
        }
        StoreError::Parquet { path, detail } => StoreError::Parquet { path: path.clone(), detail: detail.clone() },
        StoreError::Overloaded { pending_bytes } => StoreError::Overloaded { pending_bytes: *pending_bytes },
        StoreError::Closed => StoreError::Closed,
    }
}

struct SealJob {
    table: Arc<HotTable>,
    sealed_through_seq: u64,
}

fn run_writer(shared: &Shared, mut writer: JournalWriter, seal_tx: &mpsc::Sender<SealJob>) {
    let _refuse_if_gone = RefuseAppendsIfPanicking(shared);
    loop {
        let (requests, closing) = {
            let mut queue = lock(&shared.queue);
            while queue.requests.is_empty() && !queue.closing {
                let (guard, _) = shared
                    .queue_ready
                    .wait_timeout(queue, Duration::from_millis(500))
                    .unwrap_or_else(PoisonError::into_inner);
                queue = guard;
                if queue.requests.is_empty() {
                    break;
                }
            }
            queue.pending_bytes = 0;
            shared.room.notify_all();
            (std::mem::take(&mut queue.requests), queue.closing)
        };
        if !requests.is_empty() {
            write_round(shared, &mut writer, requests);
        }
        let should_freeze = {
            let state = shared.state.read().unwrap_or_else(PoisonError::into_inner);
            !state.active.is_empty()
                && (closing
                    || state.active.bytes() >= shared.options.seal_after_bytes
                    || state.active_since.is_some_and(|since| since.elapsed() >= shared.options.seal_after))
        };
        if should_freeze {
            freeze(shared, &mut writer, seal_tx);
        }
        if closing && lock(&shared.queue).requests.is_empty() {
            return;
        }
    }
}

/// Closes the queue if the writer thread unwinds (a bug, or an append's `done` that
/// panicked): the appends waiting in it and every later one fail instead of waiting for a
/// writer that is gone. The round it was writing drops its callbacks unanswered, which
/// their callers see as a failure too.
struct RefuseAppendsIfPanicking<'a>(&'a Shared);

impl Drop for RefuseAppendsIfPanicking<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        tracing::error!("the journal writer panicked; every append is refused from now on");
        let waiting = {
            let mut queue = lock(&self.0.queue);
            queue.closing = true;
            queue.pending_bytes = 0;
            std::mem::take(&mut queue.requests)
        };
        self.0.room.notify_all();
        for request in waiting {
            (request.done)(Err(StoreError::Closed));
        }
    }
}

/// One group commit: deduplicate, write every request's frame, sync once, publish, ack.
fn write_round(shared: &Shared, writer: &mut JournalWriter, requests: VecDeque<AppendRequest>) {
    writer.reserve(requests.iter().map(|request| request.payload.frame_len()).sum());
    let mut outcomes: Vec<Result<Vec<AppendOutcome>, StoreError>> = Vec::with_capacity(requests.len());
    // Sized for the round, as is `in_round`: growing them copied every event (rehashed
    // every ID) they held, on the thread every acknowledgement waits for.
    let events = requests.iter().map(|request| request.events.len()).sum();
    let mut to_publish: Vec<StoredEvent> = Vec::with_capacity(events);
    // The hot tables' hash of each event to publish, in order: each ID is hashed once for
    // the round's set, every hot table's probe and the insert.
    let mut hashes: Vec<IdHash> = Vec::with_capacity(events);
    let first_seq;
    {
        let state = shared.state.read().unwrap_or_else(PoisonError::into_inner);
        first_seq = state.next_seq;
        let mut next_seq = first_seq;
        let mut in_round: hashbrown::HashTable<(IdHash, &str, &str)> = hashbrown::HashTable::with_capacity(events);
        for request in &requests {
            let mut request_outcomes = Vec::with_capacity(request.events.len());
            let request_first_seq = next_seq;
            let mut failed = None;
            for event in &request.events {
                let record = &event.record;
                let (account_id, event_id) = (record.fields.account_id(), record.fields.event_id());
                let hash = state.active.id_hash(account_id, event_id);
                // Compared hash first, so that another ID's entry costs no string comparison.
                let key = (hash, account_id, event_id);
                let seen = in_round.find(hash.spread(), |held| *held == key).is_some();
                match if seen { Ok(true) } else { state.contains(record, hash) } {
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                    Ok(true) => request_outcomes.push(AppendOutcome::Duplicate),
                    Ok(false) => {
                        in_round.insert_unique(hash.spread(), key, |held| held.0.spread());
                        hashes.push(hash);
                        request_outcomes.push(AppendOutcome::Stored { seq: next_seq });
                        next_seq += 1;
                    }
                }
            }
            if let Some(error) = failed {
                // Give back the numbers this request took; nothing of it is written.
                let claimed = (next_seq - request_first_seq) as usize;
                let stored = request
                    .events
                    .iter()
                    .zip(&request_outcomes)
                    .filter(|(_, outcome)| matches!(outcome, AppendOutcome::Stored { .. }))
                    .map(|(event, _)| (event.record.fields.account_id(), event.record.fields.event_id()));
                for ((account_id, event_id), hash) in stored.zip(hashes.drain(hashes.len() - claimed..)) {
                    let key = (hash, account_id, event_id);
                    if let Ok(entry) = in_round.find_entry(hash.spread(), |held| *held == key) {
                        entry.remove();
                    }
                }
                next_seq = request_first_seq;
                outcomes.push(Err(error));
                continue;
            }
            let stored = (next_seq - request_first_seq) as usize;
            if stored == request.events.len() {
                writer.stage(request_first_seq, &request.payload);
            } else if stored > 0 {
                // Duplicates were dropped: encode the rest again (rare, so done here).
                let kept = request
                    .events
                    .iter()
                    .zip(&request_outcomes)
                    .filter(|(_, outcome)| matches!(outcome, AppendOutcome::Stored { .. }));
                let payload = journal::encode_payload(kept.map(|(event, _)| payload_entry(event)));
                writer.stage(request_first_seq, &payload);
            }
            outcomes.push(Ok(request_outcomes));
        }
    }

    let writes = writer.has_staged();
    let written = if writes { writer.write_staged() } else { Ok(()) };
    if writes {
        shared.journal_failing.store(written.is_err(), Ordering::Release);
    }
    if let Err(error) = written {
        tracing::error!(%error, "journal write failed; refusing this round");
        for request in requests {
            (request.done)(Err(copy_error(&error)));
        }
        return;
    }

    // The records move into the hot table: their JSON and fields are not copied again.
    let mut acks = Vec::with_capacity(requests.len());
    for (request, outcome) in requests.into_iter().zip(outcomes) {
        if let Ok(request_outcomes) = &outcome {
            for (event, outcome) in request.events.into_iter().zip(request_outcomes) {
                if let AppendOutcome::Stored { seq } = *outcome {
                    let record = event.record;
                    to_publish.push(StoredEvent::from_record(seq, event.ingest_time_ms, record));
                }
            }
        }
        acks.push((request.done, outcome));
    }
    {
        let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
        state.next_seq = to_publish.iter().map(|event| event.seq + 1).max().unwrap_or(first_seq).max(state.next_seq);
        if !to_publish.is_empty() && state.active.is_empty() {
            state.active_since = Some(Instant::now());
        }
        for (event, hash) in to_publish.into_iter().zip(hashes) {
            state.active.insert(event, hash);
        }
    }
    for (done, outcome) in acks {
        done(outcome);
    }
}

fn freeze(shared: &Shared, writer: &mut JournalWriter, seal_tx: &mpsc::Sender<SealJob>) {
    let next_seq = shared.state.read().unwrap_or_else(PoisonError::into_inner).next_seq;
    // Start the new journal file first: if that fails, keep appending to the old one and
    // try again later, rather than freeze a table whose journal file stays open.
    let new_writer = match JournalWriter::create(writer.dir(), next_seq, shared.options.sync) {
        Ok(new_writer) => new_writer,
        Err(error) => {
            tracing::error!(%error, "could not start a new journal file; sealing later");
            return;
        }
    };
    *writer = new_writer;
    let table = {
        let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
        // The next table will likely fill as far as this one did: sized for that, it
        // never grows its event list or ID table while the writer holds this lock.
        let next = state.active.successor(state.active.len());
        let table = Arc::new(std::mem::replace(&mut state.active, next));
        state.active_since = None;
        state.frozen.push(Arc::clone(&table));
        table
    };
    if seal_tx.send(SealJob { table, sealed_through_seq: next_seq - 1 }).is_err() {
        tracing::error!("the sealer has stopped; the journal keeps the frozen events");
    }
}

fn run_sealer(shared: &Shared, jobs: &mpsc::Receiver<SealJob>, sealed: &mpsc::Sender<Vec<Partition>>) {
    lower_this_threads_priority(SEALER_NICE);
    let mut last_release: Option<Instant> = None;
    loop {
        let job = match jobs.recv_timeout(RELEASE_MEMORY_AFTER) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_release.is_none_or(|at| at.elapsed() >= RELEASE_MEMORY_EVERY) && release_free_memory() {
                    last_release = Some(Instant::now());
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut delay = Duration::from_millis(100);
        loop {
            match seal(shared, &job) {
                Ok(partitions) => {
                    // The compactor may have stopped (or never started); sealing goes on.
                    let _ = sealed.send(partitions);
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, retry_in_ms = delay.as_millis() as u64, "sealing failed; the journal keeps the events");
                    if lock(&shared.queue).closing {
                        return;
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// How long the sealer waits without a seal before it checks the allocator's free memory
/// ([`release_free_memory`]), and again as long as no seal comes. Under sustained ingest a
/// seal comes every few seconds and what a sealed table freed is used again at once.
const RELEASE_MEMORY_AFTER: Duration = Duration::from_secs(5);

/// The least time between two hand-backs. Lookups on a store whose indexes outgrow the index
/// cache free a gigabyte every few seconds, which they allocate again at once; a trim then
/// took about a second and the kernel zeroes every page given back when it is used again.
const RELEASE_MEMORY_EVERY: Duration = Duration::from_secs(30);

/// How much free memory the allocator may keep before it is handed back to the system.
const KEEP_FREE_MEMORY: usize = 256 << 20;

/// Hands memory that the allocator holds free back to the system, if it holds more than
/// [`KEEP_FREE_MEMORY`]. glibc's malloc keeps what sealed tables, merges and evicted index
/// and page cache entries free in the arenas of the threads that allocated them, and on
/// its own returns only the top of its main heap: idle after 1M events at full load into a
/// 36M-event store the process held 2.0 GB, of which `malloc_trim` gave back 1.0 GB, and
/// after 40 s of lookups on a 100M-event store 2.9 GB, of which it gave back 1.2 GB
/// (BENCHMARKS.md). Returns whether it handed any back.
#[allow(unsafe_code)]
fn release_free_memory() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 and malloc_trim take and return plain values and change only
        // the allocator's own state, under its own locks.
        let free = unsafe { libc::mallinfo2() }.fordblks;
        if free > KEEP_FREE_MEMORY {
            let started = Instant::now();
            // SAFETY: as above.
            unsafe { libc::malloc_trim(0) };
            tracing::debug!(
                free_megabytes = free >> 20,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "handed free memory back to the system"
            );
            return true;
        }
    }
    false
}

/// Allocations up to this size come from malloc's arenas rather than a fresh `mmap` each:
/// request bodies and journal payloads are a megabyte or two. 32 MiB is glibc's most.
const MMAP_THRESHOLD: i32 = 32 << 20;

/// How much free memory at the top of a heap malloc keeps rather than hands back on its
/// own. [`release_free_memory`] hands it back once ingest pauses.
const TRIM_THRESHOLD: i32 = 512 << 20;

/// Stops glibc's malloc handing memory back to the system on its own under load. By
/// default it moves its thresholds with the sizes freed, serves large blocks with `mmap`
/// and trims heaps on free; the next request's body then lands on pages the kernel must
/// fault in and zero again, which was 11% of the server's CPU samples in one full-load
/// run (BENCHMARKS.md).
#[allow(unsafe_code)]
fn keep_free_memory_while_busy() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt sets the allocator's parameters under its own lock.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !set {
            tracing::debug!("could not set malloc's thresholds");
        }
    }
}

/// The nice value of the sealer and the log's followers.
pub(crate) const SEALER_NICE: i32 = 10;
/// The compactor thread's, which picks and publishes merges; the merges themselves run at
/// the idle scheduling policy ([`at_idle_priority`]).
const COMPACTOR_NICE: i32 = 19;

/// Runs `work` on a thread of its own under Linux's idle scheduling policy (`SCHED_IDLE`),
/// which runs only when no other thread wants the CPU, and waits for it.
///
/// A merge only saves space and time later. At nice 19 the compactor still took 1.3–2.4 µs
/// of CPU per event from a saturated 10M-event ingest, and the other threads cost more while
/// it ran; with merges at the idle policy the same ingest ran at a median of 123.3k events/s
/// against 114.7k (BENCHMARKS.md, 2026-12-07): an idle-policy thread gives way as soon as a
/// request thread wakes. Publishing the merge stays on the compactor's own thread, which an
/// unprivileged process could not move back from the idle policy: it takes the manifest
/// lock the sealer needs, and must not wait there for an idle CPU.
fn at_idle_priority<T: Send>(dir: &Path, work: impl FnOnce() -> T + Send) -> Result<T, StoreError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new().name("tk-merge".into()).spawn_scoped(scope, || {
            use_idle_scheduling();
            work()
        });
        match thread {
            Ok(thread) => Ok(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
            Err(error) => Err(StoreError::io(dir)(error)),
        }
    })
}

#[allow(unsafe_code)]
fn use_idle_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads the parameter we pass and changes only this thread's
    // scheduling (pid 0 is the calling thread).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not use the idle scheduling policy");
    }
}

/// Sealing is background work: at a lower priority the request threads and the journal
/// writer win the CPU while a seal runs, which keeps acknowledgements fast. Back-pressure
/// (frozen tables waiting) still bounds how far sealing may fall behind.
#[allow(unsafe_code)]
pub(crate) fn lower_this_threads_priority(nice: i32) {
    // SAFETY: gettid and setpriority take and return plain integers and touch no memory of
    // ours; on Linux, PRIO_PROCESS with a thread ID sets that one thread's nice value.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a background thread's priority");
    }
}

/// A segment's partition: account, Region and date.
type Partition = (String, String, String);

fn partition_of(segment: &Segment) -> Partition {
    let meta = segment.meta();
    (meta.account_id.clone(), meta.region.clone(), meta.date.clone())
}

/// The zstd level of a last merge's segment ([`compaction::is_last_merge`]): about 5%
/// smaller than the sealer's level 1 on the realistic generator, and as fast to read. Other
/// merges write at the sealer's level, about five times faster.
const COMPACTED_ZSTD_LEVEL: i32 = 6;

/// Merges small segments while the policy ([`compaction::pick`]) finds any, then waits for
/// the sealer to report new ones or for a partition to settle.
fn run_compactor(shared: &Shared, sealed: &mpsc::Receiver<Vec<Partition>>) {
    lower_this_threads_priority(COMPACTOR_NICE);
    let settle = shared.options.compact_settle;
    // When each partition last got a new segment; one not here is settled.
    let mut last_new: HashMap<Partition, Instant> = HashMap::default();
    // The log's followers take their holds as they start, just after the log opens. The
    // sealer stops at close, which ends the wait at once.
    let start = Instant::now() + COMPACTION_START_DELAY;
    while let Some(wait) = start.checked_duration_since(Instant::now()) {
        match sealed.recv_timeout(wait) {
            Ok(partitions) => note_new(&mut last_new, partitions),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
    // Segments a merge failed on (an older layout, a damaged file): never picked again.
    let mut refused: HashSet<String> = HashSet::default();
    // After a failure to read or write (a full disk), no merge until then.
    let mut paused_until: Option<Instant> = None;
    loop {
        while let Ok(partitions) = sealed.try_recv() {
            note_new(&mut last_new, partitions);
        }
        last_new.retain(|_, at| at.elapsed() < settle);
        if lock(&shared.queue).closing {
            return;
        }
        paused_until = paused_until.filter(|until| Instant::now() < *until);
        let next = if paused_until.is_none() { next_merge(shared, &last_new, &refused) } else { None };
        if let Some((inputs, settled)) = next {
            match compact(shared, &inputs, settled) {
                Ok(()) => {}
                Err(error) if matches!(error.kind(), ErrorKind::Io | ErrorKind::DiskFull) => {
                    tracing::error!(%error, retry_in_s = COMPACTION_RETRY.as_secs(), "merging segments failed");
                    paused_until = Some(Instant::now() + COMPACTION_RETRY);
                }
                Err(error) => {
                    tracing::error!(%error, segments = inputs.len(), "merging segments failed; they stay as they are");
                    refused.extend(inputs.iter().map(|segment| segment.meta().name.clone()));
                }
            }
            continue;
        }
        // Wake for a seal, for the next partition to settle, or now and then to notice closing.
        let until_settled = last_new.values().map(|at| settle.saturating_sub(at.elapsed())).min();
        let wait = until_settled.unwrap_or(Duration::MAX).min(Duration::from_secs(1));
        match sealed.recv_timeout(wait) {
            Ok(partitions) => note_new(&mut last_new, partitions),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Notes that `partitions` got a new segment just now.
fn note_new(last_new: &mut HashMap<Partition, Instant>, partitions: Vec<Partition>) {
    let now = Instant::now();
    last_new.extend(partitions.into_iter().map(|partition| (partition, now)));
}

/// How long the compactor waits after the log opens before it merges anything.
const COMPACTION_START_DELAY: Duration = Duration::from_secs(2);

/// How long the compactor waits after a merge failed to read or write.
const COMPACTION_RETRY: Duration = Duration::from_secs(30);

/// The segments of one partition to merge next, if any partition has some, and whether
/// that partition has settled.
fn next_merge(
    shared: &Shared,
    last_new: &HashMap<Partition, Instant>,
    refused: &HashSet<String>,
) -> Option<(Vec<Arc<Segment>>, bool)> {
    // Segments a reader has still to read stay as they are ([`ReadHold`]).
    let horizon =
        lock(&shared.holds).iter().filter_map(Weak::upgrade).map(|position| position.load(Ordering::Acquire)).min();
    let mut partitions: BTreeMap<Partition, Vec<Arc<Segment>>> = BTreeMap::new();
    {
        let state = shared.state.read().unwrap_or_else(PoisonError::into_inner);
        let candidates = state.segments.all().filter(|segment| {
            !refused.contains(&segment.meta().name) && horizon.is_none_or(|horizon| segment.meta().max_seq <= horizon)
        });
        for segment in candidates {
            partitions.entry(partition_of(segment)).or_default().push(Arc::clone(segment));
        }
    }
    partitions.into_iter().find_map(|(partition, segments)| {
        let sizes: Vec<SegmentSize> = segments
            .iter()
            .map(|segment| {
                let meta = segment.meta();
                // A file that does not say its level is taken as written small: stores
                // from before the level was kept are not all written again.
                let written_small = meta.zstd_level.is_none_or(|level| level >= COMPACTED_ZSTD_LEVEL);
                SegmentSize { events: meta.event_count, min_seq: meta.min_seq, written_small }
            })
            .collect();
        let settled = !last_new.contains_key(&partition);
        let picked = compaction::pick(&sizes, settled)?;
        Some((picked.into_iter().map(|at| Arc::clone(&segments[at])).collect(), settled))
    })
}

/// Merges `inputs` into one segment and puts it in their place: in the manifest, then in
/// the segment set. The inputs' files go once the last reader lets go of them.
fn compact(shared: &Shared, inputs: &[Arc<Segment>], settled: bool) -> Result<(), StoreError> {
    let started = Instant::now();
    let segments_dir = shared.root.join("segments");
    let refs: Vec<&Segment> = inputs.iter().map(|segment| &**segment).collect();
    let events = inputs.iter().map(|segment| segment.meta().event_count).sum();
    let zstd_level = if compaction::is_last_merge(events, settled) { COMPACTED_ZSTD_LEVEL } else { SEALED_ZSTD_LEVEL };
    let merged = Arc::new(at_idle_priority(&segments_dir, || {
        merge_segments(&segments_dir, &refs, zstd_level, &shared.indexes)
    })??);
    // As in sealing: the manifest lock keeps the segment set still while the manifest is
    // written, and the state lock is held only to swap the segments.
    let _manifest = lock(&shared.manifest_lock);
    let (current, sealed_through_seq): (Vec<Arc<Segment>>, u64) = {
        let state = shared.state.read().unwrap_or_else(PoisonError::into_inner);
        (state.segments.all().cloned().collect(), state.sealed_through_seq)
    };
    let is_input = |segment: &&Arc<Segment>| inputs.iter().any(|input| Arc::ptr_eq(segment, input));
    // Retention may have dropped an input while it was merged: listing the merged segment
    // would bring those events back.
    if current.iter().filter(is_input).count() != inputs.len() {
        merged.retire();
        return Ok(());
    }
    if let Err(error) =
        write_manifest(&shared.root, sealed_through_seq, current.iter().filter(|s| !is_input(s)).chain([&merged]))
    {
        merged.retire();
        return Err(error);
    }
    shared.state.write().unwrap_or_else(PoisonError::into_inner).segments.replace(inputs, Arc::clone(&merged));
    for input in inputs {
        input.retire();
    }
    tracing::info!(
        segments = inputs.len(),
        events = merged.meta().event_count,
        bytes_before = inputs.iter().map(|s| s.meta().parquet_bytes + s.meta().index_bytes).sum::<u64>(),
        bytes_after = merged.meta().parquet_bytes + merged.meta().index_bytes,
        zstd_level,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "merged segments"
    );
    Ok(())
}

/// Writes a frozen table out as segments and publishes them; returns their partitions.
fn seal(shared: &Shared, job: &SealJob) -> Result<Vec<Partition>, StoreError> {
    let segments_dir = shared.root.join("segments");
    let mut groups: BTreeMap<(&str, &str, i64), Vec<&StoredEvent>> = BTreeMap::new();
    for event in job.table.events() {
        groups.entry((event.account_id(), event.region(), day_of(event.event_time_ms))).or_default().push(event);
    }
    let started = Instant::now();
    let groups: Vec<Vec<&StoredEvent>> = groups.into_values().collect();
    // Another frozen table waiting behind this one means ingest outruns one sealing thread.
    let behind = || shared.state.read().unwrap_or_else(PoisonError::into_inner).frozen.len() > 1;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let segments = map_in_parallel(&groups, threads, behind, Vec::len, |events| {
        write_segment_cached(&segments_dir, events, &shared.indexes).map(Arc::new)
    })?;
    // Only manifest writers change the segment set, and each holds the manifest lock, so
    // the set read here is still current when the new segments are published below. The
    // manifest is made durable before the state lock is taken: readers and the writer never
    // wait on its fsync. Until then the frozen table still answers for its events.
    let _manifest = lock(&shared.manifest_lock);
    let sealed: Vec<Arc<Segment>> =
        shared.state.read().unwrap_or_else(PoisonError::into_inner).segments.all().cloned().collect();
    write_manifest(&shared.root, job.sealed_through_seq, sealed.iter().chain(&segments))?;
    let segment_count = segments.len();
    let partitions = segments.iter().map(|segment| partition_of(segment)).collect();
    let publication = SegmentSet::prepare(&shared.state, segments);
    {
        let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
        state.segments.publish(publication);
        state.sealed_through_seq = job.sealed_through_seq;
        state.frozen.retain(|table| !Arc::ptr_eq(table, &job.table));
    }
    {
        let _queue = lock(&shared.queue);
        shared.room.notify_all();
    }
    tracing::info!(
        events = job.table.len(),
        segments = segment_count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sealed"
    );

    let journal_dir = shared.root.join("journal");
    let files = journal::list_files(&journal_dir)?;
    for pair in files.windows(2) {
        let (_, path) = &pair[0];
        let (next_first_seq, _) = pair[1];
        if next_first_seq <= job.sealed_through_seq + 1 {
            journal::remove_sealed(path)?;
        }
    }
    Ok(partitions)
}

/// Calls `work` on every item, heaviest first by `weight`, and returns the results in the
/// items' order, or the first error (after which no thread starts another item). The
/// calling thread works through the items; before each one it asks `wants_help`, and the
/// first time that says yes, up to `threads - 1` helpers join it.
///
/// The sealer's segments: under full load the request threads outrun one sealing thread,
/// frozen tables pile up to [`LogOptions::max_frozen_tables`], appends wait, and a single
/// sealer would leave every other core idle until its table is done. That happens during a
/// seal as often as before one: the sealer's lower priority starves it while requests run,
/// so the next table freezes while this one is written, and a seal that began alone went on
/// alone for most of a second with a core idle. Below that load, one thread: at half load,
/// two sealing threads took both cores for the second a seal lasts, and acknowledgements
/// waited up to half a second (p99 of 195–482 ms in 3 of 5 runs, against 7–13 ms).
fn map_in_parallel<I: Sync, T: Send>(
    items: &[I],
    threads: usize,
    wants_help: impl Fn() -> bool,
    weight: impl Fn(&I) -> usize,
    work: impl Fn(&I) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(weight(&items[index])));
    let next = AtomicUsize::new(0);
    // Takes the next item and works on it, or says there is none.
    let work_next = |done: &mut Vec<(usize, T)>| -> Option<Result<(), StoreError>> {
        let &index = order.get(next.fetch_add(1, Ordering::Relaxed))?;
        Some(match work(&items[index]) {
            Ok(result) => {
                done.push((index, result));
                Ok(())
            }
            Err(error) => {
                next.store(order.len(), Ordering::Relaxed);
                Err(error)
            }
        })
    };
    let helper = || -> Result<Vec<(usize, T)>, StoreError> {
        let mut done = Vec::new();
        while let Some(worked) = work_next(&mut done) {
            worked?;
        }
        Ok(done)
    };
    let mut done = std::thread::scope(|scope| {
        let mut helpers = Vec::new();
        let mut mine = Vec::new();
        let mut done = loop {
            let left = order.len().saturating_sub(next.load(Ordering::Relaxed));
            if helpers.is_empty() && left > 1 && threads > 1 && wants_help() {
                // Threads inherit this one's (lowered) priority.
                helpers = (1..threads.min(left)).map(|_| scope.spawn(helper)).collect();
            }
            match work_next(&mut mine) {
                Some(Ok(())) => {}
                Some(Err(error)) => break Err(error),
                None => break Ok(mine),
            }
        };
        for helper in helpers {
            let theirs = helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            done = done.and_then(|mut done| {
                done.extend(theirs?);
                Ok(done)
            });
        }
        done
    })?;
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

/// What the manifest under `root` lists: the sequence number the segments cover and the
/// Parquet path of every sealed segment. For offline readers; changes nothing.
pub fn sealed_segments(root: &Path) -> Result<(u64, Vec<PathBuf>), StoreError> {
    let manifest = read_manifest(root)?;
    let segments_dir = root.join("segments");
    Ok((manifest.sealed_through_seq, manifest.segments.iter().map(|relative| segments_dir.join(relative)).collect()))
}

fn read_manifest(root: &Path) -> Result<Manifest, StoreError> {
    let path = root.join("manifest.json");
    match fs::read(&path) {
        Ok(bytes) => {
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                path: path.clone(),
                offset: 0,
                what: "manifest",
                detail: error.to_string(),
            })?;
            if manifest.version != MANIFEST_VERSION {
                return Err(StoreError::Corrupt {
                    path,
                    offset: 0,
                    what: "manifest",
                    detail: format!("unsupported version {}", manifest.version),
                });
            }
            Ok(manifest)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(Manifest { version: MANIFEST_VERSION, sealed_through_seq: 0, segments: Vec::new() })
        }
        Err(error) => Err(StoreError::Io { path, source: error }),
    }
}

/// A manifest entry's (date, file name): segments of one date are named by their first
/// log position, so this orders them by age without opening them.
fn age_order(relative: &str) -> (&str, &str) {
    let mut parts = relative.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let date = parts.find_map(|part| part.strip_prefix("date=")).unwrap_or_default();
    (date, name)
}

fn write_manifest<'a>(
    root: &Path,
    sealed_through_seq: u64,
    listed: impl Iterator<Item = &'a Arc<Segment>>,
) -> Result<(), StoreError> {
    let segments_dir = root.join("segments");
    let mut segments: Vec<String> = listed
        .filter_map(|segment| {
            segment.parquet_path().strip_prefix(&segments_dir).ok().map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    segments.sort();
    let manifest = Manifest { version: MANIFEST_VERSION, sealed_through_seq, segments };
    let path = root.join("manifest.json");
    let text = serde_json::to_vec_pretty(&manifest).map_err(|error| StoreError::Corrupt {
        path: path.clone(),
        offset: 0,
        what: "manifest",
        detail: error.to_string(),
    })?;
    fsutil::write_atomic(&path, &text)
}

/// Segment files that a crash left behind between writing them and listing them in the
/// manifest. The journal still holds their events, so they are written again.
fn remove_unlisted_segments(segments_dir: &Path, listed: &HashSet<&str>) -> Result<(), StoreError> {
    let mut stack = vec![segments_dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
            let path = entry.map_err(StoreError::io(&dir))?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let parquet = path.with_extension("parquet");
            let relative =
                parquet.strip_prefix(segments_dir).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            if !listed.contains(relative.as_str()) {
                tracing::warn!(path = %path.display(), "removing a segment file the manifest does not list");
                fs::remove_file(&path).map_err(StoreError::io(&path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_in_parallel_keeps_the_items_order_and_stops_at_an_error() {
        let items: Vec<usize> = (0..50).map(|i| (i * 37) % 50).collect();
        for threads in [1, 2, 3, 64] {
            for help in [false, true] {
                let doubled = map_in_parallel(&items, threads, || help, |&item| item, |&item| Ok(item * 2)).unwrap();
                assert_eq!(doubled, items.iter().map(|item| item * 2).collect::<Vec<_>>());
            }
        }
        for threads in [1, 2] {
            let calls = AtomicUsize::new(0);
            let failed = map_in_parallel(
                &items,
                threads,
                || true,
                |&item| item,
                |&item| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if item == 45 { Err(StoreError::Closed) } else { Ok(item) }
                },
            );
            assert!(matches!(failed, Err(StoreError::Closed)));
            if threads == 1 {
                // Heaviest first: 49, 48, 47, 46, then 45 fails and nothing more starts.
                assert_eq!(calls.load(Ordering::Relaxed), 5);
            }
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn idle_priority_work_runs_on_its_own_thread_under_the_idle_policy() {
        // SAFETY: sched_getscheduler takes and returns plain integers.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        let (inside, name) =
            at_idle_priority(Path::new("."), || (policy(), std::thread::current().name().map(str::to_owned))).unwrap();
        assert_eq!(inside, libc::SCHED_IDLE);
        assert_eq!(name.as_deref(), Some("tk-merge"));
        assert_eq!(policy(), before, "the caller's policy is left alone");
    }

    #[test]
    fn map_in_parallel_takes_help_once_it_is_wanted() {
        let items: Vec<usize> = (0..20).collect();
        let started = AtomicUsize::new(0);
        let work = |&item: &usize| {
            started.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
            Ok((item, std::thread::current().id()))
        };
        let alone = map_in_parallel(&items, 2, || false, |_| 1, work).unwrap();
        assert!(alone.iter().all(|(_, thread)| *thread == std::thread::current().id()), "no help wanted");

        // Help is wanted from the fourth item on, as when a table freezes during a seal.
        started.store(0, Ordering::Relaxed);
        let helped = map_in_parallel(&items, 2, || started.load(Ordering::Relaxed) >= 3, |_| 1, work).unwrap();
        assert_eq!(helped.iter().map(|(item, _)| *item).collect::<Vec<_>>(), items);
        let by_helper: Vec<usize> =
            helped.iter().filter(|(_, thread)| *thread != std::thread::current().id()).map(|(item, _)| *item).collect();
        assert!(!by_helper.is_empty(), "a helper joined");
        assert!(by_helper.iter().all(|&item| item >= 3), "only after help was wanted: {by_helper:?}");
    }
}
