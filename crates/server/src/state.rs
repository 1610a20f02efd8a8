//! [`AppState`]: everything the server reaches at run time, built once in `main` and
//! handed to every handler. There is no other global state.

use std::sync::Arc;

use trailkeeper_store::EventLog;
use trailkeeper_store::merkle::MerkleTrees;

use crate::config::Config;
use crate::delivery::Deliveries;
use crate::external_bucket::ExternalBuckets;
use crate::identity::Identities;
use crate::integrity::checkpoints::Checkpoints;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::s3::BucketStore;
use crate::signing::SigningKeys;
use crate::sns;
use crate::trails::Trails;

/// A cheap-clone handle to the server's shared state.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Config,
    pub identities: Identities,
    pub log: EventLog,
    /// One Merkle tree per (account, Region) over the log (`<data_dir>/merkle`).
    pub merkle: MerkleTrees,
    /// Signed checkpoints of those trees (`<data_dir>/integrity/checkpoints.jsonl`).
    pub checkpoints: Checkpoints,
    /// Signs `NextToken`s; stored in the data directory so tokens survive restarts.
    pub token_key: [u8; 32],
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    /// Megabytes of request bodies being read, decompressed or parsed at once. Taken before
    /// a body is read and released when its records are stored, so that overload turns into
    /// `ThrottlingException` instead of unbounded memory.
    pub ingest_budget: Arc<tokio::sync::Semaphore>,
    pub trails: Trails,
    pub deliveries: Deliveries,
    /// SNS topics and subscriptions (`<data_dir>/sns/topics.json`).
    pub topics: sns::Topics,
    /// Clients of the buckets `[[buckets.external]]` maps to other S3-compatible services.
    pub external_buckets: ExternalBuckets,
    /// The built-in S3 bucket store under `<data_dir>/buckets`.
    pub buckets: BucketStore,
    /// The keys that sign digest files and checkpoints (`<data_dir>/signing-keys`).
    pub signing_keys: SigningKeys,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
