//! Disk bytes per event, loaded index memory, sealing throughput and point-read latency of sealed
//! segments, measured on the realistic generator's records.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target cargo run --release -p trailkeeper-bench --example segment_layout -- 200000
//! ```
//!
//! It generates the records, parses each as ingest does, groups them by (account, Region,
//! UTC date) as the sealer does, writes every group with `write_segment` on one thread, then
//! reads every record back (checking it byte for byte) and times random point reads: one
//! row, 50 rows scattered through one segment (a LookupEvents page of a rare value), and
//! the rows of 50 consecutive events (a page without a lookup attribute).

// This example's whole job is to print results.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use trailkeeper_bench::stats::LatencySummary;
use trailkeeper_bench::{Generator, GeneratorConfig};
use trailkeeper_core::time::format_date;
use trailkeeper_core::{RecordDefaults, parse_record};
use trailkeeper_store::StoredEvent;
use trailkeeper_store::segment::{IndexCache, PageCache, Segment, write_segment};

mod common;

const SINGLE_ROW_READS: usize = 5_000;
const FIFTY_ROW_READS: usize = 500;

fn main() -> anyhow::Result<()> {
    let count = common::count_argument("an event")?;
    let events = generate(count)?;
    let json_bytes: usize = events.iter().map(|event| event.json.len()).sum();
    println!("{count} events, {:.0} B of JSON each on average", json_bytes as f64 / count as f64);

    let root = std::env::temp_dir().join(format!("trailkeeper-segment-layout-{}", std::process::id()));
    let result = measure(&root, &events);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn generate(count: usize) -> anyhow::Result<Vec<StoredEvent>> {
    let mut generator = Generator::new(GeneratorConfig::default())?;
    let config = generator.config().clone();
    let defaults = RecordDefaults { account_id: &config.accounts[0], region: &config.regions[0] };
    let mut events = Vec::with_capacity(count);
    for seq in 1..=count as u64 {
        let raw = generator.next_record();
        let parsed = parse_record(&raw, defaults, &mut String::new)
            .map_err(|error| anyhow::anyhow!("generated record {seq} is invalid: {error}"))?;
        let ingest_time_ms = parsed.event_time_ms + 2_000;
        events.push(StoredEvent::from_record(seq, ingest_time_ms, parsed));
    }
    Ok(events)
}

fn measure(root: &Path, events: &[StoredEvent]) -> anyhow::Result<()> {
    let count = events.len();
    let mut groups: BTreeMap<(&str, &str, String), Vec<&StoredEvent>> = BTreeMap::new();
    for event in events {
        groups.entry((event.account_id(), event.region(), format_date(event.event_time_ms))).or_default().push(event);
    }

    let started = Instant::now();
    let mut written = Vec::with_capacity(groups.len());
    for group in groups.values() {
        written.push(write_segment(root, group)?);
    }
    let write_time = started.elapsed();
    let paths: Vec<PathBuf> = written.iter().map(|segment| segment.parquet_path().to_path_buf()).collect();
    let parquet_bytes: u64 = written.iter().map(|segment| segment.meta().parquet_bytes).sum();
    let index_bytes: u64 = written.iter().map(|segment| segment.meta().index_bytes).sum();
    drop(written);

    // What a loaded index costs in the index cache, which holds every one of them here.
    let indexes = IndexCache::new(usize::MAX);
    let segments = paths.iter().map(|path| Segment::open_cached(path, &indexes)).collect::<Result<Vec<_>, _>>()?;

    let per_event = |bytes: u64| bytes as f64 / count as f64;
    println!(
        "{} segments; bytes/event: parquet {:.1}, idx {:.1}, total {:.1}",
        segments.len(),
        per_event(parquet_bytes),
        per_event(index_bytes),
        per_event(parquet_bytes + index_bytes)
    );
    println!("loaded indexes in memory: {:.1} B/event", per_event(indexes.stats().held_bytes as u64));
    println!(
        "sealing on one thread: {:.0} events/s ({:.2} s)",
        count as f64 / write_time.as_secs_f64(),
        write_time.as_secs_f64()
    );

    verify_every_record(&segments, &groups)?;

    // Cold reads: no page cache, so every read decodes its pages.
    let uncached = PageCache::new(0);
    let mut rng = StdRng::seed_from_u64(2026);
    let mut single = Vec::with_capacity(SINGLE_ROW_READS);
    for _ in 0..SINGLE_ROW_READS {
        let segment = &segments[pick_segment(&segments, &mut rng)];
        let row = rng.random_range(0..segment.meta().event_count as u32);
        let started = Instant::now();
        segment.read_json(&[row], &uncached)?;
        single.push(started.elapsed());
    }
    let mut fifty = Vec::with_capacity(FIFTY_ROW_READS);
    for _ in 0..FIFTY_ROW_READS {
        let segment = &segments[pick_segment(&segments, &mut rng)];
        let rows: Vec<u32> = (0..50).map(|_| rng.random_range(0..segment.meta().event_count as u32)).collect();
        let started = Instant::now();
        segment.read_json(&rows, &uncached)?;
        fifty.push(started.elapsed());
    }
    print_latency("read_json, 1 row", single);
    // A page of LookupEvents without an attribute: 50 events in a row by log position.
    let in_seq_order: Vec<Vec<u32>> = segments
        .iter()
        .map(|segment| {
            let rows = segment.rows_in_seq_range(0, u64::MAX, &indexes)?;
            Ok(rows.into_iter().map(|(_, row)| row).collect())
        })
        .collect::<anyhow::Result<_>>()?;
    let mut consecutive = Vec::with_capacity(FIFTY_ROW_READS);
    for _ in 0..FIFTY_ROW_READS {
        let number = pick_segment(&segments, &mut rng);
        let rows = &in_seq_order[number];
        let start = rng.random_range(0..rows.len().saturating_sub(50).max(1));
        let page = &rows[start..rows.len().min(start + 50)];
        let segment = &segments[number];
        let started = Instant::now();
        segment.read_json(page, &uncached)?;
        consecutive.push(started.elapsed());
    }
    print_latency("read_json, 50 scattered rows", fifty);
    print_latency("read_json, 50 consecutive events", consecutive);
    Ok(())
}

/// Reads every record back and compares it with what was written, byte for byte.
fn verify_every_record(
    segments: &[Segment],
    groups: &BTreeMap<(&str, &str, String), Vec<&StoredEvent>>,
) -> anyhow::Result<()> {
    for (segment, group) in segments.iter().zip(groups.values()) {
        let mut expected: Vec<&StoredEvent> = group.clone();
        expected.sort_unstable_by_key(|event| event.seq);
        // Every row, in seq order, with its place in the Parquet file.
        let rows = segment.rows_in_seq_range(0, u64::MAX, &IndexCache::new(0))?;
        if rows.len() != expected.len() {
            bail!("segment {} holds {} rows, not {}", segment.meta().name, rows.len(), expected.len());
        }
        for (chunk, expected) in rows.chunks(4096).zip(expected.chunks(4096)) {
            let file_rows: Vec<u32> = chunk.iter().map(|&(_, row)| row).collect();
            let jsons = segment.read_json(&file_rows, &PageCache::new(0))?;
            for ((key, json), event) in chunk.iter().map(|(key, _)| key).zip(&jsons).zip(expected) {
                if key.seq != event.seq || json != &event.json {
                    bail!("event {} of segment {} does not read back byte for byte", event.seq, segment.meta().name);
                }
            }
        }
    }
    println!("every record reads back byte for byte");
    Ok(())
}

/// The number of a segment chosen with probability proportional to its events, as random
/// events would be.
fn pick_segment(segments: &[Segment], rng: &mut StdRng) -> usize {
    let total: u64 = segments.iter().map(|segment| segment.meta().event_count).sum();
    let mut target = rng.random_range(0..total);
    for (number, segment) in segments.iter().enumerate() {
        if target < segment.meta().event_count {
            return number;
        }
        target -= segment.meta().event_count;
    }
    segments.len() - 1
}

fn print_latency(what: &str, samples: Vec<Duration>) {
    if let Some(summary) = LatencySummary::from_samples(samples) {
        println!(
            "{what}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} reads)",
            summary.p50.as_secs_f64() * 1000.0,
            summary.p90.as_secs_f64() * 1000.0,
            summary.p99.as_secs_f64() * 1000.0,
            summary.max.as_secs_f64() * 1000.0,
            summary.count
        );
    }
}
