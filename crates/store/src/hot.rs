//! The hot table: events that are durable in the journal but not yet sealed into
//! segments, indexed in memory so that an event is in Event History as soon as it is
//! acknowledged.
//!
//! A table is filled by the writer alone, then frozen and handed to the sealer; readers
//! share it behind the log's lock. It never touches the disk.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::sync::Arc;

use trailkeeper_core::LookupKey;

use crate::{EventKey, HashMap, HistoryKind, StoredEvent};

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
    postings: [HashMap<Box<str>, OrderedMap<()>>; LookupKey::ALL.len()],
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
    streams: HashMap<Box<str>, HashMap<Box<str>, Stream>>,
    /// (account, eventID) of every event here, with its place in `events`: for
    /// deduplication and to find an event by its ID.
    ids: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    bytes: usize,
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

/// The entry for `key`, allocating the boxed key only when it is new.
fn entry_by_str<'a, V: Default>(map: &'a mut HashMap<Box<str>, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.into(), V::default());
    }
    // Present: inserted just above if it was not already.
    map.get_mut(key).unwrap_or_else(|| unreachable!("the key was just inserted"))
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
    pub fn insert(&mut self, event: StoredEvent) {
        let event = Arc::new(event);
        self.bytes += event.json.len() + 128;
        let position = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        entry_by_str(&mut self.ids, &event.account_id).insert(event.event_id.as_str().into(), position);
        for kind in [HistoryKind::Management, HistoryKind::Insight] {
            if !kind.includes(event.category) {
                continue;
            }
            let stream = entry_by_str(entry_by_str(&mut self.streams, &event.account_id), &event.region);
            let index = stream.kind_mut(kind);
            let key = event.key();
            for (lookup_key, value) in event.fields.lookup_values(&event.event_id) {
                entry_by_str(&mut index.postings[usize::from(lookup_key.tag())], value).insert(key, ());
            }
            index.by_key.insert(key, Arc::clone(&event));
        }
        self.events.push(event);
    }

    pub fn contains(&self, account_id: &str, event_id: &str) -> bool {
        self.ids.get(account_id).is_some_and(|ids| ids.contains_key(event_id))
    }

    /// The event of `account_id` with this eventID, whatever its category.
    pub fn find(&self, account_id: &str, event_id: &str) -> Option<&Arc<StoredEvent>> {
        let position = *self.ids.get(account_id)?.get(event_id)?;
        self.events.get(position as usize)
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
    use trailkeeper_core::{Category, LookupFields};

    fn event(seq: u64, time_ms: i64, user: &str, category: Category) -> StoredEvent {
        StoredEvent {
            seq,
            event_time_ms: time_ms,
            ingest_time_ms: 0,
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            event_id: format!("id-{seq}"),
            category,
            fields: LookupFields {
                event_name: "E".into(),
                event_source: "s".into(),
                username: Some(user.into()),
                ..Default::default()
            },
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
}
