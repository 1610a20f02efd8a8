//! `parse`: how fast the ingest path reads records: `parse_record_in` over a request-sized
//! buffer of NDJSON records, on one thread, as the server's request threads run it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use trailkeeper_core::record::{RecordDefaults, parse_record_in};

use super::GeneratorArgs;
use super::report::Reporter;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generated records per pass (ignored with --file).
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Parse the records of this NDJSON file instead of generated ones.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Passes over the records; each is one run of the figures.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    #[command(flatten)]
    generator: GeneratorArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.repeat > 0, "--repeat must be positive");
    let reporter = Reporter::new();
    let body = match &args.file {
        Some(path) => Bytes::from(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
        None => {
            let mut generator = args.generator.generator()?;
            let mut text = String::new();
            for _ in 0..args.count {
                generator.write_next_record(&mut text);
                text.push('\n');
            }
            Bytes::from(text)
        }
    };
    let records: Vec<&[u8]> = body.split(|&byte| byte == b'\n').filter(|line| !line.is_empty()).collect();
    anyhow::ensure!(!records.is_empty(), "no records to parse");
    let defaults = RecordDefaults { account_id: "123456789012", region: "us-east-1" };
    let mut ids = || "00000000-0000-4000-8000-000000000000".to_owned();
    let mut nanos_per_record = Vec::with_capacity(args.repeat);
    let mut megabytes_per_second = Vec::with_capacity(args.repeat);
    for run in 1..=args.repeat {
        let started = Instant::now();
        let mut accepted = 0usize;
        for raw in &records {
            accepted += usize::from(parse_record_in(&body, raw, defaults, &mut ids).is_ok());
        }
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(accepted == records.len(), "{} of {} records refused", records.len() - accepted, records.len());
        println!("run {run}/{}: {} records, {} bytes in {:.3} s", args.repeat, records.len(), body.len(), elapsed);
        nanos_per_record.push(elapsed * 1e9 / records.len() as f64);
        megabytes_per_second.push(body.len() as f64 / elapsed / 1e6);
    }
    reporter.figure("parse", "ns_per_record", "ns", &nanos_per_record);
    reporter.figure("parse", "throughput", "MB/s", &megabytes_per_second);
    Ok(())
}
