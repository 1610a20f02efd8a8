//! Where a trail's bucket lives: an external S3-compatible service when the configuration
//! maps the bucket name to one, otherwise the built-in bucket store. This is the one place
//! that tells the two apart.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::api::{ApiError, now_ms};
use crate::external_bucket::ExternalBucketErrorKind;
use crate::s3::{ObjectMetadata, is_valid_bucket_name};
use crate::state::AppState;

/// Log and digest files are JSON, compressed; CloudTrail stores them with this content type.
const TRAIL_FILE_CONTENT_TYPE: &str = "application/json";

/// CreateTrail's and UpdateTrail's bucket check: the bucket exists and the trail's account
/// may write to it.
pub async fn check_bucket(state: &AppState, account_id: &str, bucket: &str) -> Result<(), ApiError> {
    if !is_valid_bucket_name(bucket) {
        return Err(ApiError::client(
            "InvalidS3BucketNameException",
            format!(
                "Invalid S3 bucket name: {bucket}. Bucket names are 3 to 63 lower-case letters, digits, dots and hyphens."
            ),
        ));
    }
    let does_not_exist =
        || ApiError::client("S3BucketDoesNotExistException", format!("S3 bucket {bucket} does not exist!"));
    let policy = || {
        ApiError::client(
            "InsufficientS3BucketPolicyException",
            format!("Incorrect S3 bucket policy is detected for bucket: {bucket}"),
        )
    };
    if let Some(external) = state.external_buckets.get(bucket) {
        return match external.check().await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ExternalBucketErrorKind::NotFound => Err(does_not_exist()),
            Err(error) => {
                tracing::warn!(bucket, %error, "an external bucket failed its check");
                Err(policy())
            }
        };
    }
    match state.buckets.bucket(bucket) {
        None => Err(does_not_exist()),
        Some(info) if info.owner_account_id != account_id => Err(policy()),
        Some(_) => Ok(()),
    }
}

/// Writes one trail file (a log file or a digest) write-once, with `metadata` as its
/// `x-amz-meta-*` user metadata (names without the prefix). A file already there is a file
/// delivered before a crash under the same name, so it counts as written. The error is what
/// GetTrailStatus shows as `LatestDeliveryError`: S3's error code, as CloudTrail shows it.
pub async fn put_trail_file(
    state: &AppState,
    account_id: &str,
    bucket: &str,
    key: &str,
    body: Bytes,
    metadata: BTreeMap<String, String>,
) -> Result<(), String> {
    if let Some(external) = state.external_buckets.get(bucket) {
        let metadata: Vec<(String, String)> = metadata.into_iter().collect();
        return external.put_if_absent(key, body, TRAIL_FILE_CONTENT_TYPE, &metadata).await.map(|_| ()).map_err(
            |error| {
                tracing::warn!(%error, "an external bucket refused a trail file");
                error.code().to_owned()
            },
        );
    }
    let state = state.clone();
    let (account_id, bucket, key) = (account_id.to_owned(), bucket.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || {
        match state.buckets.bucket(&bucket) {
            None => return Err("NoSuchBucket".to_owned()),
            Some(info) if info.owner_account_id != account_id => return Err("AccessDenied".to_owned()),
            Some(_) => {}
        }
        let metadata =
            ObjectMetadata { content_type: Some(TRAIL_FILE_CONTENT_TYPE.to_owned()), user_metadata: metadata };
        let lock_until_ms = now_ms().saturating_add(state.config.buckets.retention.as_millis() as i64);
        state
            .buckets
            .put_object(&bucket, &key, &body, &metadata, Some(lock_until_ms))
            .map(|_| ())
            .map_err(|error| error.code().to_owned())
    })
    .await
    .map_err(|error| error.to_string())?
}
