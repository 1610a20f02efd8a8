//! The hot table: events that are durable in the journal but not yet sealed into
//! segments, indexed in memory so that an event is in Event History as soon as it is
//! acknowledged.
//!
//! A table is filled by the writer alone, then frozen and handed to the sealer; readers
//! share it behind the log's lock. It never touches the disk.

use std::hash::BuildHasher;
use std::sync::Arc;

use trailkeeper_core::LookupKey;

use crate::{EventKey, HistoryKind, StoredEvent, spread_hash};

/// Keyed by text: `entry_ref` probes once with a `&str` and allocates the key only for a
/// new value.
type TextMap<V> = hashbrown::HashMap<String, V, foldhash::fast::RandomState>;

/// Events of one (account, Region) that Event History can return, by kind.
#[derive(Default)]
struct Stream {
    management: KindIndex,
    insight: KindIndex,
}

#[derive(Default)]
struct KindIndex {
    all: Positions,
    /// Per lookup key (by tag), each value's events, found by the value's 64-bit hash (by
    /// the table's `hasher`). The text is not kept: comparing it read an allocation of its
    /// own for every value an insert indexed (a sixth of the inserts' CPU samples), and a
    /// new value cost a copy. A scan checks each event it returns against the value
    /// instead, so values that share a hash only make it read more events.
    postings: [hashbrown::HashTable<(u64, Positions)>; LookupKey::ALL.len()],
}

impl Stream {
    fn kind(&self, kind: HistoryKind) -> &KindIndex {
        match kind {
            HistoryKind::Management => &self.management,
            HistoryKind::Insight => &self.insight,
        }
    }

    fn kind_mut(&mut self, kind: HistoryKind) -> &mut KindIndex {
        match kind {
            HistoryKind::Management => &mut self.management,
            HistoryKind::Insight => &mut self.insight,
        }
    }
}

#[derive(Default)]
pub struct HotTable {
    /// Every event, in log order; what the sealer writes out.
    events: Vec<Arc<StoredEvent>>,
    /// Account → Region → stream.
    streams: TextMap<TextMap<Stream>>,
    /// The place in `events` of every event, found by (account, eventID): for
    /// deduplication and EventId lookups. It holds positions, compared against the events
    /// themselves, so an event costs no allocation here; and 32 bits of each hash, so that
    /// growing the table never reads the events (a pause the writer would take while
    /// holding the log's lock).
    ids: hashbrown::HashTable<IdSlot>,
    /// Hashes IDs and lookup values. Shared with the tables that follow this one
    /// ([`HotTable::successor`]), so that the writer hashes an ID once for every table it
    /// probes.
    hasher: foldhash::fast::RandomState,
    bytes: usize,
}

/// 32 bits of the hash of an (account, eventID), as [`HotTable::id_hash`] gives it: good for
/// that table and every table of its line of [`HotTable::successor`]s.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IdHash(u32);

impl IdHash {
    /// Spread over 64 bits, for hash tables that index by the high bits.
    pub fn spread(self) -> u64 {
        spread_hash(self.0)
    }
}

#[derive(Clone, Copy)]
struct IdSlot {
    hash: IdHash,
    position: u32,
}

impl IdSlot {
    /// Whether this slot holds the event of `account_id` with `event_id` (whose hash is
    /// `hash`). Colliding IDs cost only this comparison.
    fn holds(&self, events: &[Arc<StoredEvent>], hash: IdHash, account_id: &str, event_id: &str) -> bool {
        let event = &events[self.position as usize];
        self.hash == hash && event.account_id() == account_id && event.event_id() == event_id
    }
}

/// Positions in the table's events, in log order, of one stream's events or of those with
/// one lookup value. Events do not arrive in time order (concurrent requests interleave,
/// imports bring older ones), so each block of positions also keeps the earliest event
/// time within it and the latest up to its end: a scan for the newest events steps over
/// blocks newer than its bounds and stops at the first block whose events, and all before
/// them, are older than what it already holds. Appending is a push, whatever the order.
#[derive(Default)]
struct Positions {
    positions: Vec<u32>,
    blocks: Vec<Block>,
}

#[derive(Clone, Copy)]
struct Block {
    earliest_ms: i64,
    /// The latest event time of this block and every block before it.
    latest_so_far_ms: i64,
}

/// Positions per [`Block`].
const BLOCK: usize = 32;

impl Positions {
    fn push(&mut self, position: u32, time_ms: i64) {
        // One event with several resources of one value is found under it once.
        if self.positions.last() == Some(&position) {
            return;
        }
        match self.blocks.last_mut() {
            Some(block) if !self.positions.len().is_multiple_of(BLOCK) => {
                block.earliest_ms = block.earliest_ms.min(time_ms);
                block.latest_so_far_ms = block.latest_so_far_ms.max(time_ms);
            }
            last => {
                let before = last.map_or(time_ms, |block| block.latest_so_far_ms);
                self.blocks.push(Block { earliest_ms: time_ms, latest_so_far_ms: before.max(time_ms) });
            }
        }
        self.positions.push(position);
    }

    /// Up to `limit` of `events` at these positions within `bounds` and for which `holds` is
    /// true, newest first.
    fn newest(
        &self,
        events: &[Arc<StoredEvent>],
        bounds: &ScanBounds<'_>,
        limit: usize,
        holds: impl Fn(&StoredEvent) -> bool,
    ) -> Vec<Arc<StoredEvent>> {
        let upper = bounds.upper();
        // The best keys found so far, largest first, with their positions.
        let mut best: Vec<(EventKey, u32)> = Vec::new();
        for (index, block) in self.blocks.iter().enumerate().rev() {
            let oldest_wanted = match best.get(limit.saturating_sub(1)) {
                // Full: only a key above the smallest held can displace it, and every key
                // before this block's end is at most `latest_so_far_ms` with a smaller seq.
                Some((smallest, _)) => Some(smallest.time_ms + 1),
                None => bounds.start_ms,
            };
            if limit == 0 || oldest_wanted.is_some_and(|oldest| block.latest_so_far_ms < oldest) {
                break;
            }
            if upper.is_some_and(|upper| block.earliest_ms > upper.time_ms) {
                continue;
            }
            let end = (index * BLOCK + BLOCK).min(self.positions.len());
            for &position in self.positions[index * BLOCK..end].iter().rev() {
                let event = &events[position as usize];
                let key = event.key();
                if !bounds.admits(key)
                    || best.len() >= limit && best.last().is_some_and(|(last, _)| key <= *last)
                    || !holds(event)
                {
                    continue;
                }
                let at = best.partition_point(|(held, _)| *held > key);
                best.insert(at, (key, position));
                best.truncate(limit);
            }
        }
        best.into_iter().map(|(_, position)| Arc::clone(&events[position as usize])).collect()
    }
}

/// The bounds of a history scan, shared by hot tables and segments.
#[derive(Debug, Clone, Copy)]
pub struct ScanBounds<'a> {
    pub kind: HistoryKind,
    pub attribute: Option<(LookupKey, &'a str)>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub before: Option<EventKey>,
}

impl ScanBounds<'_> {
    /// The largest key a scan may return, if any: below `before` and at or before `end_ms`.
    fn upper(&self) -> Option<EventKey> {
        let end = self.end_ms.map(|end| EventKey { time_ms: end, seq: u64::MAX });
        match (self.before, end) {
            (Some(before), Some(end)) => Some(before.min(end)),
            (before, end) => before.or(end),
        }
    }

    pub fn admits(&self, key: EventKey) -> bool {
        self.start_ms.is_none_or(|start| key.time_ms >= start)
            && self.end_ms.is_none_or(|end| key.time_ms <= end)
            && self.before.is_none_or(|before| key < before)
    }
}

impl HotTable {
    /// The empty table that takes over from this one, with room for `events` events before
    /// its event list and ID table grow, and this table's ID hasher: an [`IdHash`] of either
    /// serves both.
    pub fn successor(&self, events: usize) -> HotTable {
        HotTable {
            events: Vec::with_capacity(events),
            ids: hashbrown::HashTable::with_capacity(events),
            hasher: self.hasher.clone(),
            ..HotTable::default()
        }
    }

    /// Adds `event`, whose (account, eventID) hashes to `hash` in this table.
    pub fn insert(&mut self, event: StoredEvent, hash: IdHash) {
        debug_assert_eq!(hash, self.id_hash(event.account_id(), event.event_id()));
        let event = Arc::new(event);
        self.bytes += event.json.len() + 128;
        let position = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        let same_id = |slot: &IdSlot| slot.holds(&self.events, hash, event.account_id(), event.event_id());
        match self.ids.entry(hash.spread(), same_id, |slot| slot.hash.spread()) {
            // The writer refuses duplicates; should one come, the newer copy answers.
            hashbrown::hash_table::Entry::Occupied(mut found) => found.get_mut().position = position,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(IdSlot { hash, position });
            }
        }
        for kind in [HistoryKind::Management, HistoryKind::Insight] {
            if !kind.includes(event.category) {
                continue;
            }
            let stream = self.streams.entry_ref(event.account_id()).or_default().entry_ref(event.region()).or_default();
            let index = stream.kind_mut(kind);
            let time_ms = event.event_time_ms;
            index.all.push(position, time_ms);
            // EventId lookups use `ids`.
            for (lookup_key, value) in event.fields.attribute_values() {
                let hash = self.hasher.hash_one(value);
                let postings = &mut index.postings[usize::from(lookup_key.tag())];
                let (_, positions) = postings
                    .entry(hash, |(held, _)| *held == hash, |(held, _)| *held)
                    .or_insert_with(|| (hash, Positions::default()))
                    .into_mut();
                positions.push(position, time_ms);
            }
        }
        self.events.push(event);
    }

    /// Whether the table holds the event of `account_id` with this eventID, which hashes to
    /// `hash` in this table.
    pub fn contains(&self, hash: IdHash, account_id: &str, event_id: &str) -> bool {
        self.find_hashed(hash, account_id, event_id).is_some()
    }

    /// The event of `account_id` with this eventID, whatever its category.
    pub fn find(&self, account_id: &str, event_id: &str) -> Option<&Arc<StoredEvent>> {
        self.find_hashed(self.id_hash(account_id, event_id), account_id, event_id)
    }

    fn find_hashed(&self, hash: IdHash, account_id: &str, event_id: &str) -> Option<&Arc<StoredEvent>> {
        let slot = self.ids.find(hash.spread(), |slot| slot.holds(&self.events, hash, account_id, event_id))?;
        self.events.get(slot.position as usize)
    }

    pub fn id_hash(&self, account_id: &str, event_id: &str) -> IdHash {
        // Truncated on purpose: see `ids`.
        IdHash(self.hasher.hash_one((account_id, event_id)) as u32)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Approximate memory held, for the seal threshold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The accounts with history events in `region`.
    pub fn accounts_in<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.streams.iter().filter(move |(_, regions)| regions.contains_key(region)).map(|(account, _)| &**account)
    }

    pub fn events(&self) -> &[Arc<StoredEvent>] {
        &self.events
    }

    /// Up to `limit` matching events of one stream, newest first.
    pub fn scan(&self, account_id: &str, region: &str, bounds: &ScanBounds<'_>, limit: usize) -> Vec<Arc<StoredEvent>> {
        let Some(stream) = self.streams.get(account_id).and_then(|regions| regions.get(region)) else {
            return Vec::new();
        };
        let index = stream.kind(bounds.kind);
        match bounds.attribute {
            Some((LookupKey::EventId, event_id)) => self
                .find(account_id, event_id)
                .filter(|event| {
                    event.region() == region && bounds.kind.includes(event.category) && bounds.admits(event.key())
                })
                .into_iter()
                .take(limit)
                .cloned()
                .collect(),
            None => index.all.newest(&self.events, bounds, limit, |_| true),
            Some((lookup_key, value)) => {
                let hash = self.hasher.hash_one(value);
                match index.postings[usize::from(lookup_key.tag())].find(hash, |(held, _)| *held == hash) {
                    Some((_, positions)) => positions.newest(&self.events, bounds, limit, |event| {
                        event.fields.attribute_values().any(|(key, held)| key == lookup_key && held == value)
                    }),
                    None => Vec::new(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailkeeper_core::{Category, FieldValues, LookupFields};

    fn event(seq: u64, time_ms: i64, user: &str, category: Category) -> StoredEvent {
        StoredEvent {
            seq,
            event_time_ms: time_ms,
            ingest_time_ms: 0,
            category,
            fields: LookupFields::from(FieldValues {
                event_id: &format!("id-{seq}"),
                account_id: "111111111111",
                region: "us-east-1",
                event_name: "E",
                event_source: "s",
                username: Some(user),
                ..FieldValues::default()
            }),
            json: bytes::Bytes::from_static(b"{}"),
            id_values: Default::default(),
        }
    }

    fn bounds(attribute: Option<(LookupKey, &str)>) -> ScanBounds<'_> {
        ScanBounds { kind: HistoryKind::Management, attribute, start_ms: None, end_ms: None, before: None }
    }

    fn add(table: &mut HotTable, event: StoredEvent) {
        let hash = table.id_hash(event.account_id(), event.event_id());
        table.insert(event, hash);
    }

    /// Events of one stream with these event times, in log order (seq 1, 2, ...).
    fn events_at(times: &[i64]) -> Vec<Arc<StoredEvent>> {
        times
            .iter()
            .enumerate()
            .map(|(at, &time)| Arc::new(event(at as u64 + 1, time, "a", Category::Management)))
            .collect()
    }

    /// The positions of all of `events`.
    fn positions_of(events: &[Arc<StoredEvent>]) -> Positions {
        let mut positions = Positions::default();
        for (at, event) in events.iter().enumerate() {
            positions.push(at as u32, event.event_time_ms);
        }
        positions
    }

    fn newest_seqs(times: &[i64], bounds: &ScanBounds<'_>, limit: usize) -> Vec<u64> {
        let events = events_at(times);
        positions_of(&events).newest(&events, bounds, limit, |_| true).iter().map(|event| event.seq).collect()
    }

    #[test]
    fn positions_find_the_newest_events_whatever_order_they_came_in() {
        let times = [10, 20, 15, 30, 5, 20];
        assert_eq!(newest_seqs(&times, &bounds(None), 10), [4, 6, 2, 3, 1, 5]);
        assert_eq!(newest_seqs(&times, &bounds(None), 2), [4, 6]);
        let page = ScanBounds { before: Some(EventKey { time_ms: 20, seq: 2 }), ..bounds(None) };
        assert_eq!(newest_seqs(&times, &page, 10), [3, 1, 5]);
        let window = ScanBounds { start_ms: Some(10), end_ms: Some(20), ..bounds(None) };
        assert_eq!(newest_seqs(&times, &window, 10), [6, 2, 3, 1]);
        assert_eq!(newest_seqs(&times, &bounds(None), 0), Vec::<u64>::new());
    }

    #[test]
    fn positions_return_only_the_events_that_hold_and_fill_the_limit_with_them() {
        // As a scan by value sees events of another value that shares its hash.
        let events = events_at(&[10, 20, 30, 40, 50, 60]);
        let positions = positions_of(&events);
        let odd = |event: &StoredEvent| event.seq % 2 == 1;
        let seqs =
            |limit| positions.newest(&events, &bounds(None), limit, odd).iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(10), [5, 3, 1]);
        assert_eq!(seqs(2), [5, 3]);
    }

    proptest::proptest! {
        #[test]
        fn positions_agree_with_sorting_every_event(
            times in proptest::collection::vec(0i64..400, 0..300),
            start in proptest::option::of(0i64..400),
            end in proptest::option::of(0i64..400),
            before in proptest::option::of((0i64..400, 0u64..300)),
            limit in 0usize..60,
        ) {
            let bounds = ScanBounds {
                start_ms: start,
                end_ms: end,
                before: before.map(|(time_ms, seq)| EventKey { time_ms, seq }),
                ..bounds(None)
            };
            let mut expected: Vec<EventKey> = events_at(&times).iter().map(|event| event.key()).filter(|key| bounds.admits(*key)).collect();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            expected.truncate(limit);
            let expected: Vec<u64> = expected.iter().map(|key| key.seq).collect();
            proptest::prop_assert_eq!(newest_seqs(&times, &bounds, limit), expected);
        }
    }

    #[test]
    fn scans_newest_first_with_ties_by_seq() {
        let mut table = HotTable::default();
        add(&mut table, event(1, 10, "a", Category::Management));
        add(&mut table, event(2, 30, "b", Category::Management));
        add(&mut table, event(3, 10, "a", Category::Management));
        add(&mut table, event(4, 20, "a", Category::Data));
        let seqs = |events: Vec<Arc<StoredEvent>>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(table.scan("111111111111", "us-east-1", &bounds(None), 10)), vec![2, 3, 1]);
        assert_eq!(
            seqs(table.scan("111111111111", "us-east-1", &bounds(Some((LookupKey::Username, "a"))), 10)),
            vec![3, 1]
        );
        let page = ScanBounds { before: Some(EventKey { time_ms: 10, seq: 3 }), ..bounds(None) };
        assert_eq!(seqs(table.scan("111111111111", "us-east-1", &page, 10)), vec![1]);
        let window = ScanBounds { start_ms: Some(11), end_ms: Some(30), ..bounds(None) };
        assert_eq!(seqs(table.scan("111111111111", "us-east-1", &window, 10)), vec![2]);
        assert!(table.find("111111111111", "id-4").is_some());
        assert!(table.find("222222222222", "id-4").is_none());
    }

    #[test]
    fn a_scan_by_value_returns_only_that_values_events_when_another_shares_its_hash() {
        let mut table = HotTable::default();
        for (seq, user) in [(1, "a"), (2, "b"), (3, "a"), (4, "b")] {
            add(&mut table, event(seq, seq as i64 * 10, user, Category::Management));
        }
        // Make "b" collide with "a": its events join the postings found by "a"'s hash.
        let merged = positions_of(table.events());
        let tag = usize::from(LookupKey::Username.tag());
        let hash_a = table.hasher.hash_one("a");
        let stream = table.streams.get_mut("111111111111").and_then(|regions| regions.get_mut("us-east-1")).unwrap();
        let postings = &mut stream.management.postings[tag];
        let (_, positions) = postings.find_mut(hash_a, |(held, _)| *held == hash_a).unwrap();
        *positions = merged;
        let seqs = |value| {
            let events = table.scan("111111111111", "us-east-1", &bounds(Some((LookupKey::Username, value))), 10);
            events.iter().map(|event| event.seq).collect::<Vec<_>>()
        };
        assert_eq!(seqs("a"), [3, 1]);
        assert_eq!(seqs("b"), [4, 2]);
    }

    #[test]
    fn finds_events_by_id_in_their_stream_only() {
        let mut table = HotTable::default();
        for seq in 1..=1000 {
            add(&mut table, event(seq, seq as i64, "a", if seq == 7 { Category::Data } else { Category::Management }));
        }
        let by_id = |id: &str, region: &str, bounds: ScanBounds<'_>| {
            let bounds = ScanBounds { attribute: Some((LookupKey::EventId, id)), ..bounds };
            table.scan("111111111111", region, &bounds, 10).iter().map(|e| e.seq).collect::<Vec<_>>()
        };
        assert_eq!(by_id("id-500", "us-east-1", bounds(None)), vec![500]);
        assert_eq!(by_id("id-500", "eu-west-1", bounds(None)), Vec::<u64>::new());
        assert_eq!(by_id("id-7", "us-east-1", bounds(None)), Vec::<u64>::new(), "data events are not in history");
        assert_eq!(by_id("id-1001", "us-east-1", bounds(None)), Vec::<u64>::new());
        let window = ScanBounds { start_ms: Some(501), ..bounds(None) };
        assert_eq!(by_id("id-500", "us-east-1", window), Vec::<u64>::new());
        assert_eq!(table.find("111111111111", "id-999").map(|e| e.seq), Some(999));
        assert!(table.find("111111111112", "id-999").is_none());
    }

    #[test]
    fn a_successor_shares_its_id_hashes() {
        let mut first = HotTable::default();
        add(&mut first, event(1, 10, "a", Category::Management));
        let mut next = first.successor(16);
        let hash = first.id_hash("111111111111", "id-2");
        assert_eq!(next.id_hash("111111111111", "id-2"), hash);
        next.insert(event(2, 20, "a", Category::Management), hash);
        assert!(next.contains(hash, "111111111111", "id-2"));
        assert!(first.contains(first.id_hash("111111111111", "id-1"), "111111111111", "id-1"));
        assert!(!next.contains(next.id_hash("111111111111", "id-1"), "111111111111", "id-1"));
        assert!(!next.contains(hash, "222222222222", "id-2"), "the account is part of the ID");
    }
}
