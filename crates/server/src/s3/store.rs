//! [`BucketStore`]: the built-in bucket store on local disk, the home of delivered log files.
//!
//! ```text
//! <data-dir>/buckets/<bucket>/bucket.json          owner account, Region, creation time
//! <data-dir>/buckets/<bucket>/objects/<hh>/<hash>  one object: header + body (object_file)
//! ```
//!
//! Every change is crash-safe: an object is written to a temporary name, synced, renamed
//! over its final name and its folder synced, so a crash leaves the old object or the new
//! one, whole; leftover temporary files are deleted at open. A bucket is created under a
//! temporary folder name and renamed into place, and deleted by renaming it aside first.
//!
//! Each bucket keeps an in-memory index (a B-tree from key to [`ObjectInfo`]) rebuilt at open
//! from the object headers, so listings come out in the byte order S3 uses.
//!
//! It must never overwrite or delete an object whose lock has not expired: that is the
//! write-once guarantee trails rely on. The API is synchronous; call it from the blocking pool.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use trailkeeper_store::StoreError;
use trailkeeper_store::fsutil::{sync_dir, write_atomic};

use super::error::S3Error;
use super::object_file::{self, TEMPORARY_MARKER};
pub use super::object_file::{ObjectHead, ObjectInfo, ObjectMetadata};
use crate::api::now_ms;

const BUCKET_FILE: &str = "bucket.json";
const OBJECTS_DIR: &str = "objects";
/// Folders being created or deleted; bucket names never start with a dot.
const CREATING_PREFIX: &str = ".creating-";
const DELETING_PREFIX: &str = ".deleting-";
/// S3's longest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A bucket as `bucket.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub owner_account_id: String,
    pub region: String,
    pub created_ms: i64,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written(ObjectInfo),
    /// A write-once put found the key taken and left the object as it was.
    AlreadyExists(ObjectInfo),
}

/// One object read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub head: ObjectHead,
    pub body: Vec<u8>,
}

/// What to list: keys after `after` (exclusive; a marker, `start-after` or continuation
/// point) that start with `prefix`, rolled up at `delimiter`, at most `max_keys` entries.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    pub prefix: &'a str,
    pub after: &'a str,
    pub delimiter: Option<&'a str>,
    pub max_keys: usize,
}

/// One page of a listing. Objects and common prefixes both count against `max_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<(String, ObjectInfo)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, where the next page starts.
    pub next_marker: Option<String>,
}

struct Bucket {
    info: BucketInfo,
    dir: PathBuf,
    /// Held by every write to the bucket, for the whole write: writes to one bucket are few
    /// (log deliveries, uploads) and serialising them keeps "check, write, index" atomic.
    /// The flag says the bucket was deleted, for writers that found it before that.
    writer: Mutex<bool>,
    /// Readers hold this only to look up or list; files are read without it.
    index: RwLock<BTreeMap<String, ObjectInfo>>,
}

impl Bucket {
    fn object_path(&self, key: &str) -> PathBuf {
        self.dir.join(OBJECTS_DIR).join(object_file::relative_path(key))
    }

    fn lock_writer(&self) -> MutexGuard<'_, bool> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_index(&self) -> RwLockReadGuard<'_, BTreeMap<String, ObjectInfo>> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, BTreeMap<String, ObjectInfo>> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The built-in bucket store. Cheap to share behind the `AppState`; internally locked.
pub struct BucketStore {
    dir: PathBuf,
    /// Opened by an offline reader ([`BucketStore::open_read_only`]): every write is refused.
    read_only: bool,
    /// Bucket creation and deletion take this for writing; everything else only reads it.
    buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
}

impl std::fmt::Debug for BucketStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("BucketStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl BucketStore {
    /// Opens (or creates) the store in `dir`: removes what interrupted writes left behind and
    /// rebuilds every bucket's index from its object headers. A damaged object file fails
    /// the open with [`StoreError::Corrupt`] rather than vanishing from listings.
    pub fn open(dir: &Path) -> Result<BucketStore, StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let store = BucketStore::load(dir, false)?;
        sync_dir(dir)?;
        Ok(store)
    }

    /// Opens the store for reading only, changing nothing on disk, for offline readers such
    /// as `trailkeeper validate-logs`. It is safe beside a running server: what interrupted
    /// writes left behind is skipped, not removed, and every object file is replaced by a
    /// rename, so each read sees a whole object. The index is a snapshot taken now. A
    /// missing folder is an empty store. Every write to the returned store fails.
    pub fn open_read_only(dir: &Path) -> Result<BucketStore, StoreError> {
        if !dir.is_dir() {
            return Ok(BucketStore { dir: dir.to_owned(), read_only: true, buckets: RwLock::new(BTreeMap::new()) });
        }
        BucketStore::load(dir, true)
    }

    fn load(dir: &Path, read_only: bool) -> Result<BucketStore, StoreError> {
        let mut buckets = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
            let entry = entry.map_err(StoreError::io(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(CREATING_PREFIX) || name.starts_with(DELETING_PREFIX) {
                if !read_only {
                    tracing::info!(path = %path.display(), "removing an interrupted bucket creation or deletion");
                    fs::remove_dir_all(&path).map_err(StoreError::io(&path))?;
                }
                continue;
            }
            if !entry.file_type().map_err(StoreError::io(&path))?.is_dir() {
                tracing::warn!(path = %path.display(), "ignoring a file that is not a bucket");
                continue;
            }
            let bucket = open_bucket(&path, read_only)?;
            buckets.insert(bucket.info.name.clone(), Arc::new(bucket));
        }
        Ok(BucketStore { dir: dir.to_owned(), read_only, buckets: RwLock::new(buckets) })
    }

    fn writable(&self) -> Result<(), S3Error> {
        if self.read_only {
            tracing::error!(dir = %self.dir.display(), "a write to a bucket store opened read-only");
            return Err(S3Error::Internal);
        }
        Ok(())
    }

    fn read_buckets(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Bucket>>> {
        self.buckets.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, name: &str) -> Result<Arc<Bucket>, S3Error> {
        self.read_buckets().get(name).cloned().ok_or_else(|| S3Error::NoSuchBucket { bucket: name.to_owned() })
    }

    /// Creates an empty bucket. The name must follow S3's rules for general purpose buckets.
    pub fn create_bucket(&self, name: &str, owner_account_id: &str, region: &str) -> Result<(), S3Error> {
        self.writable()?;
        if !is_valid_bucket_name(name) {
            return Err(S3Error::InvalidBucketName { bucket: name.to_owned() });
        }
        let mut buckets = self.buckets.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = buckets.get(name) {
            return Err(if existing.info.owner_account_id == owner_account_id {
                S3Error::BucketAlreadyOwnedByYou { bucket: name.to_owned() }
            } else {
                S3Error::BucketAlreadyExists { bucket: name.to_owned() }
            });
        }
        let info = BucketInfo {
            name: name.to_owned(),
            owner_account_id: owner_account_id.to_owned(),
            region: region.to_owned(),
            created_ms: now_ms(),
        };
        let staging = self.dir.join(format!("{CREATING_PREFIX}{name}-{:016x}", rand::random::<u64>()));
        let json = serde_json::to_vec_pretty(&info).map_err(|_| S3Error::Internal)?;
        let objects = staging.join(OBJECTS_DIR);
        fs::create_dir_all(&objects).map_err(StoreError::io(&objects))?;
        write_atomic(&staging.join(BUCKET_FILE), &json)?;
        let final_dir = self.dir.join(name);
        fs::rename(&staging, &final_dir).map_err(StoreError::io(&final_dir))?;
        sync_dir(&self.dir)?;
        buckets.insert(
            name.to_owned(),
            Arc::new(Bucket { info, dir: final_dir, writer: Mutex::new(false), index: RwLock::new(BTreeMap::new()) }),
        );
        Ok(())
    }

    pub fn bucket(&self, name: &str) -> Option<BucketInfo> {
        self.read_buckets().get(name).map(|bucket| bucket.info.clone())
    }

    /// Deletes an empty bucket; one that holds any object is `BucketNotEmpty`.
    pub fn delete_bucket(&self, name: &str) -> Result<(), S3Error> {
        self.writable()?;
        let mut buckets = self.buckets.write().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.get(name).cloned().ok_or_else(|| S3Error::NoSuchBucket { bucket: name.to_owned() })?;
        let mut deleted = bucket.lock_writer();
        if !bucket.read_index().is_empty() {
            return Err(S3Error::BucketNotEmpty { bucket: name.to_owned() });
        }
        // Renamed aside first, so that a crash in the middle of the removal leaves no
        // half-deleted bucket under its own name.
        let aside = self.dir.join(format!("{DELETING_PREFIX}{name}-{:016x}", rand::random::<u64>()));
        fs::rename(&bucket.dir, &aside).map_err(StoreError::io(&bucket.dir))?;
        sync_dir(&self.dir)?;
        *deleted = true;
        buckets.remove(name);
        drop(deleted);
        drop(buckets);
        if let Err(error) = fs::remove_dir_all(&aside) {
            tracing::warn!(%error, path = %aside.display(), "a deleted bucket's folder stays until the next start");
        }
        Ok(())
    }

    /// The buckets an account owns, by name.
    pub fn list_buckets(&self, owner_account_id: &str) -> Vec<BucketInfo> {
        self.read_buckets()
            .values()
            .filter(|bucket| bucket.info.owner_account_id == owner_account_id)
            .map(|bucket| bucket.info.clone())
            .collect()
    }

    /// Stores an object.
    ///
    /// `lock_until_ms: Some(t)` is a write-once put (Object Lock, compliance mode): the object
    /// is created only if the key does not exist yet; an existing key is left untouched and
    /// [`PutOutcome::AlreadyExists`] returned (the caller treats that as an idempotent re-run).
    /// Until `t` no call overwrites or deletes the object. Without a lock, an existing object
    /// is replaced unless its own lock still holds (`AccessDenied`).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        metadata: &ObjectMetadata,
        lock_until_ms: Option<i64>,
    ) -> Result<PutOutcome, S3Error> {
        self.writable()?;
        check_key(key)?;
        let bucket = self.find(bucket)?;
        let deleted = bucket.lock_writer();
        if *deleted {
            return Err(S3Error::NoSuchBucket { bucket: bucket.info.name.clone() });
        }
        let now = now_ms();
        if let Some(existing) = bucket.read_index().get(key).copied() {
            if lock_until_ms.is_some() {
                return Ok(PutOutcome::AlreadyExists(existing));
            }
            if existing.is_locked_at(now) {
                return Err(S3Error::ObjectLocked { key: key.to_owned() });
            }
        }
        let info = ObjectInfo {
            size: body.len() as u64,
            md5: object_file::md5_of(body),
            last_modified_ms: now,
            lock_until_ms,
        };
        let path = bucket.object_path(key);
        let folder = path.parent().unwrap_or(&bucket.dir).to_owned();
        if !folder.is_dir() {
            fs::create_dir_all(&folder).map_err(StoreError::io(&folder))?;
            sync_dir(&bucket.dir.join(OBJECTS_DIR))?;
        }
        let mut temporary_name = path.file_name().unwrap_or_default().to_os_string();
        temporary_name.push(format!("{TEMPORARY_MARKER}{:016x}", rand::random::<u64>()));
        let temporary = folder.join(temporary_name);
        if let Err(error) = object_file::write(&temporary, key, &info, metadata, body) {
            let _ = fs::remove_file(&temporary);
            return Err(error.into());
        }
        if let Err(error) = fs::rename(&temporary, &path) {
            let _ = fs::remove_file(&temporary);
            return Err(StoreError::Io { path, source: error }.into());
        }
        sync_dir(&folder)?;
        bucket.write_index().insert(key.to_owned(), info);
        drop(deleted);
        Ok(PutOutcome::Written(info))
    }

    /// Reads a whole object, checked against its MD5.
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<StoredObject, S3Error> {
        let bucket = self.find(bucket)?;
        let no_such_key = || S3Error::NoSuchKey { key: key.to_owned() };
        if !bucket.read_index().contains_key(key) {
            return Err(no_such_key());
        }
        // The file is the truth from here: a concurrent overwrite or delete renamed or
        // removed it after the index was read, and the reader gets the object it opened.
        let (head, body) = object_file::read_object(&bucket.object_path(key))?.ok_or_else(no_such_key)?;
        Ok(StoredObject { head, body })
    }

    /// Reads an object's metadata without its body.
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectHead, S3Error> {
        let bucket = self.find(bucket)?;
        let no_such_key = || S3Error::NoSuchKey { key: key.to_owned() };
        if !bucket.read_index().contains_key(key) {
            return Err(no_such_key());
        }
        object_file::read_head_if_present(&bucket.object_path(key))?.ok_or_else(no_such_key)
    }

    /// Deletes an object. A key that does not exist is not an error, as in S3; a locked
    /// object is `AccessDenied`.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        self.writable()?;
        let bucket = self.find(bucket)?;
        let deleted = bucket.lock_writer();
        if *deleted {
            return Err(S3Error::NoSuchBucket { bucket: bucket.info.name.clone() });
        }
        let Some(existing) = bucket.read_index().get(key).copied() else {
            return Ok(());
        };
        if existing.is_locked_at(now_ms()) {
            return Err(S3Error::ObjectLocked { key: key.to_owned() });
        }
        let path = bucket.object_path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::Io { path, source: error }.into()),
        }
        sync_dir(path.parent().unwrap_or(&bucket.dir))?;
        bucket.write_index().remove(key);
        drop(deleted);
        Ok(())
    }

    /// Lists a bucket's keys in byte order, S3's way: keys containing `delimiter` after the
    /// prefix are rolled up into one common prefix each, and a common prefix at or before
    /// `after` counts as already returned.
    pub fn list_objects(&self, bucket: &str, query: &ListQuery<'_>) -> Result<Listing, S3Error> {
        let bucket = self.find(bucket)?;
        let index = bucket.read_index();
        Ok(list_index(&index, query))
    }
}

fn list_index(index: &BTreeMap<String, ObjectInfo>, query: &ListQuery<'_>) -> Listing {
    let mut listing = Listing::default();
    if query.max_keys == 0 {
        return listing;
    }
    let delimiter = query.delimiter.filter(|delimiter| !delimiter.is_empty());
    let mut start: Bound<String> = if query.after >= query.prefix {
        Bound::Excluded(query.after.to_owned())
    } else {
        Bound::Included(query.prefix.to_owned())
    };
    let mut count = 0;
    'pages: loop {
        let range = index.range::<String, _>((start.clone(), Bound::Unbounded));
        for (key, info) in range {
            // Keys with the prefix form one contiguous run from the prefix on.
            if !key.starts_with(query.prefix) {
                break 'pages;
            }
            let rolled_up = delimiter.and_then(|delimiter| {
                let rest = &key[query.prefix.len()..];
                rest.find(delimiter).map(|at| &key[..query.prefix.len() + at + delimiter.len()])
            });
            if let Some(common_prefix) = rolled_up {
                let already_returned = common_prefix <= query.after;
                if !already_returned {
                    if count == query.max_keys {
                        listing.is_truncated = true;
                        break 'pages;
                    }
                    listing.common_prefixes.push(common_prefix.to_owned());
                    listing.next_marker = Some(common_prefix.to_owned());
                    count += 1;
                }
                // Jump over every other key under this common prefix.
                match successor(common_prefix) {
                    Some(next) => {
                        start = Bound::Included(next);
                        continue 'pages;
                    }
                    None => break 'pages,
                }
            }
            if count == query.max_keys {
                listing.is_truncated = true;
                break 'pages;
            }
            listing.objects.push((key.clone(), *info));
            listing.next_marker = Some(key.clone());
            count += 1;
        }
        break;
    }
    listing
}

/// The smallest string greater than every string that starts with `prefix`, if any.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            other => char::from_u32(u32::from(other) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(S3Error::InvalidArgument {
            message: "The key must not be empty.".to_owned(),
            name: "key",
            value: String::new(),
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::KeyTooLong { size: key.len() });
    }
    Ok(())
}

/// Reads a bucket's folder into its index. A writer removes what interrupted writes left;
/// a reader (`read_only`) skips it, and does not create a missing `objects` folder.
fn open_bucket(dir: &Path, read_only: bool) -> Result<Bucket, StoreError> {
    let bucket_file = dir.join(BUCKET_FILE);
    let json = fs::read(&bucket_file).map_err(StoreError::io(&bucket_file))?;
    let info: BucketInfo = serde_json::from_slice(&json).map_err(|error| StoreError::Corrupt {
        path: bucket_file.clone(),
        offset: 0,
        what: "bucket file",
        detail: error.to_string(),
    })?;
    if dir.file_name().is_none_or(|name| name != info.name.as_str()) {
        return Err(StoreError::Corrupt {
            path: bucket_file,
            offset: 0,
            what: "bucket file",
            detail: format!("it names bucket {:?}, not its folder", info.name),
        });
    }
    let mut index = BTreeMap::new();
    let objects = dir.join(OBJECTS_DIR);
    if read_only && !objects.is_dir() {
        return Ok(Bucket { info, dir: dir.to_owned(), writer: Mutex::new(false), index: RwLock::new(index) });
    }
    if !read_only {
        fs::create_dir_all(&objects).map_err(StoreError::io(&objects))?;
    }
    for fan_out in fs::read_dir(&objects).map_err(StoreError::io(&objects))? {
        let fan_out = fan_out.map_err(StoreError::io(&objects))?.path();
        if !fan_out.is_dir() {
            continue;
        }
        let mut removed_temporary = false;
        for file in fs::read_dir(&fan_out).map_err(StoreError::io(&fan_out))? {
            let path = file.map_err(StoreError::io(&fan_out))?.path();
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            if name.contains(TEMPORARY_MARKER) {
                if read_only {
                    continue;
                }
                // A write that never reached its rename: it was never acknowledged.
                fs::remove_file(&path).map_err(StoreError::io(&path))?;
                removed_temporary = true;
                continue;
            }
            let head = if read_only {
                // A running server may delete an object between the listing and the read.
                let Some(head) = object_file::read_head_if_present(&path)? else { continue };
                head
            } else {
                object_file::read_head(&path)?
            };
            index.insert(head.key, head.info);
        }
        if removed_temporary {
            sync_dir(&fan_out)?;
        }
    }
    Ok(Bucket { info, dir: dir.to_owned(), writer: Mutex::new(false), index: RwLock::new(index) })
}

/// S3's naming rules for general purpose buckets: 3–63 characters of lowercase letters,
/// digits, dots and hyphens, beginning and ending with a letter or digit, no two adjacent
/// dots, not shaped like an IP address, and none of the reserved prefixes and suffixes.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'-');
    let letter_or_digit =
        |byte: Option<&u8>| byte.is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(allowed)
        && letter_or_digit(bytes.first())
        && letter_or_digit(bytes.last())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|prefix| name.starts_with(prefix))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|suffix| name.ends_with(suffix))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
