//! `trailkeeper validate-logs`: `aws cloudtrail validate-logs` offline, over a data
//! directory. Same arguments, same verdicts, same lines on stdout and stderr, same exit
//! codes (0 all valid, 1 anything invalid, 255 when it cannot run), and one check more:
//! the newest digest the trail's delivery state records must still be in the bucket.
//!
//! The walk and the report are `trailkeeper_server::validation`; this module only reads
//! the arguments, opens the data directory and picks the exit code.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use trailkeeper_server::validation::{
    DataDirSource, Report, TrailArn, ValidationError, ValidationRequest, parse_date, validate,
};

#[derive(Args)]
pub struct ValidateLogsArgs {
    /// The data directory to read; the server may be running or stopped.
    #[arg(long, env = "TRAILKEEPER_DATA_DIR", default_value = "./trailkeeper-data")]
    data_dir: PathBuf,
    /// The ARN of the trail to validate.
    #[arg(long)]
    trail_arn: String,
    /// Validate log files delivered at or after this UTC time, e.g. 2026-11-20T00:00:00Z.
    #[arg(long)]
    start_time: String,
    /// Validate log files delivered at or before this UTC time [default: now].
    #[arg(long)]
    end_time: Option<String>,
    /// The bucket holding the digest files, if not the trail's.
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The key prefix of the digest files, if not the trail's (only with --s3-bucket).
    #[arg(long)]
    s3_prefix: Option<String>,
    /// The account whose files are validated [default: the ARN's].
    #[arg(long)]
    account_id: Option<String>,
    /// The Region whose digest files are validated [default: the ARN's, the trail's home].
    #[arg(long)]
    region: Option<String>,
    /// Also print every valid digest and log file.
    #[arg(long)]
    verbose: bool,
}

/// The AWS CLI's exit code for a run that could not complete.
const EXIT_FAILED: u8 = 255;

pub fn run(args: ValidateLogsArgs) -> ExitCode {
    match validate_logs(args) {
        Ok(valid) => ExitCode::from(if valid { 0 } else { 1 }),
        Err(message) => {
            // The AWS CLI prints an exception's message between blank lines.
            let _ = write!(std::io::stderr().lock(), "\n{message}\n");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Runs the validation; `Ok(true)` when every file is valid. The error is the message to
/// print, worded as the AWS CLI words the same failure where it has one.
fn validate_logs(args: ValidateLogsArgs) -> Result<bool, String> {
    let start_ms = parse_date(&args.start_time)?;
    let end_ms = match &args.end_time {
        Some(end_time) => parse_date(end_time)?,
        None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |now| now.as_millis() as i64),
    };
    if start_ms > end_ms {
        return Err("Invalid time range specified: start-time must occur before end-time".to_owned());
    }
    let trail = TrailArn::parse(&args.trail_arn)?;
    let source_region = args.region.clone().unwrap_or_else(|| trail.home_region.clone());
    let (mut source, found) =
        DataDirSource::open(&args.data_dir, &args.trail_arn, &source_region).map_err(|error| error.to_string())?;
    // As in the AWS CLI, --s3-prefix counts only with --s3-bucket; otherwise both are the trail's.
    let (bucket, prefix) = match (args.s3_bucket, &found.trail) {
        (Some(bucket), _) => (bucket, args.s3_prefix),
        (None, Some(trail)) => (trail.s3_bucket_name.clone(), trail.s3_key_prefix.clone()),
        (None, None) => return Err(format!("A trail could not be found for {}", args.trail_arn)),
    };
    if let Some(error) = &found.state_error {
        let _ = writeln!(
            std::io::stderr().lock(),
            "warning: {error}; a deleted newest digest cannot be told from the end of the chain"
        );
    }
    let request = ValidationRequest {
        account_id: args.account_id.unwrap_or_else(|| trail.account_id.clone()),
        trail,
        source_region,
        bucket,
        prefix,
        start_ms,
        end_ms,
        newest_written: found.newest_written,
    };
    let mut report = Report::new(std::io::stdout().lock(), std::io::stderr().lock(), args.verbose, (start_ms, end_ms));
    match validate(&mut source, &request, &mut report) {
        Ok(()) => Ok(!report.found_invalid()),
        Err(ValidationError::Aborted(message)) => Err(message),
        Err(error @ ValidationError::Output(_)) => Err(error.to_string()),
    }
}
