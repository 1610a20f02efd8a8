//! The `trailkeeper` command: `serve` runs the server, `ingest` sends CloudTrail records
//! to one, `validate-logs` checks a trail's digest and log files offline, `prove-event`
//! proves one event is in the verifiable log, `verify-store` checks a stopped server's
//! data directory against its Merkle trees, `version` says which build this is.

#![allow(clippy::print_stdout)]

mod ingest;
mod integrity;
mod serve;
mod validate_logs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "trailkeeper", about = "A self-hosted audit trail that speaks AWS CloudTrail", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Where events, keys and credentials live [default: ./trailkeeper-data; env TRAILKEEPER_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:4600; env TRAILKEEPER_LISTEN].
        #[arg(long)]
        listen: Option<String>,
        /// A TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Send CloudTrail records (.json, .json.gz, .ndjson files, directories of them, or - for stdin).
    Ingest(ingest::IngestArgs),
    /// Validate a trail's log files with its digest files, as `aws cloudtrail validate-logs`
    /// does, offline over a data directory (exit code 0 all valid, 1 anything invalid).
    ValidateLogs(validate_logs::ValidateLogsArgs),
    /// Prove that an event is in the verifiable log: fetch its inclusion proof, the signed
    /// checkpoint and the public key, and check them all here. Exits 1 unless verified.
    ProveEvent(integrity::ProveEventArgs),
    /// Rebuild every Merkle tree of a stopped server's data directory from the stored events,
    /// name every event altered, dropped or inserted, and check every checkpoint. Exits 1 on
    /// any finding.
    VerifyStore(integrity::VerifyStoreArgs),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { data_dir, listen, config } => {
            serve::serve(trailkeeper_server::config::Overrides { config_file: config, data_dir, listen })
        }
        Command::Ingest(args) => ingest::run(args),
        // Its exit codes are the AWS CLI's, and its errors are printed as the AWS CLI prints them.
        Command::ValidateLogs(args) => return validate_logs::run(args),
        Command::ProveEvent(args) => integrity::prove_event(args),
        Command::VerifyStore(args) => integrity::verify_store(args),
        Command::Version => {
            println!("trailkeeper {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
