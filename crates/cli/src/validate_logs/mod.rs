//! `trailkeeper validate-logs`: `aws cloudtrail validate-logs` offline over a data
//! directory, or over a running server's APIs. Same arguments, same verdicts, same lines on
//! stdout and stderr, same exit codes (0 all valid, 1 anything invalid, 255 when it cannot
//! run), and offline one check more: the newest digest the trail's delivery state records
//! must still be in the bucket.
//!
//! The walk and the report are `trailkeeper_server::validation`; this module only reads
//! the arguments, opens the source and picks the exit code.

mod server_source;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use trailkeeper_server::validation::{
    DataDirSource, DigestSource, Report, TrailArn, ValidationError, ValidationRequest, parse_date, validate,
};

use self::server_source::ServerSource;

#[derive(Args)]
pub struct ValidateLogsArgs {
    /// The data directory to read; the server may be running or stopped [default: ./trailkeeper-data].
    #[arg(long, conflicts_with = "endpoint_url")]
    data_dir: Option<PathBuf>,
    /// Validate over a running server's CloudTrail and S3 APIs instead, signed with the
    /// credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long)]
    endpoint_url: Option<String>,
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
    let not_found = || format!("A trail could not be found for {}", args.trail_arn);
    // As in the AWS CLI, --s3-prefix counts only with --s3-bucket; otherwise both are the trail's.
    let given = args.s3_bucket.clone().map(|bucket| (bucket, args.s3_prefix.clone()));
    let request = |bucket, prefix, newest_written| ValidationRequest {
        account_id: args.account_id.clone().unwrap_or_else(|| trail.account_id.clone()),
        trail: trail.clone(),
        source_region: source_region.clone(),
        bucket,
        prefix,
        start_ms,
        end_ms,
        newest_written,
    };
    if let Some(endpoint) = &args.endpoint_url {
        let mut source = ServerSource::new(endpoint, &source_region).map_err(|error| error.to_string())?;
        let (bucket, prefix) = match given {
            Some(given) => given,
            None => {
                let found = source.find_trail(&args.trail_arn).map_err(|error| error.message)?;
                found.map(|found| (found.bucket, found.prefix)).ok_or_else(not_found)?
            }
        };
        let newest_written = source.newest_digest(&args.trail_arn, &source_region).unwrap_or_else(|error| {
            warn_no_chain_head(&error.message);
            None
        });
        return validate_from(&mut source, &request(bucket, prefix, newest_written), args.verbose);
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(|| PathBuf::from("./trailkeeper-data"));
    let (mut source, found) =
        DataDirSource::open(&data_dir, &args.trail_arn, &source_region).map_err(|error| error.to_string())?;
    let (bucket, prefix) = match (given, &found.trail) {
        (Some(given), _) => given,
        (None, Some(trail)) => (trail.s3_bucket_name.clone(), trail.s3_key_prefix.clone()),
        (None, None) => return Err(not_found()),
    };
    if let Some(error) = &found.state_error {
        warn_no_chain_head(&error.to_string());
    }
    validate_from(&mut source, &request(bucket, prefix, found.newest_written), args.verbose)
}

/// Validation goes on as the AWS CLI's would, without the chain's known newest digest.
fn warn_no_chain_head(error: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "warning: {error}; a deleted newest digest cannot be told from the end of the chain"
    );
}

/// Validates and reports on stdout and stderr; `Ok(true)` when every file is valid.
fn validate_from<S: DigestSource>(source: &mut S, request: &ValidationRequest, verbose: bool) -> Result<bool, String> {
    let (start_ms, end_ms) = (request.start_ms, request.end_ms);
    let mut report = Report::new(std::io::stdout().lock(), std::io::stderr().lock(), verbose, (start_ms, end_ms));
    match validate(source, request, &mut report) {
        Ok(()) => Ok(!report.found_invalid()),
        Err(ValidationError::Aborted(message)) => Err(message),
        Err(error @ ValidationError::Output(_)) => Err(error.to_string()),
    }
}
