//! How fast a reader that fell behind sealing (a trail's delivery after its bucket was
//! unreachable, the Merkle follower after a restart) reads the log back from sealed
//! segments, on a stopped server's data directory, without HTTP.
//!
//! ```sh
//! cargo run --release -p trailkeeper-bench --example log_catch_up -- /tmp/tkbench 2000000 [WINDOW] [PAGE_CACHE_MB]
//! ```
//!
//! It opens the event log and reads `read_log` windows (16,384 positions by default, the
//! Merkle follower's batch; deliveries read 8,192) from the first position until it has
//! read the asked number of events, with the page cache at its default size unless given.
//! The compactor does not run while it reads.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use trailkeeper_store::{EventLog, LogOptions};

fn main() -> anyhow::Result<()> {
    let usage = "usage: log_catch_up DATA_DIR EVENTS [WINDOW] [PAGE_CACHE_MB]";
    let mut args = std::env::args().skip(1);
    let data_dir = PathBuf::from(args.next().context(usage)?);
    let wanted: u64 = args.next().context(usage)?.parse()?;
    let window: usize = args.next().map(|text| text.parse()).transpose()?.unwrap_or(16_384);
    // Reading only: no merges while it is measured.
    let mut options = LogOptions { compact: false, ..LogOptions::default() };
    if let Some(megabytes) = args.next() {
        options.page_cache_bytes = megabytes.parse::<usize>()? << 20;
    }

    let log = EventLog::open(&data_dir, options)?;
    let started = Instant::now();
    let (mut after, mut events, mut json_bytes) = (0u64, 0u64, 0u64);
    while events < wanted {
        let read = log.read_log(after, window)?;
        if read.through == after {
            break;
        }
        events += read.entries.len() as u64;
        json_bytes += read.entries.iter().map(|entry| entry.json.len() as u64).sum::<u64>();
        after = read.through;
    }
    let seconds = started.elapsed().as_secs_f64();
    if events == 0 {
        bail!("{} holds no events", data_dir.display());
    }
    println!(
        "{events} events ({:.0} MB of JSON) through position {after} in {seconds:.2} s: {:.0} events/s, {:.0} MB/s; \
         page cache {} MB",
        json_bytes as f64 / 1e6,
        events as f64 / seconds,
        json_bytes as f64 / 1e6 / seconds,
        log.stats().page_cache.held_bytes >> 20,
    );
    Ok(())
}
