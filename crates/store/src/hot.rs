//! The hot table: events that are durable in the journal but not yet sealed into
//! segments, indexed in memory so that an event is in Event History as soon as it is
//! acknowledged.
//!
//! A table is filled by the writer alone, then frozen and handed to the sealer; readers
//! share it behind the log's lock. It never touches the disk.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::iter::Peekable;
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
    by_key: OrderedMap<Arc<StoredEvent>>,
    /// Per lookup key (by tag), each value's events. Nested maps so that probes and
    /// inserts of a known value borrow a `&str` instead of allocating a key.
    postings: [TextMap<OrderedMap<()>>; LookupKey::ALL.len()],
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
    id_hasher: foldhash::fast::RandomState,
    bytes: usize,
}

#[derive(Clone, Copy)]
struct IdSlot {
    hash: u32,
    position: u32,
}

impl IdSlot {
    /// Whether this slot holds the event of `account_id` with `event_id` (whose 32-bit hash
    /// is `hash`). Colliding IDs cost only this comparison.
    fn holds(&self, events: &[Arc<StoredEvent>], hash: u32, account_id: &str, event_id: &str) -> bool {
        let event = &events[self.position as usize];
        self.hash == hash && event.account_id() == account_id && event.event_id() == event_id
    }
}

/// Values by `EventKey`, built for keys that mostly arrive in increasing order (live
/// events): those are appended to a sorted vector; the occasional late key (an import of
/// older records) goes to a B-tree. Reads merge the two.
struct OrderedMap<V> {
    in_order: Vec<(EventKey, V)>,
    late: BTreeMap<EventKey, V>,
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap { in_order: Vec::new(), late: BTreeMap::new() }
    }
}

impl<V> OrderedMap<V> {
    fn insert(&mut self, key: EventKey, value: V) {
        if self.in_order.last().is_none_or(|(last, _)| *last < key) {
            self.in_order.push((key, value));
        } else {
            self.late.insert(key, value);
        }
    }

    fn get(&self, key: &EventKey) -> Option<&V> {
        match self.in_order.binary_search_by(|(probe, _)| probe.cmp(key)) {
            Ok(found) => Some(&self.in_order[found].1),
            Err(_) => self.late.get(key),
        }
    }

    /// Entries at or below `upper` (all, if None), largest key first.
    fn iter_down_from(&self, upper: Option<EventKey>) -> impl Iterator<Item = (&EventKey, &V)> {
        let end = upper.map_or(self.in_order.len(), |upper| self.in_order.partition_point(|(key, _)| *key <= upper));
        let late = match upper {
            Some(upper) => self.late.range(..=upper),
            None => self.late.range(..),
        };
        MergeDown {
            a: self.in_order[..end].iter().rev().map(|(key, value)| (key, value)).peekable(),
            b: late.rev().peekable(),
        }
    }
}

/// Merges two iterators that each yield keys in descending order.
struct MergeDown<A: Iterator, B: Iterator> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<'a, V: 'a, A, B> Iterator for MergeDown<A, B>
where
    A: Iterator<Item = (&'a EventKey, &'a V)>,
    B: Iterator<Item = (&'a EventKey, &'a V)>,
{
    type Item = (&'a EventKey, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some((a, _)), Some((b, _))) if a >= b => self.a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => self.b.next(),
            (Some(_), None) => self.a.next(),
            (None, None) => None,
        }
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
    /// A table with room for `events` events before its event list and ID table grow.
    pub fn with_capacity(events: usize) -> HotTable {
        HotTable {
            events: Vec::with_capacity(events),
            ids: hashbrown::HashTable::with_capacity(events),
            ..HotTable::default()
        }
    }

    pub fn insert(&mut self, event: StoredEvent) {
        let event = Arc::new(event);
        self.bytes += event.json.len() + 128;
        let position = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        let hash = self.id_hash(event.account_id(), event.event_id());
        let same_id = |slot: &IdSlot| slot.holds(&self.events, hash, event.account_id(), event.event_id());
        match self.ids.entry(spread_hash(hash), same_id, |slot| spread_hash(slot.hash)) {
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
            let key = event.key();
            // EventId lookups use `ids`.
            for (lookup_key, value) in event.fields.lookup_values() {
                if lookup_key == LookupKey::EventId {
                    continue;
                }
                index.postings[usize::from(lookup_key.tag())].entry_ref(value).or_default().insert(key, ());
            }
            index.by_key.insert(key, Arc::clone(&event));
        }
        self.events.push(event);
    }

    pub fn contains(&self, account_id: &str, event_id: &str) -> bool {
        self.find(account_id, event_id).is_some()
    }

    /// The event of `account_id` with this eventID, whatever its category.
    pub fn find(&self, account_id: &str, event_id: &str) -> Option<&Arc<StoredEvent>> {
        let hash = self.id_hash(account_id, event_id);
        let slot = self.ids.find(spread_hash(hash), |slot| slot.holds(&self.events, hash, account_id, event_id))?;
        self.events.get(slot.position as usize)
    }

    fn id_hash(&self, account_id: &str, event_id: &str) -> u32 {
        // Truncated on purpose: see `ids`.
        self.id_hasher.hash_one((account_id, event_id)) as u32
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
        let upper = bounds.upper();
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
            None => index
                .by_key
                .iter_down_from(upper)
                .map(|(_, event)| event)
                .take_while(|event| bounds.start_ms.is_none_or(|start| event.event_time_ms >= start))
                .filter(|event| bounds.admits(event.key()))
                .take(limit)
                .cloned()
                .collect(),
            Some((lookup_key, value)) => {
                let Some(keys) = index.postings[usize::from(lookup_key.tag())].get(value) else {
                    return Vec::new();
                };
                keys.iter_down_from(upper)
                    .map(|(key, ())| key)
                    .take_while(|key| bounds.start_ms.is_none_or(|start| key.time_ms >= start))
                    .filter(|key| bounds.admits(**key))
                    .filter_map(|key| index.by_key.get(key))
                    .take(limit)
                    .cloned()
                    .collect()
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
        }
    }

    fn bounds(attribute: Option<(LookupKey, &str)>) -> ScanBounds<'_> {
        ScanBounds { kind: HistoryKind::Management, attribute, start_ms: None, end_ms: None, before: None }
    }

    #[test]
    fn ordered_map_merges_late_keys() {
        let key = |time_ms, seq| EventKey { time_ms, seq };
        let mut map = OrderedMap::default();
        for (time, seq) in [(10, 1), (20, 2), (15, 3), (30, 4), (5, 5), (20, 6)] {
            map.insert(key(time, seq), seq);
        }
        let down: Vec<u64> = map.iter_down_from(None).map(|(_, v)| *v).collect();
        assert_eq!(down, vec![4, 6, 2, 3, 1, 5]);
        let below: Vec<u64> = map.iter_down_from(Some(key(20, 2))).map(|(_, v)| *v).collect();
        assert_eq!(below, vec![2, 3, 1, 5]);
        assert_eq!(map.get(&key(15, 3)), Some(&3));
        assert_eq!(map.get(&key(20, 6)), Some(&6));
        assert_eq!(map.get(&key(20, 7)), None);
    }

    #[test]
    fn scans_newest_first_with_ties_by_seq() {
        let mut table = HotTable::default();
        table.insert(event(1, 10, "a", Category::Management));
        table.insert(event(2, 30, "b", Category::Management));
        table.insert(event(3, 10, "a", Category::Management));
        table.insert(event(4, 20, "a", Category::Data));
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
        assert!(table.contains("111111111111", "id-4"));
        assert!(!table.contains("222222222222", "id-4"));
    }

    #[test]
    fn finds_events_by_id_in_their_stream_only() {
        let mut table = HotTable::default();
        for seq in 1..=1000 {
            table.insert(event(seq, seq as i64, "a", if seq == 7 { Category::Data } else { Category::Management }));
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
}
