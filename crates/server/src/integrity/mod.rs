//! Beyond CloudTrail: a verifiable log. Every stored event is a leaf of the RFC 9162 Merkle
//! tree of its (account, Region) ([`trailkeeper_store::merkle`]); this module signs
//! checkpoints of those trees (size, root hash, time) with the Region's signing key, on a
//! schedule (`checkpoint_interval_seconds`, only for trees that grew) and on demand, keeps
//! them ([`checkpoints`]), answers for them and for proofs over HTTP ([`api`]), and checks a
//! stopped store against them ([`offline`]).
//!
//! A verifier needs only the public key, the proof and the event: the event's leaf hash,
//! the inclusion path and the signed checkpoint's size and root settle it.

pub mod api;
pub mod checkpoints;
pub mod offline;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use trailkeeper_store::merkle::TreeId;

use crate::api::now_ms;
use crate::state::AppState;
use checkpoints::{SignError, SignedCheckpoint};

/// How long an on-demand checkpoint waits for the trees to take in what the log held when
/// it was asked for.
const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// Signs a checkpoint of every tree that grew since its latest one. Blocking: signing may
/// make a key, and every checkpoint is synced.
pub fn checkpoint_grown_trees(state: &AppState) -> usize {
    let mut signed = 0;
    for (tree, head) in state.merkle.heads() {
        match state.checkpoints.sign_if_grown(&tree, head, now_ms(), &state.signing_keys) {
            Ok((_, true)) => signed += 1,
            Ok((_, false)) => {}
            Err(error) => tracing::error!(%error, %tree, "could not sign a checkpoint"),
        }
    }
    signed
}

/// Signs a checkpoint of `tree` now, once the trees hold every event the log held when
/// called (or after [`CATCH_UP_WAIT`], with what they hold then). Blocking.
pub fn checkpoint_now(state: &AppState, tree: &TreeId) -> Result<Option<(SignedCheckpoint, bool)>, SignError> {
    let target = state.log.last_seq();
    let deadline = Instant::now() + CATCH_UP_WAIT;
    while state.merkle.through_seq() < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let head = state.merkle.head(tree);
    if head.size == 0 {
        return Ok(None);
    }
    state.checkpoints.sign_if_grown(tree, head, now_ms(), &state.signing_keys).map(Some)
}

/// Checkpoints every grown tree every `checkpoint_interval`, starting at once (so a
/// restart does not wait a whole interval), until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(state.config.checkpoint_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let signer = state.clone();
        match tokio::task::spawn_blocking(move || checkpoint_grown_trees(&signer)).await {
            Ok(0) => {}
            Ok(signed) => tracing::info!(signed, "signed checkpoints"),
            Err(error) => tracing::error!(%error, "the checkpoint task failed"),
        }
    }
}
