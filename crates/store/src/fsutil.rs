//! Durable file replacement, shared by every small state file (the manifest here; trails,
//! cursors, buckets and topics in the server), and the process's open-file limit.

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

/// The open-file limit this process asks for at most: Linux's default `fs.nr_open`.
const MAX_OPEN_FILES: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit, and returns the soft limit before
/// and after. Every sealed segment keeps its Parquet file open, so a store of a few
/// thousand segments needs more than the 1,024 that many systems start a process with.
#[allow(unsafe_code)]
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct, which `limit` is, and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let wanted = limit.rlim_max.min(MAX_OPEN_FILES);
    if before >= wanted {
        return Ok((before, before));
    }
    limit.rlim_cur = wanted;
    // SAFETY: setrlimit reads the one rlimit struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((before, wanted))
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

    #[test]
    #[allow(unsafe_code)]
    fn the_open_file_limit_rises_to_the_hard_limit() {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in raise_open_file_limit, one rlimit struct read or written.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        let hard = limit.rlim_max.min(MAX_OPEN_FILES);
        limit.rlim_cur = hard.min(512);
        // SAFETY: as above. Other tests of this process keep far fewer files open.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        assert_eq!(raise_open_file_limit().unwrap(), (hard.min(512), hard));
        assert_eq!(raise_open_file_limit().unwrap(), (hard, hard), "already raised");
    }
}
