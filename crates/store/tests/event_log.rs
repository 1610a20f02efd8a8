//! The event log end to end on a real directory: append, look up, seal, reopen, recover.

// A test that cannot set up its fixture should fail loudly, helpers included.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use trailkeeper_core::LookupKey;
use trailkeeper_core::record::{RecordDefaults, parse_record};
use trailkeeper_store::hot::ScanBounds;
use trailkeeper_store::{
    AccountScope, AppendOutcome, ErrorKind, EventKey, EventLog, HistoryKind, LogOptions, NewEvent,
};

const ACCOUNT: &str = "111122223333";

fn record(id: usize, time: &str, user: &str) -> NewEvent {
    record_in("us-east-1", id, time, user)
}

fn record_in(region: &str, id: usize, time: &str, user: &str) -> NewEvent {
    let json = format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","userName":"{user}"}},"eventTime":"{time}","eventSource":"iam.amazonaws.com","eventName":"Op{}","awsRegion":"{region}","eventID":"event-{id}","readOnly":{},"recipientAccountId":"{ACCOUNT}","eventCategory":"Management"}}"#,
        id % 3,
        id.is_multiple_of(2)
    );
    let mut no_ids = String::new;
    let record =
        parse_record(json.as_bytes(), RecordDefaults { account_id: ACCOUNT, region: "us-east-1" }, &mut no_ids)
            .unwrap();
    NewEvent { record, ingest_time_ms: 1_000 }
}

/// Appends and waits for the acknowledgement, backing off while the log pushes back.
fn append(log: &EventLog, events: Vec<NewEvent>) -> Vec<AppendOutcome> {
    for _ in 0..500 {
        let (tx, rx) = mpsc::channel();
        match log.append(events.clone(), move |result| tx.send(result).unwrap()) {
            Ok(()) => return rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap(),
            Err(error) if error.kind() == ErrorKind::Overloaded => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("append failed: {error}"),
        }
    }
    panic!("the log stayed overloaded");
}

fn all(attribute: Option<(LookupKey, &str)>) -> ScanBounds<'_> {
    ScanBounds { kind: HistoryKind::Management, attribute, start_ms: None, end_ms: None, before: None }
}

fn ids(log: &EventLog, bounds: &ScanBounds<'_>, limit: usize) -> Vec<String> {
    log.lookup(&AccountScope::Only(vec![ACCOUNT.into()]), "us-east-1", bounds, limit)
        .unwrap()
        .into_iter()
        .map(|event| {
            serde_json::from_slice::<serde_json::Value>(&event.json).unwrap()["eventID"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Pages through everything, as a NextToken-following client does.
fn page_through(log: &EventLog, attribute: Option<(LookupKey, &str)>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut before: Option<EventKey> = None;
    loop {
        let bounds = ScanBounds { before, ..all(attribute) };
        let page = log.lookup(&AccountScope::Only(vec![ACCOUNT.into()]), "us-east-1", &bounds, 7).unwrap();
        if page.is_empty() {
            return seen;
        }
        before = page.last().map(|event| event.key);
        seen.extend(page.iter().map(|event| {
            serde_json::from_slice::<serde_json::Value>(&event.json).unwrap()["eventID"].as_str().unwrap().to_owned()
        }));
    }
}

fn time(i: usize) -> String {
    // Many events share a second, and they span two dates.
    format!("2024-07-{:02}T10:00:{:02}Z", 30 + i / 40, (i / 3) % 60)
}

fn small_seals() -> LogOptions {
    LogOptions { seal_after_bytes: 8 * 1024, sync: false, ..LogOptions::default() }
}

fn wait_sealed(log: &EventLog) {
    for _ in 0..200 {
        if log.stats().frozen_tables == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("sealing did not finish");
}

#[test]
fn finds_every_event_newest_first_across_hot_and_sealed_data() {
    finds_every_event_newest_first(small_seals());
}

#[test]
fn finds_every_event_when_each_lookup_reads_its_segment_indexes_from_disk() {
    finds_every_event_newest_first(LogOptions { index_cache_bytes: 0, ..small_seals() });
}

fn finds_every_event_newest_first(options: LogOptions) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), options).unwrap();
    for chunk in (0..80).collect::<Vec<_>>().chunks(10) {
        append(&log, chunk.iter().map(|&i| record(i, &time(i), if i % 4 == 0 { "alice" } else { "bob" })).collect());
    }
    wait_sealed(&log);
    assert!(log.stats().segments > 0, "small seal threshold should have sealed something");

    let paged = page_through(&log, None);
    assert_eq!(paged.len(), 80);
    let mut sorted = paged.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 80, "no event twice");
    // Newest first: the last event appended at the latest time comes first.
    assert_eq!(paged[0], "event-79");
    assert_eq!(page_through(&log, Some((LookupKey::Username, "alice"))).len(), 20);
    for i in 0..80 {
        let id = format!("event-{i}");
        assert_eq!(ids(&log, &all(Some((LookupKey::EventId, &id))), 50), vec![id.clone()], "by its ID, hot or sealed");
    }
    assert!(ids(&log, &all(Some((LookupKey::EventId, "event-80"))), 50).is_empty());
    assert_eq!(ids(&log, &all(Some((LookupKey::ReadOnly, "true"))), 50).len(), 40);
    log.close();
}

#[test]
fn stores_each_event_once_wherever_the_first_copy_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), small_seals()).unwrap();
    let first = append(&log, (0..40).map(|i| record(i, &time(i), "a")).collect());
    assert!(first.iter().all(|outcome| matches!(outcome, AppendOutcome::Stored { .. })));
    wait_sealed(&log);
    // Duplicates of sealed events, of hot events, and within one request.
    let mut retry: Vec<NewEvent> = (0..45).map(|i| record(i, &time(i), "a")).collect();
    retry.push(record(44, &time(44), "a"));
    let outcomes = append(&log, retry);
    assert!(outcomes[..40].iter().all(|o| *o == AppendOutcome::Duplicate));
    assert!(outcomes[40..45].iter().all(|o| matches!(o, AppendOutcome::Stored { .. })));
    assert_eq!(outcomes[45], AppendOutcome::Duplicate);
    log.close();

    let reopened = EventLog::open(dir.path(), small_seals()).unwrap();
    let outcomes = append(&reopened, (0..45).map(|i| record(i, &time(i), "a")).collect());
    assert!(outcomes.iter().all(|o| *o == AppendOutcome::Duplicate));
    assert_eq!(page_through(&reopened, None).len(), 45);
    reopened.close();
}

#[test]
fn appends_that_may_wait_ride_out_back_pressure_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Every request overloads the writer's queue, and every freeze the sealer.
    let options = LogOptions { max_pending_bytes: 1, max_frozen_tables: 1, compact: false, ..small_seals() };
    let log = std::sync::Arc::new(EventLog::open(dir.path(), options).unwrap());
    let (threads, requests, per_request) = (4, 25, 6);
    let appenders: Vec<_> = (0..threads)
        .map(|thread| {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                let mut refused = 0;
                for request in 0..requests {
                    let first = (thread * requests + request) * per_request;
                    let events = (first..first + per_request)
                        .map(|i| record_in(["us-east-1", "eu-west-1"][i % 2], i, &time(i % 80), "a"))
                        .collect();
                    let (tx, rx) = mpsc::channel();
                    match log.append_waiting(events, move |result| tx.send(result).unwrap()) {
                        Ok(()) => {
                            let outcomes = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
                            assert!(outcomes.iter().all(|o| matches!(o, AppendOutcome::Stored { .. })));
                        }
                        Err(error) if error.kind() == ErrorKind::Overloaded => refused += 1,
                        Err(error) => panic!("append failed: {error}"),
                    }
                }
                refused
            })
        })
        .collect();
    let refused: usize = appenders.into_iter().map(|appender| appender.join().unwrap()).sum();
    assert_eq!(refused, 0, "appends that may wait were refused");
    wait_sealed(&log);
    let stored = threads * requests * per_request;
    let scope = AccountScope::Only(vec![ACCOUNT.into()]);
    let found: usize = ["us-east-1", "eu-west-1"]
        .iter()
        .map(|region| log.lookup(&scope, region, &all(None), stored).unwrap().len())
        .sum();
    assert_eq!(found, stored);
    log.close();
}

#[test]
fn finds_duplicates_among_thousands_of_sealed_events_of_one_day() {
    // Enough events of one (account, day) that its eventID filter fills and is rebuilt
    // several times, as seals publish their segments (which compaction would merge).
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions { seal_after_bytes: 64 * 1024, sync: false, compact: false, ..LogOptions::default() };
    let same_day = |i: usize| format!("2024-07-30T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60);
    let log = EventLog::open(dir.path(), options.clone()).unwrap();
    for chunk in (0..6_000).collect::<Vec<_>>().chunks(100) {
        append(&log, chunk.iter().map(|&i| record(i, &same_day(i), "a")).collect());
    }
    wait_sealed(&log);
    assert!(log.stats().segments > 20, "{} segments", log.stats().segments);
    for chunk in (0..6_000).collect::<Vec<_>>().chunks(1_000) {
        let outcomes = append(&log, chunk.iter().map(|&i| record(i, &same_day(i), "a")).collect());
        assert!(outcomes.iter().all(|o| *o == AppendOutcome::Duplicate));
    }
    let outcomes = append(&log, (6_000..6_010).map(|i| record(i, &same_day(i), "a")).collect());
    assert!(outcomes.iter().all(|o| matches!(o, AppendOutcome::Stored { .. })));
    log.close();

    let reopened = EventLog::open(dir.path(), options).unwrap();
    for chunk in (0..6_010).collect::<Vec<_>>().chunks(1_000) {
        let outcomes = append(&reopened, chunk.iter().map(|&i| record(i, &same_day(i), "a")).collect());
        assert!(outcomes.iter().all(|o| *o == AppendOutcome::Duplicate));
    }
    for i in (0..6_010).step_by(97) {
        let id = format!("event-{i}");
        assert_eq!(ids(&reopened, &all(Some((LookupKey::EventId, &id))), 50), vec![id.clone()]);
    }
    reopened.close();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_crash_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), LogOptions { sync: true, ..LogOptions::default() }).unwrap();
    append(&log, (0..30).map(|i| record(i, &time(i), "a")).collect());
    // What is on disk after the acknowledgement is what a crash leaves behind.
    let snapshot = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), snapshot.path());
    log.close();

    // And a torn, never-acknowledged write at the end of the journal.
    let journal = snapshot.path().join("journal");
    let newest = std::fs::read_dir(&journal).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.extend_from_slice(&[0x54, 0x4b, 0x4a, 0x31, 0xff, 0x00, 0x00]);
    std::fs::write(&newest, bytes).unwrap();

    let recovered = EventLog::open(snapshot.path(), LogOptions::default()).unwrap();
    assert_eq!(page_through(&recovered, None).len(), 30);
    let outcomes = append(&recovered, vec![record(30, &time(30), "a"), record(3, &time(3), "a")]);
    assert!(matches!(outcomes[0], AppendOutcome::Stored { .. }));
    assert_eq!(outcomes[1], AppendOutcome::Duplicate);
    recovered.close();
}

#[test]
fn retention_drops_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), small_seals()).unwrap();
    append(&log, (0..40).map(|i| record(i, &time(i), "a")).collect());
    log.close();
    let log = EventLog::open(dir.path(), small_seals()).unwrap();
    let before = log.stats();
    assert_eq!(before.hot_events, 0);
    assert_eq!(log.expire(500).unwrap().len(), 0, "events recorded at 1000 are inside the window");
    let dropped = log.expire(1_001).unwrap();
    assert_eq!(dropped.len(), before.segments);
    assert_eq!(dropped.iter().map(|meta| meta.event_count).sum::<u64>(), 40);
    assert!(page_through(&log, None).is_empty());
    assert_eq!(files_under(&dir.path().join("segments")), 0, "the dropped segments' files are deleted");
    // Each drop is recorded, with the log positions it took, for verifiers.
    let recorded = trailkeeper_store::expired::read(dir.path()).unwrap();
    assert_eq!(recorded.len(), dropped.len());
    assert_eq!(recorded.iter().map(|segment| segment.event_count).sum::<u64>(), 40);
    assert_eq!(recorded.iter().map(|segment| segment.min_seq).min(), Some(1));
    assert!(recorded.iter().all(|segment| segment.cutoff_ms == 1_001));
    log.close();
    let reopened = EventLog::open(dir.path(), small_seals()).unwrap();
    assert_eq!(reopened.stats().segments, 0);
    reopened.close();
}

#[test]
fn a_restart_finds_the_newest_segment_indexes_loaded() {
    let dir = tempfile::tempdir().unwrap();
    // Merges would put their own indexes in the cache.
    let small_seals = || LogOptions { compact: false, ..small_seals() };
    let log = EventLog::open(dir.path(), LogOptions { seal_after_bytes: 2 * 1024, ..small_seals() }).unwrap();
    for chunk in (0..80).collect::<Vec<_>>().chunks(5) {
        append(&log, chunk.iter().map(|&i| record(i, &time(i), "a")).collect());
    }
    // Older events of a Region the manifest lists after us-east-1.
    for chunk in (100..140).collect::<Vec<_>>().chunks(5) {
        append(&log, chunk.iter().map(|&i| record_in("us-west-2", i, "2024-07-01T10:00:00Z", "a")).collect());
    }
    log.close();
    let reopened = EventLog::open(dir.path(), small_seals()).unwrap();
    let (segments, loaded) = (reopened.stats().segments, reopened.stats().index_cache.held_bytes);
    assert!(segments > 4);
    assert!(loaded > 0, "opening read every index, and the cache kept them");
    reopened.close();
    // A cache with room for about four indexes keeps the newest ones.
    let small = LogOptions { index_cache_bytes: 4 * loaded / segments, ..small_seals() };
    let reopened = EventLog::open(dir.path(), small).unwrap();
    let held = reopened.stats().index_cache.held_bytes;
    assert!(held > 0 && held < loaded, "{held} of {loaded} bytes held");
    assert_eq!(ids(&reopened, &all(None), 1), vec!["event-79".to_owned()]);
    assert_eq!(reopened.stats().index_cache.held_bytes, held, "the newest segment's index was already there");
    reopened.close();
    let uncached = EventLog::open(dir.path(), LogOptions { index_cache_bytes: 0, ..small_seals() }).unwrap();
    assert_eq!(uncached.stats().index_cache.held_bytes, 0);
    assert_eq!(ids(&uncached, &all(None), 1), vec!["event-79".to_owned()]);
    uncached.close();
}

#[test]
fn finds_an_event_by_its_id_hot_or_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), small_seals()).unwrap();
    append(&log, (0..40).map(|i| record(i, &time(i), "a")).collect());
    wait_sealed(&log);
    append(&log, vec![record(40, &time(40), "a")]);
    for (id, hot) in [("event-3", false), ("event-40", true)] {
        let found = log.find_event(ACCOUNT, id).unwrap().unwrap();
        assert_eq!(&*found.region, "us-east-1");
        let json: serde_json::Value = serde_json::from_slice(&found.json).unwrap();
        assert_eq!(json["eventID"], id, "hot: {hot}");
        let read = log.read_log(found.seq - 1, 1).unwrap();
        assert_eq!(read.entries[0].json, found.json, "the same bytes as the log in order");
    }
    assert!(log.find_event(ACCOUNT, "event-41").unwrap().is_none());
    assert!(log.find_event("999999999999", "event-3").unwrap().is_none(), "event IDs are per account");
    log.close();
}

/// Follows the log from `after` in windows of `window` positions, as a trail does.
fn follow(log: &EventLog, mut after: u64, window: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    while after < log.last_seq() {
        let read = log.read_log(after, window).unwrap();
        assert!(read.through > after, "every read makes progress");
        for entry in &read.entries {
            assert!(entry.seq > after && entry.seq <= read.through);
            let record: serde_json::Value = serde_json::from_slice(&entry.json).unwrap();
            assert_eq!(&*entry.account_id, ACCOUNT);
            seen.push((entry.seq, record["eventID"].as_str().unwrap().to_owned()));
        }
        after = read.through;
    }
    seen
}

#[test]
fn reads_the_log_in_order_from_memory_segments_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), small_seals()).unwrap();
    for chunk in (0..75).collect::<Vec<_>>().chunks(10) {
        append(&log, chunk.iter().map(|&i| record(i, &time(i), "alice")).collect());
    }
    wait_sealed(&log);
    append(&log, (75..80).map(|i| record(i, &time(i), "alice")).collect());
    assert!(log.stats().segments > 0 && log.stats().hot_events > 0, "events are both sealed and in memory");
    assert_eq!(log.last_seq(), 80);

    let expected: Vec<(u64, String)> = (0..80).map(|i| (i as u64 + 1, format!("event-{i}"))).collect();
    for window in [1, 7, 1000] {
        assert_eq!(follow(&log, 0, window), expected, "window {window}");
    }
    assert_eq!(follow(&log, 45, 10), expected[45..].to_vec());
    assert!(log.read_log(80, 10).unwrap().entries.is_empty());
    log.close();

    let reopened = EventLog::open(dir.path(), small_seals()).unwrap();
    assert_eq!(reopened.last_seq(), 80);
    assert_eq!(follow(&reopened, 0, 13), expected);
    reopened.close();
}

/// How many files are under `dir`, at any depth.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| if path.is_dir() { files_under(&path) } else { 1 })
        .sum()
}

/// Waits until compaction leaves at most `segments` segments.
fn wait_compacted(log: &EventLog, segments: usize) {
    for _ in 0..1_000 {
        if log.stats().frozen_tables == 0 && log.stats().segments <= segments {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("compaction left {} segments", log.stats().segments);
}

#[test]
fn compaction_merges_segments_and_keeps_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    // Small seals make dozens of segments in two Regions and two dates; once ingest stops,
    // each partition settles at once and is merged whole.
    let options = LogOptions { compact_settle: Duration::ZERO, ..small_seals() };
    let log = EventLog::open(dir.path(), LogOptions { compact: false, ..options.clone() }).unwrap();
    let region = |i: usize| if i.is_multiple_of(5) { "eu-west-1" } else { "us-east-1" };
    for chunk in (0..2_000).collect::<Vec<_>>().chunks(50) {
        append(
            &log,
            chunk.iter().map(|&i| record_in(region(i), i, &time(i * 2 / 50), &format!("user-{}", i % 7))).collect(),
        );
    }
    wait_sealed(&log);
    let before = log.stats().segments;
    assert!(before > 40, "{before} segments");
    let expected_us: Vec<String> = page_through(&log, None);
    assert_eq!(expected_us.len(), 1_600);
    let by_user: Vec<Vec<String>> =
        (0..7).map(|user| page_through(&log, Some((LookupKey::Username, &format!("user-{user}"))))).collect();
    let last_seq = log.last_seq();
    log.close();

    // A reader that has yet to read the log holds compaction off it. The compactor starts
    // two seconds after the log opens, so a hold taken within one second comes before any
    // merge; on a machine too loaded for that (CI runs tests side by side), the log is
    // opened again, the segments of any merge kept.
    let (log, hold, held) = (0..5)
        .find_map(|_| {
            let opened = std::time::Instant::now();
            let log = EventLog::open(dir.path(), options.clone()).unwrap();
            let hold = log.hold(0);
            let held = log.stats().segments;
            if opened.elapsed() < Duration::from_secs(1) {
                return Some((log, hold, held));
            }
            drop(hold);
            log.close();
            None
        })
        .expect("a hold taken within a second of opening the log");
    assert!(held <= before);
    std::thread::sleep(Duration::from_millis(3_500));
    assert_eq!(log.stats().segments, held, "nothing merged past a reader's position");
    hold.advance(last_seq);
    wait_compacted(&log, 4);
    assert_eq!(log.stats().sealed_events, 2_000);
    assert_eq!(page_through(&log, None), expected_us, "Event History is the same, in the same order");
    for (user, expected) in by_user.iter().enumerate() {
        assert_eq!(&page_through(&log, Some((LookupKey::Username, &format!("user-{user}")))), expected);
    }
    // Deduplication still sees every eventID.
    let outcomes =
        append(&log, (0..2_000).step_by(13).map(|i| record_in(region(i), i, &time(i * 2 / 50), "x")).collect());
    assert!(outcomes.iter().all(|outcome| *outcome == AppendOutcome::Duplicate));
    // Followers reading the log back from segments get every position once, in order.
    let read = log.read_log(0, 100_000).unwrap();
    assert_eq!(read.entries.iter().map(|entry| entry.seq).collect::<Vec<_>>(), (1..=last_seq).collect::<Vec<_>>());
    // Only the merged segments' files are left.
    assert_eq!(files_under(&dir.path().join("segments")), 2 * log.stats().segments);
    log.close();

    let reopened = EventLog::open(dir.path(), LogOptions { compact: false, ..options }).unwrap();
    assert_eq!(page_through(&reopened, None), expected_us);
    for i in (0..2_000).step_by(37).filter(|&i| region(i) == "us-east-1") {
        let id = format!("event-{i}");
        assert_eq!(ids(&reopened, &all(Some((LookupKey::EventId, &id))), 50), vec![id.clone()]);
    }
    reopened.close();
}

#[test]
fn a_settled_partitions_lone_segment_written_fast_is_written_again_small() {
    let dir = tempfile::tempdir().unwrap();
    // One partition, one seal at close: a segment at the sealer's level with nothing to
    // merge it with.
    let options = LogOptions { compact_settle: Duration::ZERO, sync: false, ..LogOptions::default() };
    let log = EventLog::open(dir.path(), LogOptions { compact: false, ..options.clone() }).unwrap();
    append(&log, (0..300).map(|i| record(i, &time(i % 40), &format!("user-{}", i % 4))).collect());
    let expected = page_through(&log, None);
    log.close();
    let (_, sealed) = trailkeeper_store::sealed_segments(dir.path()).unwrap();
    assert_eq!(sealed.len(), 1);
    let level = |path: &Path| trailkeeper_store::segment::Segment::open(path).unwrap().meta().zstd_level;
    assert_eq!(level(&sealed[0]), Some(1));

    let log = EventLog::open(dir.path(), options.clone()).unwrap();
    let rewritten = [sealed[0].with_file_name(format!("{}-1.parquet", sealed[0].file_stem().unwrap().display()))];
    for _ in 0..500 {
        if trailkeeper_store::sealed_segments(dir.path()).unwrap().1 == rewritten {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(trailkeeper_store::sealed_segments(dir.path()).unwrap().1, rewritten);
    assert_eq!(level(&rewritten[0]), Some(6));
    assert_eq!(page_through(&log, None), expected);
    log.close();
    assert!(!sealed[0].exists() && !sealed[0].with_extension("idx").exists(), "the fast segment's files are gone");
    // Once written small it stays as it is.
    let reopened = EventLog::open(dir.path(), options).unwrap();
    std::thread::sleep(Duration::from_millis(3_000));
    assert_eq!(trailkeeper_store::sealed_segments(dir.path()).unwrap().1, rewritten);
    assert_eq!(page_through(&reopened, None), expected);
    reopened.close();
}

#[test]
fn appends_fail_instead_of_waiting_once_the_writer_has_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), small_seals()).unwrap();
    // A callback runs on the writer's thread: one that panics takes the writer down.
    log.append(vec![record(0, &time(0), "a")], |_| panic!("a callback that panics")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(std::time::Instant::now() < deadline, "appends were still taken after the writer panicked");
        let (tx, rx) = mpsc::channel();
        match log.append(vec![record(1, &time(1), "a")], move |result| drop(tx.send(result))) {
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Closed);
                break;
            }
            // Taken before the panic closed the queue: failed, or dropped unanswered with
            // the round the writer was in; never left waiting.
            Ok(()) => match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(result) => assert!(result.is_ok() || result.unwrap_err().kind() == ErrorKind::Closed),
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("an append waited for a writer that is gone"),
            },
        }
    }
    log.close();
}
