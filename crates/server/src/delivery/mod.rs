//! Trail delivery: every trail follows the event log with a durable cursor, picks the
//! events its selectors select, and writes them as CloudTrail log files to its bucket.
//!
//! One task per trail ([`worker`]). Each round it reads the log past where it last read,
//! keeps what the trail selects in a batch per Region, and once the batch is old enough
//! (`delivery_interval_seconds`) or big enough it delivers: it first makes a *pending*
//! record durable (how far the batch reaches and its delivery time, from which every file
//! name follows), then writes the files write-once, then moves the cursor past the batch.
//! A crash between the two durable steps redoes the batch from the log under the same
//! names, and a file already there counts as written: every selected event reaches every
//! trail exactly once.
//!
//! Architecture invariant: delivery never changes what a trail is configured to do. It
//! writes its own state files under `<data_dir>/trails/delivery/`, and the registry only to
//! forget logging windows its cursor has passed.

mod digest;
pub mod sink;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::trails::Trail;

/// What GetTrailStatus reports about a trail's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryStatus {
    pub latest_delivery_time_ms: Option<i64>,
    pub latest_delivery_attempt_ms: Option<i64>,
    pub latest_delivery_error: Option<String>,
    pub latest_notification_time_ms: Option<i64>,
    pub latest_notification_attempt_ms: Option<i64>,
    pub latest_notification_error: Option<String>,
    #[serde(default)]
    pub latest_digest_delivery_time_ms: Option<i64>,
    #[serde(default)]
    pub latest_digest_delivery_error: Option<String>,
}

/// Names one trail's life: a trail deleted and created again under the same name is a
/// new trail, with a new cursor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrailKey {
    pub arn: String,
    pub created_ms: i64,
}

impl TrailKey {
    pub fn of(trail: &Trail) -> TrailKey {
        TrailKey { arn: trail.arn(), created_ms: trail.created_ms }
    }

    fn file_stem(&self) -> String {
        let digest =
            Sha256::new().chain_update(self.arn.as_bytes()).chain_update(self.created_ms.to_be_bytes()).finalize();
        hex::encode(&digest[..16])
    }
}

/// The delivery side of every trail: where cursors live and the latest status of each.
pub struct Deliveries {
    dir: PathBuf,
    /// Written by each trail's task after every attempt, read by GetTrailStatus.
    statuses: Mutex<HashMap<TrailKey, DeliveryStatus>>,
}

impl Deliveries {
    pub fn open(data_dir: &Path) -> std::io::Result<Deliveries> {
        let dir = data_dir.join("trails").join("delivery");
        std::fs::create_dir_all(&dir)?;
        Ok(Deliveries { dir, statuses: Mutex::new(HashMap::new()) })
    }

    fn state_path(&self, key: &TrailKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.file_stem()))
    }

    fn publish_status(&self, key: &TrailKey, status: &DeliveryStatus) {
        self.statuses.lock().unwrap_or_else(PoisonError::into_inner).insert(key.clone(), status.clone());
    }
}

/// The trail's latest delivery status: from its task, or from its state file when its
/// task has not run yet since the server started.
pub fn status(state: &AppState, trail: &Trail) -> DeliveryStatus {
    let key = TrailKey::of(trail);
    if let Some(status) = state.deliveries.statuses.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return status.clone();
    }
    worker::CursorFile::load(&state.deliveries.state_path(&key), &key).map(|file| file.status).unwrap_or_default()
}

/// Drops what delivery keeps for a deleted trail.
pub fn forget_trail(state: &AppState, trail: &Trail) {
    let key = TrailKey::of(trail);
    state.deliveries.statuses.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    let path = state.deliveries.state_path(&key);
    if let Err(error) = std::fs::remove_file(&path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %error, "could not remove a deleted trail's delivery state");
    }
}

/// Runs until `shutdown`: starts a task for every trail, and lets each end when its trail
/// is deleted.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut running: HashMap<TrailKey, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        running.retain(|_, task| !task.is_finished());
        for trail in state.trails.all() {
            let key = TrailKey::of(&trail);
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(key) {
                let task = tokio::spawn(worker::run(state.clone(), slot.key().clone(), shutdown.clone()));
                slot.insert(task);
            }
        }
    }
    for (_, task) in running {
        let _ = task.await;
    }
}

/// A number that names one batch of one trail in one Region, for its file name.
fn batch_seed(key: &TrailKey, region: &str, after: u64, through: u64) -> u128 {
    let digest = Sha256::new()
        .chain_update(key.arn.as_bytes())
        .chain_update(key.created_ms.to_be_bytes())
        .chain_update((region.len() as u64).to_be_bytes())
        .chain_update(region.as_bytes())
        .chain_update(after.to_be_bytes())
        .chain_update(through.to_be_bytes())
        .finalize();
    let mut seed = [0u8; 16];
    seed.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(seed)
}

/// How often a trail's task looks for new events: often enough that a batch is delivered
/// within a quarter of the interval of being due.
fn round_interval(delivery_interval: Duration) -> Duration {
    (delivery_interval / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// An upper bound on a batch's JSON bytes: a batch this big is delivered at once, and the
/// task stops reading until it is. Compressed, it stays well under CloudTrail's 50 MB.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
