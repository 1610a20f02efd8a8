//! Any bytes as a CloudTrail record: never a panic, and an accepted record reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailkeeper_core::record::{RecordDefaults, parse_record};

fuzz_target!(|data: &[u8]| {
    let defaults = RecordDefaults { account_id: "123456789012", region: "us-east-1" };
    let mut ids = || "00000000-0000-4000-8000-000000000000".to_owned();
    if let Ok(record) = parse_record(data, defaults, &mut ids) {
        let mut no_ids = || unreachable!("a stored record always has an eventID");
        let again = parse_record(&record.json, defaults, &mut no_ids).expect("a stored record parses again");
        assert_eq!(again, record, "parsing is idempotent");
    }
});
