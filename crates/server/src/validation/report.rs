//! What `validate-logs` prints, byte for byte as the AWS CLI prints it: the opening line,
//! one line per file that is invalid (stderr, each followed by a blank line) or valid
//! (stdout, only with `--verbose`), the gaps in the chain, and the summary; and the counts
//! behind the exit code.

use std::io::{self, Write};

use super::keys::display_date;

/// Which of the two walks a line belongs to: backfill lines start with `(backfill) `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    Standard,
    Backfill,
}

impl DigestKind {
    fn label(self) -> &'static str {
        match self {
            DigestKind::Standard => "",
            DigestKind::Backfill => "(backfill) ",
        }
    }
}

/// Why a log file is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogProblem {
    HashMismatch,
    NotFound,
    InvalidFormat,
    TrailingData,
}

impl LogProblem {
    fn reason(self) -> &'static str {
        match self {
            LogProblem::HashMismatch => "hash value doesn't match",
            LogProblem::NotFound => "not found",
            LogProblem::InvalidFormat => "invalid format",
            LogProblem::TrailingData => "unexpected data after end of compressed stream",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    valid: usize,
    invalid: usize,
}

/// The output of one run and its counts. Valid lines go to `out` only when `verbose`;
/// invalid ones always go to `err`.
pub struct Report<O: Write, E: Write> {
    out: O,
    err: E,
    verbose: bool,
    start_ms: i64,
    end_ms: i64,
    digests: Tally,
    backfill_digests: Tally,
    logs: Tally,
    /// Whether the last line written ended with a blank line (the AWS CLI's spacing).
    last_status_double_space: bool,
    found_start_ms: Option<i64>,
    found_end_ms: Option<i64>,
}

impl<O: Write, E: Write> Report<O, E> {
    pub fn new(out: O, err: E, verbose: bool, (start_ms, end_ms): (i64, i64)) -> Report<O, E> {
        Report {
            out,
            err,
            verbose,
            start_ms,
            end_ms,
            digests: Tally::default(),
            backfill_digests: Tally::default(),
            logs: Tally::default(),
            last_status_double_space: true,
            found_start_ms: None,
            found_end_ms: None,
        }
    }

    /// Whether anything was invalid: the exit code is 1 if so, 0 if not.
    pub fn found_invalid(&self) -> bool {
        self.digests.invalid + self.backfill_digests.invalid + self.logs.invalid > 0
    }

    pub fn into_writers(self) -> (O, E) {
        (self.out, self.err)
    }

    pub(super) fn startup(&mut self, trail_arn: &str) -> io::Result<()> {
        write!(
            self.out,
            "Validating log files for trail {trail_arn} between {} and {}\n\n",
            display_date(self.start_ms),
            display_date(self.end_ms)
        )
    }

    fn status(&mut self, message: &str, is_error: bool) -> io::Result<()> {
        if is_error {
            if self.last_status_double_space {
                write!(self.err, "{message}\n\n")?;
            } else {
                write!(self.err, "\n{message}\n\n")?;
            }
            self.last_status_double_space = true;
        } else if self.verbose {
            self.last_status_double_space = false;
            writeln!(self.out, "{message}")?;
        }
        Ok(())
    }

    fn tally(&mut self, kind: DigestKind) -> &mut Tally {
        match kind {
            DigestKind::Standard => &mut self.digests,
            DigestKind::Backfill => &mut self.backfill_digests,
        }
    }

    /// A digest that validated, with its start and end times as it states them.
    pub(super) fn digest_valid(
        &mut self,
        kind: DigestKind,
        (bucket, key): (&str, &str),
        (digest_start_ms, digest_end_ms): (i64, i64),
    ) -> io::Result<()> {
        // Found times never reach outside the requested range.
        let start = digest_start_ms.max(self.start_ms);
        if self.found_start_ms.is_none_or(|found| start < found) {
            self.found_start_ms = Some(start);
        }
        let end = digest_end_ms.min(self.end_ms);
        if self.found_end_ms.is_none_or(|found| end > found) {
            self.found_end_ms = Some(end);
        }
        self.tally(kind).valid += 1;
        self.status(&format!("{}Digest file\ts3://{bucket}/{key}\tvalid", kind.label()), false)
    }

    /// A digest that failed; `reason` follows `INVALID: `.
    pub(super) fn digest_invalid(
        &mut self,
        kind: DigestKind,
        (bucket, key): (&str, &str),
        reason: &str,
    ) -> io::Result<()> {
        self.tally(kind).invalid += 1;
        self.status(&format!("{}Digest file\ts3://{bucket}/{key}\tINVALID: {reason}", kind.label()), true)
    }

    /// A digest that should be there and is not.
    pub(super) fn digest_missing(&mut self, kind: DigestKind, location: (&str, &str)) -> io::Result<()> {
        self.digest_invalid(kind, location, "not found")
    }

    /// A chain that ends with more digests before it: logging or validation was off.
    pub(super) fn gap(&mut self, kind: DigestKind, next_end_ms: i64, last_start_ms: i64) -> io::Result<()> {
        let message = format!(
            "{}No log files were delivered by CloudTrail between {} and {}",
            kind.label(),
            display_date(next_end_ms),
            display_date(last_start_ms)
        );
        self.status(&message, true)
    }

    pub(super) fn log_valid(&mut self, bucket: &str, key: &str) -> io::Result<()> {
        self.logs.valid += 1;
        self.status(&format!("Log file\ts3://{bucket}/{key}\tvalid"), false)
    }

    pub(super) fn log_invalid(&mut self, bucket: &str, key: &str, problem: LogProblem) -> io::Result<()> {
        self.logs.invalid += 1;
        self.status(&format!("Log file\ts3://{bucket}/{key}\tINVALID: {}", problem.reason()), true)
    }

    pub(super) fn summary(&mut self) -> io::Result<()> {
        if !self.last_status_double_space {
            writeln!(self.out)?;
        }
        writeln!(self.out, "Results requested for {} to {}", display_date(self.start_ms), display_date(self.end_ms))?;
        let (digests, backfill, logs) = (self.digests, self.backfill_digests, self.logs);
        if digests.valid + backfill.valid + digests.invalid + backfill.invalid == 0 {
            return writeln!(self.out, "No digests found");
        }
        match (self.found_start_ms, self.found_end_ms) {
            (Some(start), Some(end)) => {
                writeln!(self.out, "Results found for {} to {}:", display_date(start), display_date(end))?
            }
            _ => writeln!(self.out, "No valid digests found in range")?,
        }
        self.ratio(digests, "digest")?;
        self.ratio(backfill, "backfill digest")?;
        self.ratio(logs, "log")?;
        writeln!(self.out)
    }

    fn ratio(&mut self, tally: Tally, name: &str) -> io::Result<()> {
        let total = tally.valid + tally.invalid;
        if total > 0 {
            write!(self.out, "\n{}/{total} {name} files valid", tally.valid)?;
            if tally.invalid > 0 {
                write!(self.out, ", {}/{total} {name} files INVALID", tally.invalid)?;
            }
        }
        Ok(())
    }
}
