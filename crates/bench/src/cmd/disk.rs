//! `disk`: bytes per stored event of a data directory's sealed segments (`events/segments/`:
//! Parquet and their indexes) and of the whole directory (journal, indexes, metadata).
//!
//! Both the apparent size (file lengths) and the allocated size (blocks on disk) are
//! reported; the second is what a disk fills up with.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::report::Reporter;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// How many events the directory holds.
    #[arg(long)]
    events: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    files: u64,
    apparent_bytes: u64,
    allocated_bytes: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be positive");
    let reporter = Reporter::new();
    let events = args.events as f64;
    // The store keeps sealed segments under `events/segments`; older layouts used `segments`.
    let segments = ["events/segments", "segments"]
        .map(|relative| args.data_dir.join(relative))
        .into_iter()
        .find(|dir| dir.exists())
        .unwrap_or_else(|| args.data_dir.join("events/segments"));
    for (name, dir) in [("segments", segments.as_path()), ("data_dir", args.data_dir.as_path())] {
        if !dir.exists() {
            println!("{} does not exist", dir.display());
            continue;
        }
        let usage = usage(dir)?;
        println!(
            "{}: {} files, {} bytes apparent, {} bytes allocated",
            dir.display(),
            usage.files,
            usage.apparent_bytes,
            usage.allocated_bytes
        );
        reporter.figure("disk", &format!("{name}_bytes_per_event"), "B/event", &[usage.apparent_bytes as f64 / events]);
        reporter.figure(
            "disk",
            &format!("{name}_allocated_bytes_per_event"),
            "B/event",
            &[usage.allocated_bytes as f64 / events],
        );
    }
    Ok(())
}

fn usage(dir: &Path) -> anyhow::Result<Usage> {
    let mut total = Usage::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                total.files += 1;
                total.apparent_bytes += metadata.len();
                total.allocated_bytes += metadata.blocks() * 512;
            }
        }
    }
    Ok(total)
}
