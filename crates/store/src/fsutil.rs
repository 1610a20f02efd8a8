//! Durable file replacement, shared by every small state file (the manifest here; trails,
//! cursors, buckets and topics in the server).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::StoreError;

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(StoreError::io(dir))
}

/// Replaces `path` with `bytes` so that a crash leaves either the old file or the new one,
/// whole: write a temporary sibling, fsync it, rename it into place, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut name = path.file_name().map(|name| name.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    let temporary = dir.join(name);
    let mut file = File::create(&temporary).map_err(StoreError::io(&temporary))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(StoreError::io(&temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(StoreError::io(path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
