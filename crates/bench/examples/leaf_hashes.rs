//! Merkle leaf hashing throughput on the realistic generator's records: each record hashed
//! alone (`leaf_hash`, the SHA extensions where the CPU has them) against a follower batch
//! hashed at once (`leaf_hashes`, sixteen records side by side where the CPU has AVX-512).
//!
//! ```text
//! cargo run --release -p trailkeeper-bench --example leaf_hashes -- 200000
//! ```
//!
//! Prints, for each way and each of five passes over the records, nanoseconds per record
//! and megabytes per second.

// This example's whole job is to print results.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use anyhow::bail;
use trailkeeper_bench::{Generator, GeneratorConfig};
use trailkeeper_core::merkle::{Hash, leaf_hash, leaf_hashes};

mod common;

/// Records the Merkle follower hashes at once at most (`MerkleOptions::batch_events`).
const BATCH: usize = 16_384;
const PASSES: usize = 5;

fn main() -> anyhow::Result<()> {
    let count = common::count_argument("a record")?;
    let mut generator = Generator::new(GeneratorConfig::default())?;
    let records: Vec<Vec<u8>> = (0..count).map(|_| generator.next_record()).collect();
    let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!("{count} records, {:.0} B each on average", bytes as f64 / count as f64);

    let alone = |slices: &[&[u8]]| -> Vec<Hash> { slices.iter().map(|record| leaf_hash(record)).collect() };
    let batched = |slices: &[&[u8]]| -> Vec<Hash> { slices.chunks(BATCH).flat_map(leaf_hashes).collect() };
    let expected = alone(&slices);
    if batched(&slices) != expected {
        bail!("leaf_hashes disagrees with leaf_hash");
    }
    for pass in 1..=PASSES {
        for (way, hash) in [("alone", &alone as &dyn Fn(&[&[u8]]) -> Vec<Hash>), ("batched", &batched)] {
            let started = Instant::now();
            let hashes = hash(&slices);
            let elapsed = started.elapsed().as_secs_f64();
            std::hint::black_box(hashes);
            println!(
                "pass {pass} {way:>7}: {:6.1} ns/record, {:6.0} MB/s",
                elapsed * 1e9 / count as f64,
                bytes as f64 / elapsed / 1e6
            );
        }
    }
    Ok(())
}
