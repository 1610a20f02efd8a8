//! Any members in a CloudTrail record, sealed into a segment: the record reads back byte for
//! byte, by point read and by whole-file read. Sealing moves some members out of
//! `event_json` into columns of their own and reading puts them back, so what the input
//! writes around `eventID` and `requestID` (escapes, empty values, repeats, nesting, other
//! types) is what this exercises.
//!
//! The input is the record's text after a fixed head that makes it valid as a record, so
//! every input that completes a JSON object is accepted and sealed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailkeeper_core::{RecordDefaults, parse_record};
use trailkeeper_store::StoredEvent;
use trailkeeper_store::segment::{PageCache, read_all_rows, write_segment};

const HEAD: &[u8] = br#"{"eventTime":"2026-11-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","#;

fuzz_target!(|data: &[u8]| {
    let text = [HEAD, data].concat();
    let defaults = RecordDefaults { account_id: "123456789012", region: "us-east-1" };
    let mut ids = || "00000000-0000-4000-8000-000000000000".to_owned();
    let Ok(record) = parse_record(&text, defaults, &mut ids) else {
        return;
    };
    let event = StoredEvent::from_record(1, 1_000, record);
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = write_segment(dir.path(), &[&event]).expect("an accepted record seals");
    let read = segment.read_json(&[0], &PageCache::new(0)).expect("the record reads back");
    assert_eq!(read, [event.json.clone()], "a point read gives the record as stored");
    let mut rows = 0;
    read_all_rows(segment.parquet_path(), |row| {
        assert_eq!(row.event_json.as_bytes(), event.json.as_ref(), "a whole-file read gives the record as stored");
        assert_eq!(row.event_id, event.event_id());
        rows += 1;
    })
    .expect("the file reads whole");
    assert_eq!(rows, 1);
});
