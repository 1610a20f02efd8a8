//! [`DataDirSource`]: validation offline, straight from a data directory: the trail
//! registry for the trail's bucket and prefix, its delivery state for the newest digest it
//! wrote, the built-in bucket store for digests and log files, and the stored signing keys
//! for public keys. Nothing is created or changed, and a running server may keep writing.
//!
//! Failures are worded as the AWS CLI words the same failure against a server
//! (`An error occurred (NoSuchBucket) when calling the GetBucketLocation operation: ...`),
//! so that both tools print the same line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{DigestLocation, DigestSource, Fetched, PublicKey, SourceError, SourceObject};
use crate::delivery::{self, DeliveryStateError};
use crate::s3::{BucketStore, ListQuery, S3Error};
use crate::signing::{self, PublicKeyInfo};
use crate::trails::{Trail, Trails, TrailsError};

/// Keys per listing page, as S3 pages them.
const PAGE_SIZE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path} is not a data directory (it has no buckets folder)")]
    NotADataDir { path: PathBuf },
    #[error(transparent)]
    Trails(#[from] TrailsError),
    #[error("cannot open the bucket store: {0}")]
    Buckets(#[from] trailkeeper_store::StoreError),
}

/// What the data directory knows about the trail being validated.
#[derive(Debug)]
pub struct DataDirTrail {
    /// The trail, when the registry holds it and it is visible from the source Region (its
    /// home Region, or any Region for a multi-Region trail), as DescribeTrails would show it.
    pub trail: Option<Trail>,
    /// The newest digest the trail wrote in the source Region, per its delivery state.
    pub newest_written: Option<DigestLocation>,
    /// Why the delivery state could not be read, when it could not: the run goes on without
    /// it, and so cannot tell a deleted newest digest from the end of the chain.
    pub state_error: Option<DeliveryStateError>,
}

/// Reads digests, log files and public keys from a data directory.
pub struct DataDirSource {
    data_dir: PathBuf,
    buckets: BucketStore,
    /// Every stored key of a Region, read once.
    keys: HashMap<String, Vec<PublicKeyInfo>>,
}

impl std::fmt::Debug for DataDirSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("DataDirSource").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

impl DataDirSource {
    /// Opens `data_dir` for reading. The trail (by ARN) and its delivery state are read
    /// first, then the bucket store's index: the state is written only after the digests it
    /// records, so every digest it names was in the bucket before the index was read, even
    /// while a server is running.
    pub fn open(
        data_dir: &Path,
        trail_arn: &str,
        source_region: &str,
    ) -> Result<(DataDirSource, DataDirTrail), DataDirError> {
        let buckets_dir = data_dir.join("buckets");
        if !buckets_dir.is_dir() {
            return Err(DataDirError::NotADataDir { path: data_dir.to_owned() });
        }
        let trail = Trails::read_only(data_dir)?
            .into_iter()
            .find(|trail| trail.arn() == trail_arn && trail.covers_region(source_region));
        let (newest_written, state_error) = match &trail {
            None => (None, None),
            Some(trail) => match delivery::newest_digests(data_dir, trail) {
                Ok(mut newest) => (newest.remove(source_region), None),
                Err(error) => (None, Some(error)),
            },
        };
        let buckets = BucketStore::open_read_only(&buckets_dir)?;
        let source = DataDirSource { data_dir: data_dir.to_owned(), buckets, keys: HashMap::new() };
        Ok((source, DataDirTrail { trail, newest_written, state_error }))
    }
}

/// `botocore`'s wording of an S3 error.
fn client_error(error: &S3Error, operation: &str) -> SourceError {
    SourceError::new(format!("An error occurred ({}) when calling the {operation} operation: {error}", error.code()))
}

impl DigestSource for DataDirSource {
    fn list_keys(&mut self, bucket: &str, prefix: &str, after: &str) -> Result<Vec<String>, SourceError> {
        let query = ListQuery { prefix, after, delimiter: None, max_keys: PAGE_SIZE };
        match self.buckets.list_objects(bucket, &query) {
            Ok(listing) => Ok(listing.objects.into_iter().map(|(key, _)| key).collect()),
            // The AWS CLI asks for the bucket's Region first, and fails there.
            Err(error @ S3Error::NoSuchBucket { .. }) => Err(client_error(&error, "GetBucketLocation")),
            Err(error) => Err(client_error(&error, "ListObjects")),
        }
    }

    fn get_object(&mut self, bucket: &str, key: &str) -> Result<Fetched, SourceError> {
        match self.buckets.get_object(bucket, key) {
            Ok(object) => Ok(Fetched::Object(SourceObject {
                body: object.body,
                metadata: object
                    .head
                    .metadata
                    .user_metadata
                    .into_iter()
                    .map(|(name, value)| (name.to_ascii_lowercase(), value))
                    .collect(),
            })),
            Err(S3Error::NoSuchKey { .. }) => Ok(Fetched::NotFound),
            Err(error @ S3Error::NoSuchBucket { .. }) => Err(client_error(&error, "GetBucketLocation")),
            Err(S3Error::Store(error)) if error.kind() == trailkeeper_store::ErrorKind::Corrupt => {
                tracing::warn!(bucket, key, %error, "a damaged object file");
                Ok(Fetched::Damaged)
            }
            Err(error) => Err(client_error(&error, "GetObject")),
        }
    }

    fn public_keys(&mut self, region: &str, start_ms: i64, end_ms: i64) -> Result<Vec<PublicKey>, SourceError> {
        if !self.keys.contains_key(region) {
            let stored = signing::stored_public_keys(&self.data_dir, region).map_err(|error| {
                SourceError::new(format!(
                    "An error occurred (InternalError) when calling the ListPublicKeys operation: {error}"
                ))
            })?;
            self.keys.insert(region.to_owned(), stored);
        }
        let stored = self.keys.get(region).map(Vec::as_slice).unwrap_or_default();
        Ok(stored
            .iter()
            .filter(|key| key.valid_from_ms <= end_ms && start_ms <= key.valid_until_ms)
            .map(|key| PublicKey { fingerprint: key.fingerprint.clone(), der: key.der.clone() })
            .collect())
    }
}
