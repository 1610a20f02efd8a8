//! Any bytes as an ingest body: splitting into records never panics and never loses bytes
//! outside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailkeeper_core::body::split_records;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = split_records(data) {
        let range = data.as_ptr_range();
        for record in records {
            let inner = record.as_ptr_range();
            assert!(record.is_empty() || (range.start <= inner.start && inner.end <= range.end));
        }
    }
});
