//! One trail's delivery task: read, select, batch, deliver, commit; with back-off while
//! its bucket is unreachable.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use trailkeeper_core::logfile::{LogFileName, RECORDS_CLOSE, RECORDS_OPEN};
use trailkeeper_core::selectors::{EventView, Selection, is_global_service_event};
use trailkeeper_store::fsutil::write_atomic;
use trailkeeper_store::{EventLog, LogEntry};

use super::{DeliveryStatus, MAX_BATCH_BYTES, TrailKey, batch_seed, round_interval, sink};
use crate::api::now_ms;
use crate::state::AppState;
use crate::trails::Trail;

/// A batch on its way out: how far it reaches and when it is delivered. Made durable
/// before any of its files is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    through: u64,
    delivered_ms: i64,
}

/// A trail's durable delivery state: `<data_dir>/trails/delivery/<hash>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CursorFile {
    trail_arn: String,
    created_ms: i64,
    /// Every event at or before this log position has been delivered (or not selected).
    cursor: u64,
    pending: Option<Pending>,
    pub(super) status: DeliveryStatus,
}

impl CursorFile {
    pub(super) fn load(path: &Path, key: &TrailKey) -> Option<CursorFile> {
        let bytes = std::fs::read(path).ok()?;
        let file: CursorFile = serde_json::from_slice(&bytes)
            .inspect_err(|error| tracing::error!(path = %path.display(), %error, "unreadable delivery state"))
            .ok()?;
        (file.trail_arn == key.arn && file.created_ms == key.created_ms).then_some(file)
    }
}

/// The selected events of a batch, per Region in log order.
#[derive(Debug, Default)]
struct Batch {
    by_region: BTreeMap<String, Vec<Bytes>>,
    bytes: usize,
    first_added: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.by_region.is_empty()
    }

    fn add(&mut self, entry: LogEntry) {
        self.bytes += entry.json.len() + 1;
        self.first_added.get_or_insert_with(Instant::now);
        self.by_region.entry(entry.region).or_default().push(entry.json);
    }
}

/// Whether `trail` delivers the event: its account, a Region it covers, recorded while it
/// was logging, and chosen by its selectors.
fn selects(trail: &Trail, selection: &Selection, entry: &LogEntry) -> bool {
    if entry.account_id != trail.account_id || !trail.covers_region(&entry.region) || !trail.logs_position(entry.seq) {
        return false;
    }
    let Ok(view) = EventView::parse(&entry.json) else {
        // Every stored record passed validation; one the selectors cannot read is a bug
        // worth seeing, and it is not delivered rather than delivered unfiltered.
        tracing::error!(seq = entry.seq, "a stored record could not be read for selection");
        return false;
    };
    if !trail.include_global_service_events && is_global_service_event(&view) {
        return false;
    }
    selection.matches(&view)
}

/// Reads log positions `(after, ..]` into `batch`: up to `through` when redoing a pending
/// batch (all of it, whatever its size), otherwise up to the newest event or until the
/// batch is full. Returns the position read up to, and the error that stopped it early;
/// the batch holds exactly the selected events up to that position.
fn fill(log: &EventLog, trail: &Trail, batch: &mut Batch, after: u64, through: Option<u64>) -> (u64, Option<String>) {
    let selection = trail.selection();
    let mut position = after;
    let end = through.unwrap_or_else(|| log.last_seq());
    while position < end && (through.is_some() || batch.bytes < MAX_BATCH_BYTES) {
        let window = usize::try_from(end - position).unwrap_or(usize::MAX).min(8192);
        let read = match log.read_log(position, window) {
            Ok(read) => read,
            Err(error) => return (position, Some(error.to_string())),
        };
        for entry in read.entries {
            if selects(trail, &selection, &entry) {
                batch.add(entry);
            }
        }
        if read.through <= position {
            break;
        }
        position = read.through;
    }
    (position, None)
}

/// One log file: `{"Records":[...]}` with each record as stored, in one gzip member.
fn log_file(records: &[Bytes]) -> std::io::Result<Vec<u8>> {
    let raw: usize = records.iter().map(Bytes::len).sum::<usize>() + records.len() + 16;
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw / 8), Compression::new(6));
    encoder.write_all(RECORDS_OPEN)?;
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            encoder.write_all(b",")?;
        }
        encoder.write_all(record)?;
    }
    encoder.write_all(RECORDS_CLOSE)?;
    encoder.finish()
}

struct Worker {
    state: AppState,
    key: TrailKey,
    path: std::path::PathBuf,
    file: CursorFile,
    /// How far the log has been read into `batch` (at or past the cursor).
    read_position: u64,
    batch: Batch,
    retry_at: Option<Instant>,
    backoff: Duration,
    last_saved: Instant,
}

pub(super) async fn run(state: AppState, key: TrailKey, shutdown: CancellationToken) {
    let path = state.deliveries.state_path(&key);
    let file = CursorFile::load(&path, &key).unwrap_or_else(|| CursorFile {
        trail_arn: key.arn.clone(),
        created_ms: key.created_ms,
        cursor: 0,
        pending: None,
        status: DeliveryStatus::default(),
    });
    state.deliveries.publish_status(&key, &file.status);
    let mut worker = Worker {
        read_position: file.cursor,
        state: state.clone(),
        key,
        path,
        file,
        batch: Batch::default(),
        retry_at: None,
        backoff: Duration::from_secs(1),
        last_saved: Instant::now(),
    };
    let mut tick = tokio::time::interval(round_interval(state.config.delivery_interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(trail) = worker.current_trail() else {
            // Deleted: its state goes with it.
            let _ = std::fs::remove_file(&worker.path);
            return;
        };
        worker.round(&trail).await;
    }
}

impl Worker {
    fn current_trail(&self) -> Option<Trail> {
        self.state.trails.get(&self.key.arn).filter(|trail| trail.created_ms == self.key.created_ms)
    }

    async fn round(&mut self, trail: &Trail) {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        if let Some(pending) = self.file.pending {
            // A batch whose files may be partly written: after a restart its events are
            // read again from the log; otherwise the batch is still in memory.
            if self.batch.is_empty() {
                match self.read(trail, Batch::default(), self.file.cursor, Some(pending.through)).await {
                    Ok((batch, _, None)) => self.batch = batch,
                    Ok((_, _, Some(error))) | Err(error) => return self.failed(error),
                }
                self.read_position = pending.through;
            }
            return self.deliver(trail, pending).await;
        }

        let batch = std::mem::take(&mut self.batch);
        match self.read(trail, batch, self.read_position, None).await {
            Ok((batch, position, error)) => {
                self.batch = batch;
                self.read_position = position;
                if let Some(error) = error {
                    return self.failed(error);
                }
            }
            Err(error) => {
                // The batch went down with the read: read again from the cursor.
                self.read_position = self.file.cursor;
                return self.failed(error);
            }
        }
        let interval = self.state.config.delivery_interval;
        let due = self.batch.first_added.is_some_and(|first| first.elapsed() >= interval)
            || self.batch.bytes >= MAX_BATCH_BYTES;
        if due {
            let pending = Pending { through: self.read_position, delivered_ms: now_ms() };
            self.file.pending = Some(pending);
            if let Err(error) = self.save().await {
                self.file.pending = None;
                return self.failed(error);
            }
            self.deliver(trail, pending).await;
        } else if self.batch.is_empty()
            && self.read_position > self.file.cursor
            && self.last_saved.elapsed() >= Duration::from_secs(10)
        {
            // Nothing selected for a while: move the cursor so that a restart does not
            // read all of it again.
            self.file.cursor = self.read_position;
            if let Err(error) = self.save().await {
                tracing::warn!(trail = %self.key.arn, %error, "could not save the delivery cursor");
            }
        }
    }

    /// Reads the log into `batch` on a blocking thread (segments may be read from disk).
    /// The batch comes back with the position reached and any error that stopped the read;
    /// `Err` means the read itself died and the batch with it.
    async fn read(
        &self,
        trail: &Trail,
        mut batch: Batch,
        after: u64,
        through: Option<u64>,
    ) -> Result<(Batch, u64, Option<String>), String> {
        let log = self.state.log.clone();
        let trail = trail.clone();
        tokio::task::spawn_blocking(move || {
            let (position, error) = fill(&log, &trail, &mut batch, after, through);
            (batch, position, error)
        })
        .await
        .map_err(|error| error.to_string())
    }

    /// Writes every file of the pending batch, notifies, and commits the cursor.
    async fn deliver(&mut self, trail: &Trail, pending: Pending) {
        let attempt_ms = now_ms();
        self.file.status.latest_delivery_attempt_ms = Some(attempt_ms);
        let mut keys = Vec::new();
        for (region, records) in &self.batch.by_region {
            let name = LogFileName {
                prefix: trail.s3_key_prefix.as_deref(),
                account_id: &trail.account_id,
                region,
                delivered_ms: pending.delivered_ms,
                seed: batch_seed(&self.key, region, self.file.cursor, pending.through),
            };
            let key = name.key();
            let records = records.clone();
            let body = match tokio::task::spawn_blocking(move || log_file(&records)).await {
                Ok(Ok(body)) => Bytes::from(body),
                _ => return self.failed("could not compress a log file".to_owned()),
            };
            if let Err(error) =
                sink::put_log_file(&self.state, &trail.account_id, &trail.s3_bucket_name, &key, body).await
            {
                return self.failed(error);
            }
            keys.push(key);
        }
        let delivered_ms = now_ms();
        if !keys.is_empty() {
            self.file.status.latest_delivery_time_ms = Some(delivered_ms);
        }
        self.file.status.latest_delivery_error = None;
        if let (Some(topic), false) = (&trail.sns_topic_arn, keys.is_empty()) {
            self.notify(topic, &trail.s3_bucket_name, &keys);
        }
        self.file.cursor = pending.through;
        self.file.pending = None;
        self.batch = Batch::default();
        self.read_position = self.read_position.max(pending.through);
        self.retry_at = None;
        self.backoff = Duration::from_secs(1);
        if let Err(error) = self.save().await {
            // The files are written; a restart would redo the batch under the same names
            // and find them there.
            tracing::error!(trail = %self.key.arn, %error, "could not save the delivery cursor");
        }
        self.state.deliveries.publish_status(&self.key, &self.file.status);
        self.prune_windows();
    }

    fn notify(&mut self, topic_arn: &str, bucket: &str, keys: &[String]) {
        let message = serde_json::json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string();
        let now = now_ms();
        self.file.status.latest_notification_attempt_ms = Some(now);
        match self.state.topics.publish(topic_arn, None, &message) {
            Ok(_) => {
                self.file.status.latest_notification_time_ms = Some(now);
                self.file.status.latest_notification_error = None;
            }
            Err(error) => {
                tracing::warn!(trail = %self.key.arn, %error, "trail notification failed");
                self.file.status.latest_notification_error = Some(error.to_string());
            }
        }
    }

    /// Windows wholly behind the cursor are history; dropping them keeps the registry small.
    fn prune_windows(&self) {
        let cursor = self.file.cursor;
        let Some(trail) = self.current_trail() else { return };
        let stale = trail.logging.iter().filter(|window| window.through.is_some_and(|through| through <= cursor));
        if stale.count() == 0 {
            return;
        }
        let (arn, created_ms) = (self.key.arn.clone(), self.key.created_ms);
        let result = self.state.trails.update(|trails| {
            if let Some(trail) = trails.iter_mut().find(|trail| trail.arn() == arn && trail.created_ms == created_ms) {
                trail.prune_windows(cursor);
            }
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(trail = %self.key.arn, message = %error.message, "could not prune logging windows");
        }
    }

    fn failed(&mut self, error: String) {
        tracing::warn!(trail = %self.key.arn, %error, retry_in_ms = self.backoff.as_millis() as u64, "delivery failed");
        self.file.status.latest_delivery_error = Some(error);
        self.state.deliveries.publish_status(&self.key, &self.file.status);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
    }

    async fn save(&mut self) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|error| error.to_string())?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        self.last_saved = Instant::now();
        Ok(())
    }
}
