//! The store's one error type. Callers branch on [`StoreError::kind`], never on messages.

use std::path::PathBuf;

/// What went wrong, as callers need to tell it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A read or write failed; retrying may help.
    Io,
    /// The disk is full: refuse new events until space comes back.
    DiskFull,
    /// Data on disk fails its checksum or its format; needs an operator.
    Corrupt,
    /// More events are waiting than the log accepts; the caller should back off.
    Overloaded,
    /// The log is shut down or its writer died.
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("io error on {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("corrupt {what} in {} at offset {offset}: {detail}", path.display())]
    Corrupt { path: PathBuf, offset: u64, what: &'static str, detail: String },
    #[error("parquet error on {}: {detail}", path.display())]
    Parquet { path: PathBuf, detail: String },
    #[error("the event log is overloaded: {pending_bytes} bytes are waiting to be written")]
    Overloaded { pending_bytes: usize },
    #[error("the event log is closed")]
    Closed,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Io { source, .. } if is_disk_full(source) => ErrorKind::DiskFull,
            StoreError::Io { .. } => ErrorKind::Io,
            StoreError::Corrupt { .. } | StoreError::Parquet { .. } => ErrorKind::Corrupt,
            StoreError::Overloaded { .. } => ErrorKind::Overloaded,
            StoreError::Closed => ErrorKind::Closed,
        }
    }

    /// Wraps an IO error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}
