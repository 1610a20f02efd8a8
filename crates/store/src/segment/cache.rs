//! A bounded cache of decoded `event_json` pages, shared by every segment of a log.
//!
//! Event History reads newest first, and the newest pages of popular users and actions
//! are asked for again and again; decoding a 128 KiB zstd page for one event each time is
//! what a cache saves. Eviction is two generations: entries live in `current`; when it
//! holds half the budget it becomes `previous` and the old `previous` is dropped. A hit in
//! `previous` moves the page back to `current`. That approximates LRU with O(1) work.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::HashMap;

/// (segment, page): segments are told apart by their first sequence number, which no
/// other segment shares.
type PageKey = (u64, u32);

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

    /// What the page holds in memory, for the cache's budget.
    fn footprint(&self) -> usize {
        self.data.len() + self.starts.len() * 4 + 64
    }
}

pub struct PageCache {
    budget_bytes: usize,
    // A mutex: every operation is a hash probe or insert; pages are decoded outside it.
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<PageKey, (Page, usize)>,
    current_bytes: usize,
    previous: HashMap<PageKey, (Page, usize)>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache").field("budget_bytes", &self.budget_bytes).finish_non_exhaustive()
    }
}

impl PageCache {
    /// A cache holding at most about `budget_bytes` of decoded JSON; 0 disables it.
    pub fn new(budget_bytes: usize) -> PageCache {
        PageCache { budget_bytes, generations: Mutex::new(Generations::default()) }
    }

    pub(super) fn get(&self, key: PageKey) -> Option<Page> {
        let mut generations = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((page, _)) = generations.current.get(&key) {
            return Some(Arc::clone(page));
        }
        let (page, bytes) = generations.previous.remove(&key)?;
        let hit = Arc::clone(&page);
        generations.insert(key, page, bytes, self.budget_bytes);
        Some(hit)
    }

    pub(super) fn insert(&self, key: PageKey, page: Page) {
        if self.budget_bytes == 0 {
            return;
        }
        let bytes = page.footprint();
        self.generations.lock().unwrap_or_else(PoisonError::into_inner).insert(key, page, bytes, self.budget_bytes);
    }
}

impl Generations {
    fn insert(&mut self, key: PageKey, page: Page, bytes: usize, budget_bytes: usize) {
        if self.current_bytes + bytes > budget_bytes / 2 {
            self.previous = std::mem::take(&mut self.current);
            self.current_bytes = 0;
        }
        self.current_bytes += bytes;
        if let Some((_, replaced)) = self.current.insert(key, (page, bytes)) {
            self.current_bytes -= replaced;
        }
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
        cache.insert((1, 0), page("0123456789"));
        cache.insert((1, 1), page("0123456789"));
        assert!(cache.get((1, 0)).is_some());
        // The third page turns the generation over; the first two survive one more.
        cache.insert((1, 2), page("0123456789"));
        assert!(cache.get((1, 1)).is_some(), "a hit in the previous generation is kept");
        cache.insert((1, 3), page("0123456789"));
        cache.insert((1, 4), page("0123456789"));
        cache.insert((1, 5), page("0123456789"));
        assert!(cache.get((1, 0)).is_none(), "old pages leave");
        assert!(cache.get((1, 5)).is_some());
    }

    #[test]
    fn zero_budget_caches_nothing() {
        let cache = PageCache::new(0);
        cache.insert((1, 0), page("x"));
        assert!(cache.get((1, 0)).is_none());
    }
}
