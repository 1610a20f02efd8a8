//! Counters for `/metrics`, in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use trailkeeper_store::LogStats;

#[derive(Default)]
pub struct Metrics {
    ingest_accepted: AtomicU64,
    ingest_duplicates: AtomicU64,
    ingest_rejected: AtomicU64,
    /// (operation, succeeded) → calls. A mutex: operations are few and the map is tiny.
    operations: Mutex<BTreeMap<(&'static str, bool), u64>>,
}

impl Metrics {
    pub fn count_ingest(&self, accepted: usize, duplicates: usize, rejected: usize) {
        self.ingest_accepted.fetch_add(accepted as u64, Ordering::Relaxed);
        self.ingest_duplicates.fetch_add(duplicates as u64, Ordering::Relaxed);
        self.ingest_rejected.fetch_add(rejected as u64, Ordering::Relaxed);
    }

    pub fn count_operation(&self, operation: &'static str, succeeded: bool) {
        let mut operations = self.operations.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *operations.entry((operation, succeeded)).or_default() += 1;
    }

    /// The metrics, with the log's counters and the position up to which every event is a
    /// Merkle tree leaf (`merkle_through_seq`; the follower's lag is `next_seq - 1` minus it).
    pub fn render(&self, stats: &LogStats, merkle_through_seq: u64) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        counter(
            "trailkeeper_ingested_records_total",
            "Records received on the ingest API, by result.",
            &[
                ("{result=\"accepted\"}", self.ingest_accepted.load(Ordering::Relaxed)),
                ("{result=\"duplicate\"}", self.ingest_duplicates.load(Ordering::Relaxed)),
                ("{result=\"rejected\"}", self.ingest_rejected.load(Ordering::Relaxed)),
            ],
        );
        let operations: Vec<(String, u64)> = self
            .operations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((operation, succeeded), count)| {
                (
                    format!(
                        "{{operation=\"{operation}\",outcome=\"{}\"}}",
                        if *succeeded { "success" } else { "error" }
                    ),
                    *count,
                )
            })
            .collect();
        let samples: Vec<(&str, u64)> = operations.iter().map(|(labels, count)| (labels.as_str(), *count)).collect();
        counter("trailkeeper_api_calls_total", "Management API calls, by operation and outcome.", &samples);
        let caches = [("pages", stats.page_cache), ("events", stats.event_cache), ("indexes", stats.index_cache)];
        let labels: Vec<(String, u64)> = caches
            .iter()
            .flat_map(|(cache, counts)| {
                [
                    (format!("{{cache=\"{cache}\",result=\"hit\"}}"), counts.hits),
                    (format!("{{cache=\"{cache}\",result=\"miss\"}}"), counts.misses),
                ]
            })
            .collect();
        let samples: Vec<(&str, u64)> = labels.iter().map(|(labels, count)| (labels.as_str(), *count)).collect();
        counter("trailkeeper_cache_lookups_total", "Lookups in the read caches, by cache and result.", &samples);
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge("trailkeeper_hot_events", "Events durable in the journal and not yet sealed.", stats.hot_events as u64);
        gauge("trailkeeper_frozen_tables", "Hot tables waiting to be sealed.", stats.frozen_tables as u64);
        gauge("trailkeeper_segments", "Sealed segments.", stats.segments as u64);
        gauge("trailkeeper_sealed_events", "Events in sealed segments.", stats.sealed_events);
        gauge("trailkeeper_sealed_bytes", "Bytes of sealed segments (Parquet and index).", stats.sealed_bytes);
        gauge(
            "trailkeeper_page_cache_bytes",
            "Decoded segment pages held for lookups.",
            stats.page_cache.held_bytes as u64,
        );
        gauge("trailkeeper_event_cache_bytes", "Records held whole for lookups.", stats.event_cache.held_bytes as u64);
        gauge(
            "trailkeeper_index_cache_bytes",
            "Segment indexes held for lookups.",
            stats.index_cache.held_bytes as u64,
        );
        gauge("trailkeeper_pending_append_bytes", "Bytes waiting for the journal writer.", stats.pending_bytes as u64);
        gauge("trailkeeper_next_sequence", "The sequence number the next event gets.", stats.next_seq);
        gauge(
            "trailkeeper_merkle_through_sequence",
            "Every event up to this sequence number is a leaf of its Merkle tree.",
            merkle_through_seq,
        );
        out
    }
}
