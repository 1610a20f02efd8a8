//! One trail's delivery task: read, select, batch, deliver, commit; with back-off while
//! its bucket is unreachable.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use trailkeeper_core::logfile::{LogFileName, RECORDS_CLOSE, RECORDS_OPEN};
use trailkeeper_core::selectors::{EventView, Selection, is_global_service_event};
use trailkeeper_store::fsutil::write_atomic;
use trailkeeper_store::{EventLog, LogEntry, ReadHold};

use super::digest::{DigestState, PendingCut, log_file_entry, sign_digest, whole_seconds};
use super::{DeliveryStateError, DeliveryStatus, MAX_BATCH_BYTES, TrailKey, batch_seed, round_interval, sink};
use crate::api::now_ms;
use crate::state::AppState;
use crate::trails::Trail;

/// How many times a deleted trail's final digest is tried.
const DELETED_CHAIN_ATTEMPTS: u32 = 5;

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
    /// The digest chains, for a trail with log file validation.
    #[serde(default)]
    digests: DigestState,
}

impl CursorFile {
    /// Reads the state file: `None` when there is none for this trail.
    pub(super) fn read(path: &Path, key: &TrailKey) -> Result<Option<CursorFile>, DeliveryStateError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DeliveryStateError::Read { path: path.to_owned(), source }),
        };
        let file: CursorFile = serde_json::from_slice(&bytes)
            .map_err(|error| DeliveryStateError::Unreadable { path: path.to_owned(), detail: error.to_string() })?;
        Ok((file.trail_arn == key.arn && file.created_ms == key.created_ms).then_some(file))
    }

    pub(super) fn digests(&self) -> &DigestState {
        &self.digests
    }

    /// The state file, or `None` when there is none or it cannot be read (logged).
    pub(super) fn load(path: &Path, key: &TrailKey) -> Option<CursorFile> {
        CursorFile::read(path, key)
            .inspect_err(|error| tracing::error!(path = %path.display(), %error, "unreadable delivery state"))
            .ok()
            .flatten()
    }
}

/// The selected events of a batch, per Region in log order.
#[derive(Debug, Default)]
struct Batch {
    by_region: BTreeMap<Arc<str>, RegionBatch>,
    bytes: usize,
    first_added: Option<Instant>,
}

/// One Region's part of a batch: one log file.
#[derive(Debug, Clone, Default)]
struct RegionBatch {
    records: Vec<Bytes>,
    oldest_event_ms: i64,
    newest_event_ms: i64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.by_region.is_empty()
    }

    fn add(&mut self, entry: LogEntry) {
        self.bytes += entry.json.len() + 1;
        self.first_added.get_or_insert_with(Instant::now);
        let region = self.by_region.entry(entry.region).or_insert_with(|| RegionBatch {
            records: Vec::new(),
            oldest_event_ms: entry.event_time_ms,
            newest_event_ms: entry.event_time_ms,
        });
        region.oldest_event_ms = region.oldest_event_ms.min(entry.event_time_ms);
        region.newest_event_ms = region.newest_event_ms.max(entry.event_time_ms);
        region.records.push(entry.json);
    }
}

/// Whether `trail` delivers the event: its account, a Region it covers, recorded while it
/// was logging, and chosen by its selectors.
fn selects(trail: &Trail, selection: &Selection, entry: &LogEntry) -> bool {
    if *entry.account_id != *trail.account_id || !trail.covers_region(&entry.region) || !trail.logs_position(entry.seq)
    {
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
    // A stop still waiting for its audit record holds delivery where it closed the window.
    let end = through.unwrap_or_else(|| log.last_seq().min(trail.delivery_hold().unwrap_or(u64::MAX)));
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

/// One log file: `{"Records":[...]}` with each record as stored, in one gzip member; and
/// the SHA-256 of those uncompressed bytes, which a digest lists.
fn log_file(records: &[Bytes]) -> std::io::Result<(Vec<u8>, [u8; 32])> {
    let raw: usize = records.iter().map(Bytes::len).sum::<usize>() + records.len() + 16;
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw / 8), Compression::new(6));
    let mut hash = Sha256::new();
    let mut write = |bytes: &[u8]| {
        hash.update(bytes);
        encoder.write_all(bytes)
    };
    write(RECORDS_OPEN)?;
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            write(b",")?;
        }
        write(record)?;
    }
    write(RECORDS_CLOSE)?;
    Ok((encoder.finish()?, hash.finalize().into()))
}

/// What failed, for GetTrailStatus: a log file or a digest file.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Delivery,
    Digest,
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
    /// Keeps compaction off the segments this trail has yet to deliver from (a batch is
    /// redone from the saved cursor after a restart).
    hold: ReadHold,
    /// The trail as last seen, for the final digest once it is deleted.
    last_trail: Option<Trail>,
}

pub(super) async fn run(state: AppState, key: TrailKey, shutdown: CancellationToken) {
    let path = state.deliveries.state_path(&key);
    let file = CursorFile::load(&path, &key).unwrap_or_else(|| CursorFile {
        trail_arn: key.arn.clone(),
        created_ms: key.created_ms,
        cursor: 0,
        pending: None,
        status: DeliveryStatus::default(),
        digests: DigestState::default(),
    });
    state.deliveries.publish_status(&key, &file.status);
    let mut worker = Worker {
        hold: state.log.hold(file.cursor),
        read_position: file.cursor,
        state: state.clone(),
        key,
        path,
        file,
        batch: Batch::default(),
        retry_at: None,
        backoff: Duration::from_secs(1),
        last_saved: Instant::now(),
        last_trail: None,
    };
    let mut tick = tokio::time::interval(round_interval(state.config.delivery_interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(trail) = worker.current_trail() else {
            // Deleted: a final digest closes its chain, and its state goes with it.
            worker.close_deleted_chain(&shutdown).await;
            let _ = std::fs::remove_file(&worker.path);
            return;
        };
        if worker.round(&trail).await {
            // A full batch went out and more is waiting: the next round starts now.
            tick.reset_immediately();
        }
        worker.last_trail = Some(trail);
    }
}

impl Worker {
    fn current_trail(&self) -> Option<Trail> {
        self.state.trails.get(&self.key.arn).filter(|trail| trail.created_ms == self.key.created_ms)
    }

    /// One round: finish what a crash or failure left, read what is new, deliver the batch
    /// when due, cut digests when due. True when a full batch went out, so that more may
    /// be waiting.
    async fn round(&mut self, trail: &Trail) -> bool {
        let Some(full) = self.batch_round(trail).await else { return false };
        // Digests follow the trail as it is now, not as the round began. A stop that came
        // while the batch was read, its record in the batch, makes this round's cut the
        // closing one: a periodic cut would vouch for the stop's record and leave the
        // closing digest to come a round later, empty.
        if let Some(trail) = self.current_trail() {
            self.digest_round(&trail).await;
        }
        full && self.retry_at.is_none()
    }

    /// The delivery part of [`Worker::round`]: `None` when it stopped early (backing off, or
    /// a failure), so that no digest is cut this round; otherwise whether it delivered a
    /// full batch.
    async fn batch_round(&mut self, trail: &Trail) -> Option<bool> {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        if self.file.digests.pending.is_some() {
            // A digest round cut before a restart or a failure is finished first: no log
            // file may join a period whose digests are being written.
            if !self.write_digests(trail).await {
                return None;
            }
        }
        if !self.open_chain(trail).await {
            return None;
        }
        if let Some(pending) = self.file.pending {
            // A batch whose files may be partly written: after a restart its events are
            // read again from the log; otherwise the batch is still in memory.
            if self.batch.is_empty() {
                match self.read(trail, Batch::default(), self.file.cursor, Some(pending.through)).await {
                    Ok((batch, _, None)) => self.batch = batch,
                    Ok((_, _, Some(error))) | Err(error) => {
                        self.failed(Failure::Delivery, error);
                        return None;
                    }
                }
                self.read_position = pending.through;
            }
            self.deliver(trail, pending).await;
            return Some(true);
        }

        let batch = std::mem::take(&mut self.batch);
        let read = self.read(trail, batch, self.read_position, None).await;
        if !self.take_read(read) {
            return None;
        }
        let interval = self.state.config.delivery_interval;
        let full = self.batch.bytes >= MAX_BATCH_BYTES;
        let due = full || self.batch.first_added.is_some_and(|first| first.elapsed() >= interval);
        if due {
            let pending = Pending { through: self.read_position, delivered_ms: now_ms() };
            self.file.pending = Some(pending);
            if let Err(error) = self.save().await {
                self.file.pending = None;
                self.failed(Failure::Delivery, error);
                return None;
            }
            // A full batch means more is waiting: the next batch is read while this one is
            // compressed and written, and taken only once this one is delivered.
            let next = full.then(|| self.spawn_read(trail, Batch::default(), pending.through, None));
            self.deliver(trail, pending).await;
            if let Some(next) = next
                && self.file.pending.is_none()
                && !self.take_read(next.await.map_err(|error| error.to_string()))
            {
                return None;
            }
            return Some(full);
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
        Some(false)
    }

    /// Reads the log into `batch` on a blocking thread (segments may be read from disk).
    /// The batch comes back with the position reached and any error that stopped the read;
    /// `Err` means the read itself died and the batch with it.
    async fn read(
        &self,
        trail: &Trail,
        batch: Batch,
        after: u64,
        through: Option<u64>,
    ) -> Result<(Batch, u64, Option<String>), String> {
        self.spawn_read(trail, batch, after, through).await.map_err(|error| error.to_string())
    }

    /// [`Worker::read`], started now and awaited later.
    fn spawn_read(
        &self,
        trail: &Trail,
        mut batch: Batch,
        after: u64,
        through: Option<u64>,
    ) -> tokio::task::JoinHandle<(Batch, u64, Option<String>)> {
        let log = self.state.log.clone();
        let trail = trail.clone();
        tokio::task::spawn_blocking(move || {
            let (position, error) = fill(&log, &trail, &mut batch, after, through);
            (batch, position, error)
        })
    }

    /// Takes a read's batch and position into the worker. False when the read failed, which
    /// is reported and backed off from.
    fn take_read(&mut self, read: Result<(Batch, u64, Option<String>), String>) -> bool {
        match read {
            Ok((batch, position, error)) => {
                self.batch = batch;
                self.read_position = position;
                match error {
                    Some(error) => {
                        self.failed(Failure::Delivery, error);
                        false
                    }
                    None => true,
                }
            }
            Err(error) => {
                // The batch went down with the read: read again from the cursor.
                self.batch = Batch::default();
                self.read_position = self.file.cursor;
                self.failed(Failure::Delivery, error);
                false
            }
        }
    }

    /// Writes every file of the pending batch, notifies, and commits the cursor.
    async fn deliver(&mut self, trail: &Trail, pending: Pending) {
        let attempt_ms = now_ms();
        self.file.status.latest_delivery_attempt_ms = Some(attempt_ms);
        let mut keys = Vec::new();
        let mut digested = Vec::new();
        // Every Region's file is compressed at once, each on its own blocking thread, and
        // written in Region order as it is ready.
        let compressing: Vec<_> = self
            .batch
            .by_region
            .values()
            .map(|part| {
                let records = part.records.clone();
                tokio::task::spawn_blocking(move || log_file(&records))
            })
            .collect();
        for ((region, part), compressed) in self.batch.by_region.iter().zip(compressing) {
            let name = LogFileName {
                prefix: trail.s3_key_prefix.as_deref(),
                account_id: &trail.account_id,
                region,
                delivered_ms: pending.delivered_ms,
                seed: batch_seed(&self.key, region, self.file.cursor, pending.through),
            };
            let key = name.key();
            let (body, hash) = match compressed.await {
                Ok(Ok((body, hash))) => (Bytes::from(body), hash),
                _ => return self.failed(Failure::Delivery, "could not compress a log file".to_owned()),
            };
            let bucket = &trail.s3_bucket_name;
            if let Err(error) =
                sink::put_trail_file(&self.state, &trail.account_id, bucket, &key, body, BTreeMap::new()).await
            {
                return self.failed(Failure::Delivery, error);
            }
            let times = (part.oldest_event_ms, part.newest_event_ms);
            digested.push((region.clone(), log_file_entry(bucket, &key, &hash, times)));
            keys.push(key);
        }
        for (region, file) in digested {
            self.file.digests.add_log_file(&region, file);
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

    fn failed(&mut self, failure: Failure, error: String) {
        tracing::warn!(trail = %self.key.arn, %error, ?failure, retry_in_ms = self.backoff.as_millis() as u64, "delivery failed");
        match failure {
            Failure::Delivery => self.file.status.latest_delivery_error = Some(error),
            Failure::Digest => self.file.status.latest_digest_delivery_error = Some(error),
        }
        self.state.deliveries.publish_status(&self.key, &self.file.status);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
    }

    /// Opens a digest chain once the trail logs with validation on. Called before anything
    /// is delivered in a round, so that every log file delivered after the setting changed
    /// is in the chain. Returns false when the chain should open but could not.
    async fn open_chain(&mut self, trail: &Trail) -> bool {
        let digests = &self.file.digests;
        let wanted = trail.log_file_validation_enabled && trail.is_logging();
        if !wanted || digests.period_start_ms.is_some() || digests.pending.is_some() {
            return true;
        }
        let before = self.file.digests.clone();
        self.file.digests.open(trail, now_ms());
        if let Err(error) = self.save().await {
            self.file.digests = before;
            self.failed(Failure::Digest, error);
            return false;
        }
        true
    }

    /// Cuts or closes the trail's digest chain, as its settings and the clock ask.
    async fn digest_round(&mut self, trail: &Trail) {
        if self.file.pending.is_some() || self.file.digests.pending.is_some() {
            return;
        }
        let now = now_ms();
        let wanted = trail.log_file_validation_enabled && trail.is_logging();
        let Some(start) = self.file.digests.period_start_ms else { return };
        let period_over = now - start >= self.state.config.digest_interval.as_millis() as i64;
        let due = if wanted {
            period_over
        } else {
            // Validation turned off closes the chain at once; logging stopped closes it once
            // every event recorded before the stop is delivered.
            !trail.log_file_validation_enabled || self.caught_up(trail)
        };
        if due && self.file.digests.can_cut(now) {
            self.cut_digests(trail, now, !wanted).await;
        }
    }

    /// Whether every event the trail logged before it stopped, the stop's own record
    /// included, has been delivered.
    fn caught_up(&self, trail: &Trail) -> bool {
        let stopped_at = trail.logging.last().and_then(|window| window.through).unwrap_or(0);
        trail.delivery_hold().is_none() && self.batch.is_empty() && self.read_position >= stopped_at
    }

    /// Makes a digest round durable (its end and signing keys), then writes it.
    async fn cut_digests(&mut self, trail: &Trail, now: i64, closing: bool) {
        let end_ms = whole_seconds(now);
        let regions: Vec<String> = self.file.digests.regions.keys().cloned().collect();
        let state = self.state.clone();
        let keys = tokio::task::spawn_blocking(move || {
            regions
                .into_iter()
                .map(|region| {
                    let key = state.signing_keys.current(&region, end_ms)?;
                    Ok((region, key.fingerprint().to_owned()))
                })
                .collect::<Result<BTreeMap<String, String>, crate::signing::SigningError>>()
        })
        .await;
        let keys = match keys {
            Ok(Ok(keys)) => keys,
            Ok(Err(error)) => return self.failed(Failure::Digest, error.to_string()),
            Err(error) => return self.failed(Failure::Digest, error.to_string()),
        };
        self.file.digests.pending = Some(PendingCut { end_ms, keys, closing });
        if let Err(error) = self.save().await {
            self.file.digests.pending = None;
            return self.failed(Failure::Digest, error);
        }
        self.write_digests(trail).await;
    }

    /// Writes every digest of the pending round and moves the chain past it. Returns
    /// whether the round is done.
    async fn write_digests(&mut self, trail: &Trail) -> bool {
        let digests = &self.file.digests;
        let (Some(cut), Some(start_ms)) = (digests.pending.clone(), digests.period_start_ms) else {
            self.file.digests.pending = None;
            return true;
        };
        let mut written = Vec::new();
        for (region, chain) in &digests.regions {
            let Some(fingerprint) = cut.keys.get(region) else {
                self.failed(Failure::Digest, format!("no signing key was chosen for Region {region}"));
                return false;
            };
            let (state, trail_copy, cut_copy) = (self.state.clone(), trail.clone(), cut.clone());
            let (region_name, chain, fingerprint) = (region.clone(), chain.clone(), fingerprint.clone());
            let signed = tokio::task::spawn_blocking(move || {
                let key = state.signing_keys.by_fingerprint(&region_name, &fingerprint).map_err(|e| e.to_string())?;
                sign_digest(&trail_copy, start_ms, &cut_copy, &region_name, &chain, &key)
            })
            .await
            .map_err(|error| error.to_string())
            .and_then(|signed| signed);
            let signed = match signed {
                Ok(signed) => signed,
                Err(error) => {
                    self.failed(Failure::Digest, error);
                    return false;
                }
            };
            let put = sink::put_trail_file(
                &self.state,
                &trail.account_id,
                &trail.s3_bucket_name,
                &signed.key,
                signed.body,
                signed.metadata,
            )
            .await;
            if let Err(error) = put {
                self.failed(Failure::Digest, error);
                return false;
            }
            written.push((region.clone(), signed.previous));
        }
        self.file.digests.commit(&cut, written);
        self.file.status.latest_digest_delivery_time_ms = Some(now_ms());
        self.file.status.latest_digest_delivery_error = None;
        if let Err(error) = self.save().await {
            // The digests are written; a restart redoes the round under the same names.
            tracing::error!(trail = %self.key.arn, %error, "could not save the digest chain");
        }
        self.state.deliveries.publish_status(&self.key, &self.file.status);
        true
    }

    /// A deleted trail's final digest, from its last known settings. A failure is retried
    /// with back-off a few times ([`DELETED_CHAIN_ATTEMPTS`]); then the trail and its state
    /// go away without it, and the chain ends at the last digest written.
    async fn close_deleted_chain(&mut self, shutdown: &CancellationToken) {
        let Some(trail) = self.last_trail.take() else { return };
        let closed = |digests: &DigestState| digests.pending.is_none() && digests.period_start_ms.is_none();
        for attempt in 1..=DELETED_CHAIN_ATTEMPTS {
            if closed(&self.file.digests) {
                return;
            }
            if attempt > 1 {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.backoff) => {}
                }
            }
            if self.file.digests.pending.is_some() {
                self.write_digests(&trail).await;
                continue;
            }
            let mut now = now_ms();
            if !self.file.digests.can_cut(now) {
                tokio::time::sleep(Duration::from_millis(1000 - now.rem_euclid(1000) as u64)).await;
                now = now_ms();
            }
            self.cut_digests(&trail, now, true).await;
        }
        if closed(&self.file.digests) {
            return;
        }
        tracing::warn!(trail = %self.key.arn, "the deleted trail's final digest could not be written; its chain ends at the last digest written");
    }

    async fn save(&mut self) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|error| error.to_string())?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        self.last_saved = Instant::now();
        self.hold.advance(self.file.cursor);
        Ok(())
    }
}
