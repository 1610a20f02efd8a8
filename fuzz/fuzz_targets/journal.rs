//! Any bytes as the newest journal file: recovery never panics, and it either reads frames,
//! cuts a torn tail, or names the corruption.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailkeeper_store::journal::{file_name, replay};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join(file_name(1)), data).is_err() {
        return;
    }
    let _ = replay(dir.path(), |entry| {
        assert!(entry.event.account_id.len() <= 255 && entry.event.region.len() <= 255);
    });
});
