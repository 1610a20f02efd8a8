//! Trails: what each trail is (its bucket, selectors, tags, whether it logs) and the
//! registry that keeps them, persisted in `<data_dir>/trails/trails.json`.
//!
//! The registry is the control plane's record of trails; the delivery engine
//! ([`crate::delivery`]) reads it on every round and never writes it. Every change is
//! durable (written whole and renamed into place) before the API call that made it is
//! answered.

pub mod names;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use trailkeeper_core::selectors::{AdvancedEventSelector, EventSelector, Selection};
use trailkeeper_store::fsutil::write_atomic;

use crate::api::ApiError;
pub use names::{TrailRef, trail_arn};

/// One trail, as the registry stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trail {
    pub name: String,
    pub account_id: String,
    pub home_region: String,
    pub s3_bucket_name: String,
    pub s3_key_prefix: Option<String>,
    /// The topic as the user named it (name or ARN), and its ARN.
    pub sns_topic_name: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub include_global_service_events: bool,
    pub is_multi_region_trail: bool,
    pub log_file_validation_enabled: bool,
    pub event_selectors: Option<Vec<EventSelector>>,
    pub advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
    pub insight_selectors: Vec<InsightSelector>,
    pub tags: Vec<Tag>,
    /// The stretches of the event log this trail delivers: events at log positions
    /// `(after, through]` of some window. StartLogging opens a window at the newest
    /// position; StopLogging closes it at its own audit record, so that the trail delivers
    /// who stopped it. Events recorded while stopped fall between windows and are never
    /// delivered.
    pub logging: Vec<LoggingWindow>,
    pub start_logging_time_ms: Option<i64>,
    pub stop_logging_time_ms: Option<i64>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingWindow {
    pub after: u64,
    pub through: Option<u64>,
    /// Closed by a StopLogging whose audit record is not yet in the log: `through` is the
    /// newest position at the stop, and moves to the record once it is stored. Delivery
    /// holds at `through` until then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_stop_record: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsightSelector {
    #[serde(rename = "InsightType")]
    pub insight_type: String,
    #[serde(rename = "EventCategories", default, skip_serializing_if = "Option::is_none")]
    pub event_categories: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Trail {
    pub fn arn(&self) -> String {
        trail_arn(&self.home_region, &self.account_id, &self.name)
    }

    pub fn is_logging(&self) -> bool {
        self.logging.last().is_some_and(|window| window.through.is_none())
    }

    /// Whether the trail was logging when the event at `seq` was recorded.
    pub fn logs_position(&self, seq: u64) -> bool {
        self.logging.iter().any(|window| seq > window.after && window.through.is_none_or(|through| seq <= through))
    }

    /// Whether the trail sees a Region's events: its home Region, or every Region.
    pub fn covers_region(&self, region: &str) -> bool {
        self.is_multi_region_trail || self.home_region == region
    }

    pub fn selection(&self) -> Selection {
        match (&self.event_selectors, &self.advanced_event_selectors) {
            (_, Some(advanced)) => Selection::Advanced(advanced.clone()),
            (Some(basic), None) => Selection::Basic(basic.clone()),
            (None, None) => Selection::Default,
        }
    }

    /// Opens a logging window at log position `last_seq` (no-op when already logging).
    pub fn start_logging(&mut self, last_seq: u64, now_ms: i64) {
        // A stop still waiting for its record (it could not be settled) ends where it closed,
        // so that it never holds delivery behind the new window.
        self.settle_stop(None);
        if !self.is_logging() {
            self.logging.push(LoggingWindow { after: last_seq, through: None, awaiting_stop_record: false });
        }
        self.start_logging_time_ms = Some(now_ms);
    }

    /// Closes the open logging window at log position `last_seq`, to be moved to the stop's
    /// audit record by [`Trail::settle_stop`]. Returns whether a window was closed (false
    /// when already stopped).
    pub fn stop_logging(&mut self, last_seq: u64, now_ms: i64) -> bool {
        self.stop_logging_time_ms = Some(now_ms);
        let Some(window) = self.logging.last_mut().filter(|window| window.through.is_none()) else {
            return false;
        };
        window.through = Some(last_seq.max(window.after));
        window.awaiting_stop_record = true;
        true
    }

    /// Ends the wait for the stop's audit record: the window reaches the record at
    /// `record_seq`, or stays where the stop closed it when the record was not stored.
    pub fn settle_stop(&mut self, record_seq: Option<u64>) {
        for window in self.logging.iter_mut().filter(|window| window.awaiting_stop_record) {
            window.awaiting_stop_record = false;
            if let (Some(through), Some(seq)) = (window.through, record_seq) {
                window.through = Some(through.max(seq));
            }
        }
    }

    /// How far delivery may read: up to a stop still waiting for its audit record, whose
    /// window may yet grow to it; anywhere otherwise.
    pub fn delivery_hold(&self) -> Option<u64> {
        self.logging.iter().find(|window| window.awaiting_stop_record).and_then(|window| window.through)
    }

    /// Forgets windows that end at or before `cursor`: delivery has passed them.
    pub fn prune_windows(&mut self, cursor: u64) {
        let keep_from = self.logging.iter().position(|window| window.through.is_none_or(|through| through > cursor));
        match keep_from {
            Some(first) => {
                self.logging.drain(..first);
            }
            None => self.logging.clear(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrailsFile {
    version: u32,
    trails: Vec<Trail>,
}

const TRAILS_FILE_VERSION: u32 = 1;

fn read_trails_file(path: &Path) -> Result<Vec<Trail>, TrailsError> {
    let failure = |detail: String| TrailsError::Read { path: path.display().to_string(), detail };
    match std::fs::read(path) {
        Ok(bytes) => {
            let file: TrailsFile = serde_json::from_slice(&bytes).map_err(|error| failure(error.to_string()))?;
            if file.version != TRAILS_FILE_VERSION {
                return Err(failure(format!("unsupported version {}", file.version)));
            }
            Ok(file.trails)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(failure(error.to_string())),
    }
}

/// Every trail of every account. Reads take the read lock only to clone what they need;
/// writers serialise on `write_lock` so that a change and its file write are one step,
/// while readers keep going until the new state is published.
pub struct Trails {
    path: PathBuf,
    trails: RwLock<Vec<Trail>>,
    write_lock: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrailsError {
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
}

impl Trails {
    pub fn open(data_dir: &Path) -> Result<Trails, TrailsError> {
        let dir = data_dir.join("trails");
        let failure = |detail: String| TrailsError::Read { path: dir.display().to_string(), detail };
        std::fs::create_dir_all(&dir).map_err(|error| failure(error.to_string()))?;
        let path = dir.join("trails.json");
        let mut trails = read_trails_file(&path)?;
        // A stop whose audit record was never stored (the server went down between the two)
        // ends where it closed the window.
        trails.iter_mut().for_each(|trail| trail.settle_stop(None));
        Ok(Trails { path, trails: RwLock::new(trails), write_lock: Mutex::new(()) })
    }

    /// Every trail in `data_dir`'s registry, read without creating or changing anything:
    /// for offline readers such as `trailkeeper validate-logs`. No registry is no trails.
    pub fn read_only(data_dir: &Path) -> Result<Vec<Trail>, TrailsError> {
        read_trails_file(&data_dir.join("trails").join("trails.json"))
    }

    /// A copy of every trail.
    pub fn all(&self) -> Vec<Trail> {
        self.trails.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn get(&self, arn: &str) -> Option<Trail> {
        self.trails.read().unwrap_or_else(PoisonError::into_inner).iter().find(|trail| trail.arn() == arn).cloned()
    }

    /// Applies `change` to a copy of the trails, makes the result durable, then publishes
    /// it. Nothing changes when `change` fails or the file cannot be written.
    pub fn update<R>(&self, change: impl FnOnce(&mut Vec<Trail>) -> Result<R, ApiError>) -> Result<R, ApiError> {
        let _writer = self.write_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut trails = self.all();
        let result = change(&mut trails)?;
        let file = TrailsFile { version: TRAILS_FILE_VERSION, trails };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|_| ApiError::internal())?;
        write_atomic(&self.path, &bytes).map_err(|error| {
            tracing::error!(%error, "cannot save trails");
            ApiError::internal()
        })?;
        *self.trails.write().unwrap_or_else(PoisonError::into_inner) = file.trails;
        Ok(result)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A trail with every setting at its default, for tests across the crate.
    pub(crate) fn trail(name: &str) -> Trail {
        Trail {
            name: name.into(),
            account_id: "123456789012".into(),
            home_region: "us-east-1".into(),
            s3_bucket_name: "logs".into(),
            s3_key_prefix: None,
            sns_topic_name: None,
            sns_topic_arn: None,
            include_global_service_events: true,
            is_multi_region_trail: false,
            log_file_validation_enabled: false,
            event_selectors: None,
            advanced_event_selectors: None,
            insight_selectors: Vec::new(),
            tags: Vec::new(),
            logging: Vec::new(),
            start_logging_time_ms: None,
            stop_logging_time_ms: None,
            created_ms: 0,
        }
    }

    #[test]
    fn delivers_only_what_was_recorded_while_logging() {
        let mut trail = trail("t1");
        assert!(!trail.logs_position(1));
        trail.start_logging(10, 1);
        assert!(trail.stop_logging(20, 2));
        assert_eq!(trail.delivery_hold(), Some(20));
        trail.settle_stop(Some(22));
        assert_eq!(trail.delivery_hold(), None);
        assert!(!trail.stop_logging(25, 2), "already stopped");
        trail.start_logging(30, 3);
        assert!(trail.is_logging());
        let logged: Vec<u64> = (0..40).filter(|&seq| trail.logs_position(seq)).collect();
        assert_eq!(logged, (11..=22).chain(31..40).collect::<Vec<_>>());
        trail.prune_windows(25);
        assert_eq!(trail.logging, vec![LoggingWindow { after: 30, through: None, awaiting_stop_record: false }]);
    }

    #[test]
    fn a_start_ends_a_stop_still_waiting_for_its_record() {
        let mut trail = trail("t1");
        trail.start_logging(10, 1);
        assert!(trail.stop_logging(20, 2));
        trail.start_logging(25, 3);
        assert_eq!(trail.delivery_hold(), None);
        let logged: Vec<u64> = (0..30).filter(|&seq| trail.logs_position(seq)).collect();
        assert_eq!(logged, (11..=20).chain(26..30).collect::<Vec<_>>());
    }

    #[test]
    fn a_stop_whose_record_never_came_ends_where_it_closed() {
        let dir = tempfile::tempdir().unwrap();
        let trails = Trails::open(dir.path()).unwrap();
        trails
            .update(|all| {
                let mut stopped = trail("t1");
                stopped.start_logging(10, 1);
                assert!(stopped.stop_logging(20, 2));
                all.push(stopped);
                Ok(())
            })
            .unwrap();
        let reopened = Trails::open(dir.path()).unwrap();
        let window = reopened.all()[0].logging[0];
        assert_eq!(window, LoggingWindow { after: 10, through: Some(20), awaiting_stop_record: false });
    }

    #[test]
    fn changes_are_durable_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let trails = Trails::open(dir.path()).unwrap();
        trails
            .update(|all| {
                all.push(trail("t1"));
                Ok(())
            })
            .unwrap();
        let refused: Result<(), ApiError> = trails.update(|all| {
            all.clear();
            Err(ApiError::internal())
        });
        assert!(refused.is_err());
        let reopened = Trails::open(dir.path()).unwrap();
        assert_eq!(reopened.all().len(), 1);
        assert_eq!(Trails::read_only(dir.path()).unwrap().len(), 1);
        let empty = tempfile::tempdir().unwrap();
        assert!(Trails::read_only(empty.path()).unwrap().is_empty());
        assert!(!empty.path().join("trails").exists(), "reading creates nothing");
        assert!(reopened.get("arn:aws:cloudtrail:us-east-1:123456789012:trail/t1").is_some());
    }
}
