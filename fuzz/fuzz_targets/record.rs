//! Any bytes as a CloudTrail record: never a panic, an accepted record is JSON that serde_json
//! reads too and reads back the same, and parsing it inside a request's buffer gives the same
//! record as parsing it alone.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use trailkeeper_core::record::{RecordDefaults, parse_record, parse_record_in};

fuzz_target!(|data: &[u8]| {
    let defaults = RecordDefaults { account_id: "123456789012", region: "us-east-1" };
    let mut ids = || "00000000-0000-4000-8000-000000000000".to_owned();
    let alone = parse_record(data, defaults, &mut ids);
    let body = Bytes::from([b"\n", data, b"\n"].concat());
    let within = parse_record_in(&body, &body[1..body.len() - 1], defaults, &mut ids);
    assert_eq!(alone, within, "a record parses the same inside a buffer");
    if let Ok(record) = alone {
        let checked = serde_json::from_slice::<serde::de::IgnoredAny>(&record.json);
        assert!(checked.is_ok() && record.json.starts_with(b"{"), "an accepted record is a JSON object: {checked:?}");
        let id_values = trailkeeper_core::record::id_values(&record.json);
        assert_eq!(record.id_values, id_values, "the ID members sit where parsing found them");
        let mut no_ids = || unreachable!("a stored record always has an eventID");
        let again = parse_record(&record.json, defaults, &mut no_ids).expect("a stored record parses again");
        assert_eq!(again, record, "parsing is idempotent");
    }
});
