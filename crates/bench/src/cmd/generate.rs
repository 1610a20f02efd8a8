//! `generate`: writes records to a file, as NDJSON or as a CloudTrail log file
//! (`{"Records":[...]}`, gzip) when the name ends in `.json.gz`, and reports how fast the
//! generator runs and how large the records are.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::GeneratorArgs;
use super::report::Reporter;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many records to write.
    #[arg(long)]
    count: u64,
    /// Output file: `.ndjson`, or `.json.gz` for a gzip CloudTrail log file.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    generator: GeneratorArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let reporter = Reporter::new();
    let mut generator = args.generator.generator()?;
    let log_file = args.out.to_string_lossy().ends_with(".json.gz");
    let file = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out: Box<dyn std::io::Write> = if log_file {
        Box::new(GzEncoder::new(BufWriter::new(file), Compression::default()))
    } else {
        Box::new(BufWriter::new(file))
    };
    let started = Instant::now();
    let mut record_bytes = 0u64;
    let mut record = String::with_capacity(4096);
    if log_file {
        out.write_all(br#"{"Records":["#)?;
    }
    for index in 0..args.count {
        record.clear();
        generator.write_next_record(&mut record);
        record_bytes += record.len() as u64;
        if log_file && index > 0 {
            out.write_all(b",")?;
        }
        out.write_all(record.as_bytes())?;
        if !log_file {
            out.write_all(b"\n")?;
        }
    }
    if log_file {
        out.write_all(b"]}")?;
    }
    out.flush()?;
    drop(out);
    let elapsed = started.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&args.out)?.len();
    let count = args.count.max(1) as f64;
    println!("wrote {} records to {} in {elapsed:.2} s", args.count, args.out.display());
    reporter.figure("generate", "records_per_second", "records/s", &[args.count as f64 / elapsed]);
    reporter.figure("generate", "mean_record_bytes", "B/event", &[record_bytes as f64 / count]);
    reporter.figure("generate", "file_bytes_per_event", "B/event", &[file_bytes as f64 / count]);
    Ok(())
}
