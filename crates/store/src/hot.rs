//! The hot table: events that are durable in the journal but not yet sealed into
//! segments, indexed in memory so that an event is in Event History as soon as it is
//! acknowledged.
//!
//! A table is filled by the writer alone, then frozen and handed to the sealer; readers
//! share it behind the log's lock. It never touches the disk.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use trailkeeper_core::LookupKey;

use crate::{EventKey, HistoryKind, StoredEvent};

/// Events of one (account, Region) that Event History can return, by kind.
#[derive(Default)]
struct Stream {
    management: KindIndex,
    insight: KindIndex,
}

#[derive(Default)]
struct KindIndex {
    by_key: BTreeMap<EventKey, Arc<StoredEvent>>,
    postings: HashMap<(LookupKey, Box<str>), BTreeSet<EventKey>>,
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
    streams: HashMap<(Box<str>, Box<str>), Stream>,
    /// (account, eventID) of every event here, for deduplication.
    ids: HashSet<(Box<str>, Box<str>)>,
    bytes: usize,
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
        self.ids.insert((event.account_id.as_str().into(), event.event_id.as_str().into()));
        for kind in [HistoryKind::Management, HistoryKind::Insight] {
            if !kind.includes(event.category) {
                continue;
            }
            let stream =
                self.streams.entry((event.account_id.as_str().into(), event.region.as_str().into())).or_default();
            let index = stream.kind_mut(kind);
            let key = event.key();
            for (lookup_key, value) in event.fields.lookup_values(&event.event_id) {
                index.postings.entry((lookup_key, value.into())).or_default().insert(key);
            }
            index.by_key.insert(key, Arc::clone(&event));
        }
        self.events.push(event);
    }

    pub fn contains(&self, account_id: &str, event_id: &str) -> bool {
        // Borrowed lookups into a set of boxed tuples need an owned probe; event IDs are short.
        self.ids.contains(&(account_id.into(), event_id.into()))
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
        self.streams.keys().filter(move |(_, r)| &**r == region).map(|(account, _)| &**account)
    }

    pub fn events(&self) -> &[Arc<StoredEvent>] {
        &self.events
    }

    /// Up to `limit` matching events of one stream, newest first.
    pub fn scan(&self, account_id: &str, region: &str, bounds: &ScanBounds<'_>, limit: usize) -> Vec<Arc<StoredEvent>> {
        let Some(stream) = self.streams.get(&(account_id.into(), region.into())) else {
            return Vec::new();
        };
        let index = stream.kind(bounds.kind);
        let upper = bounds.upper();
        match bounds.attribute {
            None => {
                let range = match upper {
                    Some(upper) => index.by_key.range(..=upper),
                    None => index.by_key.range(..),
                };
                range
                    .rev()
                    .map(|(_, event)| event)
                    .take_while(|event| bounds.start_ms.is_none_or(|start| event.event_time_ms >= start))
                    .filter(|event| bounds.admits(event.key()))
                    .take(limit)
                    .cloned()
                    .collect()
            }
            Some((lookup_key, value)) => {
                let Some(keys) = index.postings.get(&(lookup_key, value.into())) else {
                    return Vec::new();
                };
                let range = match upper {
                    Some(upper) => keys.range(..=upper),
                    None => keys.range(..),
                };
                range
                    .rev()
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
