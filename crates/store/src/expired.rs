//! The durable record of what retention dropped: one entry per expired segment, with the
//! log positions it held. Retention deletes whole segments, and a verifier must be able to
//! tell those gaps from events removed behind Trailkeeper's back; this file is how.
//!
//! `<root>/expired-segments.json` is rewritten whole (and atomically) on every expiry, and
//! only ever grows. It is written before the manifest stops listing the segments, so a
//! segment is never gone without its entry here; a crash between the two leaves an entry
//! for a segment that is still present, which verifiers treat as present.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::segment::SegmentMeta;
use crate::{StoreError, fsutil};

const FILE_NAME: &str = "expired-segments.json";
const VERSION: u32 = 1;

/// One segment retention dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiredSegment {
    pub account_id: String,
    pub region: String,
    pub date: String,
    /// The segment's file stem, `<min_seq>-<max_seq>`.
    pub name: String,
    pub min_seq: u64,
    pub max_seq: u64,
    pub event_count: u64,
    /// The retention cutoff that dropped it: every event in it was recorded before this time.
    pub cutoff_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiredFile {
    version: u32,
    segments: Vec<ExpiredSegment>,
}

fn path(root: &Path) -> PathBuf {
    root.join(FILE_NAME)
}

/// Every segment retention has dropped from the log under `root`, oldest expiry first.
pub fn read(root: &Path) -> Result<Vec<ExpiredSegment>, StoreError> {
    let path = path(root);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let corrupt = |detail: String| StoreError::Corrupt { path: path.clone(), offset: 0, what: "expiry record", detail };
    let file: ExpiredFile = serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
    if file.version != VERSION {
        return Err(corrupt(format!("unsupported version {}", file.version)));
    }
    Ok(file.segments)
}

/// Adds `expired` (dropped at `cutoff_ms`) to the record and makes it durable. A segment
/// already listed (an expiry retried after a crash) is not listed twice.
pub(crate) fn record(root: &Path, expired: &[SegmentMeta], cutoff_ms: i64) -> Result<(), StoreError> {
    let mut segments = read(root)?;
    for meta in expired {
        let listed = segments.iter().any(|segment| {
            segment.account_id == meta.account_id
                && segment.region == meta.region
                && segment.date == meta.date
                && segment.name == meta.name
        });
        if !listed {
            segments.push(ExpiredSegment {
                account_id: meta.account_id.clone(),
                region: meta.region.clone(),
                date: meta.date.clone(),
                name: meta.name.clone(),
                min_seq: meta.min_seq,
                max_seq: meta.max_seq,
                event_count: meta.event_count,
                cutoff_ms,
            });
        }
    }
    let path = path(root);
    let text = serde_json::to_vec_pretty(&ExpiredFile { version: VERSION, segments }).map_err(|error| {
        StoreError::Corrupt { path: path.clone(), offset: 0, what: "expiry record", detail: error.to_string() }
    })?;
    fsutil::write_atomic(&path, &text)
}
