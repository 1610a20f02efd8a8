//! The journal cannot grow (a full disk), then can again. A test binary of its own: the file
//! size limit it sets holds for the whole process.

// A test that cannot set up its fixture should fail loudly, helpers included.
#![allow(clippy::unwrap_used)]
// setrlimit and signal have no safe wrapper in the crates this workspace uses.
#![allow(unsafe_code)]

use std::sync::mpsc;
use std::time::Duration;

use trailkeeper_core::record::{RecordDefaults, parse_record};
use trailkeeper_store::{AppendOutcome, EventLog, LogOptions, NewEvent, StoreError};

const ACCOUNT: &str = "111122223333";

fn record(id: usize) -> NewEvent {
    let json = format!(
        r#"{{"eventVersion":"1.09","eventTime":"2024-07-30T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","eventID":"event-{id}","recipientAccountId":"{ACCOUNT}","padding":"{}"}}"#,
        "x".repeat(2_000)
    );
    let mut no_ids = String::new;
    let record =
        parse_record(json.as_bytes(), RecordDefaults { account_id: ACCOUNT, region: "us-east-1" }, &mut no_ids)
            .unwrap();
    NewEvent { record, ingest_time_ms: 1_000 }
}

fn append(log: &EventLog, id: usize) -> Result<Vec<AppendOutcome>, StoreError> {
    let (tx, rx) = mpsc::channel();
    log.append(vec![record(id)], move |result| tx.send(result).unwrap()).unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// Sets the soft limit on the size of any file this process writes.
fn limit_file_size(bytes: libc::rlim_t) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed, which lives for
    // the call.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

#[test]
fn appends_fail_while_the_journal_cannot_grow_and_the_log_says_so_until_one_succeeds() {
    // A write past the limit fails with EFBIG instead of killing the process.
    // SAFETY: ignoring a signal installs no handler of ours.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), LogOptions { sync: true, ..LogOptions::default() }).unwrap();
    assert!(matches!(append(&log, 1).unwrap()[..], [AppendOutcome::Stored { .. }]));
    assert!(!log.journal_failing());

    let journal = dir.path().join("journal");
    let journal_file = || -> Vec<u8> {
        let mut files: Vec<_> = std::fs::read_dir(&journal).unwrap().map(|entry| entry.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        std::fs::read(files.pop().unwrap()).unwrap()
    };
    let before = journal_file();
    limit_file_size(before.len() as libc::rlim_t);
    let refused = append(&log, 2).unwrap_err();
    assert!(log.journal_failing(), "a failed write is remembered: {refused}");
    // Cut back to the end of the last frame: only the zeros a direct write pads the file's
    // last block with may go.
    let after = journal_file();
    assert!(after.len() <= before.len() && after[..] == before[..after.len()], "the failed write is cut back");
    assert!(before[after.len()..].iter().all(|&byte| byte == 0));
    assert!(append(&log, 3).is_err());
    assert!(log.journal_failing());

    limit_file_size(libc::RLIM_INFINITY);
    assert!(matches!(append(&log, 4).unwrap()[..], [AppendOutcome::Stored { .. }]));
    assert!(!log.journal_failing(), "a write that succeeds clears it");
    let found = |id: usize| log.find_event(ACCOUNT, &format!("event-{id}")).unwrap().is_some();
    assert_eq!([1, 2, 3, 4].map(found), [true, false, false, true]);
    log.close();
}
