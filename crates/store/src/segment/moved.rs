//! Record members that a segment's Parquet file keeps in columns of their own instead of in
//! `event_json`.
//!
//! A member moves when it is the first top-level member of its name and its value is a
//! string written without escapes: its text (without the quotes) goes to the column, and
//! `event_json` keeps the member in place with the value `""`. Reading puts the column's
//! text back wherever the first member of that name holds `""`, so the record comes back
//! byte for byte: a member that held `""` to begin with moves as the empty text and comes
//! back as it was, and one that did not move (absent, escaped, not a string) is left alone
//! because `event_json` still holds its value. Files written before a column existed have no
//! such column, and nothing is put back from it.
//!
//! Random IDs in the middle of each record are what kept zstd from the repeats between
//! records of one caller within a JSON page: with `eventID` and `requestID` moved, sealed
//! segments of the realistic generator take 174 B/event instead of 201. Moving
//! `sourceIPAddress` and `userAgent` as well saved nothing more there, and every moved
//! member costs a point read one more page (BENCHMARKS.md, 2026-12-06).

use trailkeeper_core::json::first_plain_strings;
use trailkeeper_core::record::{ID_MEMBERS, IdValues};

/// One member kept in a column of its own: the member of [`ID_MEMBERS`] at its place.
#[derive(Debug, Clone, Copy)]
pub(super) struct MovedMember {
    pub column: &'static str,
}

/// Uncompressed size at which a moved member's column pages close. A record read
/// decompresses one page of each column it needs, so they are small: random IDs compress
/// no better in large pages, and with 128 KiB pages LookupEvents by ResourceName on a
/// 10M-event store no longer kept up with 500 requests/s.
pub(super) const MOVED_PAGE_BYTES: usize = 8 << 10;

/// How many members move: the record's ID members, whose places parsing found.
pub(super) const MOVED_COUNT: usize = ID_MEMBERS.len();

/// The moved members. `eventID` goes to `event_id`, the column every row's eventID is
/// kept in for the duplicate check, so it costs no column of its own; a record's eventID
/// moves only where its text is that column's value. Ingest refuses an empty eventID and a
/// repeated one, so an `eventID` of `""` in `event_json` is always a hole.
pub(super) const MOVED: [MovedMember; MOVED_COUNT] =
    [MovedMember { column: "event_id" }, MovedMember { column: "request_id" }];

/// Splits a compact record for writing: appends to `kept` the record with each moved
/// member's value emptied, and returns each moved member's text (without the quotes), empty
/// where the record has no such member to move. `values` is where the members' values sit
/// ([`trailkeeper_core::record::id_values`] of `record`, as parsing found them); `event_id`
/// is the text the `eventID` column will hold: the record's eventID moves only if it is that
/// text.
pub(super) fn split<'a>(
    record: &'a [u8],
    values: &IdValues,
    event_id: &[u8],
    kept: &mut Vec<u8>,
) -> [&'a [u8]; MOVED_COUNT] {
    debug_assert_eq!(values, &trailkeeper_core::record::id_values(record), "the places parsing found");
    let mut values = values.clone().map(|range| range.map(|range| range.start as usize..range.end as usize));
    if let Some(range) = &values[0]
        && &record[range.start + 1..range.end - 1] != event_id
    {
        values[0] = None;
    }
    // In text order; absent ones sort first and are skipped.
    let mut cuts = values.clone();
    cuts.sort_unstable_by_key(|range| range.as_ref().map(|range| range.start));
    let mut at = 0;
    for cut in cuts.into_iter().flatten() {
        kept.extend_from_slice(&record[at..cut.start]);
        kept.extend_from_slice(b"\"\"");
        at = cut.end;
    }
    kept.extend_from_slice(&record[at..]);
    values.map(|range| range.map_or(&b""[..], |range| &record[range.start + 1..range.end - 1]))
}

/// Where a kept record's moved members were emptied: for each, the position of its `""`
/// value, if its first member holds that.
pub(super) fn holes(kept: &[u8]) -> [Option<usize>; MOVED_COUNT] {
    first_plain_strings(kept, &ID_MEMBERS).map(|range| range.filter(|range| range.len() == 2).map(|range| range.start))
}

/// The record that `kept` stands for, with `values[i]` put into the hole of moved member
/// `i` where `holes` has one and a value is given.
pub(super) fn rejoin(
    kept: &[u8],
    holes: &[Option<usize>; MOVED_COUNT],
    values: &[Option<&[u8]>; MOVED_COUNT],
) -> Vec<u8> {
    // In text order; holes without a value sort first and are skipped.
    let mut fills: [Option<(usize, &[u8])>; MOVED_COUNT] =
        std::array::from_fn(|index| Some((holes[index]?, values[index]?)));
    fills.sort_unstable_by_key(|fill| fill.map(|(hole, _)| hole));
    let mut record =
        Vec::with_capacity(kept.len() + fills.iter().flatten().map(|(_, value)| value.len()).sum::<usize>());
    let mut at = 0;
    for (hole, value) in fills.into_iter().flatten() {
        // The hole is the two quotes of `""`: the value goes between them.
        record.extend_from_slice(&kept[at..=hole]);
        record.extend_from_slice(value);
        at = hole + 1;
    }
    record.extend_from_slice(&kept[at..]);
    record
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Strategy as _;
    use trailkeeper_core::record::id_values;

    use super::*;

    fn round_trip(record: &str, event_id: &str) -> (String, Vec<String>) {
        let mut kept = Vec::new();
        let values = split(record.as_bytes(), &id_values(record.as_bytes()), event_id.as_bytes(), &mut kept);
        let holes = holes(&kept);
        // `event_id` holds the eventID of every row, moved or not.
        let mut given = values.map(Some);
        given[0] = Some(event_id.as_bytes());
        let back = rejoin(&kept, &holes, &given);
        assert_eq!(String::from_utf8(back).unwrap(), record, "the record comes back as written");
        let values = values.iter().map(|value| String::from_utf8(value.to_vec()).unwrap()).collect();
        (String::from_utf8(kept).unwrap(), values)
    }

    #[test]
    fn moves_plain_strings_and_leaves_empty_values_in_place() {
        let record = r#"{"eventTime":"t","requestID":"r-1","eventID":"e-1","userAgent":"","readOnly":true}"#;
        let (kept, values) = round_trip(record, "e-1");
        assert_eq!(kept, r#"{"eventTime":"t","requestID":"","eventID":"","userAgent":"","readOnly":true}"#);
        assert_eq!(values, ["e-1", "r-1"]);
        let (kept, values) = round_trip(r#"{"eventID":"e-1","requestID":""}"#, "e-1");
        assert_eq!(
            (kept.as_str(), values),
            (r#"{"eventID":"","requestID":""}"#, vec!["e-1".to_owned(), String::new()])
        );
    }

    #[test]
    fn leaves_what_cannot_move_in_the_json() {
        for (record, event_id) in [
            (r#"{"eventID":"e\u002d1","requestID":null,"userAgent":{"a":"b"}}"#, "e-1"),
            (r#"{"eventID":"other","requestID":"","requestID":"second"}"#, "e-1"),
            (r#"{"nested":{"requestID":"r"},"requestID":7}"#, "e-1"),
        ] {
            let (kept, values) = round_trip(record, event_id);
            let moved = values.iter().filter(|value| !value.is_empty()).count();
            assert_eq!(moved, 0, "{record} kept as {kept}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_record_comes_back_as_written(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(&["requestID", "userAgent", "other"][..]),
                    proptest::prop_oneof![
                        "[a-z0-9.-]{0,12}".prop_map(|text| format!("\"{text}\"")),
                        proptest::strategy::Just(r#""a\"b""#.to_owned()),
                        proptest::strategy::Just(r#"{"requestID":""}"#.to_owned()),
                        proptest::strategy::Just("null".to_owned()),
                    ],
                ),
                0..8,
            ),
            event_id in "[a-z0-9-]{1,4}",
            event_id_at in 0usize..8,
        ) {
            // As ingest stores it: one eventID, never empty, whose text the column holds.
            let mut body: Vec<String> = members.iter().map(|(key, value)| format!("\"{key}\":{value}")).collect();
            body.insert(event_id_at.min(body.len()), format!("\"eventID\":\"{event_id}\""));
            round_trip(&format!("{{{}}}", body.join(",")), &event_id);
        }
    }

    #[test]
    fn a_hole_without_a_value_stays_empty() {
        // A file written before a column existed gives no value for it.
        let kept = br#"{"requestID":"","eventID":""}"#;
        let holes = holes(kept);
        let back = rejoin(kept, &holes, &[Some(b"e-1"), None]);
        assert_eq!(back, br#"{"requestID":"","eventID":"e-1"}"#);
    }
}
