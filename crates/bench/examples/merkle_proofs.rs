//! Proof generation on a stopped server's data directory, without HTTP: how long
//! `MerkleTrees::open` takes, and the latency of inclusion proofs (random leaves of the
//! trees, weighted by size, each against the tree's full size), consistency proofs (from a
//! random older size to the full size) and roots at a random size.
//!
//! ```sh
//! cargo run --release -p trailkeeper-bench --example merkle_proofs -- /tmp/tkbench 20000
//! ```
//!
//! It opens the event log (which replays the journal) and the trees; the follower finds
//! nothing to do on a store whose server stopped cleanly.

#![allow(clippy::print_stdout)]

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use trailkeeper_bench::stats::LatencySummary;
use trailkeeper_store::merkle::{MerkleOptions, MerkleTrees, RECORD_BYTES, TreeHead, TreeId};
use trailkeeper_store::{EventLog, LogOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let data_dir = PathBuf::from(args.next().context("usage: merkle_proofs DATA_DIR [SAMPLES]")?);
    let samples: usize = args.next().map(|text| text.parse()).transpose()?.unwrap_or(10_000);

    let log = EventLog::open(&data_dir, LogOptions::default())?;
    let started = Instant::now();
    let trees = MerkleTrees::open(&data_dir, log.clone(), MerkleOptions::default())?;
    let open_time = started.elapsed();
    let heads: Vec<(TreeId, TreeHead)> = trees.heads();
    let leaves: u64 = heads.iter().map(|(_, head)| head.size).sum();
    if leaves == 0 {
        bail!("{} has no Merkle tree leaves", data_dir.display());
    }
    println!(
        "{} trees, {leaves} leaves (largest {}), through log position {}; MerkleTrees::open {:.1} ms",
        heads.len(),
        heads.iter().map(|(_, head)| head.size).max().unwrap_or(0),
        trees.through_seq(),
        open_time.as_secs_f64() * 1000.0
    );

    let mut rng = StdRng::seed_from_u64(7);
    let (mut inclusion, mut consistency, mut roots) = (Vec::new(), Vec::new(), Vec::new());
    let mut path_hashes = 0usize;
    for _ in 0..samples {
        // A leaf uniformly over all leaves: trees are picked by size.
        let mut pick = rng.random_range(0..leaves);
        let (id, head) = heads
            .iter()
            .find(|(_, head)| {
                let inside = pick < head.size;
                if !inside {
                    pick -= head.size;
                }
                inside
            })
            .context("a leaf past every tree")?;
        let seq = leaf_seq(&data_dir, id, pick)?;

        let started = Instant::now();
        let proof = trees.inclusion_proof(id, seq, head.size)?;
        inclusion.push(started.elapsed());
        anyhow::ensure!(proof.leaf_index == pick, "leaf {pick} of {id} came back as {}", proof.leaf_index);
        path_hashes += proof.path.len();

        let old_size = rng.random_range(1..=head.size);
        let started = Instant::now();
        trees.consistency_proof(id, old_size, head.size)?;
        consistency.push(started.elapsed());

        let size = rng.random_range(1..=head.size);
        let started = Instant::now();
        trees.root_at(id, size)?;
        roots.push(started.elapsed());
    }
    for (name, latencies) in
        [("inclusion proof", inclusion), ("consistency proof", consistency), ("root at a size", roots)]
    {
        let summary = LatencySummary::from_samples(latencies).context("no samples")?;
        let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
        println!(
            "{name:<18} {samples} samples: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            micros(summary.p50),
            micros(summary.p99),
            micros(summary.max)
        );
    }
    println!("inclusion paths: {:.1} hashes on average", path_hashes as f64 / samples.max(1) as f64);
    trees.close();
    log.close();
    Ok(())
}

/// The log position of leaf `index` of a tree, from its leaf file.
fn leaf_seq(data_dir: &std::path::Path, id: &TreeId, index: u64) -> anyhow::Result<u64> {
    let path = data_dir.join(format!("merkle/account={}/region={}/leaves", id.account_id, id.region));
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut seq = [0u8; 8];
    file.read_exact_at(&mut seq, index * RECORD_BYTES as u64)?;
    Ok(u64::from_le_bytes(seq))
}
