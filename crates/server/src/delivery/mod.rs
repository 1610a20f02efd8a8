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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::trails::Trail;
pub use digest::DigestLocation;

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
        state_path_in(&self.dir, key)
    }

    fn publish_status(&self, key: &TrailKey, status: &DeliveryStatus) {
        self.statuses.lock().unwrap_or_else(PoisonError::into_inner).insert(key.clone(), status.clone());
    }
}

fn state_path_in(dir: &Path, key: &TrailKey) -> PathBuf {
    dir.join(format!("{}.json", key.file_stem()))
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryStateError {
    #[error("cannot read the delivery state {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the delivery state {path} is unreadable: {detail}")]
    Unreadable { path: PathBuf, detail: String },
}

/// The newest digest file `trail` wrote in each Region, as its delivery state under
/// `data_dir` records it, read without a running server and without changing anything.
/// Empty when the trail has no state file (it never ran, or it was deleted) or never wrote
/// a digest. The state is written after the digests it records, so a digest named here was
/// in its bucket before this call read it.
pub fn newest_digests(data_dir: &Path, trail: &Trail) -> Result<BTreeMap<String, DigestLocation>, DeliveryStateError> {
    let key = TrailKey::of(trail);
    let path = state_path_in(&data_dir.join("trails").join("delivery"), &key);
    Ok(worker::CursorFile::read(&path, &key)?.map(|file| file.digests().newest_digests()).unwrap_or_default())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_newest_digests_of_a_trail_from_its_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let trail: Trail = serde_json::from_value(json!({
            "name": "t", "account_id": "123456789012", "home_region": "us-east-1", "s3_bucket_name": "b",
            "s3_key_prefix": null, "sns_topic_name": null, "sns_topic_arn": null,
            "include_global_service_events": true, "is_multi_region_trail": true,
            "log_file_validation_enabled": true, "event_selectors": null, "advanced_event_selectors": null,
            "insight_selectors": [], "tags": [], "logging": [], "start_logging_time_ms": null,
            "stop_logging_time_ms": null, "created_ms": 7
        }))
        .unwrap();
        assert!(newest_digests(dir.path(), &trail).unwrap().is_empty(), "no state file yet");

        let key = TrailKey::of(&trail);
        let folder = dir.path().join("trails/delivery");
        std::fs::create_dir_all(&folder).unwrap();
        let state = json!({
            "trail_arn": key.arn, "created_ms": 7, "cursor": 10, "pending": null,
            "status": serde_json::to_value(DeliveryStatus::default()).unwrap(),
            "digests": {
                "period_start_ms": null, "regions": {}, "pending": null,
                "last_written": {"eu-west-1": {"bucket": "b", "key": "AWSLogs/x.json.gz"}}
            }
        });
        std::fs::write(state_path_in(&folder, &key), serde_json::to_vec(&state).unwrap()).unwrap();
        let newest = newest_digests(dir.path(), &trail).unwrap();
        assert_eq!(newest["eu-west-1"], DigestLocation { bucket: "b".into(), key: "AWSLogs/x.json.gz".into() });

        let other_life = Trail { created_ms: 8, ..trail.clone() };
        assert!(newest_digests(dir.path(), &other_life).unwrap().is_empty(), "a trail created again is another trail");

        std::fs::write(state_path_in(&folder, &key), b"{\"trail_arn\": 1").unwrap();
        assert!(matches!(newest_digests(dir.path(), &trail), Err(DeliveryStateError::Unreadable { .. })));
    }
}
