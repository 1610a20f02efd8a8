//! Bounded caches shared by every segment of a log: records that lookups read
//! ([`EventCache`]), decoded pages of string columns ([`PageCache`]) and segment indexes
//! ([`IndexCache`]).
//!
//! Event History reads newest first, and the newest events of popular users, actions and
//! resources are asked for again and again; decoding a 128 KiB zstd page for one event each
//! time is what the caches save. A record is kept whole for lookups: the 50 events a
//! popular value answers with lie on dozens of pages, which as decoded pages take about
//! 50 times the memory of the records themselves. Pages are kept too, for readers that
//! read many rows of a page (followers catching up) and for the moved columns. Likewise a
//! segment's index is read from its `.idx` file only when a lookup needs it, and the
//! indexes of recent and popular segments stay.
//!
//! Eviction is two generations: entries live in `current`; when it holds half the budget
//! it becomes `previous` and the old `previous` is dropped. A hit in `previous` moves the
//! entry back to `current`. That approximates LRU with O(1) work. An evicted entry lives on
//! while a reader still holds it.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::HashMap;

use super::index::SegmentIndex;

/// (segment, column, page): segments are told apart by their cache ID, which no other open
/// segment shares; columns by a number their reader gives them.
type PageKey = (u64, u16, u32);

/// Decoded pages of string columns by (segment, column, page).
pub type PageCache = BoundedCache<PageKey, Page>;

/// Stored records by (segment, Parquet row), as lookups hand them out. Each value owns its
/// bytes: a slice of a decoded page would keep the whole page alive.
pub type EventCache = BoundedCache<(u64, u32), Bytes>;

/// Segment indexes by segment (its cache ID).
pub type IndexCache = BoundedCache<u64, Arc<SegmentIndex>>;

/// What a cached value holds in memory, counted against the budget.
pub trait Footprint {
    fn footprint(&self) -> usize;
}

/// One decoded page of a string column, shared by the cache and every reader of it.
pub type Page = Arc<PageValues>;

/// The values of one page, in row order, as Parquet's PLAIN encoding lays them out once
/// decompressed: each value after its 4-byte length. Rows are handed out as slices of the
/// one buffer, so reading a row copies nothing.
pub struct PageValues {
    data: Bytes,
    /// Where each value's length prefix starts, then the end of the last value.
    starts: Vec<u32>,
}

impl PageValues {
    /// Splits a PLAIN-encoded `BYTE_ARRAY` buffer of `count` values; `None` if the buffer
    /// does not hold exactly that many.
    pub(super) fn parse(data: Bytes, count: usize) -> Option<PageValues> {
        let mut starts = Vec::with_capacity(count + 1);
        let mut position = 0usize;
        for _ in 0..count {
            let prefix: [u8; 4] = data.get(position..position + 4)?.try_into().ok()?;
            let end = (position + 4).checked_add(u32::from_le_bytes(prefix) as usize)?;
            data.get(position + 4..end)?;
            starts.push(u32::try_from(position).ok()?);
            position = end;
        }
        starts.push(u32::try_from(position).ok()?);
        Some(PageValues { data, starts })
    }

    /// The value of the page's `index`-th row, if it is UTF-8 text. Checked here rather
    /// than when the page is split: a lookup reads one or two rows of a page's dozens.
    pub(super) fn get(&self, index: usize) -> Option<Bytes> {
        let (&start, &end) = (self.starts.get(index)?, self.starts.get(index + 1)?);
        let value = self.data.slice(start as usize + 4..end as usize);
        std::str::from_utf8(&value).is_ok().then_some(value)
    }
}

impl Footprint for Page {
    fn footprint(&self) -> usize {
        self.data.len() + self.starts.len() * 4 + 64
    }
}

impl Footprint for Bytes {
    fn footprint(&self) -> usize {
        self.len() + 64
    }
}

impl Footprint for Arc<SegmentIndex> {
    fn footprint(&self) -> usize {
        self.heap_bytes() + 256
    }
}

pub struct BoundedCache<K, V> {
    budget_bytes: usize,
    // A mutex: every operation is a hash probe or insert; values are built outside it, and
    // an evicted generation is dropped outside it.
    generations: Mutex<Generations<K, V>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a cache holds and how often it answered, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub held_bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

struct Generations<K, V> {
    current: HashMap<K, (V, usize)>,
    current_bytes: usize,
    previous: HashMap<K, (V, usize)>,
    previous_bytes: usize,
}

impl<K, V> std::fmt::Debug for BoundedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedCache").field("budget_bytes", &self.budget_bytes).finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone + Footprint> BoundedCache<K, V> {
    /// A cache holding at most about `budget_bytes` of values; 0 disables it.
    pub fn new(budget_bytes: usize) -> BoundedCache<K, V> {
        let generations = Generations {
            current: HashMap::default(),
            current_bytes: 0,
            previous: HashMap::default(),
            previous_bytes: 0,
        };
        BoundedCache {
            budget_bytes,
            generations: Mutex::new(generations),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(super) fn get(&self, key: K) -> Option<V> {
        let (hit, evicted) = {
            let mut generations = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
            match generations.current.get(&key) {
                Some((value, _)) => (Some(value.clone()), None),
                None => match generations.previous.remove(&key) {
                    Some((value, bytes)) => {
                        generations.previous_bytes -= bytes;
                        let hit = value.clone();
                        (Some(hit), generations.insert(key, value, bytes, self.budget_bytes))
                    }
                    None => (None, None),
                },
            }
        };
        drop(evicted);
        let counter = if hit.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    pub(super) fn insert(&self, key: K, value: V) {
        if self.budget_bytes == 0 {
            return;
        }
        let bytes = value.footprint();
        let evicted = self.generations.lock().unwrap_or_else(PoisonError::into_inner).insert(
            key,
            value,
            bytes,
            self.budget_bytes,
        );
        drop(evicted);
    }

    /// The bytes the cache holds, both generations, and its hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        let held_bytes = {
            let generations = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
            generations.current_bytes + generations.previous_bytes
        };
        CacheStats { held_bytes, hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }
}

/// A generation the cache let go of. Dropping one frees up to half the budget (a thousand
/// pages of 128 KiB), which its caller does once it has let go of the lock.
type Evicted<K, V> = Option<HashMap<K, (V, usize)>>;

impl<K: Hash + Eq, V> Generations<K, V> {
    fn insert(&mut self, key: K, value: V, bytes: usize, budget_bytes: usize) -> Evicted<K, V> {
        let mut evicted = None;
        if self.current_bytes + bytes > budget_bytes / 2 {
            evicted = Some(std::mem::replace(&mut self.previous, std::mem::take(&mut self.current)));
            self.previous_bytes = std::mem::take(&mut self.current_bytes);
        }
        self.current_bytes += bytes;
        if let Some((_, replaced)) = self.current.insert(key, (value, bytes)) {
            self.current_bytes -= replaced;
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Page {
        let mut data = (text.len() as u32).to_le_bytes().to_vec();
        data.extend_from_slice(text.as_bytes());
        Arc::new(PageValues::parse(data.into(), 1).expect("one value"))
    }

    #[test]
    fn a_page_hands_out_its_values_as_slices() {
        let mut data = Vec::new();
        for value in ["{}", "", "{\"a\":1}"] {
            data.extend_from_slice(&(value.len() as u32).to_le_bytes());
            data.extend_from_slice(value.as_bytes());
        }
        let page = PageValues::parse(data.clone().into(), 3).expect("three values");
        assert_eq!(page.get(0).as_deref(), Some(&b"{}"[..]));
        assert_eq!(page.get(1).as_deref(), Some(&b""[..]));
        assert_eq!(page.get(2).as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(page.get(3), None);
        assert!(PageValues::parse(data.clone().into(), 4).is_none(), "fewer values than claimed");
        assert!(PageValues::parse(data[..data.len() - 1].to_vec().into(), 3).is_none(), "a value cut short");
        let mut not_utf8 = 1u32.to_le_bytes().to_vec();
        not_utf8.push(0xff);
        assert_eq!(PageValues::parse(not_utf8.into(), 1).expect("one value").get(0), None, "not UTF-8");
    }

    #[test]
    fn keeps_recent_pages_within_budget() {
        // Each page costs its buffer, 4 bytes per row boundary and 64 of overhead: 86 bytes here.
        let cache = PageCache::new(400);
        cache.insert((1, 0, 0), page("0123456789"));
        cache.insert((1, 0, 1), page("0123456789"));
        assert!(cache.get((1, 0, 0)).is_some());
        // The third page turns the generation over; the first two survive one more.
        cache.insert((1, 0, 2), page("0123456789"));
        assert!(cache.get((1, 0, 1)).is_some(), "a hit in the previous generation is kept");
        cache.insert((1, 0, 3), page("0123456789"));
        cache.insert((1, 0, 4), page("0123456789"));
        cache.insert((1, 0, 5), page("0123456789"));
        assert!(cache.get((1, 0, 0)).is_none(), "old pages leave");
        assert!(cache.get((1, 0, 5)).is_some());
    }

    #[test]
    fn counts_hits_and_misses() {
        let cache = EventCache::new(1 << 10);
        assert!(cache.get((1, 0)).is_none());
        cache.insert((1, 0), Bytes::from_static(b"{}"));
        assert_eq!(cache.get((1, 0)), Some(Bytes::from_static(b"{}")));
        assert_eq!(cache.stats(), CacheStats { held_bytes: 66, hits: 1, misses: 1 });
    }

    #[test]
    fn zero_budget_caches_nothing() {
        let cache = PageCache::new(0);
        cache.insert((1, 0, 0), page("x"));
        assert!(cache.get((1, 0, 0)).is_none());
    }
}
