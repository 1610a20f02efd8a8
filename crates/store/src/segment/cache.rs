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

/// The rows of one page, in row order.
pub type Page = Arc<[Bytes]>;

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
        let bytes = page.iter().map(|row| row.len() + 32).sum();
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
        vec![Bytes::copy_from_slice(text.as_bytes())].into()
    }

    #[test]
    fn keeps_recent_pages_within_budget() {
        // Each page costs its text plus 32 bytes of overhead: 42 bytes here.
        let cache = PageCache::new(200);
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
