//! `trailkeeper-bench`: generates realistic CloudTrail records and measures a running
//! Trailkeeper server with them (durable ingest, LookupEvents, inclusion proofs, disk per
//! event).
//!
//! Every figure is printed twice: as a line of text for people, and as one JSON line
//! (starting with `{`) carrying the machine and the exact command line, for BENCHMARKS.md.

// This binary's whole job is to print results.
#![allow(clippy::print_stdout)]

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "trailkeeper-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write generated records to a file (.ndjson, or a CloudTrail log file if .json.gz).
    Generate(cmd::generate::Args),
    /// Measure durable ingest throughput and acknowledgement latency.
    Ingest(cmd::ingest::Args),
    /// Measure LookupEvents throughput and latency.
    Lookup(cmd::lookup::Args),
    /// Measure the bytes a data directory uses per stored event.
    Disk(cmd::disk::Args),
    /// Measure how fast records are parsed on the ingest path, on one thread.
    Parse(cmd::parse::Args),
    /// Measure inclusion-proof latency (GET /v1/integrity/inclusion-proof).
    Prove(cmd::prove::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a TLS crypto provider of its own; it fails to build a
    // client, even for plain http, until one is installed. An error only means one already is.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::Generate(args) => cmd::generate::run(args),
        Command::Disk(args) => cmd::disk::run(args),
        Command::Parse(args) => cmd::parse::run(args),
        Command::Ingest(args) => runtime()?.block_on(cmd::ingest::run(args)),
        Command::Lookup(args) => runtime()?.block_on(cmd::lookup::run(args)),
        Command::Prove(args) => runtime()?.block_on(cmd::prove::run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
