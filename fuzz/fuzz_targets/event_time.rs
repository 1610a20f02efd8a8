//! Any text as an event time: never a panic, and what parses formats into something that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailkeeper_core::time::{format_event_time, parse_event_time};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(ms) = parse_event_time(text)
    {
        let whole_seconds = ms - ms.rem_euclid(1000);
        assert_eq!(parse_event_time(&format_event_time(ms)), Ok(whole_seconds));
    }
});
