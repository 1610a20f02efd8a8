//! One object, one file: an 8-byte magic, the length of a JSON header (u32, little endian),
//! the header (key, size, MD5, times, lock, metadata), then the body.
//!
//! Keeping the metadata in the same file as the body means a rename replaces both at once,
//! and a reader that opened the file sees one consistent object whatever writers do after.
//! The file's name is the SHA-256 of the key, so no key (whatever its characters or length)
//! becomes a path; the key itself lives only inside the header.
//!
//! Nothing here touches the index or takes a lock: that is the store's job.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use trailkeeper_store::StoreError;

const MAGIC: &[u8; 8] = b"TKS3OBJ1";
/// The JSON header is small (a key of at most 1 KiB, 2 KiB of user metadata); anything
/// larger is damage, not an object.
const MAX_HEADER_BYTES: u32 = 64 * 1024;
/// The marker in the names of files still being written.
pub(crate) const TEMPORARY_MARKER: &str = ".tmp.";

/// What S3 keeps beside an object's bytes that a client set: `Content-Type` and the
/// `x-amz-meta-*` headers (names lowercase, without the prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMetadata {
    pub content_type: Option<String>,
    pub user_metadata: BTreeMap<String, String>,
}

/// What the index holds for every object, enough to list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The MD5 of the body, S3's ETag for an object uploaded whole.
    pub md5: [u8; 16],
    pub last_modified_ms: i64,
    /// Write-once objects (Object Lock, compliance mode): no overwrite or delete before this.
    pub lock_until_ms: Option<i64>,
}

impl ObjectInfo {
    /// The ETag as S3 sends it: hex MD5 in double quotes.
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }

    pub fn is_locked_at(&self, now_ms: i64) -> bool {
        self.lock_until_ms.is_some_and(|until| until > now_ms)
    }
}

/// The header as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    key: String,
    size: u64,
    md5: String,
    last_modified_ms: i64,
    lock_until_ms: Option<i64>,
    #[serde(default)]
    metadata: ObjectMetadata,
}

/// An object's header as read back from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub key: String,
    pub info: ObjectInfo,
    pub metadata: ObjectMetadata,
}

/// The file name of `key`'s object inside a bucket's `objects/` folder: a fan-out folder
/// named after the first byte of the key's SHA-256, then the whole hash.
pub(crate) fn relative_path(key: &str) -> PathBuf {
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    Path::new(&hash[..2]).join(&hash)
}

pub(crate) fn md5_of(body: &[u8]) -> [u8; 16] {
    Md5::digest(body).into()
}

/// Writes the object to `temporary`, synced; the caller renames it into place.
pub(crate) fn write(
    temporary: &Path,
    key: &str,
    info: &ObjectInfo,
    metadata: &ObjectMetadata,
    body: &[u8],
) -> Result<(), StoreError> {
    let header = Header {
        key: key.to_owned(),
        size: info.size,
        md5: hex::encode(info.md5),
        last_modified_ms: info.last_modified_ms,
        lock_until_ms: info.lock_until_ms,
        metadata: metadata.clone(),
    };
    let header_json = serde_json::to_vec(&header).map_err(|error| corrupt(temporary, error.to_string()))?;
    let header_length = u32::try_from(header_json.len())
        .ok()
        .filter(|length| *length <= MAX_HEADER_BYTES)
        .ok_or_else(|| corrupt(temporary, format!("a header of {} bytes is too large", header_json.len())))?;
    let mut file =
        fs::OpenOptions::new().write(true).create_new(true).open(temporary).map_err(StoreError::io(temporary))?;
    let mut prefix = Vec::with_capacity(MAGIC.len() + 4 + header_json.len());
    prefix.extend_from_slice(MAGIC);
    prefix.extend_from_slice(&header_length.to_le_bytes());
    prefix.extend_from_slice(&header_json);
    file.write_all(&prefix)
        .and_then(|()| file.write_all(body))
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io(temporary))
}

fn corrupt(path: &Path, detail: String) -> StoreError {
    StoreError::Corrupt { path: path.to_owned(), offset: 0, what: "object file", detail }
}

/// Reads the header and leaves the file positioned at the body.
fn read_header(path: &Path, file: &mut File) -> Result<(ObjectHead, u64), StoreError> {
    let mut prefix = [0u8; 12];
    file.read_exact(&mut prefix).map_err(|error| match error.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(path, "shorter than its header".to_owned()),
        _ => StoreError::Io { path: path.to_owned(), source: error },
    })?;
    if &prefix[..8] != MAGIC {
        return Err(corrupt(path, "not an object file (bad magic)".to_owned()));
    }
    let header_length = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
    if header_length > MAX_HEADER_BYTES {
        return Err(corrupt(path, format!("a header length of {header_length} bytes")));
    }
    let mut header_json = vec![0u8; header_length as usize];
    file.read_exact(&mut header_json).map_err(|_| corrupt(path, "the header is cut short".to_owned()))?;
    let header: Header =
        serde_json::from_slice(&header_json).map_err(|error| corrupt(path, format!("unreadable header: {error}")))?;
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(&header.md5, &mut md5).map_err(|_| corrupt(path, "the header's md5 is not hex".to_owned()))?;
    let body_offset = 12 + u64::from(header_length);
    let head = ObjectHead {
        key: header.key,
        info: ObjectInfo {
            size: header.size,
            md5,
            last_modified_ms: header.last_modified_ms,
            lock_until_ms: header.lock_until_ms,
        },
        metadata: header.metadata,
    };
    Ok((head, body_offset))
}

/// Reads an object's header at open, checking that the file is exactly as long as its header
/// says and that its name is the hash of the key it holds.
pub(crate) fn read_head(path: &Path) -> Result<ObjectHead, StoreError> {
    let mut file = File::open(path).map_err(StoreError::io(path))?;
    let (head, body_offset) = read_header(path, &mut file)?;
    let length = file.metadata().map_err(StoreError::io(path))?.len();
    if length != body_offset + head.info.size {
        return Err(corrupt(
            path,
            format!("the file is {length} bytes, its header says {}", body_offset + head.info.size),
        ));
    }
    let expected_name = relative_path(&head.key);
    if path.file_name() != expected_name.file_name() {
        return Err(corrupt(path, "the file's name is not the hash of the key it holds".to_owned()));
    }
    Ok(head)
}

/// Reads a whole object and checks its body against the MD5 in its header, so that damage
/// on disk is reported instead of served.
pub(crate) fn read_object(path: &Path) -> Result<Option<(ObjectHead, Vec<u8>)>, StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::Io { path: path.to_owned(), source: error }),
    };
    let (head, _) = read_header(path, &mut file)?;
    let size = usize::try_from(head.info.size).map_err(|_| corrupt(path, "the object is too large".to_owned()))?;
    let mut body = Vec::with_capacity(size);
    file.read_to_end(&mut body).map_err(StoreError::io(path))?;
    if body.len() != size {
        return Err(corrupt(path, format!("the body is {} bytes, its header says {size}", body.len())));
    }
    if md5_of(&body) != head.info.md5 {
        return Err(corrupt(path, "the body does not match its MD5".to_owned()));
    }
    Ok(Some((head, body)))
}

/// Reads an object's header only, or `None` when the file is gone (deleted meanwhile).
pub(crate) fn read_head_if_present(path: &Path) -> Result<Option<ObjectHead>, StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::Io { path: path.to_owned(), source: error }),
    };
    read_header(path, &mut file).map(|(head, _)| Some(head))
}
