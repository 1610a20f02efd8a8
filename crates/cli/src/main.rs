//! The `trailkeeper` command: `serve` runs the server, `ingest` sends CloudTrail records
//! to one, `validate-logs` checks a trail's digest and log files offline, `version` says
//! which build this is.

#![allow(clippy::print_stdout)]

mod ingest;
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
