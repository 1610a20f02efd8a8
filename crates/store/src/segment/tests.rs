use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use trailkeeper_core::{Category, FieldValues, LookupFields, LookupKey, Resource};

use super::testdata::{ACCOUNT, DAY_START_MS, Generator, REGION};
use super::*;
use crate::ErrorKind;

fn event(seq: u64, time_ms: i64, event_id: &str, category: Category, fields: LookupFields) -> StoredEvent {
    let json = format!(r#"{{"eventID":"{event_id}","seq":{seq}}}"#);
    let id_values = trailkeeper_core::record::id_values(json.as_bytes());
    StoredEvent {
        seq,
        event_time_ms: time_ms,
        ingest_time_ms: time_ms + 1000,
        category,
        fields: fields.with_identity(event_id, ACCOUNT, REGION),
        json: Bytes::from(json),
        id_values,
    }
}

fn bare_fields() -> LookupFields {
    LookupFields::from(FieldValues {
        event_name: "GetObject",
        event_source: "s3.amazonaws.com",
        ..FieldValues::default()
    })
}

fn generated(count: usize, seed: u64) -> Vec<StoredEvent> {
    let mut generator = Generator::new(seed);
    (0..count).map(|_| generator.next_event()).collect()
}

fn write(root: &Path, events: &[StoredEvent]) -> Segment {
    let refs: Vec<&StoredEvent> = events.iter().collect();
    write_segment(root, &refs).expect("write segment")
}

fn index_path(segment: &Segment) -> PathBuf {
    segment.index_path.clone()
}

/// Every (key, value) pair a lookup can find `event` by, its eventID included.
fn lookup_values(event: &StoredEvent) -> impl Iterator<Item = (LookupKey, &str)> {
    std::iter::once((LookupKey::EventId, event.event_id())).chain(event.fields.attribute_values())
}

/// No cache: every call reads the index from its file, as a lookup does once the cache
/// has let it go.
fn uncached() -> IndexCache {
    IndexCache::new(0)
}

#[test]
fn segments_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Segment>();
}

#[test]
fn round_trip_keeps_json_bytes_and_meta() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(3000, 7);
    let segment = write(dir.path(), &events);
    let reopened = Segment::open(segment.parquet_path()).expect("reopen");

    let meta = reopened.meta();
    assert_eq!(meta, segment.meta());
    assert_eq!(meta.event_count, 3000);
    assert_eq!((meta.min_seq, meta.max_seq), (1, 3000));
    assert_eq!(meta.name, format!("{:020}-{:020}", 1, 3000));
    assert_eq!(meta.date, "2026-03-14");
    assert_eq!(meta.min_time_ms, events.iter().map(|e| e.event_time_ms).min().expect("events"));
    assert_eq!(meta.max_time_ms, events.iter().map(|e| e.event_time_ms).max().expect("events"));
    assert_eq!(meta.max_ingest_ms, events.iter().map(|e| e.ingest_time_ms).max().expect("events"));
    assert_eq!(meta.parquet_bytes, std::fs::metadata(segment.parquet_path()).expect("stat").len());
    assert_eq!(meta.index_bytes, std::fs::metadata(index_path(&segment)).expect("stat").len());
    let expected_dir = dir.path().join("account=123456789012").join("region=us-east-1").join("date=2026-03-14");
    assert_eq!(segment.parquet_path(), expected_dir.join(format!("{}.parquet", meta.name)));
    assert_eq!(segment.index_path, expected_dir.join(format!("{}.idx", meta.name)));
    let leftovers: Vec<_> = std::fs::read_dir(&expected_dir)
        .expect("list")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    // Every row, newest first, reads back byte for byte.
    let rows: Vec<SegmentRow> =
        reopened.scan(&uncached(), HistoryKind::Management, None, None, None, None).expect("scan").collect();
    assert_eq!(rows.len(), 3000);
    let mut by_key: Vec<&StoredEvent> = events.iter().collect();
    by_key.sort_by_key(|event| std::cmp::Reverse(event.key()));
    let jsons = reopened
        .read_json(&rows.iter().map(|row| row.row).collect::<Vec<_>>(), &PageCache::new(1 << 20))
        .expect("read json");
    for ((row, json), event) in rows.iter().zip(&jsons).zip(&by_key) {
        assert_eq!(row.key, event.key());
        assert_eq!(json, &event.json);
    }
    // Asked order is kept, repeats included.
    let asked = [rows[5].row, rows[0].row, rows[2999].row, rows[5].row];
    let jsons = reopened.read_json(&asked, &PageCache::new(1 << 20)).expect("read json");
    assert_eq!(
        jsons,
        vec![by_key[5].json.clone(), by_key[0].json.clone(), by_key[2999].json.clone(), by_key[5].json.clone()]
    );
    assert_eq!(reopened.read_json(&[], &PageCache::new(1 << 20)).expect("empty read"), Vec::<Bytes>::new());
    assert!(reopened.read_json(&[3000], &PageCache::new(1 << 20)).is_err());
}

#[test]
fn contains_event_id_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut events = generated(500, 11);
    events[17].category = Category::Data;
    let segment = write(dir.path(), &events);
    for event in &events {
        assert!(segment.contains_event_id(event.event_id()).expect("lookup"), "{}", event.event_id());
    }
    let absent = Generator::new(12).next_event().event_id().to_owned();
    assert!(!segment.contains_event_id(&absent).expect("lookup"));
    assert!(!segment.contains_event_id("").expect("lookup"));
    assert!(!segment.contains_event_id(&events[3].event_id().to_uppercase()).expect("lookup"));
    // A data event is never in Event History, even by its ID, but dedup still sees it.
    let data_id = events[17].event_id();
    assert_eq!(
        segment
            .scan(&uncached(), HistoryKind::Management, Some((LookupKey::EventId, data_id)), None, None, None)
            .expect("scan")
            .count(),
        0
    );
    let found: Vec<_> = segment
        .scan(&uncached(), HistoryKind::Management, Some((LookupKey::EventId, events[3].event_id())), None, None, None)
        .expect("scan")
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, events[3].key());
}

#[test]
fn the_index_is_loaded_only_for_a_value_the_segment_may_hold_and_then_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(2_000, 21);
    let segment = Segment::open(write(dir.path(), &events).parquet_path()).expect("reopen");
    let indexes = IndexCache::new(64 << 20);
    let management = HistoryKind::Management;

    // Values no row holds: the resident filters answer, nothing is read. The filter lets
    // about one absent value in 1,000 through, so of these 200 at most a few load it.
    let absent: Vec<String> = (0..200).map(|i| format!("nobody-{i}")).collect();
    let loads = absent
        .iter()
        .filter(|value| {
            let scan = segment
                .scan(&indexes, management, Some((LookupKey::Username, value.as_str())), None, None, None)
                .expect("scan");
            assert_eq!(scan.count(), 0);
            indexes.stats().held_bytes > 0
        })
        .count();
    assert!(loads <= 3, "{loads} absent values loaded the index");
    let unknown_id = segment.scan(&indexes, management, Some((LookupKey::EventId, "no-such-id")), None, None, None);
    assert_eq!(unknown_id.expect("scan").count(), 0);

    // A value some row holds loads the index once; it stays for the next lookups.
    let management_events = || events.iter().filter(|event| event.category == Category::Management);
    let user = management_events().find_map(|event| event.fields.username()).expect("a management event's user");
    let found =
        segment.scan(&indexes, management, Some((LookupKey::Username, user)), None, None, None).expect("scan").count();
    assert_eq!(found, management_events().filter(|event| event.fields.username() == Some(user)).count());
    let held = indexes.stats().held_bytes;
    assert!(held > 2_000 * 8, "the loaded index is {held} bytes");
    let all = segment.scan(&indexes, management, None, None, None, None).expect("scan").count();
    assert_eq!(all, management_events().count());
    assert_eq!(indexes.stats().held_bytes, held, "the second lookup used the cached index");
}

#[test]
fn a_retired_segment_stays_readable_until_its_last_holder_lets_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(300, 22);
    let segment = std::sync::Arc::new(Segment::open(write(dir.path(), &events).parquet_path()).expect("reopen"));
    let (parquet, index) = (segment.parquet_path().to_path_buf(), index_path(&segment));
    let held_by_a_lookup = std::sync::Arc::clone(&segment);
    segment.retire();
    drop(segment);
    assert!(parquet.exists() && index.exists(), "a holder remains");
    let scan = held_by_a_lookup.scan(&uncached(), HistoryKind::Management, None, None, None, None);
    let rows: Vec<u32> = scan.expect("scan").map(|found| found.row).collect();
    assert_eq!(rows.len(), events.iter().filter(|event| event.category == Category::Management).count());
    assert_eq!(held_by_a_lookup.read_json(&rows, &PageCache::new(0)).expect("read").len(), rows.len());
    drop(held_by_a_lookup);
    assert!(!parquet.exists() && !index.exists(), "the files went with the last holder");
}

/// Pairs of event IDs with the same 32-bit hash: one whose check bytes differ (the ids
/// section turns it away) and one whose check bytes agree too (only the stored eventID
/// tells them apart).
fn colliding_event_ids() -> &'static [(String, String); 2] {
    static PAIRS: std::sync::OnceLock<[(String, String); 2]> = std::sync::OnceLock::new();
    PAIRS.get_or_init(find_colliding_event_ids)
}

fn find_colliding_event_ids() -> [(String, String); 2] {
    let mut by_hash: HashMap<u32, String> = HashMap::new();
    let mut by_hash_and_check: HashMap<(u32, u8), String> = HashMap::new();
    let (mut hash_only, mut check_too) = (None, None);
    for i in 0u32.. {
        let id = format!("collide-{i}");
        let digest = IdDigest::of(&id);
        if let Some(earlier) = by_hash.insert(digest.hash(), id.clone())
            && IdDigest::of(&earlier).check() != digest.check()
        {
            hash_only.get_or_insert((earlier, id.clone()));
        }
        if let Some(earlier) = by_hash_and_check.insert((digest.hash(), digest.check()), id.clone()) {
            check_too.get_or_insert((earlier, id));
        }
        if let (Some(hash_only), Some(check_too)) = (&hash_only, &check_too) {
            return [hash_only.clone(), check_too.clone()];
        }
    }
    unreachable!("a 40-bit collision among a few million IDs")
}

#[test]
fn an_event_id_hash_collision_is_not_a_duplicate() {
    for (stored, other) in colliding_event_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = write(dir.path(), &[event(1, DAY_START_MS, stored, Category::Management, bare_fields())]);
        assert!(segment.contains_event_id(stored).expect("lookup"));
        assert!(!segment.contains_event_id(other).expect("lookup"));
        assert_eq!(
            segment
                .scan(&uncached(), HistoryKind::Management, Some((LookupKey::EventId, other)), None, None, None)
                .expect("scan")
                .count(),
            0
        );
        assert_eq!(
            segment
                .scan(&uncached(), HistoryKind::Management, Some((LookupKey::EventId, stored)), None, None, None)
                .expect("scan")
                .count(),
            1
        );
    }
}

#[test]
fn colliding_event_ids_in_one_segment_each_find_their_own_row() {
    for (first, second) in colliding_event_ids() {
        let by_user = |username| {
            LookupFields::from(FieldValues {
                event_name: "GetObject",
                event_source: "s3.amazonaws.com",
                username: Some(username),
                ..FieldValues::default()
            })
        };
        // The earlier event's caller sorts last, so the file holds the two in the other order.
        let events = [
            event(1, DAY_START_MS, first, Category::Management, by_user("zed")),
            event(2, DAY_START_MS + 1, second, Category::Management, by_user("amy")),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = write(dir.path(), &events);
        for expected in &events {
            let (row, key) = segment.find_event_id(expected.event_id(), &uncached()).expect("find").expect("found");
            assert_eq!(key, expected.key());
            assert_eq!(
                segment.read_json(&[row], &PageCache::new(0)).expect("read"),
                std::slice::from_ref(&expected.json)
            );
        }
    }
}

#[test]
fn one_event_without_optional_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let only = event(42, DAY_START_MS + 5, "only-one", Category::Management, bare_fields());
    let segment = write(dir.path(), std::slice::from_ref(&only));
    assert_eq!(segment.meta().name, format!("{:020}-{:020}", 42, 42));
    let rows: Vec<_> =
        segment.scan(&uncached(), HistoryKind::Management, None, None, None, None).expect("scan").collect();
    assert_eq!(rows, vec![SegmentRow { key: only.key(), row: 0 }]);
    assert_eq!(segment.read_json(&[0], &PageCache::new(1 << 20)).expect("read"), vec![only.json.clone()]);
    assert!(segment.contains_event_id("only-one").expect("lookup"));
    let by_name = segment
        .scan(&uncached(), HistoryKind::Management, Some((LookupKey::EventName, "GetObject")), None, None, None)
        .expect("scan");
    assert_eq!(by_name.count(), 1);
    for key in [LookupKey::ReadOnly, LookupKey::Username, LookupKey::AccessKeyId, LookupKey::ResourceName] {
        assert_eq!(
            segment
                .scan(&uncached(), HistoryKind::Management, Some((key, "")), None, None, None)
                .expect("scan")
                .count(),
            0
        );
    }
    assert_eq!(segment.scan(&uncached(), HistoryKind::Insight, None, None, None, None).expect("scan").count(), 0);
    assert_eq!(
        segment.scan(&uncached(), HistoryKind::Management, None, None, None, Some(only.key())).expect("scan").count(),
        0
    );
}

#[test]
fn wide_seq_ranges_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = vec![
        event(3, DAY_START_MS, "a", Category::Management, bare_fields()),
        event(u64::MAX / 2, DAY_START_MS, "b", Category::Management, bare_fields()),
        event(7, DAY_START_MS + 1, "c", Category::Insight, bare_fields()),
    ];
    let segment = write(dir.path(), &events);
    let keys: Vec<_> = segment
        .scan(&uncached(), HistoryKind::Management, None, None, None, None)
        .expect("scan")
        .map(|row| row.key)
        .collect();
    assert_eq!(keys, vec![events[1].key(), events[0].key()]);
    assert_eq!(segment.meta().max_seq, u64::MAX / 2);
}

#[test]
fn mixed_partitions_and_repeated_seqs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = event(1, DAY_START_MS, "a", Category::Management, bare_fields());
    let next_day = event(2, DAY_START_MS + 86_400_000, "b", Category::Management, bare_fields());
    let mut other_region = event(3, DAY_START_MS, "c", Category::Management, bare_fields());
    other_region.fields = other_region.fields.with_identity("c", ACCOUNT, "eu-west-1");
    let same_seq = event(1, DAY_START_MS + 1, "d", Category::Management, bare_fields());
    let mut bad_account = first.clone();
    bad_account.fields = bad_account.fields.with_identity("a", "../etc", REGION);
    for events in [vec![&first, &next_day], vec![&first, &other_region], vec![&first, &same_seq], vec![&bad_account]] {
        let error = write_segment(dir.path(), &events).err().expect("refused");
        assert_eq!(error.kind(), ErrorKind::Io, "{error}");
    }
    assert!(write_segment(dir.path(), &[]).is_err());
}

#[test]
fn damaged_index_files_are_corrupt_never_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events: Vec<_> = (0..40)
        .map(|i| {
            let user = format!("user-{}", i % 3);
            let fields = LookupFields::from(FieldValues {
                event_name: "GetObject",
                event_source: "s3.amazonaws.com",
                username: Some(&user),
                ..FieldValues::default()
            });
            event(i, DAY_START_MS + i as i64 / 3, &format!("id-{i}"), Category::Management, fields)
        })
        .collect();
    let segment = write(dir.path(), &events);
    let parquet = segment.parquet_path().to_path_buf();
    let idx = index_path(&segment);
    let pristine = std::fs::read(&idx).expect("read idx");
    let assert_corrupt = |bytes: &[u8], what: &str| {
        std::fs::write(&idx, bytes).expect("write idx");
        match Segment::open(&parquet) {
            Err(error) => assert_eq!(error.kind(), ErrorKind::Corrupt, "{what}: {error}"),
            Ok(_) => panic!("{what}: damaged index opened"),
        }
    };
    for len in 0..pristine.len() {
        assert_corrupt(&pristine[..len], &format!("truncated to {len}"));
    }
    for bit in 0..pristine.len() * 8 {
        let mut flipped = pristine.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert_corrupt(&flipped, &format!("bit {bit} flipped"));
    }
    // A body or an ids section that passes the checksum but is cut short is still caught.
    let body_end = 32 + u64::from_le_bytes(pristine[24..32].try_into().expect("8 bytes")) as usize;
    let (body, ids) =
        (zstd::bulk::decompress(&pristine[32..body_end], 1 << 20).expect("decompress"), &pristine[body_end..]);
    for cut in [1, body.len() / 2, body.len() - 1] {
        assert_corrupt(&index::frame(3, &body[..cut], ids), &format!("body cut to {cut}"));
    }
    for cut in [0, 1, ids.len() - 1] {
        assert_corrupt(&index::frame(3, &body, &ids[..cut]), &format!("ids section cut to {cut}"));
    }
    std::fs::write(&idx, &pristine).expect("restore idx");
    assert!(Segment::open(&parquet).is_ok());
    std::fs::remove_file(&idx).expect("remove idx");
    assert_eq!(Segment::open(&parquet).err().map(|error| error.kind()), Some(ErrorKind::Io));
}

/// Events that share user, source and name, so the file holds them in event key order.
fn events_in_key_order(count: u64) -> Vec<StoredEvent> {
    (0..count)
        .map(|i| event(i + 1, DAY_START_MS + i as i64, &format!("id-{i}"), Category::Management, bare_fields()))
        .collect()
}

/// The index file of [`events_in_key_order`] in an older `version`: their file holds them
/// in event key order.
fn older_index(version: u32, events: &[StoredEvent]) -> Vec<u8> {
    let refs: Vec<&StoredEvent> = events.iter().collect();
    let in_key_order: Vec<u32> = (0..events.len() as u32).collect();
    index::encode_as(version, &refs, &in_key_order)
}

/// The decompressed body of a version 2 index of [`events_in_key_order`], and where its file
/// order (`0, 2, 2, …`: each row one after the previous) starts.
fn version_2_body_and_file_order(events: &[StoredEvent]) -> (Vec<u8>, usize) {
    let body = zstd::bulk::decompress(&older_index(2, events)[32..], 1 << 20).expect("decompress");
    let mut expected: Vec<u8> = events.iter().flat_map(|event| event_id_hash(event.event_id()).to_le_bytes()).collect();
    let hashes_len = expected.len();
    expected.push(0);
    expected.extend(std::iter::repeat_n(2, events.len() - 1));
    let at = body.windows(expected.len()).position(|window| window == expected).expect("hashes then file order");
    (body, at + hashes_len)
}

#[test]
fn the_file_keeps_one_user_s_records_together_and_lookups_find_them_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(500, 11);
    let segment = write(dir.path(), &events);
    let mut in_file = Vec::new();
    read_all_rows(segment.parquet_path(), |row| in_file.push(row.seq as u64)).expect("read rows");
    let by_seq: HashMap<u64, &StoredEvent> = events.iter().map(|event| (event.seq, event)).collect();
    let order_key = |seq: &u64| {
        let event = by_seq[seq];
        let fields = &event.fields;
        (
            fields.username().map(str::to_owned),
            fields.event_source().to_owned(),
            fields.event_name().to_owned(),
            event.key(),
        )
    };
    // Grouped by caller and action, and in event key order within a group.
    assert!(in_file.windows(2).all(|pair| order_key(&pair[0]) < order_key(&pair[1])), "file rows out of order");
    let mut by_key: Vec<&StoredEvent> = events.iter().collect();
    by_key.sort_by_key(|event| event.key());
    assert_ne!(in_file, by_key.iter().map(|event| event.seq).collect::<Vec<_>>(), "the test needs a reordered file");

    // Every way to a row reaches the right one.
    let pages = PageCache::new(1 << 20);
    for event in events.iter().step_by(7) {
        let (row, key) = segment.find_event_id(event.event_id(), &uncached()).expect("find").expect("found");
        assert_eq!(key, event.key());
        assert_eq!(segment.read_json(&[row], &pages).expect("read"), vec![event.json.clone()]);
    }
    let rows = segment.rows_in_seq_range(100, 200, &uncached()).expect("seq range");
    assert_eq!(rows.iter().map(|(key, _)| key.seq).collect::<Vec<_>>(), (101..=200).collect::<Vec<_>>());
    let jsons = segment.read_json(&rows.iter().map(|(_, row)| *row).collect::<Vec<_>>(), &pages).expect("read");
    assert!(rows.iter().zip(jsons).all(|((key, _), json)| json == by_seq[&key.seq].json));

    // Through the event cache: the same records, in the order asked (repeats included),
    // and the second time without a page.
    let events_cache = EventCache::new(1 << 20);
    let mut asked: Vec<u32> = rows.iter().map(|(_, row)| *row).step_by(3).collect();
    asked.push(asked[0]);
    let want = segment.read_json(&asked, &PageCache::new(0)).expect("read");
    assert_eq!(segment.read_events(&asked, &pages, &events_cache).expect("first"), want);
    let before = (events_cache.stats(), pages.stats());
    assert_eq!(
        segment.read_events(&asked[..asked.len() - 1], &pages, &events_cache).expect("second"),
        want[..want.len() - 1]
    );
    let (events_after, pages_after) = (events_cache.stats(), pages.stats());
    assert_eq!(events_after.hits - before.0.hits, asked.len() as u64 - 1, "every record came from the cache");
    assert_eq!((pages_after.hits, pages_after.misses), (before.1.hits, before.1.misses), "no page was asked for");
    assert!(segment.read_events(&[u32::MAX], &pages, &events_cache).is_err(), "a row past the end");
}

#[test]
fn indexes_of_versions_1_and_2_still_open_and_find_every_event_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = events_in_key_order(30);
    for version in [1, 2] {
        let segment = write(dir.path(), &events);
        let parquet = segment.parquet_path().to_path_buf();
        std::fs::write(index_path(&segment), older_index(version, &events)).expect("write idx");
        drop(segment);

        let reopened = Segment::open(&parquet).expect("open an older index");
        let scan = reopened.scan(&uncached(), HistoryKind::Management, None, None, None, None).expect("scan");
        let rows: Vec<SegmentRow> = scan.collect();
        assert_eq!(rows.iter().map(|row| row.row).collect::<Vec<_>>(), (0..30).rev().collect::<Vec<_>>());
        let jsons = reopened.read_json(&rows.iter().map(|row| row.row).collect::<Vec<_>>(), &PageCache::new(0));
        let expected: Vec<Bytes> = events.iter().rev().map(|event| event.json.clone()).collect();
        assert_eq!(jsons.expect("read"), expected);
        for (row, event) in events.iter().enumerate() {
            assert_eq!(
                reopened.find_event_id(event.event_id(), &uncached()).expect("find"),
                Some((row as u32, event.key()))
            );
        }
        assert!(!reopened.contains_event_id("absent").expect("lookup"));
    }
}

#[test]
fn finding_an_event_id_reads_the_ids_section_never_the_index_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(2000, 5);
    let segment = write(dir.path(), &events);
    // Zero the compressed body in place: only the header and the ids section stay readable.
    let idx = index_path(&segment);
    let mut file = std::fs::read(&idx).expect("read idx");
    let body_end = 32 + u64::from_le_bytes(file[24..32].try_into().expect("8 bytes")) as usize;
    file[32..body_end].fill(0);
    std::fs::write(&idx, &file).expect("write idx");

    for event in &events {
        assert!(segment.contains_event_id(event.event_id()).expect("lookup"), "{}", event.event_id());
    }
    assert!(!segment.contains_event_id("absent").expect("lookup"));
    // What does need the index finds it damaged.
    let error = segment.find_event_id(events[0].event_id(), &uncached()).expect_err("the index is damaged");
    assert_eq!(error.kind(), ErrorKind::Corrupt);
}

#[test]
fn an_ids_section_that_names_a_row_twice_or_past_the_end_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = events_in_key_order(30);
    let segment = write(dir.path(), &events);
    let (parquet, idx) = (segment.parquet_path().to_path_buf(), index_path(&segment));
    drop(segment);
    let pristine = std::fs::read(&idx).expect("read idx");
    let body_end = 32 + u64::from_le_bytes(pristine[24..32].try_into().expect("8 bytes")) as usize;
    let body = zstd::bulk::decompress(&pristine[32..body_end], 1 << 20).expect("decompress");
    let ids = &pristine[body_end..];
    assert_eq!(ids.len(), 30 * 3, "a check byte and two bytes of file row per event");
    // The first entry's file row: the second entry's, then one past the last row.
    for (row, what) in [([ids[4], ids[5]], "twice"), (30u16.to_le_bytes(), "row 30 of 30")] {
        let mut damaged = ids.to_vec();
        damaged[1..3].copy_from_slice(&row);
        std::fs::write(&idx, index::frame(3, &body, &damaged)).expect("write idx");
        match Segment::open(&parquet) {
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Corrupt);
                assert!(error.to_string().contains(what), "{error}");
            }
            Ok(_) => panic!("an ids section naming a row {what} opened"),
        }
    }
    std::fs::write(&idx, index::frame(3, &body, ids)).expect("write idx");
    assert!(Segment::open(&parquet).is_ok());
}

#[test]
fn a_file_order_that_misplaces_a_row_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = events_in_key_order(30);
    let segment = write(dir.path(), &events);
    let (body, at) = version_2_body_and_file_order(&events);
    let parquet = segment.parquet_path().to_path_buf();
    let idx = index_path(&segment);
    drop(segment);
    // Row 0 twice (and row 29 never), then a row before the first and one past the last.
    for (place, value, what) in [(1, 0u8, "twice"), (0, 1, "outside"), (29, 4, "outside")] {
        let mut damaged = body.clone();
        damaged[at + place] = value;
        std::fs::write(&idx, index::frame(2, &damaged, &[])).expect("write idx");
        match Segment::open(&parquet) {
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Corrupt);
                assert!(error.to_string().contains(what), "{error}");
            }
            Ok(_) => panic!("a misplaced row at {place} opened"),
        }
    }
    std::fs::write(&idx, index::frame(2, &body, &[])).expect("write idx");
    assert!(Segment::open(&parquet).is_ok());
}

const NAMES: &[&str] = &["GetObject", "PutObject", "AssumeRole"];
const SOURCES: &[&str] = &["s3.amazonaws.com", "sts.amazonaws.com"];
const USERS: &[&str] = &["alice", "bob", "Alice"];
const KEYS: &[&str] = &["AKIA1", "ASIA2"];
const TYPES: &[&str] = &["AWS::S3::Bucket", "AWS::IAM::Role"];
const ARNS: &[&str] = &["arn:1", "arn:2", "arn:3"];

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(values)
}

fn fields_strategy() -> impl Strategy<Value = LookupFields> {
    let resource = (proptest::option::of(pick(TYPES)), proptest::option::of(pick(ARNS)))
        .prop_map(|(resource_type, resource_name)| Resource { resource_type, resource_name });
    (
        pick(NAMES),
        pick(SOURCES),
        proptest::option::of(any::<bool>()),
        proptest::option::of(pick(USERS)),
        proptest::option::of(pick(KEYS)),
        proptest::collection::vec(resource, 0..3),
    )
        .prop_map(|(event_name, event_source, read_only, username, access_key_id, resources)| {
            LookupFields::from(FieldValues {
                event_name,
                event_source,
                read_only,
                username,
                access_key_id,
                resources: &resources,
                // `event` sets the eventID, account and Region.
                ..FieldValues::default()
            })
        })
}

fn category_strategy() -> impl Strategy<Value = Category> {
    prop_oneof![
        6 => Just(Category::Management),
        2 => Just(Category::Insight),
        1 => Just(Category::Data),
        1 => Just(Category::NetworkActivity),
        1 => Just(Category::Other),
    ]
}

fn events_strategy() -> impl Strategy<Value = Vec<StoredEvent>> {
    proptest::collection::vec((0..40i64, category_strategy(), fields_strategy(), 0..3u64), 1..300).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (time, category, fields, gap))| {
                // Seqs unique, not in time order, sometimes far apart.
                let seq = (i as u64) * 3 + gap + if i % 7 == 0 { 1 << 33 } else { 0 };
                event(seq, DAY_START_MS + time, &format!("id-{i}"), category, fields)
            })
            .collect()
    })
}

fn attribute_strategy() -> impl Strategy<Value = Option<(LookupKey, String)>> {
    let value = prop_oneof![
        pick(NAMES),
        pick(SOURCES),
        pick(USERS),
        pick(KEYS),
        pick(TYPES),
        pick(ARNS),
        pick(&["true", "false", "missing", "id-0", "id-3", "id-999"]),
    ]
    .prop_map(str::to_owned);
    proptest::option::of((proptest::sample::select(LookupKey::ALL.to_vec()), value))
}

fn brute_force(
    events: &[StoredEvent],
    kind: HistoryKind,
    attribute: Option<(LookupKey, &str)>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    before: Option<EventKey>,
) -> Vec<EventKey> {
    let mut keys: Vec<EventKey> = events
        .iter()
        .filter(|event| kind.includes(event.category))
        .filter(|event| start_ms.is_none_or(|start| event.event_time_ms >= start))
        .filter(|event| end_ms.is_none_or(|end| event.event_time_ms <= end))
        .filter(|event| before.is_none_or(|before| event.key() < before))
        .filter(|event| attribute.is_none_or(|wanted| lookup_values(event).any(|value| value == wanted)))
        .map(StoredEvent::key)
        .collect();
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn scan_matches_a_brute_force_filter(
        events in events_strategy(),
        queries in proptest::collection::vec(
            (
                prop_oneof![Just(HistoryKind::Management), Just(HistoryKind::Insight)],
                attribute_strategy(),
                proptest::option::of(-5..45i64),
                proptest::option::of(-5..45i64),
                proptest::option::of((-2..42i64, 0..900u64)),
                0..60usize,
            ),
            1..12,
        ),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = write(dir.path(), &events);
        let by_key: std::collections::HashMap<EventKey, &StoredEvent> =
            events.iter().map(|event| (event.key(), event)).collect();
        for (kind, attribute, start, end, before, take) in queries {
            let attribute = attribute.as_ref().map(|(key, value)| (*key, value.as_str()));
            let start = start.map(|offset| DAY_START_MS + offset);
            let end = end.map(|offset| DAY_START_MS + offset);
            let before = before.map(|(time, seq)| EventKey { time_ms: DAY_START_MS + time, seq });
            let expected = brute_force(&events, kind, attribute, start, end, before);
            let rows: Vec<SegmentRow> = segment.scan(&uncached(), kind, attribute, start, end, before).expect("scan").collect();
            let keys: Vec<EventKey> = rows.iter().map(|row| row.key).collect();
            prop_assert_eq!(&keys, &expected);
            // A caller that stops early gets the newest rows.
            let first: Vec<EventKey> = segment.scan(&uncached(), kind, attribute, start, end, before).expect("scan").take(take).map(|row| row.key).collect();
            prop_assert_eq!(&first[..], &expected[..take.min(expected.len())]);
            // Row numbers lead to the right events.
            let wanted: Vec<u32> = rows.iter().map(|row| row.row).collect();
            let jsons = segment.read_json(&wanted, &PageCache::new(1 << 20)).expect("read json");
            for (row, json) in rows.iter().zip(&jsons) {
                prop_assert_eq!(json, &by_key[&row.key].json);
            }
        }
        let ids: HashSet<&str> = events.iter().map(|event| event.event_id()).collect();
        for probe in ["id-0", "id-5", "id-299", "id-300", "nope"] {
            prop_assert_eq!(segment.contains_event_id(probe).expect("lookup"), ids.contains(probe));
        }
    }
}

/// Rewrites a segment's Parquet file as files were written before members moved out of
/// `event_json`: no moved columns but `event_id`, and every record whole in `event_json`.
fn rewrite_without_moved_columns(parquet: &Path) {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;

    let mut records = Vec::new();
    read_all_rows(parquet, |row| records.push(row.event_json.to_owned())).expect("read rows");
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(parquet).expect("open"))
        .expect("reader")
        .with_batch_size(records.len())
        .build()
        .expect("build");
    let batches: Vec<RecordBatch> = reader.map(|batch| batch.expect("batch")).collect();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.name().as_str() {
            "request_id" => continue,
            "event_json" => columns.push(std::sync::Arc::new(StringArray::from(records.clone()))),
            _ => columns.push(column.clone()),
        }
        fields.push(field.as_ref().clone());
    }
    let old = RecordBatch::try_new(std::sync::Arc::new(arrow_schema::Schema::new(fields)), columns).expect("batch");
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level")))
        .set_dictionary_enabled(false)
        .build();
    let file = std::fs::File::create(parquet).expect("create");
    let mut writer = ArrowWriter::try_new(file, old.schema(), Some(properties)).expect("writer");
    writer.write(&old).expect("write");
    writer.close().expect("close");
}

#[test]
fn a_file_from_before_members_moved_still_reads_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(500, 11);
    let segment = write(dir.path(), &events);
    let parquet = segment.parquet_path().to_path_buf();
    drop(segment);
    rewrite_without_moved_columns(&parquet);

    let reopened = Segment::open(&parquet).expect("open the older file");
    let rows: Vec<SegmentRow> =
        reopened.scan(&uncached(), HistoryKind::Management, None, None, None, None).expect("scan").collect();
    let jsons = reopened.read_json(&rows.iter().map(|row| row.row).collect::<Vec<_>>(), &PageCache::new(1 << 20));
    let by_seq: HashMap<u64, &StoredEvent> = events.iter().map(|event| (event.seq, event)).collect();
    for (row, json) in rows.iter().zip(jsons.expect("read")) {
        assert_eq!(json, by_seq[&row.key.seq].json);
    }
    let mut whole = 0;
    read_all_rows(&parquet, |row| {
        assert_eq!(row.event_json.as_bytes(), by_seq[&(row.seq as u64)].json.as_ref());
        whole += 1;
    })
    .expect("read every row");
    assert_eq!(whole, 500);
}

#[test]
fn moved_members_come_back_in_every_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(200, 12);
    assert!(
        events.iter().all(|event| std::str::from_utf8(&event.json).expect("text").contains("\"requestID\":\"")),
        "the fixtures have request IDs to move"
    );
    let segment = write(dir.path(), &events);
    let by_seq: HashMap<u64, &StoredEvent> = events.iter().map(|event| (event.seq, event)).collect();
    let mut rows = 0;
    read_all_rows(segment.parquet_path(), |row| {
        assert_eq!(row.event_json.as_bytes(), by_seq[&(row.seq as u64)].json.as_ref());
        rows += 1;
    })
    .expect("read every row");
    assert_eq!(rows, 200);
}

/// Segments of one partition merged, against one segment written from all their events.
fn merged_and_reference(
    events: &[StoredEvent],
    parts: usize,
    zstd_level: i32,
) -> (Segment, Segment, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs: Vec<Segment> =
        events.chunks(events.len().div_ceil(parts)).map(|chunk| write(dir.path(), chunk)).collect();
    let refs: Vec<&Segment> = inputs.iter().collect();
    let merged = merge_segments(dir.path(), &refs, zstd_level, &uncached()).expect("merge");
    let reference_dir = dir.path().join("reference");
    let reference = write(&reference_dir, events);
    (merged, reference, dir)
}

#[test]
fn a_merged_segment_is_the_segment_its_events_would_have_made() {
    // Late events make the inputs' time ranges overlap.
    let events = generated(3000, 21);
    let (merged, reference, _dir) = merged_and_reference(&events, 3, TableLayout::DEFAULT.zstd_level);
    let (meta, expected) = (merged.meta(), reference.meta());
    assert_eq!(
        (meta.event_count, meta.min_seq, meta.max_seq, meta.min_time_ms, meta.max_time_ms, meta.max_ingest_ms),
        (
            expected.event_count,
            expected.min_seq,
            expected.max_seq,
            expected.min_time_ms,
            expected.max_time_ms,
            expected.max_ingest_ms
        )
    );
    assert_eq!(meta.name, expected.name);
    // Same rows, same file order, same postings: the very same index file.
    assert_eq!(
        std::fs::read(index_path(&merged)).expect("merged idx"),
        std::fs::read(index_path(&reference)).expect("reference idx")
    );
    let mut merged_rows = Vec::new();
    read_all_rows(merged.parquet_path(), |row| {
        merged_rows.push((row.seq, row.event_id.to_owned(), row.event_json.to_owned()))
    })
    .expect("read merged");
    let mut reference_rows = Vec::new();
    read_all_rows(reference.parquet_path(), |row| {
        reference_rows.push((row.seq, row.event_id.to_owned(), row.event_json.to_owned()))
    })
    .expect("read reference");
    assert_eq!(merged_rows, reference_rows, "the same records in the same file order");

    let by_seq: HashMap<u64, &StoredEvent> = events.iter().map(|event| (event.seq, event)).collect();
    let pages = PageCache::new(1 << 20);
    for event in events.iter().step_by(11) {
        let (row, key) = merged.find_event_id(event.event_id(), &uncached()).expect("find").expect("found");
        assert_eq!(key, event.key());
        assert_eq!(merged.read_json(&[row], &pages).expect("read"), vec![event.json.clone()]);
    }
    for (key, value) in events.iter().step_by(97).flat_map(lookup_values) {
        let scan = |segment: &Segment| -> Vec<EventKey> {
            let rows = segment.scan(&uncached(), HistoryKind::Management, Some((key, value)), None, None, None);
            rows.expect("scan").map(|row| row.key).collect()
        };
        assert_eq!(scan(&merged), scan(&reference), "{key:?} = {value}");
    }
    let rows = merged.rows_in_seq_range(0, u64::MAX, &uncached()).expect("every row");
    let jsons = merged.read_json(&rows.iter().map(|(_, row)| *row).collect::<Vec<_>>(), &pages).expect("read");
    assert_eq!(jsons.len(), events.len());
    assert!(rows.iter().zip(jsons).all(|((key, _), json)| json == by_seq[&key.seq].json));
}

#[test]
fn merging_at_another_level_changes_only_the_compression() {
    let events = generated(2000, 22);
    let (merged, reference, _dir) = merged_and_reference(&events, 4, 6);
    let mut rows = 0;
    let by_seq: HashMap<u64, &StoredEvent> = events.iter().map(|event| (event.seq, event)).collect();
    read_all_rows(merged.parquet_path(), |row| {
        assert_eq!(row.event_json.as_bytes(), by_seq[&(row.seq as u64)].json.as_ref());
        rows += 1;
    })
    .expect("read merged");
    assert_eq!(rows, 2000);
    assert_eq!(std::fs::read(index_path(&merged)).expect("idx"), std::fs::read(index_path(&reference)).expect("idx"));
}

#[test]
fn a_segment_written_again_alone_takes_the_next_rewrite_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(1000, 24);
    let sealed = write(dir.path(), &events);
    assert_eq!(sealed.meta().zstd_level, Some(TableLayout::DEFAULT.zstd_level), "the file says its level");
    let small = merge_segments(dir.path(), &[&sealed], 6, &uncached()).expect("rewrite");
    assert_eq!(small.meta().name, format!("{}-1", sealed.meta().name));
    assert_eq!(small.parquet_path(), sealed.parquet_path().with_file_name(format!("{}.parquet", small.meta().name)));
    assert_eq!(small.meta().zstd_level, Some(6));
    assert!(small.meta().parquet_bytes < sealed.meta().parquet_bytes, "written smaller");
    assert_eq!(std::fs::read(index_path(&small)).expect("idx"), std::fs::read(index_path(&sealed)).expect("idx"));
    let again = merge_segments(dir.path(), &[&small], 6, &uncached()).expect("rewrite");
    assert_eq!(again.meta().name, format!("{}-2", sealed.meta().name));

    // The input's files go once it is dropped; the rewrite's stay, and open as they were.
    sealed.retire();
    drop(sealed);
    let reopened = Segment::open(small.parquet_path()).expect("reopen");
    assert_eq!(reopened.meta(), small.meta());
    let pages = PageCache::new(1 << 20);
    for event in events.iter().step_by(37) {
        let (row, key) = reopened.find_event_id(event.event_id(), &uncached()).expect("find").expect("found");
        assert_eq!(key, event.key());
        assert_eq!(reopened.read_json(&[row], &pages).expect("read"), vec![event.json.clone()]);
    }
}

#[test]
fn a_merge_of_a_segment_whose_span_holds_the_others_takes_a_new_name() {
    // The first and last events in one segment, the rest in another: a tier merge that
    // skipped a larger segment between its inputs leaves such a pair.
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(600, 25);
    let outer: Vec<StoredEvent> = events[..100].iter().chain(&events[500..]).cloned().collect();
    let (outer, inner) = (write(dir.path(), &outer), write(dir.path(), &events[100..500]));
    let merged = merge_segments(dir.path(), &[&outer, &inner], 1, &uncached()).expect("merge");
    assert_eq!(merged.meta().name, format!("{}-1", outer.meta().name));
    assert_eq!(merged.meta().event_count, 600);
    let reference = write(&dir.path().join("reference"), &events);
    assert_eq!(std::fs::read(index_path(&merged)).expect("idx"), std::fs::read(index_path(&reference)).expect("idx"));
}

#[test]
fn a_segment_name_must_be_its_span_or_a_rewrite_of_it() {
    let span = format!("{:020}-{:020}", 3, 9);
    assert_eq!(super::rewrite_number(&span, &span), Some(0));
    assert_eq!(super::rewrite_number(&format!("{span}-12"), &span), Some(12));
    for other in [format!("{span}-"), format!("{span}-x"), format!("{span}1"), format!("{:020}-{:020}", 3, 8)] {
        assert_eq!(super::rewrite_number(&other, &span), None, "{other}");
    }
}

#[test]
fn segments_of_different_partitions_or_older_layouts_are_not_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = generated(400, 23);
    let first = write(dir.path(), &events[..200]);
    let mut next_day = events[200..].to_vec();
    for event in &mut next_day {
        event.event_time_ms += 86_400_000;
    }
    let other_day = write(dir.path(), &next_day);
    let error = merge_segments(dir.path(), &[&first, &other_day], 1, &uncached()).err().expect("refused");
    assert_eq!(error.kind(), ErrorKind::Io, "{error}");
    assert!(error.to_string().contains("share account, Region and date"), "{error}");

    let old = write(dir.path(), &events[200..300]);
    rewrite_without_moved_columns(old.parquet_path());
    let old = Segment::open(old.parquet_path()).expect("reopen");
    let error = merge_segments(dir.path(), &[&first, &old], 1, &uncached()).err().expect("refused");
    assert!(error.to_string().contains("older column layout"), "{error}");
    let leftovers: Vec<String> = std::fs::read_dir(first.parquet_path().parent().expect("dir"))
        .expect("list")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
