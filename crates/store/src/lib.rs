//! Trailkeeper's event log: the one ordered, append-only source of truth.
//!
//! Events enter through the [`journal`] (checksummed frames, group commit, acknowledged
//! only once durable), are visible at once through the in-memory [`hot`] index, and are
//! sealed into [`segment`]s: Parquet files partitioned by account, Region and date with a
//! sidecar lookup index. [`EventLog`] ties the three together and answers Event History
//! queries newest first. Retention's drops are recorded in [`expired`].
//!
//! [`merkle::MerkleTrees`] follows the log and keeps one RFC 9162 Merkle tree per (account,
//! Region) over its events; [`merkle::verify`] rebuilds those trees offline from the stored
//! events and names what was altered, dropped or inserted.
//!
//! This crate knows nothing of HTTP or AWS wire formats.

mod compaction;
pub mod error;
pub mod expired;
pub mod fsutil;
mod hash_filter;
pub mod hot;
pub mod journal;
mod log;
pub mod merkle;
pub mod segment;

use bytes::Bytes;
use trailkeeper_core::record::IdValues;
use trailkeeper_core::{Category, LookupFields};

pub use error::{ErrorKind, StoreError};

/// The store's hash maps are probed for every appended event and every lookup: foldhash is
/// several times faster than SipHash on short keys (event IDs, attribute values) and still
/// seeded per process against collision flooding.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The UTC day of a time in epoch milliseconds, as days since 1970-01-01: what a segment's
/// date partition and a deduplication filter are keyed by.
pub(crate) fn day_of(time_ms: i64) -> i64 {
    time_ms.div_euclid(86_400_000)
}

/// Spreads a uniform 32-bit hash over 64 bits (an odd multiplier: a bijection), for tables
/// that keep only 32 bits of a hash but index by the high bits (hashbrown's control bytes,
/// the ID filter's block number).
pub(crate) fn spread_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
pub use log::{
    AccountScope, AppendOutcome, EventLog, FoundEvent, LogEntry, LogOptions, LogRead, LogStats, NewEvent, ReadHold,
    sealed_segments,
};

/// An event as the log holds it: the record's JSON text and what was read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the log, assigned at append; unique and increasing.
    pub seq: u64,
    pub event_time_ms: i64,
    /// When Trailkeeper recorded the event; retention counts from here.
    pub ingest_time_ms: i64,
    pub category: Category,
    /// The eventID, account, Region and lookup fields.
    pub fields: LookupFields,
    pub json: Bytes,
    /// Where the record's ID members sit in `json`, as parsing found them.
    pub id_values: IdValues,
}

impl StoredEvent {
    /// The event a parsed record becomes at log position `seq`.
    pub fn from_record(seq: u64, ingest_time_ms: i64, record: trailkeeper_core::ParsedRecord) -> StoredEvent {
        StoredEvent {
            seq,
            event_time_ms: record.event_time_ms,
            ingest_time_ms,
            category: record.category,
            fields: record.fields,
            json: record.json,
            id_values: record.id_values,
        }
    }

    pub fn event_id(&self) -> &str {
        self.fields.event_id()
    }

    pub fn account_id(&self) -> &str {
        self.fields.account_id()
    }

    pub fn region(&self) -> &str {
        self.fields.region()
    }

    pub fn key(&self) -> EventKey {
        EventKey { time_ms: self.event_time_ms, seq: self.seq }
    }

    /// Asks for the lookup fields and the start of the record to be brought into the cache.
    fn prefetch(&self) {
        self.fields.prefetch();
        trailkeeper_core::prefetch::prefetch(self.json.as_ptr());
    }
}

/// How many events ahead [`prefetched`] asks for an event's texts; it asks for the event
/// itself twice as far ahead, since its texts are found through it.
pub(crate) const PREFETCH_AHEAD: usize = 8;

/// `events` in order, each event and its texts asked into the cache a few events before it
/// is yielded: for walks over many events in an order their memory was not written in.
pub(crate) fn prefetched<'a: 'e, 'e>(events: &'e [&'a StoredEvent]) -> impl Iterator<Item = &'a StoredEvent> + 'e {
    let count = events.len();
    (0..count).map(move |at| {
        if at + 2 * PREFETCH_AHEAD < count {
            trailkeeper_core::prefetch::prefetch(events[at + 2 * PREFETCH_AHEAD]);
        }
        if at + PREFETCH_AHEAD < count {
            events[at + PREFETCH_AHEAD].prefetch();
        }
        events[at]
    })
}

/// The order of Event History: by event time, ties broken by log position. Lookups walk
/// it from the largest key down (newest first); a page token remembers the last key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub time_ms: i64,
    pub seq: u64,
}

/// Which events a history query considers: management events, or Insights events
/// (`EventCategory=insight`). Data and network-activity events are never in Event History.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryKind {
    Management,
    Insight,
}

impl HistoryKind {
    pub fn includes(self, category: Category) -> bool {
        matches!(
            (self, category),
            (HistoryKind::Management, Category::Management) | (HistoryKind::Insight, Category::Insight)
        )
    }
}
